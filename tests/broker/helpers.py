"""What the broker tests share: a running alertnet, stored events, the ``alertnet`` command."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.app import Runtime
from alertnet.config import Settings
from alertnet.models import Event
from tests.support.polling import eventually

ALERTNET = Path(sys.executable).with_name("alertnet")


@contextlib.asynccontextmanager
async def running_runtime(db_url: str, mqtt_url: str) -> AsyncIterator[Runtime]:
    """The real application runtime (ingest, pipeline, downlinks), connected to the broker."""
    runtime = Runtime(Settings(database_url=db_url, mqtt_url=mqtt_url))
    await runtime.start()
    try:
        await asyncio.wait_for(runtime.mqtt.connected.wait(), 10)
        yield runtime
    finally:
        await runtime.stop()


async def stored_events(session_factory: async_sessionmaker[AsyncSession]) -> int:
    async with session_factory() as session:
        return int(await session.scalar(select(func.count()).select_from(Event)) or 0)


async def events_once_settled(
    session_factory: async_sessionmaker[AsyncSession], expected: int
) -> int:
    """The stored event count once it reaches ``expected`` (a larger count is returned too, for
    the caller to assert on)."""
    return await eventually(
        lambda: stored_events(session_factory),
        lambda count: count >= expected,
        awaiting=f"{expected} stored events",
        interval_s=0.1,
    )


def alertnet_command(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``alertnet ARGS`` as an operator runs it, with only ``env`` as its ALERTNET_* settings."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ALERTNET_")}
    done = subprocess.run(
        [str(ALERTNET), *args],
        env={**environment, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done

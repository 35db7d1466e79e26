"""Shared bits for ingest tests: signed frames and a running pipeline."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.ingest.pipeline import Pipeline
from alertnet.metrics import Metrics

KEY = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
EUI = "70b3d57ed0001234"


@contextlib.asynccontextmanager
async def running_pipeline(
    session_factory: async_sessionmaker[AsyncSession], **kwargs: object
) -> AsyncIterator[Pipeline]:
    pipeline = Pipeline(session_factory, metrics=Metrics(), **kwargs)  # type: ignore[arg-type]
    task = asyncio.create_task(pipeline.run())
    try:
        yield pipeline
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

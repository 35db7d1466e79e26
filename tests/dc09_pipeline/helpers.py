"""Alarm panels for the DC-09 pipeline tests: registered panels, their messages, and a running
pipeline with the receiver's ``on_frame`` in front of it (``Dc09Intake``).

Messages are built with ``alertnet.ingest.dc09.frame.encode_message`` (its own tests check it
against the standard's text and pysiaalarm); answers are read with ``frame.parse_answer``, the
way a panel reads them.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.ingest.dc09 import frame
from alertnet.ingest.dc09.intake import Dc09Intake
from alertnet.ingest.pipeline import Pipeline
from alertnet.models import Alert, Device, Event, Quarantine
from tests.ingest.helpers import running_pipeline
from tests.support.factories import create_device

SessionFactory = async_sessionmaker[AsyncSession]

ACCOUNT = "1234"
KEY_128 = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
KEY_256 = bytes.fromhex("00112233445566778899AABBCCDDEEFF" * 2)
T0 = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


async def create_panel(
    session: AsyncSession, account: str = ACCOUNT, key: bytes | None = None, **fields: Any
) -> Device:
    """An intrusion alarm panel registered with its DC-09 account (and key)."""
    fields.setdefault("supervision_interval_s", 90_000)
    return await create_device(
        session, kind="intrusion_alarm", dc09_account=account, dc09_key=key, **fields
    )


def sia(
    seq: int, data: str, *, account: str = ACCOUNT, key: bytes | None = None, **options: Any
) -> bytes:
    """A ``SIA-DCS`` message, e.g. ``sia(1, "Nri1/BA501")``."""
    return frame.encode_message("SIA-DCS", seq, account, f"#{account}|{data}", key=key, **options)


def cid(
    seq: int, code: str, *, account: str = ACCOUNT, key: bytes | None = None, **options: Any
) -> bytes:
    """An ``ADM-CID`` message, ``code`` as ``QEEE GG CCC``, e.g. ``cid(1, "1130 01 015")``."""
    return frame.encode_message("ADM-CID", seq, account, f"#{account}|{code}", key=key, **options)


def null(seq: int, *, account: str = ACCOUNT, key: bytes | None = None, **options: Any) -> bytes:
    """A ``NULL`` link test."""
    return frame.encode_message("NULL", seq, account, "", key=key, **options)


def answer_kind(raw: bytes | None, key: bytes | None = None) -> str | None:
    """``ACK``, ``NAK``, ``DUH``… as the panel reads the answer (None: no answer)."""
    if raw is None:
        return None
    return frame.parse_answer(raw, key).kind


@dataclass
class Clock:
    """alertnet's clock in these tests: starts at ``T0``, moved by hand."""

    now: datetime = field(default_factory=lambda: T0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@contextlib.asynccontextmanager
async def panel_intake(
    session_factory: SessionFactory, clock: Callable[[], datetime] | None = None, **options: Any
) -> AsyncIterator[tuple[Pipeline, Dc09Intake]]:
    """A running pipeline and the intake a receiver would call, on the test's database."""
    async with running_pipeline(session_factory) as pipeline:
        if clock is not None:
            options["clock"] = clock
        yield pipeline, Dc09Intake(pipeline, session_factory, **options)


async def events(session_factory: SessionFactory, device_id: int | None = None) -> list[Event]:
    async with session_factory() as session:
        query = select(Event).order_by(Event.id)
        if device_id is not None:
            query = query.where(Event.device_id == device_id)
        return list(await session.scalars(query))


async def alerts(session_factory: SessionFactory) -> list[Alert]:
    async with session_factory() as session:
        return list(await session.scalars(select(Alert).order_by(Alert.id)))


async def quarantined(session_factory: SessionFactory) -> list[Quarantine]:
    async with session_factory() as session:
        return list(await session.scalars(select(Quarantine).order_by(Quarantine.id)))


async def count(session_factory: SessionFactory, model: Any) -> int:
    async with session_factory() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


def free_tcp_and_udp_port() -> int:
    """A loopback port free for both TCP and UDP (the receiver binds both)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
        return port

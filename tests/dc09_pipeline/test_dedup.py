"""One event per DC-09 message (DESIGN §2.3, §9.1), on SQLite and PostgreSQL: a retry is ACKed
and counted as a reception, never processed twice; an encrypted retry (fresh pad and time) is
the same message; a key first seen more than 10 minutes ago is a new message; sequence wrap and
panel restarts are not replays."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from alertnet.db import unit_of_work
from alertnet.ingest.dc09 import frame
from alertnet.ingest.pipeline import Disposition
from alertnet.models import Reception
from tests.dc09_pipeline.helpers import (
    KEY_256,
    Clock,
    SessionFactory,
    alerts,
    answer_kind,
    cid,
    create_panel,
    events,
    panel_intake,
    quarantined,
)


async def receptions(session_factory: SessionFactory) -> int:
    async with session_factory() as session:
        return int(await session.scalar(select(func.count()).select_from(Reception)) or 0)


async def test_a_retry_is_acked_and_counted_never_processed_twice(
    session_factory: SessionFactory,
) -> None:
    async with unit_of_work(session_factory) as session:
        await create_panel(session)
    message = cid(17, "1130 01 015")
    async with panel_intake(session_factory) as (pipeline, intake):
        first = await intake.on_frame(message, "10.0.0.7:4000", "tcp")
        again = await intake.on_frame(message, "10.0.0.7:4001", "udp")
    assert first == again and answer_kind(first) == "ACK"
    (event,) = await events(session_factory)
    (alert,) = await alerts(session_factory)
    assert (event.reception_count, alert.press_count) == (2, 1)
    assert await receptions(session_factory) == 2
    assert pipeline.oldest_wait_s() == 0.0


async def test_copies_in_one_batch_are_one_event(session_factory: SessionFactory) -> None:
    async with unit_of_work(session_factory) as session:
        await create_panel(session)
    message = cid(18, "1130 01 015")
    async with panel_intake(session_factory) as (pipeline, intake):
        # Submitted together, they land in one batch: the batch itself must tell them apart.
        event = (await intake_event(intake, message)).dedup_key
        futures = [pipeline.submit_event(await intake_event(intake, message)) for _ in range(3)]
        outcomes = await asyncio.gather(*futures)
    assert sorted(outcome.disposition for outcome in outcomes) == [
        Disposition.DUPLICATE,
        Disposition.DUPLICATE,
        Disposition.NEW,
    ]
    assert {outcome.dedup_key for outcome in outcomes} == {event}
    assert len({outcome.event_id for outcome in outcomes}) == 1
    assert len({outcome.alert_id for outcome in outcomes}) == 1
    (stored,) = await events(session_factory)
    assert stored.reception_count == 3


async def intake_event(intake: object, message: bytes) -> object:
    """The ``SourceEvent`` the intake makes of ``message`` (for submitting copies at once)."""
    from alertnet.ingest.dc09.intake import Dc09Intake, source_event

    assert isinstance(intake, Dc09Intake)
    envelope = frame.parse_frame(message)
    panel, _cached = await intake._panel(envelope.account.upper())
    assert panel is not None
    opened = frame.open_envelope(envelope, panel.key)
    return source_event(envelope, opened, panel, received_at=intake._clock(), peer="test")


async def test_an_encrypted_retry_with_fresh_pad_and_time_is_the_same_message(
    session_factory: SessionFactory,
) -> None:
    clock = Clock()
    async with unit_of_work(session_factory) as session:
        await create_panel(session, key=KEY_256)
    async with panel_intake(session_factory, clock) as (_pipeline, intake):
        first = cid(5, "1130 01 015", key=KEY_256, timestamp=clock.now)
        assert answer_kind(await intake.on_frame(first, "p", "tcp"), KEY_256) == "ACK"
        clock.advance(seconds=30)
        retry = cid(5, "1130 01 015", key=KEY_256, timestamp=clock.now)
        assert retry != first
        assert answer_kind(await intake.on_frame(retry, "p", "tcp"), KEY_256) == "ACK"
    (event,) = await events(session_factory)
    assert event.reception_count == 2 and event.details is not None
    assert event.details["encrypted"] is True and event.details["clock_skew_s"] == 0.0


async def test_a_key_first_seen_over_ten_minutes_ago_is_a_new_message(
    session_factory: SessionFactory,
) -> None:
    clock = Clock()
    async with unit_of_work(session_factory) as session:
        await create_panel(session)
    message = cid(1, "1130 01 015")
    async with panel_intake(session_factory, clock) as (_pipeline, intake):
        assert answer_kind(await intake.on_frame(message, "p", "tcp")) == "ACK"
        clock.advance(minutes=9, seconds=59)
        assert answer_kind(await intake.on_frame(message, "p", "tcp")) == "ACK"  # a retry
        clock.advance(minutes=5)  # 15 min after the first: the panel restarted at seq 0001
        renewed_at = clock.now
        assert answer_kind(await intake.on_frame(message, "p", "tcp")) == "ACK"
        clock.advance(seconds=50)  # its retry, in another minute: still the same message
        assert answer_kind(await intake.on_frame(message, "p", "tcp")) == "ACK"
        clock.advance(minutes=11)  # and once more, long after: new again
        assert answer_kind(await intake.on_frame(message, "p", "tcp")) == "ACK"
    first, renewed, third = await events(session_factory)
    minute = int(renewed_at.timestamp()) // 60
    assert renewed.dedup_key == f"{first.dedup_key}:{minute}"
    assert third.dedup_key == f"{first.dedup_key}:{int(clock.now.timestamp()) // 60}"
    assert [e.reception_count for e in (first, renewed, third)] == [2, 2, 1]
    (alert,) = await alerts(session_factory)
    assert alert.press_count == 3


async def test_sequence_wrap_and_panel_restart_are_not_replays(
    session_factory: SessionFactory,
) -> None:
    async with unit_of_work(session_factory) as session:
        await create_panel(session)
    async with panel_intake(session_factory) as (_pipeline, intake):
        for seq, code in [(9998, "1130 01 001"), (9999, "1130 01 002"), (0, "1130 01 003")]:
            assert answer_kind(await intake.on_frame(cid(seq, code), "p", "tcp")) == "ACK"
        # Restarted: counts from 0001 again, with other events.
        for seq, code in [(1, "1131 01 004"), (2, "1401 01 001")]:
            assert answer_kind(await intake.on_frame(cid(seq, code), "p", "tcp")) == "ACK"
    stored = await events(session_factory)
    assert [e.details["seq"] for e in stored if e.details] == [
        "9998",
        "9999",
        "0000",
        "0001",
        "0002",
    ]
    assert len({e.dedup_key for e in stored}) == 5
    assert await quarantined(session_factory) == []

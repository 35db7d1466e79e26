"""What alertnet refuses from a panel, and what it answers (DESIGN §9.1), on SQLite and
PostgreSQL: DUH for an unknown account or an unsupported token, NAK for an encrypted message
outside -40/+20 s, silence for a damaged frame or a wrong key; every refusal quarantined with
its raw bytes and reason. A disabled or re-keyed panel takes effect with its next message."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from alertnet.db import unit_of_work
from alertnet.ingest.dc09 import frame
from alertnet.models import Device
from tests.dc09_pipeline.helpers import (
    KEY_128,
    KEY_256,
    Clock,
    SessionFactory,
    answer_kind,
    cid,
    create_panel,
    events,
    panel_intake,
    quarantined,
    sia,
)


async def test_an_unknown_account_gets_duh_and_is_quarantined(
    session_factory: SessionFactory,
) -> None:
    async with unit_of_work(session_factory) as session:
        await create_panel(session, account="1234")
    message = sia(3, "Nri1/BA501", account="ABC99")
    async with panel_intake(session_factory) as (_pipeline, intake):
        answer = await intake.on_frame(message, "10.0.0.9:5000", "tcp")
    assert answer is not None and answer_kind(answer) == "DUH"
    parsed = frame.parse_answer(answer)
    assert (parsed.seq, parsed.account) == ("0003", "ABC99")  # echoed, never encrypted
    (row,) = await quarantined(session_factory)
    assert (row.reason, row.transport, row.source) == (
        "unknown_account",
        "dc09",
        "tcp:10.0.0.9:5000",
    )
    assert row.raw == message and row.raw_length == len(message)
    assert await events(session_factory) == []


async def test_an_unsupported_token_gets_duh(session_factory: SessionFactory) -> None:
    async with unit_of_work(session_factory) as session:
        await create_panel(session)
    message = frame.encode_message("SIA-DCX", 4, "1234", "#1234|Nri1/BA501")
    async with panel_intake(session_factory) as (_pipeline, intake):
        assert answer_kind(await intake.on_frame(message, "p", "udp")) == "DUH"
    (row,) = await quarantined(session_factory)
    assert row.reason == "unsupported_token" and "SIA-DCX" in row.detail


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda raw: raw[:1] + b"0000" + raw[5:], "bad_crc"),
        (lambda raw: raw[:5] + b"0001" + raw[9:], "bad_length"),
        (lambda raw: raw.replace(b"BA501", b"BA5O1"), "bad_crc"),
    ],
    ids=["crc-field", "length-field", "flipped-byte"],
)
async def test_a_damaged_frame_gets_no_answer_and_is_quarantined(
    session_factory: SessionFactory, damage: object, reason: str
) -> None:
    async with unit_of_work(session_factory) as session:
        await create_panel(session)
    assert callable(damage)
    broken = damage(sia(1, "Nri1/BA501"))
    async with panel_intake(session_factory) as (_pipeline, intake):
        assert await intake.on_frame(broken, "p", "tcp") is None
    (row,) = await quarantined(session_factory)
    assert (row.reason, row.raw) == (reason, broken)
    assert await events(session_factory) == []


@pytest.mark.parametrize(
    ("offset_s", "expected"),
    [(-41, "NAK"), (-39, "ACK"), (19, "ACK"), (21, "NAK")],
)
async def test_an_encrypted_message_outside_the_window_gets_nak(
    session_factory: SessionFactory, offset_s: int, expected: str
) -> None:
    clock = Clock()
    async with unit_of_work(session_factory) as session:
        await create_panel(session, key=KEY_128)
    from datetime import timedelta

    message = cid(1, "1130 01 015", key=KEY_128, timestamp=clock.now + timedelta(seconds=offset_s))
    async with panel_intake(session_factory, clock) as (_pipeline, intake):
        answer = await intake.on_frame(message, "p", "tcp")
    assert answer_kind(answer, KEY_128) == expected
    if expected == "NAK":
        assert answer is not None
        nak = frame.parse_answer(answer)
        assert (nak.encrypted, nak.timestamp) == (False, clock.now)  # the receiver's clock
        (row,) = await quarantined(session_factory)
        assert row.reason == "bad_timestamp"
        assert await events(session_factory) == []
    else:
        (event,) = await events(session_factory)
        assert event.details is not None and event.details["clock_skew_s"] == offset_s


async def test_a_plain_message_with_a_wrong_clock_is_taken_and_its_skew_kept(
    session_factory: SessionFactory,
) -> None:
    clock = Clock()
    async with unit_of_work(session_factory) as session:
        await create_panel(session)
    from datetime import timedelta

    message = cid(1, "1130 01 015", timestamp=clock.now - timedelta(hours=3))
    async with panel_intake(session_factory, clock) as (_pipeline, intake):
        assert answer_kind(await intake.on_frame(message, "p", "tcp")) == "ACK"
    (event,) = await events(session_factory)
    assert event.details is not None and event.details["clock_skew_s"] == -10800.0
    assert event.occurred_at == event.received_at == clock.now


async def test_keys_the_account_does_not_have_are_refused(session_factory: SessionFactory) -> None:
    clock = Clock()
    async with unit_of_work(session_factory) as session:
        await create_panel(session, account="1234", key=KEY_128)
        await create_panel(session, account="5678")
    wrong_key = cid(1, "1130 01 015", key=KEY_256, timestamp=clock.now)
    no_key = cid(2, "1130 01 015", account="5678", key=KEY_128, timestamp=clock.now)
    plain = cid(3, "1130 01 015")
    async with panel_intake(session_factory, clock) as (_pipeline, intake):
        assert await intake.on_frame(wrong_key, "p", "tcp") is None
        assert answer_kind(await intake.on_frame(no_key, "p", "tcp")) == "DUH"
        assert answer_kind(await intake.on_frame(plain, "p", "tcp")) == "DUH"
    reasons = [row.reason for row in await quarantined(session_factory)]
    assert sorted(reasons) == ["decrypt_failed", "decrypt_failed", "encryption_required"]
    assert await events(session_factory) == []


async def test_a_disabled_panel_is_refused_with_its_next_message(
    session_factory: SessionFactory,
) -> None:
    async with unit_of_work(session_factory) as session:
        panel = await create_panel(session)
    async with panel_intake(session_factory) as (_pipeline, intake):
        assert answer_kind(await intake.on_frame(cid(1, "1130 01 015"), "p", "tcp")) == "ACK"
        async with unit_of_work(session_factory) as session:
            await session.execute(
                update(Device).where(Device.id == panel.id).values(status="disabled")
            )
        # The intake still holds the panel as active; the pipeline's row lock says otherwise.
        assert answer_kind(await intake.on_frame(cid(2, "1131 01 016"), "p", "tcp")) == "DUH"
        assert answer_kind(await intake.on_frame(cid(3, "1132 01 017"), "p", "tcp")) == "DUH"
    assert len(await events(session_factory)) == 1
    assert [row.reason for row in await quarantined(session_factory)] == ["disabled_device"] * 2


async def test_a_rekeyed_panel_takes_effect_with_its_next_message(
    session_factory: SessionFactory,
) -> None:
    clock = Clock()
    async with unit_of_work(session_factory) as session:
        panel = await create_panel(session, key=KEY_128)
    async with panel_intake(session_factory, clock) as (_pipeline, intake):
        old = cid(1, "1130 01 015", key=KEY_128, timestamp=clock.now)
        assert answer_kind(await intake.on_frame(old, "p", "tcp"), KEY_128) == "ACK"
        async with unit_of_work(session_factory) as session:
            await session.execute(
                update(Device).where(Device.id == panel.id).values(dc09_key=KEY_256)
            )
        new = cid(2, "1130 01 016", key=KEY_256, timestamp=clock.now)
        assert answer_kind(await intake.on_frame(new, "p", "tcp"), KEY_256) == "ACK"
        stale = cid(3, "1130 01 017", key=KEY_128, timestamp=clock.now)
        assert await intake.on_frame(stale, "p", "tcp") is None
    assert [e.details["zone"] for e in await events(session_factory) if e.details] == ["015", "016"]
    assert [row.reason for row in await quarantined(session_factory)] == ["decrypt_failed"]


async def test_a_reenabled_panel_is_taken_with_its_next_message(
    session_factory: SessionFactory,
) -> None:
    async with unit_of_work(session_factory) as session:
        panel = await create_panel(session, status="disabled")
    async with panel_intake(session_factory) as (_pipeline, intake):
        # The intake now holds the panel as disabled (its 30 s account cache).
        assert answer_kind(await intake.on_frame(cid(1, "1130 01 015"), "p", "tcp")) == "DUH"
        async with unit_of_work(session_factory) as session:
            await session.execute(
                update(Device).where(Device.id == panel.id).values(status="active")
            )
        assert answer_kind(await intake.on_frame(cid(2, "1130 01 016"), "p", "tcp")) == "ACK"
    assert [e.details["zone"] for e in await events(session_factory) if e.details] == ["016"]
    assert [row.reason for row in await quarantined(session_factory)] == ["disabled_device"]


async def test_a_panel_whose_key_is_removed_is_taken_in_plain_text_at_once(
    session_factory: SessionFactory,
) -> None:
    clock = Clock()
    async with unit_of_work(session_factory) as session:
        panel = await create_panel(session, key=KEY_128)
    async with panel_intake(session_factory, clock) as (_pipeline, intake):
        encrypted = cid(1, "1130 01 015", key=KEY_128, timestamp=clock.now)
        assert answer_kind(await intake.on_frame(encrypted, "p", "tcp"), KEY_128) == "ACK"
        async with unit_of_work(session_factory) as session:
            await session.execute(update(Device).where(Device.id == panel.id).values(dc09_key=None))
        # The intake still holds the key; the database says plain text is the panel's way now.
        assert answer_kind(await intake.on_frame(cid(2, "1130 01 016"), "p", "tcp")) == "ACK"
    assert [e.details["zone"] for e in await events(session_factory) if e.details] == ["015", "016"]
    assert await quarantined(session_factory) == []


async def test_garbage_around_frames_is_quarantined(session_factory: SessionFactory) -> None:
    async with panel_intake(session_factory) as (_pipeline, intake):
        await intake.on_garbage(b"\x00\xffGET / HTTP/1.1", "10.0.0.66:999", "garbage")
        await intake.on_garbage(b"\n" + b"A" * 1500, "10.0.0.66:999", "line_too_long")
    rows = await quarantined(session_factory)
    assert [(row.reason, row.detail) for row in rows] == [
        ("bad_frame", "garbage"),
        ("line_too_long", "line_too_long"),
    ]
    assert rows[1].raw_length == 1501 and len(rows[1].raw) == 1024

"""Every class of DC-09 code end to end (DESIGN §9.1), on SQLite and PostgreSQL: a panel's frame
through ``on_frame`` and the pipeline to its event, alert, trouble, restore, cancel or
supervision, and the ACK that comes back only once that is committed."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from alertnet.db import unit_of_work
from alertnet.models import Alert, Device, DeviceTestMonth, Reception
from tests.dc09_pipeline.helpers import (
    KEY_128,
    Clock,
    SessionFactory,
    alerts,
    answer_kind,
    cid,
    create_panel,
    events,
    null,
    panel_intake,
    sia,
)


async def test_an_intrusion_opens_an_alert_with_zone_and_area_on_its_event(
    session_factory: SessionFactory,
) -> None:
    async with unit_of_work(session_factory) as session:
        panel = await create_panel(session)
    async with panel_intake(session_factory) as (_pipeline, intake):
        answer = await intake.on_frame(sia(1, "Nri1/BA501"), "10.0.0.7:4000", "tcp")
        assert answer_kind(answer) == "ACK"
        # The answer is sent after the commit: what it acknowledges is already stored.
        (event,) = await events(session_factory)
        (alert,) = await alerts(session_factory)
    assert (event.code, event.counter, event.first_transport) == ("intrusion", None, "dc09")
    assert event.dedup_key.startswith("dc09:0001:") and len(event.dedup_key) == 26
    assert event.details is not None
    assert (event.details["code"], event.details["zone"], event.details["partition"]) == (
        "BA",
        "501",
        "1",
    )
    assert event.details["token"] == "SIA-DCS" and event.details["account"] == "1234"
    assert event.alert_id == alert.id
    assert (alert.category, alert.state, alert.silent, alert.device_id) == (
        "intrusion",
        "new",
        False,
        panel.id,
    )
    async with session_factory() as session:
        device = await session.get(Device, panel.id)
        receptions = list(await session.scalars(select(Reception)))
    assert device is not None and device.last_seen_at is not None
    assert device.last_transport == "dc09" and device.last_format == "binary"
    assert [(r.event_id, r.transport) for r in receptions] == [(event.id, "dc09")]


async def test_contact_id_alarms_merge_and_a_restore_never_closes_the_alert(
    session_factory: SessionFactory,
) -> None:
    async with unit_of_work(session_factory) as session:
        await create_panel(session)
    async with panel_intake(session_factory) as (_pipeline, intake):
        for seq, code in enumerate(["1130 01 015", "1131 01 016", "3130 01 015"], start=1):
            assert answer_kind(await intake.on_frame(cid(seq, code), "p", "tcp")) == "ACK"
    first, second, restore = await events(session_factory)
    (alert,) = await alerts(session_factory)
    assert [e.code for e in (first, second, restore)] == ["intrusion", "intrusion", "restore"]
    assert restore.details is not None and restore.details["code"] == "R130"
    assert (restore.details["zone"], restore.details["partition"]) == ("015", "01")
    # Both alarms and the restore are on the one alert, which stays open (DESIGN §9.1).
    assert {first.alert_id, second.alert_id, restore.alert_id} == {alert.id}
    assert (alert.state, alert.press_count) == ("new", 2)
    assert alert.last_event_at == restore.received_at


@pytest.mark.parametrize(
    ("message", "category"),
    [
        (lambda: sia(1, "Nri1/HA1"), "panic"),  # hold-up
        (lambda: cid(1, "1121 01 003"), "panic"),  # duress
        (lambda: cid(1, "1146 01 004"), "intrusion"),  # silent burglary
    ],
    ids=["sia-HA", "cid-121-duress", "cid-146"],
)
async def test_duress_and_hold_up_open_silent_alerts(
    session_factory: SessionFactory, message: object, category: str
) -> None:
    async with unit_of_work(session_factory) as session:
        await create_panel(session)
    async with panel_intake(session_factory) as (_pipeline, intake):
        assert callable(message)
        assert answer_kind(await intake.on_frame(message(), "p", "tcp")) == "ACK"
    (alert,) = await alerts(session_factory)
    assert (alert.category, alert.silent) == (category, True)


async def test_a_silent_panel_makes_every_alarm_silent(session_factory: SessionFactory) -> None:
    async with unit_of_work(session_factory) as session:
        await create_panel(session, silent=True)
    async with panel_intake(session_factory) as (_pipeline, intake):
        assert answer_kind(await intake.on_frame(sia(1, "Nri1/PA1"), "p", "tcp")) == "ACK"
    (alert,) = await alerts(session_factory)
    assert (alert.category, alert.silent) == ("panic", True)


async def test_troubles_per_kind_are_closed_by_their_own_restore(
    session_factory: SessionFactory,
) -> None:
    async with unit_of_work(session_factory) as session:
        await create_panel(session)
    async with panel_intake(session_factory) as (_pipeline, intake):
        send = intake.on_frame
        assert answer_kind(await send(cid(1, "1301 00 000"), "p", "udp")) == "ACK"
        assert answer_kind(await send(sia(2, "NYT"), "p", "udp")) == "ACK"
        (trouble,) = await alerts(session_factory)
        assert (trouble.category, trouble.trouble) == ("trouble", "mains_lost,low_battery")
        assert answer_kind(await send(cid(3, "3301 00 000"), "p", "udp")) == "ACK"
        (trouble,) = await alerts(session_factory)
        assert (trouble.state, trouble.trouble) == ("new", "low_battery")
        assert answer_kind(await send(cid(4, "3302 00 000"), "p", "udp")) == "ACK"
    (trouble,) = await alerts(session_factory)
    assert (trouble.state, trouble.trouble, trouble.outcome) == ("closed", "", "resolved")
    codes = [event.code for event in await events(session_factory)]
    assert codes == ["mains_lost", "low_battery", "mains_restored", "battery_restored"]
    assert {event.alert_id for event in await events(session_factory)} == {trouble.id}


async def test_a_cancel_is_recorded_and_never_stops_the_dispatch(
    session_factory: SessionFactory,
) -> None:
    async with unit_of_work(session_factory) as session:
        await create_panel(session)
    async with panel_intake(session_factory) as (_pipeline, intake):
        assert answer_kind(await intake.on_frame(cid(1, "1130 01 015"), "p", "tcp")) == "ACK"
        assert answer_kind(await intake.on_frame(cid(2, "1406 01 007"), "p", "tcp")) == "ACK"
        assert answer_kind(await intake.on_frame(sia(3, "Nri1/OC7"), "p", "tcp")) == "ACK"
    (alert,) = await alerts(session_factory)
    assert (alert.state, alert.cancel_count) == ("new", 2)
    alarm, cancel, sia_cancel = await events(session_factory)
    assert (cancel.code, sia_cancel.code) == ("cancel", "cancel")
    assert cancel.details is not None and cancel.details["user"] == "007"
    assert cancel.alert_id == sia_cancel.alert_id == alarm.alert_id == alert.id


async def test_openings_closings_and_tests_are_events_without_alerts(
    session_factory: SessionFactory,
) -> None:
    async with unit_of_work(session_factory) as session:
        panel = await create_panel(session)
    async with panel_intake(session_factory) as (_pipeline, intake):
        for seq, message in enumerate(
            [cid(1, "1401 01 002"), cid(2, "3401 01 002"), sia(3, "NOP3"), sia(4, "NCL3")],
            start=1,
        ):
            assert seq and answer_kind(await intake.on_frame(message, "p", "tcp")) == "ACK"
        assert answer_kind(await intake.on_frame(cid(5, "1601 00 000"), "p", "tcp")) == "ACK"
    assert await alerts(session_factory) == []
    found = await events(session_factory)
    assert [e.code for e in found] == ["opening", "closing", "opening", "closing", "test"]
    assert all(e.alert_id is None for e in found)
    async with session_factory() as session:
        months = list(await session.scalars(select(DeviceTestMonth)))
    assert [(m.device_id, m.month) for m in months] == [
        (panel.id, found[-1].received_at.strftime("%Y-%m"))
    ]


async def test_null_and_automatic_test_reports_are_supervision(
    session_factory: SessionFactory,
) -> None:
    clock = Clock()
    async with unit_of_work(session_factory) as session:
        panel = await create_panel(session, key=KEY_128, status="offline")
        offline = await session.get(Device, panel.id)
        assert offline is not None
    async with panel_intake(session_factory, clock) as (_pipeline, intake):
        answer = await intake.on_frame(null(1, key=KEY_128, timestamp=clock.now), "p", "udp")
        assert answer_kind(answer, KEY_128) == "ACK"
        assert answer is not None and answer.startswith(b"\n") and b'"*ACK"' in answer
        clock.advance(days=31)
        message = cid(2, "1602 00 000", key=KEY_128, timestamp=clock.now)
        assert answer_kind(await intake.on_frame(message, "p", "udp"), KEY_128) == "ACK"
    # Heard, nothing stored: like a heartbeat; each month's test is marked.
    assert await events(session_factory) == []
    async with session_factory() as session:
        device = await session.get(Device, panel.id)
        months = list(
            await session.scalars(select(DeviceTestMonth).order_by(DeviceTestMonth.month))
        )
    assert device is not None and (device.status, device.last_seen_at) == ("active", clock.now)
    assert [m.month for m in months] == ["2026-12", "2027-01"]


@pytest.mark.parametrize(
    "message",
    [lambda: cid(1, "1999 01 001"), lambda: sia(1, "Nri1/ZZ12")],
    ids=["cid-999", "sia-ZZ"],
)
async def test_an_unknown_code_is_recorded_acked_and_raises_a_trouble(
    session_factory: SessionFactory, message: object
) -> None:
    async with unit_of_work(session_factory) as session:
        await create_panel(session)
    async with panel_intake(session_factory) as (_pipeline, intake):
        assert callable(message)
        assert answer_kind(await intake.on_frame(message(), "p", "tcp")) == "ACK"
    (event,) = await events(session_factory)
    (trouble,) = await alerts(session_factory)
    assert event.code == "unknown_code" and event.alert_id == trouble.id
    assert event.details is not None and event.details["code"] in ("E999", "ZZ")
    # A trouble that rings on the console; never guessed into an alarm, never sent to a post.
    assert (trouble.category, trouble.trouble, trouble.state) == ("trouble", "unknown_code", "new")
    async with session_factory() as session:
        police = await session.scalar(select(Alert).where(Alert.category != "trouble"))
    assert police is None

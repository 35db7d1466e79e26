"""Frigate ingest end to end (DESIGN §9.3): a real Mosquitto, alertnet running with
ALERTNET_FRIGATE_MQTT_URL set, and a test client publishing ``frigate/events`` as Frigate does."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.app import Runtime
from alertnet.models import AlertAudit
from firmware_sim.frigate import FrigateApi, Track
from tests.frigate.support import (
    NIGHT,
    NOON,
    TOPIC,
    after,
    alerts,
    camera_events,
    create_camera,
    frigate_runtime,
    message,
    quarantined,
)
from tests.support.mosquitto import MosquittoServer
from tests.support.polling import eventually

pytestmark = pytest.mark.mosquitto

SessionFactory = async_sessionmaker[AsyncSession]


async def _publish_all(mosquitto: MosquittoServer, payloads: list[bytes]) -> None:
    async with mosquitto.harness_client("frigate") as frigate:
        for payload in payloads:
            await frigate.publish(TOPIC, payload, qos=1)


async def _handled(runtime: Runtime, count: int) -> None:
    adapter = runtime.frigate
    assert adapter is not None
    await eventually(
        lambda: sum(adapter.handled.values()) >= count,
        awaiting=f"{count} Frigate messages handled",
        details=lambda: repr(adapter.handled),
    )


async def test_the_first_qualifying_message_makes_one_event_and_later_ones_add_end_time(
    db_url: str, session_factory: SessionFactory, mosquitto: MosquittoServer
) -> None:
    """A person enters the watched zone only in an update; the end comes twice (redelivery)."""
    await create_camera(session_factory, "gate", zones="yard")
    walking = after("1764527400.1-aaaaaa", current_zones=[], entered_zones=[])
    in_yard = after("1764527400.1-aaaaaa", entered_zones=["street", "yard"])
    ended = {**in_yard, "end_time": NIGHT + 12, "current_zones": []}
    payloads = [
        message("new", walking),
        message("update", walking),
        message("update", in_yard),
        message("update", in_yard),
        message("end", ended),
        message("end", ended),
    ]
    async with frigate_runtime(db_url, mosquitto, verify_timeout_s=45) as runtime:
        await _publish_all(mosquitto, payloads)
        await _handled(runtime, len(payloads))
        assert runtime.frigate is not None
        assert runtime.frigate.handled == {"not_qualifying": 2, "event": 1, "known": 3}

    [event] = await camera_events(session_factory)
    assert event.dedup_key == "frigate:1764527400.1-aaaaaa"
    assert (event.code, event.first_transport, event.reception_count) == ("camera", "frigate", 1)
    assert event.details is not None
    assert event.details["label"] == "person"
    assert event.details["zones"] == ["street", "yard"]
    assert event.details["score"] == 0.83
    assert event.details["end_time"] == NIGHT + 12
    assert event.details["snapshot"] is None  # no ALERTNET_FRIGATE_URL
    [alert] = await alerts(session_factory)
    assert (alert.category, alert.state, alert.priority, alert.press_count) == (
        "camera",
        "verify",
        60,
        1,
    )
    assert alert.verify_due_at == alert.opened_at + timedelta(seconds=45)
    assert event.alert_id == alert.id
    async with session_factory() as session:
        audit = (await session.scalars(select(AlertAudit))).one()
    assert (audit.from_state, audit.to_state, audit.actor) == (None, "verify", audit.actor)
    assert "person seen by camera gate" in audit.reason


async def test_labels_false_positives_zones_and_night_hours_decide(
    db_url: str, session_factory: SessionFactory, mosquitto: MosquittoServer
) -> None:
    await create_camera(session_factory, "night", hours="22-06")
    await create_camera(session_factory, "door", labels="person,car", zones="porch")
    refused = [
        after("a", "night", start_time=NOON),  # a person at noon: outside 22-06
        after("b", "night", label="car"),  # not a watched label
        after("c", "night", false_positive=True),
        after("d", "door", entered_zones=["street"]),  # never in the watched zone
        after("e", "door", label="dog", entered_zones=["porch"]),
    ]
    taken = [
        after("f", "night", start_time=NIGHT + 4 * 3600),  # 03:30: the hours wrap midnight
        after("g", "door", label="car", entered_zones=["porch"]),
    ]
    payloads = [message("end", {**obj, "end_time": NIGHT}) for obj in refused + taken]
    async with frigate_runtime(db_url, mosquitto) as runtime:
        await _publish_all(mosquitto, payloads)
        await _handled(runtime, len(payloads))
    keys = sorted(event.dedup_key for event in await camera_events(session_factory))
    assert keys == ["frigate:f", "frigate:g"]
    assert sorted(a.state for a in await alerts(session_factory)) == ["verify", "verify"]
    assert await quarantined(session_factory) == []


async def test_events_of_one_camera_merge_into_its_open_alert_with_snapshot_links(
    db_url: str, session_factory: SessionFactory, mosquitto: MosquittoServer
) -> None:
    await create_camera(session_factory, "gate")
    api = FrigateApi().start()
    base_url = api.url
    try:
        async with frigate_runtime(db_url, mosquitto, frigate_url=base_url + "/") as runtime:
            await _publish_all(
                mosquitto,
                [message("new", after("one")), message("new", after("two", start_time=NIGHT + 5))],
            )
            await _handled(runtime, 2)
    finally:
        api.stop()
    first, second = await camera_events(session_factory)
    [alert] = await alerts(session_factory)
    assert (alert.state, alert.press_count) == ("verify", 2)
    assert first.alert_id == second.alert_id == alert.id
    assert first.details is not None and second.details is not None
    assert first.details["snapshot"] == f"{base_url}/api/events/one/snapshot.jpg"
    assert second.details["snapshot"] == f"{base_url}/api/events/two/snapshot.jpg"


async def test_bad_input_is_quarantined_with_its_reason_and_ingest_goes_on(
    db_url: str, session_factory: SessionFactory, mosquitto: MosquittoServer
) -> None:
    await create_camera(session_factory, "gate")
    payloads = [
        b"{not json",
        message("new", {k: v for k, v in after("x").items() if k != "start_time"}),
        message("new", {**after("y"), "false_positive": "nope"}),
        message("new", after("z", camera="nobody")),
        message("new", after("good")),
    ]
    async with frigate_runtime(db_url, mosquitto) as runtime:
        await _publish_all(mosquitto, payloads)
        await _handled(runtime, len(payloads))
    rows = await quarantined(session_factory)
    assert [(row.reason, row.transport, row.source) for row in rows] == [
        ("malformed_json", "frigate", TOPIC),
        ("malformed_json", "frigate", TOPIC),
        ("bad_field", "frigate", TOPIC),
        ("unknown_device", "frigate", TOPIC),
    ]
    assert "nobody" in rows[3].detail
    assert [e.dedup_key for e in await camera_events(session_factory)] == ["frigate:good"]


async def test_after_a_reconnect_it_catches_up_from_frigates_events_api(
    db_url: str, session_factory: SessionFactory, mosquitto: MosquittoServer
) -> None:
    """An event Frigate saw while the broker was away reaches alertnet through the HTTP API."""
    await create_camera(session_factory, "gate", zones="yard")

    def track(frigate_id: str, start_time: float, zones: list[list[str]]) -> Track:
        return Track(
            frigate_id, "gate", "person", "person_in_zone", start_time, start_time + 9, zones
        )

    seen = track("1.0-seen", NIGHT, [[], ["yard"], []])
    missed = track("2.0-missed", NIGHT + 30, [[], ["yard"], []])
    passing = track("3.0-passing", NIGHT + 40, [[], []])  # never in the yard: no event
    api = FrigateApi([seen]).start()
    try:
        async with frigate_runtime(db_url, mosquitto, frigate_url=api.url) as runtime:
            adapter = runtime.frigate
            assert adapter is not None
            await _publish_all(mosquitto, seen.messages())
            await _handled(runtime, 3)
            assert adapter.catch_ups == {"skipped": 1}  # nothing stored yet at the first connect
            connections = adapter.connections

            await asyncio.to_thread(mosquitto.stop)
            api.tracks += [missed, passing]  # published while the broker was away: lost
            await asyncio.to_thread(mosquitto.restart)
            await eventually(
                lambda: adapter.catch_ups["done"] == 1 and adapter.connections > connections,
                awaiting="a catch-up after the reconnect",
                timeout_s=30,
            )
    finally:
        api.stop()
    assert api.afters() == [NIGHT - 60]
    keys = [event.dedup_key for event in await camera_events(session_factory)]
    assert keys == ["frigate:1.0-seen", "frigate:2.0-missed"]
    missed_event = (await camera_events(session_factory))[1]
    assert missed_event.details is not None and missed_event.details["end_time"] == NIGHT + 39
    [alert] = await alerts(session_factory)
    assert alert.press_count == 2


async def test_deep_nesting_and_undatable_times_are_quarantined_and_the_next_event_alerts(
    db_url: str, session_factory: SessionFactory, mosquitto: MosquittoServer
) -> None:
    """§14: a message that cannot be decoded is quarantined and acked, never a crashed session
    redelivering it forever; the good event after it still opens its alert."""
    await create_camera(session_factory, "gate")
    nested = b'{"type":"new","after":' + b"[" * 20_000 + b"]" * 20_000 + b"}"
    payloads = [
        nested,
        message("new", after("huge", start_time=1e20)),
        message("end", after("late", end_time=-5.0)),
        message("new", after("good")),
    ]
    async with frigate_runtime(db_url, mosquitto) as runtime:
        await _publish_all(mosquitto, payloads)
        await _handled(runtime, len(payloads))
        assert runtime.frigate is not None
        assert runtime.frigate.handled == {"quarantined": 3, "event": 1}
    rows = await quarantined(session_factory)
    assert [row.reason for row in rows] == ["malformed_json", "bad_field", "bad_field"]
    assert "start_time" in rows[1].detail and "end_time" in rows[2].detail
    [alert] = await alerts(session_factory)
    assert alert.category == "camera"

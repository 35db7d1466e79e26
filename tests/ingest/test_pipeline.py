"""The ingest pipeline on both databases: dedup, alert open/merge, troubles, quarantine."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.db import unit_of_work
from alertnet.ingest.pipeline import Disposition, RawUplink
from alertnet.models import (
    Alert,
    AlertAudit,
    Device,
    Event,
    FeedItem,
    Quarantine,
    Reception,
    Transport,
    utcnow,
)
from alertnet.protocol import AckState, EventCode, Uplink, WireFormat, decode_downlink
from tests.ingest.helpers import EUI, KEY, running_pipeline
from tests.support.factories import create_device, create_mahalla, create_offer, create_post

SessionFactory = async_sessionmaker[AsyncSession]


async def _device(session_factory: SessionFactory, **kwargs: object) -> Device:
    async with unit_of_work(session_factory) as session:
        return await create_device(session, **{"eui": EUI, "key": KEY, **kwargs})  # type: ignore[arg-type]


def _raw(uplink: Uplink, *, json: bool = False, **kwargs: object) -> RawUplink:
    payload = uplink.to_json() if json else uplink.to_bytes()
    return RawUplink(payload, kwargs.pop("transport", Transport.MQTT), **kwargs)  # type: ignore[arg-type]


async def test_retries_and_json_copy_make_one_event_one_alert(
    session_factory: SessionFactory,
) -> None:
    await _device(session_factory)
    press = Uplink.build(KEY, EUI, 42, EventCode.PANIC, battery=87)
    async with running_pipeline(session_factory) as pipeline:
        first = await pipeline.submit(_raw(press, topic_eui=EUI))
        retries = [
            await pipeline.submit(_raw(press, topic_eui=EUI, gateway_id=None)) for _ in range(2)
        ]
        json_copy = await pipeline.submit(_raw(press, json=True, topic_eui=EUI))

    assert first.disposition is Disposition.NEW
    assert [o.disposition for o in [*retries, json_copy]] == [Disposition.DUPLICATE] * 3
    assert {o.alert_id for o in [first, *retries, json_copy]} == {first.alert_id}
    for outcome in [first, *retries]:
        ack = decode_downlink(outcome.ack_bytes() or b"")
        assert (ack.counter, ack.state, ack.verify(KEY)) == (42, AckState.RECEIVED, True)
    assert json_copy.wire_format is WireFormat.JSON
    assert (json_copy.ack_bytes() or b"").startswith(b'{"v":1,"cnt":42,"state":"received"')

    async with session_factory() as session:
        events = (await session.scalars(select(Event))).all()
        assert [(e.counter, e.reception_count) for e in events] == [(42, 4)]
        assert await session.scalar(select(func.count()).select_from(Reception)) == 4
        alerts = (await session.scalars(select(Alert))).all()
        assert [(a.category, a.state, a.press_count, a.priority) for a in alerts] == [
            ("panic", "new", 1, 100)
        ]
        assert events[0].alert_id == alerts[0].id
        audit = (await session.scalars(select(AlertAudit))).all()
        assert [(a.from_state, a.to_state) for a in audit] == [(None, "new")]
        feed = (await session.scalars(select(FeedItem.type))).all()
        assert feed == ["alert.opened"]


async def test_presses_merge_and_raise_priority_in_a_red_mahalla(
    session_factory: SessionFactory,
) -> None:
    async with unit_of_work(session_factory) as session:
        mahalla = await create_mahalla(session, name="Chilonzor-7", risk="red")
    await _device(session_factory, mahalla_id=mahalla.id)
    async with running_pipeline(session_factory) as pipeline:
        outcomes = [
            await pipeline.submit(_raw(Uplink.build(KEY, EUI, counter, EventCode.PANIC)))
            for counter in (1, 2, 3)
        ]
    assert [o.disposition for o in outcomes] == [Disposition.NEW] * 3
    assert len({o.alert_id for o in outcomes}) == 1
    async with session_factory() as session:
        alert = (await session.scalars(select(Alert))).one()
        # panic 100 + red mahalla 10 + third press 5
        assert (alert.press_count, alert.priority, alert.last_counter) == (3, 115, 3)
        assert await session.scalar(select(func.count()).select_from(Event)) == 3


async def test_a_closed_alert_lets_the_next_press_open_a_new_one(
    session_factory: SessionFactory,
) -> None:
    await _device(session_factory)
    async with running_pipeline(session_factory) as pipeline:
        first = await pipeline.submit(_raw(Uplink.build(KEY, EUI, 1, EventCode.PANIC)))
        async with unit_of_work(session_factory) as session:
            alert = await session.get_one(Alert, first.alert_id)
            alert.state = "closed"
        second = await pipeline.submit(_raw(Uplink.build(KEY, EUI, 2, EventCode.PANIC)))
        intrusion = await pipeline.submit(_raw(Uplink.build(KEY, EUI, 3, EventCode.INTRUSION)))
    assert len({first.alert_id, second.alert_id, intrusion.alert_id}) == 3


async def test_cancel_is_recorded_but_does_not_close_the_alert(
    session_factory: SessionFactory,
) -> None:
    await _device(session_factory)
    async with running_pipeline(session_factory) as pipeline:
        press = await pipeline.submit(_raw(Uplink.build(KEY, EUI, 1, EventCode.PANIC)))
        cancel = await pipeline.submit(_raw(Uplink.build(KEY, EUI, 2, EventCode.CANCEL)))
    assert cancel.alert_id == press.alert_id
    async with session_factory() as session:
        alert = (await session.scalars(select(Alert))).one()
        assert (alert.state, alert.cancel_count) == ("new", 1)


async def test_drill_press_is_marked(session_factory: SessionFactory) -> None:
    await _device(session_factory)
    async with running_pipeline(session_factory) as pipeline:
        await pipeline.submit(_raw(Uplink.build(KEY, EUI, 1, EventCode.PANIC, flags=0x02)))
    async with session_factory() as session:
        alert = (await session.scalars(select(Alert))).one()
        event = (await session.scalars(select(Event))).one()
        assert alert.drill and event.drill


async def test_heartbeat_updates_only_the_device(session_factory: SessionFactory) -> None:
    await _device(session_factory)
    async with running_pipeline(session_factory) as pipeline:
        outcome = await pipeline.submit(
            _raw(Uplink.build(KEY, EUI, 43, EventCode.HEARTBEAT, battery=86))
        )
    assert outcome.disposition is Disposition.HEARTBEAT
    async with session_factory() as session:
        device = (await session.scalars(select(Device))).one()
        assert device.battery == 86 and device.last_seen_at is not None
        assert device.window_highest == 43
        assert await session.scalar(select(func.count()).select_from(Event)) == 0
        assert await session.scalar(select(func.count()).select_from(Alert)) == 0


async def test_mains_lost_opens_trouble_and_restored_closes_it(
    session_factory: SessionFactory,
) -> None:
    await _device(session_factory, kind="intrusion_alarm")
    async with running_pipeline(session_factory) as pipeline:
        lost = await pipeline.submit(_raw(Uplink.build(KEY, EUI, 1, EventCode.MAINS_LOST)))
        low = await pipeline.submit(_raw(Uplink.build(KEY, EUI, 2, EventCode.LOW_BATTERY)))
        await pipeline.submit(_raw(Uplink.build(KEY, EUI, 3, EventCode.MAINS_RESTORED)))
        async with session_factory() as session:
            alert = await session.get_one(Alert, lost.alert_id)
            assert (alert.category, alert.state, alert.trouble) == ("trouble", "new", "low_battery")
        assert low.alert_id == lost.alert_id
    async with session_factory() as session:
        assert await session.scalar(select(func.count()).select_from(Alert)) == 1


async def test_counter_below_the_window_is_a_replay_unless_the_event_is_stored(
    session_factory: SessionFactory,
) -> None:
    await _device(session_factory)
    async with running_pipeline(session_factory) as pipeline:
        old_press = Uplink.build(KEY, EUI, 5, EventCode.PANIC)
        await pipeline.submit(_raw(old_press))
        await pipeline.submit(_raw(Uplink.build(KEY, EUI, 500, EventCode.HEARTBEAT)))
        late_copy = await pipeline.submit(_raw(old_press))
        replay = await pipeline.submit(_raw(Uplink.build(KEY, EUI, 6, EventCode.PANIC)))
    assert late_copy.disposition is Disposition.DUPLICATE
    assert replay.disposition is Disposition.QUARANTINED
    assert replay.reason == "replay" and "re-key or reset" in replay.detail
    async with session_factory() as session:
        trouble = await session.scalar(select(Alert).where(Alert.category == "trouble"))
        assert trouble is not None and trouble.trouble == "counter_reset"


@pytest.mark.parametrize(
    ("make_raw", "reason"),
    [
        (lambda good: RawUplink(good.to_bytes()[:-1], Transport.MQTT), "bad_length"),
        (lambda good: RawUplink(b"\x02" + good.to_bytes()[1:], Transport.MQTT), "bad_version"),
        (
            lambda good: RawUplink(
                good.to_bytes()[:13] + b"\x7f" + good.to_bytes()[14:], Transport.MQTT
            ),
            "unknown_event",
        ),
        (lambda good: RawUplink(good.to_bytes()[:-1] + b"\x00", Transport.MQTT), "bad_mic"),
        (lambda good: RawUplink(b'{"v":1,"dev":', Transport.HTTP), "malformed_json"),
        (
            lambda good: RawUplink(good.to_bytes(), Transport.MQTT, topic_eui="70b3d57ed0009999"),
            "eui_mismatch",
        ),
        (
            lambda good: RawUplink(
                Uplink.build(KEY, "70b3d57ed000beef", 1, EventCode.PANIC).to_bytes(), Transport.MQTT
            ),
            "unknown_device",
        ),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
async def test_each_bad_input_is_quarantined_and_good_input_goes_on(
    session_factory: SessionFactory, make_raw: object, reason: str
) -> None:
    await _device(session_factory)
    good = Uplink.build(KEY, EUI, 7, EventCode.PANIC)
    bad_raw = make_raw(good)  # type: ignore[operator]
    async with running_pipeline(session_factory) as pipeline:
        bad = await pipeline.submit(bad_raw)
        after = await pipeline.submit(_raw(good))
    assert (bad.disposition, bad.reason) == (Disposition.QUARANTINED, reason)
    assert after.disposition is Disposition.NEW
    async with session_factory() as session:
        rows = (await session.scalars(select(Quarantine))).all()
        assert [(q.reason, q.raw) for q in rows] == [(reason, bad_raw.payload)]


async def test_disabled_device_is_quarantined(session_factory: SessionFactory) -> None:
    await _device(session_factory, status="disabled")
    async with running_pipeline(session_factory) as pipeline:
        outcome = await pipeline.submit(_raw(Uplink.build(KEY, EUI, 1, EventCode.PANIC)))
    assert outcome.reason == "disabled_device"


async def test_alarm_is_not_queued_behind_a_heartbeat_storm(
    session_factory: SessionFactory,
) -> None:
    """A press submitted after thousands of heartbeats commits in the first batch."""
    await _device(session_factory)
    async with unit_of_work(session_factory) as session:
        others = [await create_device(session) for _ in range(50)]
    async with running_pipeline(session_factory, max_batch=100) as pipeline:
        heartbeats = [
            pipeline.submit(
                RawUplink(
                    Uplink.build(d.key, d.eui, n, EventCode.HEARTBEAT).to_bytes(), Transport.MQTT
                )
            )
            for n in range(1, 41)
            for d in others
        ]
        press = pipeline.submit(_raw(Uplink.build(KEY, EUI, 1, EventCode.PANIC)))
        outcome = await press
        still_waiting = sum(not f.done() for f in heartbeats)
        await asyncio.gather(*heartbeats)
    assert outcome.disposition is Disposition.NEW
    # The press jumped the 2,000 heartbeats queued before it: most were still waiting.
    assert still_waiting > 1_500


async def test_occurred_at_is_received_at_minus_age(session_factory: SessionFactory) -> None:
    await _device(session_factory)
    received_at = utcnow()
    async with running_pipeline(session_factory) as pipeline:
        await pipeline.submit(
            _raw(Uplink.build(KEY, EUI, 1, EventCode.PANIC, age_s=90), received_at=received_at)
        )
    async with session_factory() as session:
        event = (await session.scalars(select(Event))).one()
        assert event.occurred_at == received_at - timedelta(seconds=90)


async def test_a_cancel_on_an_offered_alert_is_announced_to_the_offered_post(
    session_factory: SessionFactory,
) -> None:
    await _device(session_factory)
    async with running_pipeline(session_factory) as pipeline:
        press = await pipeline.submit(_raw(Uplink.build(KEY, EUI, 1, EventCode.PANIC)))
        async with unit_of_work(session_factory) as session:
            alert = await session.get_one(Alert, press.alert_id)
            alert.state = "offered"
            post = await create_post(session, callsign="P-9")
            await create_offer(session, alert, post)
        await pipeline.submit(_raw(Uplink.build(KEY, EUI, 2, EventCode.CANCEL)))
    async with session_factory() as session:
        last = await session.scalar(select(FeedItem).order_by(FeedItem.seq.desc()).limit(1))
    assert last is not None and last.type == "alert.updated"
    assert last.post_id == post.id and last.data["cancel_count"] == 1


async def test_a_power_cut_batch_raises_one_trouble_per_device_in_order(
    session_factory: SessionFactory,
) -> None:
    """Many mains_lost in one transaction; a device restored within the batch ends clear."""
    async with unit_of_work(session_factory) as session:
        alarms = [await create_device(session, kind="intrusion_alarm") for _ in range(30)]
    flicker = alarms[0]
    raws = [
        RawUplink(Uplink.build(d.key, d.eui, 1, EventCode.MAINS_LOST).to_bytes(), Transport.MQTT)
        for d in alarms
    ]
    raws.append(
        RawUplink(
            Uplink.build(flicker.key, flicker.eui, 2, EventCode.MAINS_RESTORED).to_bytes(),
            Transport.MQTT,
        )
    )
    raws.append(
        RawUplink(
            Uplink.build(alarms[1].key, alarms[1].eui, 2, EventCode.LOW_BATTERY).to_bytes(),
            Transport.MQTT,
        )
    )
    async with running_pipeline(session_factory) as pipeline:
        result = await pipeline.process(raws)
    assert all(o.disposition is Disposition.NEW for o in result.outcomes)
    assert all(o.alert_id is not None for o in result.outcomes)
    async with session_factory() as session:
        alerts = {a.device_id: a for a in await session.scalars(select(Alert))}
        unlinked = await session.scalar(
            select(func.count()).select_from(Event).where(Event.alert_id.is_(None))
        )
    assert len(alerts) == 30 and unlinked == 0
    assert (alerts[flicker.id].state, alerts[flicker.id].trouble) == ("closed", "")
    assert alerts[alarms[1].id].trouble == "mains_lost,low_battery"
    assert {a.state for d, a in alerts.items() if d != flicker.id} == {"new"}
    assert len(result.opened_alert_ids) == 30

"""Dispatch scenarios on real databases: posts at known places, presses, answers, deadlines."""

from __future__ import annotations

import pytest

from alertnet.db import unit_of_work
from alertnet.dispatch import actions, duty
from alertnet.dispatch.notifier import RecordingNotifier
from alertnet.protocol import AckState

from .helpers import (
    SessionFactory,
    assert_invariants,
    at,
    audit_of,
    device_of,
    dispatcher,
    feed_items,
    get_alert,
    get_post,
    make_posts,
    offered_to,
    offers_of,
    pending_offer,
    press,
)


async def test_press_goes_to_the_nearest_post(session_factory: SessionFactory) -> None:
    posts = await make_posts(
        session_factory, ("FAR", 5_000, 0), ("NEAR", 0, 1_000), ("MID", -2_000, 0)
    )
    alert_id = await press(session_factory, counter=42)
    notifier = RecordingNotifier()
    await dispatcher(session_factory, notifier).step(now=at(1))

    assert await offered_to(session_factory, alert_id) == "NEAR"
    offer = await pending_offer(session_factory, alert_id)
    assert offer is not None
    assert offer.post_id == posts["NEAR"]
    assert offer.distance_m == pytest.approx(1_000, rel=1e-3)
    assert offer.offered_at == at(1)
    assert offer.deadline_at == at(31)
    alert = await get_alert(session_factory, alert_id)
    assert alert.state == "offered"
    assert alert.first_offered_at == at(1)
    assert await audit_of(session_factory, alert_id) == [("new", "offered")]
    device = await device_of(session_factory, alert_id)
    assert [(n.device_id, n.counter, n.state) for n in notifier.notices] == [
        (device.id, 42, AckState.DISPATCHED)
    ]
    await assert_invariants(session_factory)


async def test_offer_feed_row_has_the_design_shape(session_factory: SessionFactory) -> None:
    await make_posts(session_factory, ("P1", 0, 300))
    alert_id = await press(session_factory)
    await dispatcher(session_factory).step(now=at(1))
    (created,) = await feed_items(session_factory, "offer.created")
    data = created.data
    assert {
        "id",
        "alert_id",
        "post",
        "state",
        "offered_at",
        "deadline_at",
        "distance_m",
        "alert",
    } <= set(data)
    assert data["alert_id"] == alert_id and data["post"] == "P1" and data["state"] == "pending"
    assert data["alert"]["id"] == alert_id and data["alert"]["state"] == "offered"
    assert {"device_eui", "category", "priority", "lat", "lon", "opened_at", "drill"} <= set(
        data["alert"]
    )
    assert created.post_id is not None  # routed to the offered post's tablet
    (updated,) = [
        i for i in await feed_items(session_factory, "alert.updated") if i.alert_id == alert_id
    ]
    assert updated.data["state"] == "offered"


async def test_decline_goes_to_the_next_nearest(session_factory: SessionFactory) -> None:
    posts = await make_posts(session_factory, ("A", 0, 500), ("B", 0, 1_500), ("C", 0, 3_000))
    alert_id = await press(session_factory)
    engine = dispatcher(session_factory)
    await engine.step(now=at(1))
    offer = await pending_offer(session_factory, alert_id)
    assert offer is not None and offer.post_id == posts["A"]

    async with unit_of_work(session_factory) as session:
        notices = await actions.decline(
            session, offer.id, posts["A"], "already on a call", "post:A", now=at(5)
        )
    assert notices == []  # the device already knows it was dispatched
    assert await offered_to(session_factory, alert_id) == "B"
    alert = await get_alert(session_factory, alert_id)
    assert alert.refusal_count == 1
    history = await offers_of(session_factory, alert_id)
    assert [(o.post_id, o.state) for o in history] == [
        (posts["A"], "declined"),
        (posts["B"], "pending"),
    ]
    assert history[0].reason == "declined: already on a call"
    assert await audit_of(session_factory, alert_id) == [
        ("new", "offered"),
        ("offered", "new"),
        ("new", "offered"),
    ]
    updated = [i.data for i in await feed_items(session_factory, "offer.updated")]
    assert [(d["post"], d["state"]) for d in updated] == [("A", "declined")]
    await assert_invariants(session_factory)


async def test_silent_post_loses_the_offer_at_its_deadline(session_factory: SessionFactory) -> None:
    await make_posts(session_factory, ("SILENT", 0, 200), ("NEXT", 0, 900))
    alert_id = await press(session_factory)
    engine = dispatcher(session_factory)
    await engine.step(now=at(0))
    assert await offered_to(session_factory, alert_id) == "SILENT"

    await engine.step(now=at(29))  # before the deadline: nothing moves
    assert await offered_to(session_factory, alert_id) == "SILENT"

    await engine.step(now=at(30))  # the deadline itself
    assert await offered_to(session_factory, alert_id) == "NEXT"
    history = await offers_of(session_factory, alert_id)
    assert [o.state for o in history] == ["expired", "pending"]
    assert history[0].decided_at == at(30)
    assert history[1].deadline_at == at(60)
    assert (await get_alert(session_factory, alert_id)).refusal_count == 1
    await assert_invariants(session_factory)


async def test_three_refusals_escalate(session_factory: SessionFactory) -> None:
    posts = await make_posts(session_factory, ("A", 0, 100), ("B", 0, 200), ("C", 0, 300))
    alert_id = await press(session_factory)
    engine = dispatcher(session_factory)
    await engine.step(now=at(0))
    # Two declines and one timeout: all three count.
    for moment, callsign in ((5, "A"), (10, "B")):
        offer = await pending_offer(session_factory, alert_id)
        assert offer is not None and offer.post_id == posts[callsign]
        async with unit_of_work(session_factory) as session:
            await actions.decline(
                session, offer.id, posts[callsign], "", f"post:{callsign}", now=at(moment)
            )
    assert await offered_to(session_factory, alert_id) == "C"
    await engine.step(now=at(41))

    alert = await get_alert(session_factory, alert_id)
    assert alert.state == "escalated"
    assert alert.refusal_count == 3
    assert alert.escalated_at == at(41)
    assert await pending_offer(session_factory, alert_id) is None
    assert (await audit_of(session_factory, alert_id))[-1] == ("offered", "escalated")
    # Every post refused it: it waits for the console, the loop does not spin on it.
    await engine.step(now=at(42))
    assert (await get_alert(session_factory, alert_id)).state == "escalated"
    await assert_invariants(session_factory)


async def test_no_eligible_post_escalates(session_factory: SessionFactory) -> None:
    await make_posts(session_factory, ("OFF", 0, 100), status="off_duty")
    await make_posts(session_factory, ("STALE", 0, 200), location_at=at(-301))
    await make_posts(session_factory, ("NOWHERE", 0, 300), location_at=None)
    await make_posts(session_factory, ("FAR", 0, 10_050))
    alert_id = await press(session_factory)
    await dispatcher(session_factory).step(now=at(0))
    alert = await get_alert(session_factory, alert_id)
    assert alert.state == "escalated"
    assert alert.first_offered_at is None
    assert await offers_of(session_factory, alert_id) == []
    assert await audit_of(session_factory, alert_id) == [("new", "escalated")]
    await assert_invariants(session_factory)


async def test_location_age_and_distance_limits_are_inclusive(
    session_factory: SessionFactory,
) -> None:
    await make_posts(session_factory, ("EDGE", 0, 9_990), location_at=at(-300))
    alert_id = await press(session_factory)
    await dispatcher(session_factory).step(now=at(0))
    assert await offered_to(session_factory, alert_id) == "EDGE"


async def test_busy_post_and_a_post_with_an_offer_are_not_eligible(
    session_factory: SessionFactory,
) -> None:
    posts = await make_posts(session_factory, ("ONLY", 0, 100))
    first = await press(session_factory, east_m=50)
    second = await press(session_factory, east_m=-50, opened_at=at(1))
    engine = dispatcher(session_factory)
    await engine.step(now=at(2))
    assert await offered_to(session_factory, first) == "ONLY"
    assert (await get_alert(session_factory, second)).state == "escalated"

    offer = await pending_offer(session_factory, first)
    assert offer is not None
    async with unit_of_work(session_factory) as session:
        await actions.accept(session, offer.id, posts["ONLY"], "post:ONLY", now=at(3))
    await engine.step(now=at(4))
    assert (await get_post(session_factory, posts["ONLY"])).status == "busy"
    assert (await get_alert(session_factory, second)).state == "escalated"
    await assert_invariants(session_factory)


async def test_highest_priority_first_when_posts_are_scarce(
    session_factory: SessionFactory,
) -> None:
    await make_posts(session_factory, ("ONLY", 0, 0))
    tamper = await press(session_factory, category="tamper", opened_at=at(-10))
    panic = await press(session_factory, category="panic", opened_at=at(-1))
    await dispatcher(session_factory).step(now=at(0))
    assert await offered_to(session_factory, panic) == "ONLY"
    assert (await get_alert(session_factory, tamper)).state == "escalated"


async def test_post_turning_available_takes_the_top_escalated_alert(
    session_factory: SessionFactory,
) -> None:
    posts = await make_posts(session_factory, ("LATE", 0, 100), status="off_duty")
    low_old = await press(session_factory, category="intrusion", opened_at=at(-30))
    high_old = await press(session_factory, category="panic", opened_at=at(-20))
    high_new = await press(session_factory, category="panic", opened_at=at(-10))
    far = await press(
        session_factory, category="panic", opened_at=at(-40), north_m=20_000, priority=200
    )
    engine = dispatcher(session_factory)
    await engine.step(now=at(0))
    for alert_id in (low_old, high_old, high_new, far):
        assert (await get_alert(session_factory, alert_id)).state == "escalated"

    notifier = RecordingNotifier()
    async with unit_of_work(session_factory) as session:
        post = await session.get(
            type(await get_post(session_factory, posts["LATE"])), posts["LATE"]
        )
        assert post is not None
        post.status = "available"
        notices = await duty.post_available(session, posts["LATE"], now=at(5))
    await notifier.notify(notices)
    assert await offered_to(session_factory, high_old) == "LATE"
    assert [n.state for n in notifier.notices] == [AckState.DISPATCHED]
    for alert_id in (low_old, high_new, far):
        assert (await get_alert(session_factory, alert_id)).state == "escalated"
    await assert_invariants(session_factory)


async def test_engine_serves_escalated_queue_when_a_post_appears(
    session_factory: SessionFactory,
) -> None:
    """Without any hook call: the periodic pass finds the newly eligible post."""
    older = await press(session_factory, category="medical", opened_at=at(-20))
    newer = await press(session_factory, category="medical", opened_at=at(-10))
    engine = dispatcher(session_factory)
    await engine.step(now=at(0))
    assert (await get_alert(session_factory, older)).state == "escalated"
    await make_posts(session_factory, ("NEW", 0, 100), location_at=at(9))
    await engine.step(now=at(10))
    assert await offered_to(session_factory, older) == "NEW"
    assert (await get_alert(session_factory, newer)).state == "escalated"
    await assert_invariants(session_factory)


async def test_trouble_alerts_are_ignored(session_factory: SessionFactory) -> None:
    await make_posts(session_factory, ("P", 0, 100))
    trouble = await press(session_factory, category="trouble", trouble="low_battery", priority=500)
    await dispatcher(session_factory).step(now=at(0))
    alert = await get_alert(session_factory, trouble)
    assert alert.state == "new"
    assert await offers_of(session_factory, trouble) == []
    await assert_invariants(session_factory, allow_new=True)


async def test_full_lifecycle_tells_the_device_each_stage(session_factory: SessionFactory) -> None:
    posts = await make_posts(session_factory, ("P", 0, 400))
    alert_id = await press(session_factory, counter=7)
    notifier = RecordingNotifier()
    engine = dispatcher(session_factory, notifier)
    await engine.step(now=at(1))
    offer = await pending_offer(session_factory, alert_id)
    assert offer is not None
    post_id = posts["P"]
    await engine.perform(lambda s: actions.accept(s, offer.id, post_id, "post:P", now=at(4)))
    alert = await get_alert(session_factory, alert_id)
    assert (alert.state, alert.post_id, alert.accepted_at) == ("accepted", post_id, at(4))
    assert (await get_post(session_factory, post_id)).status == "busy"
    await assert_invariants(session_factory)

    await engine.perform(lambda s: actions.arrive(s, alert_id, post_id, "post:P", now=at(60)))
    await engine.perform(
        lambda s: actions.close(s, alert_id, post_id, "false_alarm", "kids", "post:P", now=at(90))
    )
    alert = await get_alert(session_factory, alert_id)
    assert (alert.state, alert.on_scene_at, alert.closed_at) == ("closed", at(60), at(90))
    assert (alert.outcome, alert.note, alert.post_id) == ("false_alarm", "kids", post_id)
    assert (await get_post(session_factory, post_id)).status == "available"
    assert [(n.counter, n.state) for n in notifier.notices] == [
        (7, AckState.DISPATCHED),
        (7, AckState.ACCEPTED),
        (7, AckState.ON_SCENE),
        (7, AckState.CLOSED),
    ]
    assert await audit_of(session_factory, alert_id) == [
        ("new", "offered"),
        ("offered", "accepted"),
        ("accepted", "on_scene"),
        ("on_scene", "closed"),
    ]
    post_feed = [i.data for i in await feed_items(session_factory, "post.updated")]
    assert [d["status"] for d in post_feed] == ["busy", "available"]
    assert set(post_feed[0]) == {"id", "callsign", "status", "lat", "lon", "location_at"}
    await assert_invariants(session_factory)


async def test_freed_post_takes_the_next_waiting_alert(session_factory: SessionFactory) -> None:
    posts = await make_posts(session_factory, ("P", 0, 100))
    first = await press(session_factory)
    waiting = await press(session_factory, opened_at=at(1))
    engine = dispatcher(session_factory)
    await engine.step(now=at(2))
    offer = await pending_offer(session_factory, first)
    assert offer is not None
    await engine.perform(lambda s: actions.accept(s, offer.id, posts["P"], "post:P", now=at(3)))
    assert (await get_alert(session_factory, waiting)).state == "escalated"
    await engine.perform(
        lambda s: actions.close(s, first, posts["P"], "confirmed", None, "post:P", now=at(100))
    )
    assert await offered_to(session_factory, waiting) == "P"
    await assert_invariants(session_factory)


async def test_drill_is_routed_like_a_real_alert(session_factory: SessionFactory) -> None:
    await make_posts(session_factory, ("P", 0, 100))
    alert_id = await press(session_factory, drill=True)
    await dispatcher(session_factory).step(now=at(0))
    assert await offered_to(session_factory, alert_id) == "P"
    (created,) = await feed_items(session_factory, "offer.created")
    assert created.data["alert"]["drill"] is True

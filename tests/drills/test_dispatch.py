"""Drills end to end (DESIGN §4, §12): drill events through the pipeline, posts answering,
declining and missing offers through the real dispatch engine, and the report's figures.

Also here: "real before drill" (a waiting real alert is offered to a post before a drill), and
a dispatcher's drill tells its device nothing (no downlink: DESIGN §2.3) while a real press is
told how it progresses. Times are injected (``tests.dispatch.helpers``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from alertnet.auth.scope import Scope
from alertnet.db import unit_of_work
from alertnet.dispatch import actions
from alertnet.dispatch.notifier import RecordingNotifier
from alertnet.drills.report import drill_report
from alertnet.ingest.pipeline import RawUplink
from alertnet.models import Drill, Mahalla, Role, Transport
from alertnet.protocol import AckState, EventCode, Uplink
from tests.dispatch.helpers import (
    SessionFactory,
    assert_invariants,
    at,
    dispatcher,
    get_alert,
    get_post,
    make_posts,
    offered_to,
    pending_offer,
)
from tests.ingest.helpers import KEY, running_pipeline

from .helpers import alert_of_device, build_town, drill_alert_ids, drill_runner, start

DISPATCHER = Scope(role=Role.DISPATCHER, user_id=1, username="disp")


async def _offer_id(session_factory: SessionFactory, alert_id: int, post_id: int) -> int:
    offer = await pending_offer(session_factory, alert_id)
    assert offer is not None and offer.post_id == post_id, offer
    return offer.id


async def _report(session_factory: SessionFactory, drill_id: int) -> dict[str, Any]:
    async with session_factory() as session:
        drill = await session.get_one(Drill, drill_id)
        name = await session.scalar(select(Mahalla.name).where(Mahalla.id == drill.mahalla_id))
        return await drill_report(session, drill, name, DISPATCHER)


async def test_posts_answer_and_miss_drill_offers_and_the_report_measures_them(
    session_factory: SessionFactory,
) -> None:
    town = await build_town(session_factory)
    posts = await make_posts(session_factory, ("P-1", 0, 0), ("P-2", 0, 1_000))
    p1, p2 = posts["P-1"], posts["P-2"]
    notifier = RecordingNotifier()
    engine = dispatcher(session_factory, notifier)
    drill_id = await start(session_factory, town, ["bazaar", "school"], spread_s=120)

    async with drill_runner(session_factory) as runner:
        await runner.step(now=at(0))
        bazaar = (await drill_alert_ids(session_factory, drill_id))[1]
        await engine.step(now=at(1))
        assert await offered_to(session_factory, bazaar) == "P-1"
        # P-1 misses it: the deadline (30 s) passes; the engine offers it to P-2.
        await engine.step(now=at(40))
        assert await offered_to(session_factory, bazaar) == "P-2"
        async with unit_of_work(session_factory) as session:
            offer_id = await _offer_id(session_factory, bazaar, p2)
            notifier.notices += await actions.accept(session, offer_id, p2, "crew-2", now=at(50))
            notifier.notices += await actions.arrive(session, bazaar, p2, "crew-2", now=at(100))

        await runner.step(now=at(120))
        school = (await drill_alert_ids(session_factory, drill_id))[2]
        await engine.step(now=at(121))
        # P-2 holds a drill (no second drill for it); P-1 was paused for the bazaar only.
        assert await offered_to(session_factory, school) == "P-1"
        async with unit_of_work(session_factory) as session:
            offer_id = await _offer_id(session_factory, school, p1)
            notifier.notices += await actions.decline(
                session, offer_id, p1, "training elsewhere", "crew-1", now=at(125)
            )
        await engine.step(now=at(126))
        assert (await get_alert(session_factory, school)).state == "escalated"
        async with unit_of_work(session_factory) as session:
            notifier.notices += await actions.close(
                session, bazaar, p2, "other", "drill done", "crew-2", now=at(130)
            )
        await engine.step(now=at(131))
        assert await offered_to(session_factory, school) == "P-2"
        async with unit_of_work(session_factory) as session:
            offer_id = await _offer_id(session_factory, school, p2)
            notifier.notices += await actions.accept(session, offer_id, p2, "crew-2", now=at(140))
            notifier.notices += await actions.arrive(session, school, p2, "crew-2", now=at(200))
    await assert_invariants(session_factory)
    # A dispatcher's drill was pressed by nobody: no device is told anything.
    assert notifier.notices == []

    report = await _report(session_factory, drill_id)
    assert (report["mahalla"], report["state"], report["device_count"]) == ("Chorsu", "complete", 2)
    one, two = report["alerts"]
    assert (one["n"], one["device_eui"], one["alert_id"], one["alert_state"]) == (
        1,
        town.euis["bazaar"],
        bazaar,
        "closed",
    )
    assert (one["to_offer_s"], one["to_accept_s"], one["to_on_scene_s"], one["to_close_s"]) == (
        1.0,
        50.0,
        100.0,
        130.0,
    )
    assert (one["post"], one["offers"], one["outcome"]) == ("P-2", 2, "other")
    assert (two["alert_state"], two["post"], two["offers"]) == ("on_scene", "P-2", 2)
    assert (two["to_offer_s"], two["to_accept_s"], two["to_on_scene_s"], two["to_close_s"]) == (
        1.0,
        20.0,
        80.0,
        None,
    )
    by_post = {row["post"]: row for row in report["posts"]}
    assert {k: by_post["P-1"][k] for k in ("offers", "accepted", "declined", "expired")} == {
        "offers": 2,
        "accepted": 0,
        "declined": 1,
        "expired": 1,
    }
    assert [(miss["alert_id"], miss["n"]) for miss in by_post["P-1"]["misses"]] == [(bazaar, 1)]
    assert by_post["P-1"]["answer_s"]["p50"] == 4.0  # the decline
    assert {k: by_post["P-2"][k] for k in ("offers", "accepted", "declined", "expired")} == {
        "offers": 2,
        "accepted": 2,
        "declined": 0,
        "expired": 0,
    }
    assert by_post["P-2"]["misses"] == []
    assert by_post["P-2"]["answer_s"]["count"] == 2
    summary = report["summary"]
    assert (summary["created"], summary["alerts"], summary["never_accepted"]) == (2, 2, 0)
    assert summary["to_accept_s"]["p50"] == 20.0 and summary["to_accept_s"]["p80"] == 50.0
    assert summary["alert_states"] == {"closed": 1, "on_scene": 1}


async def test_a_waiting_real_alert_goes_to_the_post_before_the_drill(
    session_factory: SessionFactory,
) -> None:
    town = await build_town(session_factory, key=KEY, last_transport="mqtt")
    posts = await make_posts(session_factory, ("P-1", 0, 0))
    notifier = RecordingNotifier()
    engine = dispatcher(session_factory, notifier)
    await start(session_factory, town, ["bazaar"])
    async with drill_runner(session_factory) as runner:
        await runner.step(now=at(0))  # the drill is older, of the same priority
        frame = Uplink.build(KEY, town.euis["school"], 9, EventCode.PANIC).to_bytes()
        async with running_pipeline(session_factory) as pipeline:
            real = await pipeline.submit(RawUplink(frame, Transport.MQTT, received_at=at(1)))
    assert real.alert_id is not None
    drill = await alert_of_device(session_factory, town.devices["bazaar"], drill=True)

    await engine.step(now=at(2))
    assert await offered_to(session_factory, real.alert_id) == "P-1"
    assert (await get_alert(session_factory, drill.id)).state in ("new", "escalated")
    async with unit_of_work(session_factory) as session:
        offer_id = await _offer_id(session_factory, real.alert_id, posts["P-1"])
        # What the tablet's actions say the devices must hear, as the dispatcher hands it on.
        await notifier.notify(
            [
                *await actions.accept(session, offer_id, posts["P-1"], "crew-1", now=at(5)),
                *await actions.arrive(session, real.alert_id, posts["P-1"], "crew-1", now=at(60)),
                *await actions.close(
                    session, real.alert_id, posts["P-1"], "false_alarm", None, "crew-1", now=at(90)
                ),
            ]
        )
    await engine.step(now=at(91))
    # Free again with no real alert waiting: now the drill.
    assert await offered_to(session_factory, drill.id) == "P-1"
    assert (await get_post(session_factory, posts["P-1"])).status == "available"
    await assert_invariants(session_factory)
    # The real press is told how it goes; the drill's device hears nothing.
    assert notifier.states_for(town.devices["bazaar"]) == []
    assert notifier.states_for(town.devices["school"]) == [
        AckState.DISPATCHED,
        AckState.ACCEPTED,
        AckState.ON_SCENE,
        AckState.CLOSED,
    ]

"""A real alarm on a device with an open drill alert cancels that drill alert (DESIGN §2.3).

In the ingest transaction that opens the real alert: the drill alert is cancelled ("real alarm
on this device", by the device), its pending offer withdrawn and the post that held it freed,
so the dispatcher's next pass can send that very post to the real alarm. A real event never
merges into a drill alert, and a drill never into a real one: the open-alert index includes
the drill flag.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from alertnet.db import unit_of_work
from alertnet.dispatch import actions
from alertnet.dispatch.realpress import REAL_ALARM_REASON
from alertnet.ingest.pipeline import Pipeline, RawUplink
from alertnet.models import Alert, AlertAudit, FeedItem, Transport
from alertnet.protocol import FLAG_DRILL, EventCode, Uplink
from tests.dispatch.helpers import (
    SessionFactory,
    assert_invariants,
    at,
    dispatcher,
    get_alert,
    get_post,
    make_posts,
    offered_to,
    offers_of,
    pending_offer,
)
from tests.ingest.helpers import KEY, running_pipeline

from .helpers import alert_of_device, build_town, drill_runner, start


async def _press(pipeline: Pipeline, eui: str, counter: int, t: float, *, flags: int = 0) -> int:
    frame = Uplink.build(KEY, eui, counter, EventCode.PANIC, flags=flags).to_bytes()
    outcome = await pipeline.submit(RawUplink(frame, Transport.MQTT, received_at=at(t)))
    assert outcome.alert_id is not None, outcome
    return outcome.alert_id


async def _last_audit(session_factory: SessionFactory, alert_id: int) -> AlertAudit:
    async with session_factory() as session:
        return (
            await session.scalars(
                select(AlertAudit).where(AlertAudit.alert_id == alert_id).order_by(AlertAudit.id)
            )
        ).all()[-1]


@pytest.mark.parametrize("held", [True, False], ids=["accepted", "offered"])
async def test_a_real_press_cancels_the_drill_and_frees_its_post_for_the_real_alarm(
    session_factory: SessionFactory, held: bool
) -> None:
    town = await build_town(session_factory, key=KEY)
    posts = await make_posts(session_factory, ("NEAR", 0, 150), ("FAR", 0, 4_000))
    engine = dispatcher(session_factory)
    drill_id = await start(session_factory, town, ["bazaar"])
    async with drill_runner(session_factory) as runner:
        await runner.step(now=at(0))
    drill_alert = await alert_of_device(session_factory, town.devices["bazaar"], drill=True)
    await engine.step(now=at(1))
    assert await offered_to(session_factory, drill_alert.id) == "NEAR"
    if held:
        offer = await pending_offer(session_factory, drill_alert.id)
        assert offer is not None
        async with unit_of_work(session_factory) as session:
            await actions.accept(session, offer.id, posts["NEAR"], "crew-near", now=at(3))
        assert (await get_post(session_factory, posts["NEAR"])).status == "busy"

    async with running_pipeline(session_factory) as pipeline:
        real_id = await _press(pipeline, town.euis["bazaar"], 7, 10)

    assert real_id != drill_alert.id
    cancelled = await get_alert(session_factory, drill_alert.id)
    assert (cancelled.state, cancelled.closed_at, cancelled.drill_id) == (
        "cancelled",
        at(10),
        drill_id,
    )
    audit = await _last_audit(session_factory, drill_alert.id)
    assert (audit.to_state, audit.reason, audit.actor) == (
        "cancelled",
        REAL_ALARM_REASON,
        f"device:{town.euis['bazaar']}",
    )
    real = await get_alert(session_factory, real_id)
    assert (real.state, real.drill, real.drill_id, real.category) == ("new", False, None, "panic")
    assert (await get_post(session_factory, posts["NEAR"])).status == "available"
    [drill_offer] = await offers_of(session_factory, drill_alert.id)
    assert drill_offer.state == ("accepted" if held else "withdrawn")
    async with session_factory() as session:
        feed = [
            (item.type, item.alert_id, item.post_id)
            for item in await session.scalars(select(FeedItem).order_by(FeedItem.seq))
        ]
    seen = {kind for kind, alert_id, _post in feed if alert_id == drill_alert.id}
    assert "alert.updated" in seen
    if held:
        assert ("post.updated", None, posts["NEAR"]) in feed
    else:
        assert "offer.updated" in seen

    await engine.step(now=at(11))
    assert await offered_to(session_factory, real_id) == "NEAR"
    await assert_invariants(session_factory)


async def test_drill_and_real_alerts_of_one_device_never_merge(
    session_factory: SessionFactory,
) -> None:
    town = await build_town(session_factory, key=KEY)
    eui = town.euis["bazaar"]
    async with running_pipeline(session_factory) as pipeline:
        real_id = await _press(pipeline, eui, 1, 0)
        drill_id = await _press(pipeline, eui, 2, 1, flags=FLAG_DRILL)  # a trainee's button
        again_real = await _press(pipeline, eui, 3, 2)
        again_drill = await _press(pipeline, eui, 4, 3, flags=FLAG_DRILL)
    assert drill_id != real_id
    assert again_real == real_id  # merged into the real alert, not the drill
    assert again_drill != drill_id  # the real press cancelled the first drill
    async with session_factory() as session:
        rows = list(
            await session.execute(
                select(Alert.id, Alert.drill, Alert.state, Alert.press_count).order_by(Alert.id)
            )
        )
    assert [tuple(row) for row in rows] == [
        (real_id, False, "new", 2),
        (drill_id, True, "cancelled", 1),
        (again_drill, True, "new", 1),
    ]

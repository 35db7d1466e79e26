"""DESIGN §4 "real before drill": a post holding a drill is eligible for real alerts.

A real offer withdraws the post's pending drill offer; accepting a real alert sends the drill it
holds (accepted or on scene) back to ``new`` ("pre-empted by a real alert"), and the drill goes
on to its next post at once. The post always holds one alert at a time (the unique index).
Also here: the ops trail, one INFO line per alert transition, pre-emptions included.
"""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import select

from alertnet.db import unit_of_work
from alertnet.dispatch import actions, duty
from alertnet.dispatch.matching import PREEMPTED
from alertnet.errors import Conflict
from alertnet.ingest.pipeline import RawUplink
from alertnet.models import AlertAudit, Post, Transport
from alertnet.protocol import EventCode, Uplink
from tests.support.asgi import AppClient
from tests.support.factories import create_device, create_mahalla
from tests.support.polling import eventually

from .helpers import (
    SessionFactory,
    assert_invariants,
    at,
    audit_of,
    dispatcher,
    get_alert,
    get_post,
    make_posts,
    offered_to,
    offers_of,
    pending_offer,
    point,
    press,
)


async def _accept(session_factory: SessionFactory, alert_id: int, post_id: int, t: float) -> None:
    offer = await pending_offer(session_factory, alert_id)
    assert offer is not None and offer.post_id == post_id
    async with unit_of_work(session_factory) as session:
        await actions.accept(session, offer.id, post_id, "post:x", now=at(t))


async def _reasons(session_factory: SessionFactory, alert_id: int) -> list[str]:
    async with session_factory() as session:
        return list(
            await session.scalars(
                select(AlertAudit.reason)
                .where(AlertAudit.alert_id == alert_id)
                .order_by(AlertAudit.id)
            )
        )


async def _drill_held_by_near(session_factory: SessionFactory) -> tuple[dict[str, int], int]:
    """NEAR (100 m) accepts a drill; FAR (3 km) stays available."""
    posts = await make_posts(session_factory, ("NEAR", 0, 100), ("FAR", 0, 3_000))
    drill_id = await press(session_factory, category="intrusion", drill=True)
    await dispatcher(session_factory).step(now=at(0))
    assert await offered_to(session_factory, drill_id) == "NEAR"
    await _accept(session_factory, drill_id, posts["NEAR"], 1)
    assert (await get_post(session_factory, posts["NEAR"])).status == "busy"
    return posts, drill_id


async def test_a_real_offer_withdraws_the_pending_drill_offer(
    session_factory: SessionFactory,
) -> None:
    posts = await make_posts(session_factory, ("NEAR", 0, 100), ("FAR", 0, 3_000))
    engine = dispatcher(session_factory)
    drill_id = await press(session_factory, category="intrusion", drill=True)
    await engine.step(now=at(0))
    assert await offered_to(session_factory, drill_id) == "NEAR"

    real_id = await press(session_factory, category="panic", north_m=50, opened_at=at(5))
    await engine.step(now=at(5))

    assert await offered_to(session_factory, real_id) == "NEAR"
    drill_offers = await offers_of(session_factory, drill_id)
    assert [(o.post_id, o.state) for o in drill_offers] == [
        (posts["NEAR"], "withdrawn"),
        (posts["FAR"], "pending"),
    ]
    assert drill_offers[0].reason == PREEMPTED
    assert await audit_of(session_factory, drill_id) == [
        ("new", "offered"),
        ("offered", "new"),
        ("new", "offered"),
    ]
    assert (await _reasons(session_factory, drill_id))[1] == PREEMPTED
    # A withdraw is no refusal: the drill's allowance is untouched.
    assert (await get_alert(session_factory, drill_id)).refusal_count == 0
    await assert_invariants(session_factory)


@pytest.mark.parametrize("arrived", [False, True], ids=["accepted", "on_scene"])
async def test_accepting_a_real_alert_sends_the_held_drill_back_to_new(
    session_factory: SessionFactory, arrived: bool
) -> None:
    posts, drill_id = await _drill_held_by_near(session_factory)
    if arrived:
        async with unit_of_work(session_factory) as session:
            await actions.arrive(session, drill_id, posts["NEAR"], "post:x", now=at(2))
    engine = dispatcher(session_factory)

    real_id = await press(session_factory, category="panic", opened_at=at(10))
    await engine.step(now=at(10))
    # Eligible as if available, and nearest: the busy post is asked, the drill untouched yet.
    assert await offered_to(session_factory, real_id) == "NEAR"
    drill = await get_alert(session_factory, drill_id)
    assert (drill.state, drill.post_id) == ("on_scene" if arrived else "accepted", posts["NEAR"])
    await assert_invariants(session_factory)

    await _accept(session_factory, real_id, posts["NEAR"], 12)

    real = await get_alert(session_factory, real_id)
    assert (real.state, real.post_id) == ("accepted", posts["NEAR"])
    held_from = "on_scene" if arrived else "accepted"
    drill_audit = await audit_of(session_factory, drill_id)
    assert (held_from, "new") in drill_audit
    assert drill_audit[-1] == ("new", "offered")  # on at once to the next post
    assert (await _reasons(session_factory, drill_id))[-2].startswith(PREEMPTED)
    assert await offered_to(session_factory, drill_id) == "FAR"
    assert (await get_post(session_factory, posts["NEAR"])).status == "busy"
    await assert_invariants(session_factory)


async def test_a_pre_empted_drill_with_no_other_post_is_escalated(
    session_factory: SessionFactory,
) -> None:
    posts = await make_posts(session_factory, ("ONLY", 0, 100))
    engine = dispatcher(session_factory)
    drill_id = await press(session_factory, category="fire", drill=True)
    await engine.step(now=at(0))
    await _accept(session_factory, drill_id, posts["ONLY"], 1)
    real_id = await press(session_factory, category="medical", opened_at=at(3))
    await engine.step(now=at(3))
    await _accept(session_factory, real_id, posts["ONLY"], 4)
    assert (await get_alert(session_factory, drill_id)).state == "escalated"
    assert (await audit_of(session_factory, drill_id))[-2:] == [
        ("accepted", "new"),
        ("new", "escalated"),
    ]
    await assert_invariants(session_factory)


async def test_declining_the_real_offer_leaves_the_drill_where_it_was(
    session_factory: SessionFactory,
) -> None:
    posts, drill_id = await _drill_held_by_near(session_factory)
    real_id = await press(session_factory, category="panic", opened_at=at(10))
    await dispatcher(session_factory).step(now=at(10))
    offer = await pending_offer(session_factory, real_id)
    assert offer is not None
    async with unit_of_work(session_factory) as session:
        await actions.decline(session, offer.id, posts["NEAR"], "busy", "post:x", now=at(11))
    drill = await get_alert(session_factory, drill_id)
    assert (drill.state, drill.post_id) == ("accepted", posts["NEAR"])
    assert await offered_to(session_factory, real_id) == "FAR"
    await assert_invariants(session_factory)


async def test_cancelling_the_real_offer_leaves_the_drill_holder_busy(
    session_factory: SessionFactory,
) -> None:
    """Freeing a post that lost its real offer must not make it available while it still
    holds its accepted drill (it would be offered a second alert)."""
    posts, drill_id = await _drill_held_by_near(session_factory)
    real_id = await press(session_factory, category="panic", opened_at=at(10))
    await dispatcher(session_factory).step(now=at(10))
    assert await offered_to(session_factory, real_id) == "NEAR"
    async with unit_of_work(session_factory) as session:
        await actions.cancel(session, real_id, "caller called back", "user:disp", now=at(11))
    drill = await get_alert(session_factory, drill_id)
    assert (drill.state, drill.post_id) == ("accepted", posts["NEAR"])
    assert (await get_post(session_factory, posts["NEAR"])).status == "busy"
    await assert_invariants(session_factory)


async def test_a_post_holding_a_drill_is_never_offered_another_drill(
    session_factory: SessionFactory,
) -> None:
    posts = await make_posts(session_factory, ("ONLY", 0, 100))
    engine = dispatcher(session_factory)
    first = await press(session_factory, category="panic", drill=True)
    await engine.step(now=at(0))
    await _accept(session_factory, first, posts["ONLY"], 1)
    second = await press(session_factory, category="fire", drill=True, opened_at=at(2))
    await engine.step(now=at(2))
    assert (await get_alert(session_factory, second)).state == "escalated"
    async with unit_of_work(session_factory) as session:
        with pytest.raises(Conflict):
            await actions.assign(session, second, posts["ONLY"], "console", now=at(3))


async def test_a_dispatcher_may_assign_a_real_alert_to_a_post_holding_a_drill(
    session_factory: SessionFactory,
) -> None:
    posts = await make_posts(session_factory, ("ONLY", 0, 100))
    engine = dispatcher(session_factory)
    drill_id = await press(session_factory, category="panic", drill=True)
    await engine.step(now=at(0))
    await _accept(session_factory, drill_id, posts["ONLY"], 1)
    # Out of reach of automatic dispatch (15 km): only a dispatcher sends ONLY there.
    real_id = await press(session_factory, category="panic", north_m=15_000, opened_at=at(2))
    await engine.step(now=at(2))
    assert (await get_alert(session_factory, real_id)).state == "escalated"
    async with unit_of_work(session_factory) as session:
        await actions.assign(session, real_id, posts["ONLY"], "console", now=at(3))
    await _accept(session_factory, real_id, posts["ONLY"], 4)
    assert (await get_alert(session_factory, real_id)).post_id == posts["ONLY"]
    assert (await get_alert(session_factory, drill_id)).state == "escalated"
    await assert_invariants(session_factory)


async def test_an_escalated_real_alert_reaches_a_drill_holder_whose_pause_ends(
    session_factory: SessionFactory,
) -> None:
    """The rounds of an escalated alert count a post holding a drill as eligible."""
    posts = await make_posts(session_factory, ("ONLY", 0, 100))
    engine = dispatcher(session_factory)
    drill_id = await press(session_factory, category="panic", drill=True)
    await engine.step(now=at(0))
    await _accept(session_factory, drill_id, posts["ONLY"], 1)
    real_id = await press(session_factory, category="panic", opened_at=at(2))
    await engine.step(now=at(2))
    assert await offered_to(session_factory, real_id) == "ONLY"
    await engine.step(now=at(32))  # no answer: expired, and nobody else
    assert (await get_alert(session_factory, real_id)).state == "escalated"
    await engine.step(now=at(150))  # 118 s after the expiry: still paused
    assert await offered_to(session_factory, real_id) is None
    await engine.step(now=at(153))  # the 2 min pause is over
    assert await offered_to(session_factory, real_id) == "ONLY"
    assert (await audit_of(session_factory, real_id))[-1] == ("escalated", "offered")
    await assert_invariants(session_factory)


async def test_a_drill_holder_reporting_in_is_served_a_waiting_real_alert(
    session_factory: SessionFactory,
) -> None:
    posts, _drill_id = await _drill_held_by_near(session_factory)
    async with unit_of_work(session_factory) as session:
        far = await session.get(Post, posts["FAR"])
        assert far is not None
        far.status = "off_duty"
        near = await session.get(Post, posts["NEAR"])
        assert near is not None
        near.location_at = at(-400)  # stale: not eligible until it reports in
    real_id = await press(session_factory, category="panic", opened_at=at(10))
    await dispatcher(session_factory).step(now=at(10))
    assert (await get_alert(session_factory, real_id)).state == "escalated"
    async with unit_of_work(session_factory) as session:
        await duty.report_location(session, posts["NEAR"], *point(0, 100), None)
    assert await offered_to(session_factory, real_id) == "NEAR"
    await assert_invariants(session_factory)


# --- the ops trail ---------------------------------------------------------------------------


def _trail(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "alertnet.alerts.state" and record.levelno == logging.INFO
    ]


async def test_every_transition_is_one_info_line(
    session_factory: SessionFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="alertnet.alerts.state")
    posts, drill_id = await _drill_held_by_near(session_factory)
    real_id = await press(session_factory, category="panic", opened_at=at(10))
    caplog.clear()
    engine = dispatcher(session_factory)
    await engine.step(now=at(10))
    await _accept(session_factory, real_id, posts["NEAR"], 11)

    lines = _trail(caplog)
    expected = [
        f"alert {real_id} panic mahalla=-: new → offered by dispatch (nearest eligible post NEAR",
        f"alert {drill_id} intrusion mahalla=-: accepted → new by dispatch "
        f"({PREEMPTED} (alert {real_id}))",
        f"alert {real_id} panic mahalla=-: offered → accepted by post:x (accepted by NEAR)",
        f"alert {drill_id} intrusion mahalla=-: new → offered by dispatch (nearest eligible "
        "post FAR",
    ]
    assert len(lines) == len(expected), lines
    for line, start in zip(lines, expected, strict=True):
        assert line.startswith(start), (line, start)
    # One line per audit row: the trail and the audit trail agree.
    async with session_factory() as session:
        rows = (
            await session.execute(
                select(AlertAudit.alert_id, AlertAudit.from_state, AlertAudit.to_state)
                .where(AlertAudit.at >= at(10))
                .order_by(AlertAudit.id)
            )
        ).all()
    assert [
        f"alert {a} " in line and f"{f} → {t}" in line
        for (a, f, t), line in zip(rows, lines, strict=True)
    ] == [True] * len(lines)


async def test_an_alert_opened_by_a_press_starts_the_trail(
    api: AppClient, session_factory: SessionFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """The intake path (a real frame through the pipeline) logs the opening too, with the
    mahalla's name."""
    caplog.set_level(logging.INFO, logger="alertnet.alerts.state")
    key, eui = bytes(range(16)), "70b3d57ed0007777"
    async with unit_of_work(session_factory) as session:
        chorsu = await create_mahalla(session, name="Chorsu", risk="red")
        await create_device(session, eui=eui, key=key, mahalla_id=chorsu.id)
    frame = Uplink.build(key, eui, 5, EventCode.FIRE).to_bytes()
    assert (await api.runtime.pipeline.submit(RawUplink(frame, Transport.HTTP))).accepted
    opened = [line for line in _trail(caplog) if "(opened)" in line]
    assert len(opened) == 1, _trail(caplog)
    assert opened[0].endswith(
        f"fire mahalla=Chorsu: (opened) → new by device:{eui} (fire press, counter 5)"
    )
    alert_id = int(opened[0].split()[1])
    # No post anywhere: the engine escalates it, and says so on the trail.
    await eventually(
        lambda: any(
            line.startswith(f"alert {alert_id} fire mahalla=Chorsu: new → escalated by dispatch")
            for line in _trail(caplog)
        ),
        awaiting="the escalation on the ops trail",
    )

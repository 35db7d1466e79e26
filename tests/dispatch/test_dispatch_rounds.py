"""DESIGN §4 fair dispatch: refusal pauses instead of "never again", and escalated rounds.

A post that declined an alert is not asked it again for 10 min, one whose offer of it expired
for 2 min; a dispatcher's withdraw pauses nothing. An escalated alert is offered in rounds, one
eligible post per round, and a refusal in a round returns it to ``escalated`` at once.
"""

from __future__ import annotations

import pytest

from alertnet.db import unit_of_work
from alertnet.dispatch import actions, duty
from alertnet.dispatch.policy import DEFAULT_POLICY, DispatchPolicy
from alertnet.models import Post

from .helpers import (
    SessionFactory,
    assert_invariants,
    at,
    audit_of,
    dispatcher,
    get_alert,
    make_posts,
    offered_to,
    offers_of,
    pending_offer,
    press,
)


def test_pauses_are_named_policy_values() -> None:
    assert DEFAULT_POLICY.decline_pause_s == 600
    assert DEFAULT_POLICY.expiry_pause_s == 120
    with pytest.raises(ValueError):
        DispatchPolicy(expiry_pause_s=-1)


async def _decline(session_factory: SessionFactory, alert_id: int, post_id: int, t: float) -> None:
    offer = await pending_offer(session_factory, alert_id)
    assert offer is not None and offer.post_id == post_id
    async with unit_of_work(session_factory) as session:
        await actions.decline(session, offer.id, post_id, "busy", "post:x", now=at(t))


async def _fresh_fix(session_factory: SessionFactory, post_id: int, t: float) -> None:
    """The post reports its (unchanged) position at ``t``."""
    async with unit_of_work(session_factory) as session:
        post = await session.get(Post, post_id)
        assert post is not None
        post.location_at = at(t)


async def test_escalated_panic_is_reoffered_when_an_expiry_pause_ends(
    session_factory: SessionFactory,
) -> None:
    """Issue 15: a real panic sat escalated while the nearest free post, which had only let an
    earlier offer expire, was never asked again."""
    await make_posts(session_factory, ("NEAR", 0, 100))
    alert_id = await press(session_factory, category="panic")
    engine = dispatcher(session_factory)
    await engine.step(now=at(0))
    assert await offered_to(session_factory, alert_id) == "NEAR"

    await engine.step(now=at(30))  # no answer: a refusal, and no other post
    alert = await get_alert(session_factory, alert_id)
    assert (alert.state, alert.refusal_count) == ("escalated", 1)

    await engine.step(now=at(149))  # still within the 2 min pause after the expiry at 30 s
    assert (await get_alert(session_factory, alert_id)).state == "escalated"
    assert await offered_to(session_factory, alert_id) is None

    await engine.step(now=at(150))  # the pause is over: a new round asks NEAR again
    assert await offered_to(session_factory, alert_id) == "NEAR"
    assert [o.state for o in await offers_of(session_factory, alert_id)] == ["expired", "pending"]
    assert (await audit_of(session_factory, alert_id))[-1] == ("escalated", "offered")
    await assert_invariants(session_factory)


async def test_decliner_is_not_reasked_for_ten_minutes(session_factory: SessionFactory) -> None:
    posts = await make_posts(session_factory, ("A", 0, 100))
    alert_id = await press(session_factory)
    engine = dispatcher(session_factory)
    await engine.step(now=at(0))
    await _decline(session_factory, alert_id, posts["A"], 5)
    assert (await get_alert(session_factory, alert_id)).state == "escalated"

    for moment in (6, 150, 604):  # an expiry pause would be over by 150 s: a decline's is not
        await _fresh_fix(session_factory, posts["A"], moment)
        await engine.step(now=at(moment))
        assert await offered_to(session_factory, alert_id) is None
    await engine.step(now=at(605))
    assert await offered_to(session_factory, alert_id) == "A"
    await assert_invariants(session_factory)


async def test_a_decliner_is_passed_over_only_for_that_alert(
    session_factory: SessionFactory,
) -> None:
    posts = await make_posts(session_factory, ("A", 0, 100))
    first = await press(session_factory)
    engine = dispatcher(session_factory)
    await engine.step(now=at(0))
    await _decline(session_factory, first, posts["A"], 5)
    second = await press(session_factory, opened_at=at(6))
    await engine.step(now=at(6))
    assert await offered_to(session_factory, second) == "A"
    assert (await get_alert(session_factory, first)).state == "escalated"


async def test_a_pause_for_one_escalated_alert_does_not_hide_another(
    session_factory: SessionFactory,
) -> None:
    posts = await make_posts(session_factory, ("P", 0, 100))
    declined = await press(session_factory)
    other = await press(session_factory, east_m=500)
    engine = dispatcher(session_factory)
    await engine.step(now=at(0))
    assert await offered_to(session_factory, declined) == "P"
    assert (await get_alert(session_factory, other)).state == "escalated"
    await _decline(session_factory, declined, posts["P"], 5)
    await engine.step(now=at(6))
    assert await offered_to(session_factory, other) == "P"
    assert (await get_alert(session_factory, declined)).state == "escalated"
    await assert_invariants(session_factory)


async def test_withdraw_causes_no_pause(session_factory: SessionFactory) -> None:
    posts = await make_posts(session_factory, ("A", 0, 100), ("B", 0, 2_000))
    alert_id = await press(session_factory)
    engine = dispatcher(session_factory)
    await engine.step(now=at(0))
    offer = await pending_offer(session_factory, alert_id)
    assert offer is not None and offer.post_id == posts["A"]
    async with unit_of_work(session_factory) as session:
        await actions.withdraw(session, offer.id, "user:disp", now=at(3))
    assert await offered_to(session_factory, alert_id) == "B"  # this move passes A over

    await _decline(session_factory, alert_id, posts["B"], 8)
    # The withdraw was no refusal and paused nothing: A is asked at once.
    assert await offered_to(session_factory, alert_id) == "A"
    alert = await get_alert(session_factory, alert_id)
    assert (alert.state, alert.refusal_count) == ("offered", 1)
    await assert_invariants(session_factory)


async def test_withdrawn_from_the_only_post_it_is_asked_again_next_round(
    session_factory: SessionFactory,
) -> None:
    posts = await make_posts(session_factory, ("ONLY", 0, 100))
    alert_id = await press(session_factory)
    engine = dispatcher(session_factory)
    await engine.step(now=at(0))
    offer = await pending_offer(session_factory, alert_id)
    assert offer is not None
    async with unit_of_work(session_factory) as session:
        await actions.withdraw(session, offer.id, "user:disp", now=at(3))
    alert = await get_alert(session_factory, alert_id)
    assert (alert.state, alert.refusal_count) == ("escalated", 0)
    await engine.step(now=at(4))
    again = await pending_offer(session_factory, alert_id)
    assert again is not None and again.post_id == posts["ONLY"] and again.id != offer.id


async def test_escalated_rounds_offer_one_post_and_a_refusal_returns_it(
    session_factory: SessionFactory,
) -> None:
    alert_id = await press(session_factory)
    engine = dispatcher(session_factory)
    await engine.step(now=at(0))
    assert (await get_alert(session_factory, alert_id)).state == "escalated"

    posts = await make_posts(session_factory, ("X", 0, 100), ("Y", 0, 200), location_at=at(10))
    await engine.step(now=at(10))  # a round: one post, the nearest
    assert [o.post_id for o in await offers_of(session_factory, alert_id)] == [posts["X"]]

    await _decline(session_factory, alert_id, posts["X"], 15)
    alert = await get_alert(session_factory, alert_id)
    # Back to escalated at once, though Y is eligible and only one refusal was counted.
    assert (alert.state, alert.refusal_count) == ("escalated", 1)
    assert await offered_to(session_factory, alert_id) is None
    assert (await audit_of(session_factory, alert_id))[-1] == ("offered", "escalated")

    await engine.step(now=at(16))  # the next round
    assert await offered_to(session_factory, alert_id) == "Y"
    await engine.step(now=at(46))  # Y lets it expire: escalated; X and Y are both paused
    alert = await get_alert(session_factory, alert_id)
    assert (alert.state, alert.refusal_count) == ("escalated", 2)
    assert await offered_to(session_factory, alert_id) is None

    await engine.step(now=at(166))  # Y's 2 min pause is over, X's 10 min are not
    assert await offered_to(session_factory, alert_id) == "Y"
    await assert_invariants(session_factory)


async def test_no_drill_for_a_post_eligible_for_a_waiting_real_alert(
    session_factory: SessionFactory,
) -> None:
    posts = await make_posts(session_factory, ("P", 0, 100))
    drill = await press(session_factory, category="panic", drill=True)
    real = await press(session_factory, category="tamper", east_m=3_000)
    engine = dispatcher(session_factory)
    await engine.step(now=at(0))
    # The drill ranks higher, but the post is owed the real alert.
    assert await offered_to(session_factory, real) == "P"
    assert (await get_alert(session_factory, drill)).state == "escalated"

    # Once the post declined the real alert it is paused for it, and may train.
    await _decline(session_factory, real, posts["P"], 5)
    await engine.step(now=at(6))
    assert (await get_alert(session_factory, real)).state == "escalated"
    assert await offered_to(session_factory, drill) == "P"
    await assert_invariants(session_factory)


async def test_post_coming_free_takes_a_real_alert_before_a_drill(
    session_factory: SessionFactory,
) -> None:
    posts = await make_posts(session_factory, ("LATE", 0, 100), status="off_duty")
    drill = await press(session_factory, category="panic", drill=True, opened_at=at(-20))
    real = await press(session_factory, category="tamper", opened_at=at(-10))
    engine = dispatcher(session_factory)
    await engine.step(now=at(0))
    async with unit_of_work(session_factory) as session:
        post = await session.get(Post, posts["LATE"])
        assert post is not None
        post.status = "available"
        await duty.post_available(session, posts["LATE"], now=at(5))
    assert await offered_to(session_factory, real) == "LATE"
    assert (await get_alert(session_factory, drill)).state == "escalated"
    await assert_invariants(session_factory)


async def test_drill_goes_to_a_post_out_of_reach_of_the_real_alert(
    session_factory: SessionFactory,
) -> None:
    await make_posts(session_factory, ("NORTH", 9_000, 0), ("SOUTH", -9_000, 0))
    drill = await press(session_factory, category="panic", drill=True)
    real = await press(session_factory, category="tamper", north_m=15_000)
    await dispatcher(session_factory).step(now=at(0))
    assert await offered_to(session_factory, real) == "NORTH"
    assert await offered_to(session_factory, drill) == "SOUTH"

"""The tablet's and the console's actions: their rules, their refusals, and what they free."""

from __future__ import annotations

import pytest

from alertnet.alerts.state import IllegalTransition
from alertnet.db import unit_of_work
from alertnet.dispatch import actions, duty, views
from alertnet.errors import Conflict, Forbidden, InvalidInput, NotFound
from alertnet.models import Post
from alertnet.protocol import AckState

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
    press,
)


async def _offered(
    session_factory: SessionFactory, *posts: tuple[str, float, float]
) -> tuple[int, dict[str, int]]:
    ids = await make_posts(session_factory, *posts)
    alert_id = await press(session_factory)
    await dispatcher(session_factory).step(now=at(0))
    return alert_id, ids


async def _accepted(session_factory: SessionFactory) -> tuple[int, dict[str, int]]:
    alert_id, ids = await _offered(session_factory, ("A", 0, 100), ("B", 0, 2_000))
    offer = await pending_offer(session_factory, alert_id)
    assert offer is not None
    async with unit_of_work(session_factory) as session:
        await actions.accept(session, offer.id, ids["A"], "post:A", now=at(1))
    return alert_id, ids


async def test_accept_rules(session_factory: SessionFactory) -> None:
    alert_id, ids = await _offered(session_factory, ("A", 0, 100), ("B", 0, 2_000))
    offer = await pending_offer(session_factory, alert_id)
    assert offer is not None
    with pytest.raises(Forbidden):
        async with unit_of_work(session_factory) as session:
            await actions.accept(session, offer.id, ids["B"], "post:B", now=at(1))
    with pytest.raises(Conflict, match="expired"):
        async with unit_of_work(session_factory) as session:
            await actions.accept(session, offer.id, ids["A"], "post:A", now=at(30))
    with pytest.raises(NotFound):
        async with unit_of_work(session_factory) as session:
            await actions.accept(session, 999_999, ids["A"], "post:A", now=at(1))
    async with unit_of_work(session_factory) as session:
        notices = await actions.accept(session, offer.id, ids["A"], "post:A", now=at(29))
    assert [n.state for n in notices] == [AckState.ACCEPTED]
    with pytest.raises(Conflict, match="accepted"):  # a second tap
        async with unit_of_work(session_factory) as session:
            await actions.accept(session, offer.id, ids["A"], "post:A", now=at(29))
    await assert_invariants(session_factory)


async def test_decline_of_an_answered_offer_is_a_conflict(session_factory: SessionFactory) -> None:
    alert_id, ids = await _accepted(session_factory)
    (offer,) = await offers_of(session_factory, alert_id)
    with pytest.raises(Conflict):
        async with unit_of_work(session_factory) as session:
            await actions.decline(session, offer.id, ids["A"], "", "post:A", now=at(2))


async def test_arrive_and_close_rules(session_factory: SessionFactory) -> None:
    alert_id, ids = await _offered(session_factory, ("A", 0, 100), ("B", 0, 2_000))
    with pytest.raises(Forbidden):  # offered, not accepted yet: A does not hold it
        async with unit_of_work(session_factory) as session:
            await actions.arrive(session, alert_id, ids["A"], "post:A", now=at(1))
    with pytest.raises(IllegalTransition):
        async with unit_of_work(session_factory) as session:
            await actions.close(session, alert_id, None, "other", None, "console", now=at(1))
    offer = await pending_offer(session_factory, alert_id)
    assert offer is not None
    async with unit_of_work(session_factory) as session:
        await actions.accept(session, offer.id, ids["A"], "post:A", now=at(1))
    with pytest.raises(Forbidden):
        async with unit_of_work(session_factory) as session:
            await actions.arrive(session, alert_id, ids["B"], "post:B", now=at(2))
    with pytest.raises(InvalidInput):
        async with unit_of_work(session_factory) as session:
            await actions.close(session, alert_id, ids["A"], "solved", None, "post:A", now=at(2))
    # Closing straight from accepted is allowed (handed over before arriving).
    async with unit_of_work(session_factory) as session:
        await actions.close(
            session, alert_id, ids["A"], "handed_over", "ambulance", "post:A", now=at(3)
        )
    with pytest.raises(IllegalTransition):
        async with unit_of_work(session_factory) as session:
            await actions.arrive(session, alert_id, ids["A"], "post:A", now=at(4))
    alert = await get_alert(session_factory, alert_id)
    assert (alert.state, alert.on_scene_at) == ("closed", None)
    await assert_invariants(session_factory)


async def test_arrive_tells_a_post_nothing_about_alerts_it_does_not_hold(
    session_factory: SessionFactory,
) -> None:
    """Issue 12: ``arrive`` by a post that does not hold the alert revealed its state (409
    "alert N is closed ..."); ownership is now checked first, the same way for every alert."""
    alert_id, ids = await _offered(session_factory, ("A", 0, 100), ("B", 0, 2_000))
    offer = await pending_offer(session_factory, alert_id)
    assert offer is not None
    async with unit_of_work(session_factory) as session:
        await actions.accept(session, offer.id, ids["A"], "post:A", now=at(1))
    async with unit_of_work(session_factory) as session:
        await actions.close(session, alert_id, ids["A"], "other", None, "post:A", now=at(2))
    answers = []
    for probed in (alert_id, alert_id + 1_000):  # a closed alert of another post; no alert
        with pytest.raises(Forbidden) as refused:
            async with unit_of_work(session_factory) as session:
                await actions.arrive(session, probed, ids["B"], "post:B", now=at(3))
        answers.append(str(refused.value).replace(str(probed), "N"))
    assert answers[0] == answers[1]
    assert "closed" not in answers[0]


async def test_assign_a_post_that_is_not_the_nearest(session_factory: SessionFactory) -> None:
    alert_id, ids = await _offered(session_factory, ("A", 0, 100), ("B", 0, 8_000))
    assert await offered_to(session_factory, alert_id) == "A"
    async with unit_of_work(session_factory) as session:
        notices = await actions.assign(session, alert_id, ids["B"], "user:disp", now=at(5))
    assert notices == []
    assert await offered_to(session_factory, alert_id) == "B"
    history = await offers_of(session_factory, alert_id)
    assert [(o.post_id, o.state) for o in history] == [
        (ids["A"], "withdrawn"),
        (ids["B"], "pending"),
    ]
    assert history[1].deadline_at == at(35)
    assert history[1].distance_m == pytest.approx(8_000, rel=1e-3)
    # A withdrawn offer is not a refusal.
    assert (await get_alert(session_factory, alert_id)).refusal_count == 0
    # Assigning again to the same post changes nothing.
    async with unit_of_work(session_factory) as session:
        await actions.assign(session, alert_id, ids["B"], "user:disp", now=at(6))
    assert len(await offers_of(session_factory, alert_id)) == 2
    await assert_invariants(session_factory)


async def test_assign_an_escalated_alert_to_a_post_without_a_fix(
    session_factory: SessionFactory,
) -> None:
    async with unit_of_work(session_factory) as session:
        dark = Post(callsign="DARK", status="off_duty")
        session.add(dark)
        await session.flush()
        ids = {"DARK": dark.id}
    alert_id = await press(session_factory)
    await dispatcher(session_factory).step(now=at(0))
    assert (await get_alert(session_factory, alert_id)).state == "escalated"
    async with unit_of_work(session_factory) as session:
        notices = await actions.assign(session, alert_id, ids["DARK"], "user:disp", now=at(1))
    assert [n.state for n in notices] == [AckState.DISPATCHED]
    offer = await pending_offer(session_factory, alert_id)
    assert offer is not None and offer.distance_m < 0
    views = await _offer_view(session_factory, offer.id)
    assert views["distance_m"] is None
    await assert_invariants(session_factory)


async def _offer_view(session_factory: SessionFactory, offer_id: int) -> dict[str, object]:
    async with session_factory() as session:
        return (await views.offer_views(session, [offer_id]))[offer_id]


async def test_assign_takes_a_post_away_from_its_pending_offer(
    session_factory: SessionFactory,
) -> None:
    ids = await make_posts(session_factory, ("A", 0, 100), ("B", 0, 3_000))
    first = await press(session_factory)
    second = await press(session_factory, opened_at=at(1), east_m=5_000)
    await dispatcher(session_factory).step(now=at(2))
    assert await offered_to(session_factory, first) == "A"
    assert await offered_to(session_factory, second) == "B"
    async with unit_of_work(session_factory) as session:
        await actions.assign(session, second, ids["A"], "user:disp", now=at(3))
    assert await offered_to(session_factory, second) == "A"
    # The displaced alert went on to the next post it had not been offered to.
    assert await offered_to(session_factory, first) == "B"
    await assert_invariants(session_factory)


async def test_assign_refuses_a_post_holding_an_alert(session_factory: SessionFactory) -> None:
    _, ids = await _accepted(session_factory)
    other = await press(session_factory, opened_at=at(2))
    await dispatcher(session_factory).step(now=at(3))
    with pytest.raises(Conflict):
        async with unit_of_work(session_factory) as session:
            await actions.assign(session, other, ids["A"], "user:disp", now=at(4))
    await assert_invariants(session_factory)


async def test_assign_reassigns_an_accepted_alert(session_factory: SessionFactory) -> None:
    alert_id, ids = await _accepted(session_factory)
    async with unit_of_work(session_factory) as session:
        notices = await actions.assign(session, alert_id, ids["B"], "user:disp", now=at(10))
    assert notices == []  # the device keeps "accepted": help is still on the way
    alert = await get_alert(session_factory, alert_id)
    assert (alert.state, alert.post_id) == ("offered", None)
    assert await offered_to(session_factory, alert_id) == "B"
    assert (await get_post(session_factory, ids["A"])).status == "available"
    assert (await audit_of(session_factory, alert_id))[-1] == ("accepted", "offered")
    await assert_invariants(session_factory)


async def test_assign_refuses_on_scene_and_finished_alerts(session_factory: SessionFactory) -> None:
    alert_id, ids = await _accepted(session_factory)
    async with unit_of_work(session_factory) as session:
        await actions.arrive(session, alert_id, ids["A"], "post:A", now=at(5))
    with pytest.raises(IllegalTransition):
        async with unit_of_work(session_factory) as session:
            await actions.assign(session, alert_id, ids["B"], "user:disp", now=at(6))
    with pytest.raises(NotFound):
        async with unit_of_work(session_factory) as session:
            await actions.assign(session, 987_654, ids["B"], "user:disp", now=at(6))


async def test_withdraw_sends_the_alert_to_the_next_post(session_factory: SessionFactory) -> None:
    alert_id, _ = await _offered(session_factory, ("A", 0, 100), ("B", 0, 2_000))
    offer = await pending_offer(session_factory, alert_id)
    assert offer is not None
    async with unit_of_work(session_factory) as session:
        await actions.withdraw(session, offer.id, "user:disp", now=at(3))
    assert await offered_to(session_factory, alert_id) == "B"
    assert (await get_alert(session_factory, alert_id)).refusal_count == 0
    with pytest.raises(Conflict):
        async with unit_of_work(session_factory) as session:
            await actions.withdraw(session, offer.id, "user:disp", now=at(4))
    await assert_invariants(session_factory)


async def test_cancel_withdraws_the_offer(session_factory: SessionFactory) -> None:
    alert_id, _ = await _offered(session_factory, ("A", 0, 100))
    with pytest.raises(InvalidInput):
        async with unit_of_work(session_factory) as session:
            await actions.cancel(session, alert_id, "  ", "user:disp", now=at(1))
    async with unit_of_work(session_factory) as session:
        notices = await actions.cancel(
            session, alert_id, "caller confirmed by phone", "user:disp", now=at(1)
        )
    assert [n.state for n in notices] == [AckState.CLOSED]
    alert = await get_alert(session_factory, alert_id)
    assert (alert.state, alert.closed_at) == ("cancelled", at(1))
    (offer,) = await offers_of(session_factory, alert_id)
    assert offer.state == "withdrawn"
    with pytest.raises(IllegalTransition):
        async with unit_of_work(session_factory) as session:
            await actions.cancel(session, alert_id, "again", "user:disp", now=at(2))
    await assert_invariants(session_factory)


async def test_cancel_frees_the_post_which_takes_the_next_alert(
    session_factory: SessionFactory,
) -> None:
    alert_id, ids = await _accepted(session_factory)
    # B is the only other post; make it unavailable so the waiting alert needs A.
    async with unit_of_work(session_factory) as session:
        post_b = await session.get(Post, ids["B"])
        assert post_b is not None
        post_b.status = "off_duty"
    waiting = await press(session_factory, opened_at=at(2))
    await dispatcher(session_factory).step(now=at(3))
    assert (await get_alert(session_factory, waiting)).state == "escalated"
    async with unit_of_work(session_factory) as session:
        await actions.cancel(session, alert_id, "duplicate", "user:disp", now=at(4))
    assert (await get_alert(session_factory, alert_id)).post_id == ids["A"]  # kept as history
    assert await offered_to(session_factory, waiting) == "A"
    await assert_invariants(session_factory)


async def test_post_going_off_duty_gives_its_offer_back(session_factory: SessionFactory) -> None:
    alert_id, ids = await _offered(session_factory, ("A", 0, 100), ("B", 0, 2_000))
    async with unit_of_work(session_factory) as session:
        await duty.post_unavailable(session, ids["A"], "post:A", now=at(2))
        post = await session.get(Post, ids["A"])
        assert post is not None
        post.status = "off_duty"
    assert await offered_to(session_factory, alert_id) == "B"
    assert (await get_alert(session_factory, alert_id)).refusal_count == 0
    await assert_invariants(session_factory)


async def test_post_holding_an_alert_cannot_go_off_duty(session_factory: SessionFactory) -> None:
    _, ids = await _accepted(session_factory)
    with pytest.raises(Conflict):
        async with unit_of_work(session_factory) as session:
            await duty.post_unavailable(session, ids["A"], "post:A", now=at(2))
            post = await session.get(Post, ids["A"])
            assert post is not None
            post.status = "off_duty"
    assert (await get_post(session_factory, ids["A"])).status == "busy"


async def test_offer_next_refuses_an_alert_that_is_not_waiting(
    session_factory: SessionFactory,
) -> None:
    alert_id, _ = await _accepted(session_factory)
    alert = await get_alert(session_factory, alert_id)
    with pytest.raises(IllegalTransition):
        async with unit_of_work(session_factory) as session:
            await actions.offer_next(session, alert, at(5))

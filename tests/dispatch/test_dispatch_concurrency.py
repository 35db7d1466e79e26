"""Two dispatch processes on one database, with tablets answering at the same time.

Each ``Dispatcher`` gets its own engine (its own connection pool), as two alertnet processes
would. Rounds of presses, concurrent passes and random answers (tablets and console). After
every round the safety invariants are checked (no alert with two pending offers, no post with
two alerts or two offers, offered ⇔ a pending offer, held ⇔ a busy post), and after one more
pass the liveness one (every open alert offered, held or escalated). At the end: no device
was told "dispatched" twice.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from alertnet.alerts.state import IllegalTransition
from alertnet.db import create_engine, create_session_factory, unit_of_work
from alertnet.dispatch import actions as dispatch_actions
from alertnet.dispatch import duty
from alertnet.dispatch.notifier import RecordingNotifier, StateNotice
from alertnet.errors import Conflict, Forbidden, NotFound
from alertnet.models import Alert, Offer, Post
from alertnet.protocol import AckState
from tests.support.factories import create_alert, create_device

from .helpers import SessionFactory, assert_invariants, at, dispatcher, make_posts, point

POSTS = 20


async def _press_many(
    session_factory: SessionFactory, rng: random.Random, count: int, now_s: float
) -> None:
    async with unit_of_work(session_factory) as session:
        for _ in range(count):
            lat, lon = point(rng.uniform(-3_000, 3_000), rng.uniform(-3_000, 3_000))
            device = await create_device(session, lat=lat, lon=lon)
            await create_alert(
                session,
                device,
                category=rng.choice(["panic", "fire", "medical", "intrusion", "tamper"]),
                opened_at=at(now_s),
                last_counter=rng.randrange(1, 1_000),
            )


async def _tablet_actions(
    session_factory: SessionFactory, rng: random.Random, now_s: float
) -> list[Callable[[AsyncSession], Awaitable[Sequence[StateNotice]]]]:
    """Answers the posts give this round, chosen from the current offers and alerts."""
    async with session_factory() as session:
        pending = (
            await session.execute(select(Offer.id, Offer.post_id).where(Offer.state == "pending"))
        ).all()
        held = (
            await session.execute(
                select(Alert.id, Alert.post_id, Alert.state).where(
                    Alert.state.in_(("accepted", "on_scene"))
                )
            )
        ).all()
        open_ids = list(
            await session.scalars(
                select(Alert.id).where(Alert.state.in_(("new", "offered", "accepted", "escalated")))
            )
        )
        post_ids = list(await session.scalars(select(Post.id)))
    now = at(now_s + rng.uniform(0, 5))
    actions: list[Callable[[AsyncSession], Awaitable[Sequence[StateNotice]]]] = []
    for offer_id, post_id in pending:
        roll = rng.random()
        if roll < 0.45:
            actions.append(
                lambda s, o=offer_id, p=post_id: dispatch_actions.accept(
                    s, o, p, f"post:{p}", now=now
                )
            )
        elif roll < 0.75:
            actions.append(
                lambda s, o=offer_id, p=post_id: dispatch_actions.decline(
                    s, o, p, "busy", f"post:{p}", now=now
                )
            )
        # else: silence, the deadline will decide
    for alert_id, post_id, state in held:
        if state == "accepted" and rng.random() < 0.6:
            actions.append(
                lambda s, a=alert_id, p=post_id: dispatch_actions.arrive(
                    s, a, p, f"post:{p}", now=now
                )
            )
        elif rng.random() < 0.5:
            actions.append(
                lambda s, a=alert_id, p=post_id: dispatch_actions.close(
                    s, a, p, "confirmed", None, f"post:{p}", now=now
                )
            )
    actions += _console_and_posts(rng, now, open_ids, post_ids)
    rng.shuffle(actions)
    return actions


def _console_and_posts(
    rng: random.Random, now: Any, open_ids: Sequence[int], post_ids: Sequence[int]
) -> list[Callable[[AsyncSession], Awaitable[Sequence[StateNotice]]]]:
    """Now and then the console assigns or cancels, and a post goes off duty or comes back."""
    actions: list[Callable[[AsyncSession], Awaitable[Sequence[StateNotice]]]] = []
    if open_ids and rng.random() < 0.5:
        alert_id, post_id = rng.choice(open_ids), rng.choice(post_ids)
        actions.append(lambda s: dispatch_actions.assign(s, alert_id, post_id, "console", now=now))
    if open_ids and rng.random() < 0.3:
        victim = rng.choice(open_ids)
        actions.append(
            lambda s: dispatch_actions.cancel(s, victim, "duplicate call", "console", now=now)
        )
    for post_id in rng.sample(list(post_ids), 2):
        if rng.random() < 0.5:

            async def off_duty(s: AsyncSession, p: int = post_id) -> Sequence[StateNotice]:
                # Give back the offer first, then change the row (see post_unavailable).
                notices = await duty.post_unavailable(s, p, f"post:{p}", now=now)
                await s.execute(
                    update(Post)
                    .where(Post.id == p, Post.status == "available")
                    .values(status="off_duty")
                )
                return notices

            actions.append(off_duty)
        else:

            async def on_duty(s: AsyncSession, p: int = post_id) -> Sequence[StateNotice]:
                await s.execute(
                    update(Post)
                    .where(Post.id == p, Post.status == "off_duty")
                    .values(status="available", location_at=now)
                )
                return await duty.post_available(s, p, now=now)

            actions.append(on_duty)
    return actions


async def test_two_dispatchers_never_double_offer(
    db_url: str, session_factory: SessionFactory
) -> None:
    on_postgres = db_url.startswith("postgresql")
    rounds, presses_per_round = (20, 12) if on_postgres else (6, 6)
    rng = random.Random(20300501)
    await make_posts(
        session_factory,
        *(
            (f"P{i:02d}", rng.uniform(-3_000, 3_000), rng.uniform(-3_000, 3_000))
            for i in range(POSTS)
        ),
    )
    engines = [create_engine(db_url), create_engine(db_url)]
    notifiers = [RecordingNotifier(), RecordingNotifier(), RecordingNotifier()]
    engines_dispatchers = [
        dispatcher(create_session_factory(engine), notifier, batch_size=8)
        for engine, notifier in zip(engines, notifiers, strict=False)
    ]
    tablets = dispatcher(session_factory, notifiers[2])
    refused = 0
    try:
        for round_no in range(rounds):
            now_s = round_no * 10.0
            await _press_many(session_factory, rng, presses_per_round, now_s)
            async with unit_of_work(session_factory) as session:  # tablets report positions
                await session.execute(update(Post).values(location_at=at(now_s)))
            actions = await _tablet_actions(session_factory, rng, now_s)

            async def answer(
                action: Callable[[AsyncSession], Awaitable[Sequence[StateNotice]]],
            ) -> None:
                nonlocal refused
                try:
                    await tablets.perform(action)
                except (Conflict, Forbidden, NotFound, IllegalTransition):
                    refused += 1  # answered too late: another process moved the alert first

            await asyncio.gather(
                engines_dispatchers[0].step(now=at(now_s)),
                engines_dispatchers[1].step(now=at(now_s)),
                *(answer(action) for action in actions),
            )
            # Safety holds at every moment. An alert can still be new here if an action that
            # was refused held its lock while both passes ran; the next pass takes it.
            await assert_invariants(session_factory, allow_new=True)
            await engines_dispatchers[round_no % 2].step(now=at(now_s + 1))
            await assert_invariants(session_factory)
        # Let everything still pending time out, with both processes competing for it.
        for extra in range(1, 8):
            final = at(rounds * 10.0 + extra * 31)
            async with unit_of_work(session_factory) as session:
                await session.execute(update(Post).values(location_at=final))
            await asyncio.gather(*(d.step(now=final) for d in engines_dispatchers))
            await assert_invariants(session_factory)
    finally:
        for engine in engines:
            await engine.dispose()

    dispatched = Counter(
        (n.device_id, n.counter)
        for notifier in notifiers
        for n in notifier.notices
        if n.state == AckState.DISPATCHED
    )
    assert dispatched and max(dispatched.values()) == 1
    async with session_factory() as session:
        by_state = dict(
            (await session.execute(select(Alert.state, func.count()).group_by(Alert.state))).all()
        )
        offer_states = dict(
            (await session.execute(select(Offer.state, func.count()).group_by(Offer.state))).all()
        )
    assert sum(by_state.values()) == rounds * presses_per_round
    # The run exercised every path: accepted, closed and escalated alerts; declined and
    # expired offers.
    assert by_state.get("closed", 0) > 0 and by_state.get("escalated", 0) > 0
    assert offer_states.get("accepted", 0) > 0
    assert offer_states.get("declined", 0) > 0 and offer_states.get("expired", 0) > 0
    # The engines did real work (which one wins a claim is up to the scheduler).
    assert notifiers[0].notices or notifiers[1].notices

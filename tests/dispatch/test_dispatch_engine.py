"""The dispatch loop: restart safety, surviving failures, retrying lost races, waking up."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from alertnet.config import Settings
from alertnet.db import create_engine, create_session_factory, is_retryable
from alertnet.dispatch import queue
from alertnet.dispatch.engine import Dispatcher
from alertnet.dispatch.notifier import RecordingNotifier, StateNotice
from alertnet.errors import Conflict
from alertnet.models import Offer, utcnow
from alertnet.protocol import AckState
from tests.support.polling import eventually

from .helpers import (
    SessionFactory,
    assert_invariants,
    at,
    dispatcher,
    get_alert,
    make_posts,
    offered_to,
    offers_of,
    pending_offer,
    press,
)


def _settings() -> Settings:
    return Settings(dispatch_tick_s=0.05)


async def test_restart_loses_no_deadline(db_url: str, session_factory: SessionFactory) -> None:
    """An offer made by one process is expired and re-offered exactly once by the next."""
    await make_posts(session_factory, ("FIRST", 0, 100), ("SECOND", 0, 700))
    alert_id = await press(session_factory)

    engine_a = create_engine(db_url)
    first = Dispatcher(create_session_factory(engine_a), _settings(), RecordingNotifier())
    await first.step(now=at(0))
    await engine_a.dispose()  # the process is gone: nothing of it remains but the rows
    assert await offered_to(session_factory, alert_id) == "FIRST"

    engine_b = create_engine(db_url)
    try:
        notifier = RecordingNotifier()
        second = Dispatcher(create_session_factory(engine_b), _settings(), notifier)
        await second.step(now=at(45))
        await second.step(now=at(46))  # a second pass must not offer it again
    finally:
        await engine_b.dispose()

    history = await offers_of(session_factory, alert_id)
    assert [o.state for o in history] == ["expired", "pending"]
    assert await offered_to(session_factory, alert_id) == "SECOND"
    assert history[1].offered_at == at(45)
    assert notifier.notices == []  # the device was told "dispatched" before the restart
    await assert_invariants(session_factory)


async def test_run_loop_wakes_offers_and_survives_failures(
    session_factory: SessionFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # run() uses the real clock: a fix and a press "now".
    await make_posts(session_factory, ("P", 0, 100), location_at=utcnow())
    alert_id = await press(session_factory, opened_at=utcnow())

    real = queue.expire_due
    failures = {"left": 2}

    async def flaky(*args: Any, **kwargs: Any) -> queue.BatchResult:
        if failures["left"]:
            failures["left"] -= 1
            raise RuntimeError("database hiccup")
        return await real(*args, **kwargs)

    monkeypatch.setattr(queue, "expire_due", flaky)
    notifier = RecordingNotifier()
    engine = Dispatcher(session_factory, _settings(), notifier, min_backoff_s=0.01)
    task = asyncio.create_task(engine.run())
    try:
        engine.wake()
        await eventually(
            lambda: notifier.notices, awaiting="a notice once the failing passes are retried"
        )
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert engine.errors == 2
    assert [n.state for n in notifier.notices] == [AckState.DISPATCHED]
    assert (await get_alert(session_factory, alert_id)).state == "offered"


async def test_integrity_error_in_a_pass_is_rolled_back_and_retried(
    session_factory: SessionFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    await make_posts(session_factory, ("P", 0, 100))
    alert_id = await press(session_factory)
    real = queue.dispatch_waiting
    calls = {"n": 0}

    async def racing(session: Any, *args: Any, **kwargs: Any) -> queue.BatchResult:
        calls["n"] += 1
        result = await real(session, *args, **kwargs)
        if calls["n"] == 1:
            # As if another process committed an offer first: the index fires at the end.
            raise IntegrityError("INSERT INTO offers", {}, Exception("uq_offers_pending_alert"))
        return result

    monkeypatch.setattr(queue, "dispatch_waiting", racing)
    notifier = RecordingNotifier()
    engine = dispatcher(session_factory, notifier)
    await engine.step(now=at(0))
    assert engine.retries == 1
    (offer,) = await offers_of(session_factory, alert_id)  # the first attempt left nothing
    assert offer.state == "pending"
    assert [n.state for n in notifier.notices] == [AckState.DISPATCHED]  # sent once, after commit


async def test_perform_turns_an_endless_race_into_a_conflict(
    session_factory: SessionFactory,
) -> None:
    engine = dispatcher(session_factory, max_attempts=2)

    async def always_races(session: Any) -> Sequence[StateNotice]:
        raise IntegrityError("UPDATE", {}, Exception("duplicate"))

    with pytest.raises(Conflict):
        await engine.perform(always_races)
    assert engine.retries == 1


async def test_notifier_failure_does_not_undo_or_stop(session_factory: SessionFactory) -> None:
    class Broken:
        async def notify(self, notices: Sequence[StateNotice]) -> None:
            raise ConnectionError("broker down")

    await make_posts(session_factory, ("P", 0, 100))
    alert_id = await press(session_factory)
    engine = Dispatcher(session_factory, _settings(), Broken())
    await engine.step(now=at(0))
    assert engine.notify_failures == 1
    assert (await get_alert(session_factory, alert_id)).state == "offered"


def test_retryable_errors() -> None:
    from sqlalchemy.exc import DBAPIError, OperationalError

    class PgError(Exception):
        sqlstate = "40P01"

    assert is_retryable(IntegrityError("x", {}, Exception()))
    assert is_retryable(DBAPIError("x", {}, PgError()))
    assert is_retryable(OperationalError("x", {}, Exception("database is locked")))
    assert not is_retryable(OperationalError("x", {}, Exception("no such table: alerts")))
    assert not is_retryable(RuntimeError("x"))


async def test_many_alerts_are_paged_through_in_one_step(session_factory: SessionFactory) -> None:
    """More waiting alerts than one batch: one step still handles every one of them."""
    await make_posts(session_factory, *((f"P{i}", 0, 100 * i) for i in range(5)))
    ids = [await press(session_factory, opened_at=at(-i)) for i in range(12)]
    engine = dispatcher(session_factory, batch_size=4)
    await engine.step(now=at(0))
    async with session_factory() as session:
        pending = await session.scalar(
            select(func.count()).select_from(Offer).where(Offer.state == "pending")
        )
    assert pending == 5
    states = [(await get_alert(session_factory, i)).state for i in ids]
    assert states.count("offered") == 5 and states.count("escalated") == 7
    # The oldest alerts (same priority) were served first.
    assert set(states[-5:]) == {"offered"}
    await assert_invariants(session_factory)


async def test_dispatcher_actions_use_its_policy_and_notify(
    session_factory: SessionFactory,
) -> None:
    """The one-call actions for the API: own transaction, the configured timeout, notices."""
    now = utcnow()  # these actions run on the real clock
    posts = await make_posts(session_factory, ("A", 0, 100), ("B", 0, 900), location_at=now)
    alert_id = await press(session_factory, opened_at=now, counter=9)
    notifier = RecordingNotifier()
    engine = Dispatcher(session_factory, Settings(offer_timeout_s=12), notifier)
    await engine.step()
    first = await pending_offer(session_factory, alert_id)
    assert first is not None
    assert (first.deadline_at - first.offered_at).total_seconds() == 12

    await engine.decline(first.id, posts["A"], "flat tyre", "post:A")
    second = await pending_offer(session_factory, alert_id)
    assert second is not None and second.post_id == posts["B"]
    assert (second.deadline_at - second.offered_at).total_seconds() == 12

    await engine.accept(second.id, posts["B"], "post:B")
    await engine.arrive(alert_id, posts["B"], "post:B")
    await engine.close(alert_id, posts["B"], "no_one_found", None, "post:B")
    assert [n.state for n in notifier.notices] == [
        AckState.DISPATCHED,
        AckState.ACCEPTED,
        AckState.ON_SCENE,
        AckState.CLOSED,
    ]

    other = await press(session_factory, opened_at=utcnow())
    await engine.assign(other, posts["A"], "user:disp")
    offer = await pending_offer(session_factory, other)
    assert offer is not None and offer.post_id == posts["A"]
    await engine.withdraw(offer.id, "user:disp")
    assert await offered_to(session_factory, other) == "B"
    await engine.cancel(other, "test call", "user:disp")
    assert (await get_alert(session_factory, other)).state == "cancelled"
    await assert_invariants(session_factory)

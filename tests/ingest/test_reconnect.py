"""The shared reconnect schedule and loop: quick during an outage's first minute, then calmer."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alertnet.reconnect import RECONNECT_SCHEDULE, Backoff, BackoffSchedule, Reconnector


class SteppedClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _delays_until(backoff: Backoff, clock: SteppedClock, outage_s: float) -> list[float]:
    """The waits of an outage in which every attempt fails at once, up to ``outage_s``."""
    delays = []
    started = clock.now
    while clock.now - started < outage_s:
        delay_s = backoff.next_delay_s()
        delays.append(delay_s)
        clock.now += delay_s
    return delays


def test_waits_stay_at_most_one_second_for_the_first_minute_then_grow_to_five() -> None:
    clock = SteppedClock()
    delays = _delays_until(Backoff(RECONNECT_SCHEDULE, clock=clock), clock, 90.0)
    assert delays[:6] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    elapsed, early = 0.0, []
    for delay_s in delays:
        if elapsed >= 60.0:
            break
        early.append(delay_s)
        elapsed += delay_s
    assert max(early) == 1.0
    late = delays[len(early) :]
    assert late[:4] == [2.0, 4.0, 5.0, 5.0]
    assert max(late) == 5.0


def test_a_connection_that_came_up_starts_the_next_outage_afresh() -> None:
    clock = SteppedClock()
    backoff = Backoff(RECONNECT_SCHEDULE, clock=clock)
    _delays_until(backoff, clock, 120.0)
    assert backoff.next_delay_s() == 5.0 and backoff.in_outage
    backoff.reset()
    assert (backoff.in_outage, backoff.failures, backoff.outage_s()) == (False, 0, 0.0)
    clock.now += 3600.0
    assert [backoff.next_delay_s() for _ in range(3)] == [0.1, 0.2, 0.4]


@given(
    down_s=st.floats(min_value=0.0, max_value=59.0),
    attempt_s=st.floats(min_value=0.0, max_value=0.5),
)
def test_within_the_first_minute_the_peer_is_retried_within_a_second_of_its_return(
    down_s: float, attempt_s: float
) -> None:
    """The broker restart finding: ingest came back 6.4 s after the broker did."""
    clock = SteppedClock()
    backoff = Backoff(RECONNECT_SCHEDULE, clock=clock)
    lost_at = clock.now
    back_at = lost_at + down_s
    while True:
        clock.now += attempt_s  # connecting takes time, and fails while the peer is away
        if clock.now >= back_at:
            break
        clock.now += backoff.next_delay_s()
    assert clock.now - back_at <= RECONNECT_SCHEDULE.early_max_s + attempt_s


def test_a_schedule_must_grow_and_be_positive() -> None:
    with pytest.raises(ValueError):
        BackoffSchedule(first_s=0.0)
    with pytest.raises(ValueError):
        BackoffSchedule(first_s=2.0, early_max_s=1.0)
    with pytest.raises(ValueError):
        BackoffSchedule(early_max_s=10.0, late_max_s=5.0)
    with pytest.raises(ValueError):
        BackoffSchedule(early_period_s=-1.0)


_FAST = BackoffSchedule(first_s=0.001, early_max_s=0.004, late_max_s=0.004)


async def test_the_loop_retries_expected_failures_and_resets_once_connected() -> None:
    lost: list[int] = []
    failures_seen: list[int] = []
    reconnector = Reconnector(
        "test link", expected=(ConnectionError,), schedule=_FAST, on_lost=lambda: lost.append(1)
    )
    attempts = 0
    served = asyncio.Event()

    async def session() -> None:
        nonlocal attempts
        attempts += 1
        failures_seen.append(reconnector.backoff.failures)
        if attempts in (1, 2, 3):
            raise ConnectionError("refused")
        if attempts == 4:
            reconnector.mark_connected()
            assert reconnector.connected.is_set()
            # A connection lost inside a task group arrives as a group.
            raise ExceptionGroup("session", [ConnectionResetError("reset by peer")])
        if attempts == 5:
            reconnector.mark_connected()
            return  # the peer closed the connection: retried as well
        served.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(reconnector.run(session))
    try:
        await asyncio.wait_for(served.wait(), 5)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert reconnector.connections == 2
    assert not reconnector.connected.is_set()
    assert len(lost) == 5
    # Each connection started the next outage afresh: one failure before each later attempt.
    assert failures_seen == [0, 1, 2, 3, 1, 1]


async def test_an_unexpected_error_propagates_unless_a_handler_takes_it() -> None:
    async def broken() -> None:
        raise KeyError("bug")

    strict = Reconnector("strict", expected=(ConnectionError,), schedule=_FAST)
    with pytest.raises(KeyError):
        await strict.run(broken)

    handled: list[Exception] = []
    three_handled = asyncio.Event()

    def handle(error: Exception) -> None:
        handled.append(error)
        if len(handled) == 3:
            three_handled.set()

    tolerant = Reconnector(
        "tolerant", expected=(ConnectionError,), schedule=_FAST, on_unexpected=handle
    )
    task = asyncio.create_task(tolerant.run(broken))
    try:
        await asyncio.wait_for(three_handled.wait(), 5)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert all(isinstance(error, KeyError) for error in handled)

"""Reconnect with backoff: the one retry schedule and retry loop of every held connection.

MQTT ingest, the ``alertnet gateway`` relay and the serial port each hold a connection that
can go away (a broker restart, a USB unplug) and must come back by itself (DESIGN §2.5, §14).
They retry alike, through ``Reconnector``: often during the first minute of an outage, when
the peer is most likely back at any moment (a restarted broker listens again within a second
or two, and every second ingest stays away delays alarms), then less often, up to a modest
cap, so that a long outage costs little. A connection that came up starts the next outage
afresh.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

__all__ = ["RECONNECT_SCHEDULE", "Backoff", "BackoffSchedule", "Reconnector"]

log = logging.getLogger(__name__)

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class BackoffSchedule:
    """How long to wait before each new attempt during one outage.

    The first wait is ``first_s``; each later one doubles, capped at ``early_max_s`` while
    the outage is younger than ``early_period_s`` and at ``late_max_s`` after that.
    """

    first_s: float = 0.1
    early_max_s: float = 1.0
    early_period_s: float = 60.0
    late_max_s: float = 5.0

    def __post_init__(self) -> None:
        if not 0 < self.first_s <= self.early_max_s <= self.late_max_s:
            raise ValueError(f"backoff needs 0 < first <= early max <= late max: {self}")
        if self.early_period_s < 0:
            raise ValueError(f"backoff early period must not be negative: {self}")

    def next_delay_s(self, previous_s: float | None, outage_s: float) -> float:
        """The wait after ``previous_s`` (None before the first) ``outage_s`` into an outage."""
        if previous_s is None:
            return self.first_s
        cap_s = self.early_max_s if outage_s < self.early_period_s else self.late_max_s
        return min(previous_s * 2, cap_s)


#: Every held connection's schedule: 0.1, 0.2, 0.4, 0.8, then 1 s for the first minute of an
#: outage, then 2, 4 and 5 s.
RECONNECT_SCHEDULE: Final = BackoffSchedule()


class Backoff:
    """One connection's place in its schedule: when the outage began and the last wait."""

    def __init__(
        self, schedule: BackoffSchedule = RECONNECT_SCHEDULE, *, clock: Clock = time.monotonic
    ) -> None:
        self.schedule = schedule
        self._clock = clock
        self._previous_s: float | None = None
        self._outage_started_at: float | None = None
        self.failures = 0  # attempts that failed in the current outage

    @property
    def in_outage(self) -> bool:
        return self._outage_started_at is not None

    def outage_s(self) -> float:
        """Seconds since the current outage began; 0 when the connection is up."""
        if self._outage_started_at is None:
            return 0.0
        return self._clock() - self._outage_started_at

    def next_delay_s(self) -> float:
        """The wait before the next attempt; the first call after ``reset`` starts an outage."""
        now = self._clock()
        if self._outage_started_at is None:
            self._outage_started_at = now
        self._previous_s = self.schedule.next_delay_s(
            self._previous_s, now - self._outage_started_at
        )
        self.failures += 1
        return self._previous_s

    def reset(self) -> None:
        """The connection works: the next loss starts a new outage from ``first_s``."""
        self._previous_s = None
        self._outage_started_at = None
        self.failures = 0


class Reconnector:
    """Runs a connection's session again and again, waiting between attempts per a schedule.

    ``run(session)``: ``session`` opens the connection, calls ``mark_connected()`` once it
    works, and serves it until it fails or ends. An exception of one of the ``expected``
    types (an ``ExceptionGroup`` of them included) is logged and retried: the first of an
    outage as a warning, the later ones at debug level, so that a peer down for an hour does
    not fill the log. Any other exception goes to ``on_unexpected`` and is retried when that
    is given, else it propagates. ``on_lost`` runs after every attempt, before the wait.

    ``connected`` is set while a session is connected; ``connections`` counts the sessions
    that got connected.
    """

    def __init__(
        self,
        name: str,
        *,
        expected: tuple[type[Exception], ...],
        schedule: BackoffSchedule = RECONNECT_SCHEDULE,
        on_lost: Callable[[], None] | None = None,
        on_unexpected: Callable[[Exception], None] | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self.name = name
        self.backoff = Backoff(schedule, clock=clock)
        self._expected = expected
        self._on_lost = on_lost
        self._on_unexpected = on_unexpected
        self.connected = asyncio.Event()
        self.connections = 0

    def mark_connected(self) -> None:
        """Called by the session once its connection works."""
        if self.backoff.in_outage:
            log.info(
                "%s: back after %.1f s and %d failed attempt(s)",
                self.name,
                self.backoff.outage_s(),
                self.backoff.failures,
            )
        self.backoff.reset()
        self.connections += 1
        self.connected.set()

    async def run(self, session: Callable[[], Awaitable[None]]) -> None:
        """Run ``session`` forever, waiting per the schedule after each end or failure."""
        while True:
            failure: BaseException | None = None
            try:
                await session()
            except Exception as exc:
                expected, unexpected = _split(exc, self._expected)
                if unexpected is not None:
                    if self._on_unexpected is None:
                        raise
                    self._on_unexpected(unexpected)
                failure = _first_leaf(expected) if expected is not None else None
            self.connected.clear()
            if self._on_lost is not None:
                self._on_lost()
            first_of_outage = not self.backoff.in_outage
            delay_s = self.backoff.next_delay_s()
            if failure is not None:
                (log.warning if first_of_outage else log.debug)(
                    "%s: %s; retrying in %.1f s", self.name, failure, delay_s
                )
            else:
                log.debug("%s: ended; again in %.1f s", self.name, delay_s)
            await asyncio.sleep(delay_s)


def _split(
    exc: Exception, expected: tuple[type[Exception], ...]
) -> tuple[Exception | None, Exception | None]:
    """``exc`` as (its part of the ``expected`` types, the rest), either of them None."""
    if isinstance(exc, ExceptionGroup):
        return exc.split(expected)
    if isinstance(exc, expected):
        return exc, None
    return None, exc


def _first_leaf(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    return exc

"""The dispatch engine: a loop that turns the database's queues into offers, timeouts and
escalations, one short transaction at a time.

Nothing lives in memory between passes: deadlines are ``offers.deadline_at``, the queues are
alert states. A restarted process, or a second one on the same PostgreSQL, simply resumes; the
``SKIP LOCKED`` claims of the queue passes make each alert and each due offer handled by one of
them. A pass that loses a race (a unique index fires, a deadlock is broken, SQLite is busy) is
rolled back and retried; any other exception is logged, counted and followed by a backoff,
and the loop goes on. Device notices are handed to the notifier only after their commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet import db
from alertnet.config import Settings
from alertnet.db import unit_of_work
from alertnet.dispatch import actions, duty, queue
from alertnet.dispatch.notifier import DeviceNotifier, StateNotice
from alertnet.dispatch.policy import DispatchPolicy
from alertnet.dispatch.queue import BatchResult, WaitingCursor
from alertnet.errors import Conflict
from alertnet.models import utcnow

if TYPE_CHECKING:
    from alertnet.metrics import Metrics

log = logging.getLogger(__name__)

T = TypeVar("T")
Action = Callable[[AsyncSession], Awaitable[Sequence[StateNotice]]]

# A pass never loops forever on a queue that keeps refilling within one step.
_MAX_PAGES_PER_STEP = 1_000


class Dispatcher:
    """Runs dispatch passes: on ``wake()`` (a new alert) or every ``dispatch_tick_s``."""

    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        settings: Settings,
        notifier: DeviceNotifier,
        *,
        metrics: Metrics | None = None,
        policy: DispatchPolicy | None = None,
        batch_size: int = 16,
        max_attempts: int = 5,
        min_backoff_s: float = 0.1,
        max_backoff_s: float = 10.0,
        clock: Callable[[], datetime] = utcnow,
        wake_elsewhere: Callable[[], None] | None = None,
    ) -> None:
        self.session_factory = session_factory
        self.notifier = notifier
        self.policy = policy or DispatchPolicy.from_settings(settings)
        self.tick_s = settings.dispatch_tick_s
        self.batch_size = batch_size
        self.max_attempts = max_attempts
        self.metrics = metrics
        self.clock = clock
        self.errors = 0  # exceptions survived by run()
        self.retries = 0  # transactions rolled back and tried again
        self.notify_failures = 0
        self._wake = asyncio.Event()
        self._min_backoff_s = min_backoff_s
        self._max_backoff_s = max_backoff_s
        self._wake_elsewhere = wake_elsewhere

    def wake(self) -> None:
        """Ask for a pass now (ingest calls this after committing a new alert). In a process
        whose loop does not run (``alertnet.roles``), ``wake_elsewhere`` passes it on."""
        self._wake.set()
        if self._wake_elsewhere is not None:
            self._wake_elsewhere()

    async def run(self) -> None:
        """Pass after pass until cancelled; an exception never ends the loop."""
        backoff_s = self._min_backoff_s
        while True:
            self._wake.clear()  # a wake() during the pass below triggers the next one at once
            try:
                await self.step()
            except Exception:
                self.errors += 1
                if self.metrics is not None:
                    self.metrics.loop_errors.labels(loop="dispatch").inc()
                log.exception("dispatch pass failed; retrying in %.1f s", backoff_s)
                await asyncio.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, self._max_backoff_s)
                continue
            backoff_s = self._min_backoff_s
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.tick_s):
                    await self._wake.wait()

    async def step(self, now: datetime | None = None) -> list[StateNotice]:
        """One full pass at time ``now``: expire due offers, then serve the waiting queue (new
        and escalated alerts together, highest priority first). Returns the notices sent."""
        now = now or self.clock()
        notices: list[StateNotice] = []
        expire = functools.partial(
            queue.expire_due, now=now, policy=self.policy, limit=self.batch_size
        )
        for _ in range(_MAX_PAGES_PER_STEP):
            expired = await self._pass(expire)
            notices += expired.notices
            if not (expired.more and expired.handled):
                break
        cursor: WaitingCursor | None = None
        for _ in range(_MAX_PAGES_PER_STEP):
            serve = functools.partial(
                queue.dispatch_waiting,
                now=now,
                policy=self.policy,
                limit=self.batch_size,
                after=cursor,
            )
            waiting = await self._pass(serve)
            notices += waiting.notices
            cursor = waiting.next_cursor
            if cursor is None:
                break
        return notices

    async def perform(self, action: Action) -> Sequence[StateNotice]:
        """Run one dispatch action in its own transaction, then notify devices and wake the loop.

        For callers that do not own a transaction (tablet and console actions can use it):
        ``await dispatcher.perform(lambda s: actions.accept(s, offer_id, post_id, actor))``.
        A lost race is retried; if it keeps losing, ``Conflict``. Domain errors pass through.
        """
        try:
            notices = await self._transaction(action)
        except DBAPIError as exc:
            if db.is_retryable(exc):
                raise Conflict("the alert changed concurrently; try again") from exc
            raise
        finally:
            # Even a refused action may have held alert locks that made a pass skip them.
            self.wake()
        await self.notify(notices)
        return notices

    # Tablet and console actions, each one transaction with this engine's policy
    # (``OFFER_TIMEOUT_S``), devices notified after the commit.

    async def accept(self, offer_id: int, post_id: int, actor: str) -> Sequence[StateNotice]:
        return await self.perform(
            functools.partial(
                actions.accept,
                offer_id=offer_id,
                post_id=post_id,
                actor=actor,
                policy=self.policy,
            )
        )

    async def decline(
        self, offer_id: int, post_id: int, reason: str, actor: str
    ) -> Sequence[StateNotice]:
        return await self.perform(
            functools.partial(
                actions.decline,
                offer_id=offer_id,
                post_id=post_id,
                reason=reason,
                actor=actor,
                policy=self.policy,
            )
        )

    async def arrive(self, alert_id: int, post_id: int, actor: str) -> Sequence[StateNotice]:
        return await self.perform(
            functools.partial(actions.arrive, alert_id=alert_id, post_id=post_id, actor=actor)
        )

    async def close(
        self, alert_id: int, post_id: int | None, outcome: str, note: str | None, actor: str
    ) -> Sequence[StateNotice]:
        return await self.perform(
            functools.partial(
                actions.close,
                alert_id=alert_id,
                post_id=post_id,
                outcome=outcome,
                note=note,
                actor=actor,
                policy=self.policy,
            )
        )

    async def assign(self, alert_id: int, post_id: int, actor: str) -> Sequence[StateNotice]:
        return await self.perform(
            functools.partial(
                actions.assign, alert_id=alert_id, post_id=post_id, actor=actor, policy=self.policy
            )
        )

    async def withdraw(self, offer_id: int, actor: str) -> Sequence[StateNotice]:
        return await self.perform(
            functools.partial(actions.withdraw, offer_id=offer_id, actor=actor, policy=self.policy)
        )

    async def cancel(self, alert_id: int, reason: str, actor: str) -> Sequence[StateNotice]:
        return await self.perform(
            functools.partial(
                actions.cancel, alert_id=alert_id, reason=reason, actor=actor, policy=self.policy
            )
        )

    async def report_location(
        self, post_id: int, lat: float, lon: float, accuracy_m: float | None
    ) -> Sequence[StateNotice]:
        return await self.perform(
            functools.partial(
                duty.report_location,
                post_id=post_id,
                lat=lat,
                lon=lon,
                accuracy_m=accuracy_m,
                policy=self.policy,
            )
        )

    async def set_post_status(self, post_id: int, status: str, actor: str) -> Sequence[StateNotice]:
        return await self.perform(
            functools.partial(
                duty.set_post_status,
                post_id=post_id,
                status=status,
                actor=actor,
                policy=self.policy,
            )
        )

    async def notify(self, notices: Sequence[StateNotice]) -> None:
        """Hand committed notices to the notifier; a failure is logged, never raised (the
        change is committed and a device keeps showing its last state)."""
        if not notices:
            return
        try:
            await self.notifier.notify(notices)
        except Exception:
            self.notify_failures += 1
            log.exception("device notifier failed for %d notices", len(notices))

    async def _pass(self, work: Callable[[AsyncSession], Awaitable[BatchResult]]) -> BatchResult:
        result = await self._transaction(work)
        await self.notify(result.notices)
        return result

    async def _transaction(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        for attempt in range(1, self.max_attempts + 1):
            try:
                async with unit_of_work(self.session_factory) as session:
                    return await work(session)
            except DBAPIError as exc:
                if not db.is_retryable(exc) or attempt == self.max_attempts:
                    raise
                self.retries += 1
                log.info("dispatch transaction lost a race (attempt %d): %s", attempt, exc.orig)
                await asyncio.sleep(0.005 * attempt)
        raise AssertionError("unreachable")  # pragma: no cover

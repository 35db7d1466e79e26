"""Creates each drill event when it falls due, inside the ingest pipeline (DESIGN §2.3, §12).

The schedule is the database (``drill_events``), so the runner keeps nothing in memory: each
pass reads the rows that are due and still ``pending``, hands each to the pipeline as a
``SourceEvent`` keyed ``drill:<drill_id>:<n>`` (no counter, no replay window, no reception, the
device not marked as heard, no downlink) and, once the pipeline has committed it, marks the row
``created`` with its event. A restart between the two only means the row is handed over again:
the key makes that copy a duplicate of the stored event, never a second event, and its answer
names the stored event. Two processes running passes at once are safe for the same reason.

A row is ``skipped`` instead when its device has a real alert open (a drill must not stand
beside a real emergency) or the pipeline refused the event (the device was disabled meanwhile).
A drill whose rows are all created or skipped is ``complete``.

``run()`` is one long-lived task under the runtime's supervisor: a pass when woken (a drill
was started) or when the next row falls due, at least every ``idle_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Final

from sqlalchemy import and_, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.db import unit_of_work
from alertnet.drills.service import DRILL_CATEGORY
from alertnet.ingest.outcomes import Disposition, Outcome
from alertnet.ingest.sources import SourceEvent, SourceKind
from alertnet.models import (
    OPEN_ALERT_STATES,
    Alert,
    AlertCategory,
    Device,
    Drill,
    DrillEvent,
    Transport,
    utcnow,
)

if TYPE_CHECKING:
    from alertnet.ingest.pipeline import Pipeline
    from alertnet.metrics import Metrics

log = logging.getLogger(__name__)

#: Rows handed to the pipeline per pass.
_BATCH: Final = 100
#: How long a pass waits for the pipeline's answers; unanswered rows stay pending and are
#: handed over again by a later pass (the key makes that safe).
_ANSWER_TIMEOUT_S: Final = 30.0
REAL_ALERT_OPEN_NOTE: Final = "the device had a real alert open"


def drill_key(drill_id: int, n: int) -> str:
    """The dedup key of a drill's ``n``-th event (DESIGN §2.3)."""
    return f"drill:{drill_id}:{n}"


@dataclass(frozen=True, slots=True)
class _Due:
    drill_id: int
    n: int
    device_id: int
    kind: str
    device_count: int
    started_by: str
    real_alert_open: bool


class DrillRunner:
    """Hands due drill events to the pipeline; see the module docstring."""

    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        pipeline: Pipeline,
        *,
        metrics: Metrics | None = None,
        clock: Callable[[], datetime] = utcnow,
        idle_s: float = 5.0,
        retry_s: float = 1.0,
    ) -> None:
        self._session_factory = session_factory
        self._pipeline = pipeline
        self._metrics = metrics
        self._clock = clock
        self._idle_s = idle_s
        self._retry_s = retry_s
        self._wake = asyncio.Event()
        self.created = 0  # events the pipeline stored (or had stored) for due rows
        self.skipped = 0

    def wake(self) -> None:
        """Look at the schedule now (a drill was started)."""
        self._wake.set()

    async def run(self) -> None:
        """Pass after pass until cancelled; a failed pass is logged, counted and retried."""
        while True:
            self._wake.clear()
            try:
                next_due = await self.step()
            except Exception:
                if self._metrics is not None:
                    self._metrics.loop_errors.labels(loop="drills").inc()
                log.exception("drill pass failed; retrying in %.1f s", self._retry_s)
                await asyncio.sleep(self._retry_s)
                continue
            wait_s = self._idle_s
            if next_due is not None:
                wait_s = min(wait_s, max((next_due - self._clock()).total_seconds(), 0.0))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait_s):
                    await self._wake.wait()

    async def step(self, now: datetime | None = None) -> datetime | None:
        """One pass at ``now``: create every due event; returns when the next row falls due."""
        now = now or self._clock()
        while True:
            due = await self._due(now)
            if not due:
                break
            await self._hand_over(due, now)
            if len(due) < _BATCH:
                break
        async with self._session_factory() as session:
            next_due: datetime | None = await session.scalar(
                select(func.min(DrillEvent.due_at)).where(DrillEvent.state == "pending")
            )
        return next_due

    async def _due(self, now: datetime) -> list[_Due]:
        real_alert_open = exists().where(
            Alert.device_id == DrillEvent.device_id,
            Alert.drill.is_(False),
            Alert.category != AlertCategory.TROUBLE.value,
            Alert.state.in_(OPEN_ALERT_STATES),
        )
        async with self._session_factory() as session:
            rows = await session.execute(
                select(
                    DrillEvent.drill_id,
                    DrillEvent.n,
                    DrillEvent.device_id,
                    Device.kind,
                    Drill.device_count,
                    Drill.started_by,
                    real_alert_open,
                )
                .join(Drill, Drill.id == DrillEvent.drill_id)
                .join(Device, Device.id == DrillEvent.device_id)
                .where(DrillEvent.state == "pending", DrillEvent.due_at <= now)
                .order_by(DrillEvent.due_at, DrillEvent.drill_id, DrillEvent.n)
                .limit(_BATCH)
            )
            return [_Due(*row) for row in rows]

    async def _hand_over(self, due: list[_Due], now: datetime) -> None:
        skipped: dict[tuple[int, int], str] = {}
        futures: dict[tuple[int, int], asyncio.Future[Outcome]] = {}
        for row in due:
            category = DRILL_CATEGORY.get(row.kind)
            if row.real_alert_open:
                skipped[(row.drill_id, row.n)] = REAL_ALERT_OPEN_NOTE
            elif category is None:
                skipped[(row.drill_id, row.n)] = f"a {row.kind} makes no police alert"
            else:
                futures[(row.drill_id, row.n)] = self._pipeline.submit_event(
                    SourceEvent(
                        device_id=row.device_id,
                        dedup_key=drill_key(row.drill_id, row.n),
                        kind=SourceKind.ALARM,
                        code=category.value,
                        transport=Transport.DRILL,
                        received_at=now,
                        category=category,
                        drill=True,
                        drill_id=row.drill_id,
                        details={"drill_id": row.drill_id, "n": row.n},
                        reason=(
                            f"drill #{row.drill_id}, event {row.n} of {row.device_count}, "
                            f"started by {row.started_by}"
                        ),
                        reception=False,
                        heard=False,
                    )
                )
        created: dict[tuple[int, int], int] = {}
        if futures:
            done, _pending = await asyncio.wait(futures.values(), timeout=_ANSWER_TIMEOUT_S)
            for key, future in futures.items():
                if future not in done:
                    continue  # still pending: handed over again by a later pass
                outcome = future.result()
                if (
                    outcome.disposition in (Disposition.NEW, Disposition.DUPLICATE)
                    and outcome.event_id is not None
                ):
                    if outcome.alert_id is None:  # a real alert opened since the row was read
                        skipped[key] = REAL_ALERT_OPEN_NOTE
                    else:
                        created[key] = outcome.event_id
                else:
                    skipped[key] = (outcome.detail or str(outcome.reason) or "refused")[:200]
        await self._record(created, skipped, now)

    async def _record(
        self,
        created: dict[tuple[int, int], int],
        skipped: dict[tuple[int, int], str],
        now: datetime,
    ) -> None:
        if not created and not skipped:
            return
        async with unit_of_work(self._session_factory) as session:
            for (drill_id, n), event_id in created.items():
                await session.execute(
                    update(DrillEvent)
                    .where(
                        DrillEvent.drill_id == drill_id,
                        DrillEvent.n == n,
                        DrillEvent.state == "pending",  # a stopped drill's stay skipped
                    )
                    .values(state="created", event_id=event_id, done_at=now, note="")
                )
            for (drill_id, n), note in skipped.items():
                await session.execute(
                    update(DrillEvent)
                    .where(
                        DrillEvent.drill_id == drill_id,
                        DrillEvent.n == n,
                        DrillEvent.state == "pending",
                    )
                    .values(state="skipped", done_at=now, note=note)
                )
            touched = {drill_id for drill_id, _n in [*created, *skipped]}
            still_pending = exists().where(
                and_(DrillEvent.drill_id == Drill.id, DrillEvent.state == "pending")
            )
            await session.execute(
                update(Drill)
                .where(Drill.id.in_(touched), Drill.state == "running", ~still_pending)
                .values(state="complete", ended_at=now)
            )
        self.created += len(created)
        self.skipped += len(skipped)
        if skipped:
            log.info("drill events skipped: %s", skipped)

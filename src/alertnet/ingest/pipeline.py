"""The one path in: every uplink from every transport becomes events, alerts and acks here.

decode (at submit) → micro-batch → one transaction per batch (``ingest.batch``: device lookup,
topic/MIC check, anti-replay window, events, and the alert side in ``alerts.intake``) → commit
→ outcomes. A transport acknowledges an uplink only once its outcome is known, i.e. after the
commit.

Alarms never wait behind heartbeats (DESIGN §6.6): two lanes, each its own worker, queue and
database session. The urgent lane (alarms, cancels) commits a batch the moment one is queued,
concurrently with the routine lane's transaction; PostgreSQL's device row locks serialize the
two only where they touch the same device. SQLite has a single writer, so there the lanes
take turns, one transaction each: an alarm waits at most for the routine transaction already
running, never for the backlog queued behind it (and the two never meet as competing writers,
which would end in "database is locked").

Sources that do not send v1 frames (an alarm panel over SIA DC-09, a drill) decode their own
input into a ``SourceEvent`` (``ingest.sources``) and hand it to ``submit_event``: the same
queues, batches, transaction, priority and quarantine, without the replay window.

Nothing an uplink carries can stop the loop (DESIGN §14): a batch that fails is retried, then
split, and an uplink that fails alone is quarantined as ``processing_error``; that fallback
cannot raise (its values are cut to their columns, and a row that still will not store is
logged and counted instead). Should ``run()`` end anyway, the uplinks it held go back to the
front of the line for the next ``run()`` (the runtime's supervisor starts one).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet import db
from alertnet.alerts.intake import POLICE_CATEGORY
from alertnet.db import unit_of_work
from alertnet.ingest.batch import Batch
from alertnet.ingest.device_cache import DEFAULT_SIZE, DeviceCache
from alertnet.ingest.outcomes import (
    BatchResult,
    Disposition,
    Outcome,
    RawUplink,
    quarantine_row,
)
from alertnet.ingest.sources import SourceEvent
from alertnet.metrics import Metrics
from alertnet.models import Quarantine
from alertnet.protocol import DecodeError, EventCode, Reason, Uplink, WireFormat, decode_uplink_any

__all__ = [
    "BatchResult",
    "Disposition",
    "OnCommit",
    "Outcome",
    "Pipeline",
    "RawUplink",
    "SourceEvent",
]

log = logging.getLogger(__name__)

# Events that must never wait behind heartbeats.
URGENT_EVENTS = frozenset(POLICE_CATEGORY) | {EventCode.CANCEL}

OnCommit = Callable[[BatchResult], Awaitable[None]]

#: Tries of a failing batch before it is split (an error that may be one uplink's doing) ...
FAILED_ATTEMPTS = 3
#: ... or, when it lost a race with another transaction, before it is split all the same.
LOST_RACE_ATTEMPTS = 10


Decoded = tuple[Uplink, WireFormat] | DecodeError | SourceEvent


@dataclass(slots=True)
class _Item:
    raw: RawUplink
    decoded: Decoded
    future: asyncio.Future[Outcome]
    submitted_at: float

    @property
    def urgent(self) -> bool:
        if isinstance(self.decoded, SourceEvent):
            return self.decoded.urgent
        return not isinstance(self.decoded, DecodeError) and self.decoded[0].event in URGENT_EVENTS


@dataclass(slots=True)
class _Lane:
    """One worker's queue and the batch it is committing."""

    queue: deque[_Item] = field(default_factory=deque)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    in_flight: list[_Item] = field(default_factory=list)


def _decode(payload: bytes) -> tuple[Uplink, WireFormat] | DecodeError:
    try:
        return decode_uplink_any(payload)
    except DecodeError as exc:
        return exc


def _is_sqlite(bind: object) -> bool:
    dialect = getattr(bind, "dialect", None)
    return getattr(dialect, "name", "") == "sqlite"


def _retry_delay_s(attempt: int) -> float:
    """Wait before a batch is tried again: short, so ingest resumes within a second of the
    database coming back (devices are retrying meanwhile)."""
    return min(0.05 * 2.0**attempt, 1.0)


class Pipeline:
    """Micro-batching ingest: ``submit()`` from any transport, ``run()`` as one long-lived task."""

    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        *,
        metrics: Metrics,
        max_batch: int = 200,
        max_wait_s: float = 0.005,
        on_commit: OnCommit | None = None,
        device_cache_size: int = DEFAULT_SIZE,
    ) -> None:
        self._session_factory = session_factory
        self._metrics = metrics
        self._max_batch = max_batch
        self._max_wait_s = max_wait_s
        self._on_commit = on_commit
        # Devices as this process last saw them committed (both lanes share it).
        self._devices = DeviceCache(device_cache_size)
        self._urgent = _Lane()
        self._routine = _Lane()
        bind = session_factory.kw.get("bind")
        # SQLite: one writer. The lanes take turns (asyncio.Lock is fair: a waiting alarm
        # goes before the routine lane's next batch).
        self._single_writer = asyncio.Lock() if _is_sqlite(bind) else None

    # -- intake -------------------------------------------------------------------------------

    def submit(
        self, raw: RawUplink, rejected: DecodeError | None = None
    ) -> asyncio.Future[Outcome]:
        """Queue one uplink; the future resolves after the batch holding it has committed.

        ``rejected`` is set by a transport that already knows the input is bad (a bad topic, a
        malformed gateway envelope): it still goes through a batch to land in quarantine.
        """
        decoded = rejected if rejected is not None else _decode(raw.payload)
        return self._enqueue(raw, decoded)

    def submit_event(self, event: SourceEvent) -> asyncio.Future[Outcome]:
        """Queue one event of a non-v1 source (``ingest.sources``); the future resolves after
        the batch holding it has committed, as for ``submit``."""
        return self._enqueue(event.raw_uplink(), event)

    def _enqueue(self, raw: RawUplink, decoded: Decoded) -> asyncio.Future[Outcome]:
        item = _Item(raw, decoded, asyncio.get_running_loop().create_future(), time.monotonic())
        lane = self._lane_of(item)
        lane.queue.append(item)
        lane.arrived.set()
        return item.future

    def _lane_of(self, item: _Item) -> _Lane:
        return self._urgent if item.urgent else self._routine

    # -- the loop -----------------------------------------------------------------------------

    def oldest_wait_s(self) -> float:
        """How long the oldest uplink not yet answered has waited (0 when none waits)."""
        waiting = [
            item.submitted_at
            for lane in (self._urgent, self._routine)
            for item in lane.in_flight + ([lane.queue[0]] if lane.queue else [])
        ]
        return time.monotonic() - min(waiting) if waiting else 0.0

    async def run(self) -> None:
        """Both lanes, until cancelled or one fails; each puts back what it held as it ends.

        Not a ``TaskGroup``: on Python 3.11 a failing child leaves the group's own task marked
        as being cancelled, and the runtime's supervisor would take the crash for a stop and
        not restart the pipeline.
        """
        lanes = [asyncio.create_task(self._work(lane)) for lane in (self._urgent, self._routine)]
        try:
            failed, _running = await asyncio.wait(lanes, return_when=asyncio.FIRST_COMPLETED)
            for lane in failed:
                lane.result()  # a lane runs until cancelled: it ended by raising
        finally:
            for lane in lanes:
                lane.cancel()
            await asyncio.gather(*lanes, return_exceptions=True)

    async def _work(self, lane: _Lane) -> None:
        while True:
            # Collected straight into ``in_flight``: what the lane took is put back even if it
            # is stopped while still collecting.
            batch: list[_Item] = []
            lane.in_flight = batch
            try:
                await self._collect(lane, batch)
                async with self._writer():
                    await self._process_with_retry(batch)
            finally:
                lane.in_flight = []
                self._requeue_unanswered(batch)

    @asynccontextmanager
    async def _writer(self) -> AsyncIterator[None]:
        """On SQLite, this lane's turn to write; on PostgreSQL the lanes run side by side."""
        if self._single_writer is None:
            yield
            return
        async with self._single_writer:
            yield

    def _requeue_unanswered(self, batch: list[_Item]) -> None:
        """Put back, at the front and in order, what a stopped or crashed batch left open."""
        for item in reversed(batch):
            if not item.future.done():
                lane = self._lane_of(item)
                lane.queue.appendleft(item)
                lane.arrived.set()

    async def _collect(self, lane: _Lane, batch: list[_Item]) -> None:
        """Fill ``batch`` from the lane: urgent items at once, routine ones up to ``max_wait_s``."""
        while not lane.queue:
            lane.arrived.clear()
            await lane.arrived.wait()
        deadline = time.monotonic() + self._max_wait_s
        while True:
            self._take(lane, batch)
            if len(batch) >= self._max_batch or lane is self._urgent:
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            lane.arrived.clear()
            try:
                async with asyncio.timeout(remaining):
                    await lane.arrived.wait()
            except TimeoutError:
                self._take(lane, batch)
                return

    def _take(self, lane: _Lane, batch: list[_Item]) -> None:
        while lane.queue and len(batch) < self._max_batch:
            batch.append(lane.queue.popleft())

    async def _process_with_retry(self, batch: list[_Item]) -> None:
        """Never drop a batch: retry while the database is away, isolate a poisonous item."""
        attempt = 0
        while True:
            try:
                result = await self.process([item.raw for item in batch], batch)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                attempt += 1
                self._metrics.batch_failures.inc()
                # Unreachable database: retry until it is back. A lost race (deadlock,
                # serialization failure, unique index): retry as a batch, a few times more
                # than an error that may be the input's.
                if db.is_transient(exc) or attempt < (
                    LOST_RACE_ATTEMPTS if db.is_retryable(exc) else FAILED_ATTEMPTS
                ):
                    delay_s = _retry_delay_s(attempt)
                    log.warning("ingest batch failed (%s), retry in %.2fs", exc, delay_s)
                    await asyncio.sleep(delay_s)
                    continue
                if len(batch) > 1:
                    log.exception("ingest batch of %d failed; processing one by one", len(batch))
                    for item in batch:
                        await self._process_with_retry([item])
                    return
                await self._quarantine_poison(batch[0], exc)
                return
            break
        for item, outcome in zip(batch, result.outcomes, strict=True):
            if not item.future.done():
                item.future.set_result(outcome)
        if self._on_commit is not None:
            try:
                await self._on_commit(result)
            except Exception:
                self._metrics.loop_errors.labels("on_commit").inc()
                log.exception("post-commit hook failed")

    async def _quarantine_poison(self, item: _Item, exc: Exception) -> None:
        """Keep an uplink that fails alone as ``processing_error``; never raises.

        While the database is away the row is retried like any batch. If even the row will
        not store, a bare one (reason, length and hash) is tried; failing that, the uplink is
        answered as quarantined with nothing stored, and the failure is logged and counted.
        """
        log.error("uplink could not be processed and is quarantined: %r", exc)
        detail = f"{type(exc).__name__}: {exc}"
        full = quarantine_row(item.raw, Reason.PROCESSING_ERROR, detail, None)
        bare = {
            "received_at": full["received_at"],
            "transport": full["transport"],
            "reason": full["reason"],
            "detail": type(exc).__name__,
            "raw": b"",
            "raw_length": full["raw_length"],
            "raw_sha256": full["raw_sha256"],
        }
        stored = await self._store_quarantine([full, bare])
        self._metrics.quarantined.labels(Reason.PROCESSING_ERROR.value).inc()
        outcome = Outcome(
            Disposition.QUARANTINED,
            reason=Reason.PROCESSING_ERROR,
            detail=detail[:500] if stored else "could not be processed nor stored; see the log",
        )
        if not item.future.done():
            item.future.set_result(outcome)

    async def _store_quarantine(self, rows: list[dict[str, Any]]) -> bool:
        """Insert the first of ``rows`` that stores; False when none would."""
        attempt = 0
        for row in rows:
            while True:
                try:
                    async with unit_of_work(self._session_factory) as session:
                        await session.execute(insert(Quarantine), [row])
                    return True
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    if db.is_transient(exc):
                        attempt += 1
                        await asyncio.sleep(_retry_delay_s(attempt))
                        continue
                    self._metrics.loop_errors.labels("quarantine").inc()
                    log.exception("quarantine row could not be stored")
                    break
        return False

    # -- one transaction ------------------------------------------------------------------------

    async def process(
        self, raws: Sequence[RawUplink], items: Sequence[_Item] | None = None
    ) -> BatchResult:
        """Process uplinks in one transaction and commit. Public for tests and the HTTP path."""
        decoded: list[Decoded]
        if items is None:
            decoded = [_decode(raw.payload) for raw in raws]
        else:
            decoded = [item.decoded for item in items]
        async with unit_of_work(self._session_factory) as session:
            batch = Batch(session, raws, decoded, devices=self._devices)
            result = await batch.run()
        batch.committed()
        now = time.monotonic()
        self._metrics.batch_size.observe(len(raws))
        for raw, outcome in zip(raws, result.outcomes, strict=True):
            self._metrics.uplinks.labels(raw.transport.value, outcome.disposition.value).inc()
            if outcome.reason is not None:
                self._metrics.quarantined.labels(outcome.reason.value).inc()
        if items is not None:
            for item in items:
                self._metrics.ingest_latency.observe(now - item.submitted_at)
        return result

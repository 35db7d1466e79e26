"""The one path in: every uplink from every transport becomes events, alerts and acks here.

decode (at submit) → device lookup → topic/MIC check → anti-replay window → one transaction per
micro-batch → commit → outcomes. A transport acknowledges an uplink only once its outcome is
known, i.e. after the commit. Alarms go to the front of the line and flush a batch at once, so
a heartbeat storm never delays a press (DESIGN §6.6).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import (
    Integer,
    String,
    Table,
    bindparam,
    case,
    func,
    insert,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet import db
from alertnet.alerts.priority import REPEAT_PRESS_BONUS, REPEAT_PRESS_THRESHOLD, opening_priority
from alertnet.alerts.views import alert_views
from alertnet.db import unit_of_work
from alertnet.ingest import trouble
from alertnet.metrics import Metrics
from alertnet.models import (
    OPEN_ALERT_STATES,
    Alert,
    AlertAudit,
    AlertCategory,
    AlertState,
    Device,
    DeviceStatus,
    Event,
    Mahalla,
    Quarantine,
    Reception,
    Transport,
    utcnow,
)
from alertnet.protocol import (
    AckState,
    DecodeError,
    Downlink,
    EventCode,
    Reason,
    ReplayWindow,
    Uplink,
    Verdict,
    WireFormat,
    decode_uplink_any,
)
from alertnet.realtime.feed import FeedMessage, append

log = logging.getLogger(__name__)

# Events that open (or merge into) an alert sent to the police.
POLICE_CATEGORY = {
    EventCode.PANIC: AlertCategory.PANIC,
    EventCode.INTRUSION: AlertCategory.INTRUSION,
    EventCode.FIRE: AlertCategory.FIRE,
    EventCode.MEDICAL: AlertCategory.MEDICAL,
    EventCode.TAMPER: AlertCategory.TAMPER,
}
TROUBLE_RAISES = frozenset({EventCode.MAINS_LOST, EventCode.LOW_BATTERY})
TROUBLE_CLEARS = frozenset({EventCode.MAINS_RESTORED})
# Events that must never wait behind heartbeats.
URGENT_EVENTS = frozenset(POLICE_CATEGORY) | {EventCode.CANCEL}
DEVICES = cast(Table, Device.__table__)
EVENTS = cast(Table, Event.__table__)
OPEN_STATES_SQL = "state IN ('new', 'offered', 'accepted', 'on_scene', 'escalated')"


class Disposition(StrEnum):
    NEW = "new"
    DUPLICATE = "duplicate"
    HEARTBEAT = "heartbeat"
    QUARANTINED = "quarantined"


@dataclass(frozen=True, slots=True)
class RawUplink:
    """One copy of an uplink as a transport received it."""

    payload: bytes
    transport: Transport
    received_at: datetime = field(default_factory=utcnow)
    topic_eui: str | None = None  # the EUI an MQTT up topic names; must equal the frame's
    gateway_id: str | None = None
    rssi: int | None = None
    snr: float | None = None
    source: str = ""  # topic, port or client address, kept with quarantined input


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one uplink, known only after its batch committed."""

    disposition: Disposition
    wire_format: WireFormat = WireFormat.BINARY
    uplink: Uplink | None = None
    reason: Reason | None = None
    detail: str = ""
    device_key: bytes | None = None  # set for accepted uplinks: signs the ack on demand
    alert_id: int | None = None

    @property
    def accepted(self) -> bool:
        return self.disposition is not Disposition.QUARANTINED

    @property
    def downlink(self) -> Downlink | None:
        """The signed "received" ack; built only when a transport sends it (not per heartbeat)."""
        if self.device_key is None or self.uplink is None:
            return None
        return Downlink.build(
            self.device_key, self.uplink.eui, self.uplink.counter, AckState.RECEIVED
        )

    def ack_bytes(self) -> bytes | None:
        """The downlink in the sender's own format (binary or JSON)."""
        downlink = self.downlink
        return downlink.encode(self.wire_format) if downlink else None


@dataclass(slots=True)
class _Item:
    raw: RawUplink
    decoded: tuple[Uplink, WireFormat] | DecodeError
    future: asyncio.Future[Outcome]
    submitted_at: float

    @property
    def urgent(self) -> bool:
        return not isinstance(self.decoded, DecodeError) and self.decoded[0].event in URGENT_EVENTS


@dataclass(slots=True)
class _DeviceState:
    id: int
    eui: str
    key: bytes
    status: str
    mahalla_id: int | None
    risk: str | None
    lat: float
    lon: float
    window: ReplayWindow
    touched: bool = False
    last_seen_at: datetime | None = None
    battery: int | None = None
    last_format: str | None = None
    last_transport: str | None = None
    last_gateway_id: str | None = None
    best_rssi: int | None = None

    @property
    def ref(self) -> trouble.DeviceRef:
        return trouble.DeviceRef(self.id, self.eui, self.mahalla_id, self.risk, self.lat, self.lon)


@dataclass(slots=True)
class BatchResult:
    """What a committed batch changed that others must react to."""

    outcomes: list[Outcome]
    opened_alert_ids: list[int] = field(default_factory=list)


OnCommit = Callable[[BatchResult], Awaitable[None]]


def _decode(payload: bytes) -> tuple[Uplink, WireFormat] | DecodeError:
    try:
        return decode_uplink_any(payload)
    except DecodeError as exc:
        return exc


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
    ) -> None:
        self._session_factory = session_factory
        self._metrics = metrics
        self._max_batch = max_batch
        self._max_wait_s = max_wait_s
        self._on_commit = on_commit
        self._urgent: deque[_Item] = deque()
        self._routine: deque[_Item] = deque()
        self._arrived = asyncio.Event()

    # -- intake -------------------------------------------------------------------------------

    def submit(
        self, raw: RawUplink, rejected: DecodeError | None = None
    ) -> asyncio.Future[Outcome]:
        """Queue one uplink; the future resolves after the batch holding it has committed.

        ``rejected`` is set by a transport that already knows the input is bad (a bad topic, a
        malformed gateway envelope): it still goes through a batch to land in quarantine.
        """
        decoded = rejected if rejected is not None else _decode(raw.payload)
        item = _Item(raw, decoded, asyncio.get_running_loop().create_future(), time.monotonic())
        (self._urgent if item.urgent else self._routine).append(item)
        self._arrived.set()
        return item.future

    # -- the loop -----------------------------------------------------------------------------

    async def run(self) -> None:
        while True:
            batch = await self._collect()
            await self._process_with_retry(batch)

    async def _collect(self) -> list[_Item]:
        while not self._urgent and not self._routine:
            self._arrived.clear()
            await self._arrived.wait()
        batch: list[_Item] = []
        deadline = time.monotonic() + self._max_wait_s
        while True:
            self._take(batch)
            if len(batch) >= self._max_batch or any(item.urgent for item in batch):
                return batch
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return batch
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                self._take(batch)
                return batch

    def _take(self, batch: list[_Item]) -> None:
        while self._urgent and len(batch) < self._max_batch:
            batch.append(self._urgent.popleft())
        while self._routine and len(batch) < self._max_batch:
            batch.append(self._routine.popleft())

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
                if db.is_transient(exc) or attempt < 3:
                    delay_s = min(0.05 * 2**attempt, 5.0)
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
        log.error("uplink could not be processed and is quarantined: %r", exc)
        outcome = Outcome(Disposition.QUARANTINED, reason=Reason.PROCESSING_ERROR, detail=repr(exc))
        async with unit_of_work(self._session_factory) as session:
            await session.execute(
                insert(Quarantine),
                [self._quarantine_row(item.raw, Reason.PROCESSING_ERROR, repr(exc)[:500], None)],
            )
        self._metrics.quarantined.labels(Reason.PROCESSING_ERROR.value).inc()
        if not item.future.done():
            item.future.set_result(outcome)

    # -- one transaction ------------------------------------------------------------------------

    async def process(
        self, raws: Sequence[RawUplink], items: Sequence[_Item] | None = None
    ) -> BatchResult:
        """Process uplinks in one transaction and commit. Public for tests and the HTTP path."""
        decoded: list[tuple[Uplink, WireFormat] | DecodeError]
        if items is None:
            decoded = [_decode(raw.payload) for raw in raws]
        else:
            decoded = [item.decoded for item in items]
        async with unit_of_work(self._session_factory) as session:
            result = await _Batch(session, raws, decoded).run()
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

    @staticmethod
    def _quarantine_row(
        raw: RawUplink, reason: Reason, detail: str, eui: str | None
    ) -> dict[str, Any]:
        return {
            "received_at": raw.received_at,
            "transport": raw.transport.value,
            "source": raw.source[:200],
            "gateway_id": raw.gateway_id,
            "device_eui": eui,
            "reason": reason.value,
            "detail": detail[:2000],
            "raw": raw.payload,
        }


class _Batch:
    """The work of one ingest transaction; lives only inside ``Pipeline.process``."""

    def __init__(
        self,
        session: AsyncSession,
        raws: Sequence[RawUplink],
        decoded: Sequence[tuple[Uplink, WireFormat] | DecodeError],
    ) -> None:
        self.session = session
        self.raws = raws
        self.decoded = decoded
        self.outcomes: list[Outcome | None] = [None] * len(raws)
        self.quarantine: list[dict[str, Any]] = []
        self.feed: list[FeedMessage] = []
        self.opened: list[int] = []
        self.updated: list[int] = []

    def _note(self, change: trouble.Change | None) -> int | None:
        if change is None:
            return None
        (self.opened if change.opened else self.updated).append(change.alert_id)
        return change.alert_id

    def reject(self, index: int, reason: Reason, detail: str, eui: str | None = None) -> None:
        raw = self.raws[index]
        decoded = self.decoded[index]
        fmt = decoded[1] if not isinstance(decoded, DecodeError) else WireFormat.BINARY
        self.quarantine.append(Pipeline._quarantine_row(raw, reason, detail, eui))
        self.outcomes[index] = Outcome(Disposition.QUARANTINED, fmt, reason=reason, detail=detail)

    async def run(self) -> BatchResult:
        devices = await self._load_devices()
        new_events: list[int] = []
        duplicates: list[int] = []
        below_window: list[int] = []
        for index, decoded in enumerate(self.decoded):
            if isinstance(decoded, DecodeError):
                self.reject(index, decoded.reason, decoded.detail)
                continue
            uplink, _fmt = decoded
            raw = self.raws[index]
            if raw.topic_eui is not None and raw.topic_eui != uplink.eui:
                self.reject(
                    index,
                    Reason.EUI_MISMATCH,
                    f"topic names {raw.topic_eui}, frame carries {uplink.eui}",
                    uplink.eui,
                )
                continue
            device = devices.get(uplink.eui)
            if device is None:
                self.reject(index, Reason.UNKNOWN_DEVICE, f"no device {uplink.eui}", uplink.eui)
                continue
            if device.status == DeviceStatus.DISABLED:
                self.reject(index, Reason.DISABLED_DEVICE, f"{uplink.eui} is disabled", uplink.eui)
                continue
            if not uplink.verify(device.key):
                self.reject(index, Reason.BAD_MIC, "MIC does not match the device key", uplink.eui)
                continue
            verdict = device.window.check(uplink.counter)
            if verdict is Verdict.NEW:
                device.window = device.window.accept(uplink.counter)
                if uplink.event is EventCode.HEARTBEAT:
                    self._accept(index, device, Disposition.HEARTBEAT)
                else:
                    new_events.append(index)
            elif verdict is Verdict.DUPLICATE:
                duplicates.append(index)
            else:
                below_window.append(index)

        duplicates += await self._split_below_window(below_window, devices)
        inserted = await self._insert_events(new_events, devices)
        duplicates += [index for index in new_events if index not in inserted]
        event_ids = dict(inserted)
        event_ids.update(await self._record_duplicates(duplicates, devices))
        await self._insert_receptions(event_ids, devices)
        alert_of_event: dict[int, int] = {}
        # Troubles raised by the batch (a power cut: mains_lost from every alarm) are applied
        # together; a clear for the same condition must not overtake them, so it flushes first.
        raises: list[tuple[int, trouble.DeviceRef, str, datetime]] = []
        for index in new_events:
            if index not in inserted:
                continue
            uplink, _fmt = self._uplink(index)
            if uplink.event in TROUBLE_RAISES:
                at = self.raws[index].received_at
                raises.append(
                    (inserted[index], devices[uplink.eui].ref, uplink.event.wire_name, at)
                )
                continue
            if uplink.event in TROUBLE_CLEARS:
                alert_of_event.update(await self._raise_troubles(raises))
            alert_id = await self._apply_event(index, devices)
            if alert_id is not None:
                alert_of_event[inserted[index]] = alert_id
        alert_of_event.update(await self._raise_troubles(raises))
        await self._link_events(alert_of_event)
        for index, event_id in event_ids.items():  # every copy learns its event's alert
            outcome = self.outcomes[index]
            if outcome is not None and outcome.alert_id is None and event_id in alert_of_event:
                self.outcomes[index] = replace(outcome, alert_id=alert_of_event[event_id])
        await self._save_devices(devices)
        if self.quarantine:
            await self.session.execute(insert(Quarantine), self.quarantine)
        await self._announce_alerts()
        if self.feed:
            await append(self.session, self.feed)
        outcomes = [outcome for outcome in self.outcomes if outcome is not None]
        assert len(outcomes) == len(self.raws), "every uplink gets an outcome"
        return BatchResult(outcomes, self.opened)

    # -- devices --------------------------------------------------------------------------------

    async def _load_devices(self) -> dict[str, _DeviceState]:
        euis = {d[0].eui for d in self.decoded if not isinstance(d, DecodeError)}
        if not euis:
            return {}
        # Row locks serialize two processes working on one device (window, alert merge).
        rows = await self.session.execute(
            select(
                Device.id,
                Device.eui,
                Device.key,
                Device.status,
                Device.mahalla_id,
                Mahalla.risk,
                Device.lat,
                Device.lon,
                Device.window_highest,
                Device.window_seen,
            )
            .outerjoin(Mahalla, Mahalla.id == Device.mahalla_id)
            .where(Device.eui.in_(euis))
            .order_by(Device.id)
            .with_for_update(of=Device)
        )
        return {
            row.eui: _DeviceState(
                id=row.id,
                eui=row.eui,
                key=row.key,
                status=row.status,
                mahalla_id=row.mahalla_id,
                risk=row.risk,
                lat=row.lat,
                lon=row.lon,
                window=ReplayWindow.from_db(row.window_highest, row.window_seen),
            )
            for row in rows
        }

    def _accept(self, index: int, device: _DeviceState, disposition: Disposition) -> None:
        uplink, fmt = self._uplink(index)
        raw = self.raws[index]
        device.touched = True
        if device.last_seen_at is None or raw.received_at > device.last_seen_at:
            device.last_seen_at = raw.received_at
        if uplink.battery != 255:
            device.battery = uplink.battery
        device.last_format = fmt.value
        device.last_transport = raw.transport.value
        if raw.gateway_id is not None and (
            device.best_rssi is None or (raw.rssi is not None and raw.rssi > device.best_rssi)
        ):
            device.last_gateway_id = raw.gateway_id
            device.best_rssi = raw.rssi
        self.outcomes[index] = Outcome(disposition, fmt, uplink, device_key=device.key)

    def _uplink(self, index: int) -> tuple[Uplink, WireFormat]:
        decoded = self.decoded[index]
        assert not isinstance(decoded, DecodeError)
        return decoded

    async def _save_devices(self, devices: dict[str, _DeviceState]) -> None:
        rows = []
        for device in devices.values():
            if not device.touched:
                continue
            if device.status == DeviceStatus.OFFLINE:
                device.status = DeviceStatus.ACTIVE
                self._note(await trouble.clear(self.session, device.ref, "offline", utcnow()))
                self.feed.append(
                    FeedMessage(
                        "device.updated",
                        {"eui": device.eui, "status": device.status, "battery": device.battery},
                        mahalla_id=device.mahalla_id,
                    )
                )
            rows.append(
                {
                    "device_id": device.id,
                    "window_highest": device.window.highest,
                    "window_seen": device.window.seen_signed,
                    "last_seen_at": device.last_seen_at,
                    "battery": device.battery,
                    "last_format": device.last_format,
                    "last_transport": device.last_transport,
                    "last_gateway_id": device.last_gateway_id,
                    "status": device.status,
                }
            )
        if not rows:
            return
        table = DEVICES
        await self.session.execute(
            update(table)
            .where(table.c.id == bindparam("device_id"))
            .values(
                window_highest=bindparam("window_highest"),
                window_seen=bindparam("window_seen"),
                last_seen_at=bindparam("last_seen_at", type_=table.c.last_seen_at.type),
                battery=func.coalesce(bindparam("battery", type_=Integer), table.c.battery),
                last_format=bindparam("last_format"),
                last_transport=bindparam("last_transport"),
                last_gateway_id=func.coalesce(
                    bindparam("last_gateway_id", type_=String), table.c.last_gateway_id
                ),
                status=bindparam("status"),
            )
            .execution_options(synchronize_session=False),
            rows,
        )

    # -- events ---------------------------------------------------------------------------------

    async def _split_below_window(
        self, indexes: list[int], devices: dict[str, _DeviceState]
    ) -> list[int]:
        """Below the window: a late copy of a stored event is a duplicate, all else a replay."""
        if not indexes:
            return []
        keys = {(devices[self._uplink(i)[0].eui].id, self._uplink(i)[0].counter) for i in indexes}
        rows = await self.session.execute(
            select(Event.device_id, Event.counter).where(
                tuple_(Event.device_id, Event.counter).in_(keys)
            )
        )
        stored = {(device_id, counter) for device_id, counter in rows}
        late: list[int] = []
        for index in indexes:
            uplink, _fmt = self._uplink(index)
            device = devices[uplink.eui]
            if (device.id, uplink.counter) in stored:
                late.append(index)
                continue
            self.reject(
                index,
                Reason.REPLAY,
                f"counter {uplink.counter} is below the window (highest "
                f"{device.window.highest}): counter went backwards — re-key or reset the device",
                uplink.eui,
            )
            at = self.raws[index].received_at
            self._note(await trouble.raise_(self.session, device.ref, "counter_reset", at))
        return late

    async def _insert_events(
        self, indexes: list[int], devices: dict[str, _DeviceState]
    ) -> dict[int, int]:
        """Insert new events; returns {batch index: event id} for rows this batch created."""
        if not indexes:
            return {}
        rows = []
        for index in indexes:
            uplink, _fmt = self._uplink(index)
            raw = self.raws[index]
            rows.append(
                {
                    "device_id": devices[uplink.eui].id,
                    "counter": uplink.counter,
                    "code": uplink.event.wire_name,
                    "flags": uplink.flags,
                    "drill": uplink.drill,
                    "battery": None if uplink.battery == 255 else uplink.battery,
                    "occurred_at": raw.received_at - timedelta(seconds=uplink.age_s),
                    "received_at": raw.received_at,
                    "reception_count": 1,
                    "best_rssi": raw.rssi,
                    "best_snr": raw.snr,
                    "gateway_ids": raw.gateway_id or "",
                    "first_transport": raw.transport.value,
                }
            )
        statement = (
            db.insert(self.session, Event)
            .on_conflict_do_nothing(index_elements=["device_id", "counter"])
            .returning(Event.id, Event.device_id, Event.counter)
        )
        created = {
            (row.device_id, row.counter): row.id
            for row in await self.session.execute(statement, rows)
        }
        inserted: dict[int, int] = {}
        for index, row in zip(indexes, rows, strict=True):
            event_id = created.get((row["device_id"], row["counter"]))
            if event_id is not None:
                inserted[index] = event_id
                self._accept(index, devices[self._uplink(index)[0].eui], Disposition.NEW)
        return inserted

    async def _record_duplicates(
        self, indexes: list[int], devices: dict[str, _DeviceState]
    ) -> dict[int, int]:
        """Add each extra copy to its event's reception record; returns {index: event id}."""
        if not indexes:
            return {}
        by_key: dict[tuple[int, int], list[int]] = {}
        for index in indexes:
            uplink, _fmt = self._uplink(index)
            by_key.setdefault((devices[uplink.eui].id, uplink.counter), []).append(index)
        events = {
            (row.device_id, row.counter): row
            for row in await self.session.execute(
                select(
                    Event.id,
                    Event.device_id,
                    Event.counter,
                    Event.alert_id,
                    Event.best_rssi,
                    Event.best_snr,
                    Event.gateway_ids,
                ).where(tuple_(Event.device_id, Event.counter).in_(list(by_key)))
            )
        }
        updates = []
        event_ids: dict[int, int] = {}
        for key, copies in by_key.items():
            event = events.get(key)
            for index in copies:
                device = devices[self._uplink(index)[0].eui]
                self._accept(index, device, Disposition.DUPLICATE)
                if event is not None:
                    event_ids[index] = event.id
                    outcome = self.outcomes[index]
                    assert outcome is not None
                    self.outcomes[index] = replace(outcome, alert_id=event.alert_id)
            if event is None:  # a duplicate heartbeat: heartbeats keep no event row
                continue
            rssis = [
                r for r in [event.best_rssi, *(self.raws[i].rssi for i in copies)] if r is not None
            ]
            snrs = [
                s for s in [event.best_snr, *(self.raws[i].snr for i in copies)] if s is not None
            ]
            gateways = [g for g in event.gateway_ids.split(",") if g]
            for index in copies:
                gateway_id = self.raws[index].gateway_id
                if gateway_id and gateway_id not in gateways:
                    gateways.append(gateway_id)
            updates.append(
                {
                    "event_id": event.id,
                    "extra": len(copies),
                    "best_rssi": max(rssis) if rssis else None,
                    "best_snr": max(snrs) if snrs else None,
                    "gateway_ids": ",".join(gateways),
                }
            )
        if updates:
            table = EVENTS
            await self.session.execute(
                update(table)
                .where(table.c.id == bindparam("event_id"))
                .values(
                    reception_count=table.c.reception_count + bindparam("extra"),
                    best_rssi=bindparam("best_rssi"),
                    best_snr=bindparam("best_snr"),
                    gateway_ids=bindparam("gateway_ids"),
                ),
                updates,
            )
        return event_ids

    async def _insert_receptions(
        self, event_ids: dict[int, int], devices: dict[str, _DeviceState]
    ) -> None:
        rows = [
            {
                "event_id": event_id,
                "transport": self.raws[index].transport.value,
                "gateway_id": self.raws[index].gateway_id,
                "rssi": self.raws[index].rssi,
                "snr": self.raws[index].snr,
                "received_at": self.raws[index].received_at,
            }
            for index, event_id in sorted(event_ids.items())
        ]
        if rows:
            await self.session.execute(insert(Reception), rows)

    # -- alerts ---------------------------------------------------------------------------------

    async def _apply_event(self, index: int, devices: dict[str, _DeviceState]) -> int | None:
        """Open, merge, cancel or clear as the event says; returns the alert it touched."""
        uplink, _fmt = self._uplink(index)
        device = devices[uplink.eui]
        at = self.raws[index].received_at
        category = POLICE_CATEGORY.get(uplink.event)
        if category is not None:
            return await self._open_or_merge(device, category, uplink, at)
        if uplink.event is EventCode.CANCEL:
            return await self._record_cancel(device, at)
        if uplink.event is EventCode.MAINS_RESTORED:
            return self._note(
                await trouble.clear(self.session, device.ref, EventCode.MAINS_LOST.wire_name, at)
            )
        return None

    async def _raise_troubles(
        self, raises: list[tuple[int, trouble.DeviceRef, str, datetime]]
    ) -> dict[int, int]:
        """Apply the buffered trouble raises (and empty the buffer); {event id: alert id}."""
        if not raises:
            return {}
        changes = await trouble.raise_many(
            self.session, [(device, kind, at) for _event_id, device, kind, at in raises]
        )
        linked = {}
        for (event_id, _device, _kind, _at), change in zip(raises, changes, strict=True):
            self._note(change)
            linked[event_id] = change.alert_id
        raises.clear()
        return linked

    async def _link_events(self, alert_of_event: dict[int, int]) -> None:
        """Point each new event at the alert it opened or joined (one statement)."""
        if alert_of_event:
            await self.session.execute(
                update(EVENTS)
                .where(EVENTS.c.id == bindparam("event_id"))
                .values(alert_id=bindparam("alert_id")),
                [
                    {"event_id": event_id, "alert_id": alert_id}
                    for event_id, alert_id in alert_of_event.items()
                ],
            )

    async def _open_or_merge(
        self, device: _DeviceState, category: AlertCategory, uplink: Uplink, at: datetime
    ) -> int:
        """One statement: open an alert, or merge the press into the device's open one."""
        priority = opening_priority(category, device.risk)
        statement = db.insert(self.session, Alert).values(
            device_id=device.id,
            mahalla_id=device.mahalla_id,
            category=category.value,
            priority=priority,
            state=AlertState.NEW.value,
            press_count=1,
            cancel_count=0,
            refusal_count=0,
            drill=uplink.drill,
            lat=device.lat,
            lon=device.lon,
            last_counter=uplink.counter,
            opened_at=at,
            last_event_at=at,
        )
        statement = statement.on_conflict_do_update(
            index_elements=["device_id", "category"],
            index_where=text(OPEN_STATES_SQL),
            set_={
                "press_count": Alert.press_count + 1,
                "last_event_at": statement.excluded.last_event_at,
                "last_counter": statement.excluded.last_counter,
                "priority": case(
                    (
                        Alert.press_count + 1 == REPEAT_PRESS_THRESHOLD,
                        Alert.priority + REPEAT_PRESS_BONUS,
                    ),
                    else_=Alert.priority,
                ),
            },
        ).returning(Alert.id, Alert.press_count)
        row = (await self.session.execute(statement)).one()
        if row.press_count == 1:
            self.opened.append(row.id)
            self.session.add(
                AlertAudit(
                    alert_id=row.id,
                    at=at,
                    actor=f"device:{device.eui}",
                    from_state=None,
                    to_state=AlertState.NEW.value,
                    reason=f"{uplink.event.wire_name} press, counter {uplink.counter}"
                    + (" (DRILL)" if uplink.drill else ""),
                )
            )
        else:
            self.updated.append(row.id)
        return int(row.id)

    async def _record_cancel(self, device: _DeviceState, at: datetime) -> int | None:
        """A cancel never stops a dispatch (duress); it is recorded on the open alert."""
        alert_id = await self.session.scalar(
            update(Alert)
            .where(
                Alert.device_id == device.id,
                Alert.category != AlertCategory.TROUBLE.value,
                Alert.state.in_(OPEN_ALERT_STATES),
            )
            .values(cancel_count=Alert.cancel_count + 1, last_event_at=at)
            .returning(Alert.id)
        )
        if alert_id is not None:
            self.updated.append(alert_id)
        return alert_id

    async def _announce_alerts(self) -> None:
        changed = list(dict.fromkeys(self.opened + self.updated))
        views = await alert_views(self.session, changed)
        opened = set(self.opened)
        for alert_id in changed:
            view = views[alert_id]
            self.feed.append(
                FeedMessage(
                    "alert.opened" if alert_id in opened else "alert.updated",
                    view,
                    alert_id=alert_id,
                    post_id=view["post_id"] or view["offered_post_id"],
                    mahalla_id=view["mahalla_id"],
                )
            )

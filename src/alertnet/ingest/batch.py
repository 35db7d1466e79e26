"""One ingest transaction: the uplinks of a micro-batch become events, receptions and alerts.

Device lookup (row-locked) → topic/MIC check → anti-replay window → events (the database is the
dedup: one per ``(device, dedup_key)``, ``c:<counter>`` for v1 frames) and receptions → the
alert side (``alerts.intake``) → device state → quarantine → feed. Events of other sources
(``ingest.sources``) take their own path through the same steps, their devices locked with
the others. Runs inside ``Pipeline.process``'s unit of work and never commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    Integer,
    String,
    Table,
    bindparam,
    func,
    insert,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from alertnet import db
from alertnet.alerts.intake import AlertIntake
from alertnet.alerts.opening import DeviceRef
from alertnet.dispatch.realpress import cancel_device_drills
from alertnet.ingest.outcomes import BatchResult, Disposition, Outcome, RawUplink, quarantine_row
from alertnet.ingest.sources import SourceEvent, SourceEvents, mark_tests
from alertnet.models import Device, DeviceStatus, Event, Mahalla, Quarantine, Reception, utcnow
from alertnet.protocol import (
    DecodeError,
    EventCode,
    Reason,
    ReplayWindow,
    Uplink,
    Verdict,
    WireFormat,
)
from alertnet.realtime.feed import FeedMessage, append

DEVICES = cast(Table, Device.__table__)
EVENTS = cast(Table, Event.__table__)
#: Gateways named on one event: enough for any real network; copies sent under ever new
#: gateway ids (the HTTP header is the client's to choose) cannot grow the row without end.
MAX_GATEWAY_IDS = 32


def counter_key(counter: int) -> str:
    """The dedup key of a v1 frame's event (DESIGN §2.3), whatever its transport."""
    return f"c:{counter}"


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
    dc09_key: bytes | None = None
    dc09_account: str | None = None
    touched: bool = False
    last_seen_at: datetime | None = None
    battery: int | None = None
    last_format: str | None = None
    last_transport: str | None = None
    last_gateway_id: str | None = None
    best_rssi: int | None = None

    @property
    def ref(self) -> DeviceRef:
        return DeviceRef(self.id, self.eui, self.mahalla_id, self.risk, self.lat, self.lon)


class Batch:
    """The work of one ingest transaction; lives only inside ``Pipeline.process``."""

    def __init__(
        self,
        session: AsyncSession,
        raws: Sequence[RawUplink],
        decoded: Sequence[tuple[Uplink, WireFormat] | DecodeError | SourceEvent],
    ) -> None:
        self.session = session
        self.raws = raws
        self.decoded = decoded
        self.outcomes: list[Outcome | None] = [None] * len(raws)
        self.quarantine: list[dict[str, Any]] = []
        self.feed: list[FeedMessage] = []
        self.alerts = AlertIntake(session, cancel_drills=cancel_device_drills)

    def reject(self, index: int, reason: Reason, detail: str, eui: str | None = None) -> None:
        raw = self.raws[index]
        decoded = self.decoded[index]
        fmt = decoded[1] if isinstance(decoded, tuple) else WireFormat.BINARY
        self.quarantine.append(quarantine_row(raw, reason, detail, eui))
        self.outcomes[index] = Outcome(Disposition.QUARANTINED, fmt, reason=reason, detail=detail)

    async def run(self) -> BatchResult:
        devices = await self._load_devices()
        new_events: list[int] = []
        duplicates: list[int] = []
        below_window: list[int] = []
        sources: list[int] = []
        for index, decoded in enumerate(self.decoded):
            if isinstance(decoded, SourceEvent):
                sources.append(index)
                continue
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
        for index, event_id in inserted.items():  # in batch order
            uplink, _fmt = self._uplink(index)
            at = self.raws[index].received_at
            await self.alerts.apply(event_id, devices[uplink.eui].ref, uplink, at)
        tests = [index for index in inserted if self._uplink(index)[0].event is EventCode.TEST]
        await mark_tests(
            self.session,
            [(devices[self._uplink(i)[0].eui].id, self.raws[i].received_at) for i in tests],
        )
        if sources:
            by_id = {device.id: device for device in devices.values()}
            event_ids.update(await SourceEvents(self, by_id).run(sources))
        alert_of_event = await self.alerts.link_events()
        for index, event_id in event_ids.items():  # every copy learns its event's alert
            outcome = self.outcomes[index]
            if outcome is not None and outcome.alert_id is None and event_id in alert_of_event:
                self.outcomes[index] = replace(outcome, alert_id=alert_of_event[event_id])
        await self._save_devices(devices)
        if self.quarantine:
            await self.session.execute(insert(Quarantine), self.quarantine)
        self.feed += await self.alerts.announcements()
        if self.feed:
            await append(self.session, self.feed)
        outcomes = [outcome for outcome in self.outcomes if outcome is not None]
        assert len(outcomes) == len(self.raws), "every uplink gets an outcome"
        return BatchResult(outcomes, self.alerts.opened)

    # -- devices --------------------------------------------------------------------------------

    async def _load_devices(self) -> dict[str, _DeviceState]:
        euis = {d[0].eui for d in self.decoded if isinstance(d, tuple)}
        ids = {d.device_id for d in self.decoded if isinstance(d, SourceEvent)}
        if not euis and not ids:
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
                Device.dc09_key,
                Device.dc09_account,
            )
            .outerjoin(Mahalla, Mahalla.id == Device.mahalla_id)
            .where(or_(Device.eui.in_(euis), Device.id.in_(ids)))
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
                dc09_key=row.dc09_key,
                dc09_account=row.dc09_account,
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
        assert isinstance(decoded, tuple)
        return decoded

    async def _save_devices(self, devices: dict[str, _DeviceState]) -> None:
        rows = []
        for device in devices.values():
            if not device.touched:
                continue
            if device.status == DeviceStatus.OFFLINE:
                device.status = DeviceStatus.ACTIVE
                await self.alerts.clear_trouble(device.ref, "offline", utcnow())
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
                # Sources other than v1 frames leave the last frame format as it was.
                last_format=func.coalesce(
                    bindparam("last_format", type_=String), table.c.last_format
                ),
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
        keys = {
            (devices[self._uplink(i)[0].eui].id, counter_key(self._uplink(i)[0].counter))
            for i in indexes
        }
        rows = await self.session.execute(
            select(Event.device_id, Event.dedup_key).where(
                tuple_(Event.device_id, Event.dedup_key).in_(keys)
            )
        )
        stored = {(device_id, dedup_key) for device_id, dedup_key in rows}
        late: list[int] = []
        for index in indexes:
            uplink, _fmt = self._uplink(index)
            device = devices[uplink.eui]
            if (device.id, counter_key(uplink.counter)) in stored:
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
            await self.alerts.raise_trouble(device.ref, "counter_reset", at)
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
                    "dedup_key": counter_key(uplink.counter),
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
            .on_conflict_do_nothing(index_elements=["device_id", "dedup_key"])
            .returning(Event.id, Event.device_id, Event.dedup_key)
        )
        created = {
            (row.device_id, row.dedup_key): row.id
            for row in await self.session.execute(statement, rows)
        }
        inserted: dict[int, int] = {}
        for index, row in zip(indexes, rows, strict=True):
            event_id = created.get((row["device_id"], row["dedup_key"]))
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
        by_key: dict[tuple[int, str], list[int]] = {}
        for index in indexes:
            uplink, _fmt = self._uplink(index)
            key = (devices[uplink.eui].id, counter_key(uplink.counter))
            by_key.setdefault(key, []).append(index)
        events = {
            (row.device_id, row.dedup_key): row
            for row in await self.session.execute(
                select(
                    Event.id,
                    Event.device_id,
                    Event.dedup_key,
                    Event.alert_id,
                    Event.best_rssi,
                    Event.best_snr,
                    Event.gateway_ids,
                ).where(tuple_(Event.device_id, Event.dedup_key).in_(list(by_key)))
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
                if gateway_id and gateway_id not in gateways and len(gateways) < MAX_GATEWAY_IDS:
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

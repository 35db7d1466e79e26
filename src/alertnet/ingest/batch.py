"""One ingest transaction: the uplinks of a micro-batch become events, receptions and alerts.

Topic/MIC check and anti-replay window on the process's cached devices → every window and
device state written in one compare-and-set, which first row-locks every device of the batch in
id order (``ingest.device_cache``; a device found changed, or refused on cached facts, is then
read again under that lock and judged again)
→ events (the database is the dedup: one per ``(device, dedup_key)``, ``c:<counter>`` for v1
frames) and receptions → the alert side (``alerts.intake``, under those row locks) →
quarantine → feed. Events of other sources (``ingest.sources``) take their own path through the
same steps, their devices read row-locked. Runs inside ``Pipeline.process``'s unit of work and
never commits; ``Batch.committed()`` then teaches the cache what the commit made true.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, cast

from sqlalchemy import (
    Table,
    bindparam,
    insert,
    select,
    tuple_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from alertnet import db
from alertnet.alerts.intake import AlertIntake
from alertnet.alerts.opening import DeviceRef
from alertnet.dispatch.realpress import cancel_device_drills
from alertnet.ingest.device_cache import (
    DeviceCache,
    DeviceFacts,
    DeviceWrite,
    compare_and_set,
    read_devices,
    save_devices,
)
from alertnet.ingest.outcomes import BatchResult, Disposition, Outcome, RawUplink, quarantine_row
from alertnet.ingest.sources import SourceEvent, SourceEvents, mark_tests
from alertnet.models import DeviceStatus, Event, Quarantine, Reception, utcnow
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

    @classmethod
    def of(cls, facts: DeviceFacts) -> _DeviceState:
        return cls(
            id=facts.id,
            eui=facts.eui,
            key=facts.key,
            status=facts.status,
            mahalla_id=facts.mahalla_id,
            risk=facts.risk,
            lat=facts.lat,
            lon=facts.lon,
            window=ReplayWindow.from_db(facts.window_highest, facts.window_seen),
            dc09_key=facts.dc09_key,
            dc09_account=facts.dc09_account,
        )

    @property
    def ref(self) -> DeviceRef:
        return DeviceRef(self.id, self.eui, self.mahalla_id, self.risk, self.lat, self.lon)

    def write(self, facts: DeviceFacts) -> DeviceWrite:
        """This state written over ``facts``, if the device is still as ``facts`` say."""
        return DeviceWrite(
            id=self.id,
            revision=facts.revision,
            old_highest=facts.window_highest,
            old_seen=facts.window_seen,
            window_highest=self.window.highest,
            window_seen=self.window.seen_signed,
            last_seen_at=self.last_seen_at,
            battery=self.battery,
            last_format=self.last_format,
            last_transport=self.last_transport,
            last_gateway_id=self.last_gateway_id,
        )


@dataclass(frozen=True, slots=True)
class _Refusal:
    reason: Reason
    detail: str


class _Call(Enum):
    """What a v1 frame is to its device's state (``Batch._judge``), before the database has
    its say (events are deduplicated by their unique key, late copies by the stored events)."""

    HEARTBEAT = "heartbeat"
    NEW_EVENT = "new_event"
    DUPLICATE = "duplicate"
    BELOW_WINDOW = "below_window"


class Batch:
    """The work of one ingest transaction; lives only inside ``Pipeline.process``.

    ``devices`` is the process's cache: read before the transaction's writes, taught what it
    committed by ``committed()`` once the caller has committed.
    """

    def __init__(
        self,
        session: AsyncSession,
        raws: Sequence[RawUplink],
        decoded: Sequence[tuple[Uplink, WireFormat] | DecodeError | SourceEvent],
        *,
        devices: DeviceCache,
    ) -> None:
        self.session = session
        self.raws = raws
        self.decoded = decoded
        self.outcomes: list[Outcome | None] = [None] * len(raws)
        self.quarantine: list[dict[str, Any]] = []
        self.feed: list[FeedMessage] = []
        self.alerts = AlertIntake(session, cancel_drills=cancel_device_drills)
        self._cache = devices
        self._learned: dict[str, DeviceFacts] = {}  # what the cache learns on commit
        self._new_events: list[int] = []
        self._duplicates: list[int] = []
        self._below_window: list[int] = []

    def reject(self, index: int, reason: Reason, detail: str, eui: str | None = None) -> None:
        raw = self.raws[index]
        decoded = self.decoded[index]
        fmt = decoded[1] if isinstance(decoded, tuple) else WireFormat.BINARY
        self.quarantine.append(quarantine_row(raw, reason, detail, eui))
        self.outcomes[index] = Outcome(Disposition.QUARANTINED, fmt, reason=reason, detail=detail)

    def committed(self) -> None:
        """Teach the cache what this batch read and wrote; call only once it is committed."""
        self._cache.put(self._learned.values())

    async def run(self) -> BatchResult:
        # SQLite: the write lock first, so that what the slow path reads is what it overwrites.
        await db.write_lock(self.session)
        sources = [i for i, d in enumerate(self.decoded) if isinstance(d, SourceEvent)]
        devices = await self._judge_frames(sources)
        new_events = sorted(self._new_events)
        duplicates = sorted(self._duplicates)
        duplicates += await self._split_below_window(sorted(self._below_window), devices)
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

    async def _judge_frames(self, sources: Sequence[int]) -> dict[str, _DeviceState]:
        """Judge every v1 frame and lock every device of the batch; the devices by eui.

        Fast path: a device the cache knows (or this batch read unlocked), active, whose frames
        all pass on the cached facts, is written at once by ``compare_and_set``, which first
        row-locks every device of the batch. Slow path — a device whose write found it changed,
        or that a frame fails on (unknown, disabled, bad MIC: refused only on fresh facts, so a
        re-keyed or re-enabled device is never refused on stale ones), that reports below its
        window, is offline, or has a source event — is read row-locked and judged again.
        """
        frames: dict[str, list[int]] = {}
        for index, decoded in enumerate(self.decoded):
            if isinstance(decoded, SourceEvent):
                continue
            if isinstance(decoded, DecodeError):
                self.reject(index, decoded.reason, decoded.detail)
                continue
            uplink, _fmt = decoded
            topic_eui = self.raws[index].topic_eui
            if topic_eui is not None and topic_eui != uplink.eui:
                self.reject(
                    index,
                    Reason.EUI_MISMATCH,
                    f"topic names {topic_eui}, frame carries {uplink.eui}",
                    uplink.eui,
                )
                continue
            frames.setdefault(uplink.eui, []).append(index)
        source_ids = {cast(SourceEvent, self.decoded[i]).device_id for i in sources}
        known = await self._known(frames)
        slow: set[str] = set()
        fast: dict[str, tuple[_DeviceState, DeviceFacts, list[_Call]]] = {}
        for eui, indexes in frames.items():
            facts = known.get(eui)
            if facts is None:
                continue  # read just now and absent: unknown
            if facts.status != DeviceStatus.ACTIVE or facts.id in source_ids:
                slow.add(eui)
                continue
            device = _DeviceState.of(facts)
            calls = [self._judge(index, device) for index in indexes]
            accepted = [call for call in calls if isinstance(call, _Call)]
            if len(accepted) == len(calls) and _Call.BELOW_WINDOW not in accepted:
                fast[eui] = (device, facts, accepted)
            else:
                slow.add(eui)
        # One lock pass, in id order, over every device of the batch: the compare-and-set
        # locks the slow path's devices with its own, so the locked read of those and of the
        # devices it found changed never waits (without fast devices, that read is the pass).
        written = await compare_and_set(
            self.session,
            [device.write(facts) for device, facts, _calls in fast.values()],
            also_lock={known[eui].id for eui in slow} | source_ids,
        )
        changed = {eui for eui, (device, _f, _c) in fast.items() if device.id not in written}
        devices = await self._lock_and_judge(frames, slow | changed, source_ids)
        for eui, (device, facts, judged) in fast.items():
            if eui in changed:
                continue
            devices[eui] = device
            device.touched = False  # written: ``_save_devices`` leaves it alone
            self._learned[eui] = facts.with_window(device.window.highest, device.window.seen_signed)
            for index, call in zip(frames[eui], judged, strict=True):
                self._record(index, device, call)
        for eui in frames.keys() - fast.keys() - slow:  # read just now and absent: unknown
            for index in frames[eui]:
                self._record(index, None, self._judge(index, None))
        return devices

    async def _lock_and_judge(
        self, frames: Mapping[str, list[int]], euis: Collection[str], ids: Collection[int]
    ) -> dict[str, _DeviceState]:
        """Read these devices row-locked and judge their frames on what they are now."""
        devices: dict[str, _DeviceState] = {}
        for facts in await read_devices(self.session, euis, ids, lock=True):
            devices[facts.eui] = _DeviceState.of(facts)
            self._learned[facts.eui] = facts
        for eui in euis:
            fresh = devices.get(eui)
            for index in frames[eui]:
                self._record(index, fresh, self._judge(index, fresh))
        return devices

    async def _known(self, frames: Mapping[str, list[int]]) -> dict[str, DeviceFacts]:
        """The cached facts of these devices; those not cached are read (unlocked) now."""
        known: dict[str, DeviceFacts] = {}
        missing: list[str] = []
        for eui in frames:
            facts = self._cache.get(eui)
            if facts is None:
                missing.append(eui)
            else:
                known[eui] = facts
        for facts in await read_devices(self.session, missing, (), lock=False):
            known[facts.eui] = facts
            self._learned[facts.eui] = facts
        return known

    def _judge(self, index: int, device: _DeviceState | None) -> _Call | _Refusal:
        """The frame at ``index`` against ``device``: moves its window and marks it heard when
        the frame is accepted (a new counter or a copy within the window)."""
        uplink, _fmt = self._uplink(index)
        if device is None:
            return _Refusal(Reason.UNKNOWN_DEVICE, f"no device {uplink.eui}")
        if device.status == DeviceStatus.DISABLED:
            return _Refusal(Reason.DISABLED_DEVICE, f"{uplink.eui} is disabled")
        if not uplink.verify(device.key):
            return _Refusal(Reason.BAD_MIC, "MIC does not match the device key")
        verdict = device.window.check(uplink.counter)
        if verdict is Verdict.REPLAY:
            return _Call.BELOW_WINDOW
        self._heard(index, device)
        if verdict is Verdict.DUPLICATE:
            return _Call.DUPLICATE
        device.window = device.window.accept(uplink.counter)
        return _Call.HEARTBEAT if uplink.event is EventCode.HEARTBEAT else _Call.NEW_EVENT

    def _record(self, index: int, device: _DeviceState | None, call: _Call | _Refusal) -> None:
        if isinstance(call, _Refusal):
            self.reject(index, call.reason, call.detail, self._uplink(index)[0].eui)
        elif call is _Call.HEARTBEAT:
            assert device is not None
            self._accept(index, device, Disposition.HEARTBEAT)
        elif call is _Call.NEW_EVENT:
            self._new_events.append(index)
        elif call is _Call.DUPLICATE:
            self._duplicates.append(index)
        else:
            self._below_window.append(index)

    def _heard(self, index: int, device: _DeviceState) -> None:
        """What an accepted frame tells about its device: last heard, battery, how to answer."""
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

    def _accept(self, index: int, device: _DeviceState, disposition: Disposition) -> None:
        uplink, fmt = self._uplink(index)
        self.outcomes[index] = Outcome(disposition, fmt, uplink, device_key=device.key)

    def _uplink(self, index: int) -> tuple[Uplink, WireFormat]:
        decoded = self.decoded[index]
        assert isinstance(decoded, tuple)
        return decoded

    async def _save_devices(self, devices: dict[str, _DeviceState]) -> None:
        """Write the devices of the slow path (row-locked since they were read)."""
        rows = []
        for device in devices.values():
            if not device.touched:
                continue
            if device.status == DeviceStatus.OFFLINE:
                device.status = DeviceStatus.ACTIVE
                self._learned.pop(device.eui, None)  # its revision moves: read it again
                await self.alerts.clear_trouble(device.ref, "offline", utcnow())
                self.feed.append(
                    FeedMessage(
                        "device.updated",
                        {"eui": device.eui, "status": device.status, "battery": device.battery},
                        mahalla_id=device.mahalla_id,
                    )
                )
            learned = self._learned.get(device.eui)
            if learned is not None:
                self._learned[device.eui] = learned.with_window(
                    device.window.highest, device.window.seen_signed
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
        await save_devices(self.session, rows)

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
                self._heard(index, device)
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

"""Events that are not v1 frames (DESIGN §2.3, §9): one input type for the one pipeline.

A transport whose devices do not speak alertnet's own frame — an alarm panel over SIA DC-09
(§9.1), and drills created inside alertnet (§12) — decodes its input into a ``SourceEvent`` and
hands it to ``Pipeline.submit_event``. It is batched with the v1 uplinks (alarms first),
committed in the same transaction, and only then answered. ``SourceEvents`` is its share of
one batch (``ingest.batch``): the device row locked with the others, its status and DC-09 key
checked again under that lock, one event per ``(device, dedup_key)`` (the database is the
dedup), every copy counted as a reception, then the alert side (``alerts.intake``).

There is no replay window here: the source's own key is the dedup. A key that may come back
legitimately (a DC-09 sequence number wraps, a panel restarts at 0001) is given
``renew_after_s``: a copy whose key was first seen longer ago than that is a new event, keyed
``<key>:<epoch minute>``, and later copies of it are duplicates of that one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final, cast

from sqlalchemy import Table, bindparam, insert, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from alertnet import db
from alertnet.alerts.opening import AlertOpening
from alertnet.ingest.outcomes import Disposition, Outcome, RawUplink, storable_text
from alertnet.models import (
    AlertCategory,
    DeviceStatus,
    DeviceTestMonth,
    Event,
    Reception,
    Transport,
    utcnow,
)
from alertnet.protocol import Reason

if TYPE_CHECKING:
    from alertnet.ingest.batch import Batch, _DeviceState

__all__ = ["DEDUP_KEY_CHARS", "EVENT_CODE_CHARS", "SourceEvent", "SourceEvents", "SourceKind"]

EVENTS = cast(Table, Event.__table__)
DEDUP_KEY_CHARS: Final = cast(Any, EVENTS.c.dedup_key.type).length
EVENT_CODE_CHARS: Final = cast(Any, EVENTS.c.code.type).length
#: Room left in a key for the ``:<epoch minute>`` suffix of a renewed key.
_RENEWAL_SUFFIX_CHARS: Final = 12


class SourceKind(StrEnum):
    """What a source event does in the domain (DESIGN §3, §9.1)."""

    ALARM = "alarm"  # opens an alert of ``category``, or merges into the open one
    RESTORE = "restore"  # an alarm restore: recorded on the open alert, never closes it
    CANCEL = "cancel"  # recorded on the device's open alert; never stops a dispatch (§2.3)
    TROUBLE = "trouble"  # raises trouble ``trouble`` (mains_lost, low_battery, unknown_code…)
    TROUBLE_RESTORE = "trouble_restore"  # clears trouble ``trouble``
    RECORD = "record"  # an event and nothing more (a panel armed or disarmed)
    TEST = "test"  # a test report: an event (the month's test received, §12)
    SUPERVISION = "supervision"  # heard, nothing stored (a DC-09 NULL message, a heartbeat)


#: Kinds that never wait behind routine traffic (DESIGN §6.6).
URGENT_KINDS: Final = frozenset({SourceKind.ALARM, SourceKind.CANCEL})
#: Kinds that count as the month's test (DESIGN §9.1: test reports and link tests; §12).
TEST_KINDS: Final = frozenset({SourceKind.TEST, SourceKind.SUPERVISION})


@dataclass(frozen=True, slots=True)
class SourceEvent:
    """One message of a non-v1 source, decoded and attributed to a device by its transport.

    ``dedup_key`` names the message (``dc09:<seq>:<hash>``, ``drill:<drill_id>:<n>``): its
    copies (retries) are one event. ``code`` is the event's name as stored and shown (``panic``,
    ``restore``, ``mains_lost``, ``unknown_code``…); ``details`` whatever else the source says
    (DC-09 zone, partition, raw code, clock skew), kept on the event as JSON.

    ``raw`` and ``source`` (the peer's address) are kept if the event ends in quarantine.
    ``reception``: the copy is recorded as a reception (False for drills: nothing was heard);
    ``heard``: the device is marked as heard (False for drills). ``dc09_key``, when
    ``check_dc09_key``: the key the transport decrypted it with (None: it came unencrypted);
    the batch refuses it if the device's key is no longer that one (re-keyed meanwhile).
    ``dc09_account``, when ``check_dc09_key``: the account it came from; the batch refuses it
    (``unknown_account``) if the device no longer has that account (moved meanwhile).
    """

    device_id: int
    dedup_key: str
    kind: SourceKind
    code: str
    transport: Transport
    received_at: datetime = field(default_factory=utcnow)
    category: AlertCategory | None = None
    trouble: str | None = None
    silent: bool = False
    drill: bool = False
    details: Mapping[str, Any] | None = None
    reason: str = ""  # the opening audit's reason for an alert this event opens
    raw: bytes = b""
    source: str = ""
    reception: bool = True
    heard: bool = True
    renew_after_s: float | None = None
    check_dc09_key: bool = False
    dc09_key: bytes | None = None
    dc09_account: str | None = None
    # A camera alert this event opens rings after this long in ``verify`` (DESIGN §9.3).
    verify_timeout_s: float = 60.0
    # The dispatcher's drill that creates it (DESIGN §12): the alert it opens points there.
    drill_id: int | None = None

    def __post_init__(self) -> None:
        if not self.dedup_key or len(self.dedup_key) > DEDUP_KEY_CHARS - _RENEWAL_SUFFIX_CHARS:
            raise ValueError(f"dedup key {self.dedup_key!r} is empty or too long")
        if not self.code or len(self.code) > EVENT_CODE_CHARS:
            raise ValueError(f"event code {self.code!r} is empty or too long")
        if self.kind in (SourceKind.ALARM, SourceKind.RESTORE) and (
            self.category is None or self.category is AlertCategory.TROUBLE
        ):
            raise ValueError(f"a {self.kind} event needs an alarm category")
        if self.kind in (SourceKind.TROUBLE, SourceKind.TROUBLE_RESTORE) and not self.trouble:
            raise ValueError(f"a {self.kind} event needs a trouble kind")
        if self.received_at.tzinfo is None:
            raise ValueError("received_at must be timezone-aware")
        if self.details is not None:
            object.__setattr__(self, "details", storable_details(self.details) or None)

    @property
    def urgent(self) -> bool:
        return self.kind in URGENT_KINDS

    @property
    def stored(self) -> bool:
        """Whether the event is a row (supervision is not)."""
        return self.kind is not SourceKind.SUPERVISION

    def raw_uplink(self) -> RawUplink:
        """The input as the pipeline keeps it for quarantine and metrics."""
        return RawUplink(self.raw, self.transport, received_at=self.received_at, source=self.source)


def renewed_key(key: str, at: datetime) -> str:
    """``<key>:<epoch minute>``: a key seen again long after its first event (§9.1)."""
    return f"{key}:{int(at.timestamp()) // 60}"


@dataclass(slots=True)
class _Latest:
    """The newest stored event of a base key (itself or a renewal of it)."""

    id: int
    dedup_key: str
    received_at: datetime
    alert_id: int | None


class SourceEvents:
    """The source events of one batch; see the module docstring. Never commits."""

    def __init__(self, batch: Batch, devices: Mapping[int, _DeviceState]) -> None:
        self._batch = batch
        self._devices = devices
        self._tests: list[tuple[int, datetime]] = []

    def _event(self, index: int) -> SourceEvent:
        event = self._batch.decoded[index]
        assert isinstance(event, SourceEvent)
        return event

    async def run(self, indexes: Sequence[int]) -> dict[int, int]:
        """Check, store and apply the source events at these batch positions, in order.

        Returns ``{batch index: event id}`` for every copy that is (or joined) an event.
        """
        stored: list[int] = []
        for index in indexes:
            event = self._event(index)
            device = self._devices.get(event.device_id)
            if device is None:
                self._batch.reject(index, Reason.UNKNOWN_DEVICE, f"no device #{event.device_id}")
            elif device.status == DeviceStatus.DISABLED:
                self._batch.reject(
                    index, Reason.DISABLED_DEVICE, f"{device.eui} is disabled", device.eui
                )
            elif event.check_dc09_key and event.dc09_account != device.dc09_account:
                self._batch.reject(
                    index,
                    Reason.UNKNOWN_ACCOUNT,
                    f"account {event.dc09_account} is no longer {device.eui}'s",
                    device.eui,
                )
            elif event.check_dc09_key and event.dc09_key != device.dc09_key:
                if event.dc09_key is None:
                    reason = Reason.ENCRYPTION_REQUIRED
                    detail = f"{device.eui} has a DC-09 key now: plain text is refused"
                else:
                    reason = Reason.DECRYPT_FAILED
                    detail = f"the DC-09 key of {device.eui} changed while the message came"
                self._batch.reject(index, reason, detail, device.eui)
            elif not event.stored:
                self._heard(event, device)
                self._batch.outcomes[index] = Outcome(Disposition.HEARTBEAT)
                if event.kind in TEST_KINDS:
                    self._tests.append((event.device_id, event.received_at))
            else:
                stored.append(index)
        latest = await self._latest(self._keys(stored))
        new: dict[int, str] = {}  # batch index → the key of the event it creates
        stored_copies: dict[int, _Latest] = {}  # index → the stored event it is a copy of
        batch_copies: dict[int, int] = {}  # index → the earlier index of this batch it copies
        first_of_key: dict[tuple[int, str], int] = {}
        for index in stored:
            event = self._event(index)
            base = (event.device_id, event.dedup_key)
            earlier = first_of_key.setdefault(base, index)
            if earlier != index:
                batch_copies[index] = earlier
                continue
            found = latest.get(base)
            if found is None:
                new[index] = event.dedup_key
            elif event.renew_after_s is not None and event.received_at - found.received_at > (
                timedelta(seconds=event.renew_after_s)
            ):
                new[index] = renewed_key(event.dedup_key, event.received_at)
            else:
                stored_copies[index] = found
        event_ids = await self._insert(new)
        lost = [index for index in new if index not in event_ids]
        if lost:  # another process stored the key first: these are copies of its event
            again = await self._latest(self._keys(lost))
            for index in lost:
                event = self._event(index)
                stored_copies[index] = again[(event.device_id, event.dedup_key)]
        copies: dict[int, tuple[int, str, int | None]] = {
            index: (found.id, found.dedup_key, found.alert_id)
            for index, found in stored_copies.items()
        }
        for index, earlier in batch_copies.items():
            if earlier in event_ids:
                copies[index] = (event_ids[earlier], new[earlier], None)
            else:
                copies[index] = copies[earlier]
        await self._count_copies(copies)
        heard = event_ids | {index: copy[0] for index, copy in copies.items()}
        await self._insert_receptions(heard)
        for index in new:
            if index in event_ids:
                await self._apply(index, event_ids[index])
                if self._event(index).kind in TEST_KINDS:
                    self._tests.append(
                        (self._event(index).device_id, self._event(index).received_at)
                    )
        await mark_tests(self._batch.session, self._tests)
        for index, earlier in batch_copies.items():  # copies learn the alert of their event
            outcome, first = self._batch.outcomes[index], self._batch.outcomes[earlier]
            if outcome is not None and first is not None and outcome.alert_id is None:
                self._batch.outcomes[index] = replace(outcome, alert_id=first.alert_id)
        return heard

    # -- keys -----------------------------------------------------------------------------------

    def _keys(self, indexes: Sequence[int]) -> set[tuple[int, str]]:
        return {(self._event(i).device_id, self._event(i).dedup_key) for i in indexes}

    async def _latest(self, keys: set[tuple[int, str]]) -> dict[tuple[int, str], _Latest]:
        """For each (device, base key): its newest stored event, the key itself or a renewal.

        Row locks on the devices (``Batch._lock_and_judge``) serialize two processes on one
        device, so what this reads is what the other committed.
        """
        if not keys:
            return {}
        renewals = [
            (EVENTS.c.device_id == device_id)
            & EVENTS.c.dedup_key.startswith(f"{key}:", autoescape=True)
            for device_id, key in keys
        ]
        rows = await self._batch.session.execute(
            select(
                EVENTS.c.id,
                EVENTS.c.device_id,
                EVENTS.c.dedup_key,
                EVENTS.c.received_at,
                EVENTS.c.alert_id,
            ).where(
                or_(
                    tuple_(EVENTS.c.device_id, EVENTS.c.dedup_key).in_(list(keys)),
                    *renewals,
                )
            )
        )
        latest: dict[tuple[int, str], _Latest] = {}
        for row in rows:
            base = row.dedup_key
            if (row.device_id, base) not in keys:
                base = base.rsplit(":", 1)[0]
            found = latest.get((row.device_id, base))
            if found is None or row.received_at > found.received_at:
                latest[(row.device_id, base)] = _Latest(
                    row.id, row.dedup_key, row.received_at, row.alert_id
                )
        return latest

    # -- rows -------------------------------------------------------------------------------------

    async def _insert(self, new: Mapping[int, str]) -> dict[int, int]:
        """Insert the new events; ``{batch index: event id}`` for the rows this batch created."""
        if not new:
            return {}
        rows = []
        for index, key in new.items():
            event = self._event(index)
            rows.append(
                {
                    "device_id": event.device_id,
                    "dedup_key": key,
                    "counter": None,
                    "code": event.code,
                    "flags": 0,
                    "drill": event.drill,
                    "battery": None,
                    "occurred_at": event.received_at,
                    "received_at": event.received_at,
                    "reception_count": 1 if event.reception else 0,
                    "best_rssi": None,
                    "best_snr": None,
                    "gateway_ids": "",
                    "first_transport": event.transport.value,
                    "details": dict(event.details) if event.details else None,
                }
            )
        statement = (
            db.insert(self._batch.session, Event)
            .on_conflict_do_nothing(index_elements=["device_id", "dedup_key"])
            .returning(Event.id, Event.device_id, Event.dedup_key)
        )
        created = {
            (row.device_id, row.dedup_key): row.id
            for row in await self._batch.session.execute(statement, rows)
        }
        inserted: dict[int, int] = {}
        for index, row in zip(new, rows, strict=True):
            event_id = created.get((row["device_id"], row["dedup_key"]))
            if event_id is not None:
                inserted[index] = event_id
                self._accepted(index, Disposition.NEW, event_id, new[index], None)
        return inserted

    async def _count_copies(self, copies: Mapping[int, tuple[int, str, int | None]]) -> None:
        """Answer each copy as a duplicate of its event and add it to the reception count."""
        extra: dict[int, int] = {}
        for index, (event_id, key, alert_id) in copies.items():
            self._accepted(index, Disposition.DUPLICATE, event_id, key, alert_id)
            if self._event(index).reception:
                extra[event_id] = extra.get(event_id, 0) + 1
        if extra:
            await self._batch.session.execute(
                update(EVENTS)
                .where(EVENTS.c.id == bindparam("event_id"))
                .values(reception_count=EVENTS.c.reception_count + bindparam("extra")),
                [{"event_id": event_id, "extra": count} for event_id, count in extra.items()],
            )

    async def _insert_receptions(self, event_ids: Mapping[int, int]) -> None:
        rows = [
            {
                "event_id": event_id,
                "transport": self._event(index).transport.value,
                "gateway_id": None,
                "rssi": None,
                "snr": None,
                "received_at": self._event(index).received_at,
            }
            for index, event_id in sorted(event_ids.items())
            if self._event(index).reception
        ]
        if rows:
            await self._batch.session.execute(insert(Reception), rows)

    def _accepted(
        self,
        index: int,
        disposition: Disposition,
        event_id: int,
        dedup_key: str,
        alert_id: int | None,
    ) -> None:
        event = self._event(index)
        self._heard(event, self._devices[event.device_id])
        self._batch.outcomes[index] = Outcome(
            disposition, alert_id=alert_id, event_id=event_id, dedup_key=dedup_key
        )

    def _heard(self, event: SourceEvent, device: _DeviceState) -> None:
        if not event.heard:
            return
        device.touched = True
        if device.last_seen_at is None or event.received_at > device.last_seen_at:
            device.last_seen_at = event.received_at
        device.last_transport = event.transport.value

    # -- the alert side ---------------------------------------------------------------------------

    async def _apply(self, index: int, event_id: int) -> None:
        """What the new event ``event_id`` does to alerts (DESIGN §3, §9.1)."""
        event = self._event(index)
        device = self._devices[event.device_id].ref
        alerts = self._batch.alerts
        at = event.received_at
        alert_id: int | None = None
        if event.kind is SourceKind.ALARM:
            assert event.category is not None
            opening = AlertOpening(
                device,
                event.category,
                at,
                reason=(event.reason or event.code)
                + (" (DRILL)" if event.drill else "")
                + (" (SILENT)" if event.silent else ""),
                drill=event.drill,
                silent=event.silent,
                verify_timeout_s=event.verify_timeout_s,
            )
            alert_id = await alerts.open_or_merge(opening, drill_id=event.drill_id)
        elif event.kind is SourceKind.RESTORE:
            assert event.category is not None
            alert_id = await alerts.record_restore(device, event.category, at)
        elif event.kind is SourceKind.CANCEL:
            alert_id = await alerts.record_cancel(device, at)
        elif event.kind is SourceKind.TROUBLE:
            assert event.trouble is not None
            alerts.queue_trouble(event_id, device, event.trouble, at)
        elif event.kind is SourceKind.TROUBLE_RESTORE:
            assert event.trouble is not None
            alert_id = await alerts.clear_trouble(device, event.trouble, at)
        if alert_id is not None:
            alerts.link(event_id, alert_id)
        outcome = self._batch.outcomes[index]
        if outcome is not None and alert_id is not None:
            self._batch.outcomes[index] = replace(outcome, alert_id=alert_id)


def storable_details(details: Mapping[str, Any]) -> dict[str, Any]:
    """``details`` with every text value storable (no NUL, bounded): sources quote devices."""
    return {
        storable_text(str(key), 40): storable_text(value, 200) if isinstance(value, str) else value
        for key, value in details.items()
    }


def test_month(at: datetime) -> str:
    """The calendar month (UTC) a test counts for: ``YYYY-MM``."""
    return at.astimezone(UTC).strftime("%Y-%m")


async def mark_tests(session: AsyncSession, tests: Sequence[tuple[int, datetime]]) -> None:
    """Mark each (device, month) of ``tests`` as tested, once: the first test of a month is
    kept, later ones change nothing (one statement for the batch)."""
    first: dict[tuple[int, str], datetime] = {}
    for device_id, at in tests:
        key = (device_id, test_month(at))
        if key not in first or at < first[key]:
            first[key] = at
    if not first:
        return
    rows = [
        {"device_id": device_id, "month": month, "first_at": at}
        for (device_id, month), at in sorted(first.items())
    ]
    await session.execute(
        db.insert(session, DeviceTestMonth).on_conflict_do_nothing(
            index_elements=["device_id", "month"]
        ),
        rows,
    )

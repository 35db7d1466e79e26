"""The alert side of ingest: what the new events of one batch do to alerts (DESIGN §3).

A press opens an alert or merges into the device's open one of its category (one upsert on the
partial unique index of open alerts); a cancel is recorded on the open alert and never stops its
dispatch (duress); trouble events raise and clear the device's trouble alert
(``alerts.trouble``). Each new event is then linked to the alert it touched, and every alert
the batch changed is announced on the feed. Works in the pipeline's transaction; never commits.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, case, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from alertnet import db
from alertnet.alerts import trouble
from alertnet.alerts.opening import AlertOpening, DeviceRef
from alertnet.alerts.priority import REPEAT_PRESS_BONUS, REPEAT_PRESS_THRESHOLD
from alertnet.alerts.state import log_opened
from alertnet.alerts.views import alert_views
from alertnet.models import OPEN_ALERT_STATES, Alert, AlertCategory, Device, Event
from alertnet.models.alerts import OPEN_ALERT_PREDICATE
from alertnet.protocol import EventCode, Uplink
from alertnet.realtime.feed import FeedMessage

# Events that open (or merge into) an alert sent to the police.
POLICE_CATEGORY: Mapping[EventCode, AlertCategory] = {
    EventCode.PANIC: AlertCategory.PANIC,
    EventCode.INTRUSION: AlertCategory.INTRUSION,
    EventCode.FIRE: AlertCategory.FIRE,
    EventCode.MEDICAL: AlertCategory.MEDICAL,
    EventCode.TAMPER: AlertCategory.TAMPER,
}
TROUBLE_RAISES = frozenset({EventCode.MAINS_LOST, EventCode.LOW_BATTERY})
# A clearing event → the trouble condition it clears.
TROUBLE_CLEARS: Mapping[EventCode, str] = {
    EventCode.MAINS_RESTORED: EventCode.MAINS_LOST.wire_name,
}
EVENTS = cast(Table, Event.__table__)

#: Cancels a device's open drill alerts before a real alarm of it opens (DESIGN §2.3) and
#: returns their ids and the offer and post feed messages: ``dispatch.realpress``'s
#: ``cancel_device_drills``, handed in by the ingest batch so that ``alerts`` never imports
#: ``dispatch``.
DrillCanceller = Callable[
    [AsyncSession, DeviceRef, datetime], Awaitable[tuple[list[int], list[FeedMessage]]]
]


class AlertIntake:
    """The alert work of one ingest transaction; the pipeline makes one per batch.

    Troubles raised by the batch (a power cut: ``mains_lost`` from every alarm) are buffered and
    applied together; a clear flushes them first, so it never overtakes a raise before it.
    """

    def __init__(self, session: AsyncSession, *, cancel_drills: DrillCanceller) -> None:
        self._session = session
        self._cancel_drills = cancel_drills
        self.opened: list[int] = []
        self._updated: list[int] = []
        self._alert_of_event: dict[int, int] = {}
        self._raises: list[tuple[int, DeviceRef, str, datetime]] = []
        # Offer and post messages of drill alerts a real alarm cancelled (``dispatch.realpress``).
        self._drill_feed: list[FeedMessage] = []

    async def apply(
        self,
        event_id: int,
        device: DeviceRef,
        uplink: Uplink,
        at: datetime,
        *,
        silent: bool = False,
    ) -> None:
        """Open, merge, cancel, raise or clear as the new event ``event_id`` says.

        ``silent``: the event asks for a silent alert (hold-up, duress); the alert is silent
        when the event or the device says so (DESIGN §3), and a silent press makes an open
        alert it merges into silent.
        """
        if uplink.event in TROUBLE_RAISES:
            self._raises.append((event_id, device, uplink.event.wire_name, at))
            return
        alert_id: int | None = None
        category = POLICE_CATEGORY.get(uplink.event)
        cleared = TROUBLE_CLEARS.get(uplink.event)
        if category is not None:
            alert_id = await self._open_or_merge(device, category, uplink, at, silent=silent)
        elif uplink.event is EventCode.CANCEL:
            alert_id = await self._record_cancel(device, at)
        elif cleared is not None:
            await self._raise_troubles()
            alert_id = await self.clear_trouble(device, cleared, at)
        if alert_id is not None:
            self._alert_of_event[event_id] = alert_id

    async def raise_trouble(self, device: DeviceRef, kind: str, at: datetime) -> int:
        """Raise ``kind`` at once (not buffered), e.g. a counter reset; returns the alert id."""
        change = await trouble.raise_(self._session, device, kind, at)
        self._note(change)
        return change.alert_id

    async def clear_trouble(self, device: DeviceRef, kind: str, at: datetime) -> int | None:
        """Clear ``kind`` on the device's trouble alert; its id, or None if nothing changed.

        The raises buffered so far are applied first: a clear never overtakes a raise before it.
        """
        await self._raise_troubles()
        change = await trouble.clear(self._session, device, kind, at)
        if change is None:
            return None
        self._note(change)
        return change.alert_id

    def queue_trouble(self, event_id: int, device: DeviceRef, kind: str, at: datetime) -> None:
        """Raise ``kind`` for the new event ``event_id`` with the batch's other raises."""
        self._raises.append((event_id, device, kind, at))

    async def record_cancel(self, device: DeviceRef, at: datetime) -> int | None:
        """A cancel on the device's open alert (DESIGN §2.3); its id, or None if none is open."""
        return await self._record_cancel(device, at)

    async def record_restore(
        self, device: DeviceRef, category: AlertCategory, at: datetime
    ) -> int | None:
        """An alarm restore (DESIGN §9.1): noted on the open alert of ``category`` (its last
        event time moves, the event is linked to it), which stays open; None if none is open."""
        alert_id = await self._session.scalar(
            update(Alert)
            .where(
                Alert.device_id == device.id,
                Alert.category == category.value,
                Alert.state.in_(OPEN_ALERT_STATES),
            )
            .values(last_event_at=at)
            .returning(Alert.id)
        )
        if alert_id is not None:
            self._updated.append(alert_id)
        return alert_id

    def link(self, event_id: int, alert_id: int) -> None:
        """Point the new event ``event_id`` at ``alert_id`` (written by ``link_events``)."""
        self._alert_of_event[event_id] = alert_id

    async def link_events(self) -> dict[int, int]:
        """Apply the buffered raises and point each new event at the alert it opened or joined.

        One statement for all links; returns ``{event id: alert id}``.
        """
        await self._raise_troubles()
        if self._alert_of_event:
            await self._session.execute(
                update(EVENTS)
                .where(EVENTS.c.id == bindparam("event_id"))
                .values(alert_id=bindparam("alert_id")),
                [
                    {"event_id": event_id, "alert_id": alert_id}
                    for event_id, alert_id in self._alert_of_event.items()
                ],
            )
        return dict(self._alert_of_event)

    async def announcements(self) -> list[FeedMessage]:
        """One ``alert.opened`` or ``alert.updated`` feed message per alert the batch changed."""
        changed = list(dict.fromkeys(self.opened + self._updated))
        views = await alert_views(self._session, changed)
        opened = set(self.opened)
        messages = []
        for alert_id in changed:
            view = views[alert_id]
            messages.append(
                FeedMessage(
                    "alert.opened" if alert_id in opened else "alert.updated",
                    view,
                    alert_id=alert_id,
                    post_id=view["post_id"] or view["offered_post_id"],
                    mahalla_id=view["mahalla_id"],
                )
            )
        return messages + self._drill_feed

    def _note(self, change: trouble.Change) -> None:
        if change.opened:
            self.opened.append(change.alert_id)
        elif change.changed:
            self._updated.append(change.alert_id)

    async def _raise_troubles(self) -> None:
        """Apply the buffered trouble raises in one go, and empty the buffer."""
        if not self._raises:
            return
        changes = await trouble.raise_many(
            self._session, [(device, kind, at) for _event_id, device, kind, at in self._raises]
        )
        for (event_id, _device, _kind, _at), change in zip(self._raises, changes, strict=True):
            self._note(change)
            self._alert_of_event[event_id] = change.alert_id
        self._raises.clear()

    async def _open_or_merge(
        self,
        device: DeviceRef,
        category: AlertCategory,
        uplink: Uplink,
        at: datetime,
        *,
        silent: bool = False,
    ) -> int | None:
        """One statement: open an alert, or merge the press into the device's open one."""
        opening = AlertOpening(
            device,
            category,
            at,
            reason=f"{uplink.event.wire_name} press, counter {uplink.counter}"
            + (" (DRILL)" if uplink.drill else "")
            + (" (SILENT)" if silent else ""),
            drill=uplink.drill,
            last_counter=uplink.counter,
            silent=silent,
        )
        return await self.open_or_merge(opening)

    async def open_or_merge(
        self, opening: AlertOpening, *, drill_id: int | None = None
    ) -> int | None:
        """One statement: open the alert ``opening`` describes, or merge into the device's open
        one of its category (a drill and a real alert are separate); returns the alert id.
        Every source's alarm comes through here. A real alarm first cancels the device's open
        drill alerts (DESIGN §2.3). ``drill_id``: the dispatcher's drill that opens it (§12);
        such a drill never stands beside an open real alert of the device and category: it
        opens nothing and None is returned (the drill runner records the row as skipped)."""
        device = opening.device
        if drill_id is not None and await self._real_alert_open(device, opening.category):
            return None
        if not opening.drill and opening.category is not AlertCategory.TROUBLE:
            cancelled, feed = await self._cancel_drills(self._session, device, opening.at)
            self._updated += cancelled
            self._drill_feed += feed
        values: dict[str, Any] = opening.row()
        if drill_id is not None:
            values["drill_id"] = drill_id
        if not opening.silent:  # the device's own flag (a hold-up button), in the same statement
            values["silent"] = select(Device.silent).where(Device.id == device.id).scalar_subquery()
        statement = db.insert(self._session, Alert).values(**values)
        statement = statement.on_conflict_do_update(
            index_elements=["device_id", "category", "drill"],
            index_where=OPEN_ALERT_PREDICATE,
            set_={
                "press_count": Alert.press_count + 1,
                "last_event_at": statement.excluded.last_event_at,
                "last_counter": statement.excluded.last_counter,
                "silent": or_(Alert.silent, statement.excluded.silent),
                "priority": case(
                    (
                        Alert.press_count + 1 == REPEAT_PRESS_THRESHOLD,
                        Alert.priority + REPEAT_PRESS_BONUS,
                    ),
                    else_=Alert.priority,
                ),
            },
        ).returning(Alert.id, Alert.press_count)
        row = (await self._session.execute(statement)).one()
        if row.press_count == 1:
            self.opened.append(row.id)
            self._session.add(opening.audit(row.id))
            await log_opened(self._session, row.id, opening)
        else:
            self._updated.append(row.id)
        return int(row.id)

    async def _real_alert_open(self, device: DeviceRef, category: AlertCategory) -> bool:
        found = await self._session.scalar(
            select(Alert.id)
            .where(
                Alert.device_id == device.id,
                Alert.category == category.value,
                Alert.drill.is_(False),
                Alert.state.in_(OPEN_ALERT_STATES),
            )
            .limit(1)
        )
        return found is not None

    async def _record_cancel(self, device: DeviceRef, at: datetime) -> int | None:
        """A cancel never stops a dispatch (duress); it is recorded on the open alert."""
        alert_id = await self._session.scalar(
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
            self._updated.append(alert_id)
        return alert_id

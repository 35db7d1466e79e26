"""Starting and stopping training drills (DESIGN §12): which devices take part, and when each
one's event is due.

A drill is a ``drills`` row and its schedule, one ``drill_events`` row per device, due evenly
over ``spread_s`` from the start (the first at once); ``drills.runner`` creates each event when
it is due. Devices are chosen in the drill's mahalla among those that can make a police alert
(panic, intrusion, fire and medical devices), are active, have no open alert (real or drill) and
no drill event still waiting: public buttons first, then other public devices, then the rest;
hold-up (silent) devices last, at random among equals. A dispatcher may name the devices
instead (by EUI); each must then pass the same checks.

Errors (each a 4xx with its own ``code``, AlertnetError's tree):

    InvalidInput (422)
    ├── UnknownMahalla           ``unknown_mahalla``: no such mahalla
    ├── DrillDeviceUnknown       ``drill_device_unknown``: a named EUI is not registered
    └── DrillDeviceElsewhere     ``drill_device_elsewhere``: a named device is in another mahalla
    Conflict (409)
    ├── NotEnoughDrillDevices    ``drill_not_enough_devices``: fewer eligible devices than asked
    ├── DrillDeviceUnavailable   ``drill_device_unavailable``: a named device cannot take part now
    └── DrillNotRunning          ``drill_not_running``: stopping a drill that already ended

Services never commit: the caller's unit of work does.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import Exists, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from alertnet.devices.service import normalize_eui
from alertnet.errors import Conflict, InvalidInput, NotFound
from alertnet.models import (
    OPEN_ALERT_STATES,
    Alert,
    AlertCategory,
    Device,
    DeviceKind,
    DeviceStatus,
    Drill,
    DrillEvent,
    Mahalla,
    Site,
)

#: Devices one drill may use: enough for a mahalla's public buttons, few enough to train with.
MAX_DRILL_DEVICES: Final = 50
#: The longest a drill's events may be spread over: a shift.
MAX_SPREAD_S: Final = 8 * 3600

#: What a drill event of each device kind is: the police category its alarm opens.
DRILL_CATEGORY: Final[Mapping[str, AlertCategory]] = {
    DeviceKind.PANIC_BUTTON.value: AlertCategory.PANIC,
    DeviceKind.INTRUSION_ALARM.value: AlertCategory.INTRUSION,
    DeviceKind.FIRE_ALARM.value: AlertCategory.FIRE,
    DeviceKind.MEDICAL_BUTTON.value: AlertCategory.MEDICAL,
}

DRILL_STOPPED_NOTE: Final = "the drill was stopped"


class UnknownMahalla(InvalidInput):
    code = "unknown_mahalla"


class DrillDeviceUnknown(InvalidInput):
    code = "drill_device_unknown"


class DrillDeviceElsewhere(InvalidInput):
    code = "drill_device_elsewhere"


class NotEnoughDrillDevices(Conflict):
    code = "drill_not_enough_devices"


class DrillDeviceUnavailable(Conflict):
    code = "drill_device_unavailable"


class DrillNotRunning(Conflict):
    code = "drill_not_running"


@dataclass(frozen=True, slots=True)
class DrillRequest:
    """What a dispatcher asks for: a mahalla (id or name), a number of devices or their EUIs,
    and the spread of the events in seconds."""

    mahalla: int | str
    devices: int | Sequence[str]
    spread_s: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.devices, int):
            if not 1 <= self.devices <= MAX_DRILL_DEVICES:
                raise InvalidInput(f"a drill takes 1 to {MAX_DRILL_DEVICES} devices")
        elif not 1 <= len(self.devices) <= MAX_DRILL_DEVICES:
            raise InvalidInput(f"a drill takes 1 to {MAX_DRILL_DEVICES} devices")
        if not 0 <= self.spread_s <= MAX_SPREAD_S:
            raise InvalidInput(f"spread_s must be 0 to {MAX_SPREAD_S} seconds")


def due_offsets_s(count: int, spread_s: int) -> list[float]:
    """When each of ``count`` events is due, in seconds after the start: evenly over the
    spread, the first at once and the last at its end."""
    if count == 1:
        return [0.0]
    return [spread_s * index / (count - 1) for index in range(count)]


def _has_open_alert() -> Exists:
    """SQL: the device has an open police alert, real or drill (trouble does not count)."""
    return exists().where(
        Alert.device_id == Device.id,
        Alert.category != AlertCategory.TROUBLE.value,
        Alert.state.in_(OPEN_ALERT_STATES),
    )


def _has_pending_drill_event() -> Exists:
    return exists().where(DrillEvent.device_id == Device.id, DrillEvent.state == "pending")


async def _mahalla(session: AsyncSession, ref: int | str) -> Mahalla:
    if isinstance(ref, int):
        mahalla = await session.get(Mahalla, ref)
    else:
        mahalla = await session.scalar(select(Mahalla).where(Mahalla.name == ref.strip()))
    if mahalla is None:
        raise UnknownMahalla(f"no mahalla {ref!r}")
    return mahalla


def _preference(device: Device, rng: random.Random) -> tuple[bool, bool, bool, float]:
    """Sort key: public before private sites, buttons before alarms, silent last, then chance."""
    return (
        device.site != Site.PUBLIC,
        device.kind != DeviceKind.PANIC_BUTTON,
        device.silent,
        rng.random(),
    )


async def _chosen(
    session: AsyncSession, mahalla: Mahalla, count: int, rng: random.Random
) -> list[Device]:
    candidates = list(
        await session.scalars(
            select(Device).where(
                Device.mahalla_id == mahalla.id,
                Device.status == DeviceStatus.ACTIVE,
                Device.kind.in_(DRILL_CATEGORY),
                ~_has_open_alert(),
                ~_has_pending_drill_event(),
            )
        )
    )
    if len(candidates) < count:
        raise NotEnoughDrillDevices(
            f"{mahalla.name} has {len(candidates)} device(s) free for a drill, not {count}: "
            "active panic, intrusion, fire or medical devices without an open alert"
        )
    chosen = sorted(candidates, key=lambda device: _preference(device, rng))[:count]
    rng.shuffle(chosen)  # the schedule's order: which device goes first is not predictable
    return chosen


async def _named(session: AsyncSession, mahalla: Mahalla, euis: Sequence[str]) -> list[Device]:
    normalized = [normalize_eui(eui) for eui in euis]
    if len(set(normalized)) != len(normalized):
        raise InvalidInput("a device is named twice")
    rows = await session.execute(
        select(Device, _has_open_alert(), _has_pending_drill_event()).where(
            Device.eui.in_(normalized)
        )
    )
    found = {device.eui: (device, busy, waiting) for device, busy, waiting in rows}
    devices: list[Device] = []
    for eui in normalized:
        if eui not in found:
            raise DrillDeviceUnknown(f"no device {eui}")
        device, busy, waiting = found[eui]
        if device.mahalla_id != mahalla.id:
            raise DrillDeviceElsewhere(f"device {eui} is not in {mahalla.name}")
        why = None
        if device.kind not in DRILL_CATEGORY:
            why = f"a {device.kind} makes no police alert"
        elif device.status != DeviceStatus.ACTIVE:
            why = f"it is {device.status}"
        elif busy:
            why = "it has an open alert"
        elif waiting:
            why = "it waits for another drill's event"
        if why is not None:
            raise DrillDeviceUnavailable(f"device {eui} cannot take part in a drill: {why}")
        devices.append(device)
    return devices


async def start_drill(
    session: AsyncSession,
    request: DrillRequest,
    *,
    started_by: str,
    now: datetime,
    rng: random.Random | None = None,
) -> Drill:
    """Create the drill and its schedule; the runner creates the events as they fall due."""
    mahalla = await _mahalla(session, request.mahalla)
    if isinstance(request.devices, int):
        devices = await _chosen(session, mahalla, request.devices, rng or random.Random())
    else:
        devices = await _named(session, mahalla, request.devices)
    drill = Drill(
        mahalla_id=mahalla.id,
        started_by=started_by,
        started_at=now,
        device_count=len(devices),
        spread_s=request.spread_s,
        state="running",
    )
    session.add(drill)
    await session.flush()
    offsets = due_offsets_s(len(devices), request.spread_s)
    session.add_all(
        DrillEvent(
            drill_id=drill.id,
            n=n,
            device_id=device.id,
            due_at=now + timedelta(seconds=offset_s),
            state="pending",
        )
        for n, (device, offset_s) in enumerate(zip(devices, offsets, strict=True), start=1)
    )
    await session.flush()
    return drill


async def stop_drill(session: AsyncSession, drill_id: int, *, now: datetime) -> Drill:
    """No more events for this drill: the waiting ones are skipped. The drill alerts already
    open stay with their posts (a dispatcher may cancel each)."""
    drill = await session.scalar(
        select(Drill).where(Drill.id == drill_id).with_for_update(key_share=True)
    )
    if drill is None:
        raise NotFound(f"no drill {drill_id}")
    if drill.state != "running":
        raise DrillNotRunning(f"drill {drill_id} is {drill.state}")
    await session.execute(
        update(DrillEvent)
        .where(DrillEvent.drill_id == drill_id, DrillEvent.state == "pending")
        .values(state="skipped", done_at=now, note=DRILL_STOPPED_NOTE)
    )
    drill.state = "stopped"
    drill.ended_at = now
    await session.flush()
    return drill

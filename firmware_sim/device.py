"""One simulated device, behaving like the firmware of a panic button or an intrusion alarm.

- Every new message takes the next frame counter from flash (``DeviceCounter``: survives a
  reboot, never reused).
- An alarm (panic, intrusion, fire, medical, tamper) or trouble event (mains lost/restored,
  low battery, cancel, test) is retransmitted on the protocol's schedule (``PROTOCOL_RETRY``:
  after 1, 2, 4 and 8 s, then every 15 s ±20 %) — same counter, retransmission flag set, true
  age since the press — until a downlink ack with state ≥ 1 for that counter arrives
  (DESIGN §2.2). Later states (dispatched … closed) only
  change the LED.
- Heartbeats carry no retry: the next one follows one supervision interval later, with jitter
  (the fleet schedules them).
- The battery drains with every transmission; crossing 20 % sends ``low_battery`` once.
  Mains-powered alarms report 255 until the mains go, then their backup battery.
- Drill mode marks every alarm with the drill flag.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, Protocol

from alertnet.protocol import (
    BATTERY_UNKNOWN,
    FLAG_DRILL,
    FLAG_RETRANSMISSION,
    AckState,
    Downlink,
    EventCode,
    Uplink,
)
from firmware_sim.fleet import DeviceSpec
from firmware_sim.state import DeviceCounter
from firmware_sim.stats import PressRecord, Recorder

__all__ = ["PROTOCOL_RETRY", "Link", "RetryPolicy", "SimDevice"]

LOW_BATTERY_PCT: Final = 20.0
_MAX_AGE_S: Final = 0xFFFF


class Link(Protocol):
    """How a device's frames leave it: one transport (MQTT, HTTP or the LoRa radio)."""

    async def send(self, device: SimDevice, uplink: Uplink) -> bool:
        """Transmit ``uplink``; True when the transport took it (a PUBACK, an HTTP answer,
        a radio transmission). Acks come back through ``SimDevice.receive_downlink``."""
        ...


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When an unacknowledged event is sent again.

    After transmission n the device waits ``waits_s[n - 1]`` for its ack; once the list is
    used up, its last wait repeats, each time drawn within ±``jitter`` (a fraction) of it, so
    that devices that raised events together do not retry in step.
    """

    waits_s: tuple[float, ...]
    jitter: float = 0.0

    def __post_init__(self) -> None:
        if not self.waits_s or min(self.waits_s) <= 0:
            raise ValueError("a retry policy needs at least one wait, every wait > 0")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be in [0, 1)")

    @classmethod
    def doubling(cls, first_s: float, max_s: float, *, jitter: float = 0.2) -> RetryPolicy:
        """Waits of ``first_s``, doubling up to ``max_s``, which repeats (time-compressed runs)."""
        if first_s <= 0 or max_s < first_s:
            raise ValueError("a doubling retry policy needs 0 < first_s <= max_s")
        waits = [first_s]
        while waits[-1] * 2 < max_s:
            waits.append(waits[-1] * 2)
        if waits[-1] < max_s:
            waits.append(max_s)
        return cls(tuple(waits), jitter)

    def wait_s(self, attempt: int, rng: random.Random) -> float:
        """How long to wait for the ack after transmission number ``attempt`` (1-based)."""
        if attempt < len(self.waits_s):
            return self.waits_s[attempt - 1]
        return self.waits_s[-1] * rng.uniform(1 - self.jitter, 1 + self.jitter)


# The device contract (DESIGN §2.2, protocol.md §3): an unacknowledged alarm is sent again after
# 1, 2, 4 and 8 s, then every 15 s ±20 %, until an ack of state >= 1 for its counter arrives.
PROTOCOL_RETRY: Final = RetryPolicy(waits_s=(1.0, 2.0, 4.0, 8.0, 15.0), jitter=0.2)


@dataclass(slots=True)
class _Pending:
    record: PressRecord
    flags: int
    acked: asyncio.Event = field(default_factory=asyncio.Event)


class SimDevice:
    """Firmware behaviour of one device; see the module docstring."""

    def __init__(
        self,
        spec: DeviceSpec,
        counter: DeviceCounter,
        link: Link,
        recorder: Recorder,
        *,
        rng: random.Random,
        retry: RetryPolicy | None = None,
        battery_pct: float = 100.0,
        drain_per_tx_pct: float = 0.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.spec = spec
        self.counter = counter
        self.link = link
        self.recorder = recorder
        self.rng = rng
        self.retry = retry or PROTOCOL_RETRY
        self.battery_pct = battery_pct
        self.drain_per_tx_pct = drain_per_tx_pct
        self.mains_on = spec.mains_powered
        self.drill_mode = False
        self.led_state = 0
        self.bad_downlinks = 0
        self._low_battery_sent = battery_pct < LOW_BATTERY_PCT
        self._pending: dict[int, _Pending] = {}
        self._clock = clock or asyncio.get_running_loop().time

    @property
    def eui(self) -> str:
        return self.spec.eui

    @property
    def battery_byte(self) -> int:
        if self.mains_on:
            return BATTERY_UNKNOWN
        return max(0, min(100, round(self.battery_pct)))

    @property
    def unacknowledged(self) -> int:
        return len(self._pending)

    def heartbeat_interval_s(self, interval_s: float | None = None) -> float:
        """The wait until the next heartbeat: the supervision interval ±10 %."""
        base = interval_s if interval_s is not None else float(self.spec.supervision_interval_s)
        return base * self.rng.uniform(0.9, 1.1)

    # -- transmissions --------------------------------------------------------------------

    def _drain(self) -> None:
        if self.mains_on:
            return
        self.battery_pct = max(0.0, self.battery_pct - self.drain_per_tx_pct)

    async def heartbeat(self) -> bool:
        """Send one supervision heartbeat (never retried)."""
        counter = await self.counter.take()
        uplink = Uplink.build(
            self.spec.key, self.eui, counter, EventCode.HEARTBEAT, battery=self.battery_byte
        )
        ok = await self.link.send(self, uplink)
        self._drain()
        self.recorder.transmitted("heartbeat", ok)
        return ok

    async def raise_event(self, event: EventCode, *, drill: bool | None = None) -> PressRecord:
        """Send ``event`` once and keep it pending; ``deliver`` retransmits until acked."""
        if event is EventCode.HEARTBEAT:
            raise ValueError("heartbeats are not acknowledged; use heartbeat()")
        is_drill = self.drill_mode if drill is None else drill
        counter = await self.counter.take()
        record = PressRecord(
            eui=self.eui,
            counter=counter,
            event=event,
            transport=self.spec.transport.value,
            drill=is_drill,
            pressed_at=self._clock(),
        )
        self.recorder.pressed(record)
        self._pending[counter] = _Pending(record, FLAG_DRILL if is_drill else 0)
        return record

    async def deliver(self, record: PressRecord) -> bool:
        """Transmit a pending event until it is acknowledged; False if cancelled first."""
        pending = self._pending.get(record.counter)
        if pending is None:
            return record.acked
        try:
            while not pending.acked.is_set():
                attempt = record.attempts + 1
                flags = pending.flags | (FLAG_RETRANSMISSION if attempt > 1 else 0)
                age_s = min(_MAX_AGE_S, int(self._clock() - record.pressed_at))
                uplink = Uplink.build(
                    self.spec.key,
                    self.eui,
                    record.counter,
                    record.event,
                    flags=flags,
                    battery=self.battery_byte,
                    age_s=age_s,
                )
                record.attempts = attempt
                ok = await self.link.send(self, uplink)
                self._drain()
                self.recorder.transmitted("alarm" if attempt == 1 else "retransmission", ok)
                try:
                    await asyncio.wait_for(
                        pending.acked.wait(), self.retry.wait_s(attempt, self.rng)
                    )
                except TimeoutError:
                    continue
            return True
        finally:
            if pending.acked.is_set():
                self._pending.pop(record.counter, None)

    async def press(self, event: EventCode = EventCode.PANIC, *, drill: bool | None = None) -> bool:
        """A press (or any acknowledged event) from start to ack."""
        record = await self.raise_event(event, drill=drill)
        return await self.deliver(record)

    async def battery_check(self) -> PressRecord | None:
        """Raise ``low_battery`` once when the battery has crossed the threshold."""
        if self.mains_on or self._low_battery_sent or self.battery_pct >= LOW_BATTERY_PCT:
            return None
        self._low_battery_sent = True
        return await self.raise_event(EventCode.LOW_BATTERY, drill=False)

    async def mains_lost(self) -> PressRecord:
        """The power cut: from now on the backup battery, and tell alertnet."""
        self.mains_on = False
        return await self.raise_event(EventCode.MAINS_LOST, drill=False)

    # -- downlinks and reboots ------------------------------------------------------------

    def receive_downlink(self, downlink: Downlink) -> None:
        """An ack heard on the device's topic, radio or HTTP answer."""
        if downlink.eui != self.eui or not downlink.verify(self.spec.key):
            self.bad_downlinks += 1
            self.recorder.downlinks["bad"] += 1
            return
        self.led_state = max(self.led_state, int(downlink.state))
        self.recorder.acked(self.eui, downlink.counter, downlink.state, self._clock())
        pending = self._pending.get(downlink.counter)
        if pending is not None and downlink.state >= AckState.RECEIVED:
            pending.acked.set()

    def reboot(self) -> None:
        """Power cycle: RAM counter lost (flash keeps the reservation); pending events are
        kept, as the firmware stores an unacknowledged alarm in flash before sending it."""
        self.counter.reboot()
        self.recorder.reboots += 1

"""Where a device's downlink goes: the one place that decides it, for every transport.

- A device on MQTT gets its ack on ``alertnet/v1/down/{eui}`` in its own format, at once.
- A LoRa device is heard by one or more gateways (serial bridges, or networked gateways on
  ``alertnet/v1/gw/{id}/rx``). The press is processed at once; only the downlink waits a short
  window after the first copy commits, gathering the other copies, and then goes out ONCE,
  through the gateway that heard it best: ``AT+SEND`` on a local serial bridge, or
  ``{"data": hex}`` on ``alertnet/v1/gw/{id}/tx``. A gateway that cannot take it (port down,
  queue full) hands over to the next best. Copies arriving shortly after the answer (a slow
  gateway) are not answered again; a retransmission after that is.
- An HTTP device is answered in its HTTP response: nothing to do here.
- A LoRaWAN device behind ChirpStack (transport ``lorawan``) gets its "received" from the
  ChirpStack adapter (``ingest.chirpstack``) and nothing later: a Class A device listens only
  right after it sends (DESIGN §9.2), so ``notify`` skips it (``not_listening``).

Alert progress (states 2-5) reaches devices through ``notify``, the ``DeviceNotifier`` the
dispatcher calls after its commit; the device and the gateways that heard its press are
loaded from the database. A silent device, or a press that opened a silent alert (hold-up,
duress: DESIGN §3), is told "received" (state 1) and never more (``silent_withheld``): a LED
that says "police on the way" could tell the robber. Timers live in ``run()``, one long-lived
task; nothing is sent from a fire-and-forget task.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from sqlalchemy import select, tuple_
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.dispatch.notifier import StateNotice
from alertnet.ingest.pipeline import Outcome, RawUplink
from alertnet.models import Alert, Device, Event, Reception, Transport
from alertnet.protocol import (
    Downlink,
    EventCode,
    WireFormat,
    down_topic,
    format_gateway_tx,
    gw_tx_topic,
)

__all__ = ["DownlinkRouter", "DownlinkSink", "Hearing", "Publish"]

log = logging.getLogger(__name__)

#: Publishes one MQTT message (QoS 1) without waiting: ``MqttIngest.send``.
Publish = Callable[[str, bytes], None]

#: Devices last heard where no later word reaches them: a Class A LoRaWAN device behind
#: ChirpStack (state 1 only, §9.2), an HTTP device (answered in its response), an alarm panel
#: (its ACK is the whole answer, §9.1), a camera, a drill. Their progress is ``not_listening``.
_NOT_LISTENING: Final = frozenset(
    transport.value
    for transport in (
        Transport.LORAWAN,
        Transport.HTTP,
        Transport.DC09,
        Transport.FRIGATE,
        Transport.DRILL,
    )
)

#: Gatherings waiting for their window beyond which a new one is answered at once.
_MAX_GATHERINGS: Final = 10_000


class DownlinkSink(Protocol):
    """A local gateway that transmits downlinks (``SerialBridge``)."""

    def queue_downlink(self, frame: bytes) -> bool:
        """Queue ``frame`` for transmission; False if this gateway cannot take it now."""
        ...


@dataclass(frozen=True, slots=True)
class Hearing:
    """One gateway's copy of a device's transmission."""

    gateway_id: str
    transport: Transport
    rssi: int | None
    snr: float | None

    @property
    def quality(self) -> tuple[bool, int, bool, float]:
        """Sort key: any RSSI beats none, then the strongest RSSI, then the best SNR."""
        return (
            self.rssi is not None,
            self.rssi if self.rssi is not None else 0,
            self.snr is not None,
            self.snr if self.snr is not None else 0.0,
        )


def best_first(hearings: Sequence[Hearing]) -> list[Hearing]:
    """Hearings by quality, the first heard first among equals."""
    return sorted(hearings, key=lambda hearing: hearing.quality, reverse=True)


@dataclass(slots=True)
class _Gathering:
    downlink: Downlink
    closes_at: float
    hearings: list[Hearing]


class DownlinkRouter:
    """Sends every downlink through the right path; see the module docstring.

    Counters (plain attributes): ``sent`` per route (``device``, ``gateway``, ``serial``),
    ``unroutable`` (no path could take it), ``suppressed`` (late gateway copies of an
    answered transmission), ``notify_failures`` and ``not_listening`` (progress not sent to a
    device that cannot hear it: ``_NOT_LISTENING``).
    """

    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession] | None = None,
        *,
        window_s: float = 0.2,
        holdoff_s: float = 1.0,
    ) -> None:
        self._session_factory = session_factory
        self._window_s = window_s
        self._holdoff_s = holdoff_s
        self._publish: Publish | None = None
        self._serial: dict[str, DownlinkSink] = {}
        self._gatherings: dict[tuple[str, int], _Gathering] = {}
        self._answered: dict[tuple[str, int], float] = {}
        self._answered_order: deque[tuple[float, tuple[str, int]]] = deque()
        self._wake = asyncio.Event()
        self.sent: Counter[str] = Counter()
        self.unroutable = 0
        self.suppressed = 0
        self.notify_failures = 0
        self.not_listening = 0
        self.silent_withheld = 0

    # -- wiring -----------------------------------------------------------------------------

    def publish_via(self, publish: Publish) -> None:
        """Use ``publish`` for MQTT downlinks (the MQTT ingest registers its ``send``)."""
        self._publish = publish

    def add_serial_gateway(self, gateway_id: str, sink: DownlinkSink) -> None:
        """Route downlinks for copies heard by ``gateway_id`` to this local serial bridge."""
        self._serial[gateway_id] = sink

    @property
    def gathering(self) -> int:
        """Transmissions whose downlink is still waiting for its window to close."""
        return len(self._gatherings)

    # -- received acks ----------------------------------------------------------------------

    def uplink_committed(self, outcome: Outcome, raw: RawUplink) -> None:
        """Called by a transport for each copy once its batch committed; never blocks."""
        uplink = outcome.uplink
        if not outcome.accepted or uplink is None:
            return
        if uplink.event is EventCode.HEARTBEAT or raw.transport is Transport.HTTP:
            return  # heartbeats are not acked over the air; HTTP is answered in its response
        if raw.transport is Transport.LORAWAN:
            return  # the ChirpStack adapter sends its own "received" (§9.2)
        if raw.gateway_id is None:
            ack = outcome.ack_bytes()
            if ack is not None and self._send_mqtt(down_topic(uplink.eui), ack):
                self.sent["device"] += 1
            else:
                self.unroutable += 1
            return
        key = (uplink.eui, uplink.counter)
        hearing = Hearing(raw.gateway_id, raw.transport, raw.rssi, raw.snr)
        if key in self._answered:
            self.suppressed += 1
            return
        gathering = self._gatherings.get(key)
        if gathering is not None:
            gathering.hearings.append(hearing)
            return
        downlink = outcome.downlink  # signed once per transmission, not per copy
        if downlink is None:
            return
        if len(self._gatherings) >= _MAX_GATHERINGS:
            self._send_via_gateways(downlink, [hearing])  # run() is not keeping up: no wait
            return
        closes_at = time.monotonic() + self._window_s
        self._gatherings[key] = _Gathering(downlink, closes_at, [hearing])
        self._wake.set()

    async def run(self) -> None:
        """Close gathering windows as they expire, forever."""
        while True:
            now = time.monotonic()
            self._close_windows(now)
            self._forget_answered(now)
            self._wake.clear()
            timeout_s = None
            if self._gatherings:
                first = next(iter(self._gatherings.values()))
                timeout_s = max(first.closes_at - now, 0.0)
            elif self._answered_order:
                timeout_s = max(self._answered_order[0][0] - now, 0.0)
            try:
                async with asyncio.timeout(timeout_s):
                    await self._wake.wait()
            except TimeoutError:
                pass

    def _close_windows(self, now: float) -> None:
        # Every window is equally long, so insertion order is closing order.
        while self._gatherings:
            key, gathering = next(iter(self._gatherings.items()))
            if gathering.closes_at > now:
                return
            del self._gatherings[key]
            self._send_via_gateways(gathering.downlink, gathering.hearings)
            self._answered[key] = now + self._holdoff_s
            self._answered_order.append((now + self._holdoff_s, key))

    def _forget_answered(self, now: float) -> None:
        while self._answered_order and self._answered_order[0][0] <= now:
            _, key = self._answered_order.popleft()
            until = self._answered.get(key)
            if until is not None and until <= now:
                del self._answered[key]

    # -- alert progress ---------------------------------------------------------------------

    async def notify(self, notices: Sequence[StateNotice]) -> None:
        """Send alert progress (states 2-5) to devices; the ``DeviceNotifier`` protocol.

        A device answers through the gateways that heard the press being reported (best
        first), else on its MQTT down topic in the format it last used; a device that cannot
        hear progress (HTTP, LoRaWAN, an alarm panel, a camera, a drill) is skipped. A database
        error is logged and counted, never raised: progress downlinks are advisory (the
        device's LED), the alert itself is safe in the database.
        """
        if not notices:
            return
        if self._session_factory is None:
            raise RuntimeError("DownlinkRouter.notify needs a session factory")
        try:
            async with self._session_factory() as session:
                devices, heard, silent_presses = await _load_routes(session, notices)
        except (SQLAlchemyError, OSError):
            self.notify_failures += 1
            log.exception("cannot load routes for %d device notices", len(notices))
            return
        for notice in notices:
            device = devices.get(notice.device_id)
            if device is None:
                self.unroutable += 1
                continue
            if device.last_transport in _NOT_LISTENING:
                self.not_listening += 1
                continue
            if device.silent or (notice.device_id, notice.counter) in silent_presses:
                self.silent_withheld += 1
                continue
            downlink = Downlink.build(device.key, device.eui, notice.counter, notice.state)
            hearings = heard.get((notice.device_id, notice.counter))
            if hearings:
                self._send_via_gateways(downlink, hearings)
            elif device.last_transport == Transport.MQTT.value:
                fmt = (
                    WireFormat.JSON if device.last_format == WireFormat.JSON else WireFormat.BINARY
                )
                if self._send_mqtt(down_topic(device.eui), downlink.encode(fmt)):
                    self.sent["device"] += 1
                else:
                    self.unroutable += 1
            else:
                self.unroutable += 1

    # -- sending ------------------------------------------------------------------------------

    def _send_via_gateways(self, downlink: Downlink, hearings: Sequence[Hearing]) -> None:
        frame = downlink.to_bytes()
        for hearing in best_first(hearings):
            if hearing.transport is Transport.SERIAL:
                sink = self._serial.get(hearing.gateway_id)
                if sink is not None and sink.queue_downlink(frame):
                    self.sent["serial"] += 1
                    return
            elif hearing.transport is Transport.MQTT:
                if self._send_mqtt(gw_tx_topic(hearing.gateway_id), format_gateway_tx(frame)):
                    self.sent["gateway"] += 1
                    return
        self.unroutable += 1
        log.warning(
            "no gateway could take the downlink for %s counter %d (heard by %s)",
            downlink.eui,
            downlink.counter,
            ", ".join(hearing.gateway_id for hearing in hearings),
        )

    def _send_mqtt(self, topic: str, payload: bytes) -> bool:
        if self._publish is None:
            return False
        self._publish(topic, payload)
        return True


@dataclass(frozen=True, slots=True)
class _DeviceRoute:
    eui: str
    key: bytes
    last_transport: str | None
    last_format: str
    silent: bool


async def _load_routes(
    session: AsyncSession, notices: Sequence[StateNotice]
) -> tuple[dict[int, _DeviceRoute], dict[tuple[int, int], list[Hearing]], set[tuple[int, int]]]:
    """The notified devices, the gateway copies of each reported press, and the presses
    whose alert is silent."""
    device_ids = {notice.device_id for notice in notices}
    devices = {
        row.id: _DeviceRoute(row.eui, row.key, row.last_transport, row.last_format, row.silent)
        for row in await session.execute(
            select(
                Device.id,
                Device.eui,
                Device.key,
                Device.last_transport,
                Device.last_format,
                Device.silent,
            ).where(Device.id.in_(device_ids))
        )
    }
    presses = {(notice.device_id, notice.counter) for notice in notices}
    silent_presses: set[tuple[int, int]] = {
        (row.device_id, row.last_counter)
        for row in await session.execute(
            select(Alert.device_id, Alert.last_counter).where(
                Alert.silent, tuple_(Alert.device_id, Alert.last_counter).in_(presses)
            )
        )
    }
    heard: dict[tuple[int, int], list[Hearing]] = {}
    # By dedup key (DESIGN §2.3), the events' unique index: a v1 press is ``c:<counter>``.
    keys = {(device_id, f"c:{counter}") for device_id, counter in presses}
    rows = await session.execute(
        select(
            Event.device_id,
            Event.counter,
            Reception.gateway_id,
            Reception.transport,
            Reception.rssi,
            Reception.snr,
        )
        .join(Reception, Reception.event_id == Event.id)
        .where(tuple_(Event.device_id, Event.dedup_key).in_(keys))
        .where(Reception.gateway_id.is_not(None))
        .order_by(Reception.id)
    )
    for row in rows:
        try:
            transport = Transport(row.transport)
        except ValueError:
            continue
        heard.setdefault((row.device_id, row.counter), []).append(
            Hearing(row.gateway_id, transport, row.rssi, row.snr)
        )
    return devices, heard, silent_presses

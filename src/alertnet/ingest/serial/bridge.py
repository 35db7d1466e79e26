"""A serial LoRa gateway inside alertnet: REYAX packets in, pipeline submissions and acks out.

``SerialBridge`` is the in-process listener of a ``ReyaxModule``: packets go to the ingest
pipeline with the gateway id, RSSI and SNR, bad lines to quarantine, port state to the gateway
registry, and committed outcomes to the downlink router, whose downlinks it transmits as
``AT+SEND``. A serial port is a gateway: ``gateway_id=/dev/ttyUSB0`` (DESIGN §2.5).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from functools import partial

from alertnet.errors import InvalidInput
from alertnet.gateways.registry import GatewayRegistry
from alertnet.gateways.service import MAX_GATEWAY_ID_CHARS
from alertnet.ingest.downlinks import DownlinkRouter
from alertnet.ingest.pipeline import Disposition, Outcome, Pipeline, RawUplink
from alertnet.ingest.serial.module import ReyaxModule, SendResult
from alertnet.models import Transport
from alertnet.protocol import DecodeError, Reason, Received
from alertnet.reconnect import RECONNECT_SCHEDULE, BackoffSchedule

__all__ = ["SerialBridge"]

log = logging.getLogger(__name__)


class SerialBridge:
    """A serial LoRa gateway inside alertnet: one per ``ALERTNET_SERIAL`` entry.

    Every ``+RCV`` frame is submitted to the pipeline at once (the reader never waits for a
    commit); the outcome, when its batch commits, is counted and handed to the downlink
    router. Past ``max_in_flight`` uncommitted submissions the bridge stops reading until
    the pipeline catches up, so memory stays bounded. Downlinks the router queues here go
    out one by one as ``AT+SEND``.
    """

    def __init__(
        self,
        gateway_id: str,
        path: str,
        *,
        pipeline: Pipeline,
        registry: GatewayRegistry,
        router: DownlinkRouter | None = None,
        max_in_flight: int = 2000,
        max_queued_downlinks: int = 64,
        response_timeout_s: float = 2.0,
        reopen_backoff: BackoffSchedule = RECONNECT_SCHEDULE,
        watch_interval_s: float = 1.0,
    ) -> None:
        if not 0 < len(gateway_id) <= MAX_GATEWAY_ID_CHARS:
            raise InvalidInput(
                f"serial gateway id must be 1..{MAX_GATEWAY_ID_CHARS} characters: {gateway_id!r}"
            )
        self.gateway_id = gateway_id
        self._pipeline = pipeline
        self._registry = registry
        self._router = router
        self._max_in_flight = max_in_flight
        self._downlinks: asyncio.Queue[bytes] = asyncio.Queue(max_queued_downlinks)
        self.module = ReyaxModule(
            path,
            self,
            response_timeout_s=response_timeout_s,
            reopen_backoff=reopen_backoff,
            watch_interval_s=watch_interval_s,
        )
        self.in_flight = 0
        self.outcomes: Counter[Disposition] = Counter()
        if router is not None:
            router.add_serial_gateway(gateway_id, self)

    @property
    def path(self) -> str:
        return self.module.path

    @property
    def online(self) -> bool:
        return self.module.port.is_open

    @property
    def bad_lines(self) -> Counter[Reason]:
        return self.module.bad_lines

    async def run(self) -> None:
        """The bridge's long-lived task: the port, and the downlink sender."""
        self._registry.set_state(self.gateway_id, Transport.SERIAL, online=False)
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self.module.run())
            tasks.create_task(self._send_downlinks())

    async def send(self, frame: bytes) -> SendResult:
        """Write ``AT+SEND`` for ``frame`` now and wait for the module's answer."""
        return await self.module.send(frame)

    def queue_downlink(self, frame: bytes) -> bool:
        """Queue ``frame`` for transmission; False when the port is down or the queue full."""
        if not self.online:
            return False
        try:
            self._downlinks.put_nowait(frame)
        except asyncio.QueueFull:
            return False
        return True

    async def _send_downlinks(self) -> None:
        while True:
            await self.send(await self._downlinks.get())

    # -- ModuleListener -----------------------------------------------------------------------

    def packet_received(self, packet: Received, line: bytes) -> None:
        raw = RawUplink(
            packet.data,
            Transport.SERIAL,
            gateway_id=self.gateway_id,
            rssi=packet.rssi,
            snr=packet.snr,
            source=self.path,
        )
        self._registry.seen(self.gateway_id, Transport.SERIAL, raw.received_at)
        self._track(raw, self._pipeline.submit(raw))

    def bad_line(self, line: bytes, error: DecodeError) -> None:
        raw = RawUplink(line, Transport.SERIAL, gateway_id=self.gateway_id, source=self.path)
        self._track(raw, self._pipeline.submit(raw, rejected=error))

    def port_state_changed(self, online: bool) -> None:
        self._registry.set_state(self.gateway_id, Transport.SERIAL, online)
        if not online:
            # Queued acks would go out late through a module that may have been swapped.
            while not self._downlinks.empty():
                self._downlinks.get_nowait()

    # -- outcomes -----------------------------------------------------------------------------

    def _track(self, raw: RawUplink, future: asyncio.Future[Outcome]) -> None:
        self.in_flight += 1
        if self.in_flight >= self._max_in_flight:
            self.module.port.pause_reading()
        future.add_done_callback(partial(self._committed, raw))

    def _committed(self, raw: RawUplink, future: asyncio.Future[Outcome]) -> None:
        self.in_flight -= 1
        if self.in_flight <= self._max_in_flight // 2:
            self.module.port.resume_reading()
        if future.cancelled():
            return  # the pipeline is shutting down
        if (error := future.exception()) is not None:
            log.error("uplink from %s failed in the pipeline: %r", self.gateway_id, error)
            return
        outcome = future.result()
        self.outcomes[outcome.disposition] += 1
        if self._router is not None:
            self._router.uplink_committed(outcome, raw)

"""``alertnet gateway --serial PORT --id ID``: a serial LoRa gateway as a standalone process.

It runs on the machine the LoRa module is plugged into and speaks to alertnet only through
the broker (DESIGN §2.4): each valid ``+RCV`` frame is published on
``alertnet/v1/gw/{id}/rx`` (QoS 1), ``online`` is published retained on ``…/state`` while the
module's port is open (``offline`` while it is unplugged, and as the connection's last will),
and downlinks from ``…/tx`` are written to the module as ``AT+SEND``. The port handling is
``alertnet.ingest.serial.ReyaxModule``, the same code alertnet's in-process bridges use, and
the broker connection is re-made on the same schedule as alertnet's MQTT ingest
(``alertnet.reconnect``).

Frames heard while the broker is unreachable wait in a bounded backlog and are published
after the reconnect (alertnet turns any double publish into a duplicate). Bad serial lines
cannot reach alertnet's quarantine from here; they are counted per reason and logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections import Counter, deque
from typing import Final

import aiomqtt

from alertnet.config import Settings
from alertnet.errors import InvalidInput
from alertnet.gateways.service import MAX_GATEWAY_ID_CHARS
from alertnet.ingest.mqtt_client import BrokerAddress, broker_client, gateway_login
from alertnet.ingest.serial import ReyaxModule
from alertnet.metrics import Metrics
from alertnet.protocol import (
    GATEWAY_OFFLINE,
    GATEWAY_ONLINE,
    DecodeError,
    GatewayRx,
    Received,
    format_gateway_rx,
    gateway_topic_id,
    gw_rx_topic,
    gw_state_topic,
    gw_tx_topic,
    parse_gateway_tx,
)
from alertnet.reconnect import RECONNECT_SCHEDULE, BackoffSchedule, Reconnector
from alertnet.supervisor import TaskSupervisor

__all__ = ["GatewayRelay", "main", "run_bridge"]

log = logging.getLogger(__name__)

EXIT_OK: Final = 0
EXIT_ERROR: Final = 1

_PUBLISH_BURST: Final = 50
_GOODBYE_TIMEOUT_S: Final = 2.0
#: Log each of the first bad lines, then one in this many (a noisy line must not flood logs).
_LOG_EVERY_BAD_LINE: Final = 1000
_LOG_FIRST_BAD_LINES: Final = 100


class GatewayRelay:
    """Relays one LoRa module between its serial port and the MQTT gateway topics."""

    def __init__(
        self,
        port: str,
        gateway_id: str,
        address: BrokerAddress,
        *,
        client_id: str | None = None,
        max_backlog: int = 10_000,
        max_queued_downlinks: int = 64,
        response_timeout_s: float = 2.0,
        reopen_backoff: BackoffSchedule = RECONNECT_SCHEDULE,
    ) -> None:
        topic_id = gateway_topic_id(gateway_id)
        if len(topic_id) > MAX_GATEWAY_ID_CHARS:
            raise InvalidInput(f"gateway id must be at most {MAX_GATEWAY_ID_CHARS} characters")
        self.gateway_id = gateway_id
        self._address = address
        self._client_id = client_id or f"alertnet-gw-{topic_id}"
        self._rx_topic = gw_rx_topic(gateway_id)
        self._tx_topic = gw_tx_topic(gateway_id)
        self._state_topic = gw_state_topic(gateway_id)
        self.module = ReyaxModule(
            port,
            self,
            response_timeout_s=response_timeout_s,
            reopen_backoff=reopen_backoff,
        )
        self._backlog: deque[bytes] = deque()
        self._max_backlog = max_backlog
        self._backlog_filled = asyncio.Event()
        self._state_changed = asyncio.Event()
        self._port_online = False
        self._downlinks: asyncio.Queue[bytes] = asyncio.Queue(max_queued_downlinks)
        self._reconnector = Reconnector(
            f"gateway {gateway_id}: broker connection", expected=(aiomqtt.MqttError,)
        )
        #: Set while connected to the broker.
        self.connected = self._reconnector.connected
        self.published = 0
        self.dropped = 0  # frames pushed out of a full backlog
        self.tx_rejected: Counter[str] = Counter()  # downlinks not sent, by why

    @property
    def backlog(self) -> int:
        return len(self._backlog)

    async def run(self) -> None:
        """Serial port, broker connection and downlink writer, until cancelled."""
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self.module.run())
            tasks.create_task(self._write_downlinks())
            tasks.create_task(self._reconnector.run(self._session))

    # -- serial side (ModuleListener) ---------------------------------------------------------

    def packet_received(self, packet: Received, line: bytes) -> None:
        try:
            payload = format_gateway_rx(GatewayRx(packet.data, packet.rssi, packet.snr))
        except DecodeError as exc:
            self.bad_line(line, exc)
            return
        if len(self._backlog) >= self._max_backlog:
            self._backlog.popleft()
            self.dropped += 1
            if self.dropped % _LOG_EVERY_BAD_LINE == 1:
                log.error("broker unreachable: %d received frames dropped so far", self.dropped)
        self._backlog.append(payload)
        self._backlog_filled.set()

    def bad_line(self, line: bytes, error: DecodeError) -> None:
        count = sum(self.module.bad_lines.values())
        if count <= _LOG_FIRST_BAD_LINES or count % _LOG_EVERY_BAD_LINE == 0:
            log.warning(
                "bad line on %s (%d so far): %s; line %.80r", self.module.path, count, error, line
            )

    def port_state_changed(self, online: bool) -> None:
        self._port_online = online
        self._state_changed.set()

    async def _write_downlinks(self) -> None:
        while True:
            await self.module.send(await self._downlinks.get())

    # -- broker side --------------------------------------------------------------------------

    async def _session(self) -> None:
        client = broker_client(
            self._address,
            self._client_id,
            # The broker keeps downlinks for us across a short disconnect.
            clean_session=False,
            will=aiomqtt.Will(self._state_topic, GATEWAY_OFFLINE, qos=1, retain=True),
        )
        async with client:
            await client.subscribe(self._tx_topic, qos=1)
            self._reconnector.mark_connected()
            self._state_changed.set()  # (re)announce the current state on every connect
            log.info(
                "gateway %s connected to %s:%d",
                self.gateway_id,
                self._address.host,
                self._address.port,
            )
            try:
                async with asyncio.TaskGroup() as tasks:
                    tasks.create_task(self._publish_state(client))
                    tasks.create_task(self._publish_backlog(client))
                    async for message in client.messages:
                        self._downlink_message(message)
                    raise aiomqtt.MqttError("message stream ended")
            except asyncio.CancelledError:
                # Shutting down: say so, rather than leave the broker to send the will later.
                with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                    async with asyncio.timeout(_GOODBYE_TIMEOUT_S):
                        await client.publish(self._state_topic, GATEWAY_OFFLINE, qos=1, retain=True)
                raise

    async def _publish_state(self, client: aiomqtt.Client) -> None:
        while True:
            await self._state_changed.wait()
            self._state_changed.clear()
            state = GATEWAY_ONLINE if self._port_online else GATEWAY_OFFLINE
            await client.publish(self._state_topic, state, qos=1, retain=True)

    async def _publish_backlog(self, client: aiomqtt.Client) -> None:
        while True:
            while not self._backlog:
                self._backlog_filled.clear()
                await self._backlog_filled.wait()
            burst = [
                self._backlog.popleft() for _ in range(min(_PUBLISH_BURST, len(self._backlog)))
            ]
            try:
                await asyncio.gather(
                    *(client.publish(self._rx_topic, payload, qos=1) for payload in burst)
                )
            except BaseException:
                # Not known to be delivered: publish again after the reconnect.
                self._backlog.extendleft(reversed(burst))
                raise
            self.published += len(burst)

    def _downlink_message(self, message: aiomqtt.Message) -> None:
        if not message.topic.matches(self._tx_topic):
            return
        payload = message.payload if isinstance(message.payload, bytes) else b""
        try:
            frame = parse_gateway_tx(payload)
        except DecodeError as exc:
            self.tx_rejected[exc.reason.value] += 1
            log.warning("gateway %s: bad downlink on %s: %s", self.gateway_id, self._tx_topic, exc)
            return
        try:
            self._downlinks.put_nowait(frame)
        except asyncio.QueueFull:
            self.tx_rejected["queue_full"] += 1
            log.warning("gateway %s: downlink queue full, downlink dropped", self.gateway_id)


async def run_bridge(port: str, gateway_id: str, mqtt_url: str) -> None:
    """Relay between serial ``port`` and the broker at ``mqtt_url`` until cancelled.

    The relay runs under a ``TaskSupervisor``: should it crash, it is logged and restarted.
    """
    login = gateway_login(mqtt_url, gateway_id)
    relay = GatewayRelay(
        port, gateway_id, BrokerAddress.parse(login.url), client_id=login.client_id
    )
    tasks = TaskSupervisor(Metrics())
    tasks.add("gateway-relay", relay.run)
    tasks.start()
    try:
        await asyncio.Event().wait()
    finally:
        await tasks.stop(_GOODBYE_TIMEOUT_S + 1.0)


def _broker_url(settings: Settings) -> str:
    if settings.mqtt_embedded:
        # The broker an `alertnet serve` on this host embeds.
        return f"mqtt://127.0.0.1:{settings.embedded_mqtt_port}"
    return settings.mqtt_url


async def _run_until_signalled(port: str, gateway_id: str, mqtt_url: str) -> None:
    main_task = asyncio.current_task()
    assert main_task is not None
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, main_task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await run_bridge(port, gateway_id, mqtt_url)


def main(port: str, gateway_id: str, settings: Settings) -> int:
    """Entry point of ``alertnet gateway``; returns the exit code (0 after SIGTERM/SIGINT)."""
    mqtt_url = _broker_url(settings)
    try:
        BrokerAddress.parse(mqtt_url)
        if len(gateway_topic_id(gateway_id)) > MAX_GATEWAY_ID_CHARS:
            raise InvalidInput(f"gateway id must be at most {MAX_GATEWAY_ID_CHARS} characters")
    except (InvalidInput, DecodeError) as exc:
        print(f"alertnet gateway: {exc}", file=sys.stderr)
        return EXIT_ERROR
    log.info("gateway %s: relaying %s to %s", gateway_id, port, BrokerAddress.parse(mqtt_url).host)
    asyncio.run(_run_until_signalled(port, gateway_id, mqtt_url))
    return EXIT_OK

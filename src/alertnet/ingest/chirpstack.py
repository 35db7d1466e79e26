"""ChirpStack v4 ingest (DESIGN §9.2): LoRaWAN buttons whose network server is ChirpStack.

A transport in front of the one pipeline, like the MQTT ingest. It subscribes (QoS 1, a fixed
client id, a kept session — short for a shared-subscription member —, manual acks:
``mqtt_client``) to
``application/+/device/+/event/up`` on ``ALERTNET_CHIRPSTACK_MQTT_URL`` and hands each event's
v1 frame to the pipeline once per ``rxInfo`` entry (gateway ``cs:<gatewayId>``, its RSSI and
SNR): the first copy is the event, the others add to its reception record, and a redelivered
event is a duplicate of the frame counter, never a second alert. An event that cannot be used
(not JSON, fields missing or of the wrong type, bad base64, a bad frame, a frame whose EUI is
not ``deviceInfo.devEui``) is quarantined once, the whole event kept as evidence.

Each event is PUBACKed, in arrival order, once all its copies are committed. As soon as they
are (not in PUBACK order, so an alarm does not wait for heartbeats that arrived before it),
the device gets its "received" ack (state 1) through ChirpStack: a downlink command on
``application/<applicationId>/device/<devEui>/command/down`` with the uplink's fPort, for every
accepted uplink but heartbeats (duplicates too: their ack may have been lost). Nothing else is
ever sent: a Class A device listens only right after it transmits, so later states would only
queue up in ChirpStack (``DownlinkRouter`` leaves these devices alone).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import Counter

import aiomqtt

from alertnet.ingest import mqtt_client
from alertnet.ingest.mqtt_client import Received
from alertnet.ingest.pipeline import Outcome, Pipeline, RawUplink
from alertnet.metrics import Metrics
from alertnet.models import Transport, utcnow
from alertnet.protocol import DecodeError, EventCode
from alertnet.protocol.chirpstack import (
    UP_EVENT_SUBSCRIPTION,
    ChirpStackUplink,
    DownCommand,
    decode_up_event,
    down_command_topic,
    encode_down_command,
)
from alertnet.reconnect import Reconnector

__all__ = ["ChirpStackIngest", "received_ack"]

log = logging.getLogger(__name__)


def received_ack(uplink: ChirpStackUplink, outcomes: list[Outcome]) -> DownCommand | None:
    """The "received" downlink for a committed event, or None when it gets none.

    Heartbeats are not acknowledged over the air; a refused frame gets nothing.
    """
    for outcome in outcomes:
        frame = outcome.uplink
        if not outcome.accepted or frame is None or frame.event is EventCode.HEARTBEAT:
            continue
        downlink = outcome.downlink
        if downlink is not None:
            return DownCommand(uplink.dev_eui, uplink.f_port, downlink.to_bytes())
    return None


class ChirpStackIngest:
    """The ChirpStack transport; ``run()`` is its one long-lived task.

    Counters (plain attributes): ``downlinks`` per event committed (``queued``: a "received"
    command went to the outbox; ``none``: a heartbeat or a refused frame, nothing to send).
    """

    def __init__(
        self,
        pipeline: Pipeline,
        metrics: Metrics,
        *,
        url: str,
        client_id: str,
        share_group: str = "",
        session_expiry_s: int = mqtt_client.SHARED_SESSION_EXPIRY_S,
    ) -> None:
        self._pipeline = pipeline
        self._metrics = metrics
        self._address = mqtt_client.BrokerAddress.parse(url)
        self._client_id = client_id
        prefix = f"$share/{share_group}/" if share_group else ""
        # A shared-subscription member's session must end soon after it dies (mqtt_client).
        self._shared_session_expiry_s = session_expiry_s if share_group else None
        self._subscription = prefix + UP_EVENT_SUBSCRIPTION
        self._outbox: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        self._reconnector = Reconnector(
            "ChirpStack ingest", expected=(aiomqtt.MqttError,), on_unexpected=self._failed
        )
        #: Set while subscribed to the broker.
        self.connected = self._reconnector.connected
        self.downlinks: Counter[str] = Counter()

    @property
    def connections(self) -> int:
        """Sessions that got connected and subscribed since ``run()`` started."""
        return self._reconnector.connections

    def use_broker(self, url: str) -> None:
        """Point the ingest at another broker URL; only before ``run()`` starts."""
        self._address = mqtt_client.BrokerAddress.parse(url)

    async def run(self) -> None:
        """Stay connected forever, reconnecting on the shared backoff schedule."""
        await self._reconnector.run(self._session)

    def _failed(self, error: Exception) -> None:
        self._metrics.loop_errors.labels("chirpstack_ingest").inc()
        log.error("ChirpStack ingest failed; reconnecting", exc_info=error)

    async def _session(self) -> None:
        client = mqtt_client.manual_ack_client(
            self._address,
            self._client_id,
            shared_session_expiry_s=self._shared_session_expiry_s,
        )
        async with client:
            await client.subscribe(self._subscription, qos=1)
            self._reconnector.mark_connected()
            log.info(
                "ChirpStack ingest connected to %s:%d as %s",
                self._address.host,
                self._address.port,
                self._client_id,
            )
            await mqtt_client.serve_session(client, self._submit, self._outbox)

    def _submit(self, message: aiomqtt.Message) -> Received:
        topic = str(message.topic)
        payload = message.payload if isinstance(message.payload, bytes) else b""
        received_at = utcnow()
        try:
            uplink = decode_up_event(topic, payload)
        except DecodeError as exc:
            raw = RawUplink(payload, Transport.LORAWAN, received_at, source=topic)
            return Received(message, _all(self._pipeline.submit(raw, exc)))
        copies = [
            RawUplink(
                uplink.data,
                Transport.LORAWAN,
                received_at,
                topic_eui=uplink.dev_eui,
                gateway_id=rx.alertnet_gateway_id,
                rssi=rx.rssi,
                snr=rx.snr,
                source=topic,
            )
            for rx in uplink.rx_info
        ] or [RawUplink(uplink.data, Transport.LORAWAN, received_at, uplink.dev_eui, source=topic)]
        done = _all(*(self._pipeline.submit(raw) for raw in copies))
        done.add_done_callback(functools.partial(self._answer, uplink))
        return Received(message, done)

    def _answer(self, uplink: ChirpStackUplink, done: asyncio.Future[list[Outcome]]) -> None:
        """Queue the device's "received" once all copies of its event are committed."""
        if done.cancelled() or done.exception() is not None:
            return
        command = received_ack(uplink, done.result())
        if command is None:
            self.downlinks["none"] += 1
            return
        topic = down_command_topic(uplink.application_id, command.dev_eui)
        self._outbox.put_nowait((topic, encode_down_command(command)))
        self.downlinks["queued"] += 1


def _all(*futures: asyncio.Future[Outcome]) -> asyncio.Future[list[Outcome]]:
    """One future for the outcomes of every copy of an event, in order."""
    return asyncio.gather(*futures)

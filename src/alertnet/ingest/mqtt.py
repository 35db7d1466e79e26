"""MQTT ingest: subscribes to device and gateway uplinks, acks each one only after its commit.

One long-lived task per process. Each connection runs three things: the receive loop, which
hands every message to the pipeline; the acker, which sends PUBACKs strictly in arrival order
as their batches commit; and the downlink sender. A device's ack is routed the moment its
uplink commits, not in PUBACK order: an alarm committed by the pipeline's urgent lane gets its
"received" while heartbeats that arrived before it are still in their transaction. On any
broker error the connection is torn down and re-made on the shared reconnect schedule
(``alertnet.reconnect``: attempts at most 1 s apart in the first minute of an outage); the
session kept by the broker (``mqtt_client``) makes it redeliver whatever was not
acknowledged, and the database turns those copies into duplicates.

Gateways: ``gw/+/rx`` copies carry the gateway's id, RSSI and SNR into the pipeline;
``gw/+/state`` (``online``/``offline``, retained and the gateway's last will) goes to the
gateway registry and is acked once that is committed. Every committed uplink is handed to the
``DownlinkRouter``, which decides whether and where the device's ack goes.
"""

from __future__ import annotations

import asyncio
import functools
import logging

import aiomqtt

from alertnet.gateways.registry import GatewayRegistry
from alertnet.gateways.service import MAX_GATEWAY_ID_CHARS
from alertnet.ingest import mqtt_client
from alertnet.ingest.downlinks import DownlinkRouter
from alertnet.ingest.mqtt_client import Received
from alertnet.ingest.pipeline import Outcome, Pipeline, RawUplink
from alertnet.metrics import Metrics
from alertnet.models import Transport, utcnow
from alertnet.protocol import (
    GATEWAY_OFFLINE,
    GATEWAY_ONLINE,
    GW_RX_SUBSCRIPTION,
    GW_STATE_SUBSCRIPTION,
    UP_SUBSCRIPTION,
    DecodeError,
    Reason,
    Topic,
    parse_gateway_rx,
    parse_topic,
)
from alertnet.reconnect import Reconnector

log = logging.getLogger(__name__)


class MqttIngest:
    """The MQTT transport; ``run()`` is its one long-lived task.

    ``router`` decides where downlinks go; the ingest publishes them through its connection
    (``send``). Without one it makes and runs a router of its own (received acks only).
    ``registry`` records gateway sightings and states; without one, state messages are acked
    and ignored.
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
        router: DownlinkRouter | None = None,
        registry: GatewayRegistry | None = None,
    ) -> None:
        self._pipeline = pipeline
        self._metrics = metrics
        self._address = mqtt_client.BrokerAddress.parse(url)
        self._client_id = client_id
        prefix = f"$share/{share_group}/" if share_group else ""
        # A shared-subscription member's session must end soon after it dies (mqtt_client).
        self._shared_session_expiry_s = session_expiry_s if share_group else None
        self._subscriptions = [
            prefix + UP_SUBSCRIPTION,
            prefix + GW_RX_SUBSCRIPTION,
            # Not shared: every process keeps its own view of gateway states (and a shared
            # subscription gets no retained messages).
            GW_STATE_SUBSCRIPTION,
        ]
        self._outbox: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        self._own_router = router is None
        self._router = router if router is not None else DownlinkRouter()
        self._router.publish_via(self.send)
        self._registry = registry
        self._reconnector = Reconnector(
            "MQTT ingest",
            expected=(aiomqtt.MqttError,),
            on_lost=self._lost,
            on_unexpected=self._failed,
        )
        #: Set while subscribed to the broker.
        self.connected = self._reconnector.connected

    @property
    def connections(self) -> int:
        """Sessions that got connected and subscribed since ``run()`` started."""
        return self._reconnector.connections

    def use_broker(self, url: str) -> None:
        """Point the ingest at another broker URL; only before ``run()`` starts."""
        self._address = mqtt_client.BrokerAddress.parse(url)

    def send(self, topic: str, payload: bytes) -> None:
        """Queue a downlink (QoS 1). Best effort: a device that misses an ack retransmits."""
        self._outbox.put_nowait((topic, payload))

    async def run(self) -> None:
        """Stay connected forever, reconnecting on the shared backoff schedule."""
        if not self._own_router:
            await self._reconnector.run(self._session)
            return
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._router.run())
            tasks.create_task(self._reconnector.run(self._session))

    def _lost(self) -> None:
        self._metrics.mqtt_connected.set(0)

    def _failed(self, error: Exception) -> None:
        self._metrics.loop_errors.labels("mqtt_ingest").inc()
        log.error("MQTT ingest failed; reconnecting", exc_info=error)

    async def _session(self) -> None:
        client = mqtt_client.manual_ack_client(
            self._address,
            self._client_id,
            shared_session_expiry_s=self._shared_session_expiry_s,
        )
        async with client:
            await client.subscribe([(topic, 1) for topic in self._subscriptions])
            self._reconnector.mark_connected()
            self._metrics.mqtt_connected.set(1)
            log.info(
                "MQTT ingest connected to %s:%d as %s",
                self._address.host,
                self._address.port,
                self._client_id,
            )
            await mqtt_client.serve_session(client, self._submit, self._outbox)

    def _submit(self, message: aiomqtt.Message) -> Received:
        topic = str(message.topic)
        payload = message.payload if isinstance(message.payload, bytes) else b""
        try:
            parsed = parse_topic(topic)
            if parsed.kind == "up":
                raw = RawUplink(payload, Transport.MQTT, topic_eui=parsed.ident, source=topic)
                return self._submit_uplink(message, raw)
            if parsed.kind == "gw_rx":
                return self._submit_gateway_rx(message, parsed, payload, topic)
            if parsed.kind == "gw_state":
                return self._gateway_state(message, parsed, payload, topic)
            raise DecodeError(Reason.BAD_TOPIC, f"alertnet does not ingest {topic}")
        except DecodeError as exc:
            raw = RawUplink(payload, Transport.MQTT, source=topic)
            return self._submit_uplink(message, raw, exc)

    def _submit_uplink(
        self, message: aiomqtt.Message, raw: RawUplink, rejected: DecodeError | None = None
    ) -> Received:
        """Into the pipeline; the device's ack is routed as soon as the uplink commits."""
        done = self._pipeline.submit(raw, rejected)
        done.add_done_callback(functools.partial(self._route_downlink, raw))
        return Received(message, done)

    def _route_downlink(self, raw: RawUplink, done: asyncio.Future[Outcome]) -> None:
        if done.cancelled() or done.exception() is not None:
            return
        try:
            self._router.uplink_committed(done.result(), raw)
        except Exception:
            # A routing bug loses one ack (the device retries), never the ingest.
            self._metrics.loop_errors.labels("downlink_router").inc()
            log.exception("downlink routing failed")

    def _submit_gateway_rx(
        self, message: aiomqtt.Message, parsed: Topic, payload: bytes, topic: str
    ) -> Received:
        gateway_id = _storable_gateway_id(parsed)
        received_at = utcnow()
        if self._registry is not None:
            self._registry.seen(gateway_id, Transport.MQTT, received_at)
        try:
            rx = parse_gateway_rx(payload)
        except DecodeError as exc:
            raw = RawUplink(
                payload, Transport.MQTT, received_at, gateway_id=gateway_id, source=topic
            )
            return self._submit_uplink(message, raw, exc)
        raw = RawUplink(
            rx.data,
            Transport.MQTT,
            received_at,
            gateway_id=gateway_id,
            rssi=rx.rssi,
            snr=rx.snr,
            source=topic,
        )
        return self._submit_uplink(message, raw)

    def _gateway_state(
        self, message: aiomqtt.Message, parsed: Topic, payload: bytes, topic: str
    ) -> Received:
        gateway_id = _storable_gateway_id(parsed)
        if payload in (GATEWAY_ONLINE, GATEWAY_OFFLINE):
            online = payload == GATEWAY_ONLINE
            if self._registry is not None:
                done = self._registry.set_state(gateway_id, Transport.MQTT, online)
                return Received(message, done)
        elif payload:  # an empty payload only clears the retained message
            raise DecodeError(
                Reason.BAD_FIELD, f"gateway state must be online or offline, got {payload[:40]!r}"
            )
        ignored: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        ignored.set_result(None)
        return Received(message, ignored)


def _storable_gateway_id(parsed: Topic) -> str:
    """The gateway id a gw topic names, refused if the registry could not store it."""
    if len(parsed.ident) > MAX_GATEWAY_ID_CHARS:
        raise DecodeError(
            Reason.BAD_TOPIC, f"gateway id longer than {MAX_GATEWAY_ID_CHARS} characters"
        )
    return parsed.ident

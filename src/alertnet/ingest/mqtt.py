"""MQTT ingest: subscribes to device and gateway uplinks, acks each one only after its commit.

One long-lived task per process. Each connection runs three things: the receive loop, which
hands every message to the pipeline; the acker, which sends PUBACKs strictly in arrival order
as their batches commit; and the downlink sender. On any broker error the connection is torn
down and re-made with capped backoff; the persistent session makes the broker redeliver
whatever was not acknowledged, and the database turns those copies into duplicates.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

import aiomqtt

from alertnet.ingest import mqtt_client
from alertnet.ingest.pipeline import Outcome, Pipeline, RawUplink
from alertnet.metrics import Metrics
from alertnet.models import Transport
from alertnet.protocol import (
    GW_RX_SUBSCRIPTION,
    UP_SUBSCRIPTION,
    DecodeError,
    EventCode,
    Reason,
    down_topic,
    format_gateway_tx,
    gw_tx_topic,
    parse_gateway_rx,
    parse_topic,
)

log = logging.getLogger(__name__)

_BACKOFF_FIRST_S = 0.2
_BACKOFF_MAX_S = 10.0
_DOWNLINK_BURST = 200


class MqttIngest:
    def __init__(
        self,
        pipeline: Pipeline,
        metrics: Metrics,
        *,
        url: str,
        client_id: str,
        share_group: str = "",
    ) -> None:
        self._pipeline = pipeline
        self._metrics = metrics
        self._address = mqtt_client.BrokerAddress.parse(url)
        self._client_id = client_id
        prefix = f"$share/{share_group}/" if share_group else ""
        self._subscriptions = [prefix + UP_SUBSCRIPTION, prefix + GW_RX_SUBSCRIPTION]
        self._outbox: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        self.connected = asyncio.Event()

    def send(self, topic: str, payload: bytes) -> None:
        """Queue a downlink (QoS 1). Best effort: a device that misses an ack retransmits."""
        self._outbox.put_nowait((topic, payload))

    async def run(self) -> None:
        """Stay connected forever: reconnect with capped backoff, reset once a session worked."""
        backoff_s = _BACKOFF_FIRST_S
        while True:
            try:
                await self._session()
            except* aiomqtt.MqttError as group:
                log.warning("MQTT connection lost: %s", group.exceptions[0])
            except* Exception:
                self._metrics.loop_errors.labels("mqtt_ingest").inc()
                log.exception("MQTT ingest failed; reconnecting")
            if self.connected.is_set():
                backoff_s = _BACKOFF_FIRST_S
            self.connected.clear()
            self._metrics.mqtt_connected.set(0)
            log.info("MQTT ingest reconnecting in %.1fs", backoff_s)
            await asyncio.sleep(backoff_s)
            backoff_s = min(backoff_s * 2, _BACKOFF_MAX_S)

    async def _session(self) -> None:
        client = mqtt_client.manual_ack_client(self._address, self._client_id)
        async with client:
            await client.subscribe([(topic, 1) for topic in self._subscriptions])
            self.connected.set()
            self._metrics.mqtt_connected.set(1)
            log.info(
                "MQTT ingest connected to %s:%d as %s",
                self._address.host,
                self._address.port,
                self._client_id,
            )
            in_order: asyncio.Queue[tuple[aiomqtt.Message, asyncio.Future[Outcome]]] = (
                asyncio.Queue()
            )
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._ack_in_order(client, in_order))
                tasks.create_task(self._send_downlinks(client))
                async for message in client.messages:
                    in_order.put_nowait((message, self._submit(message)))
                raise aiomqtt.MqttError("message stream ended")

    def _submit(self, message: aiomqtt.Message) -> asyncio.Future[Outcome]:
        topic = str(message.topic)
        payload = message.payload if isinstance(message.payload, bytes) else b""
        try:
            parsed = parse_topic(topic)
            if parsed.kind == "gw_rx":
                rx = parse_gateway_rx(payload)
                raw = RawUplink(
                    rx.data,
                    Transport.MQTT,
                    gateway_id=parsed.ident,
                    rssi=rx.rssi,
                    snr=rx.snr,
                    source=topic,
                )
                return self._pipeline.submit(raw)
            if parsed.kind != "up":
                raise DecodeError(Reason.BAD_TOPIC, f"alertnet does not ingest {topic}")
            return self._pipeline.submit(
                RawUplink(payload, Transport.MQTT, topic_eui=parsed.ident, source=topic)
            )
        except DecodeError as exc:
            return self._pipeline.submit(RawUplink(payload, Transport.MQTT, source=topic), exc)

    async def _ack_in_order(
        self,
        client: aiomqtt.Client,
        in_order: asyncio.Queue[tuple[aiomqtt.Message, asyncio.Future[Outcome]]],
    ) -> None:
        """PUBACK each message after its commit, in the order the broker sent them."""
        while True:
            message, future = await in_order.get()
            outcome = await asyncio.shield(future)
            if not mqtt_client.ack(client, message):
                raise aiomqtt.MqttError("PUBACK could not be sent")
            for topic, payload in downlinks_for(outcome, gateway_of(message)):
                self.send(topic, payload)

    async def _send_downlinks(self, client: aiomqtt.Client) -> None:
        while True:
            burst = [await self._outbox.get()]
            while len(burst) < _DOWNLINK_BURST and not self._outbox.empty():
                burst.append(self._outbox.get_nowait())
            await asyncio.gather(
                *(client.publish(topic, payload, qos=1) for topic, payload in burst)
            )


def gateway_of(message: aiomqtt.Message) -> str | None:
    try:
        parsed = parse_topic(str(message.topic))
    except DecodeError:
        return None
    return parsed.ident if parsed.kind == "gw_rx" else None


def downlinks_for(outcome: Outcome, gateway_id: str | None) -> Iterable[tuple[str, bytes]]:
    """The "received" ack for an accepted uplink; heartbeats are not acknowledged over the air."""
    if not outcome.accepted or outcome.uplink is None or outcome.downlink is None:
        return ()
    if outcome.uplink.event is EventCode.HEARTBEAT:
        return ()
    if gateway_id is not None:
        return ((gw_tx_topic(gateway_id), format_gateway_tx(outcome.downlink.to_bytes())),)
    ack_bytes = outcome.ack_bytes()
    assert ack_bytes is not None
    return ((down_topic(outcome.uplink.eui), ack_bytes),)

"""MQTT downlinks from a process that runs no MQTT ingest (``alertnet serve --role api|dispatch``).

Alert progress (states 2-5) is sent by the process that commits it (``DownlinkRouter.notify``).
With the MQTT ingest in the same process it goes out through the ingest's connection; without
one (``alertnet.roles``), through this publish-only connection: login purpose ``downlinks``
(``<user>-downlinks-<n>``), a clean session and no subscriptions. Best effort like every
progress downlink: messages wait in a bounded queue while the broker is away (the oldest are
dropped and counted beyond ``max_queued``) and go out once it is back.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Final

import aiomqtt

from alertnet.ingest import mqtt_client
from alertnet.metrics import Metrics
from alertnet.reconnect import Reconnector

__all__ = ["DownlinkPublisher"]

log = logging.getLogger(__name__)

_BURST: Final = 200
_MAX_QUEUED: Final = 10_000


class DownlinkPublisher:
    """A publish-only MQTT connection; ``send`` is a ``DownlinkRouter``'s ``Publish``."""

    def __init__(
        self, metrics: Metrics, *, url: str, client_id: str, max_queued: int = _MAX_QUEUED
    ) -> None:
        self._metrics = metrics
        self._address = mqtt_client.BrokerAddress.parse(url)
        self._client_id = client_id
        self._outbox: deque[tuple[str, bytes]] = deque(maxlen=max_queued)
        self._queued = asyncio.Event()
        self._reconnector = Reconnector(
            "MQTT downlink publisher", expected=(aiomqtt.MqttError,), on_unexpected=self._failed
        )
        #: Set while connected to the broker.
        self.connected = self._reconnector.connected
        self.published = 0
        self.dropped = 0

    def send(self, topic: str, payload: bytes) -> None:
        """Queue one downlink (QoS 1); never blocks."""
        if len(self._outbox) == self._outbox.maxlen:
            self.dropped += 1  # the deque drops the oldest
        self._outbox.append((topic, payload))
        self._queued.set()

    async def run(self) -> None:
        await self._reconnector.run(self._session)

    async def _session(self) -> None:
        client = mqtt_client.broker_client(self._address, self._client_id, clean_session=True)
        async with client:
            self._reconnector.mark_connected()
            log.info(
                "MQTT downlink publisher connected to %s:%d as %s",
                self._address.host,
                self._address.port,
                self._client_id,
            )
            while True:
                await self._queued.wait()
                self._queued.clear()
                while self._outbox:
                    burst = [self._outbox.popleft() for _ in range(min(_BURST, len(self._outbox)))]
                    await asyncio.gather(
                        *(client.publish(topic, payload, qos=1) for topic, payload in burst)
                    )
                    self.published += len(burst)

    def _failed(self, error: Exception) -> None:
        self._metrics.loop_errors.labels("downlink_publisher").inc()
        log.error("MQTT downlink publisher failed; reconnecting", exc_info=error)

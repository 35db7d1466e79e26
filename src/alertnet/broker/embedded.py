"""An in-process MQTT broker (amqtt) for the zero-setup trial run.

It is bound to 127.0.0.1 only. It neither redelivers unacknowledged messages nor supports
shared subscriptions, so it is never used for anything but a trial: production and every
reliability test use Mosquitto.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


class EmbeddedBroker:
    def __init__(self, port: int) -> None:
        self.port = port
        self._broker: Any = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    async def start(self) -> None:
        from amqtt.broker import Broker

        log.warning(
            "using the embedded MQTT broker on 127.0.0.1:%d: for trial runs only "
            "(no redelivery, no persistence); set ALERTNET_MQTT_URL for production",
            self.port,
        )
        self._broker = Broker(
            {
                "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{self.port}"}},
                "plugins": {
                    "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
                },
            }
        )
        await self._broker.start()

    async def stop(self) -> None:
        if self._broker is not None:
            await self._broker.shutdown()
            self._broker = None

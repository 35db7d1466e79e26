"""An in-process MQTT broker (amqtt) for the zero-setup trial run.

It is bound to 127.0.0.1 only. It neither redelivers unacknowledged messages nor supports
shared subscriptions, so it is never used for anything but a trial: production and every
reliability test use Mosquitto.
"""

from __future__ import annotations

import logging
import socket
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
        """Listen on the configured port, or on a free one when it is taken.

        On a machine that already runs Mosquitto on 1883 a trial run must still start; the
        log names the port actually used.
        """
        from amqtt.broker import Broker

        if not _can_bind(self.port):
            taken, self.port = self.port, _free_loopback_port()
            log.warning(
                "port %d is taken (another broker?); the embedded MQTT broker uses "
                "127.0.0.1:%d instead",
                taken,
                self.port,
            )
        log.warning(
            "using the embedded MQTT broker on 127.0.0.1:%d: for trial runs only "
            "(no redelivery, no persistence); set ALERTNET_MQTT_URL for production",
            self.port,
        )
        broker = Broker(
            {
                "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{self.port}"}},
                "plugins": {
                    "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
                },
            }
        )
        await broker.start()
        self._broker = broker

    async def stop(self) -> None:
        if self._broker is not None:
            await self._broker.shutdown()
            self._broker = None


def _can_bind(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port

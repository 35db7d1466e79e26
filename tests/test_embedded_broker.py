"""The zero-setup run: the embedded broker starts even when its port is taken (by Mosquitto)."""

from __future__ import annotations

import asyncio
import socket

from alertnet.app import Runtime
from alertnet.config import Settings


async def test_runtime_moves_the_embedded_broker_off_a_taken_port(sqlite_url: str) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        runtime = Runtime(
            Settings(database_url=sqlite_url, mqtt_url="embedded", embedded_mqtt_port=taken)
        )
        await runtime.start()
        try:
            await asyncio.wait_for(runtime.mqtt.connected.wait(), 15)
            assert runtime.broker is not None and runtime.broker.port != taken
            assert runtime.broker_connected()
        finally:
            await runtime.stop()

"""The manual-ack wrapper around aiomqtt's private paho client, against a real Mosquitto.

If an aiomqtt upgrade changes the private API, these tests are what notices.
"""

from __future__ import annotations

import asyncio

import aiomqtt
import pytest

from alertnet.ingest import mqtt_client
from tests.support.mosquitto import MosquittoServer

pytestmark = pytest.mark.mosquitto

TOPIC = "alertnet/v1/up/70b3d57ed0001234"


async def _receive(client: aiomqtt.Client, count: int) -> list[aiomqtt.Message]:
    received: list[aiomqtt.Message] = []

    async def collect() -> None:
        async for message in client.messages:
            received.append(message)
            if len(received) == count:
                return

    await asyncio.wait_for(collect(), 10)
    return received


async def _publish(url: str, payloads: list[bytes]) -> None:
    address = mqtt_client.BrokerAddress.parse(url)
    async with aiomqtt.Client(address.host, address.port, identifier="publisher") as publisher:
        for payload in payloads:
            await publisher.publish(TOPIC, payload, qos=1)


async def test_unacked_messages_are_redelivered_and_acked_ones_are_not(
    mosquitto: MosquittoServer,
) -> None:
    address = mqtt_client.BrokerAddress.parse(mosquitto.url)
    async with mqtt_client.manual_ack_client(address, "ack-test") as client:
        await client.subscribe(TOPIC, qos=1)
    await _publish(mosquitto.url, [b"one", b"two", b"three"])

    async with mqtt_client.manual_ack_client(address, "ack-test") as client:
        first = await _receive(client, 3)
        assert [m.payload for m in first] == [b"one", b"two", b"three"]
        assert mqtt_client.ack(client, first[0])
        await asyncio.sleep(0.2)  # let the PUBACK reach the broker before we leave

    async with mqtt_client.manual_ack_client(address, "ack-test") as client:
        again = await _receive(client, 2)
        assert [m.payload for m in again] == [b"two", b"three"]
        for message in again:
            assert mqtt_client.ack(client, message)
        await asyncio.sleep(0.2)

    async with mqtt_client.manual_ack_client(address, "ack-test") as client:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(_receive(client, 1), 1.0)


async def test_session_survives_a_broker_restart(mosquitto: MosquittoServer) -> None:
    address = mqtt_client.BrokerAddress.parse(mosquitto.url)
    async with mqtt_client.manual_ack_client(address, "restart-test") as client:
        await client.subscribe(TOPIC, qos=1)
    await _publish(mosquitto.url, [b"before-restart"])
    await asyncio.to_thread(mosquitto.restart)
    async with mqtt_client.manual_ack_client(address, "restart-test") as client:
        received = await _receive(client, 1)
        assert received[0].payload == b"before-restart"


def test_broker_url_parsing() -> None:
    parsed = mqtt_client.BrokerAddress.parse("mqtt://svc:p%40ss@broker.local:8883")
    assert parsed == mqtt_client.BrokerAddress("broker.local", 8883, "svc", "p@ss")
    assert mqtt_client.BrokerAddress.parse("mqtt://h").port == 1883
    with pytest.raises(Exception, match="not an MQTT URL"):
        mqtt_client.BrokerAddress.parse("http://h")

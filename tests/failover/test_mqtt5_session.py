"""Manual acks and the session of a shared-subscription member on MQTT 5, on a real Mosquitto.

A member connects with MQTT 5 and ``clean_start=False`` (``mqtt_client.manual_ack_client``
with a session expiry): while its session lives, what it did not acknowledge comes back on
reconnect and what it did does not, as on MQTT 3.1.1. With the default expiry of 0 the
session ends with the connection: nothing comes back (the devices retry), and the member
must subscribe again, which each ingest connection does.
"""

from __future__ import annotations

import asyncio

import aiomqtt
import pytest

from alertnet.ingest import mqtt_client
from alertnet.protocol import UP_SUBSCRIPTION, up_topic
from tests.support.mosquitto import MosquittoServer, receive

pytestmark = pytest.mark.mosquitto

EUI = "70b3d57ed0001234"
SHARED = f"$share/alertnet/{UP_SUBSCRIPTION}"
#: Long enough to outlive a reconnect in the test.
LIVING_SESSION_S = 60


def _member(mosquitto: MosquittoServer, expiry_s: int) -> aiomqtt.Client:
    login = mosquitto.alertnet_login(mqtt_client.MqttPurpose.INGEST)
    address = mqtt_client.BrokerAddress.parse(login.url)
    return mqtt_client.manual_ack_client(address, login.client_id, shared_session_expiry_s=expiry_s)


async def _publish(mosquitto: MosquittoServer, payloads: list[bytes]) -> None:
    async with mosquitto.harness_client("publisher") as publisher:
        for payload in payloads:
            await publisher.publish(up_topic(EUI), payload, qos=1)


async def test_unacked_messages_come_back_while_the_session_lives(
    mosquitto: MosquittoServer,
) -> None:
    async with _member(mosquitto, LIVING_SESSION_S) as client:
        await client.subscribe(SHARED, qos=1)
        await _publish(mosquitto, [b"one", b"two", b"three"])
        first = await receive(client, 3)
        assert [m.payload for m in first] == [b"one", b"two", b"three"]
        assert mqtt_client.ack(client, first[0])
        await client.subscribe(SHARED, qos=1)  # its SUBACK follows the broker's read of the ack

    async with _member(mosquitto, LIVING_SESSION_S) as client:  # no new subscription
        again = await receive(client, 2)
        assert [m.payload for m in again] == [b"two", b"three"]
        for message in again:
            assert mqtt_client.ack(client, message)
        await client.subscribe(SHARED, qos=1)

    async with _member(mosquitto, LIVING_SESSION_S) as client:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(receive(client, 1), 1.0)


async def test_with_expiry_zero_the_session_ends_with_the_connection(
    mosquitto: MosquittoServer,
) -> None:
    async with _member(mosquitto, 0) as client:
        await client.subscribe(SHARED, qos=1)
        await _publish(mosquitto, [b"in flight"])
        assert [m.payload for m in await receive(client, 1)] == [b"in flight"]  # never acked
    await _publish(mosquitto, [b"while away"])

    async with _member(mosquitto, 0) as client:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(receive(client, 1), 1.0)
        await client.subscribe(SHARED, qos=1)
        await _publish(mosquitto, [b"after subscribing again"])
        assert [m.payload for m in await receive(client, 1)] == [b"after subscribing again"]

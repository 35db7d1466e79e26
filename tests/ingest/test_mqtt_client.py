"""The manual-ack wrapper around aiomqtt's private paho client, against a real Mosquitto.

If an aiomqtt upgrade changes the private API, these tests are what notices.
"""

from __future__ import annotations

import asyncio

import aiomqtt
import pytest

from alertnet.config import Settings
from alertnet.ingest import mqtt_client
from tests.support.mosquitto import MosquittoServer, receive

pytestmark = pytest.mark.mosquitto

EUI = "70b3d57ed0001234"
KEY = bytes(range(16))
TOPIC = f"alertnet/v1/up/{EUI}"


async def _publish(mosquitto: MosquittoServer, payloads: list[bytes]) -> None:
    async with mosquitto.device_client(EUI, KEY) as publisher:
        for payload in payloads:
            await publisher.publish(TOPIC, payload, qos=1)


async def _broker_has_read_all_sent(client: aiomqtt.Client) -> None:
    """Return once the broker has taken every packet sent before (the PUBACKs above all).

    The broker reads one connection's packets in order, so the SUBACK of a repeated
    subscription (which changes nothing) answers only after it took what came before.
    """
    await client.subscribe(TOPIC, qos=1)


def _ingest_client(mosquitto: MosquittoServer) -> aiomqtt.Client:
    login = mosquitto.alertnet_login(mqtt_client.MqttPurpose.INGEST)
    address = mqtt_client.BrokerAddress.parse(login.url)
    return mqtt_client.manual_ack_client(address, login.client_id)


async def test_unacked_messages_are_redelivered_and_acked_ones_are_not(
    mosquitto: MosquittoServer,
) -> None:
    async with _ingest_client(mosquitto) as client:
        await client.subscribe(TOPIC, qos=1)
    await _publish(mosquitto, [b"one", b"two", b"three"])

    async with _ingest_client(mosquitto) as client:
        first = await receive(client, 3)
        assert [m.payload for m in first] == [b"one", b"two", b"three"]
        assert mqtt_client.ack(client, first[0])
        await _broker_has_read_all_sent(client)

    async with _ingest_client(mosquitto) as client:
        again = await receive(client, 2)
        assert [m.payload for m in again] == [b"two", b"three"]
        for message in again:
            assert mqtt_client.ack(client, message)
        await _broker_has_read_all_sent(client)

    async with _ingest_client(mosquitto) as client:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(receive(client, 1), 1.0)


async def test_session_survives_a_broker_restart(mosquitto: MosquittoServer) -> None:
    async with _ingest_client(mosquitto) as client:
        await client.subscribe(TOPIC, qos=1)
    await _publish(mosquitto, [b"before-restart"])
    await asyncio.to_thread(mosquitto.restart)
    async with _ingest_client(mosquitto) as client:
        received = await receive(client, 1)
        assert received[0].payload == b"before-restart"


def test_broker_url_parsing() -> None:
    parsed = mqtt_client.BrokerAddress.parse("mqtt://svc:p%40ss@broker.local:8883")
    assert parsed == mqtt_client.BrokerAddress("broker.local", 8883, "svc", "p@ss")
    assert mqtt_client.BrokerAddress.parse("mqtt://h").port == 1883
    with pytest.raises(Exception, match="not an MQTT URL"):
        mqtt_client.BrokerAddress.parse("http://h")


def test_each_connection_logs_in_as_user_purpose_process() -> None:
    settings = Settings(mqtt_url="mqtt://svc:p%40ss@broker.local:8883", mqtt_process=3)

    login = mqtt_client.mqtt_login(settings, mqtt_client.MqttPurpose.INGEST, settings.mqtt_url)

    assert (login.username, login.password, login.client_id) == (
        "svc-ingest-3",
        "p@ss",
        "svc-ingest-3",
    )
    assert mqtt_client.BrokerAddress.parse(login.url) == mqtt_client.BrokerAddress(
        "broker.local", 8883, "svc-ingest-3", "p@ss"
    )
    downlinks = mqtt_client.mqtt_login(
        settings, mqtt_client.MqttPurpose.DOWNLINKS, settings.mqtt_url
    )
    assert downlinks.username == "svc-downlinks-3"


def test_without_a_user_the_login_stays_anonymous_with_the_fixed_client_id() -> None:
    settings = Settings(mqtt_url="mqtt://127.0.0.1:1883", mqtt_client_id="alertnet-x")

    login = mqtt_client.mqtt_login(settings, mqtt_client.MqttPurpose.INGEST, settings.mqtt_url)

    assert login == mqtt_client.MqttLogin("mqtt://127.0.0.1:1883", None, None, "alertnet-x")


def test_a_gateway_relay_logs_in_as_its_gateway() -> None:
    derived = mqtt_client.gateway_mqtt_password("s3cret", "gw-7")
    from_alertnet_url = mqtt_client.gateway_login("mqtt://alertnet:s3cret@h:1883", "gw-7")
    assert (from_alertnet_url.username, from_alertnet_url.password) == ("gw-7", derived)
    assert from_alertnet_url.client_id == "gw-7"
    assert len(derived) == 32 and derived != mqtt_client.gateway_mqtt_password("s3cret", "gw-8")

    own_url = mqtt_client.gateway_login(f"mqtt://gw-7:{derived}@h:1883", "gw-7")
    assert (own_url.username, own_url.password) == ("gw-7", derived)

    anonymous = mqtt_client.gateway_login("mqtt://h:1883", "/dev/ttyUSB0")
    assert (anonymous.username, anonymous.client_id) == (None, "alertnet-gw-_dev_ttyUSB0")

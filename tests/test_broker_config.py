"""The generated Mosquitto configuration does what alertnet relies on (DESIGN §6 "Broker").

Against a real broker: a device may speak only for itself, queued QoS 1 messages survive a
restart and a crash, and an offline persistent subscriber gets far more than Mosquitto's
default 1000 queued messages. Each test is bounded by a timeout.
"""

from __future__ import annotations

import asyncio
import base64
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from alertnet.broker.mosquitto import (
    ACL_FILE,
    MAX_QUEUED_MESSAGES,
    PASSWORD_FILE,
    hash_password,
    write_config,
)
from alertnet.errors import InvalidInput
from tests.support.mosquitto import MosquittoServer

DEVICE = "70b3d57ed0001234"
OTHER_DEVICE = "70b3d57ed0005678"
GATEWAY = "gw-1"
USERS = {
    "alertnet": "service-secret",
    DEVICE: "device-secret",
    OTHER_DEVICE: "other-secret",
    GATEWAY: "gateway-secret",
}
TEST_TIMEOUT_S = 20

MakeBroker = Callable[..., MosquittoServer]


def client(broker: MosquittoServer, username: str | None = None, **options: Any) -> aiomqtt.Client:
    password = broker.users[username] if username is not None else None
    return aiomqtt.Client(broker.host, broker.port, username=username, password=password, **options)


async def receive_until(
    subscriber: aiomqtt.Client, last_payload: bytes, timeout_s: float = 5.0
) -> list[tuple[str, bytes]]:
    """Every message up to and including the one whose payload is ``last_payload``."""
    received: list[tuple[str, bytes]] = []

    async def collect() -> None:
        async for message in subscriber.messages:
            assert isinstance(message.payload, bytes)
            received.append((message.topic.value, message.payload))
            if message.payload == last_payload:
                return
        raise AssertionError("the message stream ended")

    try:
        async with asyncio.timeout(timeout_s):
            await collect()
    except TimeoutError:
        tail = received[-3:]
        raise AssertionError(
            f"{last_payload!r} not received within {timeout_s} s; got {len(received)} "
            f"message(s), the last ones {tail}"
        ) from None
    return received


# --- the files --------------------------------------------------------------------------


def test_config_without_users_is_anonymous_with_persistence(tmp_path: Path) -> None:
    conf = write_config(tmp_path, port=18830).read_text()

    lines = {line for line in conf.splitlines() if line and not line.startswith("#")}
    assert "listener 18830 127.0.0.1" in lines
    assert "allow_anonymous true" in lines
    assert "persistence true" in lines
    assert f"persistence_location {tmp_path.resolve()}/" in lines
    assert f"max_queued_messages {MAX_QUEUED_MESSAGES}" in lines
    assert "max_queued_bytes 0" in lines
    assert not (tmp_path / PASSWORD_FILE).exists()


def test_config_with_users_has_hashed_passwords_and_acl(tmp_path: Path) -> None:
    conf = write_config(tmp_path, port=18830, users=USERS).read_text()

    assert "allow_anonymous false" in conf.splitlines()
    passwords = (tmp_path / PASSWORD_FILE).read_text()
    assert "device-secret" not in passwords
    assert passwords.count("$7$") == len(USERS)
    acl = (tmp_path / ACL_FILE).read_text().splitlines()
    assert "pattern write alertnet/v1/up/%u" in acl
    assert "pattern read alertnet/v1/down/%u" in acl
    assert f"topic readwrite alertnet/v1/gw/{GATEWAY}/#" in acl


@pytest.mark.parametrize(
    "users",
    [
        {DEVICE: "x"},  # no service user: alertnet could not connect
        {"alertnet": "x", "70B3D57ED0001234": "x"},  # an EUI must be lowercase
        {"alertnet": "x", "gw-a/b": "x"},  # a gateway id is one topic level
        {"alertnet": "x", "somebody": "x"},  # neither device nor gateway: no rights
        {"alertnet": "x", DEVICE: ""},
    ],
)
def test_users_the_acl_cannot_confine_are_refused(tmp_path: Path, users: dict[str, str]) -> None:
    with pytest.raises(InvalidInput):
        write_config(tmp_path, port=18830, users=users)


# --- the broker -------------------------------------------------------------------------


async def test_anonymous_and_wrong_password_are_refused(mosquitto_factory: MakeBroker) -> None:
    broker = mosquitto_factory(users=USERS)
    async with asyncio.timeout(TEST_TIMEOUT_S):
        with pytest.raises(aiomqtt.MqttError):
            async with aiomqtt.Client(broker.host, broker.port):
                pass
        with pytest.raises(aiomqtt.MqttError):
            async with aiomqtt.Client(broker.host, broker.port, username=DEVICE, password="wrong"):
                pass


async def test_device_publishes_only_to_its_own_up_topic(mosquitto_factory: MakeBroker) -> None:
    broker = mosquitto_factory(users=USERS)
    async with asyncio.timeout(TEST_TIMEOUT_S):
        async with client(broker, "alertnet") as service, client(broker, DEVICE) as device:
            await service.subscribe("alertnet/v1/up/+", qos=1)
            await service.subscribe("alertnet/v1/gw/+/rx", qos=1)

            await device.publish(f"alertnet/v1/up/{DEVICE}", b"own", qos=1)
            # Accepted at the protocol level (PUBACK) but dropped by the ACL.
            await device.publish(f"alertnet/v1/up/{OTHER_DEVICE}", b"forged", qos=1)
            await device.publish(f"alertnet/v1/gw/{DEVICE}/rx", b"as-gateway", qos=1)
            # Same client, same QoS: delivered in order, so "last" comes after anything above.
            await device.publish(f"alertnet/v1/up/{DEVICE}", b"last", qos=1)

            received = await receive_until(service, b"last")

    assert received == [(f"alertnet/v1/up/{DEVICE}", b"own"), (f"alertnet/v1/up/{DEVICE}", b"last")]


async def test_device_reads_only_its_own_down_topic(mosquitto_factory: MakeBroker) -> None:
    broker = mosquitto_factory(users=USERS)
    async with asyncio.timeout(TEST_TIMEOUT_S):
        async with client(broker, "alertnet") as service, client(broker, DEVICE) as device:
            await device.subscribe(f"alertnet/v1/down/{DEVICE}", qos=1)
            await device.subscribe(f"alertnet/v1/down/{OTHER_DEVICE}", qos=1)

            await service.publish(f"alertnet/v1/down/{OTHER_DEVICE}", b"not-yours", qos=1)
            await service.publish(f"alertnet/v1/down/{DEVICE}", b"yours", qos=1)

            received = await receive_until(device, b"yours")

    assert received == [(f"alertnet/v1/down/{DEVICE}", b"yours")]


async def test_gateway_publishes_only_under_its_own_id(mosquitto_factory: MakeBroker) -> None:
    broker = mosquitto_factory(users=USERS)
    async with asyncio.timeout(TEST_TIMEOUT_S):
        async with client(broker, "alertnet") as service, client(broker, GATEWAY) as gateway:
            await service.subscribe("alertnet/v1/gw/+/rx", qos=1)

            await gateway.publish("alertnet/v1/gw/gw-2/rx", b"forged", qos=1)
            await gateway.publish(f"alertnet/v1/gw/{GATEWAY}/rx", b"own", qos=1)

            received = await receive_until(service, b"own")

    assert received == [(f"alertnet/v1/gw/{GATEWAY}/rx", b"own")]


async def test_any_password_authenticates(mosquitto_factory: MakeBroker) -> None:
    # mosquitto_passwd -U would cut this one at its first ":"; our own hashing must not.
    users = {"alertnet": "s:e@c/r#e t-ü", DEVICE: "x" * 200}
    broker = mosquitto_factory(users=users)
    async with asyncio.timeout(TEST_TIMEOUT_S):
        for username in users:
            async with client(broker, username):
                pass


@pytest.mark.skipif(shutil.which("mosquitto_passwd") is None, reason="no mosquitto_passwd")
def test_hash_is_the_one_mosquitto_passwd_writes(tmp_path: Path) -> None:
    password_file = tmp_path / "passwords"
    subprocess.run(
        ["mosquitto_passwd", "-c", "-b", str(password_file), "alertnet", "a-test-password"],
        check=True,
        capture_output=True,
    )
    expected = password_file.read_text().strip().split(":", 1)[1]
    salt = base64.b64decode(expected.split("$")[3])

    assert hash_password("a-test-password", salt=salt) == expected


@pytest.mark.parametrize("crash", [False, True], ids=["stop", "kill-9"])
async def test_queued_message_survives_broker_restart(
    mosquitto_factory: MakeBroker, crash: bool
) -> None:
    broker = mosquitto_factory(autosave_interval_s=1)
    session = {"identifier": "alertnet-test-persistent", "clean_session": False}
    async with asyncio.timeout(TEST_TIMEOUT_S):
        async with client(broker, **session) as subscriber:
            await subscriber.subscribe("alertnet/v1/up/+", qos=1)
        async with client(broker) as publisher:
            await publisher.publish(f"alertnet/v1/up/{DEVICE}", b"press", qos=1)

        if crash:
            # SIGKILL skips the save on exit: only an autosave can have kept the message.
            await asyncio.sleep(2.5)
        await asyncio.to_thread(broker.restart, kill=crash)

        async with client(broker, **session) as subscriber:
            received = await receive_until(subscriber, b"press")

    assert received == [(f"alertnet/v1/up/{DEVICE}", b"press")]


async def test_offline_persistent_subscriber_gets_more_than_1000_queued_messages(
    mosquitto: MosquittoServer,
) -> None:
    count = 2_500
    session = {"identifier": "alertnet-test-backlog", "clean_session": False}
    async with asyncio.timeout(TEST_TIMEOUT_S * 2):
        async with client(mosquitto, **session) as subscriber:
            await subscriber.subscribe("alertnet/v1/up/+", qos=1)
        async with client(mosquitto) as publisher:
            for number in range(count):
                await publisher.publish(f"alertnet/v1/up/{DEVICE}", str(number).encode(), qos=1)

        async with client(mosquitto, **session) as subscriber:
            received = await receive_until(subscriber, str(count - 1).encode())

    assert [int(payload) for _topic, payload in received] == list(range(count))

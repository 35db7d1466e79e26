"""The generated Mosquitto configuration does what alertnet relies on (DESIGN §6 "Broker", §14).

The files: every setting §14 names, hashed passwords, the ACL. Against a real broker: only
known logins get in, a device may speak only for itself and read only its own acks, a gateway
only under its own id, queued QoS 1 messages survive a restart and a crash, and an offline
persistent subscriber gets far more than Mosquitto's default 1000 queued messages. Each test
is bounded by a timeout.
"""

from __future__ import annotations

import asyncio
import base64
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import aiomqtt
import pytest

from alertnet.broker.accounts import Registry, broker_accounts
from alertnet.broker.mosquitto import (
    ACL_FILE,
    CONF_FILE,
    MAX_PACKET_BYTES,
    MAX_QUEUED_MESSAGES,
    PASSWORD_FILE,
    PERSISTENCE_FILE,
    Account,
    Listener,
    hash_password,
    write_config,
)
from alertnet.errors import InvalidInput
from alertnet.protocol import device_mqtt_password
from tests.support.mosquitto import MosquittoServer
from tests.support.polling import eventually

DEVICE = "70b3d57ed0001234"
DEVICE_KEY = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
OTHER_DEVICE = "70b3d57ed0005678"
OTHER_KEY = bytes(range(16, 32))
GATEWAY = "gw-1"
REGISTRY = Registry(devices=((DEVICE, DEVICE_KEY), (OTHER_DEVICE, OTHER_KEY)), gateways=(GATEWAY,))
TEST_TIMEOUT_S = 20

MakeBroker = Callable[..., MosquittoServer]


def settings_of(conf: str) -> list[str]:
    return [line for line in conf.splitlines() if line and not line.startswith("#")]


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


def test_config_has_every_setting_design_14_names(tmp_path: Path) -> None:
    accounts = broker_accounts(
        REGISTRY, alertnet_user="alertnet", alertnet_password="secret", processes=2
    ).accounts
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    listeners = [Listener("127.0.0.1", 18830), Listener("0.0.0.0", 18883, cert, key)]

    conf = settings_of(write_config(tmp_path, listeners=listeners, accounts=accounts).read_text())

    for expected in [
        "per_listener_settings false",
        f"max_packet_size {MAX_PACKET_BYTES}",
        "max_inflight_messages 65535",
        f"max_queued_messages {MAX_QUEUED_MESSAGES}",
        "persistence true",
        f"persistence_location {tmp_path.resolve()}/",
        "autosave_interval 2",
        f"password_file {tmp_path.resolve() / PASSWORD_FILE}",
        f"acl_file {tmp_path.resolve() / ACL_FILE}",
    ]:
        assert expected in conf
    assert MAX_PACKET_BYTES == 65536
    assert not any(line.startswith("message_size_limit") for line in conf)
    queued_bytes = [int(line.split()[1]) for line in conf if line.startswith("max_queued_bytes")]
    assert queued_bytes and queued_bytes[0] > 0
    # Every listener, the TLS one included, refuses anonymous clients and uses the username
    # as client id (both are listener settings in Mosquitto's file).
    starts = [i for i, line in enumerate(conf) if line.startswith("listener ")]
    assert [conf[i] for i in starts] == ["listener 18830 127.0.0.1", "listener 18883 0.0.0.0"]
    for start, end in zip(starts, [*starts[1:], len(conf)], strict=True):
        block = conf[start:end]
        assert "allow_anonymous false" in block and "use_username_as_clientid true" in block
    assert f"certfile {cert.resolve()}" in conf and f"keyfile {key.resolve()}" in conf
    assert "allow_anonymous true" not in conf


def test_passwd_has_a_hash_per_login_and_the_acl_confines_each(tmp_path: Path) -> None:
    built = broker_accounts(
        REGISTRY,
        alertnet_user="alertnet",
        alertnet_password="secret",
        processes=2,
        chirpstack_password="cs-secret",
        frigate_password="fr-secret",
    )
    write_config(tmp_path, listeners=[Listener("127.0.0.1", 18830)], accounts=built.accounts)

    passwd = (tmp_path / PASSWORD_FILE).read_text()
    users = [line.split(":", 1)[0] for line in passwd.splitlines()]
    alertnet_logins = [
        f"alertnet-{purpose}-{n}"
        for n in (1, 2)
        for purpose in ("ingest", "downlinks", "chirpstack", "frigate")
    ]
    assert sorted(users) == sorted(
        [*alertnet_logins, "chirpstack", "frigate", DEVICE, OTHER_DEVICE, GATEWAY]
    )
    assert passwd.count("$7$") == len(users)
    assert device_mqtt_password(DEVICE_KEY) not in passwd and "secret" not in passwd
    assert (tmp_path / PASSWORD_FILE).stat().st_mode & 0o077 == 0
    acl = (tmp_path / ACL_FILE).read_text().splitlines()
    for expected in [
        "pattern write alertnet/v1/up/%u",
        "pattern read alertnet/v1/down/%u",
        f"user {GATEWAY}",
        f"topic write alertnet/v1/gw/{GATEWAY}/rx",
        f"topic write alertnet/v1/gw/{GATEWAY}/state",
        f"topic read alertnet/v1/gw/{GATEWAY}/tx",
        "user alertnet-ingest-2",
        "topic readwrite alertnet/v1/#",
        "topic read $share/+/alertnet/v1/#",
        "user chirpstack",
        "topic write application/+/device/+/event/up",
        "topic read application/+/device/+/command/down",
        "user frigate",
        "topic write frigate/#",
    ]:
        assert expected in acl
    # A device needs nothing beyond the patterns; a user line would be a grant too many.
    assert f"user {DEVICE}" not in acl


def test_odd_gateway_ids_are_skipped_and_reported() -> None:
    registry = Registry(devices=((DEVICE, DEVICE_KEY),), gateways=("gw/a", DEVICE, "gw-ok"))
    built = broker_accounts(registry, alertnet_user="alertnet", alertnet_password="x", processes=1)
    assert built.gateways == ("gw-ok",)
    assert [gateway for gateway, _why in built.skipped_gateways] == [DEVICE, "gw/a"]


@pytest.mark.parametrize(
    ("username", "password"),
    [("gw a", "x"), ("a:b", "x"), ("x" * 65, "x"), ("alertnet", ""), ("alertnet", "two\nlines")],
)
def test_logins_the_files_cannot_hold_are_refused(username: str, password: str) -> None:
    with pytest.raises(InvalidInput):
        Account(username, password)


def test_one_username_twice_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="twice"):
        write_config(
            tmp_path,
            listeners=[Listener("127.0.0.1", 18830)],
            accounts=[Account("a", "x"), Account("a", "y")],
        )


def test_a_broker_without_logins_listens_on_loopback_only(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="loopback"):
        write_config(tmp_path, listeners=[Listener("0.0.0.0", 18830)], accounts=None)
    conf = write_config(tmp_path, listeners=[Listener("127.0.0.1", 18830)], accounts=None)
    assert "allow_anonymous true" in settings_of(conf.read_text())


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


# --- the broker -------------------------------------------------------------------------


async def test_anonymous_wrong_password_and_unknown_users_are_refused(
    mosquitto: MosquittoServer,
) -> None:
    mosquitto.allow_device(DEVICE, DEVICE_KEY)
    attempts = [
        {},
        {"username": DEVICE, "password": "wrong"},
        {"username": "alertnet", "password": mosquitto.alertnet_password},  # no bare user
        {"username": OTHER_DEVICE, "password": device_mqtt_password(OTHER_KEY)},  # unregistered
    ]
    async with asyncio.timeout(TEST_TIMEOUT_S):
        for login in attempts:
            with pytest.raises(aiomqtt.MqttError):
                async with aiomqtt.Client(mosquitto.host, mosquitto.port, **login):
                    pass
        async with mosquitto.device_client(DEVICE, DEVICE_KEY):
            pass


async def test_device_publishes_only_to_its_own_up_topic(mosquitto: MosquittoServer) -> None:
    login = mosquitto.alertnet_login()
    async with asyncio.timeout(TEST_TIMEOUT_S):
        async with (
            aiomqtt.Client(
                mosquitto.host, mosquitto.port, username=login.username, password=login.password
            ) as service,
            mosquitto.device_client(DEVICE, DEVICE_KEY) as device,
        ):
            mosquitto.allow_device(OTHER_DEVICE, OTHER_KEY)
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


async def test_device_reads_only_its_own_down_topic(mosquitto: MosquittoServer) -> None:
    async with asyncio.timeout(TEST_TIMEOUT_S):
        async with (
            mosquitto.harness_client("alertnet") as service,
            mosquitto.device_client(DEVICE, DEVICE_KEY) as device,
        ):
            await device.subscribe(f"alertnet/v1/down/{DEVICE}", qos=1)
            await device.subscribe(f"alertnet/v1/down/{OTHER_DEVICE}", qos=1)
            await device.subscribe("alertnet/v1/down/+", qos=1)

            await service.publish(f"alertnet/v1/down/{OTHER_DEVICE}", b"not-yours", qos=1)
            await service.publish(f"alertnet/v1/down/{DEVICE}", b"yours", qos=1)

            received = await receive_until(device, b"yours")
            # "+" matched it too: the broker delivers it once per matching subscription,
            # but never the other device's ack.
            assert all(payload == b"yours" for _topic, payload in received)

    assert received[0] == (f"alertnet/v1/down/{DEVICE}", b"yours")


async def test_gateway_publishes_and_reads_only_under_its_own_id(
    mosquitto: MosquittoServer,
) -> None:
    async with asyncio.timeout(TEST_TIMEOUT_S):
        async with (
            mosquitto.harness_client("alertnet") as service,
            mosquitto.gateway_client(GATEWAY) as gateway,
        ):
            await service.subscribe("alertnet/v1/gw/+/rx", qos=1)
            await gateway.subscribe("alertnet/v1/gw/+/tx", qos=1)

            await gateway.publish("alertnet/v1/gw/gw-2/rx", b"forged", qos=1)
            await gateway.publish(f"alertnet/v1/up/{DEVICE}", b"as-device", qos=1)
            await gateway.publish(f"alertnet/v1/gw/{GATEWAY}/rx", b"own", qos=1)
            await service.publish("alertnet/v1/gw/gw-2/tx", b"not-yours", qos=1)
            await service.publish(f"alertnet/v1/gw/{GATEWAY}/tx", b"yours", qos=1)

            assert await receive_until(service, b"own") == [
                (f"alertnet/v1/gw/{GATEWAY}/rx", b"own")
            ]
            assert await receive_until(gateway, b"yours") == [
                (f"alertnet/v1/gw/{GATEWAY}/tx", b"yours")
            ]


async def test_passwords_survive_the_url_and_the_password_file(tmp_path: Path) -> None:
    # mosquitto_passwd -U would cut this one at its first ":"; our own hashing must not,
    # and the URL alertnet is given must carry it intact.
    server = MosquittoServer(tmp_path / "broker")
    server.alertnet_password = "s:e@c/r#e t-ü%"
    with server:
        login = server.alertnet_login()
        assert login.password == "s:e@c/r#e t-ü%"
        async with asyncio.timeout(TEST_TIMEOUT_S):
            async with aiomqtt.Client(
                server.host, server.port, username=login.username, password=login.password
            ):
                pass


@pytest.mark.parametrize("crash", [False, True], ids=["stop", "kill-9"])
async def test_queued_message_survives_broker_restart(
    mosquitto_factory: MakeBroker, crash: bool
) -> None:
    broker = mosquitto_factory(autosave_interval_s=1)
    async with asyncio.timeout(TEST_TIMEOUT_S):
        async with broker.harness_client("persistent", clean_session=False) as subscriber:
            await subscriber.subscribe("alertnet/v1/up/+", qos=1)
        async with broker.device_client(DEVICE, DEVICE_KEY) as publisher:
            await publisher.publish(f"alertnet/v1/up/{DEVICE}", b"press", qos=1)

        if crash:
            # SIGKILL skips the save on exit: only an autosave can have kept the message.
            saved = broker.directory / PERSISTENCE_FILE
            await eventually(
                lambda: saved.exists() and b"press" in saved.read_bytes(),
                awaiting="an autosave to write the queued message to disk",
            )
        await asyncio.to_thread(broker.restart, kill=crash)

        async with broker.harness_client("persistent", clean_session=False) as subscriber:
            received = await receive_until(subscriber, b"press")

    assert received == [(f"alertnet/v1/up/{DEVICE}", b"press")]


async def test_offline_persistent_subscriber_gets_more_than_1000_queued_messages(
    mosquitto: MosquittoServer,
) -> None:
    count = 2_500
    async with asyncio.timeout(TEST_TIMEOUT_S * 2):
        async with mosquitto.harness_client("backlog", clean_session=False) as subscriber:
            await subscriber.subscribe("alertnet/v1/up/+", qos=1)
        async with mosquitto.device_client(DEVICE, DEVICE_KEY) as publisher:
            for number in range(count):
                await publisher.publish(f"alertnet/v1/up/{DEVICE}", str(number).encode(), qos=1)

        async with mosquitto.harness_client("backlog", clean_session=False) as subscriber:
            received = await receive_until(subscriber, str(count - 1).encode())

    assert [int(payload) for _topic, payload in received] == list(range(count))


def test_conf_is_what_the_tests_broker_runs(mosquitto: MosquittoServer) -> None:
    """The tests' broker is configured by the production code, not by a test copy of it."""
    conf = settings_of((mosquitto.directory / CONF_FILE).read_text())
    assert "use_username_as_clientid true" in conf and "allow_anonymous false" in conf

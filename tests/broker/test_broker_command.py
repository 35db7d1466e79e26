"""``alertnet broker config DIR`` end to end: the command, its files, a real Mosquitto on them.

The operator's loop (DESIGN §14): configure from the registry, start Mosquitto, and after
devices change run the command again and send SIGHUP; the broker then knows the new device
and has forgotten the disabled one, without a restart.
"""

from __future__ import annotations

import asyncio
import getpass
import os
import signal
import subprocess
from pathlib import Path

import aiomqtt
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.broker.mosquitto import ACL_FILE, CONF_FILE, PASSWORD_FILE
from alertnet.db import unit_of_work
from alertnet.models import Device
from alertnet.protocol import device_mqtt_password
from tests.broker.helpers import alertnet_command
from tests.support import services
from tests.support.factories import create_device
from tests.support.mosquitto import HOST, configured_mosquitto, connack_code, free_port
from tests.support.polling import eventually

ALERTNET_PASSWORD = "a-long-broker-password"
ACCEPTED = 0
NOT_AUTHORIZED = 5


def settings_of(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line and not line.startswith("#")]


#: The tests' directories are private to the account running them: Mosquitto must stay it.
RUN_AS = ("--run-as", getpass.getuser())


def env_for(db_url: str, port: int = 1883) -> dict[str, str]:
    return {
        "ALERTNET_DATABASE_URL": db_url,
        "ALERTNET_MQTT_URL": f"mqtt://alertnet:{ALERTNET_PASSWORD}@{HOST}:{port}",
    }


async def test_the_command_writes_the_three_files_from_the_registry(
    db_url: str, session_factory: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    async with unit_of_work(session_factory) as session:
        device = await create_device(session)
        disabled = await create_device(session, status="disabled")
    directory = tmp_path / "broker"
    password_file = tmp_path / "chirpstack.secret"
    password_file.write_text("cs-password\n")

    done = await asyncio.to_thread(
        alertnet_command,
        "broker",
        "config",
        str(directory),
        *RUN_AS,
        "--processes",
        "3",
        "--gateway",
        "gw-roof",
        "--chirpstack-password-file",
        str(password_file),
        env=env_for(db_url),
    )

    assert done.returncode == 0, done.stderr
    assert "1 devices, 1 gateways, 12 alertnet logins" in done.stdout
    assert "kill -HUP" in done.stdout
    conf = settings_of(directory / CONF_FILE)
    assert "listener 1883 127.0.0.1" in conf
    assert "use_username_as_clientid true" in conf and "allow_anonymous false" in conf
    users = {line.split(":", 1)[0] for line in settings_of(directory / PASSWORD_FILE)}
    assert {device.eui, "gw-roof", "chirpstack", "alertnet-ingest-3"} <= users
    assert disabled.eui not in users
    assert "pattern write alertnet/v1/up/%u" in settings_of(directory / ACL_FILE)


async def test_the_command_refuses_a_broker_url_without_alertnets_login(
    db_url: str, tmp_path: Path
) -> None:
    for mqtt_url in ["embedded", f"mqtt://{HOST}:1883"]:
        done = await asyncio.to_thread(
            alertnet_command,
            "broker",
            "config",
            str(tmp_path / "broker"),
            env={**env_for(db_url), "ALERTNET_MQTT_URL": mqtt_url},
        )
        assert done.returncode == 1
        assert "ALERTNET_MQTT_URL" in done.stderr
    assert not (tmp_path / "broker").exists()


@pytest.mark.mosquitto
async def test_mosquitto_runs_on_the_files_and_sighup_picks_up_registry_changes(
    db_url: str, session_factory: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    services.require_mosquitto()
    async with unit_of_work(session_factory) as session:
        first = await create_device(session)
    port = free_port()
    directory = tmp_path / "broker"
    command = ("broker", "config", str(directory), *RUN_AS, "--listen", f"{HOST}:{port}")
    done = await asyncio.to_thread(
        alertnet_command,
        *command,
        "--gateway",
        "gw-roof",
        "--print-gateway-passwords",
        env=env_for(db_url, port),
    )
    assert done.returncode == 0, done.stderr
    gateway_password = done.stdout.split("gw-roof ", 1)[1].split()[0]

    with configured_mosquitto(directory / CONF_FILE, HOST, port) as broker:
        logins = {
            (first.eui, device_mqtt_password(first.key)): ACCEPTED,
            ("gw-roof", gateway_password): ACCEPTED,
            ("alertnet-ingest-1", ALERTNET_PASSWORD): ACCEPTED,
            ("alertnet", ALERTNET_PASSWORD): NOT_AUTHORIZED,
            (first.eui, "not-its-password"): NOT_AUTHORIZED,
        }
        for (username, password), expected in logins.items():
            assert connack_code(HOST, port, username, password) == expected, username
        # alertnet's session is up while the files change under the broker.
        async with aiomqtt.Client(
            HOST, port, username="alertnet-ingest-1", password=ALERTNET_PASSWORD
        ) as alertnet:
            async with unit_of_work(session_factory) as session:
                second = await create_device(session)
                await session.execute(
                    update(Device).where(Device.id == first.id).values(status="disabled")
                )
            second_login = (second.eui, device_mqtt_password(second.key))
            assert connack_code(HOST, port, *second_login) == NOT_AUTHORIZED

            done = await asyncio.to_thread(
                alertnet_command, *command, "--gateway", "gw-roof", env=env_for(db_url, port)
            )
            assert done.returncode == 0, done.stderr
            os.kill(broker.pid, signal.SIGHUP)

            # SIGHUP is handled asynchronously: the new device is let in a little later.
            await eventually(
                lambda: asyncio.to_thread(connack_code, HOST, port, *second_login),
                lambda code: code == ACCEPTED,
                awaiting="the broker to accept the new device after SIGHUP",
                interval_s=0.02,
            )
            assert connack_code(HOST, port, first.eui, device_mqtt_password(first.key)) == (
                NOT_AUTHORIZED
            )
            assert connack_code(HOST, port, "gw-roof", gateway_password) == ACCEPTED
            await alertnet.publish("alertnet/v1/down/x", b"still connected", qos=1)


@pytest.mark.mosquitto
@pytest.mark.skipif(
    subprocess.run(["which", "openssl"], capture_output=True, check=False).returncode != 0,
    reason="no openssl to make a test certificate",
)
async def test_the_tls_listener_takes_device_logins(
    db_url: str, session_factory: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    services.require_mosquitto()
    async with unit_of_work(session_factory) as session:
        device = await create_device(session)
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    port, tls_port = free_port(), free_port()
    directory = tmp_path / "broker"
    done = await asyncio.to_thread(
        alertnet_command,
        "broker",
        "config",
        str(directory),
        *RUN_AS,
        "--listen",
        f"{HOST}:{port}",
        "--tls-listen",
        f"{HOST}:{tls_port}",
        "--tls-cert",
        str(cert),
        "--tls-key",
        str(key),
        env=env_for(db_url, port),
    )
    assert done.returncode == 0, done.stderr

    with configured_mosquitto(directory / CONF_FILE, HOST, tls_port):
        tls = aiomqtt.TLSParameters(ca_certs=str(cert))
        password = device_mqtt_password(device.key)
        async with aiomqtt.Client(
            HOST, tls_port, username=device.eui, password=password, tls_params=tls
        ):
            pass
        with pytest.raises(aiomqtt.MqttError):
            async with aiomqtt.Client(
                HOST, tls_port, username=device.eui, password="wrong", tls_params=tls
            ):
                pass

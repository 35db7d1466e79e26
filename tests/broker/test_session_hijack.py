"""Issue 12, critical: a device that knows only its own MQTT login hijacked alertnet's session.

It connected with alertnet's fixed client id; Mosquitto closed alertnet's connection and, with
a clean session, threw its persistent session away, again and again: 1 of 40 alarms raised by
other devices during the attack was stored. With the generated configuration the broker
replaces every client id by the username (``use_username_as_clientid``), alertnet's login is
its own, and the attack only ever disconnects the attacker.
"""

from __future__ import annotations

import asyncio
import contextlib

import aiomqtt
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.db import unit_of_work
from alertnet.ingest.mqtt_client import MqttPurpose
from alertnet.protocol import EventCode, Uplink, device_mqtt_password, up_topic
from tests.broker.helpers import events_once_settled, running_runtime
from tests.support.factories import create_device
from tests.support.mosquitto import MosquittoServer, connack_code
from tests.support.polling import eventually

pytestmark = pytest.mark.mosquitto

VICTIMS = 40
#: MQTT 3.1.1 CONNACK "not authorized".
NOT_AUTHORIZED = 5


async def test_a_device_using_alertnets_client_id_cannot_take_over_its_session(
    db_url: str, session_factory: async_sessionmaker[AsyncSession], mosquitto: MosquittoServer
) -> None:
    async with unit_of_work(session_factory) as session:
        attacker = await create_device(session)
        victims = [await create_device(session) for _ in range(VICTIMS)]
    await mosquitto.allow_registry(db_url)
    ingest_id = mosquitto.alertnet_login(MqttPurpose.INGEST).client_id
    attacker_password = device_mqtt_password(attacker.key)
    # alertnet's own username with the device's password is refused outright.
    assert connack_code(mosquitto.host, mosquitto.port, ingest_id, attacker_password) == (
        NOT_AUTHORIZED
    )

    attacks = 0
    stop = asyncio.Event()

    async def attack() -> None:
        """Its own login, alertnet's client id, a clean session: over and over."""
        nonlocal attacks
        while not stop.is_set():
            with contextlib.suppress(aiomqtt.MqttError):
                async with aiomqtt.Client(
                    mosquitto.host,
                    mosquitto.port,
                    username=attacker.eui,
                    password=attacker_password,
                    identifier=ingest_id,
                    clean_session=True,
                ):
                    attacks += 1
                    await asyncio.sleep(0.02)

    async with running_runtime(db_url, mosquitto.url) as runtime:
        attacking = asyncio.create_task(attack())
        try:
            await eventually(
                lambda: attacks >= 3,
                awaiting="the attacker to take alertnet's client id three times",
                interval_s=0.02,
            )
            for victim in victims:
                press = Uplink.build(victim.key, victim.eui, 1, EventCode.PANIC).to_bytes()
                # One publish each, no retries: only alertnet's session can keep the alarm.
                async with mosquitto.device_client(victim.eui, victim.key) as device:
                    await device.publish(up_topic(victim.eui), press, qos=1)
            stored = await events_once_settled(session_factory, VICTIMS)
            still_connected = runtime.broker_connected()
        finally:
            stop.set()
            await attacking

    assert stored == VICTIMS
    assert still_connected
    assert attacks >= 10, "the attack did not run during the presses"
    log = mosquitto.log_text()
    assert f"Client {ingest_id} already connected" not in log
    assert f"as {attacker.eui} (" in log  # the broker knew the attacker by its own name

"""A SIGKILLed member of the shared subscription stops getting its share at once (DESIGN §6.1).

Mosquitto routes ``$share`` messages round-robin to every member whose session exists,
connected or not, and drops what it queued for a session when the session expires; it never
hands a dead member's messages to another member. alertnet's members therefore connect with
MQTT 5, ``clean_start=False`` and session expiry ``ALERTNET_MQTT_SESSION_EXPIRY_S`` (default
0): the session ends with the connection, and every message published after the kill reaches
the survivor, so a device's first retry gets through. The contrast case shows why the default
is 0: with 2 s the dead member keeps swallowing its share after the kill.

Both members connect through ``mqtt_client.manual_ack_client``, one in a subprocess that is
SIGKILLed (``tests.failover.member``), as alertnet processes 2 and 1 log in.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiomqtt
import pytest

from alertnet.config import Settings
from alertnet.ingest import mqtt_client
from alertnet.ingest.mqtt_client import MqttPurpose
from alertnet.protocol import UP_SUBSCRIPTION, up_topic
from tests.support.mosquitto import MosquittoServer
from tests.support.polling import eventually

pytestmark = pytest.mark.mosquitto

PROJECT_ROOT = Path(__file__).resolve().parents[2]
GROUP = "alertnet"
EUI = "70b3d57ed0001234"
#: A message every 20 ms for a second after the kill: 50 messages, 25 of them due to the
#: dead member by round-robin while its session lives.
AFTER_KILL = 50
PUBLISH_INTERVAL_S = 0.02
#: Bounds a hang only.
BOUND_S = 20.0


class _Member:
    """A member in a subprocess; ``received`` holds the payloads it printed."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.received: set[str] = set()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for line in self.process.stdout:
            self.received.add(line.decode().strip())

    async def kill(self) -> None:
        self.process.kill()
        await self.process.wait()
        await self._reader


@asynccontextmanager
async def _member_process(broker: MosquittoServer, expiry_s: int) -> AsyncIterator[_Member]:
    login = broker.alertnet_login(MqttPurpose.INGEST, process=2)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.failover.member",
        login.url,
        login.client_id,
        GROUP,
        str(expiry_s),
        cwd=PROJECT_ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    member = _Member(process)
    try:
        await eventually(lambda: "ready" in member.received, awaiting="the member to subscribe")
        yield member
    finally:
        if process.returncode is None:
            await member.kill()


async def _messages_after_the_kill_the_survivor_got(
    broker: MosquittoServer, expiry_s: int
) -> tuple[set[str], set[str]]:
    """Kill one of two members mid-stream; (published after the kill, the survivor's)."""
    login = broker.alertnet_login(MqttPurpose.INGEST, process=1)
    survivor = mqtt_client.manual_ack_client(
        mqtt_client.BrokerAddress.parse(login.url),
        login.client_id,
        shared_session_expiry_s=expiry_s,
    )
    got: set[str] = set()

    async def collect(client: aiomqtt.Client) -> None:
        async for message in client.messages:
            assert isinstance(message.payload, bytes)
            got.add(message.payload.decode())
            assert mqtt_client.ack(client, message)

    async with (
        survivor,
        _member_process(broker, expiry_s) as victim,
        broker.harness_client("publisher") as publisher,
    ):
        await survivor.subscribe(f"$share/{GROUP}/{UP_SUBSCRIPTION}", qos=1)
        collector = asyncio.create_task(collect(survivor))
        sent = 0

        async def both_served() -> bool:
            nonlocal sent
            sent += 1
            await publisher.publish(up_topic(EUI), f"before-{sent}".encode(), qos=1)
            return len(victim.received) > 1 and bool(got)

        await eventually(both_served, awaiting="both members to get messages")
        await victim.kill()
        after = {f"after-{n}" for n in range(AFTER_KILL)}
        for payload in sorted(after):
            await publisher.publish(up_topic(EUI), payload.encode(), qos=1)
            await asyncio.sleep(PUBLISH_INTERVAL_S)
        try:
            await eventually(
                lambda: after <= got, awaiting="every message after the kill", timeout_s=3.0
            )
        except AssertionError:
            pass  # the caller says whether that was expected
        collector.cancel()
        await asyncio.gather(collector, return_exceptions=True)
    return after, got


async def test_after_a_members_sigkill_the_survivor_gets_every_message(
    mosquitto: MosquittoServer,
) -> None:
    expiry_s = Settings().mqtt_session_expiry_s
    assert expiry_s == mqtt_client.SHARED_SESSION_EXPIRY_S == 0
    after, got = await _messages_after_the_kill_the_survivor_got(mosquitto, expiry_s)
    assert after <= got, f"lost after the kill: {sorted(after - got)}"


async def test_with_a_longer_expiry_the_dead_member_keeps_swallowing_its_share(
    mosquitto: MosquittoServer,
) -> None:
    after, got = await _messages_after_the_kill_the_survivor_got(mosquitto, expiry_s=2)
    assert after - got, "Mosquitto handed the dead member's share over: revisit the default"

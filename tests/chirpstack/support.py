"""What the ChirpStack tests share: alertnet running with its ChirpStack adapter on a real
Mosquitto, and a test client that plays ChirpStack (publishes events, reads commands)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import aiomqtt

from alertnet.app import Runtime
from alertnet.config import Settings
from alertnet.protocol import Downlink, EventCode, Uplink, decode_downlink
from alertnet.protocol.chirpstack import (
    ChirpStackUplink,
    DownCommand,
    RxInfo,
    decode_down_command,
    encode_up_event,
    up_event_topic,
)
from tests.support.mosquitto import MosquittoServer
from tests.support.polling import eventually

APP = "17c82e96-be03-4f38-aef3-f83d48582d97"
F_PORT = 10
DOWN_SUBSCRIPTION = "application/+/device/+/command/down"
GATEWAYS = (
    RxInfo("0016c001f153a14c", -97, 7.5),
    RxInfo("0016c001f1500812", -110, -3.0),
    RxInfo("0016c001f15e0003", -85, 9.25),
)


def event_payload(
    key: bytes,
    eui: str,
    counter: int,
    event: EventCode = EventCode.PANIC,
    *,
    f_cnt: int = 0,
    flags: int = 0,
    rx_info: Sequence[RxInfo] = GATEWAYS,
) -> bytes:
    """An uplink event as ChirpStack publishes it, carrying a signed v1 frame."""
    frame = Uplink.build(key, eui, counter, event, flags=flags, battery=87).to_bytes()
    uplink = ChirpStackUplink(APP, eui, f_cnt, F_PORT, frame, tuple(rx_info))
    return encode_up_event(
        uplink,
        deduplication_id=str(uuid.uuid4()),
        time="2026-11-30T08:00:00.123456+00:00",
        device_info={"tenantId": "t", "deviceName": "button"},
        extra={"dr": 5, "txInfo": {"frequency": 868100000}},
    )


@dataclass(frozen=True, slots=True)
class Command:
    """A downlink command alertnet published, as read back from the broker."""

    topic: str
    body: dict[str, Any]
    command: DownCommand

    @property
    def ack(self) -> Downlink:
        return decode_downlink(self.command.data)


@dataclass
class FakeChirpStack:
    """A client on the broker in ChirpStack's place: publishes events, collects commands."""

    client: aiomqtt.Client
    commands: list[Command] = field(default_factory=list)

    async def publish(self, eui: str, body: bytes, application_id: str = APP) -> None:
        await self.client.publish(up_event_topic(application_id, eui), body, qos=1)

    async def publish_raw(self, topic: str, body: bytes) -> None:
        await self.client.publish(topic, body, qos=1)

    async def collect(self) -> None:
        async for message in self.client.messages:
            assert isinstance(message.payload, bytes)
            self.commands.append(
                Command(
                    str(message.topic),
                    json.loads(message.payload),
                    decode_down_command(message.payload),
                )
            )

    async def commands_for(self, counters: Sequence[int], timeout_s: float = 15.0) -> None:
        """Wait until a command acknowledging each of ``counters`` has arrived."""

        def arrived() -> bool:
            return set(counters) <= {command.ack.counter for command in self.commands}

        await eventually(
            arrived,
            awaiting=f"downlink commands for counters {sorted(counters)}",
            timeout_s=timeout_s,
            details=lambda: repr([(c.topic, c.ack) for c in self.commands]),
        )


@contextlib.asynccontextmanager
async def fake_chirpstack(mosquitto: MosquittoServer) -> AsyncIterator[FakeChirpStack]:
    async with mosquitto.harness_client("chirpstack") as client:
        await client.subscribe(DOWN_SUBSCRIPTION, qos=1)
        fake = FakeChirpStack(client)
        reader = asyncio.create_task(fake.collect())
        try:
            yield fake
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader


def harness_url(mosquitto: MosquittoServer, name: str) -> str:
    """A URL logging in as the tests' all-topics login ``name`` (for the simulator's link,
    which makes its own client from a URL, as it would with ChirpStack's own login)."""
    mosquitto.harness_client(name)  # registers the login with the broker
    account = mosquitto.accounts().accounts
    password = next(a.password for a in account if a.username == f"harness-{name}")
    return f"mqtt://harness-{name}:{quote(password, safe='')}@{mosquitto.host}:{mosquitto.port}"


@contextlib.asynccontextmanager
async def chirpstack_runtime(db_url: str, mosquitto: MosquittoServer) -> AsyncIterator[Runtime]:
    """alertnet with its MQTT ingest and its ChirpStack adapter on the same broker."""
    runtime = Runtime(
        Settings(
            database_url=db_url,
            mqtt_url=mosquitto.url,
            chirpstack_mqtt_url=mosquitto.url,
            mqtt_client_id="alertnet-test",
        )
    )
    await runtime.start()
    try:
        assert runtime.chirpstack is not None
        await asyncio.wait_for(runtime.mqtt.connected.wait(), 10)
        await asyncio.wait_for(runtime.chirpstack.connected.wait(), 10)
        yield runtime
    finally:
        await runtime.stop()

"""``alertnet gateway`` as a real process, relaying a LoRa module to alertnet over Mosquitto."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.db import unit_of_work
from alertnet.models import Event, Gateway, Reception
from alertnet.protocol import AckState, EventCode, Uplink, decode_downlink, format_rcv
from tests.support.factories import create_device
from tests.support.mosquitto import MosquittoServer
from tests.support.polling import eventually

from .helpers import EUI, KEY, FakeModule, running_alertnet

SessionFactory = async_sessionmaker[AsyncSession]


async def _gateway(session_factory: SessionFactory, gateway_id: str) -> Gateway | None:
    async with session_factory() as session:
        return await session.get(Gateway, gateway_id)


async def _receptions(session_factory: SessionFactory) -> list[tuple[object, ...]]:
    async with session_factory() as session:
        rows = await session.execute(
            select(Event.counter, Reception.gateway_id, Reception.transport, Reception.rssi)
            .join(Event, Event.id == Reception.event_id)
            .order_by(Event.counter)
        )
        return [tuple(row) for row in rows]


async def _bridge_process(link: str, mqtt_url: str, log_path: Path) -> asyncio.subprocess.Process:
    environment = {**os.environ, "ALERTNET_MQTT_URL": mqtt_url, "ALERTNET_LOG_LEVEL": "INFO"}
    with log_path.open("wb") as log_file:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "alertnet",
            "gateway",
            "--serial",
            link,
            "--id",
            "gw-x",
            env=environment,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log_file,
            stderr=log_file,
        )


async def test_gateway_process_relays_presses_and_downlinks_over_mosquitto(
    session_factory: SessionFactory, mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    async with unit_of_work(session_factory) as session:
        await create_device(session, eui=EUI, key=KEY)
    module = FakeModule(tmp_path, "ttyUSB-x")
    log_path = tmp_path / "gateway.log"
    process: asyncio.subprocess.Process | None = None
    try:
        async with running_alertnet(session_factory, mqtt_url=mosquitto.url):
            mosquitto.allow_gateway("gw-x")  # as `alertnet broker config --gateway gw-x` does
            process = await _bridge_process(module.path, mosquitto.url, log_path)
            # The bridge announces itself (retained "online"); alertnet registers it.
            await eventually(
                lambda: _gateway(session_factory, "gw-x"),
                lambda g: g is not None and g.online,
                awaiting="gw-x registered online",
            )
            for counter, rssi in [(1, -97), (2, -84)]:
                press = Uplink.build(KEY, EUI, counter, EventCode.PANIC)
                await module.write(format_rcv(9, press.to_bytes(), rssi, 7.5))
            receptions = await eventually(
                lambda: _receptions(session_factory),
                lambda rows: len(rows) == 2,
                awaiting="both presses stored with their reception",
            )
            # alertnet → gw/gw-x/tx → the bridge → AT+SEND on the module's port.
            frames = await module.wait_sends(2)

            process.send_signal(signal.SIGKILL)  # no goodbye: the broker sends the will
            await process.wait()
            gateway = await eventually(
                lambda: _gateway(session_factory, "gw-x"),
                lambda g: g is not None and not g.online,
                awaiting="gw-x offline by its will after the SIGKILL",
            )
    finally:
        if process is not None and process.returncode is None:
            process.kill()
            await process.wait()
        module.close()
        print(log_path.read_text(errors="replace") if log_path.exists() else "(no log)")

    assert receptions == [(1, "gw-x", "mqtt", -97), (2, "gw-x", "mqtt", -84)]
    acks = sorted((decode_downlink(frame) for frame in frames), key=lambda ack: ack.counter)
    assert [(a.counter, a.state, a.verify(KEY)) for a in acks] == [
        (1, AckState.RECEIVED, True),
        (2, AckState.RECEIVED, True),
    ]
    assert gateway is not None and gateway.transport == "mqtt"
    assert gateway.last_seen_at is not None


async def test_gateway_process_says_offline_when_stopped_and_exits_cleanly(
    session_factory: SessionFactory, mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    module = FakeModule(tmp_path, "ttyUSB-y")
    log_path = tmp_path / "gateway.log"
    try:
        async with running_alertnet(session_factory, mqtt_url=mosquitto.url):
            mosquitto.allow_gateway("gw-x")  # as `alertnet broker config --gateway gw-x` does
            process = await _bridge_process(module.path, mosquitto.url, log_path)
            await eventually(
                lambda: _gateway(session_factory, "gw-x"),
                lambda g: g is not None and g.online,
                awaiting="gw-x registered online",
            )
            process.send_signal(signal.SIGTERM)
            async with asyncio.timeout(10):
                assert await process.wait() == 0
            await eventually(
                lambda: _gateway(session_factory, "gw-x"),
                lambda g: g is not None and not g.online,
                awaiting="gw-x offline after its clean exit",
            )
    finally:
        module.close()
        print(log_path.read_text(errors="replace") if log_path.exists() else "(no log)")

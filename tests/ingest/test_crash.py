"""Crash test: ``alertnet serve`` on PostgreSQL is SIGKILLed while devices press and retry.

Forty simulated devices each send 60 presses over a real Mosquitto, one at a time, and
retransmit a press (same counter, retransmission flag) until its "received" downlink comes
back — as real firmware does. The server is killed with SIGKILL once a third of the presses
are acknowledged and started again a moment later. Afterwards every press is an event exactly
once, every acknowledged press was committed, and no device has more than one alert.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import httpx
import pytest
import pytest_asyncio
from sqlalchemy import func, select

from alertnet.db import create_engine, create_session_factory, unit_of_work
from alertnet.models import Alert, Event, Quarantine
from alertnet.protocol import (
    FLAG_RETRANSMISSION,
    AckState,
    EventCode,
    Uplink,
    decode_downlink,
    parse_topic,
    up_topic,
)
from tests.support import services
from tests.support.database import migrate
from tests.support.factories import create_device
from tests.support.mosquitto import MosquittoServer, free_port
from tests.support.polling import eventually
from tests.support.postgres import temporary_database

pytestmark = [pytest.mark.postgres, pytest.mark.mosquitto, pytest.mark.slow]

DEVICES = 40
PRESSES_PER_DEVICE = 60
RETRY_FIRST_S = 1.0
RETRY_MAX_S = 4.0


@pytest_asyncio.fixture
async def crash_db() -> AsyncIterator[str]:
    services.require_postgres()
    async with temporary_database(prefix="alertnet_crash") as url:
        await migrate(url)
        yield url


class Server:
    """``alertnet serve`` as a real subprocess."""

    def __init__(self, db_url: str, mqtt_url: str, log_path: Path) -> None:
        self.port = free_port()
        self.env = {
            **os.environ,
            "ALERTNET_DATABASE_URL": db_url,
            "ALERTNET_MQTT_URL": mqtt_url,
            "ALERTNET_MQTT_CLIENT_ID": "alertnet-crash-test",
            "ALERTNET_LOG_LEVEL": "WARNING",
        }
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "alertnet", "serve", "--port", str(self.port)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        process = self.process
        async with httpx.AsyncClient() as client:

            async def ready() -> bool:
                assert process.poll() is None, self.log_tail()
                try:
                    response = await client.get(f"http://127.0.0.1:{self.port}/readyz")
                except httpx.HTTPError:
                    return False
                return response.status_code == 200

            await eventually(
                ready,
                awaiting=f"alertnet on port {self.port} to answer /readyz",
                timeout_s=30,
                interval_s=0.1,
                details=self.log_tail,
            )

    def log_tail(self) -> str:
        return self.log_path.read_text()[-3000:]

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


async def test_sigkill_mid_stream_loses_and_duplicates_nothing(
    crash_db: str, mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    engine = create_engine(crash_db)
    session_factory = create_session_factory(engine)
    async with unit_of_work(session_factory) as session:
        devices = [await create_device(session) for _ in range(DEVICES)]
    keys = {device.eui: device.key for device in devices}

    server = Server(crash_db, mosquitto.url, tmp_path / "alertnet.log")
    await server.start()
    acked: set[tuple[str, int]] = set()
    waiters: dict[tuple[str, int], asyncio.Future[None]] = {}
    retransmissions = 0

    async def listen(client: aiomqtt.Client) -> None:
        async for message in client.messages:
            eui = parse_topic(str(message.topic)).ident
            assert isinstance(message.payload, bytes)
            ack = decode_downlink(message.payload)
            assert ack.verify(keys[eui]) and ack.state is AckState.RECEIVED
            acked.add((eui, ack.counter))
            waiter = waiters.get((eui, ack.counter))
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    async def device(client: aiomqtt.Client, eui: str) -> None:
        nonlocal retransmissions
        for counter in range(1, PRESSES_PER_DEVICE + 1):
            event = EventCode.PANIC if counter % 3 else EventCode.INTRUSION
            waiter = waiters[(eui, counter)] = asyncio.get_running_loop().create_future()
            flags, wait_s = 0, RETRY_FIRST_S
            while True:
                frame = Uplink.build(keys[eui], eui, counter, event, flags=flags, battery=90)
                await client.publish(up_topic(eui), frame.to_bytes(), qos=1)
                try:
                    await asyncio.wait_for(asyncio.shield(waiter), wait_s)
                    break
                except TimeoutError:
                    retransmissions += 1
                    flags, wait_s = FLAG_RETRANSMISSION, min(wait_s * 2, RETRY_MAX_S)

    async def crash_when_a_third_is_acked() -> None:
        total = DEVICES * PRESSES_PER_DEVICE
        await eventually(
            lambda: len(acked) >= total // 3,
            awaiting=f"a third of the {total} presses acknowledged",
            timeout_s=240,
            interval_s=0.01,
        )
        await asyncio.to_thread(server.kill)
        killed_with = len(acked)
        await asyncio.sleep(1.0)
        await server.start()
        assert killed_with < total, "the crash came after the last press"

    try:
        async with mosquitto.harness_client("devices") as client:
            await client.subscribe("alertnet/v1/down/+", qos=1)
            listener = asyncio.create_task(listen(client))
            try:
                await asyncio.wait_for(
                    asyncio.gather(
                        crash_when_a_third_is_acked(), *(device(client, eui) for eui in keys)
                    ),
                    timeout=240,
                )
            finally:
                listener.cancel()
    finally:
        server.stop()

    sent = {(eui, counter) for eui in keys for counter in range(1, PRESSES_PER_DEVICE + 1)}
    assert acked == sent
    async with session_factory() as session:
        rows = await session.execute(select(Event.device_id, Event.counter, Event.reception_count))
        stored = list(rows)
        by_id = {device.id: device.eui for device in devices}
        assert sorted((by_id[d], c) for d, c, _n in stored) == sorted(sent)
        alerts_per_device_category = await session.execute(
            select(Alert.device_id, Alert.category, func.count()).group_by(
                Alert.device_id, Alert.category
            )
        )
        counts = {(d, c): n for d, c, n in alerts_per_device_category}
        assert set(counts.values()) == {1}
        assert len(counts) == DEVICES * 2
        presses = await session.scalar(select(func.sum(Alert.press_count)))
        assert presses == len(sent)
    await engine.dispose()
    print(f"crash test: {len(sent)} presses, {retransmissions} retransmissions")


async def test_sigkill_during_a_burst_without_device_retries_loses_nothing(
    crash_db: str, mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    """No retries here: only the broker's redelivery of unacked messages can save a press.

    This is what fails if alertnet ever sends a PUBACK before the commit.
    """
    engine = create_engine(crash_db)
    session_factory = create_session_factory(engine)
    async with unit_of_work(session_factory) as session:
        devices = [await create_device(session) for _ in range(DEVICES)]
    burst = 100
    total = DEVICES * burst
    server = Server(crash_db, mosquitto.url, tmp_path / "alertnet.log")
    await server.start()

    async def stored() -> int:
        async with session_factory() as session:
            return int(await session.scalar(select(func.count()).select_from(Event)) or 0)

    async def what_went_wrong() -> str:
        async with session_factory() as session:
            quarantined = (
                await session.execute(select(Quarantine.reason, Quarantine.detail))
            ).all()
        return f"quarantine {quarantined[:5]}, log: {server.log_tail()}"

    try:
        async with mosquitto.harness_client("burst") as client:
            for counter in range(1, burst + 1):
                for device in devices:
                    frame = Uplink.build(device.key, device.eui, counter, EventCode.PANIC)
                    await client.publish(up_topic(device.eui), frame.to_bytes(), qos=1)
        await eventually(
            stored,
            lambda count: count >= total // 10,
            awaiting=f"a tenth of the {total} presses stored",
            timeout_s=120,
            interval_s=0.005,
        )
        await asyncio.to_thread(server.kill)
        killed_at = await stored()
        assert killed_at < total, "the kill came too late to test anything"
        await server.start()
        await eventually(
            stored,
            lambda count: count >= total,
            awaiting=f"all {total} presses stored after the restart",
            timeout_s=120,
            interval_s=0.2,
            details=what_went_wrong,
        )
    finally:
        server.stop()
    final = await stored()
    assert final == total, f"{final}/{total} stored, {await what_went_wrong()}"
    async with session_factory() as session:
        assert await session.scalar(select(func.count()).select_from(Alert)) == DEVICES
    await engine.dispose()
    print(f"burst crash test: killed with {killed_at}/{total} committed, all {total} after restart")

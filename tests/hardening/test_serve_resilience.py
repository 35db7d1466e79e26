"""``alertnet serve`` on PostgreSQL and Mosquitto: no request stops ingest, SIGTERM always works.

Issue 12, critical: one ``POST /api/v1/uplinks`` with an ``X-Alertnet-Gateway`` header longer
than 120 characters killed the ingest pipeline task; later uplinks (HTTP and MQTT) hung,
``/readyz`` still answered 200, and SIGTERM no longer stopped the process (uvicorn waited for
the hung requests forever). These tests run the real command as a subprocess:

- after the over-long header, HTTP and MQTT presses are still committed and acknowledged, and
  ``/readyz`` (polled all along) never claims a readiness the presses contradict;
- with the pipeline stuck inside a transaction (a row lock held by the test), SIGTERM ends the
  process within 10 s, and after a restart nothing is lost or doubled.

Each prints its SIGTERM → exit time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import func, select, text

from alertnet.db import create_engine, create_session_factory, unit_of_work
from alertnet.models import Event, Quarantine
from alertnet.protocol import AckState, EventCode, Uplink, decode_downlink, down_topic, up_topic
from alertnet.supervisor import FORCED_EXIT_STATUS
from tests.ingest.helpers import EUI, KEY
from tests.support import services
from tests.support.database import migrate
from tests.support.factories import create_device
from tests.support.mosquitto import MosquittoServer, free_port
from tests.support.polling import eventually
from tests.support.postgres import temporary_database

pytestmark = [pytest.mark.postgres, pytest.mark.mosquitto, pytest.mark.slow]

SIGTERM_BUDGET_S = 10.0
ANSWER_TIMEOUT_S = 10.0
OVERLONG_GATEWAY = "gateway-" + "x" * 292  # 300 characters; the columns hold 120


@pytest_asyncio.fixture
async def serve_db() -> AsyncIterator[str]:
    services.require_postgres()
    async with temporary_database(prefix="alertnet_serve") as url:
        await migrate(url)
        engine = create_engine(url)
        try:
            async with unit_of_work(create_session_factory(engine)) as session:
                await create_device(session, eui=EUI, key=KEY)
        finally:
            await engine.dispose()
        yield url


class Served:
    """``python -m alertnet serve`` as a subprocess on a free port."""

    def __init__(self, db_url: str, mqtt_url: str, log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "ALERTNET_DATABASE_URL": db_url,
            "ALERTNET_MQTT_URL": mqtt_url,
            "ALERTNET_LOG_LEVEL": "WARNING",
        }
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    async def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "alertnet", "serve", "--port", str(self.port)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        async with httpx.AsyncClient() as client:

            async def ready() -> bool:
                assert self.process is not None and self.process.poll() is None, self.log_tail()
                with contextlib.suppress(httpx.HTTPError):
                    return (await client.get(f"{self.url}/readyz")).status_code == 200
                return False

            await eventually(ready, awaiting="alertnet to be ready", timeout_s=30)

    async def terminate(self) -> tuple[float, int]:
        """SIGTERM; returns (seconds until the process was gone, its exit status)."""
        assert self.process is not None
        began = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            status = await asyncio.to_thread(self.process.wait, 3 * SIGTERM_BUDGET_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
            pytest.fail(f"SIGTERM did not stop alertnet in {3 * SIGTERM_BUDGET_S:.0f} s")
        return time.monotonic() - began, status

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)


@pytest_asyncio.fixture
async def served(
    serve_db: str, mosquitto: MosquittoServer, tmp_path: Path
) -> AsyncIterator[Served]:
    mosquitto.allow_device(EUI, KEY)
    server = Served(serve_db, mosquitto.url, tmp_path / "alertnet.log")
    await server.start()
    try:
        yield server
    finally:
        server.kill()


async def _stored_counters(db_url: str) -> list[int]:
    engine = create_engine(db_url)
    try:
        async with create_session_factory(engine)() as session:
            return sorted((await session.scalars(select(Event.counter))).all())
    finally:
        await engine.dispose()


async def _press_over_mqtt(mosquitto: MosquittoServer, counter: int) -> None:
    """Publish a press as the device and wait for its signed "received" downlink."""
    async with mosquitto.device_client(EUI, KEY) as device:
        await device.subscribe(down_topic(EUI), qos=1)
        press = Uplink.build(KEY, EUI, counter, EventCode.PANIC)
        await device.publish(up_topic(EUI), press.to_bytes(), qos=1)
        async with asyncio.timeout(ANSWER_TIMEOUT_S):
            async for message in device.messages:
                assert isinstance(message.payload, bytes)
                ack = decode_downlink(message.payload)
                if ack.counter == counter:
                    assert ack.verify(KEY) and ack.state is AckState.RECEIVED
                    return


async def test_an_overlong_gateway_header_does_not_stop_ingest(
    served: Served, serve_db: str, mosquitto: MosquittoServer
) -> None:
    readiness: list[tuple[int, list[str]]] = []

    async def watch_readiness(client: httpx.AsyncClient) -> None:
        while True:
            answer = await client.get(f"{served.url}/readyz")
            readiness.append((answer.status_code, answer.json()["failing"]))
            await asyncio.sleep(0.1)

    async with httpx.AsyncClient(timeout=ANSWER_TIMEOUT_S) as client:
        watcher = asyncio.create_task(watch_readiness(client))
        try:
            first = await client.post(
                f"{served.url}/api/v1/uplinks",
                content=Uplink.build(KEY, EUI, 1, EventCode.PANIC).to_bytes(),
                headers={"X-Alertnet-Gateway": OVERLONG_GATEWAY},
            )
            # Refused at the edge (400) or accepted with the id cut to fit: never 5xx, no hang.
            assert first.status_code in (200, 400), first.text
            later = await client.post(
                f"{served.url}/api/v1/uplinks",
                content=Uplink.build(KEY, EUI, 2, EventCode.PANIC).to_bytes(),
            )
            assert later.status_code == 200, later.text
            ack = decode_downlink(later.content)
            assert (ack.counter, ack.verify(KEY)) == (2, True)
            await _press_over_mqtt(mosquitto, 3)
            answered = len(readiness)
            await eventually(
                lambda: len(readiness) >= answered + 5,
                awaiting="five more readiness answers after the presses",
            )
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)

    assert len(readiness) >= 5
    assert readiness == [(200, [])] * len(readiness), readiness
    expected = [1, 2, 3] if first.status_code == 200 else [2, 3]
    assert await _stored_counters(serve_db) == expected
    engine = create_engine(serve_db)
    try:
        async with create_session_factory(engine)() as session:
            failures = await session.scalar(
                select(func.count())
                .select_from(Quarantine)
                .where(Quarantine.reason == "processing_error")
            )
    finally:
        await engine.dispose()
    assert failures == 0

    elapsed_s, status = await served.terminate()
    print(f"\nSIGTERM → exit after the over-long header: {elapsed_s:.2f} s (status {status})")
    assert elapsed_s < SIGTERM_BUDGET_S
    assert status != FORCED_EXIT_STATUS, served.log_tail()


async def test_sigterm_stops_serve_within_10_s_while_the_pipeline_is_stuck(
    served: Served, serve_db: str, mosquitto: MosquittoServer
) -> None:
    engine = create_engine(serve_db)
    lock = await engine.connect()
    transaction = await lock.begin()
    await lock.execute(text("SELECT id FROM devices FOR UPDATE"))
    http_press = Uplink.build(KEY, EUI, 1, EventCode.PANIC).to_bytes()
    try:
        async with httpx.AsyncClient(timeout=3 * SIGTERM_BUDGET_S) as client:
            hung = asyncio.create_task(
                client.post(f"{served.url}/api/v1/uplinks", content=http_press)
            )
            async with mosquitto.device_client(EUI, KEY) as device:
                mqtt_press = Uplink.build(KEY, EUI, 2, EventCode.PANIC).to_bytes()
                await device.publish(up_topic(EUI), mqtt_press, qos=1)

            async def waiting_on_the_lock() -> int:
                async with engine.connect() as probe:
                    waiting = await probe.scalar(
                        text(
                            "SELECT count(*) FROM pg_stat_activity "
                            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                        )
                    )
                    return int(waiting or 0)

            await eventually(waiting_on_the_lock, awaiting="the pipeline to block on the lock")
            elapsed_s, status = await served.terminate()
            with contextlib.suppress(httpx.HTTPError):
                await hung  # the server went away under it: an error, or a 5xx at most
    finally:
        await transaction.rollback()
        await lock.close()
        await engine.dispose()
    print(
        f"\nSIGTERM → exit with the pipeline stuck on a row lock: {elapsed_s:.2f} s "
        f"(status {status})"
    )
    assert elapsed_s < SIGTERM_BUDGET_S, served.log_tail()

    # Nothing lost, nothing doubled: the broker redelivers the unacknowledged MQTT press, and
    # the HTTP device, never answered, sends its press again.
    await served.start()
    await eventually(
        lambda: _stored_counters(serve_db), lambda c: 2 in c, awaiting="the MQTT redelivery"
    )
    async with httpx.AsyncClient(timeout=ANSWER_TIMEOUT_S) as client:
        retry = await client.post(f"{served.url}/api/v1/uplinks", content=http_press)
    assert retry.status_code == 200
    assert await _stored_counters(serve_db) == [1, 2]
    elapsed_s, status = await served.terminate()
    print(f"SIGTERM → exit when idle: {elapsed_s:.2f} s (status {status})")
    assert elapsed_s < SIGTERM_BUDGET_S and status != FORCED_EXIT_STATUS

"""Two alertnet processes on one PostgreSQL: a change made through one reaches the other's client.

Real processes (``tests.realtime.serve``), a real signed press over HTTP on one, a dispatcher's
stream on the other. Their hubs poll only every 30 s, so prompt delivery proves LISTEN/NOTIFY.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from alertnet.db import create_engine, create_session_factory, unit_of_work
from alertnet.protocol import EventCode, Uplink
from tests.auth.helpers import Account, create_account
from tests.realtime.helpers import stream
from tests.support.factories import create_device
from tests.support.mosquitto import free_port
from tests.support.polling import eventually

PROJECT_ROOT = Path(__file__).resolve().parents[2]
KEY = bytes.fromhex("000102030405060708090a0b0c0d0e0f")


@dataclass
class Process:
    port: int
    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start(database_url: str, log_path: Path) -> Process:
    port = free_port()
    command = [sys.executable, "-m", "tests.realtime.serve", database_url, str(port)]
    with log_path.open("wb") as log:
        popen = subprocess.Popen(
            [*command, "--safety-poll-s", "30"],
            cwd=PROJECT_ROOT,
            env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Process(port, popen, log_path)


def stop(process: Process) -> None:
    if process.popen.poll() is None:
        process.popen.send_signal(signal.SIGINT)
        try:
            process.popen.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.popen.kill()
            process.popen.wait()


async def wait_healthy(process: Process) -> None:
    async with httpx.AsyncClient(base_url=process.http_url) as client:

        async def healthy() -> bool:
            assert process.popen.poll() is None, process.log()
            try:
                return (await client.get("/healthz")).status_code == 200
            except httpx.TransportError:
                return False

        await eventually(
            healthy,
            awaiting=f"the process on port {process.port} to answer /healthz",
            timeout_s=60,
            interval_s=0.1,
            details=process.log,
        )


@pytest.fixture
def two_processes(pg_url: str, tmp_path: Path) -> Iterator[tuple[Process, Process]]:
    first = start(pg_url, tmp_path / "first.log")
    second = start(pg_url, tmp_path / "second.log")
    try:
        yield first, second
    finally:
        stop(first)
        stop(second)


async def press(process: Process, eui: str) -> None:
    frame = Uplink.build(KEY, eui, 1, EventCode.PANIC).to_bytes()
    async with httpx.AsyncClient(base_url=process.http_url) as client:
        response = await client.post("/api/v1/uplinks", content=frame)
    assert response.status_code == 200, response.text


async def test_a_press_on_one_process_reaches_a_stream_on_the_other(
    pg_url: str, two_processes: tuple[Process, Process]
) -> None:
    first, second = two_processes
    engine: AsyncEngine = create_engine(pg_url)
    try:
        suffix = secrets.token_hex(3)
        async with unit_of_work(create_session_factory(engine)) as session:
            dispatcher: Account = await create_account(session, f"disp-{suffix}", "dispatcher")
            euis = [secrets.token_hex(8), secrets.token_hex(8)]
            for eui in euis:
                await create_device(session, eui=eui, key=KEY)
    finally:
        await engine.dispose()
    await asyncio.gather(wait_healthy(first), wait_healthy(second))

    async with (
        stream(first.ws_url, token=dispatcher.token) as on_first,
        stream(second.ws_url, token=dispatcher.token) as on_second,
    ):
        await on_first.ready()
        await on_second.ready()

        started = time.monotonic()
        await press(first, euis[0])
        (seen,) = await on_second.rows_of_type("alert.opened", 1, timeout_s=20)
        first_to_second_s = time.monotonic() - started
        assert seen["type"] == "alert.opened"
        assert seen["data"]["device_eui"] == euis[0]

        started = time.monotonic()
        await press(second, euis[1])
        got = await on_first.rows_of_type(
            "alert.opened", 2, timeout_s=20
        )  # its own press first, then the other's
        second_to_first_s = time.monotonic() - started
        assert [row["data"]["device_eui"] for row in got] == euis

        (own,) = await on_second.rows_of_type("alert.opened", 1, timeout_s=20)
        assert own["data"]["device_eui"] == euis[1] and own["seq"] > seen["seq"]
    # Below the 30 s safety poll (with room for a loaded machine): NOTIFY woke the hub.
    assert first_to_second_s < 20 and second_to_first_s < 20, (
        first_to_second_s,
        second_to_first_s,
    )

"""DC-09 across real ``alertnet serve`` processes on PostgreSQL (DESIGN §6, §9.1, §13).

- Two processes, one database: a panel reporting the same messages to both receivers (a
  primary and a backup path) gets an ACK from each, and each message is one event with two
  receptions.
- Crash: panels send alarms as panels do (one message at a time, each retried until its ACK)
  while the server is SIGKILLed and started again. Every ACK comes only once its message is
  committed (checked in the database the moment the ACK arrives), nothing is lost, nothing is
  doubled, and each panel has one alert whose press count is its number of alarms.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import func, select

from alertnet.db import create_engine, create_session_factory, unit_of_work
from alertnet.ingest.dc09 import codes, frame
from alertnet.models import Alert, Event, Quarantine
from tests.dc09_pipeline.helpers import (
    KEY_128,
    SessionFactory,
    create_panel,
    free_tcp_and_udp_port,
)
from tests.faults.harness import AlertnetProcess
from tests.support import services
from tests.support.database import migrate
from tests.support.mosquitto import MosquittoServer
from tests.support.polling import eventually
from tests.support.postgres import temporary_database

pytestmark = [pytest.mark.postgres, pytest.mark.mosquitto, pytest.mark.slow]

ANSWER_TIMEOUT_S = 2.0


@pytest_asyncio.fixture
async def panel_db() -> AsyncIterator[str]:
    services.require_postgres()
    async with temporary_database(prefix="alertnet_dc09") as url:
        await migrate(url)
        yield url


def server(url: str, broker: MosquittoServer, log: Path, name: str, port: int) -> AlertnetProcess:
    return AlertnetProcess(
        url,
        broker.url,
        log,
        env={
            "ALERTNET_DC09_LISTEN": f"127.0.0.1:{port}",
            "ALERTNET_MQTT_CLIENT_ID": f"alertnet-dc09-{name}-{port}",
        },
    )


async def exchange(port: int, message: bytes) -> bytes | None:
    """One message on a one-shot TCP connection; its answer, or None (no answer, no server)."""
    try:
        async with asyncio.timeout(ANSWER_TIMEOUT_S):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                writer.write(message)
                await writer.drain()
                return await reader.readuntil(b"\r")
            finally:
                writer.close()
    except (OSError, TimeoutError, asyncio.IncompleteReadError):
        return None


async def test_two_processes_make_one_event_of_a_message_sent_to_both(
    panel_db: str, session_mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    engine = create_engine(panel_db)
    session_factory = create_session_factory(engine)
    accounts = [f"{2000 + n}" for n in range(6)]
    async with unit_of_work(session_factory) as session:
        for account in accounts:
            await create_panel(session, account=account)
    ports = [free_tcp_and_udp_port(), free_tcp_and_udp_port()]
    servers = [
        server(panel_db, session_mosquitto, tmp_path / f"alertnet-{n}.log", f"p{n}", port)
        for n, port in enumerate(ports)
    ]
    try:
        await asyncio.gather(*(s.start() for s in servers))

        async def panel(account: str) -> None:
            for seq in range(1, 9):
                message = frame.encode_message(
                    "ADM-CID", seq, account, f"#{account}|1130 01 {seq:03d}"
                )
                answers = await asyncio.gather(*(exchange(port, message) for port in ports))
                kinds = [frame.parse_answer(a).kind if a else None for a in answers]
                assert kinds == ["ACK", "ACK"], (account, seq, kinds)

        await asyncio.gather(*(panel(account) for account in accounts))
    finally:
        for s in servers:
            s.stop()
    async with session_factory() as session:
        rows = (await session.execute(select(Event.dedup_key, Event.reception_count))).all()
        alert_rows = (await session.execute(select(Alert.press_count))).all()
    await engine.dispose()
    assert len(rows) == len(accounts) * 8
    assert {count for _key, count in rows} == {2}
    assert sorted(press for (press,) in alert_rows) == [8] * len(accounts)


async def test_sigkill_while_panels_send_loses_and_doubles_nothing(
    panel_db: str, session_mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    panels, alarms = 16, 12
    engine = create_engine(panel_db)
    session_factory = create_session_factory(engine)
    keys: dict[str, bytes | None] = {}
    devices: dict[str, int] = {}
    async with unit_of_work(session_factory) as session:
        for n in range(panels):
            account = f"{7000 + n:X}"
            keys[account] = KEY_128 if n % 2 else None
            devices[account] = (await create_panel(session, account=account, key=keys[account])).id
    port = free_tcp_and_udp_port()
    alertnet = server(panel_db, session_mosquitto, tmp_path / "alertnet.log", "crash", port)
    await alertnet.start()
    acked: set[tuple[str, int]] = set()
    checked_at_ack = 0
    retries = 0

    async def committed(session_factory: SessionFactory, account: str, key: str) -> bool:
        async with session_factory() as session:
            found = await session.scalar(
                select(Event.id).where(Event.device_id == devices[account], Event.dedup_key == key)
            )
        return found is not None

    async def panel(account: str) -> None:
        nonlocal checked_at_ack, retries
        key = keys[account]
        for seq in range(1, alarms + 1):
            data = f"#{account}|1130 01 {seq:03d}"
            dedup = codes.dedup_key("ADM-CID", f"{seq:04d}", data, ())
            while True:
                # A retry is the same message: same seq and data (fresh pad and time if encrypted).
                message = frame.encode_message(
                    "ADM-CID",
                    seq,
                    account,
                    data,
                    key=key,
                    timestamp=datetime.now(UTC) if key else None,
                )
                answer = await exchange(port, message)
                if answer is not None and frame.parse_answer(answer, key).kind == "ACK":
                    # The ACK says "committed": the event must be there already.
                    assert await committed(session_factory, account, dedup), (account, seq)
                    checked_at_ack += 1
                    acked.add((account, seq))
                    break
                retries += 1
                await asyncio.sleep(0.2)

    async def crash_when_a_third_is_acked() -> int:
        total = panels * alarms
        await eventually(
            lambda: len(acked) >= total // 3,
            awaiting=f"a third of the {total} alarms acknowledged",
            timeout_s=120,
            interval_s=0.01,
        )
        alertnet.send(signal.SIGKILL)
        assert alertnet.process is not None
        await asyncio.to_thread(alertnet.process.wait, 10)
        killed_with = len(acked)
        await asyncio.sleep(1.0)
        await alertnet.start()
        return killed_with

    try:
        killed_with, *_ = await asyncio.wait_for(
            asyncio.gather(crash_when_a_third_is_acked(), *(panel(a) for a in keys)), timeout=240
        )
    finally:
        alertnet.stop()
    total = panels * alarms
    assert killed_with < total, "the crash came after the last alarm"
    assert len(acked) == checked_at_ack == total
    async with session_factory() as session:
        stored = (await session.execute(select(Event.device_id, Event.dedup_key))).all()
        per_alert = (
            await session.execute(select(Alert.device_id, Alert.category, Alert.press_count))
        ).all()
        refused = await session.scalar(select(func.count()).select_from(Quarantine))
    await engine.dispose()
    expected = {
        (
            devices[account],
            codes.dedup_key("ADM-CID", f"{seq:04d}", f"#{account}|1130 01 {seq:03d}", ()),
        )
        for account in keys
        for seq in range(1, alarms + 1)
    }
    assert len(stored) == total and set(stored) == expected  # none lost, none doubled
    assert sorted(per_alert) == sorted((devices[a], "intrusion", alarms) for a in keys)
    assert refused == 0
    print(f"dc09 crash test: {total} alarms, {retries} retries, killed with {killed_with} acked")

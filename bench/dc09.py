"""``make bench``, the SIA DC-09 part (DESIGN §9.1, §8): alarm panels against ``alertnet serve``.

Measured in the same run, with the same simulated panels (``firmware_sim run panels``):

1. baseline: a bare echo on TCP and UDP (``EchoServer``: every ``LF … CR`` line is sent back at
   once, nothing parsed) — messages/s and message → answer p50/p99 of the machine as it is;
2. alertnet: the panels registered (``alertnet device import`` of the simulator's CSV), then
   ``alertnet serve`` with ``ALERTNET_DC09_LISTEN`` — messages/s and message → ACK p50/p99,
   where ACK means committed (invariant 1);
3. the database's verdict: every acknowledged alarm is exactly one event
   (``events.dedup_key`` of its panel), none missing.

``dc09_step(...)`` returns the step's dict; ``lines(step)`` its rows in the bench's table.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any, cast

from sqlalchemy import func, select, tuple_

from alertnet.db import create_engine, create_session_factory
from alertnet.models import Device, Event
from bench.harness import HOST, AlertnetServer, free_port

_ROOT = Path(__file__).resolve().parent.parent
SEED = 9


class EchoServer:
    """The baseline: sends each ``LF … CR`` line (TCP) or datagram (UDP) straight back."""

    def __init__(self) -> None:
        self.port = 0
        self._server: asyncio.Server | None = None
        self._udp: asyncio.DatagramTransport | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._echo, HOST, 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        loop = asyncio.get_running_loop()

        class Datagrams(asyncio.DatagramProtocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.transport = cast(asyncio.DatagramTransport, transport)

            def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
                self.transport.sendto(data, addr)

        transport, _ = await loop.create_datagram_endpoint(Datagrams, local_addr=(HOST, self.port))
        self._udp = transport

    @staticmethod
    async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                writer.write(await reader.readuntil(b"\r"))
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.transport.abort()

    async def stop(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._server is not None:
            self._server.close()


def _plan_options(panels: int) -> list[str]:
    return ["--devices", str(panels), "--seed", str(SEED)]


async def _simulate(
    workdir: Path, label: str, port: int, panels: int, messages: int, echo: bool
) -> dict[str, Any]:
    out = workdir / f"dc09-{label}.json"
    command = [
        sys.executable,
        "-m",
        "firmware_sim",
        "run",
        "panels",
        *_plan_options(panels),
        "--dc09",
        f"{HOST}:{port}",
        "--rate",
        "max",
        "--uplinks",
        str(messages),
        "--presses",
        str(max(1, messages // 20)),
        "--drain",
        "60",
        "--run-id",
        "1" if echo else "2",
        "--json",
        str(out),
    ]
    if echo:
        command.append("--dc09-echo")
    print(f"\n== dc09 {label}: {' '.join(command[3:])}", flush=True)
    process = await asyncio.create_subprocess_exec(*command, cwd=_ROOT)
    code = await process.wait()
    if not out.exists():
        raise RuntimeError(f"dc09 {label}: the simulator wrote no report (exit {code})")
    report: dict[str, Any] = json.loads(out.read_text())
    report["exit_code"] = code
    report["load_average"] = [round(value, 2) for value in os.getloadavg()]
    return report


async def _register(workdir: Path, db_url: str, panels: int) -> None:
    csv_path = workdir / "dc09-panels.csv"
    fleet = ["panels", *_plan_options(panels), "-o", str(csv_path)]
    commands = [
        [sys.executable, "-m", "firmware_sim", *fleet],
        [sys.executable, "-m", "alertnet", "device", "import", str(csv_path)],
    ]
    env = {**os.environ, "ALERTNET_DATABASE_URL": db_url}
    for command in commands:
        process = await asyncio.create_subprocess_exec(
            *command, cwd=_ROOT, env=env, stdout=asyncio.subprocess.DEVNULL
        )
        if await process.wait() != 0:
            raise RuntimeError(f"dc09: {' '.join(command[2:4])} failed")


async def verify(db_url: str, keys: list[list[str]]) -> dict[str, int]:
    """Acknowledged alarms (account, dedup_key) with no event, and with more than one."""
    wanted = [(account, key) for account, key in keys]
    counts: dict[tuple[str, str], int] = {}
    engine = create_engine(db_url)
    try:
        async with create_session_factory(engine)() as session:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                rows = await session.execute(
                    select(Device.dc09_account, Event.dedup_key, func.count())
                    .join(Device, Device.id == Event.device_id)
                    .where(tuple_(Device.dc09_account, Event.dedup_key).in_(chunk))
                    .group_by(Device.dc09_account, Event.dedup_key)
                )
                for account, key, count in rows:
                    counts[(str(account), str(key))] = int(count)
    finally:
        await engine.dispose()
    return {
        "db_missing_events": sum(1 for item in wanted if item not in counts),
        "db_duplicated_events": sum(1 for count in counts.values() if count > 1),
    }


async def dc09_step(
    workdir: Path, db_url: str, mqtt_url: str, panels: int, messages: int
) -> dict[str, Any]:
    """Echo baseline, then alertnet, with the same panels; see the module docstring."""
    echo = EchoServer()
    await echo.start()
    try:
        baseline = await _simulate(workdir, "echo", echo.port, panels, messages, echo=True)
    finally:
        await echo.stop()
    await _register(workdir, db_url, panels)
    port = free_port()
    server = AlertnetServer(
        db_url,
        mqtt_url,
        workdir / "alertnet-dc09.log",
        extra_env={"ALERTNET_DC09_LISTEN": f"{HOST}:{port}"},
    )
    await server.start()
    try:
        report = await _simulate(workdir, "alertnet", port, panels, messages, echo=False)
        memory = [{"process": "all roles", "pid": server.pid, **server.memory()}]
    finally:
        server.stop()
    report.update(await verify(db_url, report.pop("keys", [])))
    baseline.pop("keys", None)
    return {
        "label": "dc09",
        "panels": panels,
        "echo": baseline,
        "alertnet": report,
        "memory": memory,
    }


def _ms(part: dict[str, Any], key: str) -> str:
    value = part.get(key) if part.get("n") else None
    return "-" if value is None else f"{value:.1f}"


def lines(step: dict[str, Any]) -> list[str]:
    """The DC-09 rows of the bench's table."""
    echo, ours = step["echo"], step["alertnet"]
    ratio = f"{ours['answered_rate'] / echo['answered_rate']:.0%}" if echo["answered_rate"] else "-"
    return [
        f"SIA DC-09, {step['panels']} panels (TCP persistent/one-shot and UDP, half AES), "
        f"{ours['messages']:,} messages flat out:",
        f"  bare echo   {echo['answered_rate']:>8,.0f} msgs/s   message → answer "
        f"p50 {_ms(echo['latency'], 'p50_ms')} ms  p99 {_ms(echo['latency'], 'p99_ms')} ms",
        f"  alertnet    {ours['answered_rate']:>8,.0f} msgs/s ({ratio} of echo)   message → ACK "
        f"p50 {_ms(ours['latency'], 'p50_ms')} ms  p99 {_ms(ours['latency'], 'p99_ms')} ms"
        f"   (ACK = committed)",
        f"  acked {ours['acked']:,} of {ours['messages']:,}, never answered {ours['unanswered']}, "
        f"alarms missing in the database {ours.get('db_missing_events', '-')}, "
        f"doubled {ours.get('db_duplicated_events', '-')}",
        *(
            f"  alertnet memory: VmRSS {part.get('rss_mb')} MB, VmHWM {part.get('hwm_mb')} MB"
            for part in step.get("memory", [])
        ),
    ]


def failed(step: dict[str, Any]) -> bool:
    ours = step["alertnet"]
    return bool(
        not ours.get("ok") or ours.get("db_missing_events") or ours.get("db_duplicated_events")
    )

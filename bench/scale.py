"""The multi-process steps of ``make bench`` (DESIGN §8 scale-out, §13 roles and failover).

A city past one process runs several ``alertnet serve --role ingest`` processes sharing the
uplinks through one MQTT shared subscription, beside an ``--role api --role dispatch`` one.
Whether that holds up is measured here, on the same broker and database as the other steps:

- ``drain_step(ingests)``: the ingest processes are paused (SIGSTOP, so they stay members of
  the shared subscription and the broker queues their shares), the simulator publishes the
  backlog, then they resume (SIGCONT): the rate at which uplinks are committed (their
  ``/metrics``) from the first commits seen to the last, as the single-process drain step
  measures, for 1 and 2 ingest processes, against the bare subscriber's drain rate;
- ``failover_step()``: two ingest processes under steady load with presses, one SIGKILLed
  for good halfway: presses lost and duplicated (the simulator and the database), and the
  worst press → ack of the presses made within ``KILL_WINDOW_S`` of the kill (goal ≤ 2 s),
  timed by a ``PressObserver`` that watches the uplink and downlink topics.

Every process's VmRSS and VmHWM are in each step's report. An alertnet without ``--role``
(``roles_supported()`` false) runs N all-role processes in the group instead: the plumbing is
the same, only every process also serves the API and dispatches.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol, Self

import aiomqtt

from alertnet.protocol import (
    DOWN_SUBSCRIPTION,
    UP_SUBSCRIPTION,
    AckState,
    DecodeError,
    EventCode,
    decode_downlink,
    decode_downlink_json,
    decode_uplink_any,
    parse_topic,
)
from bench.harness import HOST, AlertnetServer, Broker, count_alerts

SHARE_GROUP: Final = "alertnet"
#: The simulator's /metrics source in these steps: nothing listens (the presses' acks decide
#: when a run is over; the bench sums the ingest processes' counts itself).
NO_METRICS_URL: Final = "http://127.0.0.1:9"
#: Presses first sent this close to the kill are the ones the failover goal is about.
KILL_WINDOW_S: Final = 2.0
_STALL_S: Final = 30.0
#: alertnet's ingest keepalive is 30 s; the broker drops a silent client after 1.5 times that.
_SAFE_PAUSE_S: Final = 40.0


class BenchSteps(Protocol):
    """What these steps use of ``bench.run.Bench``."""

    args: argparse.Namespace
    broker: Broker
    workdir: Path

    async def simulate(
        self, label: str, scenario: str, base_url: str, **options: Any
    ) -> dict[str, Any]: ...

    async def publish_only(self, label: str) -> dict[str, Any]: ...

    async def verify(self, db_url: str, report: dict[str, Any]) -> None: ...


def roles_supported() -> bool:
    """Whether this alertnet's ``serve`` takes ``--role`` (DESIGN §13)."""
    result = subprocess.run(
        [sys.executable, "-m", "alertnet", "serve", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    return "--role" in result.stdout


class Deployment:
    """An ``--role api --role dispatch`` process and ``ingests`` ``--role ingest`` ones in
    the shared group, each with its own client id and process number; all-role processes
    when ``roles`` is false."""

    def __init__(
        self, bench: BenchSteps, db_url: str, name: str, ingests: int, *, roles: bool
    ) -> None:
        self.broker = bench.broker
        log = bench.workdir / f"alertnet-{name}.log"
        shared = {"ALERTNET_MQTT_SHARE_GROUP": SHARE_GROUP}
        self.ingests = [
            AlertnetServer(
                db_url,
                self.broker.url,
                log,
                client_id=f"alertnet-{name}-ingest-{number}",
                extra_env={**shared, "ALERTNET_MQTT_PROCESS": str(number)},
                roles=("ingest",) if roles else (),
            )
            for number in range(1, ingests + 1)
        ]
        self.api = (
            AlertnetServer(
                db_url,
                self.broker.url,
                log,
                client_id=f"alertnet-{name}-api",
                extra_env={**shared, "ALERTNET_MQTT_PROCESS": str(ingests + 1)},
                roles=("api", "dispatch"),
            )
            if roles
            else None
        )

    @property
    def servers(self) -> list[tuple[str, AlertnetServer]]:
        named = [(f"ingest-{n}", server) for n, server in enumerate(self.ingests, 1)]
        return ([("api+dispatch", self.api)] if self.api is not None else []) + named

    async def start(self) -> None:
        for _name, server in self.servers:
            await server.start()

    def memory(self) -> list[dict[str, Any]]:
        return [
            {"process": name, "pid": server.pid, **server.memory()}
            for name, server in self.servers
            if server.alive
        ]

    def pause_ingests(self, paused: bool) -> None:
        for server in self.ingests:
            if server.process is not None and server.alive:
                server.process.send_signal(signal.SIGSTOP if paused else signal.SIGCONT)

    async def uplinks_committed(self) -> float:
        """``alertnet_uplinks_total`` summed over the live ingest processes (heartbeats keep
        no event row, so the database cannot count them)."""
        counts = [await server.uplinks_committed() for server in self.ingests if server.alive]
        return sum(count or 0.0 for count in counts)

    async def stop(self) -> None:
        """Stop every process and drop their sessions (no later message is queued for them)."""
        for _name, server in self.servers:
            await asyncio.to_thread(server.stop)
        for _name, server in self.servers:
            await self.broker.forget_session(server.env["ALERTNET_MQTT_CLIENT_ID"])


@dataclass(frozen=True, slots=True)
class Drained:
    """How a count grew while a backlog drained: the first count seen above zero and when,
    the last count and when it last grew."""

    first_count: float
    first_at: float
    count: float
    last_at: float

    def rate(self) -> float:
        """Per second between the first commits seen and the last: what was committed
        before the first poll is left out with the time it took."""
        elapsed = self.last_at - self.first_at
        return (self.count - self.first_count) / elapsed if elapsed > 0 else 0.0


async def wait_for_count(
    read: Callable[[], Awaitable[float]], expected: float, stall_s: float = _STALL_S
) -> Drained:
    """Poll ``read`` every 50 ms until it reaches ``expected`` or stops growing for
    ``stall_s``."""
    first_count = first_at = count = 0.0
    grew_at = time.monotonic()
    while count < expected and time.monotonic() - grew_at < stall_s:
        now_count = await read()
        if now_count > count:
            count, grew_at = now_count, time.monotonic()
            if not first_at:
                first_count, first_at = count, grew_at
        await asyncio.sleep(0.05)
    return Drained(first_count, first_at, count, grew_at)


class PressObserver:
    """Watches ``alertnet/v1/up/+`` and ``…/down/+``: when each alarm frame was first seen and
    when its first "received" ack went out (monotonic clock, as the bench's)."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.first_seen: dict[tuple[str, int], float] = {}
        self.acked: dict[tuple[str, int], float] = {}
        self.uplinks = 0
        self.first_uplink_at = 0.0
        self.receiving = asyncio.Event()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Self]:
        client = aiomqtt.Client(HOST, self.broker.port, identifier="bench-press-observer")
        client.pending_calls_threshold = 1_000_000
        async with client:
            await client.subscribe([(UP_SUBSCRIPTION, 1), (DOWN_SUBSCRIPTION, 1)])
            task = asyncio.create_task(self._watch(client))
            try:
                yield self
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _watch(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            now = time.monotonic()
            payload = message.payload if isinstance(message.payload, bytes) else b""
            with contextlib.suppress(DecodeError, ValueError):
                topic = parse_topic(str(message.topic))
                if topic.kind == "up":
                    self.uplinks += 1
                    if not self.receiving.is_set():
                        self.first_uplink_at = now
                        self.receiving.set()
                    uplink, _format = decode_uplink_any(payload)
                    if uplink.event is not EventCode.HEARTBEAT:
                        self.first_seen.setdefault((uplink.eui, uplink.counter), now)
                elif topic.kind == "down":
                    json_form = payload[:1] == b"{"
                    ack = (
                        decode_downlink_json(payload, topic.ident)
                        if json_form
                        else decode_downlink(payload)
                    )
                    if ack.state >= AckState.RECEIVED:
                        self.acked.setdefault((ack.eui, ack.counter), now)

    def around(self, moment: float, window_s: float) -> dict[str, Any]:
        """The presses first seen within ``window_s`` of ``moment``: how many, how many
        unacked, and the worst press → ack among them."""
        near = [key for key, at in self.first_seen.items() if abs(at - moment) <= window_s]
        latencies = [self.acked[key] - self.first_seen[key] for key in near if key in self.acked]
        return {
            "presses": len(near),
            "unacked": len(near) - len(latencies),
            "worst_ack_ms": round(max(latencies) * 1000, 1) if latencies else None,
        }


def _sent(report: dict[str, Any], *kinds: str) -> int:
    sent = report.get("summary", {}).get("uplinks_sent", {})
    return int(sum(sent.get(kind, 0) for kind in kinds))


async def drain_step(
    bench: BenchSteps, db_url: str, ingests: int, *, roles: bool
) -> dict[str, Any]:
    """The backlog drained by ``ingests`` ingest processes; see the module docstring."""
    label = f"drain {ingests} ingest"
    deployment = Deployment(bench, db_url, f"drain{ingests}", ingests, roles=roles)
    try:
        await deployment.start()
        deployment.pause_ingests(True)
        paused_at = time.monotonic()
        report = await bench.publish_only(f"drain-{ingests}-ingest-backlog")
        expected = _sent(report, "heartbeat")
        resumed_at = time.monotonic()
        deployment.pause_ingests(False)
        if resumed_at - paused_at > _SAFE_PAUSE_S:
            print(
                f"{label}: paused {resumed_at - paused_at:.0f} s, past the broker's keepalive "
                "limit: a member may have been dropped with its share (use fewer --uplinks)",
                flush=True,
            )
        drained = await wait_for_count(deployment.uplinks_committed, expected)
        memory = deployment.memory()
    finally:
        await deployment.stop()
    committed, rate = drained.count, drained.rate()
    print(f"{label}: {committed:,.0f} of {expected:,} queued uplinks at {rate:,.0f}/s", flush=True)
    alerts = await count_alerts(db_url)
    return {
        "label": label,
        "kind": "drain",
        "ingests": ingests,
        "roles": roles,
        "expected": expected,
        "committed": committed,
        "committed_rate": round(rate, 1),
        # Everything over the time since the processes resumed (their wake-up included).
        "rate_since_resume": round(committed / max(1e-9, drained.last_at - resumed_at), 1),
        "paused_s": round(resumed_at - paused_at, 1),
        "uplinks_missing": max(0, round(expected - committed)),
        "db_alerts_duplicated": alerts["duplicated"],
        "load_average": [round(value, 2) for value in os.getloadavg()],
        "memory": memory,
    }


async def failover_step(bench: BenchSteps, db_url: str, *, roles: bool) -> dict[str, Any]:
    """Two ingest processes under steady load; one SIGKILLed for good halfway."""
    args = bench.args
    deployment = Deployment(bench, db_url, "failover", 2, roles=roles)
    observer = PressObserver(bench.broker)
    victim_memory: list[dict[str, Any]] = []
    simulation: asyncio.Task[dict[str, Any]] | None = None
    try:
        await deployment.start()
        async with observer.running():
            simulation = asyncio.create_task(
                bench.simulate(
                    "failover",
                    "steady",
                    NO_METRICS_URL,
                    rate=args.failover_rate,
                    duration=args.failover_duration,
                    presses=args.failover_presses,
                    drain=60,
                    drill_share=0,
                    tamper_share=0,
                    # The devices' own schedule (DESIGN §2.2: 1, 2, 4, 8 s, then every 15 s):
                    # a press the dead process took is retried after 1 s, to a survivor.
                    retry_first=1,
                    retry_max=15,
                )
            )
            await asyncio.wait_for(observer.receiving.wait(), 60)
            await asyncio.sleep(args.failover_duration / 2)
            victim_name, victim = deployment.servers[-1]
            victim_memory = [{"process": victim_name, "pid": victim.pid, **victim.memory()}]
            killed_at = time.monotonic()
            victim.kill()
            print(f"failover: {victim_name} SIGKILLed", flush=True)
            report = await simulation
        memory = victim_memory + deployment.memory()
    finally:
        if simulation is not None and not simulation.done():
            simulation.cancel()
        await deployment.stop()
    await bench.verify(db_url, report)
    around = observer.around(killed_at, KILL_WINDOW_S)
    report.update(
        label="failover",
        kind="failover",
        roles=roles,
        memory=memory,
        killed_after_s=round(killed_at - observer.first_uplink_at, 1),
        around_kill=around,
    )
    print(
        f"failover: {around['presses']} presses within {KILL_WINDOW_S:.0f} s of the kill, "
        f"worst press → ack {around['worst_ack_ms']} ms, unacked {around['unacked']}",
        flush=True,
    )
    return report

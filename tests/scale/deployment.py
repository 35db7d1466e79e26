"""The scale suite's tools: a multi-process deployment, background heartbeats, dispatch checks.

- ``Deployment``: alertnet processes with roles (DESIGN §13) on one database and one broker,
  the ingest members sharing the uplinks (``$share/alertnet/…``, §7), each with its own
  broker logins (``ALERTNET_MQTT_PROCESS``); one of them can be SIGKILLed for good.
- ``HeartbeatLoad``: registered devices sending heartbeats at a steady rate in the background.
- ``DispatchLedger``: reads ``DispatchSnapshot``s of every alert and offer, which say which
  alert never got an offer, which waits in ``new``, which had two offers pending at once, and
  whether the offers pending when a process died were expired and followed by another one.

The devices that press are the fault suite's ``Fleet`` (``tests.faults.harness``).
"""

from __future__ import annotations

import asyncio
import itertools
import signal
from asyncio import Task
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Coroutine, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import aiomqtt
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from alertnet.db import create_engine, create_session_factory, unit_of_work
from alertnet.models import Alert, AlertState, Device, Offer, OfferState
from alertnet.protocol import EventCode, Uplink, up_topic
from tests.faults.harness import AlertnetProcess
from tests.support.factories import create_post
from tests.support.mosquitto import PROCESSES, MosquittoServer

SHARE_GROUP: Final = "alertnet"
_KILL_BOUND_S: Final = 10.0
_TASK_STOP_BOUND_S: Final = 10.0
#: Short, so that a connection whose DISCONNECT is lost is still closed soon (paho's keepalive).
_HARNESS_KEEPALIVE_S: Final = 5


# --- the processes -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProcessSpec:
    """One alertnet process of the deployment: a name for the test, and its roles."""

    name: str
    roles: tuple[str, ...]

    def serve_args(self) -> list[str]:
        return [arg for role in self.roles for arg in ("--role", role)]


#: Two ingest members sharing the uplinks, two API+dispatch processes: whichever one dies, a
#: process of its kind is left.
TOPOLOGY: Final = (
    ProcessSpec("ingest-1", ("ingest",)),
    ProcessSpec("ingest-2", ("ingest",)),
    ProcessSpec("api-dispatch-1", ("api", "dispatch")),
    ProcessSpec("api-dispatch-2", ("api", "dispatch")),
)


class Deployment:
    """The processes of ``topology``, process number ``n`` logging in as ``alertnet-*-n``."""

    def __init__(
        self,
        database_url: str,
        broker: MosquittoServer,
        directory: Path,
        *,
        topology: Sequence[ProcessSpec] = TOPOLOGY,
        offer_timeout_s: float,
    ) -> None:
        assert len(topology) <= PROCESSES, "the test broker has logins for fewer processes"
        self.specs = {spec.name: spec for spec in topology}
        self.processes: dict[str, AlertnetProcess] = {}
        for number, spec in enumerate(topology, start=1):
            self.processes[spec.name] = AlertnetProcess(
                database_url,
                broker.url,
                directory / f"{spec.name}.log",
                serve_args=spec.serve_args(),
                env={
                    "ALERTNET_MQTT_SHARE_GROUP": SHARE_GROUP,
                    "ALERTNET_MQTT_PROCESS": str(number),
                    "ALERTNET_MQTT_CLIENT_ID": f"alertnet-{spec.name}",
                    "ALERTNET_OFFER_TIMEOUT_S": str(offer_timeout_s),
                },
            )
        self.killed: set[str] = set()

    async def start(self) -> None:
        """Start every process at once; return when each answers ``/readyz`` with 200."""
        await asyncio.gather(*(process.start() for process in self.processes.values()))

    def kill(self, name: str) -> None:
        """SIGKILL ``name`` and reap it: it never comes back."""
        process = self.processes[name]
        process.send(signal.SIGKILL)
        assert process.process is not None
        process.process.wait(_KILL_BOUND_S)
        self.killed.add(name)

    def with_role(self, role: str) -> list[str]:
        return [name for name, spec in self.specs.items() if role in spec.roles]

    def assert_survivors_alive(self) -> None:
        dead = {
            name: process.process.returncode if process.process else None
            for name, process in self.processes.items()
            if name not in self.killed
            and (process.process is None or process.process.poll() is not None)
        }
        assert not dead, f"survivors exited: {dead}\n{self.logs()}"

    def stop(self) -> None:
        for process in self.processes.values():
            process.stop()

    def logs(self, tail: int = 2000) -> str:
        return "\n".join(
            f"--- {name} ({' '.join(self.specs[name].roles)}) log:\n{process.log(tail)}"
            for name, process in self.processes.items()
        )

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Deployment]:
        try:
            await self.start()
            yield self
        finally:
            await asyncio.to_thread(self.stop)


#: Tasks that did not end within ``_TASK_STOP_BOUND_S`` of their cancellation, kept referenced.
_abandoned: set[Task[None]] = set()


@asynccontextmanager
async def in_background(work: Coroutine[Any, Any, None], name: str) -> AsyncIterator[Task[None]]:
    """Run ``work`` as a task for the block; cancel it (if still running) when the block ends.

    The wait for it to end is bounded: a cancelled aiomqtt 2.5 client was seen waiting forever
    for the broker to acknowledge its DISCONNECT (its socket writer never re-registered), and
    a client of the harness must not hang the suite. Such a task is left behind, referenced.
    """
    task = asyncio.create_task(work, name=name)
    try:
        yield task
    finally:
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=_TASK_STOP_BOUND_S)
        if task not in done:
            _abandoned.add(task)


# --- the registry --------------------------------------------------------------------------


async def register_posts(database_url: str, count: int) -> None:
    """``count`` available posts with a fresh location, all within reach of every device."""
    engine = create_engine(database_url)
    try:
        async with unit_of_work(create_session_factory(engine)) as session:
            for number in range(1, count + 1):
                await create_post(session, callsign=f"SCALE-{number}")
    finally:
        await engine.dispose()


# --- background heartbeats -----------------------------------------------------------------


@dataclass(slots=True)
class HeartbeatLoad:
    """Heartbeats from ``devices`` in turn, ``rate_per_s`` in all, through one harness login.

    Heartbeats are not acknowledged over the air (DESIGN §2.2 acks alarms), so nothing is
    retried: they are load, and ``last_seen_at`` of each device shows they were read.
    """

    broker: MosquittoServer
    devices: dict[str, bytes]
    rate_per_s: float
    sent: int = 0
    counters: dict[str, int] = field(default_factory=dict)

    async def run(self) -> None:
        devices = itertools.cycle(sorted(self.devices.items()))
        while True:
            client = self.broker.harness_client("heartbeats", keepalive=_HARNESS_KEEPALIVE_S)
            try:
                async with client:
                    while True:
                        eui, key = next(devices)
                        counter = self.counters[eui] = self.counters.get(eui, 0) + 1
                        frame = Uplink.build(key, eui, counter, EventCode.HEARTBEAT, battery=90)
                        await client.publish(up_topic(eui), frame.to_bytes(), qos=1, timeout=5)
                        self.sent += 1
                        await asyncio.sleep(1 / self.rate_per_s)
            except aiomqtt.MqttError:
                await asyncio.sleep(0.25)

    async def unseen(self, database_url: str) -> list[str]:
        """The heartbeat devices alertnet has never heard from."""
        engine = create_engine(database_url)
        try:
            async with create_session_factory(engine)() as session:
                rows = await session.execute(
                    select(Device.eui).where(
                        Device.eui.in_(sorted(self.devices)), Device.last_seen_at.is_(None)
                    )
                )
                return sorted(eui for (eui,) in rows)
        finally:
            await engine.dispose()


# --- dispatch ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OfferRow:
    id: int
    alert_id: int
    state: str
    offered_at: datetime
    deadline_at: datetime
    decided_at: datetime | None


@dataclass(frozen=True, slots=True)
class AlertRow:
    id: int
    eui: str
    category: str
    state: str


@dataclass(frozen=True, slots=True)
class DispatchSnapshot:
    """Every alert and every offer at one moment."""

    alerts: dict[int, AlertRow]
    offers: dict[int, list[OfferRow]]  # alert id → its offers, oldest first

    def of_devices(self, euis: set[str]) -> list[AlertRow]:
        return [alert for alert in self.alerts.values() if alert.eui in euis]

    def summary(self) -> str:
        """Alerts by state, offers by state, and the last offer's times (for failures)."""
        alert_states = Counter(alert.state for alert in self.alerts.values())
        offers = [offer for offers in self.offers.values() for offer in offers]
        offer_states = Counter(offer.state for offer in offers)
        last = max(offers, key=lambda offer: offer.offered_at, default=None)
        return f"alerts {dict(alert_states)}, offers {dict(offer_states)}, last offer {last}"

    def unoffered(self, euis: set[str]) -> list[AlertRow]:
        """Alerts of these devices that never got an offer."""
        return [alert for alert in self.of_devices(euis) if not self.offers.get(alert.id)]

    def offer_gaps(self, euis: set[str], alerts_per_device: int) -> list[str]:
        """Why not every device of ``euis`` has ``alerts_per_device`` alerts, each offered."""
        gaps = []
        missing = alerts_per_device * len(euis) - len(self.of_devices(euis))
        if missing > 0:
            gaps.append(f"{missing} alerts not opened yet")
        gaps += [f"alert {a.id} ({a.state}) never offered" for a in self.unoffered(euis)]
        return gaps

    def waiting_new(self) -> list[str]:
        """Alerts still ``new``: no offer pending, not escalated to the console either."""
        return [f"alert {a.id} is new" for a in self.alerts.values() if a.state == AlertState.NEW]

    def pending(self) -> list[OfferRow]:
        return [
            offer
            for offers in self.offers.values()
            for offer in offers
            if offer.state == OfferState.PENDING
        ]

    def overlapping(self) -> list[tuple[OfferRow, OfferRow]]:
        """Pairs of offers of one alert that were pending at the same time (DESIGN §6.2)."""
        pairs = []
        for offers in self.offers.values():
            for earlier, later in itertools.pairwise(offers):
                if earlier.decided_at is None or earlier.decided_at > later.offered_at:
                    pairs.append((earlier, later))
        return pairs

    def takeover_gaps(self, stranded: Sequence[OfferRow]) -> list[str]:
        """Of ``stranded`` offers (pending when a process died), those not yet expired past
        their deadline and followed by another offer of their alert."""
        gaps = []
        for old in stranded:
            offers = self.offers[old.alert_id]
            current = next(offer for offer in offers if offer.id == old.id)
            if current.state != OfferState.EXPIRED or current.decided_at is None:
                gaps.append(f"offer {old.id} of alert {old.alert_id} is {current.state}")
            elif current.decided_at < old.deadline_at:
                gaps.append(f"offer {old.id} expired before its deadline: {current}")
            elif not any(offer.offered_at >= old.deadline_at for offer in offers):
                gaps.append(f"alert {old.alert_id} not offered again after offer {old.id}")
        return gaps


class DispatchLedger:
    """Reads ``DispatchSnapshot``s through an engine of its own (``close()`` it)."""

    def __init__(self, database_url: str) -> None:
        self._engine: AsyncEngine = create_engine(database_url)

    async def snapshot(self) -> DispatchSnapshot:
        async with create_session_factory(self._engine)() as session:
            alert_rows = await session.execute(
                select(Alert.id, Device.eui, Alert.category, Alert.state).join(
                    Device, Device.id == Alert.device_id
                )
            )
            alerts = {row[0]: AlertRow(*row) for row in alert_rows}
            offer_rows = await session.execute(
                select(
                    Offer.id,
                    Offer.alert_id,
                    Offer.state,
                    Offer.offered_at,
                    Offer.deadline_at,
                    Offer.decided_at,
                ).order_by(Offer.alert_id, Offer.offered_at, Offer.id)
            )
            offers: dict[int, list[OfferRow]] = defaultdict(list)
            for row in offer_rows:
                offers[row[1]].append(OfferRow(*row))
        return DispatchSnapshot(alerts, dict(offers))

    async def open_transactions(self) -> set[tuple[int, datetime]]:
        """Backends of this database inside a transaction but not running a statement: a
        client that stopped between two statements (or is between them right now)."""
        async with self._engine.connect() as connection:
            rows = await connection.execute(
                text(
                    "SELECT pid, xact_start FROM pg_stat_activity "
                    "WHERE datname = current_database() AND state LIKE 'idle in transaction%'"
                )
            )
            return {(pid, started) for pid, started in rows}

    async def close(self) -> None:
        await self._engine.dispose()

"""The fault suite's tools: the server process, pressing devices, a readiness probe, the checks.

- ``AlertnetProcess``: ``alertnet serve`` (or a wrapper module) as a real subprocess that a
  test can pause (SIGSTOP), resume, signal and stop.
- ``Fleet``: devices that press over MQTT as firmware does, each logged in as itself, each
  press retransmitted (same counter, retransmission flag) until its signed "received" ack
  comes back; connections come back by themselves after a broker restart.
- ``ReadinessProbe`` (``tests.faults.probe``, re-exported): ``/readyz`` all through a scenario.
- ``assert_exactly_once``: every press is one event, every (device, category) one alert whose
  press count is the number of presses, and nothing else.
"""

from __future__ import annotations

import asyncio
import os
import random
import secrets
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import aiomqtt
import httpx
from sqlalchemy import func, select

from alertnet.alerts.intake import POLICE_CATEGORY
from alertnet.db import create_engine, create_session_factory, unit_of_work
from alertnet.models import Alert, Device, Event
from alertnet.protocol import (
    FLAG_RETRANSMISSION,
    AckState,
    DecodeError,
    EventCode,
    Reason,
    Uplink,
    decode_downlink,
    down_topic,
    up_topic,
)
from tests.faults.probe import RECOVERY_BOUND_S, ReadinessProbe, now
from tests.support.factories import create_device
from tests.support.mosquitto import MosquittoServer, free_port
from tests.support.polling import eventually

PROJECT_ROOT: Final = Path(__file__).resolve().parents[2]

START_BOUND_S: Final = 40.0
_STOP_BOUND_S: Final = 15.0


# --- the server -------------------------------------------------------------------------


class AlertnetProcess:
    """``python -m <module> serve --port N`` with the given database and broker."""

    def __init__(
        self,
        database_url: str,
        mqtt_url: str,
        log_path: Path,
        *,
        module: str = "alertnet",
        env: dict[str, str] | None = None,
        serve_args: Sequence[str] = (),
    ) -> None:
        self.port = free_port()
        self.serve_args = tuple(serve_args)  # after ``serve --port N``, e.g. ``--role ingest``
        self.log_path = log_path
        self.module = module
        self.metrics_token = secrets.token_hex(16)
        self.env = {
            **os.environ,
            "PYTHONPATH": str(PROJECT_ROOT),
            "ALERTNET_DATABASE_URL": database_url,
            "ALERTNET_MQTT_URL": mqtt_url,
            "ALERTNET_LOG_LEVEL": "WARNING",
            "ALERTNET_METRICS_TOKEN": self.metrics_token,
            **(env or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None, "the server was not started"
        return self.process.pid

    def log(self, tail: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-tail:]
        except FileNotFoundError:
            return ""

    async def start(self) -> None:
        """Start the process and return once ``/readyz`` answers 200."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    self.module,
                    "serve",
                    "--port",
                    str(self.port),
                    *self.serve_args,
                ],
                cwd=PROJECT_ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its own process group: a Ctrl-C aimed at pytest does not reach it first.
                start_new_session=True,
            )
        process = self.process
        async with httpx.AsyncClient(base_url=self.base_url, timeout=2.0) as client:

            async def ready() -> bool:
                assert process.poll() is None, f"alertnet exited:\n{self.log()}"
                try:
                    return (await client.get("/readyz")).status_code == 200
                except httpx.HTTPError:
                    return False

            await eventually(
                ready,
                awaiting="alertnet to answer /readyz with 200",
                timeout_s=START_BOUND_S,
                interval_s=0.1,
                details=self.log,
            )

    def send(self, signum: signal.Signals) -> None:
        os.kill(self.pid, signum)

    def pause(self) -> None:
        self.send(signal.SIGSTOP)

    def resume(self) -> None:
        self.send(signal.SIGCONT)

    def stop(self) -> None:
        """SIGTERM (after SIGCONT, should it be paused); SIGKILL if it does not end."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGCONT)
        self.process.terminate()
        try:
            self.process.wait(_STOP_BOUND_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    async def metrics(self) -> str:
        async with httpx.AsyncClient(base_url=self.base_url, timeout=5.0) as client:
            response = await client.get(
                "/metrics", headers={"authorization": f"Bearer {self.metrics_token}"}
            )
        assert response.status_code == 200, response.text
        return response.text


def metric_total(text: str, name: str, label_value: str) -> float:
    """The sum of the samples of ``name`` (Prometheus text) with a label equal to ``label_value``.

    Which label names the task is the supervisor's choice; its value is the task's name.
    """
    total = 0.0
    for line in text.splitlines():
        series, _, value = line.rpartition(" ")
        metric, _, label_text = series.partition("{")
        if metric == name and f'="{label_value}"' in label_text:
            total += float(value)
    return total


# --- the devices ------------------------------------------------------------------------


@dataclass(slots=True)
class Press:
    """One press of one device, from the first transmission to its ack."""

    eui: str
    counter: int
    event: EventCode
    pressed_at: float
    transmissions: int = 0
    acked_at: float | None = None


@dataclass(slots=True)
class _Device:
    eui: str
    key: bytes
    client: aiomqtt.Client | None = None
    waiting: dict[int, asyncio.Future[None]] = field(default_factory=dict)


class Fleet:
    """Devices pressing over MQTT until told to stop; see the module docstring.

    Every third press is an intrusion, the others are panics, so each device holds two open
    alerts that its later presses merge into. A device waits ``retry_first_s`` for its ack,
    then doubles the wait up to ``retry_max_s`` (the firmware goes on to 8 and 15 s; the
    cap keeps the suite short). ``pause_s`` is the pause between one acked press and the next.
    """

    def __init__(
        self,
        broker: MosquittoServer,
        devices: dict[str, bytes],
        *,
        pause_s: float = 0.15,
        retry_first_s: float = 1.0,
        retry_max_s: float = 4.0,
        reconnect_s: float = 0.25,
    ) -> None:
        self.broker = broker
        self.devices = {eui: _Device(eui, key) for eui, key in devices.items()}
        self.pause_s = pause_s
        self.retry_first_s = retry_first_s
        self.retry_max_s = retry_max_s
        self.reconnect_s = reconnect_s
        self.presses: list[Press] = []
        self.bad_acks = 0
        self.reconnects = 0
        self._stop = asyncio.Event()
        self._rng = random.Random(12)

    # -- what happened ------------------------------------------------------------------

    @property
    def acked(self) -> list[Press]:
        return [press for press in self.presses if press.acked_at is not None]

    @property
    def retransmissions(self) -> int:
        return sum(max(0, press.transmissions - 1) for press in self.presses)

    def pressed_after(self, moment: float) -> int:
        """Acked presses that were pressed after ``moment`` (new presses, not retries)."""
        return sum(1 for press in self.acked if press.pressed_at >= moment)

    def caught(self, start: float, end: float) -> list[Press]:
        """Presses the fault caught: pressed before ``end`` and not acked before ``start``."""
        return [
            press
            for press in self.presses
            if press.pressed_at < end and (press.acked_at is None or press.acked_at >= start)
        ]

    # -- running --------------------------------------------------------------------------

    def stop_pressing(self) -> None:
        """No new presses; ``run`` returns once every press so far is acked."""
        self._stop.set()

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tasks:
            links = [tasks.create_task(self._stay_connected(d)) for d in self.devices.values()]
            pressing = [tasks.create_task(self._press(d)) for d in self.devices.values()]
            await asyncio.gather(*pressing)
            for link in links:
                link.cancel()

    async def _stay_connected(self, device: _Device) -> None:
        while True:
            try:
                client = self.broker.device_client(device.eui, device.key, keepalive=10)
                async with client:
                    await client.subscribe(down_topic(device.eui), qos=1)
                    device.client = client
                    async for message in client.messages:
                        self._downlink(device, message.payload)
            except aiomqtt.MqttError:
                pass
            finally:
                device.client = None
            self.reconnects += 1
            await asyncio.sleep(self.reconnect_s)

    def _downlink(self, device: _Device, payload: object) -> None:
        try:
            if not isinstance(payload, bytes):
                raise DecodeError(Reason.BAD_LENGTH, "a downlink must be bytes")
            ack = decode_downlink(payload)
        except DecodeError:
            self.bad_acks += 1
            return
        if ack.eui != device.eui or not ack.verify(device.key):
            self.bad_acks += 1
            return
        waiter = device.waiting.get(ack.counter)
        if ack.state >= AckState.RECEIVED and waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _press(self, device: _Device) -> None:
        counter = 0
        while not self._stop.is_set():
            counter += 1
            event = EventCode.INTRUSION if counter % 3 == 0 else EventCode.PANIC
            press = Press(device.eui, counter, event, now())
            self.presses.append(press)
            await self._deliver(device, press)
            await asyncio.sleep(self.pause_s * self._rng.uniform(0.5, 1.5))

    async def _deliver(self, device: _Device, press: Press) -> None:
        acked = device.waiting[press.counter] = asyncio.get_running_loop().create_future()
        wait_s = self.retry_first_s
        while True:
            client = device.client
            if client is not None:
                flags = FLAG_RETRANSMISSION if press.transmissions else 0
                age_s = min(0xFFFF, int(now() - press.pressed_at))
                frame = Uplink.build(
                    device.key, device.eui, press.counter, press.event, flags=flags, age_s=age_s
                )
                try:
                    await client.publish(
                        up_topic(device.eui), frame.to_bytes(), qos=1, timeout=wait_s
                    )
                    press.transmissions += 1
                except aiomqtt.MqttError:
                    pass  # the broker is away: wait, then transmit again
            try:
                await asyncio.wait_for(asyncio.shield(acked), wait_s)
                break
            except TimeoutError:
                wait_s = min(wait_s * 2, self.retry_max_s)
        press.acked_at = now()
        del device.waiting[press.counter]


# --- one scenario -----------------------------------------------------------------------


@dataclass
class Run:
    """A server under a pressing fleet, watched by the readiness probe."""

    server: AlertnetProcess
    fleet: Fleet
    probe: ReadinessProbe
    fleet_task: asyncio.Task[None]
    #: When the last press was acked and pressing stopped (set as the block ends).
    drained_at: float = 0.0

    async def reaches(
        self, condition: Callable[[], bool], what: str, bound_s: float = RECOVERY_BOUND_S
    ) -> None:
        """Wait until ``condition()`` holds; fail after ``bound_s`` naming ``what``, or at once
        when the fleet stops pressing before it was told to."""

        def holds() -> bool:
            if condition():
                return True
            if self.fleet_task.done():
                self.fleet_task.result()  # the fleet's own failure, if it failed
                raise AssertionError("the fleet stopped pressing before it was told to")
            return False

        await eventually(holds, awaiting=what, timeout_s=bound_s, details=self._progress)

    def _progress(self) -> str:
        fleet = self.fleet
        return (
            f"{len(fleet.acked)}/{len(fleet.presses)} presses acked, {fleet.reconnects} device "
            f"reconnects; alertnet log:\n{self.server.log()}"
        )

    async def presses_after(self, moment: float, count: int, what: str) -> None:
        """Wait until ``count`` presses pressed after ``moment`` are acked."""
        await self.reaches(lambda: self.fleet.pressed_after(moment) >= count, what)


@asynccontextmanager
async def pressing(
    server: AlertnetProcess,
    broker: MosquittoServer,
    devices: dict[str, bytes],
    *,
    warm_up_presses: int,
    probe_interval_s: float = 0.05,
) -> AsyncIterator[Run]:
    """Start ``server``, the probe and the fleet; yield once ``warm_up_presses`` are acked.

    When the block ends, pressing stops and every press must be acked (within the recovery
    bound); then the server is stopped.
    """
    await server.start()
    probe = ReadinessProbe(server.base_url, interval_s=probe_interval_s)
    fleet = Fleet(broker, devices)
    probe_task = asyncio.create_task(probe.run(), name="readiness-probe")
    fleet_task = asyncio.create_task(fleet.run(), name="fleet")
    run = Run(server, fleet, probe, fleet_task)
    try:
        await run.reaches(lambda: len(fleet.acked) >= warm_up_presses, "warm-up presses acked")
        yield run
        fleet.stop_pressing()
        try:
            await asyncio.wait_for(asyncio.shield(fleet_task), RECOVERY_BOUND_S)
        except TimeoutError:
            unacked = [(p.eui, p.counter) for p in fleet.presses if p.acked_at is None]
            raise AssertionError(
                f"{len(unacked)} presses still unacked {RECOVERY_BOUND_S} s after pressing "
                f"stopped: {unacked[:10]}; alertnet log:\n{server.log()}"
            ) from None
        run.drained_at = now()
        assert fleet.bad_acks == 0, f"{fleet.bad_acks} acks were malformed or badly signed"
    finally:
        for task in (fleet_task, probe_task):
            task.cancel()
        await asyncio.gather(fleet_task, probe_task, return_exceptions=True)
        await asyncio.to_thread(server.stop)


# --- setting up and checking -------------------------------------------------------------


async def register_devices(database_url: str, count: int) -> dict[str, bytes]:
    """``count`` devices in the registry; EUI → key."""
    engine = create_engine(database_url)
    try:
        async with unit_of_work(create_session_factory(engine)) as session:
            devices = [await create_device(session) for _ in range(count)]
        return {device.eui: device.key for device in devices}
    finally:
        await engine.dispose()


@dataclass(frozen=True, slots=True)
class Stored:
    """What the database holds after a scenario."""

    events: int
    alerts: int


async def assert_exactly_once(database_url: str, presses: Sequence[Press]) -> Stored:
    """Every press acked, stored as exactly one event, and counted once in its alert."""
    unacked = [(p.eui, p.counter) for p in presses if p.acked_at is None]
    assert not unacked, f"{len(unacked)} presses never acked: {unacked[:10]}"
    expected_events = sorted((press.eui, press.counter) for press in presses)
    expected_presses = Counter((press.eui, POLICE_CATEGORY[press.event].value) for press in presses)
    engine = create_engine(database_url)
    try:
        async with create_session_factory(engine)() as session:
            stored = sorted(
                (eui, counter)
                for eui, counter in await session.execute(
                    select(Device.eui, Event.counter).join(Device, Device.id == Event.device_id)
                )
            )
            alerts = (
                await session.execute(
                    select(Device.eui, Alert.category, func.count(), func.sum(Alert.press_count))
                    .join(Device, Device.id == Alert.device_id)
                    .group_by(Device.eui, Alert.category)
                )
            ).all()
    finally:
        await engine.dispose()
    duplicated = [key for key, n in Counter(stored).items() if n > 1]
    assert not duplicated, f"{len(duplicated)} presses stored twice: {duplicated[:10]}"
    lost = sorted(set(expected_events) - set(stored))
    assert not lost, f"{len(lost)} acked presses are not stored: {lost[:10]}"
    assert stored == expected_events, "events that no device pressed were stored"
    alerts_per_pair = {(eui, category): n for eui, category, n, _ in alerts}
    assert set(alerts_per_pair.values()) == {1}, f"more than one alert: {alerts_per_pair}"
    counted = {(eui, category): int(total) for eui, category, _, total in alerts}
    assert counted == dict(expected_presses), "alert press counts differ from the presses"
    return Stored(events=len(stored), alerts=len(alerts))


def report(
    run: Run,
    stored: Stored,
    scenario: str,
    *,
    fault_at: float,
    back_at: float,
    ready_at: float,
) -> str:
    """The one line a scenario prints: the fault, the recovery times, the counts.

    ``fault_at``: when the part went away; ``back_at``: when it was back (for a crash, the
    moment of the crash); ``ready_at``: the first ``/readyz`` 200 after ``back_at``;
    ``stored``: what ``assert_exactly_once`` found.
    """
    fleet = run.fleet
    pending = fleet.caught(fault_at, back_at)
    first_ack_s = min(p.acked_at for p in fleet.acked if p.acked_at and p.acked_at >= back_at)
    all_acked_at = max((p.acked_at or back_at) for p in pending) if pending else back_at
    slowest_s = max(p.acked_at - p.pressed_at for p in fleet.acked if p.acked_at is not None)
    outage = f"out {back_at - fault_at:.2f} s" if back_at > fault_at else "crashed"
    return (
        f"FAULT {scenario}: {outage} with {len(pending)} presses pending; after it "
        f"/readyz 200 in {ready_at - back_at:.2f} s, first ack in {first_ack_s - back_at:.2f} s, "
        f"all pending acked in {all_acked_at - back_at:.2f} s; "
        f"{len(fleet.presses)} presses from {len(fleet.devices)} devices "
        f"({fleet.retransmissions} retransmissions, slowest ack {slowest_s:.2f} s) → "
        f"{stored.events} events, {stored.alerts} alerts: 0 lost, 0 duplicated"
    )

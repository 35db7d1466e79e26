"""Running a scenario against a live alertnet: the fleet, its links, the load, the verdict.

``run_scenario(config)`` builds the fleet and its transports, opens the simulated gateways,
logs the tablets and the watcher in, then drives the load the scenario describes:

- ``steady``: supervision heartbeats at ``rate`` per second plus presses spread over the run
  (some drills, some tamper);
- ``surge``: hundreds of presses from one neighbourhood within seconds, some pressed twice;
- ``storm``: a power cut, ``mains_lost`` from every mains-powered alarm within the window;
- ``flood``: every device on LoRa and every packet heard by five gateways;
- ``chaos``: steady, with the broker restarted mid-run (a ``BrokerControl`` hook) and
  devices rebooting.

Then it waits (``drain_s``) for every press to be acknowledged and for alertnet's
``/metrics`` to show every uplink committed, and returns a ``RunReport``. ``rate=None``
sends ``uplinks`` heartbeats as fast as the transport takes them (the throughput probe).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import math
import random
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

import httpx

from alertnet.protocol import EventCode
from firmware_sim.chirpstack import ChirpStackLink
from firmware_sim.device import SimDevice
from firmware_sim.fleet import (
    DeviceSpec,
    TransportKind,
    distance_m,
    make_fleet,
)
from firmware_sim.radio import RadioModel
from firmware_sim.report import ServerCounter, build_report
from firmware_sim.scenario import BrokerControl, RunConfig, RunReport
from firmware_sim.state import CounterStore, DeviceCounter
from firmware_sim.stats import Recorder
from firmware_sim.tablet import AlertWatcher, Tablet
from firmware_sim.transports import HttpLink, LoraLink, MqttLink, gateway_sites

__all__ = ["run_scenario"]

log = logging.getLogger(__name__)


class Load:
    """Heartbeat scheduler and worker pool shared by every scenario."""

    def __init__(self, devices: Sequence[SimDevice], config: RunConfig) -> None:
        self.devices = devices
        self.config = config
        # Bounded: when the links cannot keep up, the scheduler waits (the offered rate drops
        # and shows it) instead of queueing without limit.
        self.queue: asyncio.Queue[SimDevice] = asyncio.Queue(maxsize=2 * config.concurrency)
        self.started_at = 0.0
        self.stopped_at = 0.0
        self.scheduled = 0

    async def worker(self) -> None:
        while True:
            device = await self.queue.get()
            try:
                await device.heartbeat()
            finally:
                self.queue.task_done()

    async def paced(self, rate: float, duration_s: float) -> None:
        """Each device beats every ``len(devices) / rate`` seconds (±10 %), phases spread."""
        loop = asyncio.get_running_loop()
        interval_s = len(self.devices) / rate
        start = loop.time()
        rng = random.Random(self.config.seed * 7919)
        heap = [(start + rng.uniform(0, interval_s), index) for index in range(len(self.devices))]
        heapq.heapify(heap)
        end = start + duration_s
        self.started_at = time.monotonic()
        while heap and heap[0][0] < end:
            now = loop.time()
            while heap and heap[0][0] <= now:
                due, index = heapq.heappop(heap)
                device = self.devices[index]
                await self.queue.put(device)
                self.scheduled += 1
                heapq.heappush(heap, (due + device.heartbeat_interval_s(interval_s), index))
            await asyncio.sleep(max(0.0, min(heap[0][0] - loop.time(), 0.01)) if heap else 0)
        await asyncio.sleep(max(0.0, end - loop.time()))
        await self.queue.join()
        self.stopped_at = time.monotonic()

    async def flat_out(self, count: int, presses: int, press: Callable[[], None]) -> None:
        """``count`` heartbeats round-robin over the fleet, as fast as the workers send, with
        ``presses`` calls of ``press`` spread evenly among them."""
        self.started_at = time.monotonic()
        press_every = count / presses if presses else math.inf
        next_press = press_every / 2
        for sent, device in enumerate(itertools.islice(itertools.cycle(self.devices), count)):
            await self.queue.put(device)
            self.scheduled += 1
            while sent >= next_press:
                press()
                next_press += press_every
        await self.queue.join()
        self.stopped_at = time.monotonic()


class Run:
    def __init__(self, config: RunConfig) -> None:
        self.config = config
        self.recorder = Recorder()
        self.rng = random.Random(f"{config.seed}/{config.run_id}")
        self.plan = config.fleet_plan()
        self.fleet = make_fleet(self.plan)
        self.store = CounterStore(config.state_path)
        self.by_eui: dict[str, SimDevice] = {}
        self.devices: list[SimDevice] = []
        kinds = {spec.transport for spec in self.fleet}
        self.mqtt = (
            MqttLink(
                config.mqtt_url,
                self.by_eui,
                self.recorder,
                connections=config.connections,
                client_prefix=f"firmware-sim-{config.seed}",
            )
            if kinds & {TransportKind.MQTT, TransportKind.MQTT_JSON}
            else None
        )
        self.http = HttpLink(config.base_url) if TransportKind.HTTP in kinds else None
        radio = RadioModel.perfect() if config.scenario == "flood" else config.radio
        gateways = max(config.gateways, 5) if config.scenario == "flood" else config.gateways
        self.lora = (
            LoraLink(
                config.pty_dir,
                gateway_sites(self.plan.centre, config.radius_m, gateways),
                radio,
                self.by_eui,
                self.recorder,
                rng=random.Random(config.seed * 31),
            )
            if TransportKind.LORA in kinds
            else None
        )
        self.chirpstack = (
            ChirpStackLink(
                config.chirpstack_url or config.mqtt_url,
                self.by_eui,
                self.recorder,
                sites=gateway_sites(self.plan.centre, config.radius_m, config.gateways),
                radio=config.radio,
                rng=random.Random(config.seed * 37),
                client_id=f"firmware-sim-{config.seed}-chirpstack",
            )
            if TransportKind.CHIRPSTACK in kinds
            else None
        )
        # Crews log in a few at a time, as a shift trickles in (password hashing is costly).
        login_gate = asyncio.Semaphore(4)
        self.tablets = [
            Tablet(
                spec,
                config.base_url,
                self.recorder,
                centre=self.plan.centre,
                radius_m=config.radius_m,
                rng=random.Random(f"{config.seed}/{spec.callsign}"),
                behaviour=config.tablet_behaviour,
                login_gate=login_gate,
            )
            for spec in config.tablets
        ]
        self.watcher = (
            AlertWatcher(
                config.base_url,
                config.watcher[0],
                config.watcher[1],
                self.recorder,
                login_gate=login_gate,
            )
            if config.watcher
            else None
        )
        self.broker: BrokerControl | None = None
        self.press_tasks: set[asyncio.Task[bool]] = set()

    def _link(self, spec: DeviceSpec) -> MqttLink | HttpLink | LoraLink | ChirpStackLink:
        link: MqttLink | HttpLink | LoraLink | ChirpStackLink | None
        if spec.transport is TransportKind.LORA:
            link = self.lora
        elif spec.transport is TransportKind.CHIRPSTACK:
            link = self.chirpstack
        elif spec.transport is TransportKind.HTTP:
            link = self.http
        else:
            link = self.mqtt
        assert link is not None
        return link

    def build_devices(self) -> None:
        for spec in self.fleet:
            device = SimDevice(
                spec,
                DeviceCounter(self.store, spec.eui),
                self._link(spec),
                self.recorder,
                rng=random.Random(f"{self.config.seed}/{spec.eui}"),
                retry=self.config.retry,
                battery_pct=self.rng.uniform(25, 100),
                drain_per_tx_pct=0.01,
            )
            self.by_eui[spec.eui] = device
            self.devices.append(device)

    # -- presses ------------------------------------------------------------------------

    def _spawn(self, work: Coroutine[Any, Any, bool]) -> None:
        """Run one event's delivery (until acked, or cancelled when the run ends)."""
        task = asyncio.create_task(work)
        self.press_tasks.add(task)
        task.add_done_callback(self.press_tasks.discard)

    def press(self, device: SimDevice, event: EventCode, *, drill: bool | None = None) -> None:
        self._spawn(device.press(event, drill=drill))

    def random_press(self) -> None:
        """One press from a random device, now."""
        device = self.rng.choice(self.devices)
        event, drill = self._press_event(device)
        self.press(device, event, drill=drill)

    def _press_event(self, device: SimDevice) -> tuple[EventCode, bool]:
        if self.rng.random() < self.config.tamper_share:
            return EventCode.TAMPER, False
        return _alarm_event(device), self.rng.random() < self.config.drill_share

    async def random_presses(self, count: int, duration_s: float) -> None:
        """``count`` presses from distinct devices at random moments of ``duration_s``."""
        chosen = self.rng.sample(self.devices, min(count, len(self.devices)))
        moments = sorted(self.rng.uniform(0, duration_s) for _ in chosen)
        start = asyncio.get_running_loop().time()
        for moment, device in zip(moments, chosen, strict=True):
            await _sleep_until(start + moment)
            event, drill = self._press_event(device)
            self.press(device, event, drill=drill)

    async def surge(self) -> None:
        """Presses from the neighbourhood of one random device, within the surge window."""
        config = self.config
        centre = self.rng.choice(self.devices).spec.location
        near = [
            d for d in self.devices if distance_m(d.spec.location, centre) <= config.surge_radius_m
        ]
        chosen = self.rng.sample(near, min(config.presses, len(near)))
        self.recorder.notes.append(
            f"surge: {len(chosen)} devices within {config.surge_radius_m:.0f} m "
            f"of {centre.lat:.5f},{centre.lon:.5f}"
        )
        plan: list[tuple[float, SimDevice]] = []
        for device in chosen:
            plan.append((self.rng.uniform(0, config.surge_window_s), device))
            if self.rng.random() < config.repeat_share:  # pressed again: merged, not a new alert
                for _ in range(self.rng.randint(1, 2)):
                    plan.append((self.rng.uniform(0, config.surge_window_s), device))
        plan.sort(key=lambda item: item[0])
        start = asyncio.get_running_loop().time()
        for moment, device in plan:
            await _sleep_until(start + moment)
            event = (
                EventCode.INTRUSION if device.spec.kind == "intrusion_alarm" else EventCode.PANIC
            )
            self.press(device, event, drill=False)

    async def storm(self) -> None:
        """Every mains-powered alarm loses mains at a random moment of the storm window."""
        alarms = [d for d in self.devices if d.spec.mains_powered]
        moments = sorted(
            (self.rng.uniform(0, self.config.storm_window_s), index) for index in range(len(alarms))
        )
        self.recorder.notes.append(
            f"storm: {len(alarms)} alarms lose mains within {self.config.storm_window_s:.0f} s"
        )
        start = asyncio.get_running_loop().time()
        for moment, index in moments:
            await _sleep_until(start + moment)
            self._spawn(_lose_mains(alarms[index]))

    async def chaos(self, duration_s: float) -> None:
        """Restart the broker halfway; reboot some devices along the way."""
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._restart_broker(duration_s / 2))
            tasks.create_task(self._reboots(duration_s))

    async def _restart_broker(self, after_s: float) -> None:
        if self.broker is None:
            self.recorder.notes.append("chaos: no broker control given, broker not restarted")
            return
        await asyncio.sleep(after_s)
        began = time.monotonic()
        await self.broker.restart()
        self.recorder.notes.append(
            f"chaos: broker restarted at {after_s:.1f} s (took {time.monotonic() - began:.1f} s)"
        )

    async def _reboots(self, duration_s: float) -> None:
        count = int(len(self.devices) * self.config.reboot_share)
        rebooting = self.rng.sample(self.devices, count)
        moments = sorted(self.rng.uniform(0, duration_s) for _ in rebooting)
        start = asyncio.get_running_loop().time()
        for moment, device in zip(moments, rebooting, strict=True):
            await _sleep_until(start + moment)
            device.reboot()

    async def low_battery_checks(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            for device in self.devices:
                if not device.mains_on and device.battery_pct < 20:
                    record = await device.battery_check()
                    if record is not None:
                        self._spawn(device.deliver(record))


async def _lose_mains(device: SimDevice) -> bool:
    return await device.deliver(await device.mains_lost())


async def _sleep_until(moment: float) -> None:
    await asyncio.sleep(max(0.0, moment - asyncio.get_running_loop().time()))


def _alarm_event(device: SimDevice) -> EventCode:
    return EventCode.INTRUSION if device.spec.kind == "intrusion_alarm" else EventCode.PANIC


def _progress_line(run: Run, elapsed_s: float, phase: str, server: float | None) -> str:
    recorder = run.recorder
    sent = sum(recorder.sent.values())
    rate = sent / elapsed_s if elapsed_s > 0 else 0.0
    server_text = "" if server is None else f" | alertnet {server:,.0f}"
    return (
        f"[{run.config.scenario} {phase} {elapsed_s:5.1f}s] sent {sent:,} ({rate:,.0f}/s)"
        f"{server_text} | presses {len(recorder.presses)} pending {recorder.pending}"
        f" | offers {recorder.offers.get('received', 0)}"
    )


async def run_scenario(config: RunConfig, broker: BrokerControl | None = None) -> RunReport:
    """Run ``config.scenario`` against the alertnet at ``config.base_url``; see the module."""
    if config.scenario == "chaos" and broker is None:
        raise ValueError("chaos needs a broker control (--broker-restart-command)")
    run = Run(config)
    run.broker = broker
    await run.store.load()
    run.build_devices()
    async with httpx.AsyncClient(base_url=config.base_url, timeout=5.0) as http:
        server = ServerCounter(http)
        async with asyncio.TaskGroup() as background:
            # Everything here runs until cancelled below; a crash of one ends the run.
            tasks = [background.create_task(run.store.run())]
            for link in (run.mqtt, run.http, run.lora, run.chirpstack):
                if link is not None:
                    if isinstance(link, LoraLink):
                        link.open()
                    tasks.append(background.create_task(link.run()))
            try:
                report = await _drive(run, server, background, tasks)
            finally:
                for task in tasks:
                    task.cancel()
    return report


async def _drive(
    run: Run,
    server: ServerCounter,
    background: asyncio.TaskGroup,
    tasks: list[asyncio.Task[None]],
) -> RunReport:
    config = run.config
    load = Load(run.devices, config)
    out = sys.stderr
    await _wait_ready(run, config)
    followers = [
        background.create_task(_guarded(run, tablet.spec.callsign, tablet.run()))
        for tablet in run.tablets
    ]
    if run.watcher is not None:
        followers.append(background.create_task(_guarded(run, "watcher", run.watcher.run())))
    tasks += followers
    await _wait_streams(run, config, followers)
    tasks += [background.create_task(load.worker()) for _ in range(config.concurrency)]
    tasks.append(background.create_task(run.low_battery_checks()))
    baseline = await server.read()
    tasks.append(background.create_task(server.run()))
    loop = asyncio.get_running_loop()
    began = loop.time()
    phase = ["load"]

    async def show() -> None:
        while True:
            await asyncio.sleep(1.0)
            latest = server.samples[-1][1] - (baseline or 0) if server.samples else None
            line = _progress_line(run, loop.time() - began, phase[0], latest)
            out.write(("\r" + line) if out.isatty() else line + "\n")
            out.flush()

    if config.progress:
        tasks.append(background.create_task(show()))
    async with asyncio.TaskGroup() as scenario:
        presses_by_scenario = config.scenario in ("steady", "flood", "chaos")
        if config.rate is None:
            presses = config.presses if presses_by_scenario else 0
            scenario.create_task(load.flat_out(config.uplinks, presses, run.random_press))
        else:
            scenario.create_task(load.paced(config.rate, config.duration_s))
            if presses_by_scenario:
                scenario.create_task(run.random_presses(config.presses, config.duration_s))
        if config.scenario == "surge":
            scenario.create_task(run.surge())
        elif config.scenario == "storm":
            scenario.create_task(run.storm())
        if config.scenario == "chaos":
            scenario.create_task(run.chaos(config.duration_s))
    load_end = time.monotonic()
    load_s = max(1e-9, (load.stopped_at or load_end) - load.started_at)
    at_load_end = await server.read()
    phase[0] = "drain"
    expected = _expected_server_uplinks(run)
    caught_up_at, caught_up_total = await _drain(run, server, baseline, expected, config.drain_s)
    if config.progress and out.isatty():
        out.write("\n")
    for press in list(run.press_tasks):
        press.cancel()
    await asyncio.gather(*run.press_tasks, return_exceptions=True)
    return build_report(
        run,
        load,
        load_s,
        server,
        baseline,
        at_load_end,
        expected,
        (caught_up_at, caught_up_total),
        load_end,
    )


async def _wait_ready(run: Run, config: RunConfig) -> None:
    deadline = time.monotonic() + config.wait_ready_s
    if run.mqtt is not None:
        await run.mqtt.wait_connected(config.wait_ready_s)
    if run.chirpstack is not None:
        await run.chirpstack.wait_connected(config.wait_ready_s)
    if run.lora is not None:
        while not all(module.host_listening() for module in run.lora.modules):
            if time.monotonic() > deadline:
                raise TimeoutError(
                    "alertnet did not open the simulated gateways; start it with "
                    f"ALERTNET_SERIAL={run.lora.serial_setting}"
                )
            await asyncio.sleep(0.1)


async def _guarded(run: Run, name: str, work: Awaitable[None]) -> None:
    """Run a tablet or the watcher; a failure becomes a note, not the end of the run."""
    try:
        await work
    except Exception as exc:
        run.recorder.notes.append(f"{name} stopped: {type(exc).__name__}: {exc}")
        log.warning("%s stopped: %s: %s", name, type(exc).__name__, exc)


async def _wait_streams(
    run: Run, config: RunConfig, followers: Sequence[asyncio.Task[None]]
) -> None:
    """Wait until each tablet and the watcher follows its stream (or has given up)."""
    waiting = [tablet.ready for tablet in run.tablets]
    if run.watcher is not None:
        waiting.append(run.watcher.ready)
    deadline = time.monotonic() + config.wait_ready_s
    while not all(
        ready.is_set() or task.done() for ready, task in zip(waiting, followers, strict=True)
    ):
        if time.monotonic() > deadline:
            run.recorder.notes.append("some tablets did not reach their stream in time")
            return
        await asyncio.sleep(0.05)


def _expected_server_uplinks(run: Run) -> int:
    """Uplinks alertnet should count: every frame sent over MQTT or HTTP, and every copy a
    LoRa gateway heard (one transmission heard by three gateways is three uplinks; through
    ChirpStack, one event with three rxInfo entries)."""
    total = sum(run.recorder.sent.values())
    if run.chirpstack is not None:
        total += run.chirpstack.heard - run.chirpstack.transmissions
    if run.lora is None:
        return total
    heard = sum(module.heard for module in run.lora.modules)
    return total - run.lora.transmissions + heard


async def _drain(
    run: Run,
    server: ServerCounter,
    baseline: float | None,
    expected: int,
    drain_s: float,
) -> tuple[float | None, float | None]:
    """Wait until every press is acked, alertnet committed every uplink and the crews closed
    the alerts they accepted (or time is up).

    Returns when alertnet had committed all expected uplinks, and its count then."""
    deadline = time.monotonic() + drain_s
    caught_up: tuple[float | None, float | None] = (None, None)
    while time.monotonic() < deadline:
        total = await server.read()
        if caught_up[0] is None and total is not None and baseline is not None:
            if total - baseline >= expected:
                caught_up = (time.monotonic(), total - baseline)
        crews_busy = any(tablet.busy for tablet in run.tablets)
        if run.recorder.pending == 0 and (caught_up[0] is not None or total is None):
            if not crews_busy:  # accepted alerts closed: the posts are free for the next run
                break
        await asyncio.sleep(0.05)
    return caught_up

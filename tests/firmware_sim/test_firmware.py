"""The simulator's parts on their own: flash counters, firmware retries, radio, fleet, modules.

No alertnet here: a link double records what a device transmits and answers as a test
decides, and a real pty stands between a test and a simulated REYAX module.
"""

from __future__ import annotations

import asyncio
import os
import random
from pathlib import Path

import pytest

from alertnet.protocol import (
    BATTERY_UNKNOWN,
    FLAG_DRILL,
    FLAG_RETRANSMISSION,
    AckState,
    Downlink,
    EventCode,
    Uplink,
    decode_uplink,
    format_send,
    parse_line,
)
from firmware_sim.cli import build_parser, config_from, parse_transports
from firmware_sim.device import RetryPolicy, SimDevice
from firmware_sim.fleet import (
    FleetPlan,
    Geo,
    TransportKind,
    import_csv_text,
    make_fleet,
    read_import_csv,
    write_import_csv,
)
from firmware_sim.radio import RadioModel
from firmware_sim.scenario import RunConfig
from firmware_sim.state import CounterStore, DeviceCounter
from firmware_sim.stats import Recorder, percentile
from firmware_sim.tablet import parse_tablets
from firmware_sim.transports import SimulatedModule
from tests.support.polling import eventually

FAST_RETRY = RetryPolicy(waits_s=(0.05, 0.1, 0.2), jitter=0.0)


class RecordingLink:
    """Keeps every uplink; acks the n-th transmission of each counter when told to."""

    def __init__(self, ack_on_attempt: int | None = None) -> None:
        self.sent: list[Uplink] = []
        self.ack_on_attempt = ack_on_attempt

    async def send(self, device: SimDevice, uplink: Uplink) -> bool:
        self.sent.append(uplink)
        attempts = sum(1 for u in self.sent if u.counter == uplink.counter)
        if (
            uplink.event is not EventCode.HEARTBEAT
            and self.ack_on_attempt is not None
            and attempts >= self.ack_on_attempt
        ):
            ack = Downlink.build(device.spec.key, device.eui, uplink.counter, AckState.RECEIVED)
            asyncio.get_running_loop().call_soon(device.receive_downlink, ack)
        return True


def one_device(kind: str = "panic_button") -> tuple[FleetPlan, list]:  # type: ignore[type-arg]
    plan = FleetPlan(devices=20, seed=3, alarm_share=0.5)
    fleet = [spec for spec in make_fleet(plan) if spec.kind == kind]
    return plan, fleet


async def make_device(
    tmp_path: Path, link: RecordingLink, *, kind: str = "panic_button"
) -> tuple[SimDevice, CounterStore, asyncio.Task[None], Recorder]:
    _, fleet = one_device(kind)
    store = CounterStore(tmp_path / "counters.json", flush_interval_s=0.001)
    await store.load()
    writer = asyncio.create_task(store.run())
    recorder = Recorder()
    device = SimDevice(
        fleet[0],
        DeviceCounter(store, fleet[0].eui, block=4),
        link,
        recorder,
        rng=random.Random(1),
        retry=FAST_RETRY,
        battery_pct=80.0,
    )
    return device, store, writer, recorder


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


# -- flash counters ----------------------------------------------------------------------------


async def test_counters_never_repeat_across_reboots_and_restarts(tmp_path: Path) -> None:
    path = tmp_path / "counters.json"
    store = CounterStore(path, flush_interval_s=0.001)
    await store.load()
    writer = asyncio.create_task(store.run())
    counter = DeviceCounter(store, "f15e000300000001", block=8)
    used = [await counter.take() for _ in range(5)]
    counter.reboot()  # RAM lost: continue above the reserved block
    used += [await counter.take() for _ in range(3)]
    await stop(writer)

    again = CounterStore(path)  # a new simulator run reads the file
    await again.load()
    writer = asyncio.create_task(again.run())
    later = DeviceCounter(again, "f15e000300000001", block=8)
    used += [await later.take() for _ in range(3)]
    await stop(writer)
    assert used == sorted(used) and len(set(used)) == len(used)
    assert used[:5] == [0, 1, 2, 3, 4] and used[5] == 8 and used[8] == 16


async def test_many_devices_reserve_in_one_write(tmp_path: Path) -> None:
    store = CounterStore(tmp_path / "counters.json", flush_interval_s=0.01)
    await store.load()
    writer = asyncio.create_task(store.run())
    counters = [DeviceCounter(store, f"f15e0003{index:08x}") for index in range(200)]
    await asyncio.gather(*(counter.take() for counter in counters))
    await stop(writer)
    assert store.writes <= 2


# -- firmware behaviour ------------------------------------------------------------------------


async def test_alarm_is_retransmitted_with_flag_and_true_age_until_acked(tmp_path: Path) -> None:
    link = RecordingLink(ack_on_attempt=3)
    device, _, writer, recorder = await make_device(tmp_path, link)
    assert await asyncio.wait_for(device.press(EventCode.PANIC), 5)
    await stop(writer)
    assert [u.counter for u in link.sent] == [link.sent[0].counter] * 3
    assert [u.retransmission for u in link.sent] == [False, True, True]
    assert all(u.verify(device.spec.key) for u in link.sent)
    assert all(u.age_s == 0 for u in link.sent)  # well under a second in this test
    record = recorder.presses[(device.eui, link.sent[0].counter)]
    assert record.acked and record.attempts == 3
    assert recorder.summary()["presses_lost"] == 0


async def test_age_counts_from_the_press(tmp_path: Path) -> None:
    now = [100.0]
    link = RecordingLink(ack_on_attempt=None)
    device, _, writer, _ = await make_device(tmp_path, link)
    device._clock = lambda: now[0]
    record = await device.raise_event(EventCode.PANIC)
    now[0] = 107.6
    delivery = asyncio.create_task(device.deliver(record))
    await eventually(lambda: link.sent, awaiting="the first transmission")
    delivery.cancel()
    await stop(writer)
    assert link.sent[-1].age_s == 7 and not link.sent[-1].retransmission


async def test_a_later_state_keeps_the_led_and_a_forged_ack_is_ignored(tmp_path: Path) -> None:
    link = RecordingLink(ack_on_attempt=None)
    device, _, writer, recorder = await make_device(tmp_path, link)
    record = await device.raise_event(EventCode.PANIC)
    forged = Downlink.build(bytes(16), device.eui, record.counter, AckState.RECEIVED)
    device.receive_downlink(forged)
    assert not record.acked and device.bad_downlinks == 1
    device.receive_downlink(
        Downlink.build(device.spec.key, device.eui, record.counter, AckState.ACCEPTED)
    )
    await stop(writer)
    assert record.acked and device.led_state == AckState.ACCEPTED
    assert recorder.downlinks["accepted"] == 1


async def test_heartbeats_are_not_retried_and_drain_the_battery(tmp_path: Path) -> None:
    link = RecordingLink(ack_on_attempt=None)
    device, _, writer, recorder = await make_device(tmp_path, link)
    device.drain_per_tx_pct = 31.0
    await device.heartbeat()
    await device.heartbeat()
    low = await device.battery_check()
    assert low is not None and low.event is EventCode.LOW_BATTERY
    assert await device.battery_check() is None  # once
    await stop(writer)
    beats = [u for u in link.sent if u.event is EventCode.HEARTBEAT]
    assert [u.battery for u in beats] == [80, 49]
    assert beats[0].counter + 1 == beats[1].counter
    assert recorder.sent["heartbeat"] == 2 and not recorder.presses[(device.eui, low.counter)].acked


async def test_drill_and_mains(tmp_path: Path) -> None:
    link = RecordingLink(ack_on_attempt=1)
    device, _, writer, _ = await make_device(tmp_path, link, kind="intrusion_alarm")
    device.drill_mode = True
    await device.press(EventCode.INTRUSION)
    await device.heartbeat()
    mains = await device.mains_lost()
    await device.deliver(mains)
    await stop(writer)
    intrusion, beat, lost = link.sent
    assert intrusion.flags & FLAG_DRILL and not intrusion.flags & FLAG_RETRANSMISSION
    assert beat.battery == BATTERY_UNKNOWN  # on mains
    assert lost.event is EventCode.MAINS_LOST and not lost.drill
    assert lost.battery != BATTERY_UNKNOWN  # now on its backup battery


async def test_an_unacknowledged_alarm_is_retried_on_the_protocol_schedule(
    tmp_path: Path,
) -> None:
    """protocol.md §3: again after 1, 2, 4 and 8 s, then every 15 s ±20 %, until acked."""
    _, fleet = one_device()
    store = CounterStore(tmp_path / "counters.json")
    await store.load()
    device = SimDevice(
        fleet[0],
        DeviceCounter(store, fleet[0].eui),
        RecordingLink(),
        Recorder(),
        rng=random.Random(1),
    )
    rng = random.Random(7)
    waits = [device.retry.wait_s(attempt, rng) for attempt in range(1, 200)]
    assert waits[:4] == [1, 2, 4, 8]
    steady = waits[4:]
    assert all(12 <= wait <= 18 for wait in steady)
    assert min(steady) < 12.5 and max(steady) > 17.5  # the jitter spans ±20 %
    assert 14.5 < sum(steady) / len(steady) < 15.5
    run_args = build_parser().parse_args(["run", "surge"])
    assert config_from(run_args).retry == RunConfig(scenario="surge").retry == device.retry


def test_a_shorter_retry_schedule_doubles_up_to_its_cap() -> None:
    policy = RetryPolicy.doubling(first_s=1, max_s=8, jitter=0)
    rng = random.Random(0)
    assert [policy.wait_s(n, rng) for n in range(1, 7)] == [1, 2, 4, 8, 8, 8]
    run_args = build_parser().parse_args(["run", "surge", "--retry-first", "2", "--retry-max", "8"])
    shortened = config_from(run_args).retry
    assert [shortened.wait_s(n, rng) for n in (1, 2)] == [2, 4]
    assert all(6.4 <= shortened.wait_s(n, rng) <= 9.6 for n in range(3, 50))  # 8 s ±20 %


# -- radio -------------------------------------------------------------------------------------


def test_hearing_falls_with_distance_and_rssi_with_it() -> None:
    radio = RadioModel()
    chances = [radio.hearing_probability(d) for d in (100, 1000, 3000, 6000, 30000)]
    assert chances == sorted(chances, reverse=True)
    assert chances[0] > 0.95 and chances[-1] < 0.05
    rng = random.Random(5)
    here = Geo(41.3, 69.28)
    near = [radio.transmit(here, Geo(41.301, 69.28), rng) for _ in range(200)]
    far = [radio.transmit(here, Geo(41.34, 69.28), rng) for _ in range(200)]
    heard_near = [r for r in near if r is not None]
    heard_far = [r for r in far if r is not None]
    assert len(heard_near) > len(heard_far)
    assert sum(r.rssi for r in heard_near) / len(heard_near) > max(r.rssi for r in heard_far) - 10


def test_perfect_radio_is_heard_everywhere() -> None:
    radio = RadioModel.perfect()
    rng = random.Random(1)
    assert all(radio.transmit(Geo(41.3, 69.2), Geo(41.5, 69.5), rng) for _ in range(100))


# -- fleet and options -------------------------------------------------------------------------


def test_fleet_is_deterministic_and_round_trips_through_the_import_csv(tmp_path: Path) -> None:
    plan = FleetPlan(
        devices=50, seed=9, transports=((TransportKind.MQTT, 1), (TransportKind.LORA, 1))
    )
    fleet = make_fleet(plan)
    assert fleet == make_fleet(plan)
    assert len({spec.eui for spec in fleet}) == 50
    assert {spec.transport for spec in fleet} == {TransportKind.MQTT, TransportKind.LORA}
    other_mix = make_fleet(FleetPlan(devices=50, seed=9))
    assert [(s.eui, s.key, s.location) for s in other_mix] == [
        (s.eui, s.key, s.location) for s in fleet
    ]
    path = tmp_path / "fleet.csv"
    write_import_csv(path, fleet)
    assert import_csv_text(fleet).startswith("eui,kind,lat,lon,key,")
    back = read_import_csv(path, TransportKind.MQTT)
    assert [(s.eui, s.key, s.kind) for s in back] == [(s.eui, s.key, s.kind) for s in fleet]


def test_cli_options() -> None:
    assert parse_transports("mqtt=3,lora") == ((TransportKind.MQTT, 3.0), (TransportKind.LORA, 1.0))
    assert (
        parse_tablets("P-1:u1:secret1,\nP-2:u2:pass:with:colons")[1].password == "pass:with:colons"
    )
    args = build_parser().parse_args(
        ["run", "surge", "--rate", "max", "--devices", "10", "--watch", "disp:pw"]
    )
    config = config_from(args)
    assert config.rate is None and config.watcher == ("disp", "pw") and config.devices == 10
    assert percentile([5.0, 1.0, 3.0, 2.0, 4.0], 0.5) == 3.0


# -- the simulated REYAX module on a pty -------------------------------------------------------


async def test_module_prints_rcv_lines_and_transmits_at_send(tmp_path: Path) -> None:
    transmitted: list[bytes] = []
    module = SimulatedModule(
        "gw-1", tmp_path / "gw-1", Geo(41.3, 69.28), lambda _m, frame: transmitted.append(frame)
    )
    module.open()
    host = os.open(module.path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        frame = Uplink.build(bytes(16), "70b3d57ed0001234", 1, EventCode.PANIC).to_bytes()
        module.receive(7, frame, -97, 7.5)
        await asyncio.sleep(0.05)
        lines = os.read(host, 4096).split(b"\r\n")
        assert lines[0] == b"+READY"
        packet = parse_line(lines[1])
        assert decode_uplink(packet.data) == decode_uplink(frame)  # type: ignore[union-attr]
        assert module.host_listening()
        downlink = Downlink.build(bytes(16), "70b3d57ed0001234", 1, AckState.RECEIVED).to_bytes()
        os.write(host, format_send(downlink))
        await asyncio.sleep(0.05)
        assert os.read(host, 4096) == b"+OK\r\n"
        assert transmitted == [downlink]
        os.write(host, b"garbage\r\n")
        await asyncio.sleep(0.05)
        assert os.read(host, 4096) == b"+ERR=1\r\n"
    finally:
        os.close(host)
        module.close()
    assert not module.path.exists()

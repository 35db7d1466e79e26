"""The bench's own parts that its figures rest on: the echo responder (the latency baseline
of DESIGN §8) must answer exactly the frames alertnet answers, with acks a device accepts;
the verdict must count every kind of loss; the table must hold each budget against the
baselines of the same run. The echo runs against the bench's real Mosquitto.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from alertnet.protocol import (
    DOWN_SUBSCRIPTION,
    AckState,
    EventCode,
    Uplink,
    decode_downlink,
    decode_downlink_json,
    parse_topic,
    up_topic,
)
from bench import report, scale
from bench.echo import EchoResponder, write_keys
from bench.harness import HOST, Broker, process_memory
from bench.run import STEPS, _steps
from tests.support import services

BINARY_EUI = "70b3d57ed0001234"
JSON_EUI = "70b3d57ed0005678"
STRANGER_EUI = "70b3d57ed0009999"
BINARY_KEY = bytes(range(16))
JSON_KEY = bytes(range(16, 32))


async def _acks_for(broker: Broker, keys_path: Path) -> tuple[dict[str, bytes], dict[str, Any]]:
    echo = EchoResponder(broker.url, keys_path)
    await echo.start()
    acks: dict[str, bytes] = {}
    try:
        async with aiomqtt.Client(HOST, broker.port, identifier="test-devices") as client:
            await client.subscribe(DOWN_SUBSCRIPTION, qos=1)
            frames = [
                (
                    BINARY_EUI,
                    Uplink.build(BINARY_KEY, BINARY_EUI, 1, EventCode.HEARTBEAT).to_bytes(),
                ),
                (BINARY_EUI, Uplink.build(BINARY_KEY, BINARY_EUI, 2, EventCode.PANIC).to_bytes()),
                (JSON_EUI, Uplink.build(JSON_KEY, JSON_EUI, 7, EventCode.INTRUSION).to_json()),
                (STRANGER_EUI, Uplink.build(JSON_KEY, STRANGER_EUI, 3, EventCode.PANIC).to_bytes()),
                (BINARY_EUI, b"not a frame"),
            ]
            for eui, payload in frames:
                await client.publish(up_topic(eui), payload, qos=1)

            async def collect() -> None:
                async for message in client.messages:
                    assert isinstance(message.payload, bytes)
                    acks[parse_topic(str(message.topic)).ident] = message.payload
                    if len(acks) == 2:
                        return

            await asyncio.wait_for(collect(), 20)
            await asyncio.sleep(0.5)  # room for a reply that should not come
    finally:
        counts = await echo.stop()
    return acks, counts


async def test_echo_acks_each_alarm_as_the_device_expects_and_nothing_else(
    tmp_path: Path,
) -> None:
    services.require_mosquitto()
    broker = Broker(tmp_path / "broker")
    broker.directory.mkdir()
    broker.start()
    try:
        keys_path = tmp_path / "keys.txt"
        write_keys(keys_path, {BINARY_EUI: BINARY_KEY, JSON_EUI: JSON_KEY})
        acks, counts = await _acks_for(broker, keys_path)
    finally:
        broker.stop()
    assert set(acks) == {BINARY_EUI, JSON_EUI}
    binary = decode_downlink(acks[BINARY_EUI])
    assert (binary.eui, binary.counter, binary.state) == (BINARY_EUI, 2, AckState.RECEIVED)
    assert binary.verify(BINARY_KEY)
    json_ack = decode_downlink_json(acks[JSON_EUI], JSON_EUI)  # JSON for a JSON sender
    assert (json_ack.counter, json_ack.state) == (7, AckState.RECEIVED)
    assert json_ack.verify(JSON_KEY)
    assert counts == {
        "received": 5,
        "replied": 2,
        "heartbeats": 1,
        "undecodable": 1,
        "unknown": 1,
    }


def _step(label: str, kind: str, **fields: Any) -> dict[str, Any]:
    return {"label": label, "kind": kind, "load_average": [0.5], **fields}


def _summary(p99_ms: float, *, lost: int = 0, offer_p99_ms: float | None = None) -> dict[str, Any]:
    def latency(value: float | None) -> dict[str, Any]:
        if value is None:
            return {"n": 0}
        return {"n": 20, "p50_ms": value / 2, "p95_ms": value, "p99_ms": value, "max_ms": value}

    return {
        "presses_lost": lost,
        "alerts_duplicated": 0,
        "press_to_ack": latency(p99_ms),
        "press_to_offer": latency(offer_p99_ms),
    }


def _result(*steps: dict[str, Any]) -> dict[str, Any]:
    return {
        "started_at": "2026-11-30T10:00:00",
        "machine": {"cpus": 2, "load_average_at_start": [0.5]},
        "uplinks": 1000,
        "baseline": {"bare_rate": 8000.0, "bare_drain_rate": 10000.0, "offered_rate": 7000.0},
        "drain": {"committed_rate": 5000.0},
        "steps": list(steps),
    }


def test_the_verdict_counts_lost_presses_missing_events_and_undrained_uplinks() -> None:
    result = _result(
        _step("echo 1000/s", "echo", rate=1000, summary=_summary(10)),
        _step("failover", "failover", summary=_summary(900, lost=1)),
        _step("steady 500/s", "steady", summary=_summary(40), db_missing_events=2),
        _step("drain 2 ingest", "drain", ingests=2, committed_rate=1.0, uplinks_missing=5),
        _step("storm", "storm", summary=_summary(40), db_alerts_duplicated=1),
    )
    assert report.failures(result) == ["failover", "steady 500/s", "drain 2 ingest", "storm"]


def test_the_budgets_are_held_against_the_echo_of_the_same_load() -> None:
    result = _result(
        _step("echo 1000/s", "echo", rate=1000, summary=_summary(30)),
        _step("echo 3000/s", "echo", rate=3000, summary=_summary(60)),
        _step("+tablets 1000/s", "offer", rate=1000, summary=_summary(45, offer_p99_ms=95)),
        _step("+tablets 3000/s", "offer", rate=3000, summary=_summary(400, offer_p99_ms=200)),
        _step("drain 1 ingest", "drain", ingests=1, committed_rate=4000.0, roles=True),
        _step("drain 2 ingest", "drain", ingests=2, committed_rate=5000.0, roles=True),
    )
    lines = report.table(result).splitlines()
    at_1000 = next(line for line in lines if line.startswith("  1,000/s"))
    at_3000 = next(line for line in lines if line.startswith("  3,000/s"))
    assert "(≤ echo + 20: ok)" in at_1000  # 45 ≤ 30 + 20
    assert "(≤ echo + 50: OVER)" in at_1000  # 95 > 30 + 50
    assert "(≤ echo + 250: OVER)" in at_3000  # ack: 400 > 60 + 250
    assert at_3000.endswith("(≤ echo + 250: ok)")  # offer: 200 ≤ 60 + 250
    scale_out = next(line for line in lines if "scale-out" in line)
    assert "1 ingest 4,000/s (40% of bare)" in scale_out
    assert "2 ÷ 1 = 1.25x" in scale_out


def test_steps_are_chosen_by_name_and_a_typo_is_refused() -> None:
    assert _steps("echo, failover") == {"echo", "failover"}
    assert set(STEPS) >= {"echo", "scale", "failover", "alarms80"}
    with pytest.raises(argparse.ArgumentTypeError):
        _steps("echo,failovr")


def test_memory_is_read_from_proc() -> None:
    memory = process_memory(os.getpid())
    assert 0 < memory["rss_mb"] <= memory["hwm_mb"]
    assert process_memory(2**22 + 12345) == {}  # beyond pid_max: no such process


async def test_a_drain_rate_leaves_out_what_was_committed_before_the_first_look() -> None:
    counts = iter([0.0, 0.0, 400.0, 700.0, 1000.0])

    async def committed() -> float:
        return next(counts)

    drained = await scale.wait_for_count(committed, expected=1000)
    assert (drained.first_count, drained.count) == (400.0, 1000.0)
    assert drained.last_at > drained.first_at
    assert drained.rate() == 600.0 / (drained.last_at - drained.first_at)


async def test_a_drain_that_stalls_ends_short_of_what_was_expected() -> None:
    counts = iter([10.0, 20.0])

    async def committed() -> float:
        return next(counts, 20.0)

    drained = await scale.wait_for_count(committed, expected=1000, stall_s=0.3)
    assert drained.count == 20.0


def _load_step(label: str, kind: str, offered: float, committed: float) -> dict[str, Any]:
    return _step(label, kind, offered_rate=offered, committed_rate=committed)


def test_alarms80_takes_the_highest_live_rate_that_kept_up_and_else_says_what_it_took() -> None:
    result = _result(
        _load_step("max", "max", 5700.0, 3300.0),  # flat out: fell behind
        _load_step("steady 3000/s", "steady", 3000.0, 2990.0),
        _load_step("steady 5000/s", "steady", 4970.0, 4770.0),  # 96 %: kept up
        _load_step("steady 8000/s", "steady", 6000.0, 5500.0),  # 92 %: catch-up tail inflates
        _step("drain 1 ingest", "drain", ingests=1, committed_rate=9000.0, roles=True),
    )
    live = report.alarms_capacity(result)
    assert live is not None and live.rate == 4770.0
    assert "steady 5000/s" in live.basis and "highest that kept up" in live.basis

    behind = _result(_load_step("max", "max", 5700.0, 3300.0))
    fallback = report.alarms_capacity(behind)
    assert fallback is not None and fallback.rate == 3300.0
    assert "no max/steady step kept up" in fallback.basis

    all_kept_up = report.alarms_capacity(_result(_load_step("s", "steady", 1000.0, 999.0)))
    assert all_kept_up is not None and "lower bound" in all_kept_up.basis

    no_live = _result(_step("echo 1000/s", "echo", rate=1000, offered_rate=1000.0))
    drain = report.alarms_capacity(no_live)
    assert drain is not None and drain.rate == 5000.0 and "drain capacity" in drain.basis
    assert report.alarms_capacity(result, given=1234.0) == report.Capacity(1234.0, "--capacity")
    assert report.alarms_capacity({"steps": []}) is None


def test_the_alarms_budget_line_names_its_capacity_beside_the_drain_rate() -> None:
    result = _result(_load_step("steady 5000/s", "steady", 4970.0, 4770.0))
    chosen = report.alarms_capacity(result)
    assert chosen is not None
    result["alarms80"] = {
        "capacity": chosen.rate,
        "capacity_basis": chosen.basis,
        "drain_capacity": 9357.0,
        "rate": 3816,
        "offered_rate": 3810.0,
        "p99_ms": 300.0,
        "p99_ms_500": 100.0,
        "ratio": 3.0,
    }
    lines = report.table(result).splitlines()
    budget = next(line for line in lines if "alarms first" in line)
    assert "80 % of 4,770/s" in budget and "(≤ 2x: OVER)" in budget
    basis = lines[lines.index(budget) + 1]
    assert "live capacity: steady 5000/s" in basis and "drain capacity 9,357/s" in basis

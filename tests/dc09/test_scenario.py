"""The ``panels`` scenario: its fleet (and the CSV alertnet imports), a run against alertnet's
receiver with the reference answerer, a run against a bare echo, and the command line."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from alertnet.devices.importer import parse_devices_csv
from alertnet.ingest.dc09.codes import dedup_key
from alertnet.ingest.dc09.receiver import Receiver
from firmware_sim.cli import build_parser
from firmware_sim.dc09_scenario import (
    PanelPlan,
    PanelsConfig,
    make_panels,
    panels_csv_text,
    run_panels,
    write_fleet_command,
)

from .helpers import ReferenceIntake

PLAN = PanelPlan(panels=24, seed=5, encrypted_share=0.5, udp_share=0.25, one_shot_share=0.25)


def test_fleet_is_reproducible_and_mixed() -> None:
    fleet = make_panels(PLAN)
    assert fleet == make_panels(PLAN)
    assert len({p.eui for p in fleet}) == len({p.spec.account for p in fleet}) == 24
    specs = [p.spec for p in fleet]
    assert {s.token for s in specs} == {"SIA-DCS", "ADM-CID"}
    assert {s.transport for s in specs} == {"tcp", "udp"}
    assert {s.persistent for s in specs if s.transport == "tcp"} == {True, False}
    assert {s.key is None for s in specs} == {True, False}
    assert all(s.key is None or len(s.key) == 16 for s in specs)
    assert {len(p.spec.key or b"") for p in make_panels(PanelPlan(5, key_bits=256))} <= {0, 32}


def test_shares_change_only_their_own_attribute() -> None:
    wrong = PanelPlan(panels=24, seed=5, encrypted_share=0.5, wrong_clock_share=0.5)
    base = PanelPlan(panels=24, seed=5, encrypted_share=0.5)
    for a, b in zip(make_panels(base), make_panels(wrong), strict=True):
        assert (a.eui, a.spec.account, a.spec.key, a.spec.token) == (
            b.eui,
            b.spec.account,
            b.spec.key,
            b.spec.token,
        )
    assert any(p.spec.clock_skew_s for p in make_panels(wrong))


def test_csv_is_what_alertnet_imports() -> None:
    fleet = make_panels(PLAN)
    good, bad = parse_devices_csv(panels_csv_text(fleet))
    assert bad == []
    imported = {row.spec.eui: row.spec for row in good}
    for panel in fleet:
        spec = imported[panel.eui]
        assert spec.kind == "intrusion_alarm"
        assert spec.dc09_account == panel.spec.account
        assert spec.dc09_key == panel.spec.key
        assert spec.site == panel.site


@pytest_asyncio.fixture
async def receiver_and_intake() -> AsyncIterator[tuple[Receiver, ReferenceIntake]]:
    intake = ReferenceIntake({p.spec.account: p.spec.key for p in make_panels(PLAN)})
    receiver = Receiver("127.0.0.1", 0, intake.on_frame, intake.on_garbage)
    await receiver.start()
    yield receiver, intake
    await receiver.stop()


async def test_run_against_the_receiver(
    receiver_and_intake: tuple[Receiver, ReferenceIntake],
) -> None:
    receiver, intake = receiver_and_intake
    assert receiver.tcp_port is not None
    config = PanelsConfig("127.0.0.1", receiver.tcp_port, PLAN, messages=120, alarms=15)
    report = await run_panels(config)
    assert report.ok, report.table()
    assert (report.messages, report.acked, report.unanswered) == (120, 120, 0)
    assert report.latency["n"] == 120 and report.latency_alarms["n"] == 15
    assert set(report.by_link) == {"tcp", "tcp-one-shot", "udp"}
    assert len(intake.accepted) == 120
    # Every acknowledged alarm's key is one the receiver side computes from what it got.
    received = {
        (account, dedup_key(token, seq, message.data, message.xdata))
        for account, seq, message, _transport in intake.accepted
        for token in ("SIA-DCS", "ADM-CID")
    }
    assert len(report.keys) == 15
    assert all(tuple(key) in received for key in report.keys)
    assert "message → answer" in report.table()


async def test_paced_run_with_wrong_clocks_and_tests(
    receiver_and_intake: tuple[Receiver, ReferenceIntake],
) -> None:
    receiver, intake = receiver_and_intake
    assert receiver.tcp_port is not None
    plan = PanelPlan(
        panels=24, seed=5, encrypted_share=0.5, udp_share=0.25, one_shot_share=0.25,
        wrong_clock_share=0.5,
    )  # fmt: skip
    config = PanelsConfig(
        "127.0.0.1",
        receiver.tcp_port,
        plan,
        rate=200,
        duration_s=0.3,
        alarms=5,
        test_interval_s=0.1,
        drain_s=10,
    )
    report = await run_panels(config)
    assert report.ok, report.table()
    assert report.messages > 60  # the paced messages and the periodic tests
    assert report.naks > 0  # encrypted panels with a wrong clock, corrected by the NAK
    assert "bad_timestamp" in intake.refused


async def test_echo_baseline() -> None:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readuntil(b"\r"):
                writer.write(line)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    plan = PanelPlan(panels=10, seed=2, udp_share=0.0, one_shot_share=0.3)
    try:
        report = await run_panels(
            PanelsConfig("127.0.0.1", port, plan, messages=50, expect_ack=False)
        )
    finally:
        server.close()
    assert report.ok and report.answered == 50 and report.acked == 0


def test_command_line(tmp_path: Path) -> None:
    parser = build_parser()
    args = parser.parse_args(
        ["panels", "--devices", "7", "--seed", "9", "--dc09-udp", "0", "-o", str(tmp_path / "p")]
    )
    assert write_fleet_command(args) == 0
    good, bad = parse_devices_csv((tmp_path / "p").read_text())
    assert (len(good), bad) == (7, [])
    run = parser.parse_args(["run", "panels", "--dc09", "127.0.0.1:5999", "--rate", "max"])
    assert (run.scenario, run.dc09, run.rate) == ("panels", "127.0.0.1:5999", None)
    assert not run.dc09_echo

"""The simulated DC-09 panel against alertnet's receiver (with a reference answerer): sequence
numbers and their wrap, retransmission until ACK, NAK and a wrong clock, DUH, reboots,
periodic tests, the three links, and a receiver restart under a persistent connection."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest_asyncio

from alertnet.ingest.dc09.codes import Action, dedup_key
from alertnet.ingest.dc09.frame import open_envelope, parse_frame
from alertnet.ingest.dc09.intake import classify
from alertnet.ingest.dc09.receiver import Receiver
from firmware_sim.dc09_panel import Dc09Panel, PanelEvent, PanelSpec, event_data
from tests.support.polling import eventually

from .helpers import ReferenceIntake

HOST = "127.0.0.1"
KEY = bytes(range(32))
FAST = {"ack_timeout_s": 0.3, "reconnect_delay_s": 0.05, "max_attempts": 20}


@pytest_asyncio.fixture
async def intake() -> ReferenceIntake:
    return ReferenceIntake({"1234": None, "BEEF": KEY})


@pytest_asyncio.fixture
async def receiver(intake: ReferenceIntake) -> AsyncIterator[Receiver]:
    running = Receiver(HOST, 0, intake.on_frame, intake.on_garbage)
    await running.start()
    yield running
    await running.stop()


def panel(receiver: Receiver, account: str = "1234", **options: object) -> Dc09Panel:
    key = KEY if account == "BEEF" else None
    spec = PanelSpec(account, key, **{**FAST, **options})  # type: ignore[arg-type]
    assert receiver.tcp_port is not None
    return Dc09Panel(spec, HOST, receiver.tcp_port)


async def test_sequence_wraps_from_9999_to_0001(receiver: Receiver) -> None:
    spec = PanelSpec("1234", **FAST)  # type: ignore[arg-type]
    assert receiver.tcp_port is not None
    sim = Dc09Panel(spec, HOST, receiver.tcp_port, first_seq=9998)
    try:
        seqs = [(await sim.report(PanelEvent.OPEN)).seq for _ in range(3)]
    finally:
        await sim.close()
    assert seqs == ["9998", "9999", "0001"]


async def test_retransmits_until_acked_with_the_same_identity(intake: ReferenceIntake) -> None:
    frames: list[bytes] = []

    async def lossy(raw: bytes, peer: str, transport: str) -> bytes | None:
        frames.append(raw)
        if len(frames) <= 2:
            return None  # as if the answer were lost
        return await intake.on_frame(raw, peer, transport)

    receiver = Receiver(HOST, 0, lossy)
    await receiver.start()
    sim = panel(receiver, "BEEF")
    try:
        delivery = await sim.report(PanelEvent.INTRUSION, zone=7)
    finally:
        await sim.close()
        await receiver.stop()
    assert (delivery.answer, delivery.attempts) == ("ACK", 3)
    assert len(set(frames)) == 3  # fresh pad and timestamp each time…
    keys = set()
    for raw in frames:
        envelope = parse_frame(raw)
        message = open_envelope(envelope, KEY)
        keys.add(dedup_key(envelope.token, envelope.seq, message.data, message.xdata))
    assert len(keys) == 1  # …but the same message


async def test_wrong_clock_gets_nak_then_corrected(
    receiver: Receiver, intake: ReferenceIntake
) -> None:
    sim = panel(receiver, "BEEF", clock_skew_s=-600)
    try:
        delivery = await sim.report(PanelEvent.PANIC)
    finally:
        await sim.close()
    assert (delivery.answer, delivery.naks, delivery.attempts) == ("ACK", 1, 2)
    assert intake.refused == ["bad_timestamp"]


async def test_unencrypted_wrong_clock_is_stamped_and_accepted(
    receiver: Receiver, intake: ReferenceIntake
) -> None:
    sim = panel(receiver, clock_skew_s=-600)
    try:
        delivery = await sim.report(PanelEvent.FIRE)
    finally:
        await sim.close()
    assert (delivery.answer, delivery.naks) == ("ACK", 0)
    stamp = intake.accepted[0][2].timestamp
    assert stamp is not None  # the skew is there for the intake to record


async def test_duh_ends_the_attempt(receiver: Receiver, intake: ReferenceIntake) -> None:
    sim = panel(receiver, "FFFF")
    try:
        delivery = await sim.report(PanelEvent.INTRUSION)
    finally:
        await sim.close()
    assert (delivery.answer, delivery.attempts) == ("DUH", 1)


async def test_reboot_restarts_numbering(receiver: Receiver) -> None:
    sim = panel(receiver)
    try:
        first = [(await sim.report(PanelEvent.CLOSE)).seq for _ in range(3)]
        sim.reboot()
        after = (await sim.report(PanelEvent.OPEN)).seq
    finally:
        await sim.close()
    assert (first, after) == (["0001", "0002", "0003"], "0001")


async def test_periodic_test_reports(receiver: Receiver, intake: ReferenceIntake) -> None:
    sim = panel(receiver, token="ADM-CID", test_interval_s=0.1)
    tests = asyncio.create_task(sim.run_tests())
    try:
        await eventually(lambda: len(intake.accepted) >= 3, awaiting="three test reports")
    finally:
        tests.cancel()
        await sim.close()
    signals = [classify("ADM-CID", message.data) for _a, _s, message, _t in intake.accepted]
    assert {signal.action for signal in signals} == {Action.SUPERVISION}
    assert {signal.code for signal in signals} == {"E602"}


async def test_links(receiver: Receiver, intake: ReferenceIntake) -> None:
    persistent = panel(receiver)
    one_shot = panel(receiver, persistent=False)
    udp = panel(receiver, "BEEF", transport="udp")
    try:
        for sim in (persistent, one_shot, udp):
            for _ in range(3):
                assert (await sim.report(PanelEvent.MEDICAL)).acked
    finally:
        for sim in (persistent, one_shot, udp):
            await sim.close()
    assert (persistent.connections, one_shot.connections, udp.connections) == (1, 3, 0)
    assert [transport for *_rest, transport in intake.accepted][-3:] == ["udp"] * 3


async def test_receiver_restart_under_a_persistent_connection(intake: ReferenceIntake) -> None:
    first = Receiver(HOST, 0, intake.on_frame)
    await first.start()
    port = first.tcp_port
    assert port is not None
    sim = Dc09Panel(PanelSpec("1234", **FAST), HOST, port)  # type: ignore[arg-type]
    try:
        assert (await sim.report(PanelEvent.INTRUSION)).acked
        await first.stop()
        second = Receiver(HOST, port, intake.on_frame)
        await second.start()
        try:
            delivery = await sim.report(PanelEvent.INTRUSION_RESTORE)
        finally:
            await second.stop()
    finally:
        await sim.close()
    assert delivery.acked and delivery.seq == "0002"
    assert sim.connections == 2


def test_event_data_is_what_codes_expects() -> None:
    expected = {
        PanelEvent.INTRUSION: Action.ALARM,
        PanelEvent.INTRUSION_RESTORE: Action.RESTORE,
        PanelEvent.DURESS: Action.ALARM,
        PanelEvent.MAINS_LOST: Action.TROUBLE,
        PanelEvent.MAINS_RESTORED: Action.TROUBLE_RESTORE,
        PanelEvent.BATTERY_LOW: Action.TROUBLE,
        PanelEvent.BATTERY_OK: Action.TROUBLE_RESTORE,
        PanelEvent.OPEN: Action.RECORD,
        PanelEvent.CLOSE: Action.RECORD,
        PanelEvent.CANCEL: Action.CANCEL,
        PanelEvent.MANUAL_TEST: Action.TEST,
        PanelEvent.PERIODIC_TEST: Action.SUPERVISION,
        PanelEvent.UNKNOWN: Action.UNKNOWN,
    }
    for token in ("SIA-DCS", "ADM-CID"):
        for event, action in expected.items():
            signal = classify(token, event_data(token, "1234", event, zone=5, area=2))
            assert signal.action is action, (token, event)
            assert signal.partition == ("02" if token == "ADM-CID" else "2")
        duress = classify(token, event_data(token, "1234", PanelEvent.DURESS))
        assert duress.silent

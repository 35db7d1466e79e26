"""pysiaalarm 3.2.2, an independent DC-09 receiver, reads what the simulated panel sends.

Two ways: pysiaalarm's parser on the frames ``Dc09Panel`` builds (every event, both tokens,
clear and AES-128/192/256), and the panel talking to pysiaalarm's own TCP and UDP servers — so
the panel's reading of a third party's ACK, ``*ACK`` and NAK is checked too.

pysiaalarm takes a key as text and uses its characters as the AES key bytes, so the keys here
are 16/24/32 ASCII characters and the panel gets their bytes. Its ``valid_length`` is broken
(it reads the hex length field as decimal); the length is checked here from the fields it
parsed. It writes the receiver prefix as ``None`` when a frame has none, so these panels send
``R0``.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio
from pysiaalarm import SIAAccount
from pysiaalarm.aio import SIAClient
from pysiaalarm.aio.server import SIAServerUDP
from pysiaalarm.event import SIAEvent
from pysiaalarm.utils import CommunicationsProtocol, Counter, ResponseType

from alertnet.ingest.dc09.frame import parse_answer
from firmware_sim.dc09_panel import Dc09Panel, PanelEvent, PanelSpec, event_data

KEYS = {
    None: None,
    128: "0123456789ABCDEF",
    192: "0123456789ABCDEF01234567",
    256: "0123456789ABCDEF0123456789ABCDEF",
}
SIA_CODES = {
    PanelEvent.INTRUSION: "BA",
    PanelEvent.INTRUSION_RESTORE: "BR",
    PanelEvent.PANIC: "PA",
    PanelEvent.DURESS: "HA",
    PanelEvent.FIRE: "FA",
    PanelEvent.MEDICAL: "MA",
    PanelEvent.TAMPER: "TA",
    PanelEvent.MAINS_LOST: "AT",
    PanelEvent.MAINS_RESTORED: "AR",
    PanelEvent.BATTERY_LOW: "YT",
    PanelEvent.BATTERY_OK: "YR",
    PanelEvent.OPEN: "OP",
    PanelEvent.CLOSE: "CL",
    PanelEvent.CANCEL: "OC",
    PanelEvent.MANUAL_TEST: "RX",
    PanelEvent.PERIODIC_TEST: "RP",
}
CONTACT_ID = {
    PanelEvent.INTRUSION: ("1", "130"),
    PanelEvent.INTRUSION_RESTORE: ("3", "130"),
    PanelEvent.PANIC: ("1", "120"),
    PanelEvent.DURESS: ("1", "121"),
    PanelEvent.FIRE: ("1", "110"),
    PanelEvent.MEDICAL: ("1", "100"),
    PanelEvent.TAMPER: ("1", "137"),
    PanelEvent.MAINS_LOST: ("1", "301"),
    PanelEvent.MAINS_RESTORED: ("3", "301"),
    PanelEvent.BATTERY_LOW: ("1", "302"),
    PanelEvent.BATTERY_OK: ("3", "302"),
    PanelEvent.OPEN: ("1", "401"),
    PanelEvent.CLOSE: ("3", "401"),
    PanelEvent.CANCEL: ("1", "406"),
    PanelEvent.MANUAL_TEST: ("1", "601"),
    PanelEvent.PERIODIC_TEST: ("1", "602"),
}


def panel_for(token: str, bits: int | None, **options: object) -> tuple[Dc09Panel, SIAAccount]:
    key_text = KEYS[bits]
    spec = PanelSpec(
        account="1234AB",
        key=key_text.encode() if key_text else None,
        token=token,  # type: ignore[arg-type]
        **options,  # type: ignore[arg-type]
    )
    return Dc09Panel(spec, "127.0.0.1", 9), SIAAccount("1234AB", key_text)


@pytest.mark.parametrize("bits", list(KEYS))
@pytest.mark.parametrize("event", list(SIA_CODES))
def test_pysiaalarm_parses_sia_dcs(bits: int | None, event: PanelEvent) -> None:
    panel, account = panel_for("SIA-DCS", bits)
    seq = panel.take_seq()
    raw = panel.encode(seq, f"#1234AB|Nri3/{SIA_CODES[event]}17", ["X030E5000"])
    parsed = SIAEvent.from_line(raw.decode("ascii").strip(), {"1234AB": account})
    assert parsed.valid_message  # its CRC agrees
    assert parsed.full_message is not None and parsed.length is not None
    assert int(parsed.length, 16) == len(parsed.full_message)
    assert parsed.encrypted is (bits is not None)
    assert (parsed.sequence, parsed.receiver, parsed.line) == (seq, "R0", "L0")
    assert (parsed.account, parsed.code) == ("1234AB", SIA_CODES[event])
    assert (parsed.ri, parsed.message) == ("3", "17")
    assert parsed.x_data == "X030E5000"
    if bits is not None:
        assert isinstance(parsed.timestamp, datetime)
        assert abs(parsed.timestamp - datetime.now(UTC)) < timedelta(seconds=5)
        assert parsed.valid_timestamp
    assert parsed.response is ResponseType.ACK


@pytest.mark.parametrize("bits", list(KEYS))
@pytest.mark.parametrize("event", list(CONTACT_ID))
def test_pysiaalarm_parses_contact_id(bits: int | None, event: PanelEvent) -> None:
    panel, account = panel_for("ADM-CID", bits)
    panel.take_seq()
    seq = panel.take_seq()
    raw = panel.encode(seq, f"#1234AB|{''.join(CONTACT_ID[event])} 02 015")
    parsed = SIAEvent.from_line(raw.decode("ascii").strip(), {"1234AB": account})
    assert parsed.valid_message
    assert parsed.sequence == "0002"
    assert (parsed.event_qualifier, parsed.event_type) == CONTACT_ID[event]
    assert (parsed.partition, parsed.ri) == ("02", "015")
    assert parsed.code is not None  # its own Contact ID → SIA mapping found the event


def test_pysiaalarm_parses_the_panels_own_event_data() -> None:
    for token in ("SIA-DCS", "ADM-CID"):
        panel, account = panel_for(token, 128)
        for event in CONTACT_ID:
            raw = panel.encode(panel.take_seq(), event_data(token, "1234AB", event, 9, 2))
            parsed = SIAEvent.from_line(raw.decode().strip(), {"1234AB": account})
            assert parsed.valid_message and parsed.response is ResponseType.ACK, (token, event)


def test_our_answer_parser_reads_pysiaalarm_answers() -> None:
    for bits in KEYS:
        panel, account = panel_for("SIA-DCS", bits)
        raw = panel.encode("0042", "#1234AB|Nri1/BA501")
        parsed = SIAEvent.from_line(raw.decode().strip(), {"1234AB": account})
        key = panel.spec.key
        answer = parse_answer(parsed.create_response(), key)
        assert (answer.kind, answer.seq, answer.encrypted) == ("ACK", "0042", bits is not None)
        if bits is not None:
            assert answer.timestamp is not None  # its *ACK pad has no '|': read leniently
    late, account = panel_for("SIA-DCS", 128, clock_skew_s=-600)
    raw = late.encode("0007", "#1234AB|Nri1/BA501")
    parsed = SIAEvent.from_line(raw.decode().strip(), {"1234AB": account})
    nak = parse_answer(parsed.create_response(), late.spec.key)
    assert nak.kind == "NAK" and nak.timestamp is not None
    unknown = SIAEvent.from_line(
        panel_for("SIA-DCS", None)[0].encode("0008", "#1234AB|Nri1/QQ").decode().strip(),
        {"1234AB": SIAAccount("1234AB")},
    )
    assert parse_answer(unknown.create_response()).kind == "DUH"


# -- the panel against pysiaalarm's servers -----------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Py311UdpServer(SIAServerUDP):
    """pysiaalarm's UDP server, minus its ``isinstance(transport, DatagramTransport)`` assert,
    which fails on Python 3.11 (whose selector transport is not that subclass) and leaves it
    silent. Parsing and answering stay pysiaalarm's."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]


@pytest_asyncio.fixture
async def pysia_server(
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[int, list[SIAEvent]]]:
    protocol: CommunicationsProtocol = request.param
    received: list[SIAEvent] = []

    async def collect(event: SIAEvent) -> None:
        received.append(event)

    port = free_port()
    accounts = [SIAAccount("1234AB", KEYS[128]), SIAAccount("BEEF")]
    if protocol is CommunicationsProtocol.UDP:
        server = Py311UdpServer({a.account_id: a for a in accounts}, collect, Counter())
        transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: server, local_addr=("127.0.0.1", port)
        )
        try:
            yield port, received
        finally:
            transport.close()
        return
    client = SIAClient("127.0.0.1", port, accounts, collect, protocol=protocol)
    await client.async_start()
    try:
        yield port, received
    finally:
        await client.async_stop()


TRANSPORTS = [
    pytest.param(CommunicationsProtocol.TCP, {"persistent": True}, id="tcp-persistent"),
    pytest.param(CommunicationsProtocol.TCP, {"persistent": False}, id="tcp-one-shot"),
    pytest.param(CommunicationsProtocol.UDP, {"transport": "udp"}, id="udp"),
]


@pytest.mark.parametrize(("pysia_server", "link"), TRANSPORTS, indirect=["pysia_server"])
async def test_panel_reports_to_pysiaalarm(
    pysia_server: tuple[int, list[SIAEvent]], link: dict[str, object]
) -> None:
    port, received = pysia_server
    encrypted = Dc09Panel(
        PanelSpec("1234AB", KEYS[128].encode(), ack_timeout_s=5, max_attempts=3, **link),  # type: ignore[arg-type]
        "127.0.0.1",
        port,
    )
    clear = Dc09Panel(
        PanelSpec("BEEF", token="ADM-CID", ack_timeout_s=5, max_attempts=3, **link),  # type: ignore[arg-type]
        "127.0.0.1",
        port,
    )
    try:
        deliveries = [
            await encrypted.report(PanelEvent.INTRUSION, zone=501),
            await encrypted.report(PanelEvent.DURESS, zone=2),
            await clear.report(PanelEvent.FIRE, zone=15, area=3),
            await clear.report(PanelEvent.PERIODIC_TEST, zone=0, area=0),
        ]
    finally:
        await encrypted.close()
        await clear.close()
    assert [d.answer for d in deliveries] == ["ACK"] * 4
    assert all(d.attempts == 1 for d in deliveries)
    got = sorted((e.account, e.sequence, e.code, e.ri) for e in received)
    assert got == [
        ("1234AB", "0001", "BA", "1"),
        ("1234AB", "0002", "HA", "1"),
        ("BEEF", "0001", "FA", "015"),
        ("BEEF", "0002", "RP", "000"),
    ]
    if link.get("persistent") is False:
        assert encrypted.connections == 2


@pytest.mark.parametrize("pysia_server", [CommunicationsProtocol.TCP], indirect=True)
async def test_wrong_clock_is_corrected_by_pysiaalarms_nak(
    pysia_server: tuple[int, list[SIAEvent]],
) -> None:
    port, received = pysia_server
    panel = Dc09Panel(
        PanelSpec(
            "1234AB", KEYS[128].encode(), clock_skew_s=-3600, ack_timeout_s=5, max_attempts=4
        ),
        "127.0.0.1",
        port,
    )
    try:
        delivery = await panel.report(PanelEvent.PANIC)
    finally:
        await panel.close()
    assert (delivery.answer, delivery.naks, delivery.attempts) == ("ACK", 1, 2)
    assert [e.code for e in received] == ["PA"]
    assert abs(panel.now() - datetime.now(UTC)) < timedelta(seconds=5)

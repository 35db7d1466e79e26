"""A simulated alarm panel that reports over SIA DC-09 (DESIGN §9.1), as installed panels do.

``Dc09Panel`` sends ``SIA-DCS`` or ``ADM-CID`` messages (encrypted with AES-128/192/256 or
not) over TCP — one persistent connection, or one connection per message — or UDP, and
retransmits each message until it is acknowledged:

- each new message takes the next sequence number, 0001 … 9999 then 0001 again (``reboot()``
  starts over at 0001, as a panel that lost power does); a retransmission keeps its number and
  its data, with fresh pad and timestamp;
- DC-09's timing: the panel waits ``ack_timeout_s`` (20 s unless configured) for the answer to
  each transmission, then sends again; a broken connection is re-opened after
  ``reconnect_delay_s``; it never gives up unless ``max_attempts`` says so;
- ``NAK`` (the receiver's clock disagrees) makes the panel take the time carried by the NAK and
  send again at once; ``DUH`` ends the attempt (the receiver cannot process it);
- ``clock_skew_s`` is a wrong clock (what the NAK test needs); ``run_tests()`` sends the
  periodic automatic test report (``RP`` / Contact ID 602) every ``test_interval_s``.

It imports alertnet's pure DC-09 modules only (frame building, answer parsing).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Final, Literal, cast

from alertnet.ingest.dc09.frame import Answer, FrameError, encode_message, parse_answer

__all__ = [
    "ACK_TIMEOUT_S",
    "Dc09Panel",
    "Delivery",
    "PanelEvent",
    "PanelSpec",
    "event_data",
]

log = logging.getLogger(__name__)

#: How long a panel waits for the answer to one transmission before sending it again.
ACK_TIMEOUT_S: Final = 20.0
_ANSWER_BYTES: Final = 4096


class PanelEvent(StrEnum):
    """What a panel reports, with its SIA code and Contact ID (qualifier, event)."""

    INTRUSION = "intrusion"
    INTRUSION_RESTORE = "intrusion_restore"
    PANIC = "panic"
    DURESS = "duress"
    FIRE = "fire"
    MEDICAL = "medical"
    TAMPER = "tamper"
    MAINS_LOST = "mains_lost"
    MAINS_RESTORED = "mains_restored"
    BATTERY_LOW = "battery_low"
    BATTERY_OK = "battery_ok"
    OPEN = "open"
    CLOSE = "close"
    CANCEL = "cancel"
    MANUAL_TEST = "manual_test"
    PERIODIC_TEST = "periodic_test"
    UNKNOWN = "unknown"  # a code outside alertnet's table

    @property
    def alarm(self) -> bool:
        return self in _ALARMS


_ALARMS: Final = frozenset(
    {
        PanelEvent.INTRUSION,
        PanelEvent.PANIC,
        PanelEvent.DURESS,
        PanelEvent.FIRE,
        PanelEvent.MEDICAL,
        PanelEvent.TAMPER,
    }
)
# event → (SIA code, Contact ID qualifier, Contact ID event)
_CODES: Final[dict[PanelEvent, tuple[str, str, str]]] = {
    PanelEvent.INTRUSION: ("BA", "1", "130"),
    PanelEvent.INTRUSION_RESTORE: ("BR", "3", "130"),
    PanelEvent.PANIC: ("PA", "1", "120"),
    PanelEvent.DURESS: ("HA", "1", "121"),
    PanelEvent.FIRE: ("FA", "1", "110"),
    PanelEvent.MEDICAL: ("MA", "1", "100"),
    PanelEvent.TAMPER: ("TA", "1", "137"),
    PanelEvent.MAINS_LOST: ("AT", "1", "301"),
    PanelEvent.MAINS_RESTORED: ("AR", "3", "301"),
    PanelEvent.BATTERY_LOW: ("YT", "1", "302"),
    PanelEvent.BATTERY_OK: ("YR", "3", "302"),
    PanelEvent.OPEN: ("OP", "1", "401"),
    PanelEvent.CLOSE: ("CL", "3", "401"),
    PanelEvent.CANCEL: ("OC", "1", "406"),
    PanelEvent.MANUAL_TEST: ("RX", "1", "601"),
    PanelEvent.PERIODIC_TEST: ("RP", "1", "602"),
    PanelEvent.UNKNOWN: ("ZZ", "1", "999"),
}


def event_data(token: str, account: str, event: PanelEvent, zone: int = 1, area: int = 1) -> str:
    """The data block of one event: ``#acct|Nri<area>/<code><zone>`` (SIA-DCS) or
    ``#acct|QEEE GG CCC`` (ADM-CID)."""
    sia, qualifier, cid = _CODES[event]
    if token == "ADM-CID":
        return f"#{account}|{qualifier}{cid} {area:02d} {zone:03d}"
    if token == "SIA-DCS":
        number = "" if event is PanelEvent.PERIODIC_TEST else str(zone)
        return f"#{account}|Nri{area}/{sia}{number}"
    raise ValueError(f"no data block for token {token!r}")


@dataclass(frozen=True, slots=True)
class PanelSpec:
    """One installed panel: its account (and key), format, link and faults."""

    account: str
    key: bytes | None = None
    token: Literal["SIA-DCS", "ADM-CID"] = "SIA-DCS"
    transport: Literal["tcp", "udp"] = "tcp"
    #: TCP: one connection for many messages (else one connection per transmission).
    persistent: bool = True
    receiver: str | None = "0"
    line: str = "0"
    #: A wrong clock: the panel's time is this far ahead (negative: behind).
    clock_skew_s: float = 0.0
    #: Stamp unencrypted messages too (encrypted ones always are).
    timestamps: bool = True
    test_interval_s: float | None = None
    ack_timeout_s: float = ACK_TIMEOUT_S
    reconnect_delay_s: float = 1.0
    #: Give up after this many transmissions of one message (None: never).
    max_attempts: int | None = None


@dataclass(slots=True)
class Delivery:
    """One message's fate: sequence, attempts, the last answer, and when."""

    seq: str
    data: str
    started_at: float
    attempts: int = 0
    naks: int = 0
    answer: str | None = None  # ACK, DUH, … or None (never answered)
    answered_at: float | None = None
    answer_timestamp: datetime | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def acked(self) -> bool:
        return self.answer == "ACK"

    @property
    def latency_s(self) -> float | None:
        """From the first transmission to the acknowledgement."""
        return None if self.answered_at is None else self.answered_at - self.started_at


class _UdpLink(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.answers: asyncio.Queue[bytes] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Python 3.11's selector transport is not a DatagramTransport subclass.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.answers.put_nowait(data)

    def error_received(self, exc: Exception) -> None:  # nothing listens (yet): just retry
        log.debug("panel UDP error: %s", exc)


class Dc09Panel:
    """A panel reporting to the DC-09 receiver at ``host:port``; see the module."""

    def __init__(
        self,
        spec: PanelSpec,
        host: str,
        port: int,
        *,
        rng: random.Random | None = None,
        first_seq: int = 1,
    ) -> None:
        if not 1 <= first_seq <= 9999:
            raise ValueError("sequence numbers run 0001-9999")
        self.spec = spec
        self.host = host
        self.port = port
        self.rng = rng or random.Random()
        self._next_seq = first_seq
        self._clock_offset_s = spec.clock_skew_s
        self._lock = asyncio.Lock()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._buffer = b""
        self._udp: _UdpLink | None = None
        self.transmissions = 0
        self.connections = 0
        self.deliveries: list[Delivery] = []

    # -- what the panel knows --------------------------------------------------------------------

    def now(self) -> datetime:
        """The panel's clock (wrong by ``clock_skew_s`` until a NAK corrects it)."""
        return datetime.now(UTC) + timedelta(seconds=self._clock_offset_s)

    def take_seq(self) -> str:
        """The next message's sequence number: 0001 … 9999, then 0001 again."""
        seq = self._next_seq
        self._next_seq = 1 if seq >= 9999 else seq + 1
        return f"{seq:04d}"

    def reboot(self) -> None:
        """Power cycle: numbering restarts at 0001 and the connection is gone."""
        self._next_seq = 1
        self._drop_connection()

    def encode(self, seq: str, data: str, xdata: Sequence[str] = (), token: str = "") -> bytes:
        spec = self.spec
        stamp = self.now() if spec.key is not None or spec.timestamps else None
        return encode_message(
            token or spec.token,
            seq,
            spec.account,
            data,
            xdata,
            receiver=spec.receiver,
            line=spec.line,
            key=spec.key,
            timestamp=stamp,
            rng=self.rng,
        )

    # -- sending ---------------------------------------------------------------------------------

    async def report(
        self, event: PanelEvent, zone: int = 1, area: int = 1, xdata: Sequence[str] = ()
    ) -> Delivery:
        """Send one event; returns once it is acknowledged (or refused, or given up)."""
        data = event_data(self.spec.token, self.spec.account, event, zone, area)
        return await self.send(data, xdata)

    async def null(self) -> Delivery:
        """A NULL link test."""
        return await self.send("", (), token="NULL")

    async def send(self, data: str, xdata: Sequence[str] = (), token: str = "") -> Delivery:
        """One message (raw data block), retransmitted until an answer settles it."""
        async with self._lock:
            delivery = Delivery(self.take_seq(), data, time.monotonic())
            self.deliveries.append(delivery)
            await self._deliver(delivery, xdata, token)
            return delivery

    async def _deliver(self, delivery: Delivery, xdata: Sequence[str], token: str) -> None:
        spec = self.spec
        while spec.max_attempts is None or delivery.attempts < spec.max_attempts:
            delivery.attempts += 1
            frame = self.encode(delivery.seq, delivery.data, xdata, token)
            try:
                answer = await self._transmit(frame, delivery.seq)
            except (OSError, ConnectionError, asyncio.IncompleteReadError) as exc:
                delivery.errors.append(f"{type(exc).__name__}: {exc}")
                self._drop_connection()
                await asyncio.sleep(spec.reconnect_delay_s)
                continue
            if answer is None:
                continue  # no answer in time: send again
            if answer.kind == "NAK":
                delivery.naks += 1
                if answer.timestamp is not None:  # take the receiver's time, then resend
                    self._clock_offset_s = (answer.timestamp - datetime.now(UTC)).total_seconds()
                if delivery.naks > 1:  # the correction did not help: do not hammer
                    await asyncio.sleep(spec.reconnect_delay_s)
                continue
            delivery.answer = answer.kind
            delivery.answer_timestamp = answer.timestamp
            delivery.answered_at = time.monotonic()
            return

    async def _transmit(self, frame: bytes, seq: str) -> Answer | None:
        """Send once and wait for the answer to ``seq`` (or a NAK); None when none came."""
        self.transmissions += 1
        if self.spec.transport == "udp":
            return await self._transmit_udp(frame, seq)
        if not self.spec.persistent:
            self._drop_connection()
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
            self._buffer = b""
            self.connections += 1
        self._writer.write(frame)
        await self._writer.drain()
        try:
            async with asyncio.timeout(self.spec.ack_timeout_s):
                while True:
                    answer = self._answer_for(seq, await self._read_frame())
                    if answer is not None:
                        return answer
        except TimeoutError:
            # A late answer would match the retransmission's sequence: start clean.
            self._drop_connection()
            return None
        finally:
            if not self.spec.persistent:
                self._drop_connection()

    async def _read_frame(self) -> bytes:
        assert self._reader is not None
        while b"\r" not in self._buffer:
            chunk = await self._reader.read(_ANSWER_BYTES)
            if not chunk:
                raise ConnectionError("the receiver closed the connection")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\r")
        start = line.rfind(b"\n")
        return (line[start:] if start >= 0 else line) + b"\r"

    async def _transmit_udp(self, frame: bytes, seq: str) -> Answer | None:
        if self._udp is None:
            loop = asyncio.get_running_loop()
            _transport, self._udp = await loop.create_datagram_endpoint(
                _UdpLink, remote_addr=(self.host, self.port)
            )
        assert self._udp.transport is not None
        self._udp.transport.sendto(frame)
        try:
            async with asyncio.timeout(self.spec.ack_timeout_s):
                while True:
                    answer = self._answer_for(seq, await self._udp.answers.get())
                    if answer is not None:
                        return answer
        except TimeoutError:
            return None

    def _answer_for(self, seq: str, raw: bytes) -> Answer | None:
        try:
            answer = parse_answer(raw, self.spec.key)
        except FrameError as exc:
            log.debug("panel %s: unreadable answer (%s)", self.spec.account, exc)
            return None
        if answer.kind == "NAK" or answer.seq == seq:
            return answer
        return None  # a late answer to an earlier transmission

    def _drop_connection(self) -> None:
        if self._writer is not None:
            self._writer.transport.abort()
        self._reader = self._writer = None
        self._buffer = b""

    async def run_tests(self) -> None:
        """The periodic automatic test report, every ``test_interval_s``, until cancelled."""
        interval = self.spec.test_interval_s
        if interval is None:
            raise ValueError("this panel has no test interval")
        while True:
            await asyncio.sleep(interval)
            await self.report(PanelEvent.PERIODIC_TEST, zone=0, area=0)

    async def close(self) -> None:
        self._drop_connection()
        if self._udp is not None and self._udp.transport is not None:
            self._udp.transport.close()
        self._udp = None

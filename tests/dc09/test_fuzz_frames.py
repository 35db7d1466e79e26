"""Fuzzed input never crashes the DC-09 parser or the receiver (DESIGN §6.5, §14).

Pure functions get arbitrary bytes and mutations of valid frames: the only failure allowed is
``FrameError``. The receiver runs on real sockets in a thread of its own (so Hypothesis can
drive it from a plain test) and gets fuzzed lines over TCP and UDP; after each, a good frame
on the same connection must still be answered, and the frame handler must never have failed.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alertnet.ingest.dc09.codes import dedup_key
from alertnet.ingest.dc09.frame import (
    Envelope,
    FrameError,
    crc16,
    encode_message,
    open_envelope,
    parse_answer,
    parse_frame,
)
from alertnet.ingest.dc09.intake import classify
from alertnet.ingest.dc09.receiver import FrameSplitter, Receiver, ReceiverLimits

from .helpers import ReferenceIntake

FUZZ = settings(
    database=None,
    deadline=None,
    max_examples=150,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
KEY = bytes(range(32))
STAMP = datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC)
VALID = [
    encode_message("SIA-DCS", 1, "1234", "#1234|Nri1/BA501", receiver="0"),
    encode_message("ADM-CID", 2, "1234", "#1234|1130 01 015", ["X1", "Y2"], line="A"),
    encode_message("NULL", 0, "1234", "", timestamp=STAMP),
    encode_message("SIA-DCS", 3, "BEEF", "#BEEF|Nri1/HA", key=KEY, timestamp=STAMP),
    encode_message("ADM-CID", 4, "BEEF", "#BEEF|1121 01 001", key=KEY, timestamp=STAMP),
]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid frame with bytes flipped, inserted, deleted or the ends cut."""
    raw = bytearray(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, max(0, len(raw) - 1)))
        action = draw(st.sampled_from(["flip", "insert", "delete", "cut"]))
        if action == "flip" and raw:
            raw[position] = draw(st.integers(0, 255))
        elif action == "insert":
            raw[position:position] = draw(st.binary(min_size=1, max_size=8))
        elif action == "delete" and raw:
            del raw[position]
        else:
            raw = raw[:position] if draw(st.booleans()) else raw[position:]
    return bytes(raw)


lines = st.one_of(st.binary(max_size=300), mutated())


def opened(envelope: Envelope) -> None:
    try:
        message = open_envelope(envelope, KEY)
    except FrameError:
        return
    classify(envelope.token, message.data)
    assert dedup_key(envelope.token, envelope.seq, message.data, message.xdata).startswith("dc09:")


@FUZZ
@given(lines)
def test_parse_frame_only_fails_with_frame_error(raw: bytes) -> None:
    try:
        envelope = parse_frame(raw)
    except FrameError as exc:
        assert exc.reason in {"bad_crc", "bad_length", "malformed"}
        return
    opened(envelope)


@FUZZ
@given(st.sampled_from([b"SIA-DCS", b"ADM-CID", b"NULL"]), st.binary(max_size=120))
def test_valid_framing_around_any_body(token: bytes, body: bytes) -> None:
    for star in (b"", b"*"):
        span = b'"' + star + token + b'"0001L0#1234[' + body
        raw = b"\n%04X%04X%s\r" % (crc16(span), len(span), span)
        try:
            envelope = parse_frame(raw)
        except FrameError as exc:
            assert exc.reason == "malformed"
            continue
        opened(envelope)


@FUZZ
@given(st.text(alphabet="0123456789ABCDEF", max_size=8).map(lambda t: t * 8))
def test_open_any_ciphertext(cipher_hex: str) -> None:
    envelope = Envelope("SIA-DCS", True, "0001", None, "0", "1234", cipher_hex, b"")
    for key in (KEY, bytes(16), bytes(24), b"bad"):
        try:
            open_envelope(envelope, key)
        except FrameError as exc:
            assert exc.reason in {"decrypt_failed", "bad_timestamp"}


@FUZZ
@given(lines)
def test_parse_answer_only_fails_with_frame_error(raw: bytes) -> None:
    try:
        parse_answer(raw, KEY)
    except FrameError:
        pass


@FUZZ
@given(st.lists(st.binary(max_size=40), max_size=12), st.integers(1, 2048))
def test_splitter_bounds_and_chunking(chunks: list[bytes], max_line: int) -> None:
    whole = FrameSplitter(max(32, max_line))
    stream = b"".join(chunks)
    expected = whole.feed(stream) + whole.flush()
    piecewise = FrameSplitter(max(32, max_line))
    got = [piece for chunk in chunks for piece in piecewise.feed(chunk)] + piecewise.flush()
    assert got == expected
    for piece in got:
        assert len(piece.data) <= max(32, max_line) + 1
        if piece.kind == "frame":
            assert piece.data.startswith(b"\n") and piece.data.endswith(b"\r")
            assert b"\n" not in piece.data[1:]


# -- the receiver, on real sockets ----------------------------------------------------------------


@dataclass
class Running:
    receiver: Receiver
    intake: ReferenceIntake
    loop: asyncio.AbstractEventLoop

    @property
    def port(self) -> int:
        assert self.receiver.tcp_port is not None
        return self.receiver.tcp_port


@pytest.fixture(scope="module")
def running() -> Iterator[Running]:
    intake = ReferenceIntake({"1234": None, "BEEF": KEY})
    loop = asyncio.new_event_loop()
    receiver = Receiver(
        "127.0.0.1",
        0,
        intake.on_frame,
        intake.on_garbage,
        limits=ReceiverLimits(max_garbage_bytes=10**9, max_line_bytes=512),
    )
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(receiver.start(), loop).result(10)
    try:
        yield Running(receiver, intake, loop)
    finally:
        asyncio.run_coroutine_threadsafe(receiver.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


class AnswerReader:
    """Answer frames from one TCP socket, in order."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def next(self) -> bytes:
        while b"\r" not in self.buffer:
            chunk = self.sock.recv(4096)
            assert chunk, "the receiver closed the connection"
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\r")
        return line + b"\r"


@FUZZ
@given(st.lists(lines, min_size=1, max_size=5), st.integers(1, 9999))
def test_receiver_survives_fuzzed_tcp_lines(running: Running, junk: list[bytes], seq: int) -> None:
    good = encode_message("SIA-DCS", seq, "1234", "#1234|Nri1/BA501")
    with socket.create_connection(("127.0.0.1", running.port), timeout=30) as sock:
        sock.sendall(b"".join(junk))
        sock.sendall(good)
        # Fuzzed bytes may hold answerable frames of their own: read until ours comes.
        answers = AnswerReader(sock)
        while True:
            answer = parse_answer(answers.next(), KEY)
            if answer.seq == f"{seq:04d}" and answer.kind == "ACK" and answer.account == "1234":
                break
    assert running.receiver.stats.handler_errors == 0


@FUZZ
@given(lines, st.integers(1, 9999))
def test_receiver_survives_fuzzed_datagrams(running: Running, junk: bytes, seq: int) -> None:
    good = encode_message("ADM-CID", seq, "BEEF", "#BEEF|1130 01 015", key=KEY)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(30)
        sock.connect(("127.0.0.1", running.port))
        if junk:
            sock.send(junk)
        sock.send(good)
        while True:
            answer = parse_answer(sock.recv(65536), KEY)
            if answer.seq == f"{seq:04d}" and answer.kind == "ACK":
                break
    assert running.receiver.stats.handler_errors == 0

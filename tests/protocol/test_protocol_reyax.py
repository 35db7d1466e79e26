"""REYAX AT-module serial lines (DESIGN §2.5): parsing, formatting and line splitting."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alertnet.protocol import (
    MAX_LINE_BYTES,
    DecodeError,
    LineSplitter,
    ModuleStatus,
    Reason,
    Received,
    format_rcv,
    format_send,
    parse_line,
)

from ._strategies import PROPERTY

FRAME_HEX = b"0170b3d57ed00012340000002a010057000033667bfe"
FRAME = bytes.fromhex(FRAME_HEX.decode())
RCV_LINE = b"+RCV=7,44," + FRAME_HEX + b",-97,8"


def reason_of(call: Any, *args: Any) -> Reason:
    with pytest.raises(DecodeError) as info:
        call(*args)
    return info.value.reason


def test_rcv_line() -> None:
    assert parse_line(RCV_LINE) == Received(7, FRAME, -97, 8.0)
    assert parse_line(RCV_LINE + b"\r") == Received(7, FRAME, -97, 8.0)
    assert parse_line(RCV_LINE.upper()) == Received(7, FRAME, -97, 8.0)
    assert parse_line(b"+RCV=65535,2,ff,-120,-12.5") == Received(65535, b"\xff", -120, -12.5)
    assert parse_line(b"+RCV=0,0,,0,0") == Received(0, b"", 0, 0.0)


def test_module_status_lines() -> None:
    assert parse_line(b"+OK") == ModuleStatus("ok", None)
    assert parse_line(b"+OK\r") == ModuleStatus("ok", None)
    assert parse_line(b"+READY") == ModuleStatus("ready", None)
    assert parse_line(b"+ERR=4") == ModuleStatus("error", 4)
    assert parse_line(b"+ERR=12\r") == ModuleStatus("error", 12)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"", Reason.BAD_LINE),
        (b"\r", Reason.BAD_LINE),
        (b"OK", Reason.BAD_LINE),
        (b"+OK ", Reason.BAD_LINE),
        (b"+ok", Reason.BAD_LINE),
        (b"+ERR=", Reason.BAD_LINE),
        (b"+ERR=x", Reason.BAD_LINE),
        (b"+ERR=-1", Reason.BAD_LINE),
        (b"+RCV=7,44," + FRAME_HEX + b",-97", Reason.BAD_LINE),
        (b"+RCV=7,44," + FRAME_HEX + b",-97,8,1", Reason.BAD_LINE),
        (b"+RCV=7,44," + FRAME_HEX + b",x,8", Reason.BAD_LINE),
        (b"+RCV=7,44," + FRAME_HEX + b",-97,8.", Reason.BAD_LINE),
        (b"+RCV=7,44," + FRAME_HEX + b",-97,1e3", Reason.BAD_LINE),
        (b"+RCV=-7,44," + FRAME_HEX + b",-97,8", Reason.BAD_LINE),
        (b"+RCV=65536,44," + FRAME_HEX + b",-97,8", Reason.BAD_LINE),
        (b"+RCV=7,44," + FRAME_HEX + b",-999,8", Reason.BAD_LINE),
        (b"+RCV=7,44," + FRAME_HEX + b",-97,999", Reason.BAD_LINE),
        (b"+RCV= 7,44," + FRAME_HEX + b",-97,8", Reason.BAD_LINE),
        (b"+RCV=7,,," + FRAME_HEX + b",-97,8", Reason.BAD_LINE),
        (b"+RCV=7,44," + FRAME_HEX + b",-97,8\r\r", Reason.BAD_LINE),
        (b"+RCV=7,4\xe9," + FRAME_HEX + b",-97,8", Reason.BAD_LINE),
        (b"\x00\xff\xfe garbage", Reason.BAD_LINE),
        (b"+RCV=7,43," + FRAME_HEX + b",-97,8", Reason.LENGTH_MISMATCH),
        (b"+RCV=7,46," + FRAME_HEX + b",-97,8", Reason.LENGTH_MISMATCH),
        (b"+RCV=7,3,abc,-97,8", Reason.BAD_HEX),
        (b"+RCV=7,4,zz00,-97,8", Reason.BAD_HEX),
        (b"+RCV=7,4,00 0,-97,8", Reason.BAD_HEX),
        (b"+OK" + b" " * MAX_LINE_BYTES, Reason.LINE_TOO_LONG),
        (b"x" * (MAX_LINE_BYTES + 1), Reason.LINE_TOO_LONG),
        (b"x" * MAX_LINE_BYTES + b"\r", Reason.LINE_TOO_LONG),
    ],
)
def test_bad_lines(line: bytes, reason: Reason) -> None:
    assert reason_of(parse_line, line) is reason


def test_format_send() -> None:
    ack = bytes.fromhex("8170b3d57ed00012340000002a01952c5ddb")
    assert format_send(ack) == b"AT+SEND=0,36,8170b3d57ed00012340000002a01952c5ddb\r\n"
    assert format_send(b"\xab", address=12) == b"AT+SEND=12,2,ab\r\n"
    assert reason_of(format_send, b"") is Reason.BAD_LENGTH
    assert reason_of(format_send, bytes(121)) is Reason.BAD_LENGTH
    assert reason_of(format_send, b"\x00", 65536) is Reason.BAD_FIELD


def test_format_rcv() -> None:
    assert format_rcv(7, FRAME, -97, 8) == RCV_LINE + b"\r\n"
    assert format_rcv(7, b"\x01", -97, 7.5) == b"+RCV=7,2,01,-97,7.5\r\n"
    assert format_rcv(7, b"\x01", -97, -0.25) == b"+RCV=7,2,01,-97,-0.25\r\n"
    assert reason_of(format_rcv, 7, bytes(120), -97, 8) is Reason.LINE_TOO_LONG
    assert reason_of(format_rcv, 7, b"\x01", -300, 8) is Reason.BAD_FIELD


def test_module_status_validation() -> None:
    assert reason_of(ModuleStatus, "error", None) is Reason.BAD_FIELD
    assert reason_of(ModuleStatus, "ok", 3) is Reason.BAD_FIELD
    assert reason_of(ModuleStatus, "boom", None) is Reason.BAD_FIELD


# --- LineSplitter -----------------------------------------------------------------------


def test_splitter_basics() -> None:
    splitter = LineSplitter()
    assert splitter.feed(b"+OK\r\n+RC") == [b"+OK"]
    assert splitter.pending == 3
    assert splitter.feed(b"V=1,2,ab,-1,2\r") == []
    assert splitter.feed(b"\n\r\n\n+READY\n") == [b"+RCV=1,2,ab,-1,2", b"+READY"]
    assert splitter.pending == 0


def test_splitter_flags_and_skips_an_overlong_line() -> None:
    splitter = LineSplitter()
    out = splitter.feed(b"+OK\n" + b"A" * 1000)
    assert out == [b"+OK", b"A" * (MAX_LINE_BYTES + 1)]
    assert reason_of(parse_line, out[1]) is Reason.LINE_TOO_LONG
    assert splitter.pending == 0
    for _ in range(1000):  # a stream without newlines never grows the buffer
        assert splitter.feed(b"B" * 1000) == []
        assert splitter.pending == 0
    assert splitter.feed(b"tail\n+READY\n") == [b"+READY"]


def test_splitter_line_of_exactly_max_bytes() -> None:
    line = b"x" * MAX_LINE_BYTES
    splitter = LineSplitter()
    assert splitter.feed(line) == []
    assert splitter.pending == MAX_LINE_BYTES
    assert splitter.feed(b"\r\n") == [line + b"\r"]  # 241 bytes with its \r: too long
    assert splitter.feed(line + b"\n") == [line]


def test_splitter_reset_returns_the_partial_line() -> None:
    splitter = LineSplitter()
    splitter.feed(b"+OK\n+RCV=7,4")
    assert splitter.reset() == b"+RCV=7,4"
    assert splitter.pending == 0
    assert splitter.feed(b"4\n") == [b"4"]


def reference_lines(stream: bytes) -> list[bytes]:
    """What the splitter must return for a whole stream.

    Complete lines come back without their \\r; an over-long line comes back cut, even the
    unfinished last one (it is reported as soon as it overflows).
    """
    *complete, unfinished = stream.split(b"\n")
    lines = []
    for raw in complete:
        if len(raw) > MAX_LINE_BYTES:
            lines.append(raw[: MAX_LINE_BYTES + 1])
        elif raw.removesuffix(b"\r"):
            lines.append(raw.removesuffix(b"\r"))
    if len(unfinished) > MAX_LINE_BYTES:
        lines.append(unfinished[: MAX_LINE_BYTES + 1])
    return lines


stream_pieces = st.one_of(
    st.sampled_from([b"\n", b"\r\n", b"\r", b"+OK", b"+ERR=4", RCV_LINE]),
    st.binary(max_size=20),
    st.integers(MAX_LINE_BYTES - 2, MAX_LINE_BYTES + 3).map(lambda n: b"y" * n),
    st.integers(MAX_LINE_BYTES, 3 * MAX_LINE_BYTES).map(lambda n: b"z" * n),
)


@PROPERTY
@given(st.lists(stream_pieces, max_size=25).map(b"".join), st.data())
def test_splitter_is_chunking_invariant(stream: bytes, data: st.DataObject) -> None:
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=12)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    splitter = LineSplitter()
    lines = [line for chunk in chunks for line in splitter.feed(chunk)]
    assert lines == reference_lines(stream)
    assert all(0 < len(line) <= MAX_LINE_BYTES + 1 for line in lines)
    assert splitter.pending <= MAX_LINE_BYTES
    for line in lines:
        try:
            parse_line(line)
        except DecodeError:
            pass


# --- properties -------------------------------------------------------------------------


@PROPERTY
@given(
    st.integers(0, 65535),
    st.binary(max_size=100),
    st.integers(-255, 255),
    st.integers(-10000, 10000).map(lambda n: n / 100),
)
def test_rcv_round_trip(address: int, data: bytes, rssi: int, snr: float) -> None:
    line = format_rcv(address, data, rssi, snr)
    assert line.endswith(b"\r\n")
    splitter = LineSplitter()
    assert splitter.feed(line) == [line[:-2]]
    assert parse_line(line[:-2]) == Received(address, data, rssi, snr)


@PROPERTY
@given(
    st.binary(max_size=300)
    | st.lists(
        st.sampled_from([b"+RCV=", b"+ERR=", b"+OK", b",", b"-", b"1", b"44", b"ab", b".", b"\r"]),
        max_size=12,
    ).map(b"".join)
)
def test_any_line_parses_or_decode_error(line: bytes) -> None:
    try:
        parsed = parse_line(line)
    except DecodeError as error:
        assert error.reason in {
            Reason.BAD_LINE,
            Reason.LINE_TOO_LONG,
            Reason.LENGTH_MISMATCH,
            Reason.BAD_HEX,
        }
        return
    assert isinstance(parsed, Received | ModuleStatus)

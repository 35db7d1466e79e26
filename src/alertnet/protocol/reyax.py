"""The serial line protocol of REYAX RYLR-style LoRa AT modules (DESIGN §2.5).

A serial gateway reads lines such as ``+RCV=7,44,<hex frame>,-97,8`` from a UART module and
writes ``AT+SEND=...`` commands. This module splits the byte stream into lines and parses
them; every malformed line becomes a ``DecodeError`` so the bridge can quarantine it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

from alertnet.protocol._codec import (
    RSSI_MAX,
    RSSI_MIN,
    SNR_MAX,
    SNR_MIN,
    check_bytes,
    check_float,
    check_int,
    describe,
)
from alertnet.protocol.reasons import DecodeError, Reason

__all__ = [
    "MAX_ADDRESS",
    "MAX_LINE_BYTES",
    "MAX_PAYLOAD_HEX_CHARS",
    "LineSplitter",
    "ModuleStatus",
    "Received",
    "format_rcv",
    "format_send",
    "parse_line",
]

#: A longer line is noise (a real ``+RCV`` line for a 22-byte frame is ~70 bytes).
MAX_LINE_BYTES: Final = 240
#: REYAX modules carry at most 240 payload characters per ``AT+SEND``.
MAX_PAYLOAD_HEX_CHARS: Final = 240
MAX_ADDRESS: Final = 65535

_RCV = re.compile(
    rb"\+RCV=(?P<address>[0-9]{1,5}),(?P<length>[0-9]{1,3}),(?P<data>[^,]*),"
    rb"(?P<rssi>-?[0-9]{1,3}),(?P<snr>-?[0-9]{1,3}(?:\.[0-9]{1,2})?)"
)
_ERR = re.compile(rb"\+ERR=(?P<code>[0-9]{1,3})")
_HEX = re.compile(rb"(?:[0-9A-Fa-f]{2})*")
_PRINTABLE_ASCII = re.compile(rb"[\x20-\x7e]*")


@dataclass(frozen=True, slots=True)
class Received:
    """A packet the module received: sender address, frame bytes and signal quality."""

    address: int
    data: bytes
    rssi: int
    snr: float

    def __post_init__(self) -> None:
        check_int(self.address, 0, MAX_ADDRESS, "address")
        object.__setattr__(self, "data", check_bytes(self.data, "data"))
        check_int(self.rssi, RSSI_MIN, RSSI_MAX, "rssi")
        object.__setattr__(self, "snr", check_float(self.snr, SNR_MIN, SNR_MAX, "snr"))


@dataclass(frozen=True, slots=True)
class ModuleStatus:
    """``+OK``, ``+READY`` or ``+ERR=<code>`` from the module itself."""

    kind: Literal["ok", "error", "ready"]
    code: int | None = None

    def __post_init__(self) -> None:
        if self.kind == "error":
            check_int(self.code, 0, 999, "error code")
        elif self.kind in ("ok", "ready"):
            if self.code is not None:
                raise DecodeError(Reason.BAD_FIELD, f"+{self.kind.upper()} carries no code")
        else:
            raise DecodeError(Reason.BAD_FIELD, f"unknown module status {describe(self.kind)}")


def parse_line(line: bytes) -> Received | ModuleStatus:
    """Parse one line from the module, given without its ``\\n`` (a trailing ``\\r`` is fine).

    Errors: ``LINE_TOO_LONG`` (more than ``MAX_LINE_BYTES``, counting a trailing ``\\r``),
    ``LENGTH_MISMATCH`` (the length field is not the number of data characters), ``BAD_HEX``
    (data is not even-length hex), ``BAD_LINE`` (anything else not understood). An ``+ERR``
    line is returned as ``ModuleStatus("error", n)``: whether it is unsolicited (to be
    quarantined as ``MODULE_ERROR``) only the caller knows.
    """
    if not isinstance(line, bytes | bytearray | memoryview):
        raise DecodeError(Reason.BAD_LINE, f"line must be bytes, got {type(line).__name__}")
    raw = bytes(line)
    if len(raw) > MAX_LINE_BYTES:
        raise DecodeError(
            Reason.LINE_TOO_LONG, f"{len(raw)} bytes, starts {describe(raw[:32], 60)}"
        )
    text = raw.removesuffix(b"\r")
    if _PRINTABLE_ASCII.fullmatch(text) is None:
        raise DecodeError(Reason.BAD_LINE, f"not printable ASCII: {describe(text, 60)}")
    if text == b"+OK":
        return ModuleStatus("ok")
    if text == b"+READY":
        return ModuleStatus("ready")
    if (err := _ERR.fullmatch(text)) is not None:
        return ModuleStatus("error", int(err["code"]))
    rcv = _RCV.fullmatch(text)
    if rcv is None:
        raise DecodeError(Reason.BAD_LINE, f"not understood: {describe(text, 60)}")
    data = rcv["data"]
    if int(rcv["length"]) != len(data):
        raise DecodeError(
            Reason.LENGTH_MISMATCH,
            f"length field {int(rcv['length'])}, data has {len(data)} characters",
        )
    if _HEX.fullmatch(data) is None:
        raise DecodeError(Reason.BAD_HEX, f"data is not even-length hex: {describe(data, 60)}")
    try:
        return Received(
            address=int(rcv["address"]),
            data=bytes.fromhex(data.decode("ascii")),
            rssi=int(rcv["rssi"]),
            snr=float(rcv["snr"]),
        )
    except DecodeError as exc:  # a number out of range
        raise DecodeError(Reason.BAD_LINE, exc.detail) from exc


def _format_snr(snr: float) -> str:
    # Two decimals at most, so that parse_line reads back exactly what was written.
    return f"{snr:.2f}".rstrip("0").rstrip(".")


def format_rcv(address: int, data: bytes, rssi: int, snr: float) -> bytes:
    """The ``+RCV=...\\r\\n`` line a module prints for a packet (for simulators and tests).

    ``snr`` is written with at most two decimals.
    """
    packet = Received(address, data, rssi, snr)
    hex_data = packet.data.hex()
    line = (
        f"+RCV={packet.address},{len(hex_data)},{hex_data},{packet.rssi},{_format_snr(packet.snr)}"
    ).encode("ascii")
    if len(line) > MAX_LINE_BYTES:
        raise DecodeError(Reason.LINE_TOO_LONG, f"+RCV line would be {len(line)} bytes")
    return line + b"\r\n"


def format_send(data: bytes, address: int = 0) -> bytes:
    """The ``AT+SEND=<address>,<hex length>,<hex>\\r\\n`` command (lowercase hex).

    Address 0 is the broadcast every device listens on.
    """
    check_int(address, 0, MAX_ADDRESS, "address")
    hex_data = check_bytes(data, "data").hex()
    if not 0 < len(hex_data) <= MAX_PAYLOAD_HEX_CHARS:
        raise DecodeError(
            Reason.BAD_LENGTH,
            f"payload must be 1..{MAX_PAYLOAD_HEX_CHARS} hex characters, got {len(hex_data)}",
        )
    return f"AT+SEND={address},{len(hex_data)},{hex_data}\r\n".encode("ascii")


class LineSplitter:
    """Split a serial byte stream into lines, in bounded memory.

    ``feed`` returns the complete lines found so far, without ``\\n`` and a trailing ``\\r``;
    empty lines are skipped. A line that grows past ``MAX_LINE_BYTES`` (``\\r`` included) is
    returned once, cut to its first ``MAX_LINE_BYTES + 1`` bytes, as soon as it overflows;
    the rest of it, up to the next ``\\n``, is dropped. ``parse_line`` then rejects it as
    ``LINE_TOO_LONG``, so the caller has one path: ``parse_line`` on every returned line, and
    the raw bytes of each bad one are at hand for quarantine. How the stream is chunked does not
    change the lines returned.
    """

    __slots__ = ("_buffer", "_discarding")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._discarding = False

    @property
    def pending(self) -> int:
        """Bytes of the unfinished line held (never more than ``MAX_LINE_BYTES``)."""
        return len(self._buffer)

    def feed(self, chunk: bytes) -> list[bytes]:
        """Add bytes read from the port; return the lines they complete."""
        lines: list[bytes] = []
        start = 0
        end = len(chunk)
        while start < end:
            newline = chunk.find(b"\n", start)
            stop = end if newline < 0 else newline
            if self._discarding:
                if newline >= 0:
                    self._discarding = False
            else:
                room = MAX_LINE_BYTES + 1 - len(self._buffer)
                self._buffer += chunk[start : min(stop, start + room)]
                if len(self._buffer) > MAX_LINE_BYTES:
                    lines.append(bytes(self._buffer))
                    self._buffer.clear()
                    self._discarding = newline < 0
                elif newline >= 0:
                    line = bytes(self._buffer).removesuffix(b"\r")
                    self._buffer.clear()
                    if line:
                        lines.append(line)
            if newline < 0:
                break
            start = newline + 1
        return lines

    def reset(self) -> bytes:
        """Forget the unfinished line (the port went away) and return its bytes."""
        partial = bytes(self._buffer)
        self._buffer.clear()
        self._discarding = False
        return partial

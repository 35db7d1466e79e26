"""The SIA DC-09 frame (DESIGN §9.1): parse what a panel sends, build what alertnet answers.

``<LF><crc><0LLL>"<id>"<seq>[R<rcvr>]L<pref>#<acct>[<data>]{[<x-data>]}[_<timestamp>]<CR>``

- ``crc`` is CRC-16/ARC (reflected poly 0xA001, init 0) of the span from the first ``"`` to
  the byte before CR, ``0LLL`` that span's length; both 4 hex digits (uppercase when built,
  either case accepted).
- A ``*`` before the token marks AES-CBC: after ``[`` comes the hex of
  ``<pad>|<data>]<x-data>_<timestamp>`` (``crypto``), and the timestamp is required.

Receiving is two steps, so the caller can look the account up in between:
``parse_frame(raw) -> Envelope`` checks framing, length, CRC and the header and never needs a
key; ``open_envelope(envelope, key) -> Message`` decrypts (if ``*``) and splits data, x-data
and timestamp. Both fail only with ``FrameError(reason)``, ``reason`` one of ``REASONS``:

- ``bad_length`` / ``bad_crc``: framing damaged in transit; answer nothing (the panel retries).
- ``malformed``: CRC and length are right but the text is not DC-09 (the panel's format).
- ``no_key``: an encrypted message for an account without a key.
- ``decrypt_failed``: the ciphertext does not decrypt into a DC-09 body (wrong key).
- ``bad_timestamp``: an encrypted message without a readable timestamp (answer ``NAK``, as for
  one outside the window: ``timestamp_ok``).

Answers: ``ack`` (``*ACK`` with an encrypted timestamp for an encrypted message), ``nak``,
``duh``. ``encode_message`` builds a panel's message (the simulator, the tests), and
``parse_answer`` reads an answer the way a panel does. Pure: no I/O, no clock unless ``now``
is left out.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

from alertnet.protocol import dc09_crypto as crypto

__all__ = [
    "MAX_SEQ",
    "REASONS",
    "SUPPORTED_TOKENS",
    "TIMESTAMP_FUTURE_S",
    "TIMESTAMP_PAST_S",
    "Answer",
    "Envelope",
    "FrameError",
    "Message",
    "ack",
    "crc16",
    "duh",
    "encode_message",
    "format_timestamp",
    "nak",
    "open_envelope",
    "parse_answer",
    "parse_frame",
    "timestamp_ok",
]

LF: Final = 0x0A
CR: Final = 0x0D
SUPPORTED_TOKENS: Final = frozenset({"SIA-DCS", "ADM-CID", "NULL"})
REASONS: Final = frozenset(
    {"bad_crc", "bad_length", "malformed", "no_key", "decrypt_failed", "bad_timestamp"}
)
MAX_SEQ: Final = 9999
#: The receiver accepts an encrypted message stamped at most this long before its own clock…
TIMESTAMP_PAST_S: Final = 40.0
#: …and at most this long after it.
TIMESTAMP_FUTURE_S: Final = 20.0

_HEADER: Final = re.compile(
    r'"(?P<star>\*)?(?P<token>[A-Za-z0-9-]{1,16})"(?P<seq>[0-9]{4})'
    r"(?:R(?P<receiver>[0-9A-Fa-f]{1,6}))?L(?P<line>[0-9A-Fa-f]{1,6})"
    r"#(?P<account>[0-9A-Fa-f]{3,16})\[(?P<body>.*)",
    re.S,
)
# Printable ASCII without '[' and ']' (the delimiters): data and x-data characters.
_TEXT: Final = r"[\x20-\x5a\x5c\x5e-\x7e]"
_BODY: Final = re.compile(
    rf"(?P<data>{_TEXT}*)\](?P<xdata>(?:\[{_TEXT}+\])*)(?:_(?P<timestamp>{_TEXT}*))?", re.S
)
_XDATA_BLOCK: Final = re.compile(rf"\[({_TEXT}+)\]")
_TIMESTAMP: Final = re.compile(r"([0-9]{2}):([0-9]{2}):([0-9]{2}),([0-9]{2})-([0-9]{2})-([0-9]{4})")
_CIPHER_HEX: Final = re.compile(r"(?:[0-9A-Fa-f]{32})+")
_HEX4: Final = re.compile(rb"[0-9A-Fa-f]{4}")
_PRINTABLE: Final = re.compile(rb"[\x20-\x7e]*")
_ANSWER_HEADER: Final = re.compile(
    r'"(?P<star>\*)?(?P<kind>[A-Za-z-]{1,16})"(?P<seq>[0-9]{4})(?P<prefixes>[^\[]*)\[(?P<body>.*)',
    re.S,
)
# R, L and A carry hex digits, so "R0L0A0" is only unambiguous read lazily in this order.
_ANSWER_PREFIXES: Final = re.compile(
    r"(?:R(?P<receiver>[0-9A-Fa-f]+?))?(?:L(?P<line>[0-9A-Fa-f]+?))?"
    r"(?:A[0-9A-Fa-f]+|#(?P<account>[0-9A-Fa-f]+))?"
)


def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC_TABLE: Final = _crc_table()


def crc16(data: bytes) -> int:
    """CRC-16/ARC: reflected polynomial 0x8005 (0xA001), init 0, no final XOR."""
    crc = 0
    for byte in data:
        crc = (crc >> 8) ^ _CRC_TABLE[(crc ^ byte) & 0xFF]
    return crc


class FrameError(ValueError):
    """A frame alertnet cannot take, with the reason it is quarantined under (``REASONS``)."""

    reason: str
    detail: str

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason, detail)
        self.reason = reason
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}" if self.detail else self.reason


@dataclass(frozen=True, slots=True)
class Message:
    """The opened body of a message.

    ``data`` is the text between ``[`` and ``]`` as sent (``#1234|Nri1/BA501``,
    ``1130 01 015``, ``""`` for NULL); ``xdata`` each ``[...]`` block after it, without the
    brackets; ``timestamp`` the sender's clock (UTC, aware) or None; ``pad`` the pad bytes of an
    encrypted message (never part of the message's identity).
    """

    data: str
    xdata: tuple[str, ...] = ()
    timestamp: datetime | None = None
    pad: bytes = b""


@dataclass(frozen=True, slots=True)
class Envelope:
    """A frame whose length, CRC and header are right; its body is not opened yet.

    ``token`` without the ``*`` (``encrypted`` says whether there was one); ``seq`` the four
    digits as sent (echoed, never range-checked); ``receiver`` the hex digits after ``R`` or
    None; ``line`` those after ``L``; ``account`` the 3-16 hex digits after ``#`` exactly as
    sent (echo it; compare it upper-cased); ``body`` the text after ``[`` — the plain body, or
    the ciphertext hex; ``raw`` the frame bytes as received.
    """

    token: str
    encrypted: bool
    seq: str
    receiver: str | None
    line: str
    account: str
    body: str
    raw: bytes
    _plain: Message | None = field(default=None, repr=False, compare=False)

    @property
    def supported(self) -> bool:
        """Whether alertnet processes this token (else the answer is ``DUH``)."""
        return self.token in SUPPORTED_TOKENS


@dataclass(frozen=True, slots=True)
class Answer:
    """A receiver's answer as a panel reads it (``parse_answer``)."""

    kind: str  # ACK, NAK, DUH, RSP, …
    encrypted: bool
    seq: str
    receiver: str | None
    line: str | None
    account: str | None
    timestamp: datetime | None
    raw: bytes


# -- framing ------------------------------------------------------------------------------------


def _unframe(raw: bytes) -> str:
    """The span between the length field and CR, once length and CRC are right."""
    inner = raw[1:] if raw[:1] == b"\n" else raw
    if inner[-1:] == b"\r":
        inner = inner[:-1]
    if len(inner) < 8 or not _HEX4.fullmatch(inner[:4]) or not _HEX4.fullmatch(inner[4:8]):
        raise FrameError("malformed", "no CRC and length fields after LF")
    span = inner[8:]
    declared = int(inner[4:8], 16)
    if declared != len(span):
        raise FrameError("bad_length", f"length field says {declared}, the span has {len(span)}")
    sent_crc = int(inner[:4], 16)
    if crc16(span) != sent_crc:
        raise FrameError("bad_crc", f"CRC field {sent_crc:04X}, computed {crc16(span):04X}")
    if not _PRINTABLE.fullmatch(span):
        raise FrameError("malformed", "bytes outside printable ASCII")
    return span.decode("ascii")


def _frame(span: str) -> bytes:
    body = span.encode("ascii")
    return b"\n%04X%04X%s\r" % (crc16(body), len(body), body)


# -- bodies -------------------------------------------------------------------------------------


def format_timestamp(moment: datetime) -> str:
    """``HH:MM:SS,MM-DD-YYYY`` in UTC."""
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return moment.astimezone(UTC).strftime("%H:%M:%S,%m-%d-%Y")


def _parse_timestamp(text: str) -> datetime | None:
    match = _TIMESTAMP.fullmatch(text)
    if match is None:
        return None
    hour, minute, second, month, day, year = (int(part) for part in match.groups())
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError:
        return None


class _BadTimestamp(ValueError):
    pass


def _parse_body(text: str, pad: bytes = b"") -> Message:
    """``<data>]{[<x-data>]}[_<timestamp>]``; ValueError (``_BadTimestamp``) when it is not."""
    match = _BODY.fullmatch(text)
    if match is None:
        raise ValueError("body is not <data>]{[x-data]}[_timestamp]")
    timestamp: datetime | None = None
    if match["timestamp"] is not None:
        timestamp = _parse_timestamp(match["timestamp"])
        if timestamp is None:
            raise _BadTimestamp(f"unreadable timestamp {match['timestamp'][:24]!r}")
    xdata = tuple(_XDATA_BLOCK.findall(match["xdata"]))
    return Message(match["data"], xdata, timestamp, pad)


def parse_frame(raw: bytes) -> Envelope:
    """One frame (``LF … CR``; either delimiter may be missing) → its envelope.

    Checks in order: the CRC and length fields exist (``malformed``), the length
    (``bad_length``), the CRC (``bad_crc``), then the header and — for an unencrypted message —
    the whole body (``malformed``). An unknown token is not an error: ``Envelope.supported``.
    """
    span = _unframe(raw)
    match = _HEADER.fullmatch(span)
    if match is None:
        raise FrameError("malformed", 'header is not "<id>"<seq>[R…]L…#<acct>[')
    encrypted = match["star"] is not None
    body = match["body"]
    plain: Message | None = None
    if encrypted:
        if not _CIPHER_HEX.fullmatch(body):
            raise FrameError("malformed", "encrypted body is not hex of whole AES blocks")
    else:
        try:
            plain = _parse_body(body)
        except ValueError as exc:
            raise FrameError("malformed", str(exc)) from exc
    return Envelope(
        token=match["token"],
        encrypted=encrypted,
        seq=match["seq"],
        receiver=match["receiver"],
        line=match["line"],
        account=match["account"],
        body=body,
        raw=raw,
        _plain=plain,
    )


def open_envelope(envelope: Envelope, key: bytes | None) -> Message:
    """The message inside: decrypted with ``key`` when the envelope is encrypted.

    An unencrypted envelope opens without a key (a key given is not used: whether an account
    with a key may send in the clear is the caller's policy).
    """
    if not envelope.encrypted:
        if envelope._plain is not None:
            return envelope._plain
        try:
            return _parse_body(envelope.body)
        except ValueError as exc:  # an Envelope built by hand
            raise FrameError("malformed", str(exc)) from exc
    if key is None:
        raise FrameError("no_key", f"account {envelope.account} has no key")
    try:
        plaintext = crypto.decrypt(key, bytes.fromhex(envelope.body))
        pad, rest = crypto.strip_pad(plaintext)
    except (crypto.CryptoError, ValueError) as exc:
        raise FrameError("decrypt_failed", str(exc)) from exc
    if not _PRINTABLE.fullmatch(rest):
        raise FrameError("decrypt_failed", "plaintext is not printable ASCII (wrong key?)")
    try:
        message = _parse_body(rest.decode("ascii"), pad)
    except _BadTimestamp as exc:
        raise FrameError("bad_timestamp", str(exc)) from exc
    except ValueError as exc:
        raise FrameError("decrypt_failed", str(exc)) from exc
    if message.timestamp is None:
        raise FrameError("bad_timestamp", "an encrypted message must carry a timestamp")
    return message


def timestamp_ok(timestamp: datetime, now: datetime) -> bool:
    """Within the window of an encrypted message: -40 s to +20 s of the receiver's clock."""
    return (
        now - timedelta(seconds=TIMESTAMP_PAST_S)
        <= timestamp
        <= now + timedelta(seconds=TIMESTAMP_FUTURE_S)
    )


# -- answers ------------------------------------------------------------------------------------


def _echo(envelope: Envelope) -> str:
    receiver = f"R{envelope.receiver}" if envelope.receiver is not None else ""
    return f"{envelope.seq}{receiver}L{envelope.line}#{envelope.account}"


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


def ack(
    envelope: Envelope,
    key: bytes | None = None,
    now: datetime | None = None,
    *,
    pad: bytes | None = None,
    rng: random.Random | None = None,
) -> bytes:
    """``"ACK"<seq>[R…]L…#<acct>[]``; for an encrypted message ``"*ACK"…[`` + HEX(AES(
    ``<pad>|]_<now>``)) with the key the message was opened with."""
    if not envelope.encrypted:
        return _frame(f'"ACK"{_echo(envelope)}[]')
    if key is None:
        raise ValueError("an encrypted message is acknowledged with its account's key")
    rest = f"]_{format_timestamp(_now(now))}".encode("ascii")
    ciphertext = crypto.encrypt(key, crypto.add_pad(rest, pad, rng))
    return _frame(f'"*ACK"{_echo(envelope)}[{ciphertext.hex().upper()}')


def nak(now: datetime | None = None) -> bytes:
    """``"NAK"0000R0L0A0[]_<now>``: the receiver's clock, for a panel whose time is off."""
    return _frame(f'"NAK"0000R0L0A0[]_{format_timestamp(_now(now))}')


def duh(envelope: Envelope) -> bytes:
    """``"DUH"<seq>[R…]L…#<acct>[]``, never encrypted: unknown account or unsupported token."""
    return _frame(f'"DUH"{_echo(envelope)}[]')


# -- the panel's side ---------------------------------------------------------------------------


def encode_message(
    token: str,
    seq: int | str,
    account: str,
    data: str,
    xdata: Sequence[str] = (),
    receiver: str | None = None,
    line: str = "0",
    key: bytes | None = None,
    timestamp: datetime | None = None,
    pad: bytes | None = None,
    rng: random.Random | None = None,
) -> bytes:
    """A panel's message, framed. With ``key`` it is encrypted (``"*<token>"``) and stamped
    (``timestamp`` or now); without, stamped only when ``timestamp`` is given. ``pad`` (tests)
    overrides the random pad."""
    number = int(seq)
    if not 0 <= number <= MAX_SEQ:
        raise ValueError(f"sequence {seq!r} is not 0000-9999")
    blocks = "".join(f"[{block}]" for block in xdata)
    prefix = f"R{receiver}" if receiver is not None else ""
    header = f"{number:04d}{prefix}L{line}#{account}["
    if key is None:
        stamp = f"_{format_timestamp(timestamp)}" if timestamp is not None else ""
        span = f'"{token}"{header}{data}]{blocks}{stamp}'
    else:
        rest = f"{data}]{blocks}_{format_timestamp(_now(timestamp))}".encode("ascii")
        ciphertext = crypto.encrypt(key, crypto.add_pad(rest, pad, rng))
        span = f'"*{token}"{header}{ciphertext.hex().upper()}'
    if not _HEADER.fullmatch(span):
        raise ValueError(f"not a valid DC-09 message: {span[:80]!r}")
    return _frame(span)


def parse_answer(raw: bytes, key: bytes | None = None) -> Answer:
    """A receiver's answer (``ACK``, ``*ACK``, ``NAK``, ``DUH``, …) as a panel reads it.

    Lenient where receivers differ (prefix order, ``A0`` for the account, ``*ACK`` pad without
    ``|``), strict on length and CRC. ``FrameError`` as ``parse_frame``.
    """
    span = _unframe(raw)
    match = _ANSWER_HEADER.fullmatch(span)
    if match is None:
        raise FrameError("malformed", "not an answer")
    prefixes = _ANSWER_PREFIXES.fullmatch(match["prefixes"])  # None: an unusual order
    encrypted = match["star"] is not None
    body = match["body"]
    if encrypted:
        if key is None:
            raise FrameError("no_key", "an encrypted answer needs the key")
        if not _CIPHER_HEX.fullmatch(body):
            raise FrameError("malformed", "encrypted answer is not hex of whole AES blocks")
        try:
            _pad, rest = crypto.strip_pad(
                crypto.decrypt(key, bytes.fromhex(body)), require_bar=False
            )
            body = rest.decode("ascii")
        except (crypto.CryptoError, UnicodeDecodeError) as exc:
            raise FrameError("decrypt_failed", str(exc)) from exc
    timestamp: datetime | None = None
    stamp_at = body.rfind("]_")
    if stamp_at >= 0:
        timestamp = _parse_timestamp(body[stamp_at + 2 :])
    return Answer(
        kind=match["kind"],
        encrypted=encrypted,
        seq=match["seq"],
        receiver=prefixes["receiver"] if prefixes else None,
        line=prefixes["line"] if prefixes else None,
        account=prefixes["account"] if prefixes else None,
        timestamp=timestamp,
        raw=raw,
    )

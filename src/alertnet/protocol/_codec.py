"""Shared validation and JSON/hex helpers for the protocol codecs.

Kept private so that each public module states its own rules while all of them turn bad input
into ``DecodeError`` the same way (and never leak ``TypeError``, ``RecursionError`` and kin).
"""

from __future__ import annotations

import json
import math
import re
from typing import NoReturn

import orjson

from alertnet.protocol.reasons import DecodeError, Reason

#: JSON payloads (uplink, downlink, gateway messages) are ~100 bytes; anything this large is junk.
MAX_JSON_BYTES = 1024

#: Bounds that any radio's RSSI (dBm) and SNR (dB) fit in; they keep garbage out of the database.
RSSI_MIN, RSSI_MAX = -255, 255
SNR_MIN, SNR_MAX = -100.0, 100.0

_EUI_ANY_CASE = re.compile(r"[0-9A-Fa-f]{16}")
_EUI_LOWER = re.compile(r"[0-9a-f]{16}")
_HEX_ANY_CASE = re.compile(r"(?:[0-9A-Fa-f]{2})*")


def describe(value: object, limit: int = 40) -> str:
    """A short, always-printable rendering of a rejected value for error details."""
    try:
        text = repr(value)
    except ValueError:  # ints beyond sys.get_int_max_str_digits()
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def is_lower_eui(value: object) -> bool:
    """True for 16 lowercase hex characters, the canonical EUI spelling."""
    return isinstance(value, str) and _EUI_LOWER.fullmatch(value) is not None


def normalize_eui(value: object) -> str:
    """Return the canonical (lowercase) EUI for 16 hex characters in any case.

    Raises ``DecodeError(BAD_FIELD)`` for anything else.
    """
    if not isinstance(value, str) or _EUI_ANY_CASE.fullmatch(value) is None:
        raise DecodeError(Reason.BAD_FIELD, f"EUI must be 16 hex characters, got {describe(value)}")
    return value.lower()


def check_int(
    value: object, low: int, high: int, what: str, reason: Reason = Reason.BAD_FIELD
) -> int:
    """Return ``value`` if it is a real ``int`` (not ``bool``) in ``low..high``."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise DecodeError(
            reason, f"{what} must be an integer in {low}..{high}, got {describe(value)}"
        )
    return value


def check_float(value: object, low: float, high: float, what: str) -> float:
    """Return ``value`` as a finite ``float`` in ``low..high`` (ints are accepted, bools not)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DecodeError(Reason.BAD_FIELD, f"{what} must be a number, got {describe(value)}")
    number = float(value) if isinstance(value, float) else _int_to_float(value, what)
    if not math.isfinite(number) or not low <= number <= high:
        raise DecodeError(
            Reason.BAD_FIELD, f"{what} must be in {low}..{high}, got {describe(value)}"
        )
    return number


def _int_to_float(value: int, what: str) -> float:
    try:
        return float(value)
    except OverflowError as exc:
        raise DecodeError(Reason.BAD_FIELD, f"{what} is out of range") from exc


def check_bytes(value: object, what: str) -> bytes:
    """Return ``value`` as immutable ``bytes`` (bytearray and memoryview are copied)."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    raise DecodeError(Reason.BAD_FIELD, f"{what} must be bytes, got {type(value).__name__}")


def decode_hex(text: object, what: str, reason: Reason = Reason.BAD_HEX) -> bytes:
    """Decode an even-length hex string (either case); anything else is ``reason``."""
    if not isinstance(text, str):
        raise DecodeError(Reason.BAD_FIELD, f"{what} must be a hex string, got {describe(text)}")
    if _HEX_ANY_CASE.fullmatch(text) is None:
        raise DecodeError(reason, f"{what} is not an even-length hex string: {describe(text)}")
    return bytes.fromhex(text)


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate key in object")
    return result


def load_json_object(data: bytes, what: str) -> dict[str, object]:
    """Parse a UTF-8 JSON object strictly (no NaN/Infinity, no duplicate keys, bounded size).

    Uplinks and gateway copies arrive thousands a second, so orjson parses first (~1 µs against
    ~19 µs). Its result stands only where it must equal the standard library's: orjson keeps
    the last of repeated keys silently, and every member of every object puts exactly one
    ``:`` outside strings into the text, so a text with no more colons than the result has
    keys repeated none; and orjson reads an integer beyond 64 bits as a float, so a float that
    large sends the text the slow way too. Everything else (orjson refuses it, a colon inside
    a string) goes through the standard library, which decides and words every rejection as
    it always has.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise DecodeError(Reason.MALFORMED_JSON, f"{what} must be bytes")
    if len(data) > MAX_JSON_BYTES:
        raise DecodeError(
            Reason.BAD_LENGTH, f"{what} is {len(data)} bytes, more than {MAX_JSON_BYTES}"
        )
    raw = bytes(data)
    try:
        fast: object = orjson.loads(raw)
    except (ValueError, RecursionError):  # orjson.JSONDecodeError is a ValueError
        fast = None
    if isinstance(fast, dict) and raw.count(b":") == _keys_if_exact(fast):
        return fast
    return _load_json_object_strictly(raw, what)


#: orjson turns integer literals outside [-2**63, 2**64) into floats at least this large.
_FLOAT_FROM_BIG_INT = float(2**63)


def _keys_if_exact(value: object) -> int | None:
    """Keys of every object in an orjson result; None if a float may be an integer it read."""
    if isinstance(value, float):
        return None if not abs(value) < _FLOAT_FROM_BIG_INT else 0
    if isinstance(value, dict):
        members: list[object] = list(value.values())
        own = len(value)
    elif isinstance(value, list):
        members, own = value, 0
    else:
        return 0
    total = own
    for member in members:
        keys = _keys_if_exact(member)
        if keys is None:
            return None
        total += keys
    return total


def _load_json_object_strictly(raw: bytes, what: str) -> dict[str, object]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError(Reason.MALFORMED_JSON, f"{what} is not UTF-8") from exc
    try:
        value: object = json.loads(
            text, object_pairs_hook=_unique_keys, parse_constant=_reject_constant
        )
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        raise DecodeError(Reason.MALFORMED_JSON, f"{what}: {describe(str(exc), 80)}") from exc
    if not isinstance(value, dict):
        raise DecodeError(Reason.MALFORMED_JSON, f"{what} must be a JSON object")
    return value


def require_keys(obj: dict[str, object], keys: tuple[str, ...], what: str) -> None:
    """Raise ``MALFORMED_JSON`` naming every missing key."""
    missing = [key for key in keys if key not in obj]
    if missing:
        raise DecodeError(Reason.MALFORMED_JSON, f"{what} lacks {', '.join(missing)}")


def dump_json(obj: dict[str, object]) -> bytes:
    """Compact JSON in insertion order, ASCII-only (the on-the-wire form)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode(
        "ascii"
    )

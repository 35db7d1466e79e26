"""Uplink and downlink frames of wire protocol v1 (DESIGN §2.1, §2.2): codecs and MICs.

Decoders take untrusted bytes and return a frame or raise ``DecodeError`` with a quarantine
reason — never any other exception — so no malformed input can crash an ingest loop.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import re
import struct
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Self

from alertnet.protocol._codec import (
    check_bytes,
    check_int,
    describe,
    dump_json,
    is_lower_eui,
    load_json_object,
    normalize_eui,
    require_keys,
)
from alertnet.protocol.reasons import DecodeError, Reason

__all__ = [
    "BATTERY_UNKNOWN",
    "DOWNLINK_LEN",
    "DOWNLINK_TYPE",
    "FLAG_DRILL",
    "FLAG_RETRANSMISSION",
    "KNOWN_FLAGS",
    "MIC_LEN",
    "PROTOCOL_VERSION",
    "UPLINK_LEN",
    "AckState",
    "Downlink",
    "EventCode",
    "Uplink",
    "WireFormat",
    "compute_mic",
    "decode_downlink",
    "decode_downlink_json",
    "decode_uplink",
    "decode_uplink_any",
    "decode_uplink_json",
    "normalize_eui",
]

UPLINK_LEN = 22
DOWNLINK_LEN = 18
PROTOCOL_VERSION = 1
#: First byte of a binary downlink ack (distinguishes it from an uplink's version byte).
DOWNLINK_TYPE = 0x81
MIC_LEN = 4
BATTERY_UNKNOWN = 255
FLAG_RETRANSMISSION = 0x01
FLAG_DRILL = 0x02
KNOWN_FLAGS = FLAG_RETRANSMISSION | FLAG_DRILL

_UINT16_MAX = 0xFFFF
_UINT32_MAX = 0xFFFF_FFFF
# version, EUI, counter, event, flags, battery, age: bytes 0..17 of an uplink.
_UPLINK_SIGNED = struct.Struct(">BQIBBBH")
# 0x81, EUI, counter, state: bytes 0..13 of a downlink.
_DOWNLINK_SIGNED = struct.Struct(">BQIB")
_MIC_HEX = re.compile(r"[0-9A-Fa-f]{8}")
_JSON_WHITESPACE = b" \t\r\n"


class EventCode(IntEnum):
    """What happened at the device (frame byte 13)."""

    PANIC = 0x01
    INTRUSION = 0x02
    FIRE = 0x03
    MEDICAL = 0x04
    TAMPER = 0x10
    MAINS_LOST = 0x11
    MAINS_RESTORED = 0x12
    LOW_BATTERY = 0x13
    HEARTBEAT = 0x20
    TEST = 0x21
    CANCEL = 0x30

    @property
    def contact_id(self) -> str:
        """The SIA Contact ID event code, for alarm-receiving-centre interoperability."""
        return _CONTACT_IDS[self]

    @property
    def wire_name(self) -> str:
        """The name used in the JSON form, e.g. ``"mains_lost"``."""
        return self.name.lower()

    @classmethod
    def from_wire_name(cls, name: str) -> EventCode:
        """The event named ``name`` in the JSON form; ``DecodeError(UNKNOWN_EVENT)`` otherwise."""
        event = _EVENTS_BY_WIRE_NAME.get(name) if isinstance(name, str) else None
        if event is None:
            raise DecodeError(Reason.UNKNOWN_EVENT, f"unknown event {describe(name)}")
        return event

    @classmethod
    def from_code(cls, code: int) -> EventCode:
        """The event with wire code ``code``; ``DecodeError(UNKNOWN_EVENT)`` otherwise."""
        event = _EVENTS_BY_CODE.get(code) if isinstance(code, int) else None
        if event is None or isinstance(code, bool):
            raise DecodeError(Reason.UNKNOWN_EVENT, f"unknown event code {describe(code)}")
        return event


_CONTACT_IDS: dict[EventCode, str] = {
    EventCode.PANIC: "120",
    EventCode.INTRUSION: "130",
    EventCode.FIRE: "110",
    EventCode.MEDICAL: "100",
    EventCode.TAMPER: "137",
    EventCode.MAINS_LOST: "301",
    EventCode.MAINS_RESTORED: "301R",
    EventCode.LOW_BATTERY: "302",
    EventCode.HEARTBEAT: "602",
    EventCode.TEST: "601",
    EventCode.CANCEL: "406",
}
_EVENTS_BY_WIRE_NAME: dict[str, EventCode] = {event.wire_name: event for event in EventCode}
_EVENTS_BY_CODE: dict[int, EventCode] = {event.value: event for event in EventCode}


class AckState(IntEnum):
    """Progress of an alarm as reported back to the device (downlink byte 13)."""

    RECEIVED = 1
    DISPATCHED = 2
    ACCEPTED = 3
    ON_SCENE = 4
    CLOSED = 5

    @property
    def wire_name(self) -> str:
        """The name used in the JSON form, e.g. ``"on_scene"``."""
        return self.name.lower()

    @classmethod
    def from_wire_name(cls, name: str) -> AckState:
        """The state named ``name``; ``DecodeError(BAD_FIELD)`` otherwise."""
        state = _STATES_BY_WIRE_NAME.get(name) if isinstance(name, str) else None
        if state is None:
            raise DecodeError(Reason.BAD_FIELD, f"unknown ack state {describe(name)}")
        return state

    @classmethod
    def from_code(cls, code: int) -> AckState:
        """The state with wire code ``code``; ``DecodeError(BAD_FIELD)`` otherwise."""
        state = _STATES_BY_CODE.get(code) if isinstance(code, int) else None
        if state is None or isinstance(code, bool):
            raise DecodeError(Reason.BAD_FIELD, f"unknown ack state code {describe(code)}")
        return state


_STATES_BY_WIRE_NAME: dict[str, AckState] = {state.wire_name: state for state in AckState}
_STATES_BY_CODE: dict[int, AckState] = {state.value: state for state in AckState}


class WireFormat(StrEnum):
    """How a device spoke to us; the downlink ack answers in the same form."""

    BINARY = "binary"
    JSON = "json"


def compute_mic(key: bytes, signed: bytes) -> bytes:
    """The 4-byte message integrity code: HMAC-SHA256(key, signed) truncated."""
    return hmac.new(key, signed, hashlib.sha256).digest()[:MIC_LEN]


def _check_eui(value: object) -> None:
    if not is_lower_eui(value):
        raise DecodeError(
            Reason.BAD_FIELD, f"EUI must be 16 lowercase hex characters, got {describe(value)}"
        )


def _check_mic(value: object) -> bytes:
    mic = check_bytes(value, "mic")
    if len(mic) != MIC_LEN:
        raise DecodeError(Reason.BAD_FIELD, f"mic must be {MIC_LEN} bytes, got {len(mic)}")
    return mic


def _eui_int(eui: str) -> int:
    return int(eui, 16)


@dataclass(frozen=True, slots=True)
class Uplink:
    """A device's message (DESIGN §2.1). Construction validates every field."""

    eui: str
    counter: int
    event: EventCode
    flags: int
    battery: int
    age_s: int
    mic: bytes

    def __post_init__(self) -> None:
        _check_eui(self.eui)
        check_int(self.counter, 0, _UINT32_MAX, "counter")
        if not isinstance(self.event, EventCode):
            object.__setattr__(self, "event", EventCode.from_code(self.event))
        flags = check_int(self.flags, 0, 0xFF, "flags", Reason.BAD_FLAGS)
        if flags & ~KNOWN_FLAGS:
            raise DecodeError(Reason.BAD_FLAGS, f"unknown flag bits 0x{flags & ~KNOWN_FLAGS:02x}")
        battery = check_int(self.battery, 0, BATTERY_UNKNOWN, "battery")
        if 100 < battery < BATTERY_UNKNOWN:
            raise DecodeError(
                Reason.BAD_FIELD, f"battery must be 0..100 or {BATTERY_UNKNOWN}, got {battery}"
            )
        check_int(self.age_s, 0, _UINT16_MAX, "age_s")
        object.__setattr__(self, "mic", _check_mic(self.mic))

    @property
    def retransmission(self) -> bool:
        """The device sent this counter before and got no ack."""
        return bool(self.flags & FLAG_RETRANSMISSION)

    @property
    def drill(self) -> bool:
        """A training event: routed like a real one, marked DRILL, left out of statistics."""
        return bool(self.flags & FLAG_DRILL)

    def signed_bytes(self) -> bytes:
        """Bytes 0..17 of the binary frame, the input of the MIC in both wire forms."""
        return _UPLINK_SIGNED.pack(
            PROTOCOL_VERSION,
            _eui_int(self.eui),
            self.counter,
            self.event,
            self.flags,
            self.battery,
            self.age_s,
        )

    def to_bytes(self) -> bytes:
        """The 22-byte binary frame."""
        return self.signed_bytes() + self.mic

    def to_json(self) -> bytes:
        """The compact JSON form, keys in the order of DESIGN §2.1."""
        return dump_json(
            {
                "v": PROTOCOL_VERSION,
                "dev": self.eui,
                "cnt": self.counter,
                "ev": self.event.wire_name,
                "flags": self.flags,
                "bat": self.battery,
                "age": self.age_s,
                "mic": self.mic.hex(),
            }
        )

    def encode(self, fmt: WireFormat) -> bytes:
        """The frame in the given wire form."""
        return self.to_json() if fmt is WireFormat.JSON else self.to_bytes()

    def verify(self, key: bytes) -> bool:
        """True when the MIC matches ``key`` (constant-time comparison)."""
        return hmac.compare_digest(compute_mic(key, self.signed_bytes()), self.mic)

    @classmethod
    def build(
        cls,
        key: bytes,
        eui: str,
        counter: int,
        event: EventCode,
        *,
        flags: int = 0,
        battery: int = BATTERY_UNKNOWN,
        age_s: int = 0,
    ) -> Self:
        """A signed uplink, as a device would send it."""
        unsigned = cls(eui, counter, event, flags, battery, age_s, bytes(MIC_LEN))
        return dataclasses.replace(unsigned, mic=compute_mic(key, unsigned.signed_bytes()))


@dataclass(frozen=True, slots=True)
class Downlink:
    """An acknowledgement to a device (DESIGN §2.2). Construction validates every field."""

    eui: str
    counter: int
    state: AckState
    mic: bytes

    def __post_init__(self) -> None:
        _check_eui(self.eui)
        check_int(self.counter, 0, _UINT32_MAX, "counter")
        if not isinstance(self.state, AckState):
            object.__setattr__(self, "state", AckState.from_code(self.state))
        object.__setattr__(self, "mic", _check_mic(self.mic))

    def signed_bytes(self) -> bytes:
        """Bytes 0..13 of the binary ack, the input of the MIC in both wire forms."""
        return _DOWNLINK_SIGNED.pack(DOWNLINK_TYPE, _eui_int(self.eui), self.counter, self.state)

    def to_bytes(self) -> bytes:
        """The 18-byte binary ack."""
        return self.signed_bytes() + self.mic

    def to_json(self) -> bytes:
        """The compact JSON form; it carries no EUI (the topic names the device)."""
        return dump_json(
            {
                "v": PROTOCOL_VERSION,
                "cnt": self.counter,
                "state": self.state.wire_name,
                "mic": self.mic.hex(),
            }
        )

    def encode(self, fmt: WireFormat) -> bytes:
        """The ack in the form the device used for its uplink."""
        return self.to_json() if fmt is WireFormat.JSON else self.to_bytes()

    def verify(self, key: bytes) -> bool:
        """True when the MIC matches ``key`` (constant-time comparison)."""
        return hmac.compare_digest(compute_mic(key, self.signed_bytes()), self.mic)

    @classmethod
    def build(cls, key: bytes, eui: str, counter: int, state: AckState) -> Self:
        """A signed ack for ``counter``."""
        unsigned = cls(eui, counter, state, bytes(MIC_LEN))
        return dataclasses.replace(unsigned, mic=compute_mic(key, unsigned.signed_bytes()))


def _check_frame_bytes(data: object, expected: int, what: str) -> bytes:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise DecodeError(Reason.BAD_LENGTH, f"{what} must be bytes, got {type(data).__name__}")
    frame = bytes(data)
    if len(frame) != expected:
        raise DecodeError(Reason.BAD_LENGTH, f"{what} is {len(frame)} bytes, expected {expected}")
    return frame


def decode_uplink(data: bytes) -> Uplink:
    """Decode a 22-byte binary uplink. The MIC is not checked here (see ``Uplink.verify``).

    Errors: ``BAD_LENGTH``, ``BAD_VERSION``, ``UNKNOWN_EVENT``, ``BAD_FLAGS``, ``BAD_FIELD``
    (battery 101..254).
    """
    frame = _check_frame_bytes(data, UPLINK_LEN, "uplink")
    version, eui, counter, code, flags, battery, age_s = _UPLINK_SIGNED.unpack_from(frame)
    if version != PROTOCOL_VERSION:
        raise DecodeError(Reason.BAD_VERSION, f"uplink version {version}, expected 1")
    return Uplink(
        eui=f"{eui:016x}",
        counter=counter,
        event=EventCode.from_code(code),
        flags=flags,
        battery=battery,
        age_s=age_s,
        mic=frame[_UPLINK_SIGNED.size :],
    )


def _json_version(obj: dict[str, object], what: str) -> None:
    version = obj["v"]
    if isinstance(version, bool) or not isinstance(version, int) or version != PROTOCOL_VERSION:
        raise DecodeError(Reason.BAD_VERSION, f"{what} version {describe(version)}, expected 1")


def _json_int(obj: dict[str, object], key: str, reason: Reason = Reason.BAD_FIELD) -> int:
    value = obj[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise DecodeError(reason, f'"{key}" must be an integer, got {describe(value)}')
    return value


def _json_mic(obj: dict[str, object]) -> bytes:
    text = obj["mic"]
    if not isinstance(text, str) or _MIC_HEX.fullmatch(text) is None:
        raise DecodeError(Reason.BAD_FIELD, f'"mic" must be 8 hex characters, got {describe(text)}')
    return bytes.fromhex(text)


_UPLINK_JSON_KEYS = ("v", "dev", "cnt", "ev", "flags", "bat", "age", "mic")
_DOWNLINK_JSON_KEYS = ("v", "cnt", "state", "mic")


def decode_uplink_json(data: bytes) -> Uplink:
    """Decode the JSON form of an uplink. The MIC is not checked here.

    All eight keys are required; unknown extra keys are ignored (room for future optional
    fields). ``dev`` and ``mic`` may be in either case; the result is lowercase. Errors:
    ``MALFORMED_JSON`` (not a UTF-8 JSON object, NaN/Infinity, duplicate or missing keys),
    ``BAD_LENGTH`` (over 1 KiB), ``BAD_VERSION``, ``UNKNOWN_EVENT``, ``BAD_FLAGS`` and
    ``BAD_FIELD`` (a wrong type — ``true`` and ``42.0`` are not integers — or range).
    """
    obj = load_json_object(data, "uplink")
    require_keys(obj, _UPLINK_JSON_KEYS, "uplink")
    _json_version(obj, "uplink")
    name = obj["ev"]
    if not isinstance(name, str):
        raise DecodeError(Reason.BAD_FIELD, f'"ev" must be a string, got {describe(name)}')
    return Uplink(
        eui=normalize_eui(obj["dev"]),
        counter=_json_int(obj, "cnt"),
        event=EventCode.from_wire_name(name),
        flags=_json_int(obj, "flags", Reason.BAD_FLAGS),
        battery=_json_int(obj, "bat"),
        age_s=_json_int(obj, "age"),
        mic=_json_mic(obj),
    )


def decode_uplink_any(data: bytes) -> tuple[Uplink, WireFormat]:
    """Decode either form: a payload whose first non-whitespace byte is ``{`` is JSON."""
    if isinstance(data, bytes | bytearray | memoryview):
        if bytes(data).lstrip(_JSON_WHITESPACE)[:1] == b"{":
            return decode_uplink_json(data), WireFormat.JSON
    return decode_uplink(data), WireFormat.BINARY


def decode_downlink(data: bytes) -> Downlink:
    """Decode an 18-byte binary ack. The MIC is not checked here (see ``Downlink.verify``)."""
    frame = _check_frame_bytes(data, DOWNLINK_LEN, "downlink")
    kind, eui, counter, code = _DOWNLINK_SIGNED.unpack_from(frame)
    if kind != DOWNLINK_TYPE:
        raise DecodeError(Reason.BAD_VERSION, f"downlink type 0x{kind:02x}, expected 0x81")
    return Downlink(
        eui=f"{eui:016x}",
        counter=counter,
        state=AckState.from_code(code),
        mic=frame[_DOWNLINK_SIGNED.size :],
    )


def decode_downlink_json(data: bytes, eui: str) -> Downlink:
    """Decode the JSON form of an ack for device ``eui`` (taken from the topic, any case)."""
    device = normalize_eui(eui)
    obj = load_json_object(data, "downlink")
    require_keys(obj, _DOWNLINK_JSON_KEYS, "downlink")
    _json_version(obj, "downlink")
    name = obj["state"]
    if not isinstance(name, str):
        raise DecodeError(Reason.BAD_FIELD, f'"state" must be a string, got {describe(name)}')
    return Downlink(
        eui=device,
        counter=_json_int(obj, "cnt"),
        state=AckState.from_wire_name(name),
        mic=_json_mic(obj),
    )

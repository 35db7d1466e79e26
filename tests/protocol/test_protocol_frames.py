"""Uplink/downlink codecs: DESIGN §2 test vectors, error reasons and property tests."""

from __future__ import annotations

import json
import pickle
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from alertnet.protocol import (
    DOWNLINK_LEN,
    UPLINK_LEN,
    AckState,
    DecodeError,
    Downlink,
    EventCode,
    Reason,
    Uplink,
    WireFormat,
    compute_mic,
    decode_downlink,
    decode_downlink_json,
    decode_uplink,
    decode_uplink_any,
    decode_uplink_json,
    normalize_eui,
)

from ._strategies import (
    EUI,
    KEY,
    PROPERTY,
    json_values,
    keys,
    signed_downlinks,
    signed_uplinks,
    to_json_bytes,
)

PANIC_HEX = "0170b3d57ed00012340000002a010057000033667bfe"
HEARTBEAT_HEX = "0170b3d57ed00012340000002b2000560000d053f3b7"
DOWNLINK_HEX = "8170b3d57ed00012340000002a01952c5ddb"
PANIC_JSON = (
    b'{"v":1,"dev":"70b3d57ed0001234","cnt":42,"ev":"panic","flags":0,"bat":87,"age":0,'
    b'"mic":"33667bfe"}'
)
DOWNLINK_JSON = b'{"v":1,"cnt":42,"state":"received","mic":"952c5ddb"}'


def panic() -> Uplink:
    return Uplink.build(KEY, EUI, 42, EventCode.PANIC, battery=87)


def panic_json(**changes: Any) -> bytes:
    obj: dict[str, Any] = json.loads(PANIC_JSON)
    obj.update(changes)
    return json.dumps(obj).encode()


def reason_of(call: Any, *args: Any) -> Reason:
    with pytest.raises(DecodeError) as info:
        call(*args)
    return info.value.reason


# --- DESIGN §2 test vectors -------------------------------------------------------------


def test_panic_vector_encodes() -> None:
    uplink = panic()
    assert uplink.to_bytes().hex() == PANIC_HEX
    assert uplink.signed_bytes() == bytes.fromhex(PANIC_HEX)[:18]
    assert uplink.mic == bytes.fromhex("33667bfe")
    assert uplink.to_json() == PANIC_JSON


def test_panic_vector_decodes() -> None:
    uplink = decode_uplink(bytes.fromhex(PANIC_HEX))
    assert uplink == Uplink(EUI, 42, EventCode.PANIC, 0, 87, 0, bytes.fromhex("33667bfe"))
    assert uplink.verify(KEY)
    assert not uplink.retransmission
    assert not uplink.drill
    assert decode_uplink_json(PANIC_JSON) == uplink


def test_heartbeat_vector() -> None:
    uplink = Uplink.build(KEY, EUI, 43, EventCode.HEARTBEAT, battery=86)
    assert uplink.to_bytes().hex() == HEARTBEAT_HEX
    decoded = decode_uplink(bytes.fromhex(HEARTBEAT_HEX))
    assert decoded == uplink
    assert decoded.event is EventCode.HEARTBEAT
    assert decoded.verify(KEY)


def test_downlink_vector() -> None:
    downlink = Downlink.build(KEY, EUI, 42, AckState.RECEIVED)
    assert downlink.to_bytes().hex() == DOWNLINK_HEX
    assert len(downlink.signed_bytes()) == 14
    assert downlink.to_json() == DOWNLINK_JSON
    assert downlink.encode(WireFormat.BINARY) == bytes.fromhex(DOWNLINK_HEX)
    assert downlink.encode(WireFormat.JSON) == DOWNLINK_JSON
    assert decode_downlink(bytes.fromhex(DOWNLINK_HEX)) == downlink
    assert decode_downlink_json(DOWNLINK_JSON, EUI) == downlink
    assert decode_downlink_json(DOWNLINK_JSON, EUI.upper()) == downlink
    assert downlink.verify(KEY)
    assert not downlink.verify(bytes(16))


def test_compute_mic_is_truncated_hmac_sha256() -> None:
    assert compute_mic(KEY, bytes.fromhex(PANIC_HEX)[:18]).hex() == "33667bfe"


def test_decode_any_detects_the_form() -> None:
    assert decode_uplink_any(bytes.fromhex(PANIC_HEX)) == (panic(), WireFormat.BINARY)
    assert decode_uplink_any(PANIC_JSON) == (panic(), WireFormat.JSON)
    assert decode_uplink_any(b" \r\n\t" + PANIC_JSON + b"\n") == (panic(), WireFormat.JSON)
    assert reason_of(decode_uplink_any, b"{") is Reason.MALFORMED_JSON
    assert reason_of(decode_uplink_any, b"") is Reason.BAD_LENGTH


def test_uplink_is_hashable_and_pickles() -> None:
    uplink = panic()
    assert {uplink: 1}[decode_uplink(uplink.to_bytes())] == 1
    assert pickle.loads(pickle.dumps(uplink)) == uplink


# --- event codes ------------------------------------------------------------------------


def test_event_codes_and_names() -> None:
    table = {
        EventCode.PANIC: (0x01, "120", "panic"),
        EventCode.INTRUSION: (0x02, "130", "intrusion"),
        EventCode.FIRE: (0x03, "110", "fire"),
        EventCode.MEDICAL: (0x04, "100", "medical"),
        EventCode.TAMPER: (0x10, "137", "tamper"),
        EventCode.MAINS_LOST: (0x11, "301", "mains_lost"),
        EventCode.MAINS_RESTORED: (0x12, "301R", "mains_restored"),
        EventCode.LOW_BATTERY: (0x13, "302", "low_battery"),
        EventCode.HEARTBEAT: (0x20, "602", "heartbeat"),
        EventCode.TEST: (0x21, "601", "test"),
        EventCode.CANCEL: (0x30, "406", "cancel"),
    }
    assert set(table) == set(EventCode)
    for event, (code, contact_id, name) in table.items():
        assert event.value == code
        assert event.contact_id == contact_id
        assert event.wire_name == name
        assert EventCode.from_wire_name(name) is event
        assert EventCode.from_code(code) is event


@pytest.mark.parametrize("name", ["PANIC", "Panic", "", "burglary", " panic"])
def test_unknown_event_name(name: str) -> None:
    assert reason_of(EventCode.from_wire_name, name) is Reason.UNKNOWN_EVENT


def test_ack_state_names() -> None:
    assert [s.wire_name for s in AckState] == [
        "received",
        "dispatched",
        "accepted",
        "on_scene",
        "closed",
    ]
    assert [s.value for s in AckState] == [1, 2, 3, 4, 5]
    assert reason_of(AckState.from_wire_name, "done") is Reason.BAD_FIELD
    assert reason_of(AckState.from_code, 0) is Reason.BAD_FIELD


# --- binary errors ----------------------------------------------------------------------


def patched(offset: int, value: int) -> bytes:
    frame = bytearray.fromhex(PANIC_HEX)
    frame[offset] = value
    return bytes(frame)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", Reason.BAD_LENGTH),
        (bytes.fromhex(PANIC_HEX)[:-1], Reason.BAD_LENGTH),
        (bytes.fromhex(PANIC_HEX) + b"\0", Reason.BAD_LENGTH),
        (patched(0, 0x02), Reason.BAD_VERSION),
        (patched(0, 0x81), Reason.BAD_VERSION),
        (patched(13, 0x05), Reason.UNKNOWN_EVENT),
        (patched(13, 0x00), Reason.UNKNOWN_EVENT),
        (patched(14, 0x04), Reason.BAD_FLAGS),
        (patched(14, 0x80), Reason.BAD_FLAGS),
        (patched(15, 101), Reason.BAD_FIELD),
        (patched(15, 254), Reason.BAD_FIELD),
    ],
)
def test_binary_uplink_errors(data: bytes, reason: Reason) -> None:
    assert reason_of(decode_uplink, data) is reason
    assert reason_of(decode_uplink_any, data) is reason


def test_flags_and_battery_edges() -> None:
    assert decode_uplink(patched(14, 0x03)).retransmission
    assert decode_uplink(patched(14, 0x03)).drill
    assert decode_uplink(patched(15, 100)).battery == 100
    assert decode_uplink(patched(15, 255)).battery == 255
    assert decode_uplink(patched(15, 0)).battery == 0


def test_binary_downlink_errors() -> None:
    frame = bytes.fromhex(DOWNLINK_HEX)
    assert reason_of(decode_downlink, frame[:-1]) is Reason.BAD_LENGTH
    assert reason_of(decode_downlink, b"\x01" + frame[1:]) is Reason.BAD_VERSION
    assert reason_of(decode_downlink, frame[:13] + b"\x06" + frame[14:]) is Reason.BAD_FIELD
    assert reason_of(decode_downlink, frame[:13] + b"\x00" + frame[14:]) is Reason.BAD_FIELD


def test_decoders_accept_bytearray_and_memoryview() -> None:
    frame = bytes.fromhex(PANIC_HEX)
    # Typed as bytes, but a serial or socket buffer handed over as-is must work too.
    assert decode_uplink(bytearray(frame)) == panic()  # type: ignore[arg-type]
    view = decode_uplink(memoryview(frame))  # type: ignore[arg-type]
    assert view.mic == frame[18:]
    assert type(view.mic) is bytes


# --- JSON errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", Reason.MALFORMED_JSON),
        (b"{", Reason.MALFORMED_JSON),
        (b"[]", Reason.MALFORMED_JSON),
        (b'"panic"', Reason.MALFORMED_JSON),
        (b"\xff{}", Reason.MALFORMED_JSON),
        (b'{"v":1,"v":1}', Reason.MALFORMED_JSON),
        (PANIC_JSON.replace(b'"age":0', b'"age":NaN'), Reason.MALFORMED_JSON),
        (PANIC_JSON.replace(b'"age":0', b'"age":Infinity'), Reason.MALFORMED_JSON),
        (PANIC_JSON.replace(b'"v":1,', b""), Reason.MALFORMED_JSON),
        (PANIC_JSON.replace(b',"mic":"33667bfe"', b""), Reason.MALFORMED_JSON),
        (PANIC_JSON.replace(b'"cnt":42', b'"cnt":42,"cnt":43'), Reason.MALFORMED_JSON),
        (b"{" + b" " * 2000 + b"}", Reason.BAD_LENGTH),
        (panic_json(v=2), Reason.BAD_VERSION),
        (panic_json(v="1"), Reason.BAD_VERSION),
        (panic_json(v=True), Reason.BAD_VERSION),
        (panic_json(v=1.0), Reason.BAD_VERSION),
        (panic_json(v=None), Reason.BAD_VERSION),
        (panic_json(dev="70b3d57ed000123"), Reason.BAD_FIELD),
        (panic_json(dev="70b3d57ed000123g"), Reason.BAD_FIELD),
        (panic_json(dev=12345), Reason.BAD_FIELD),
        (panic_json(dev="70b3d57ed0001234 "), Reason.BAD_FIELD),
        (panic_json(cnt=-1), Reason.BAD_FIELD),
        (panic_json(cnt=2**32), Reason.BAD_FIELD),
        (panic_json(cnt=42.0), Reason.BAD_FIELD),
        (panic_json(cnt="42"), Reason.BAD_FIELD),
        (panic_json(cnt=True), Reason.BAD_FIELD),
        (panic_json(cnt=10**300), Reason.BAD_FIELD),
        (panic_json(ev="PANIC"), Reason.UNKNOWN_EVENT),
        (panic_json(ev="burglary"), Reason.UNKNOWN_EVENT),
        (panic_json(ev=1), Reason.BAD_FIELD),
        (panic_json(ev=["panic"]), Reason.BAD_FIELD),
        (panic_json(flags=4), Reason.BAD_FLAGS),
        (panic_json(flags=-1), Reason.BAD_FLAGS),
        (panic_json(flags=256), Reason.BAD_FLAGS),
        (panic_json(flags=False), Reason.BAD_FLAGS),
        (panic_json(bat=101), Reason.BAD_FIELD),
        (panic_json(bat=254), Reason.BAD_FIELD),
        (panic_json(bat=87.5), Reason.BAD_FIELD),
        (panic_json(age=65536), Reason.BAD_FIELD),
        (panic_json(age=-1), Reason.BAD_FIELD),
        (panic_json(mic="33667bf"), Reason.BAD_FIELD),
        (panic_json(mic="33667bfe00"), Reason.BAD_FIELD),
        (panic_json(mic="33 67bfe"), Reason.BAD_FIELD),
        (panic_json(mic="zz667bfe"), Reason.BAD_FIELD),
        (panic_json(mic=None), Reason.BAD_FIELD),
    ],
)
def test_json_uplink_errors(data: bytes, reason: Reason) -> None:
    assert reason_of(decode_uplink_json, data) is reason


def test_json_uplink_normalizes_case_and_ignores_extra_keys() -> None:
    data = panic_json(dev=EUI.upper(), mic="33667BFE", rssi=-97, future={"x": [1]})
    uplink = decode_uplink_json(data)
    assert uplink == panic()
    assert uplink.eui == EUI


def test_json_downlink_errors() -> None:
    def downlink_json(**changes: Any) -> bytes:
        obj: dict[str, Any] = json.loads(DOWNLINK_JSON)
        obj.update(changes)
        return json.dumps(obj).encode()

    assert reason_of(decode_downlink_json, downlink_json(v=2), EUI) is Reason.BAD_VERSION
    assert reason_of(decode_downlink_json, downlink_json(state="done"), EUI) is Reason.BAD_FIELD
    assert reason_of(decode_downlink_json, downlink_json(state=1), EUI) is Reason.BAD_FIELD
    assert reason_of(decode_downlink_json, downlink_json(cnt=-1), EUI) is Reason.BAD_FIELD
    assert reason_of(decode_downlink_json, downlink_json(mic=""), EUI) is Reason.BAD_FIELD
    assert reason_of(decode_downlink_json, b"{}", EUI) is Reason.MALFORMED_JSON
    assert reason_of(decode_downlink_json, DOWNLINK_JSON, "not-an-eui") is Reason.BAD_FIELD


def test_recursion_error_maps_to_malformed_json(monkeypatch: pytest.MonkeyPatch) -> None:
    def too_deep(*args: object, **kwargs: object) -> object:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(json, "loads", too_deep)
    monkeypatch.setattr(orjson, "loads", too_deep)
    assert reason_of(decode_uplink_json, PANIC_JSON) is Reason.MALFORMED_JSON


def test_deeply_nested_json_is_rejected() -> None:
    nested = b'{"v":' + b"[" * 500 + b"]" * 500 + b"}"
    assert reason_of(decode_uplink_json, nested) is Reason.MALFORMED_JSON
    assert reason_of(decode_uplink_any, b"{" * 1000) is Reason.MALFORMED_JSON
    assert reason_of(decode_uplink_any, b"[" * 100_000) is Reason.BAD_LENGTH


# --- construction -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"eui": "70B3D57ED0001234"}, Reason.BAD_FIELD),
        ({"eui": "70b3d57ed00012"}, Reason.BAD_FIELD),
        ({"eui": 0x70B3D57ED0001234}, Reason.BAD_FIELD),
        ({"counter": -1}, Reason.BAD_FIELD),
        ({"counter": 2**32}, Reason.BAD_FIELD),
        ({"counter": True}, Reason.BAD_FIELD),
        ({"counter": 10**5000}, Reason.BAD_FIELD),
        ({"event": 0x99}, Reason.UNKNOWN_EVENT),
        ({"event": "panic"}, Reason.UNKNOWN_EVENT),
        ({"flags": 0x04}, Reason.BAD_FLAGS),
        ({"battery": 101}, Reason.BAD_FIELD),
        ({"battery": -1}, Reason.BAD_FIELD),
        ({"age_s": 70000}, Reason.BAD_FIELD),
        ({"mic": b"\0\0\0"}, Reason.BAD_FIELD),
        ({"mic": "33667bfe"}, Reason.BAD_FIELD),
    ],
)
def test_uplink_validation(changes: dict[str, Any], reason: Reason) -> None:
    fields: dict[str, Any] = {
        "eui": EUI,
        "counter": 42,
        "event": EventCode.PANIC,
        "flags": 0,
        "battery": 87,
        "age_s": 0,
        "mic": bytes(4),
    }
    fields.update(changes)
    with pytest.raises(DecodeError) as info:
        Uplink(**fields)
    assert info.value.reason is reason


def test_uplink_coerces_plain_event_code_and_bytearray_mic() -> None:
    uplink = Uplink(EUI, 42, 1, 0, 87, 0, bytearray(4))  # type: ignore[arg-type]
    assert uplink.event is EventCode.PANIC
    assert type(uplink.mic) is bytes


def test_downlink_validation() -> None:
    with pytest.raises(DecodeError) as info:
        Downlink(EUI, 42, 6, bytes(4))  # type: ignore[arg-type]
    assert info.value.reason is Reason.BAD_FIELD
    with pytest.raises(DecodeError):
        Downlink(EUI.upper(), 42, AckState.RECEIVED, bytes(4))
    assert Downlink(EUI, 1, 3, bytes(4)).state is AckState.ACCEPTED  # type: ignore[arg-type]


def test_normalize_eui() -> None:
    assert normalize_eui("70B3D57ED0001234") == EUI
    for bad in ("", "70b3d57ed000123", "70b3d57ed00012345", "0x70b3d57ed00012", "\u0660" * 16):
        with pytest.raises(DecodeError):
            normalize_eui(bad)


def test_decode_error_shape() -> None:
    error = DecodeError(Reason.BAD_MIC, "mic mismatch")
    assert isinstance(error, ValueError)
    assert str(error) == "bad_mic: mic mismatch"
    assert (error.reason, error.detail) == (Reason.BAD_MIC, "mic mismatch")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.reason, copy.detail) == (Reason.BAD_MIC, "mic mismatch")


def test_reason_values_are_snake_case_names() -> None:
    assert all(reason.value == reason.name.lower() for reason in Reason)
    required = {
        "bad_length", "bad_version", "bad_flags", "bad_field", "unknown_event",
        "malformed_json", "bad_mic", "unknown_device", "disabled_device", "eui_mismatch",
        "replay", "bad_topic", "bad_line", "line_too_long", "bad_hex", "length_mismatch",
        "module_error",
    }  # fmt: skip
    assert required <= {reason.value for reason in Reason}


# --- properties -------------------------------------------------------------------------


@PROPERTY
@given(signed_uplinks())
def test_uplink_round_trips_in_both_forms(signed: tuple[bytes, Uplink]) -> None:
    key, uplink = signed
    binary = uplink.to_bytes()
    assert len(binary) == UPLINK_LEN
    assert decode_uplink(binary) == uplink
    assert decode_uplink_json(uplink.to_json()) == uplink
    assert decode_uplink_any(binary) == (uplink, WireFormat.BINARY)
    assert decode_uplink_any(uplink.to_json()) == (uplink, WireFormat.JSON)
    assert uplink.encode(WireFormat.JSON) == uplink.to_json()
    assert decode_uplink(binary).verify(key)
    assert decode_uplink_json(uplink.to_json()).verify(key)


@PROPERTY
@given(signed_downlinks())
def test_downlink_round_trips_in_both_forms(signed: tuple[bytes, Downlink]) -> None:
    key, downlink = signed
    binary = downlink.to_bytes()
    assert len(binary) == DOWNLINK_LEN
    assert decode_downlink(binary) == downlink
    assert decode_downlink_json(downlink.to_json(), downlink.eui) == downlink
    assert decode_downlink(binary).verify(key)


@PROPERTY
@given(signed_uplinks(), st.data())
def test_flipping_any_uplink_byte_breaks_it(
    signed: tuple[bytes, Uplink], data: st.DataObject
) -> None:
    key, uplink = signed
    frame = bytearray(uplink.to_bytes())
    index = data.draw(st.integers(0, UPLINK_LEN - 1))
    frame[index] ^= data.draw(st.integers(1, 255))
    try:
        tampered = decode_uplink(bytes(frame))
    except DecodeError:
        return
    assert not tampered.verify(key)


@PROPERTY
@given(signed_downlinks(), st.data())
def test_flipping_any_downlink_byte_breaks_it(
    signed: tuple[bytes, Downlink], data: st.DataObject
) -> None:
    key, downlink = signed
    frame = bytearray(downlink.to_bytes())
    index = data.draw(st.integers(0, DOWNLINK_LEN - 1))
    frame[index] ^= data.draw(st.integers(1, 255))
    try:
        tampered = decode_downlink(bytes(frame))
    except DecodeError:
        return
    assert not tampered.verify(key)


@PROPERTY
@given(signed_uplinks(), keys)
def test_other_key_fails_verify(signed: tuple[bytes, Uplink], other: bytes) -> None:
    key, uplink = signed
    if other != key:
        assert not uplink.verify(other)


@PROPERTY
@given(st.binary(max_size=64) | st.binary(min_size=22, max_size=22))
def test_arbitrary_bytes_decode_or_decode_error(data: bytes) -> None:
    for decode in (decode_uplink, decode_uplink_json, decode_downlink):
        try:
            frame = decode(data)
        except DecodeError:
            continue
        if decode is not decode_uplink_json:
            assert frame.to_bytes() == data
    try:
        uplink, fmt = decode_uplink_any(data)
    except DecodeError:
        return
    assert isinstance(uplink, Uplink)
    assert fmt in WireFormat


@PROPERTY
@given(json_values)
def test_arbitrary_json_decodes_or_decode_error(value: object) -> None:
    data = to_json_bytes(value)
    for decode in (decode_uplink_json, decode_uplink_any):
        try:
            decode(data)
        except DecodeError:
            pass
    try:
        decode_downlink_json(data, EUI)
    except DecodeError:
        pass


@PROPERTY
@given(
    signed_uplinks(),
    st.sampled_from(["v", "dev", "cnt", "ev", "flags", "bat", "age", "mic", "extra"]),
    json_values,
)
def test_uplink_json_with_any_field_replaced(
    signed: tuple[bytes, Uplink], key: str, value: object
) -> None:
    obj = json.loads(signed[1].to_json())
    obj[key] = value
    try:
        uplink = decode_uplink_json(to_json_bytes(obj))
    except DecodeError:
        return
    assert json.loads(uplink.to_json()) == {k: v for k, v in obj.items() if k != "extra"} | {
        "dev": uplink.eui,
        "mic": uplink.mic.hex(),
    }


@PROPERTY
@given(signed_downlinks(), st.sampled_from(["v", "cnt", "state", "mic"]), json_values)
def test_downlink_json_with_any_field_replaced(
    signed: tuple[bytes, Downlink], key: str, value: object
) -> None:
    obj = json.loads(signed[1].to_json())
    obj[key] = value
    try:
        decode_downlink_json(to_json_bytes(obj), signed[1].eui)
    except DecodeError:
        pass

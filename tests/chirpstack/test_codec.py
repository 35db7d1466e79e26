"""ChirpStack's uplink event and downlink command (DESIGN §9.2), decoded and encoded purely."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alertnet.protocol import DecodeError, EventCode, Reason, Uplink, decode_downlink
from alertnet.protocol.chirpstack import (
    ChirpStackUplink,
    DownCommand,
    RxInfo,
    decode_down_command,
    decode_up_event,
    down_command_topic,
    encode_down_command,
    encode_up_event,
    parse_up_event_topic,
    up_event_topic,
)

KEY = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
EUI = "70b3d57ed0001234"
APP = "17c82e96-be03-4f38-aef3-f83d48582d97"
TOPIC = f"application/{APP}/device/{EUI}/event/up"
FRAME = bytes.fromhex("0170b3d57ed00012340000002a010057000033667bfe")  # §2.1 test vector


def chirpstack_event() -> dict[str, Any]:
    """An uplink event as ChirpStack v4 publishes it (the shape of its documentation's
    example), carrying the §2.1 test vector; ``fCnt`` is 0, so it is absent."""
    return {
        "deduplicationId": "3ac7e3c4-4401-4b8d-9386-a5c902f9202d",
        "time": "2022-07-18T09:34:15.775023242+00:00",
        "deviceInfo": {
            "tenantId": "52f14cd4-c6f1-4fbd-8f87-4025e1d49242",
            "tenantName": "ChirpStack",
            "applicationId": APP,
            "applicationName": "Test application",
            "deviceProfileId": "14855bf7-d10d-4aee-b618-ebfcb64dc7ad",
            "deviceProfileName": "Test device-profile",
            "deviceName": "Test device",
            "devEui": EUI,
            "tags": {},
        },
        "devAddr": "00189440",
        "adr": True,
        "dr": 1,
        "fPort": 10,
        "data": base64.b64encode(FRAME).decode(),
        "rxInfo": [
            {
                "gatewayId": "0016c001f153a14c",
                "uplinkId": 4217106255,
                "rssi": -36,
                "snr": 10.5,
                "channel": 2,
                "rfChain": 1,
                "location": {},
                "context": "E3OWOQ==",
                "metadata": {"region_common_name": "EU868", "region_config_id": "eu868"},
            },
            # SNR 0 and an RSSI of 0 are left out, as protobuf's JSON leaves out zeros.
            {"gatewayId": "0016c001f1500812", "uplinkId": 1, "channel": 2},
        ],
        "txInfo": {
            "frequency": 868500000,
            "modulation": {
                "lora": {"bandwidth": 125000, "spreadingFactor": 11, "codeRate": "CR_4_5"}
            },
        },
    }


def payload(event: dict[str, Any]) -> bytes:
    return json.dumps(event).encode()


def refusal(topic: str, event: dict[str, Any] | bytes) -> DecodeError:
    body = event if isinstance(event, bytes) else payload(event)
    with pytest.raises(DecodeError) as caught:
        decode_up_event(topic, body)
    return caught.value


def test_a_chirpstack_event_decodes_with_absent_zeros_read_as_zero() -> None:
    uplink = decode_up_event(TOPIC, payload(chirpstack_event()))
    assert (uplink.application_id, uplink.dev_eui, uplink.f_cnt, uplink.f_port) == (
        APP,
        EUI,
        0,
        10,
    )
    assert uplink.data == FRAME
    assert uplink.rx_info == (
        RxInfo("0016c001f153a14c", -36, 10.5),
        RxInfo("0016c001f1500812", 0, 0.0),
    )
    assert [rx.alertnet_gateway_id for rx in uplink.rx_info] == [
        "cs:0016c001f153a14c",
        "cs:0016c001f1500812",
    ]
    assert (uplink.frame.counter, uplink.frame.event) == (42, EventCode.PANIC)


def test_an_upper_case_dev_eui_is_the_same_device() -> None:
    event = chirpstack_event()
    event["deviceInfo"]["devEui"] = EUI.upper()
    upper_topic = f"application/{APP}/device/{EUI.upper()}/event/up"
    assert decode_up_event(upper_topic, payload(event)).dev_eui == EUI


def test_an_event_heard_by_no_gateway_has_no_receptions() -> None:
    event = chirpstack_event()
    del event["rxInfo"]
    event["fCnt"] = 7
    uplink = decode_up_event(TOPIC, payload(event))
    assert (uplink.rx_info, uplink.f_cnt) == ((), 7)


def _without(path: str) -> dict[str, Any]:
    event = chirpstack_event()
    *parents, key = path.split(".")
    target = event
    for parent in parents:
        target = target[parent]
    del target[key]
    return event


def _with(path: str, value: Any) -> dict[str, Any]:
    event = chirpstack_event()
    *parents, key = path.split(".")
    target = event
    for parent in parents:
        target = target[parent] if not parent.isdigit() else target[int(parent)]
    target[key] = value
    return event


@pytest.mark.parametrize(
    ("event", "reason", "words"),
    [
        (_without("deviceInfo"), Reason.MALFORMED_JSON, "lacks deviceInfo"),
        (_without("deviceInfo.devEui"), Reason.MALFORMED_JSON, "deviceInfo.devEui"),
        (_without("deviceInfo.applicationId"), Reason.MALFORMED_JSON, "applicationId"),
        (_without("data"), Reason.MALFORMED_JSON, "lacks data"),
        (_without("fPort"), Reason.BAD_FIELD, "fPort is 0 or absent"),
        (_with("fPort", "10"), Reason.BAD_FIELD, "fPort"),
        (_with("fPort", 224), Reason.BAD_FIELD, "fPort"),
        (_with("fCnt", -1), Reason.BAD_FIELD, "fCnt"),
        (_with("fCnt", True), Reason.BAD_FIELD, "fCnt"),
        (_with("data", "not base64!"), Reason.BAD_FIELD, "base64"),
        (_with("data", 12), Reason.BAD_FIELD, "data must be a string"),
        (_with("data", base64.b64encode(FRAME[:-1]).decode()), Reason.BAD_LENGTH, "data:"),
        (_with("deviceInfo", "x"), Reason.BAD_FIELD, "deviceInfo must be an object"),
        (_with("deviceInfo.devEui", "70b3"), Reason.BAD_FIELD, "EUI"),
        (_with("deviceInfo.devEui", 5), Reason.BAD_FIELD, "devEui must be a string"),
        (_with("rxInfo", {"gatewayId": "a"}), Reason.BAD_FIELD, "rxInfo must be a list"),
        (_with("rxInfo", ["a"]), Reason.BAD_FIELD, "rxInfo entries"),
        (_with("rxInfo", [{"rssi": -50}]), Reason.MALFORMED_JSON, "gatewayId"),
        (_with("rxInfo", [{"gatewayId": "g", "rssi": "-50"}]), Reason.BAD_FIELD, "rssi"),
        (_with("rxInfo", [{"gatewayId": "g", "snr": None}]), Reason.BAD_FIELD, "snr"),
        (_with("rxInfo", [{"gatewayId": "a/b"}]), Reason.BAD_FIELD, "gatewayId"),
    ],
)
def test_bad_events_are_refused_with_their_reason(
    event: dict[str, Any], reason: Reason, words: str
) -> None:
    error = refusal(TOPIC, event)
    assert error.reason is reason
    assert words in error.detail


def test_not_json_and_not_an_object_are_malformed() -> None:
    assert refusal(TOPIC, b"{not json").reason is Reason.MALFORMED_JSON
    assert refusal(TOPIC, b"\xff\xfe").reason is Reason.MALFORMED_JSON
    assert refusal(TOPIC, b"[1, 2]").reason is Reason.MALFORMED_JSON
    assert refusal(TOPIC, b"{}" + b" " * (64 * 1024)).reason is Reason.BAD_LENGTH


def test_a_frame_of_another_device_is_an_eui_mismatch() -> None:
    other = Uplink.build(KEY, "70b3d57ed0009999", 1, EventCode.PANIC).to_bytes()
    error = refusal(TOPIC, _with("data", base64.b64encode(other).decode()))
    assert error.reason is Reason.EUI_MISMATCH
    assert "70b3d57ed0009999" in error.detail


def test_the_topic_must_name_the_device_and_application_of_the_event() -> None:
    other_device = f"application/{APP}/device/70b3d57ed0009999/event/up"
    assert refusal(other_device, chirpstack_event()).reason is Reason.EUI_MISMATCH
    other_app = f"application/another-app/device/{EUI}/event/up"
    assert refusal(other_app, chirpstack_event()).reason is Reason.BAD_TOPIC
    for topic in (f"application/{APP}/device/{EUI}/event/join", "alertnet/v1/up/x", "a"):
        assert refusal(topic, chirpstack_event()).reason is Reason.BAD_TOPIC


def test_topics() -> None:
    assert up_event_topic(APP, EUI.upper()) == TOPIC
    assert parse_up_event_topic(TOPIC) == (APP, EUI)
    assert down_command_topic(APP, EUI) == f"application/{APP}/device/{EUI}/command/down"
    with pytest.raises(DecodeError):
        down_command_topic("a/b", EUI)


def test_the_downlink_command_is_chirpstacks_json_with_the_ack_in_base64() -> None:
    ack = bytes.fromhex("8170b3d57ed00012340000002a01952c5ddb")  # §2.2 test vector
    encoded = encode_down_command(DownCommand(EUI, 10, ack))
    assert json.loads(encoded) == {
        "devEui": EUI,
        "confirmed": False,
        "fPort": 10,
        "data": base64.b64encode(ack).decode(),
    }
    assert list(json.loads(encoded)) == ["devEui", "confirmed", "fPort", "data"]
    command = decode_down_command(encoded)
    assert decode_downlink(command.data).verify(KEY)
    assert (command.dev_eui, command.f_port, command.confirmed) == (EUI, 10, False)


def test_encode_leaves_out_zeros_and_decodes_back() -> None:
    uplink = ChirpStackUplink(
        APP, EUI, 0, 3, FRAME, (RxInfo("g1", 0, 0.0), RxInfo("g2", -90, -7.5))
    )
    encoded = encode_up_event(uplink, deduplication_id="d", time="2026-01-01T00:00:00+00:00")
    event = json.loads(encoded)
    assert "fCnt" not in event
    assert event["rxInfo"] == [{"gatewayId": "g1"}, {"gatewayId": "g2", "rssi": -90, "snr": -7.5}]
    assert decode_up_event(up_event_topic(APP, EUI), encoded) == uplink


json_leaves = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
json_trees = st.recursive(
    json_leaves,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)
FIELDS = ["deviceInfo", "devEui", "applicationId", "fCnt", "fPort", "data", "rxInfo", "gatewayId"]


@settings(database=None, deadline=None, max_examples=300)
@given(
    st.lists(st.sampled_from(FIELDS), min_size=1, max_size=3),
    json_trees,
    st.binary(max_size=64),
)
def test_any_damage_is_a_decode_error_never_a_crash(
    where: list[str], value: object, junk: bytes
) -> None:
    """Replace fields anywhere in a real event with arbitrary JSON, or send raw bytes."""
    event = chirpstack_event()
    targets = [event, event["deviceInfo"], *event["rxInfo"]]
    for field in where:
        for target in targets:
            if field in target:
                target[field] = copy.deepcopy(value)
    for body in (payload(event), junk):
        try:
            decoded = decode_up_event(TOPIC, body)
        except DecodeError:
            continue
        assert decoded.frame.eui == decoded.dev_eui == EUI

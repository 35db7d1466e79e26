"""MQTT topics and gateway payloads (DESIGN §2.4)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alertnet.protocol import (
    GW_RX_SUBSCRIPTION,
    GW_TX_SUBSCRIPTION,
    UP_SUBSCRIPTION,
    DecodeError,
    GatewayRx,
    Reason,
    Topic,
    down_topic,
    format_gateway_rx,
    format_gateway_tx,
    gateway_topic_id,
    gw_rx_topic,
    gw_state_topic,
    gw_tx_topic,
    parse_gateway_rx,
    parse_gateway_tx,
    parse_topic,
    up_topic,
)

from ._strategies import EUI, PROPERTY, euis, json_values, to_json_bytes

FRAME = bytes.fromhex("0170b3d57ed00012340000002a010057000033667bfe")

gateway_ids = st.text(min_size=1, max_size=40)


def reason_of(call: Any, *args: Any) -> Reason:
    with pytest.raises(DecodeError) as info:
        call(*args)
    return info.value.reason


def test_subscriptions() -> None:
    assert UP_SUBSCRIPTION == "alertnet/v1/up/+"
    assert GW_RX_SUBSCRIPTION == "alertnet/v1/gw/+/rx"
    assert GW_TX_SUBSCRIPTION == "alertnet/v1/gw/+/tx"


def test_device_topics() -> None:
    assert up_topic(EUI) == "alertnet/v1/up/70b3d57ed0001234"
    assert down_topic(EUI.upper()) == "alertnet/v1/down/70b3d57ed0001234"
    assert parse_topic(up_topic(EUI)) == Topic("up", EUI)
    assert parse_topic(down_topic(EUI)) == Topic("down", EUI)
    assert reason_of(up_topic, "gw-1") is Reason.BAD_FIELD


def test_gateway_topics() -> None:
    assert gateway_topic_id("/dev/ttyUSB0") == "_dev_ttyUSB0"
    assert gateway_topic_id("gw+1#a") == "gw_1_a"
    assert gateway_topic_id("gw\x00\n\x85") == "gw___"
    assert gw_rx_topic("gw-1") == "alertnet/v1/gw/gw-1/rx"
    assert gw_tx_topic("/dev/ttyUSB0") == "alertnet/v1/gw/_dev_ttyUSB0/tx"
    assert gw_state_topic("gw-1") == "alertnet/v1/gw/gw-1/state"
    assert parse_topic("alertnet/v1/gw/_dev_ttyUSB0/rx") == Topic("gw_rx", "_dev_ttyUSB0")
    assert parse_topic("alertnet/v1/gw/gw-1/tx") == Topic("gw_tx", "gw-1")
    assert parse_topic("alertnet/v1/gw/gw-1/state") == Topic("gw_state", "gw-1")
    assert reason_of(gateway_topic_id, "") is Reason.BAD_FIELD
    assert reason_of(gateway_topic_id, "g" * 201) is Reason.BAD_FIELD


@pytest.mark.parametrize(
    "topic",
    [
        "",
        "alertnet/v1/up",
        "alertnet/v1/up/",
        "alertnet/v1/up/+",
        "alertnet/v1/up/70B3D57ED0001234",
        "alertnet/v1/up/70b3d57ed000123",
        "alertnet/v1/up/70b3d57ed0001234/extra",
        "alertnet/v2/up/70b3d57ed0001234",
        "/alertnet/v1/up/70b3d57ed0001234",
        "alertnet/v1/gw//rx",
        "alertnet/v1/gw/+/rx",
        "alertnet/v1/gw/gw-1/rssi",
        "alertnet/v1/gw/gw-1",
        "alertnet/v1/gw/a/b/rx",
        "alertnet/v1/gw/a\x00/rx",
        "$SYS/broker/uptime",
    ],
)
def test_bad_topics(topic: str) -> None:
    assert reason_of(parse_topic, topic) is Reason.BAD_TOPIC


def test_topic_validation() -> None:
    assert reason_of(Topic, "up", "gw-1") is Reason.BAD_TOPIC
    assert reason_of(Topic, "sideways", "gw-1") is Reason.BAD_TOPIC
    assert reason_of(Topic, "gw_rx", "a/b") is Reason.BAD_TOPIC
    assert str(Topic("gw_state", "gw-1")) == "alertnet/v1/gw/gw-1/state"
    assert str(Topic("up", EUI)) == up_topic(EUI)


def test_gateway_rx_vector() -> None:
    payload = b'{"data":"' + FRAME.hex().encode() + b'","rssi":-97,"snr":7.5}'
    rx = parse_gateway_rx(payload)
    assert rx == GatewayRx(FRAME, -97, 7.5)
    assert format_gateway_rx(rx) == payload
    assert parse_gateway_rx(b'{"data":"' + FRAME.hex().upper().encode() + b'"}') == GatewayRx(
        FRAME, None, None
    )
    assert parse_gateway_rx(b'{"data":"00","rssi":null,"snr":8,"gw":"x"}') == GatewayRx(
        b"\0", None, 8.0
    )
    assert format_gateway_rx(GatewayRx(b"\x01")) == b'{"data":"01"}'


def rx_json(**changes: Any) -> bytes:
    obj: dict[str, Any] = {"data": FRAME.hex(), "rssi": -97, "snr": 7.5}
    obj.update(changes)
    return json.dumps(obj).encode()


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", Reason.MALFORMED_JSON),
        (b"not json", Reason.MALFORMED_JSON),
        (b"[1]", Reason.MALFORMED_JSON),
        (b'{"rssi":-97}', Reason.MALFORMED_JSON),
        (b"\xc3\x28", Reason.MALFORMED_JSON),
        (rx_json(data="0g"), Reason.BAD_HEX),
        (rx_json(data="012"), Reason.BAD_HEX),
        (rx_json(data="01 02"), Reason.BAD_HEX),
        (rx_json(data=""), Reason.BAD_FIELD),
        (rx_json(data="00" * 256), Reason.BAD_FIELD),
        (rx_json(data=1), Reason.BAD_FIELD),
        (rx_json(data=None), Reason.BAD_FIELD),
        (rx_json(rssi="-97"), Reason.BAD_FIELD),
        (rx_json(rssi=-97.5), Reason.BAD_FIELD),
        (rx_json(rssi=True), Reason.BAD_FIELD),
        (rx_json(rssi=-(10**30)), Reason.BAD_FIELD),
        (rx_json(snr="7.5"), Reason.BAD_FIELD),
        (rx_json(snr=False), Reason.BAD_FIELD),
        (rx_json(snr=1e300), Reason.BAD_FIELD),
        (rx_json(snr=10**400), Reason.BAD_FIELD),
        (rx_json().replace(b"7.5", b"NaN"), Reason.MALFORMED_JSON),
    ],
)
def test_gateway_rx_errors(payload: bytes, reason: Reason) -> None:
    assert reason_of(parse_gateway_rx, payload) is reason


def test_gateway_tx() -> None:
    ack = bytes.fromhex("8170b3d57ed00012340000002a01952c5ddb")
    assert format_gateway_tx(ack) == b'{"data":"8170b3d57ed00012340000002a01952c5ddb"}'
    assert parse_gateway_tx(format_gateway_tx(ack)) == ack
    assert reason_of(parse_gateway_tx, b'{"data":"xyz"}') is Reason.BAD_HEX
    assert reason_of(parse_gateway_tx, b"{}") is Reason.MALFORMED_JSON
    assert reason_of(format_gateway_tx, b"") is Reason.BAD_FIELD


# --- properties -------------------------------------------------------------------------


@PROPERTY
@given(euis)
def test_device_topics_round_trip(eui: str) -> None:
    assert parse_topic(up_topic(eui)) == Topic("up", eui)
    assert parse_topic(down_topic(eui.upper())) == Topic("down", eui)


@PROPERTY
@given(gateway_ids)
def test_gateway_topics_round_trip(gateway_id: str) -> None:
    ident = gateway_topic_id(gateway_id)
    assert gateway_topic_id(ident) == ident
    for build, kind in (
        (gw_rx_topic, "gw_rx"),
        (gw_tx_topic, "gw_tx"),
        (gw_state_topic, "gw_state"),
    ):
        topic = build(gateway_id)
        parsed = parse_topic(topic)
        assert parsed == Topic(kind, ident)  # type: ignore[arg-type]
        assert str(parsed) == topic
        assert topic.count("/") == 4
        topic.encode("utf-8")


@PROPERTY
@given(
    st.text(max_size=60)
    | st.lists(
        st.sampled_from(["alertnet", "v1", "up", "gw", "rx", EUI, "+", "", "x"]), max_size=6
    ).map("/".join)
    | st.binary(max_size=60).map(lambda raw: raw.decode("utf-8", "surrogateescape"))
)
def test_any_topic_parses_or_decode_error(topic: str) -> None:
    try:
        parsed = parse_topic(topic)
    except DecodeError as error:
        assert error.reason is Reason.BAD_TOPIC
        return
    assert str(parsed) == topic


@PROPERTY
@given(
    st.binary(min_size=1, max_size=255),
    st.none() | st.integers(-255, 255),
    st.none() | st.floats(-100, 100),
)
def test_gateway_rx_round_trips(data: bytes, rssi: int | None, snr: float | None) -> None:
    rx = GatewayRx(data, rssi, snr)
    assert parse_gateway_rx(format_gateway_rx(rx)) == rx


@PROPERTY
@given(
    st.binary(max_size=300)
    | json_values.map(to_json_bytes)
    | json_values.map(lambda v: to_json_bytes({"data": v}))
)
def test_any_gateway_payload_parses_or_decode_error(payload: bytes) -> None:
    for parse in (parse_gateway_rx, parse_gateway_tx):
        try:
            parse(payload)
        except DecodeError:
            pass

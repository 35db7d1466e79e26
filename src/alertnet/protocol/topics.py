"""MQTT topic names and gateway payloads of wire protocol v1 (DESIGN §2.4).

One place builds and parses every topic so that devices, gateways, the broker ACL and the
ingest agree on them; parsing untrusted topics and payloads only ever raises ``DecodeError``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, get_args

from alertnet.protocol._codec import (
    RSSI_MAX,
    RSSI_MIN,
    SNR_MAX,
    SNR_MIN,
    check_bytes,
    check_float,
    check_int,
    decode_hex,
    describe,
    dump_json,
    is_lower_eui,
    load_json_object,
    normalize_eui,
    require_keys,
)
from alertnet.protocol.reasons import DecodeError, Reason

__all__ = [
    "DOWN_SUBSCRIPTION",
    "GATEWAY_OFFLINE",
    "GATEWAY_ONLINE",
    "GW_RX_SUBSCRIPTION",
    "GW_STATE_SUBSCRIPTION",
    "GW_TX_SUBSCRIPTION",
    "MAX_GATEWAY_FRAME_BYTES",
    "MAX_GATEWAY_ID_CHARS",
    "TOPIC_PREFIX",
    "UP_SUBSCRIPTION",
    "GatewayRx",
    "Topic",
    "TopicKind",
    "down_topic",
    "format_gateway_rx",
    "format_gateway_tx",
    "gateway_topic_id",
    "gw_rx_topic",
    "gw_state_topic",
    "gw_tx_topic",
    "parse_gateway_rx",
    "parse_gateway_tx",
    "parse_topic",
    "up_topic",
]

TOPIC_PREFIX: Final = "alertnet/v1"
UP_SUBSCRIPTION: Final = "alertnet/v1/up/+"
DOWN_SUBSCRIPTION: Final = "alertnet/v1/down/+"
GW_RX_SUBSCRIPTION: Final = "alertnet/v1/gw/+/rx"
GW_TX_SUBSCRIPTION: Final = "alertnet/v1/gw/+/tx"
GW_STATE_SUBSCRIPTION: Final = "alertnet/v1/gw/+/state"
#: Payloads of the retained ``gw/{id}/state`` topic (the offline one is the last will).
GATEWAY_ONLINE: Final = b"online"
GATEWAY_OFFLINE: Final = b"offline"

#: Longest gateway id accepted; leaves room for long /dev/serial/by-id/... paths.
MAX_GATEWAY_ID_CHARS: Final = 200
#: A LoRa PHY payload is at most 255 bytes; a gateway never carries more.
MAX_GATEWAY_FRAME_BYTES: Final = 255

TopicKind = Literal["up", "gw_rx", "gw_tx", "gw_state", "down"]
_TOPIC_KINDS: frozenset[str] = frozenset(get_args(TopicKind))
_GATEWAY_SUFFIXES: dict[str, TopicKind] = {"rx": "gw_rx", "tx": "gw_tx", "state": "gw_state"}


def _is_level_safe(char: str) -> bool:
    code = ord(char)
    return not (
        char in "/+#"
        or code < 0x20  # C0 controls, NUL is forbidden by MQTT outright
        or 0x7F <= code < 0xA0  # DEL and C1 controls, "SHOULD NOT" in MQTT 3.1.1 §1.5.3
        or 0xD800 <= code < 0xE000  # lone surrogates cannot be encoded as UTF-8
    )


def gateway_topic_id(gateway_id: str) -> str:
    """The MQTT topic level that stands for ``gateway_id``.

    A gateway id may be a serial device path such as ``/dev/ttyUSB0``, but one topic level may
    not contain ``/``, ``+`` or ``#`` (nor control characters). Each such character becomes
    ``_``: ``/dev/ttyUSB0`` → ``_dev_ttyUSB0``. Every other character is kept, so the mapping is
    idempotent; it is not injective (``a/b`` and ``a_b`` share a topic), so operators must
    choose gateway ids that stay distinct after it. Raises ``DecodeError(BAD_FIELD)`` for an
    empty or over-long id.
    """
    if not isinstance(gateway_id, str) or not 0 < len(gateway_id) <= MAX_GATEWAY_ID_CHARS:
        raise DecodeError(
            Reason.BAD_FIELD,
            f"gateway id must be 1..{MAX_GATEWAY_ID_CHARS} characters, got {describe(gateway_id)}",
        )
    return "".join(char if _is_level_safe(char) else "_" for char in gateway_id)


def _is_gateway_level(ident: object) -> bool:
    return (
        isinstance(ident, str)
        and 0 < len(ident) <= MAX_GATEWAY_ID_CHARS
        and all(_is_level_safe(char) for char in ident)
    )


@dataclass(frozen=True, slots=True)
class Topic:
    """A parsed alertnet topic. ``ident`` is the EUI or the gateway's topic id."""

    kind: TopicKind
    ident: str

    def __post_init__(self) -> None:
        if not isinstance(self.kind, str) or self.kind not in _TOPIC_KINDS:
            raise DecodeError(Reason.BAD_TOPIC, f"unknown topic kind {describe(self.kind)}")
        if self.kind in ("up", "down"):
            if not is_lower_eui(self.ident):
                raise DecodeError(
                    Reason.BAD_TOPIC,
                    f"topic EUI must be 16 lowercase hex characters, got {describe(self.ident)}",
                )
        elif not _is_gateway_level(self.ident):
            raise DecodeError(
                Reason.BAD_TOPIC, f"not a valid gateway topic id: {describe(self.ident)}"
            )

    def __str__(self) -> str:
        if self.kind in ("up", "down"):
            return f"{TOPIC_PREFIX}/{self.kind}/{self.ident}"
        return f"{TOPIC_PREFIX}/gw/{self.ident}/{self.kind.removeprefix('gw_')}"


def parse_topic(topic: str) -> Topic:
    """Parse a topic alertnet subscribes to or publishes; ``DecodeError(BAD_TOPIC)`` otherwise."""
    if not isinstance(topic, str):
        raise DecodeError(Reason.BAD_TOPIC, f"topic must be a string, got {describe(topic)}")
    match topic.split("/"):
        case ["alertnet", "v1", ("up" | "down") as kind, ident]:
            return Topic("up" if kind == "up" else "down", ident)
        case ["alertnet", "v1", "gw", ident, suffix] if suffix in _GATEWAY_SUFFIXES:
            return Topic(_GATEWAY_SUFFIXES[suffix], ident)
        case _:
            raise DecodeError(Reason.BAD_TOPIC, f"not an alertnet topic: {describe(topic, 80)}")


def up_topic(eui: str) -> str:
    """Where device ``eui`` publishes uplinks (EUI in any case; the topic is lowercase)."""
    return f"{TOPIC_PREFIX}/up/{normalize_eui(eui)}"


def down_topic(eui: str) -> str:
    """Where alertnet publishes acks for device ``eui``."""
    return f"{TOPIC_PREFIX}/down/{normalize_eui(eui)}"


def gw_rx_topic(gateway_id: str) -> str:
    """Where a LoRa gateway publishes the frames it received."""
    return f"{TOPIC_PREFIX}/gw/{gateway_topic_id(gateway_id)}/rx"


def gw_tx_topic(gateway_id: str) -> str:
    """Where alertnet publishes downlinks for a gateway to transmit."""
    return f"{TOPIC_PREFIX}/gw/{gateway_topic_id(gateway_id)}/tx"


def gw_state_topic(gateway_id: str) -> str:
    """A gateway's retained ``online``/``offline`` state (also its last will)."""
    return f"{TOPIC_PREFIX}/gw/{gateway_topic_id(gateway_id)}/state"


def _check_gateway_frame(value: object) -> bytes:
    data = check_bytes(value, "data")
    if not 0 < len(data) <= MAX_GATEWAY_FRAME_BYTES:
        raise DecodeError(
            Reason.BAD_FIELD,
            f"data must be 1..{MAX_GATEWAY_FRAME_BYTES} bytes, got {len(data)}",
        )
    return data


@dataclass(frozen=True, slots=True)
class GatewayRx:
    """A radio frame a gateway received, with its signal quality when the gateway knows it."""

    data: bytes
    rssi: int | None = None
    snr: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "data", _check_gateway_frame(self.data))
        if self.rssi is not None:
            check_int(self.rssi, RSSI_MIN, RSSI_MAX, "rssi")
        if self.snr is not None:
            object.__setattr__(self, "snr", check_float(self.snr, SNR_MIN, SNR_MAX, "snr"))


def _frame_from_json(obj: dict[str, object]) -> bytes:
    return _check_gateway_frame(decode_hex(obj["data"], "data"))


def parse_gateway_rx(payload: bytes) -> GatewayRx:
    """Parse ``{"data":"<hex frame>","rssi":-97,"snr":7.5}``; rssi/snr may be absent or null.

    Errors: ``MALFORMED_JSON`` (not a JSON object, no ``data``), ``BAD_HEX`` (``data`` is not
    hex), ``BAD_FIELD`` (wrong types or ranges), ``BAD_LENGTH`` (an absurdly large payload).
    Unknown extra keys are ignored.
    """
    obj = load_json_object(payload, "gateway rx")
    require_keys(obj, ("data",), "gateway rx")
    rssi = obj.get("rssi")
    snr = obj.get("snr")
    if rssi is not None and (isinstance(rssi, bool) or not isinstance(rssi, int)):
        raise DecodeError(Reason.BAD_FIELD, f'"rssi" must be an integer, got {describe(rssi)}')
    if snr is not None and (isinstance(snr, bool) or not isinstance(snr, int | float)):
        raise DecodeError(Reason.BAD_FIELD, f'"snr" must be a number, got {describe(snr)}')
    return GatewayRx(data=_frame_from_json(obj), rssi=rssi, snr=snr)


def format_gateway_rx(rx: GatewayRx) -> bytes:
    """The JSON a gateway publishes on ``gw/{id}/rx``; absent signal values are left out."""
    obj: dict[str, object] = {"data": rx.data.hex()}
    if rx.rssi is not None:
        obj["rssi"] = rx.rssi
    if rx.snr is not None:
        obj["snr"] = rx.snr
    return dump_json(obj)


def format_gateway_tx(data: bytes) -> bytes:
    """The JSON alertnet publishes on ``gw/{id}/tx``: ``{"data":"<hex downlink>"}``."""
    return dump_json({"data": _check_gateway_frame(data).hex()})


def parse_gateway_tx(payload: bytes) -> bytes:
    """The frame bytes of a ``gw/{id}/tx`` payload (same errors as ``parse_gateway_rx``)."""
    obj = load_json_object(payload, "gateway tx")
    require_keys(obj, ("data",), "gateway tx")
    return _frame_from_json(obj)

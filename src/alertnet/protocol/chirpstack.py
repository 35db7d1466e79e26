"""ChirpStack v4's MQTT integration in JSON (DESIGN §9.2): its topics, the uplink event, the
downlink command. Pure, like the rest of ``alertnet.protocol``: the ChirpStack adapter
(``alertnet.ingest.chirpstack``), the simulator and the tests build and parse them here.

ChirpStack publishes protobuf messages in protobuf's JSON mapping, which leaves out every field
whose value is zero: ``fCnt`` 0, an RSSI of 0 or an SNR of 0.0 are absent, and an absent one
reads as zero. ``data`` (base64) is alertnet's binary v1 frame (§2.1), decoded here so that a
bad frame or one whose EUI is not ``deviceInfo.devEui`` is refused once per event, with the
whole event kept as evidence. Every entry of ``rxInfo`` is one gateway's copy; alertnet names
those gateways ``cs:<gatewayId>``. Untrusted input only ever raises ``DecodeError``.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Final

from alertnet.protocol._codec import (
    RSSI_MAX,
    RSSI_MIN,
    SNR_MAX,
    SNR_MIN,
    _reject_constant,
    _unique_keys,
    check_float,
    check_int,
    describe,
    dump_json,
    is_lower_eui,
    normalize_eui,
)
from alertnet.protocol.frames import Uplink, decode_uplink
from alertnet.protocol.reasons import DecodeError, Reason

__all__ = [
    "GATEWAY_PREFIX",
    "MAX_EVENT_BYTES",
    "MAX_RECEPTIONS",
    "UP_EVENT_SUBSCRIPTION",
    "ChirpStackUplink",
    "DownCommand",
    "RxInfo",
    "decode_down_command",
    "decode_up_event",
    "down_command_topic",
    "encode_down_command",
    "encode_up_event",
    "parse_up_event_topic",
    "up_event_topic",
]

UP_EVENT_SUBSCRIPTION: Final = "application/+/device/+/event/up"
#: How alertnet names a gateway that reached it through ChirpStack.
GATEWAY_PREFIX: Final = "cs:"
#: An uplink event is 1-3 KiB with a handful of gateways; anything this large is junk.
MAX_EVENT_BYTES: Final = 64 * 1024
#: Copies kept per event: more than any real network hears one transmission with.
MAX_RECEPTIONS: Final = 32
#: LoRaWAN application ports: 0 carries MAC commands only, 224 and up are reserved.
F_PORT_RANGE: Final = (1, 223)
_UINT32_MAX: Final = 0xFFFF_FFFF
#: ChirpStack's application ids are UUIDs (36 characters); gateway ids are EUI-64 hex.
_MAX_ID_CHARS: Final = 64


def _is_id(value: object) -> bool:
    """A non-empty id that fits one MQTT topic level and a database column."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= _MAX_ID_CHARS
        and value.isprintable()
        and not any(char in "/+#" for char in value)
    )


# -- topics -----------------------------------------------------------------------------------


def up_event_topic(application_id: str, dev_eui: str) -> str:
    """Where ChirpStack publishes a device's uplink events."""
    return f"application/{application_id}/device/{normalize_eui(dev_eui)}/event/up"


def down_command_topic(application_id: str, dev_eui: str) -> str:
    """Where ChirpStack takes downlinks to enqueue for a device."""
    if not _is_id(application_id):
        raise DecodeError(
            Reason.BAD_FIELD, f"not a ChirpStack application id: {describe(application_id)}"
        )
    return f"application/{application_id}/device/{normalize_eui(dev_eui)}/command/down"


def parse_up_event_topic(topic: str) -> tuple[str, str]:
    """``(application_id, dev_eui)`` of an uplink event topic; ``DecodeError(BAD_TOPIC)``."""
    match topic.split("/") if isinstance(topic, str) else None:
        case ["application", application_id, "device", dev_eui, "event", "up"] if _is_id(
            application_id
        ):
            try:
                return application_id, normalize_eui(dev_eui)
            except DecodeError:
                pass
    raise DecodeError(Reason.BAD_TOPIC, f"not a ChirpStack uplink topic: {describe(topic, 80)}")


# -- the uplink event -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RxInfo:
    """One gateway's copy of the transmission."""

    gateway_id: str  # ChirpStack's, without alertnet's "cs:" prefix
    rssi: int = 0
    snr: float = 0.0

    def __post_init__(self) -> None:
        if not _is_id(self.gateway_id):
            raise DecodeError(
                Reason.BAD_FIELD,
                f"rxInfo gatewayId must be 1..{_MAX_ID_CHARS} printable characters without "
                f"/, + or #, got {describe(self.gateway_id)}",
            )
        check_int(self.rssi, RSSI_MIN, RSSI_MAX, "rxInfo rssi")
        object.__setattr__(self, "snr", check_float(self.snr, SNR_MIN, SNR_MAX, "rxInfo snr"))

    @property
    def alertnet_gateway_id(self) -> str:
        """The gateway id alertnet records: ``cs:<gatewayId>``."""
        return GATEWAY_PREFIX + self.gateway_id


@dataclass(frozen=True, slots=True)
class ChirpStackUplink:
    """An uplink event as alertnet uses it; ``frame`` is the decoded ``data``."""

    application_id: str
    dev_eui: str
    f_cnt: int
    f_port: int
    data: bytes
    rx_info: tuple[RxInfo, ...]

    def __post_init__(self) -> None:
        if not _is_id(self.application_id):
            raise DecodeError(
                Reason.BAD_FIELD,
                f"applicationId must be 1..{_MAX_ID_CHARS} printable characters without "
                f"/, + or #, got {describe(self.application_id)}",
            )
        if not is_lower_eui(self.dev_eui):
            object.__setattr__(self, "dev_eui", normalize_eui(self.dev_eui))
        check_int(self.f_cnt, 0, _UINT32_MAX, "fCnt")
        low, high = F_PORT_RANGE
        if isinstance(self.f_port, int) and not isinstance(self.f_port, bool) and self.f_port == 0:
            raise DecodeError(
                Reason.BAD_FIELD, "fPort is 0 or absent: the uplink carries no application data"
            )
        check_int(self.f_port, low, high, "fPort")
        if len(self.rx_info) > MAX_RECEPTIONS:
            object.__setattr__(self, "rx_info", self.rx_info[:MAX_RECEPTIONS])

    @property
    def frame(self) -> Uplink:
        """The v1 frame ``data`` carries (valid: ``decode_up_event`` checked it)."""
        return decode_uplink(self.data)


def _load_object(payload: bytes, what: str) -> dict[str, object]:
    if not isinstance(payload, bytes | bytearray | memoryview):
        raise DecodeError(Reason.MALFORMED_JSON, f"{what} must be bytes")
    if len(payload) > MAX_EVENT_BYTES:
        raise DecodeError(
            Reason.BAD_LENGTH, f"{what} is {len(payload)} bytes, more than {MAX_EVENT_BYTES}"
        )
    try:
        value: object = json.loads(
            bytes(payload).decode("utf-8"),
            object_pairs_hook=_unique_keys,
            parse_constant=_reject_constant,
        )
    except UnicodeDecodeError as exc:
        raise DecodeError(Reason.MALFORMED_JSON, f"{what} is not UTF-8") from exc
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        raise DecodeError(Reason.MALFORMED_JSON, f"{what}: {describe(str(exc), 80)}") from exc
    if not isinstance(value, dict):
        raise DecodeError(Reason.MALFORMED_JSON, f"{what} must be a JSON object")
    return value


def _required(obj: dict[str, object], key: str, what: str, whole: str = "uplink event") -> object:
    if key not in obj or obj[key] is None:
        raise DecodeError(Reason.MALFORMED_JSON, f"{whole} lacks {what}")
    return obj[key]


def _string(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise DecodeError(Reason.BAD_FIELD, f"{what} must be a string, got {describe(value)}")
    return value


def _base64(value: object) -> bytes:
    text = _string(value, "data")
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error) as exc:
        raise DecodeError(Reason.BAD_FIELD, f"data is not base64: {describe(text)}") from exc


def _rx_info(value: object) -> tuple[RxInfo, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise DecodeError(Reason.BAD_FIELD, f"rxInfo must be a list, got {describe(value)}")
    copies: list[RxInfo] = []
    for entry in value[:MAX_RECEPTIONS]:
        if not isinstance(entry, dict):
            raise DecodeError(
                Reason.BAD_FIELD, f"rxInfo entries must be objects, got {describe(entry)}"
            )
        if not entry.get("gatewayId"):
            raise DecodeError(Reason.MALFORMED_JSON, "an rxInfo entry lacks gatewayId")
        # Absent numbers are zero (protobuf JSON); a wrong type is refused by RxInfo.
        copies.append(RxInfo(entry["gatewayId"], entry.get("rssi", 0), entry.get("snr", 0.0)))
    return tuple(copies)


def decode_up_event(topic: str, payload: bytes) -> ChirpStackUplink:
    """Decode one uplink event published on ``topic``; every refusal is a ``DecodeError``.

    The topic must name the application and device ``deviceInfo`` names (``bad_topic`` /
    ``eui_mismatch``), ``data`` must be a valid v1 frame (that frame's reason) whose EUI is
    ``deviceInfo.devEui`` (``eui_mismatch``). Whether the frame is signed by a known device is
    the pipeline's question, not this codec's.
    """
    topic_application, topic_eui = parse_up_event_topic(topic)
    event = _load_object(payload, "uplink event")
    device_info = _required(event, "deviceInfo", "deviceInfo")
    if not isinstance(device_info, dict):
        raise DecodeError(
            Reason.BAD_FIELD, f"deviceInfo must be an object, got {describe(device_info)}"
        )
    dev_eui = normalize_eui(
        _string(_required(device_info, "devEui", "deviceInfo.devEui"), "devEui")
    )
    application_id = _string(
        _required(device_info, "applicationId", "deviceInfo.applicationId"), "applicationId"
    )
    data = _base64(_required(event, "data", "data"))
    f_cnt = event.get("fCnt", 0)
    f_port = event.get("fPort", 0)
    uplink = ChirpStackUplink(
        application_id=application_id,
        dev_eui=dev_eui,
        f_cnt=f_cnt,  # type: ignore[arg-type]  # checked by ChirpStackUplink
        f_port=f_port,  # type: ignore[arg-type]
        data=data,
        rx_info=_rx_info(event.get("rxInfo")),
    )
    if topic_eui != dev_eui:
        raise DecodeError(
            Reason.EUI_MISMATCH, f"topic names device {topic_eui}, deviceInfo.devEui is {dev_eui}"
        )
    if topic_application != application_id:
        raise DecodeError(
            Reason.BAD_TOPIC,
            f"topic names application {describe(topic_application)}, "
            f"deviceInfo.applicationId is {describe(application_id)}",
        )
    try:
        frame = decode_uplink(data)
    except DecodeError as exc:
        raise DecodeError(exc.reason, f"data: {exc.detail}") from exc
    if frame.eui != dev_eui:
        raise DecodeError(
            Reason.EUI_MISMATCH, f"deviceInfo.devEui is {dev_eui}, the frame carries {frame.eui}"
        )
    return uplink


def encode_up_event(
    uplink: ChirpStackUplink,
    *,
    deduplication_id: str,
    time: str,
    device_info: dict[str, object] | None = None,
    extra: dict[str, object] | None = None,
) -> bytes:
    """The event ChirpStack would publish for ``uplink`` (zero values left out, as it does).

    ``device_info`` and ``extra`` add fields alertnet ignores (``tenantId``,
    ``deviceProfileName``, …; ``devAddr``, ``dr``, ``txInfo``, …).
    """

    def rx(copy: RxInfo) -> dict[str, object]:
        entry: dict[str, object] = {"gatewayId": copy.gateway_id}
        if copy.rssi:
            entry["rssi"] = copy.rssi
        if copy.snr:
            entry["snr"] = copy.snr
        return entry

    event: dict[str, object] = {
        "deduplicationId": deduplication_id,
        "time": time,
        "deviceInfo": {
            **(device_info or {}),
            "applicationId": uplink.application_id,
            "devEui": uplink.dev_eui,
        },
    }
    if extra:
        event.update(extra)
    if uplink.f_cnt:
        event["fCnt"] = uplink.f_cnt
    event["fPort"] = uplink.f_port
    event["data"] = base64.b64encode(uplink.data).decode("ascii")
    if uplink.rx_info:
        event["rxInfo"] = [rx(copy) for copy in uplink.rx_info]
    return dump_json(event)


# -- the downlink command ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DownCommand:
    """A downlink for ChirpStack to enqueue: ``data`` is alertnet's binary ack (§2.2)."""

    dev_eui: str
    f_port: int
    data: bytes
    confirmed: bool = False


def encode_down_command(command: DownCommand) -> bytes:
    """``{"devEui", "confirmed", "fPort", "data"}``, the form ChirpStack's integration takes."""
    return dump_json(
        {
            "devEui": normalize_eui(command.dev_eui),
            "confirmed": command.confirmed,
            "fPort": check_int(command.f_port, *F_PORT_RANGE, "fPort"),
            "data": base64.b64encode(command.data).decode("ascii"),
        }
    )


def decode_down_command(payload: bytes) -> DownCommand:
    """Parse a downlink command (the simulator plays ChirpStack and reads them)."""
    command = _load_object(payload, "downlink command")
    for key in ("devEui", "fPort", "data"):
        _required(command, key, key, "downlink command")
    confirmed = command.get("confirmed", False)
    if not isinstance(confirmed, bool):
        raise DecodeError(
            Reason.BAD_FIELD, f"confirmed must be a boolean, got {describe(confirmed)}"
        )
    return DownCommand(
        dev_eui=normalize_eui(command["devEui"]),
        f_port=check_int(command["fPort"], *F_PORT_RANGE, "fPort"),
        data=_base64(command["data"]),
        confirmed=confirmed,
    )

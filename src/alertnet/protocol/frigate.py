"""Frigate NVR's object events (DESIGN §9.3): decode them and decide whether one qualifies.

Pure: no I/O. ``decode_event_message`` reads a ``<prefix>/events`` MQTT message
(``{"type", "before", "after"}``), ``decode_api_event`` one item of ``GET /api/events`` (the
catch-up after a reconnect), both into a ``FrigateObject``. A camera's watch (``CameraWatch``:
labels, zones, hours) says whether an object qualifies: not a false positive, a watched label,
a watched zone among ``entered_zones`` (when zones are set: a person may enter it only in an
update), and a ``start_time`` within the hours (``22-06`` wraps midnight) in the given zone.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any, Final

from alertnet.protocol.reasons import DecodeError, Reason

__all__ = [
    "DEFAULT_LABELS",
    "MESSAGE_TYPES",
    "CameraWatch",
    "FrigateMessage",
    "FrigateObject",
    "decode_api_event",
    "decode_event_message",
    "dedup_key",
    "details",
    "events_topic",
    "parse_hours",
    "parse_names",
    "snapshot_url",
]

MESSAGE_TYPES: Final = frozenset({"new", "update", "end"})
DEFAULT_LABELS: Final = ("person",)
#: Longest Frigate event id taken (Frigate's are ``<epoch>.<micros>-<6 chars>``).
MAX_ID_CHARS: Final = 64
MAX_NAME_CHARS: Final = 64
MAX_MESSAGE_BYTES: Final = 64 * 1024


def events_topic(prefix: str) -> str:
    """``<prefix>/events``: where Frigate publishes its object events."""
    return f"{prefix.strip('/')}/events"


def dedup_key(frigate_id: str) -> str:
    """The event's dedup key: one event per Frigate id, whatever message brought it."""
    return f"frigate:{frigate_id}"


@dataclass(frozen=True, slots=True)
class FrigateObject:
    """A tracked object as Frigate reports it (the ``after`` of a message, or an API event)."""

    id: str
    camera: str
    label: str
    false_positive: bool
    start_time: float
    end_time: float | None = None
    score: float | None = None
    sub_label: str | None = None
    entered_zones: tuple[str, ...] = ()
    current_zones: tuple[str, ...] = ()
    has_snapshot: bool = False
    has_clip: bool = False

    @property
    def started_at(self) -> datetime:
        return datetime.fromtimestamp(self.start_time, UTC)

    @property
    def zones(self) -> tuple[str, ...]:
        """Every zone the object has been in (entered, or in now)."""
        return tuple(dict.fromkeys(self.entered_zones + self.current_zones))


@dataclass(frozen=True, slots=True)
class FrigateMessage:
    type: str
    after: FrigateObject


def _fail(reason: Reason, detail: str) -> DecodeError:
    return DecodeError(reason, detail)


def _text(body: Mapping[str, Any], key: str, max_chars: int) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value or len(value) > max_chars:
        raise _fail(Reason.BAD_FIELD, f"{key!r} must be text of 1-{max_chars} characters")
    if not value.isprintable() or any(char.isspace() for char in value):
        raise _fail(Reason.BAD_FIELD, f"{key!r} has spaces or unprintable characters")
    return value


def _number(body: Mapping[str, Any], key: str, *, optional: bool) -> float | None:
    value = body.get(key)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _fail(Reason.BAD_FIELD, f"{key!r} must be a number, not {type(value).__name__}")
    return float(value)


#: Latest epoch second a datetime holds (9999-12-31T23:59:59Z); later ones cannot be dated.
MAX_EPOCH_S: Final = 253_402_300_799.0


def _time(body: Mapping[str, Any], key: str, *, optional: bool = False) -> float | None:
    """An epoch time in seconds, from 0 to year 9999 (anything else cannot become a datetime)."""
    value = _number(body, key, optional=optional)
    if value is not None and not 0.0 <= value <= MAX_EPOCH_S:
        raise _fail(Reason.BAD_FIELD, f"{key!r} is out of range: {value!r}")
    return value


def _flag(body: Mapping[str, Any], key: str, default: bool | None = None) -> bool:
    value = body.get(key, default)
    if not isinstance(value, bool):
        raise _fail(Reason.BAD_FIELD, f"{key!r} must be true or false")
    return value


def _names(body: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = body.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _fail(Reason.BAD_FIELD, f"{key!r} must be a list of zone names")
    return tuple(item[:MAX_NAME_CHARS] for item in value[:50])


def _sub_label(value: Any) -> str | None:
    """Frigate writes a name, ``[name, score]`` (0.13+) or null."""
    if isinstance(value, list) and value and isinstance(value[0], str):
        value = value[0]
    return value[:MAX_NAME_CHARS] if isinstance(value, str) and value else None


def _object(body: Any, *, zones_key: str, score: float | None) -> FrigateObject:
    if not isinstance(body, dict):
        raise _fail(Reason.MALFORMED_JSON, "the tracked object is not a JSON object")
    missing = [key for key in ("id", "camera", "label", "start_time") if key not in body]
    if missing:
        raise _fail(Reason.MALFORMED_JSON, f"keys missing: {', '.join(missing)}")
    if score is None:
        score = _number(body, "top_score", optional=True)
    if score is None:
        score = _number(body, "score", optional=True)
    return FrigateObject(
        id=_text(body, "id", MAX_ID_CHARS),
        camera=_text(body, "camera", MAX_NAME_CHARS),
        label=_text(body, "label", MAX_NAME_CHARS),
        false_positive=_flag(body, "false_positive", False),
        start_time=_time(body, "start_time") or 0.0,
        end_time=_time(body, "end_time", optional=True),
        score=score,
        sub_label=_sub_label(body.get("sub_label")),
        entered_zones=_names(body, zones_key),
        current_zones=_names(body, "current_zones") if zones_key != "zones" else (),
        has_snapshot=_flag(body, "has_snapshot", False),
        has_clip=_flag(body, "has_clip", False),
    )


def _json(payload: bytes) -> Any:
    if len(payload) > MAX_MESSAGE_BYTES:
        raise _fail(Reason.BAD_LENGTH, f"{len(payload)} bytes, over {MAX_MESSAGE_BYTES}")
    try:
        return json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise _fail(Reason.MALFORMED_JSON, f"not UTF-8 JSON: {exc}") from None


def decode_event_message(payload: bytes) -> FrigateMessage:
    """A ``<prefix>/events`` message; ``DecodeError`` names what is wrong with a bad one."""
    body = _json(payload)
    if not isinstance(body, dict):
        raise _fail(Reason.MALFORMED_JSON, "the message is not a JSON object")
    kind = body.get("type")
    if kind not in MESSAGE_TYPES:
        raise _fail(Reason.BAD_FIELD, f"'type' must be new, update or end, not {kind!r}")
    if "after" not in body:
        raise _fail(Reason.MALFORMED_JSON, "keys missing: after")
    return FrigateMessage(str(kind), _object(body["after"], zones_key="entered_zones", score=None))


def decode_api_event(body: Any) -> FrigateObject:
    """One event of Frigate's ``GET /api/events`` (zones in ``zones``, scores in ``data``)."""
    data = body.get("data") if isinstance(body, dict) else None
    score = None
    if isinstance(data, dict):
        score = _number(data, "top_score", optional=True)
        if score is None:
            score = _number(data, "score", optional=True)
    return _object(body, zones_key="zones", score=score)


def parse_names(text: str) -> tuple[str, ...]:
    """``"z1, z2"`` → ``("z1", "z2")``: the comma-separated labels or zones of a camera."""
    names = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    for name in names:
        if len(name) > MAX_NAME_CHARS or not name.isprintable() or " " in name:
            raise ValueError(f"{name!r} is not a Frigate label or zone name")
    return names


def parse_hours(text: str) -> tuple[int, int]:
    """``"22-06"`` → ``(22, 6)``: watched from 22:00 to 06:00 (wrapping midnight)."""
    start, dash, end = text.strip().partition("-")
    if not dash or not (start.isdigit() and end.isdigit()) or len(start) > 2 or len(end) > 2:
        raise ValueError(f"{text!r} is not hours like 22-06")
    first, last = int(start), int(end)
    if not (0 <= first <= 23 and 0 <= last <= 24) or first == last % 24:
        raise ValueError(f"{text!r}: hours are 00-23 (end up to 24) and must differ")
    return first, last


@dataclass(frozen=True, slots=True)
class CameraWatch:
    """What a camera device watches for: labels, zones (empty: all) and hours (None: always)."""

    labels: tuple[str, ...] = DEFAULT_LABELS
    zones: tuple[str, ...] = ()
    hours: tuple[int, int] | None = None

    @classmethod
    def of(cls, labels: str, zones: str, hours: str | None) -> CameraWatch:
        """From a device's stored ``camera_labels``, ``camera_zones`` and ``camera_hours``."""
        return cls(
            parse_names(labels) or DEFAULT_LABELS,
            parse_names(zones),
            parse_hours(hours) if hours else None,
        )

    def within_hours(self, at: datetime, zone: tzinfo) -> bool:
        if self.hours is None:
            return True
        first, last = self.hours
        hour = at.astimezone(zone).hour
        if first < last:
            return first <= hour < last
        return hour >= first or hour < last

    def refusal(self, obj: FrigateObject, zone: tzinfo) -> str | None:
        """Why ``obj`` does not qualify, or None when it does."""
        if obj.false_positive:
            return "a false positive"
        if obj.label not in self.labels:
            return f"label {obj.label} is not watched"
        if self.zones and not set(self.zones) & set(obj.entered_zones):
            return "no watched zone entered"
        if not self.within_hours(obj.started_at, zone):
            return "outside the watched hours"
        return None

    def qualifies(self, obj: FrigateObject, zone: tzinfo) -> bool:
        return self.refusal(obj, zone) is None


def details(obj: FrigateObject, snapshot_url: str | None) -> dict[str, Any]:
    """What the event keeps of the object (DESIGN §3: camera label, zones, snapshot)."""
    return {
        "frigate_id": obj.id,
        "camera": obj.camera,
        "label": obj.label,
        "sub_label": obj.sub_label,
        "zones": list(obj.zones),
        "score": obj.score,
        "start_time": obj.start_time,
        "end_time": obj.end_time,
        "snapshot": snapshot_url,
    }


def snapshot_url(base_url: str, obj: FrigateObject) -> str | None:
    """Frigate's snapshot of the event, when it has one and Frigate's URL is known."""
    if not base_url or not obj.has_snapshot:
        return None
    return f"{base_url.rstrip('/')}/api/events/{obj.id}/snapshot.jpg"

"""The pure Frigate codec (DESIGN §9.3): decoding messages and API events, the qualifying rules."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from alertnet.protocol import DecodeError, Reason
from alertnet.protocol.frigate import (
    CameraWatch,
    decode_api_event,
    decode_event_message,
    parse_hours,
)
from tests.frigate.support import NIGHT, NOON, after, message

TASHKENT = ZoneInfo("Asia/Tashkent")


def _at(hour: int, minute: int = 0) -> float:
    return datetime(2025, 11, 30, hour, minute, tzinfo=TASHKENT).timestamp()


def test_a_message_decodes_its_after() -> None:
    obj = decode_event_message(message("update", after("1.5-abc", entered_zones=["yard"]))).after
    assert (obj.id, obj.camera, obj.label, obj.entered_zones) == (
        "1.5-abc",
        "gate",
        "person",
        ("yard",),
    )
    assert obj.score == 0.83 and obj.end_time is None and not obj.false_positive


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\xff\xfe", Reason.MALFORMED_JSON),
        (b"[1, 2]", Reason.MALFORMED_JSON),
        (json.dumps({"type": "new"}).encode(), Reason.MALFORMED_JSON),
        (json.dumps({"type": "moved", "after": {}}).encode(), Reason.BAD_FIELD),
        (message("new", {**after("x"), "start_time": "late"}), Reason.BAD_FIELD),
        (message("new", {**after("x"), "false_positive": "no"}), Reason.BAD_FIELD),
        (message("new", {**after("x"), "entered_zones": "yard"}), Reason.BAD_FIELD),
        (message("new", {**after("x"), "camera": 7}), Reason.BAD_FIELD),
        (
            message("new", {k: v for k, v in after("x").items() if k != "label"}),
            Reason.MALFORMED_JSON,
        ),
    ],
)
def test_bad_messages_name_their_reason(payload: bytes, reason: Reason) -> None:
    with pytest.raises(DecodeError) as caught:
        decode_event_message(payload)
    assert caught.value.reason is reason


def test_an_api_event_reads_zones_and_the_score_in_data() -> None:
    obj = decode_api_event(
        {
            "id": "9.1-zz",
            "camera": "gate",
            "label": "person",
            "start_time": NIGHT,
            "end_time": NIGHT + 9,
            "false_positive": False,
            "zones": ["yard"],
            "has_snapshot": True,
            "data": {"top_score": 0.91, "score": 0.7},
        }
    )
    assert (obj.entered_zones, obj.score, obj.end_time) == (("yard",), 0.91, NIGHT + 9)


@pytest.mark.parametrize(
    ("text", "expected"), [("22-06", (22, 6)), ("8-20", (8, 20)), ("18-24", (18, 24))]
)
def test_hours_parse(text: str, expected: tuple[int, int]) -> None:
    assert parse_hours(text) == expected


@pytest.mark.parametrize("text", ["22", "22-22", "00-24", "25-06", "a-b", "-6", "0-24-1", "22-6x"])
def test_bad_hours_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_hours(text)


@pytest.mark.parametrize(
    ("hour", "minute", "inside"),
    [
        (22, 0, True),
        (23, 59, True),
        (0, 0, True),
        (5, 59, True),
        (6, 0, False),
        (12, 0, False),
        (21, 59, False),
    ],
)
def test_night_hours_wrap_midnight_in_the_configured_zone(
    hour: int, minute: int, inside: bool
) -> None:
    watch = CameraWatch.of("person", "", "22-06")
    obj = decode_event_message(message("new", after("h", start_time=_at(hour, minute)))).after
    assert watch.qualifies(obj, TASHKENT) is inside
    # The same instant read in UTC would be 5 hours earlier: the zone matters.
    assert datetime.fromtimestamp(obj.start_time, UTC).hour == (hour - 5) % 24


def test_the_rules() -> None:
    watch = CameraWatch.of("person,car", "yard,door", None)
    ok = after("a", entered_zones=["street", "yard"])
    assert watch.refusal(decode_api_event({**ok, "zones": ok["entered_zones"]}), TASHKENT) is None
    cases = {
        "a false positive": after("b", entered_zones=["yard"], false_positive=True),
        "label dog is not watched": after("c", label="dog", entered_zones=["yard"]),
        "no watched zone entered": after("d", entered_zones=["street"]),
    }
    for why, obj in cases.items():
        decoded = decode_event_message(message("update", obj)).after
        assert watch.refusal(decoded, TASHKENT) == why
    noon = decode_event_message(message("new", after("e", start_time=NOON))).after
    assert CameraWatch.of("", "", "22-06").refusal(noon, TASHKENT) == "outside the watched hours"
    assert CameraWatch.of("", "", None).labels == ("person",)

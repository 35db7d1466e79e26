"""The parts of CAP out that need no database: message numbering from an audit trail, the
``sent`` format, a camera's certainty, and the sender setting (DESIGN §9.4)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from alertnet.alerts.cap import (
    CapMessage,
    Phase,
    _cap_document,
    _cap_element,
    _Source,
    cap_messages,
    cap_time,
)
from alertnet.auth.scope import Scope
from alertnet.config import Settings, default_cap_sender
from alertnet.models import Role
from tests.cap.cap12 import NS, assert_valid_cap, date_time

T0 = datetime(2026, 3, 2, 9, 30, 15, 123456, tzinfo=UTC)
TASHKENT = ZoneInfo("Asia/Tashkent")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_only_a_change_of_phase_is_a_new_message() -> None:
    trail = [
        (at(0), None, "new"),
        (at(1), "new", "offered"),
        (at(31), "offered", "new"),
        (at(32), "new", "escalated"),
        (at(90), "escalated", "offered"),
        (at(95), "offered", "accepted"),
        (at(96), "accepted", "accepted"),
        (at(300), "accepted", "on_scene"),
        (at(900), "on_scene", "closed"),
    ]
    assert cap_messages("closed", T0, trail) == [
        CapMessage(1, Phase.OPEN, T0),
        CapMessage(2, Phase.ACCEPTED, at(95)),
        CapMessage(3, Phase.ON_SCENE, at(300)),
        CapMessage(4, Phase.CLOSED, at(900)),
    ]


def test_a_trail_that_misses_the_current_state_still_ends_in_it() -> None:
    assert cap_messages("new", T0, []) == [CapMessage(1, Phase.OPEN, T0)]
    assert cap_messages("cancelled", T0, [(at(0), None, "new")]) == [
        CapMessage(1, Phase.OPEN, T0),
        CapMessage(2, Phase.CANCELLED, T0),
    ]


def test_sent_has_no_fraction_and_a_numeric_offset() -> None:
    assert cap_time(T0, TASHKENT) == "2026-03-02T14:30:15+05:00"
    assert cap_time(T0, ZoneInfo("UTC")) == "2026-03-02T09:30:15-00:00"
    assert cap_time(T0, ZoneInfo("Asia/Kolkata")) == "2026-03-02T15:00:15+05:30"
    assert cap_time(T0, ZoneInfo("America/St_Johns")) == "2026-03-02T06:00:15-03:30"


@settings(database=None, deadline=None, max_examples=200)
@given(
    st.datetimes(  # hypothesis wants naive bounds; the values it draws are in UTC
        min_value=datetime(1971, 1, 1),  # noqa: DTZ001
        max_value=datetime(2100, 1, 1),  # noqa: DTZ001
        timezones=st.just(UTC),
    ),
    st.sampled_from(["UTC", "Asia/Tashkent", "Europe/London", "America/Caracas", "Asia/Kathmandu"]),
)
def test_every_sent_passes_the_standards_date_time_rule(moment: datetime, zone: str) -> None:
    text = cap_time(moment, ZoneInfo(zone))
    assert date_time(text) is None, text
    assert datetime.fromisoformat(text) == moment.replace(microsecond=0)


def _camera(messages: list[CapMessage]) -> bytes:
    source = _Source(
        alert_id=7,
        category="camera",
        state="verify",
        drill=False,
        silent=False,
        outcome=None,
        press_count=1,
        lat=41.3,
        lon=69.2,
        opened_at=T0,
        site="business",
        device_name="Back yard camera",
        mahalla="Chorsu",
        messages=tuple(messages),
    )
    observer = Scope(Role.OBSERVER, 1, "obs", mahalla_id=1)
    return _cap_document(_cap_element(source, observer, "alertnet@test", TASHKENT))


def test_a_camera_alert_is_likely_until_a_dispatcher_confirms_it() -> None:
    unconfirmed = assert_valid_cap(_camera([CapMessage(1, Phase.VERIFY, T0)]))
    assert unconfirmed.findtext(f"{{{NS}}}info/{{{NS}}}certainty") == "Likely"
    assert unconfirmed.findtext(f"{{{NS}}}info/{{{NS}}}severity") == "Moderate"
    dismissed = assert_valid_cap(
        _camera([CapMessage(1, Phase.VERIFY, T0), CapMessage(2, Phase.CANCELLED, at(30))])
    )
    assert dismissed.findtext(f"{{{NS}}}msgType") == "Cancel"
    assert dismissed.findtext(f"{{{NS}}}info/{{{NS}}}certainty") == "Likely"
    confirmed = assert_valid_cap(
        _camera([CapMessage(1, Phase.VERIFY, T0), CapMessage(2, Phase.OPEN, at(30))])
    )
    assert confirmed.findtext(f"{{{NS}}}info/{{{NS}}}certainty") == "Observed"
    assert b"Back yard camera" not in _camera([CapMessage(1, Phase.VERIFY, T0)])


@pytest.mark.parametrize("sender", ["police dept", "a,b", "a<b", "a&b", "tab\there"])
def test_a_sender_cap_forbids_is_refused(sender: str) -> None:
    with pytest.raises(ValidationError, match="CAP sender"):
        Settings(cap_sender=sender)


def test_the_default_sender_is_alertnet_at_the_host() -> None:
    assert Settings(cap_sender="").cap_sender.startswith("alertnet@")
    assert Settings(cap_sender=" police@example.uz ").cap_sender == "police@example.uz"
    assert default_cap_sender("odd host,name") == "alertnet@odd-host-name"

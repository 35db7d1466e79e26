"""SIA-DCS and Contact ID codes → alertnet's domain, row by row from DESIGN §9.1's table, and
the ``dc09:`` dedup key."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alertnet.ingest.dc09.codes import (
    Action,
    Category,
    Signal,
    TroubleKind,
    dedup_key,
    readings,
    split_account,
)
from alertnet.ingest.dc09.frame import encode_message, open_envelope, parse_frame
from alertnet.ingest.dc09.intake import classify

A, R = Action.ALARM, Action.RESTORE
INTRUSION, PANIC, FIRE = Category.INTRUSION, Category.PANIC, Category.FIRE
MEDICAL, TAMPER = Category.MEDICAL, Category.TAMPER

# (SIA code, action, category, trouble kind, silent) — §9.1's table.
SIA_TABLE = [
    ("BA", A, INTRUSION, None, False),
    ("BV", A, INTRUSION, None, False),
    ("BR", R, INTRUSION, None, False),
    ("PA", A, PANIC, None, False),
    ("PR", R, PANIC, None, False),
    ("HA", A, PANIC, None, True),
    ("HR", R, PANIC, None, True),
    ("FA", A, FIRE, None, False),
    ("FR", R, FIRE, None, False),
    ("MA", A, MEDICAL, None, False),
    ("MR", R, MEDICAL, None, False),
    ("TA", A, TAMPER, None, False),
    ("TR", R, TAMPER, None, False),
    ("AT", Action.TROUBLE, None, TroubleKind.MAINS, False),
    ("AR", Action.TROUBLE_RESTORE, None, TroubleKind.MAINS, False),
    ("YT", Action.TROUBLE, None, TroubleKind.BATTERY, False),
    ("YR", Action.TROUBLE_RESTORE, None, TroubleKind.BATTERY, False),
    ("OC", Action.CANCEL, None, None, False),
    ("BC", Action.CANCEL, INTRUSION, None, False),
    ("OP", Action.RECORD, None, None, False),
    ("CL", Action.RECORD, None, None, False),
    ("RX", Action.TEST, None, None, False),
    ("RP", Action.SUPERVISION, None, None, False),
]

# (Contact ID events, category, silent) — alarms with qualifier 1, restores with 3.
CID_ALARMS = [
    ([130, 131, 132, 133, 134, 135, 136, 138, 139, 140], INTRUSION, False),
    ([146], INTRUSION, True),
    ([120, 123], PANIC, False),
    ([121, 122, 124, 125], PANIC, True),
    (list(range(110, 119)), FIRE, False),
    ([100, 101, 102], MEDICAL, False),
    ([137, 144], TAMPER, False),
]


@pytest.mark.parametrize(("code", "action", "category", "trouble", "silent"), SIA_TABLE)
def test_sia_table(
    code: str,
    action: Action,
    category: Category | None,
    trouble: TroubleKind | None,
    silent: bool,
) -> None:
    signal = classify("SIA-DCS", f"#1234|Nri2/{code}017")
    assert (signal.action, signal.category, signal.trouble, signal.silent) == (
        action,
        category,
        trouble,
        silent,
    )
    assert signal.code == code and signal.partition == "2"
    if code in ("OP", "CL", "OC", "BC"):
        assert (signal.user, signal.zone) == ("017", None)
    else:
        assert (signal.zone, signal.user) == ("017", None)


@pytest.mark.parametrize(("events", "category", "silent"), CID_ALARMS)
def test_contact_id_alarms_and_restores(
    events: list[int], category: Category, silent: bool
) -> None:
    for event in events:
        alarm = classify("ADM-CID", f"#1234|1{event} 03 015")
        assert alarm == Signal(A, f"E{event}", category, None, silent, "015", "03", None, "1")
        restore = classify("ADM-CID", f"3{event} 03 015")
        assert (restore.action, restore.code, restore.category) == (R, f"R{event}", category)
        status = classify("ADM-CID", f"6{event} 03 015")
        assert (status.action, status.code) == (Action.RECORD, f"P{event}")


def test_contact_id_troubles() -> None:
    assert classify("ADM-CID", "1301 00 000") == Signal(
        Action.TROUBLE, "E301", None, TroubleKind.MAINS, False, "000", "00", None, "1"
    )
    assert classify("ADM-CID", "3301 00 000").action is Action.TROUBLE_RESTORE
    assert classify("ADM-CID", "1302 00 000").trouble is TroubleKind.BATTERY
    restored = classify("ADM-CID", "3302 00 000")
    assert (restored.action, restored.trouble) == (Action.TROUBLE_RESTORE, TroubleKind.BATTERY)


def test_contact_id_cancel_open_close_test_supervision() -> None:
    cancel = classify("ADM-CID", "1406 01 007")
    assert (cancel.action, cancel.user, cancel.zone) == (Action.CANCEL, "007", None)
    for event in (401, 402, 403, 404, 405, 407, 408, 409):
        for qualifier in "13":
            signal = classify("ADM-CID", f"{qualifier}{event} 01 004")
            assert (signal.action, signal.user) == (Action.RECORD, "004")
    assert classify("ADM-CID", "1601 00 000").action is Action.TEST
    assert classify("ADM-CID", "1602 00 000").action is Action.SUPERVISION
    assert classify("ADM-CID", "1603 00 000").action is Action.SUPERVISION
    assert classify("NULL", "").action is Action.SUPERVISION
    assert classify("NULL", "").code == "NULL"


def test_contact_id_without_spaces() -> None:
    assert classify("ADM-CID", "113001015").code == "E130"


@pytest.mark.parametrize(
    ("token", "data"),
    [
        ("ADM-CID", "1999 01 001"),  # not in the table
        ("ADM-CID", "1150 01 001"),  # a real 24-hour code alertnet does not map
        ("ADM-CID", "1406x"),  # not Contact ID at all
        ("ADM-CID", "2130 01 015"),  # no such qualifier
        ("SIA-DCS", "Nri1/ZZ501"),
        ("SIA-DCS", "Nri1/UX"),
        ("SIA-DCS", "N"),
        ("SIA-DCS", ""),
        ("SIA-DCS", "#1234|hello"),
        ("SIA-DCX", "Nri1/BA501"),
    ],
)
def test_unknown_codes_are_never_guessed(token: str, data: str) -> None:
    signal = classify(token, data)
    assert signal.action is Action.UNKNOWN
    assert signal.trouble is TroubleKind.UNKNOWN_CODE
    assert signal.category is None and not signal.silent


def test_sia_forms() -> None:
    assert classify("SIA-DCS", "Nri1/BA501") == classify("SIA-DCS", "#1234|Nri1/BA501")
    timed = classify("SIA-DCS", "#1234|Nti12:30/id5/ri3/PA")
    assert (timed.code, timed.partition, timed.zone) == ("PA", "3", None)
    # One event per message is the rule; with several, the alarm speaks, the rest are kept.
    several = classify("SIA-DCS", "Nri1/BR501/BA502")
    assert (several.code, several.zone, several.other_codes) == ("BA", "502", ("BR",))


def test_of_several_alarms_the_highest_priority_one_speaks() -> None:
    """A tamper first never hides the panic after it, nor a burglary the fire."""
    panic = classify("SIA-DCS", "#1234|Nri1/TA3/PA5")
    assert (panic.category, panic.code, panic.zone, panic.other_codes) == (
        "panic",
        "PA",
        "5",
        ("TA",),
    )
    fire = classify("SIA-DCS", "Nri1/BA501/FA502")
    assert (fire.category, fire.zone, fire.other_codes) == ("fire", "502", ("BA",))
    first_of_equals = classify("SIA-DCS", "Nri1/BA1/BV2")
    assert (first_of_equals.code, first_of_equals.other_codes) == ("BA", ("BV",))
    text = classify("SIA-DCS", "Nri1/FA7^kitchen^")
    assert (text.code, text.zone) == ("FA", "7")
    assert classify("SIA-DCS", "NA").code == "NA"  # a code starting with N


def test_a_block_of_several_alarms_reads_one_signal_per_alarm() -> None:
    """``codes`` stays pure: it gives every alarm of a block, ``intake.classify`` picks one."""
    several = readings("SIA-DCS", "Nri1/TA3/BR4/PA5")
    assert [(signal.code, signal.zone, signal.other_codes) for signal in several] == [
        ("TA", "3", ("BR", "PA")),
        ("PA", "5", ("TA", "BR")),
    ]
    assert readings("SIA-DCS", "Nri1/BR501/BA502") == (classify("SIA-DCS", "Nri1/BR501/BA502"),)
    assert readings("SIA-DCS", "Nri1/BR501/OP2") == (classify("SIA-DCS", "Nri1/BR501/OP2"),)


def test_split_account() -> None:
    assert split_account("#1234|Nri1/BA501") == ("1234", "Nri1/BA501")
    assert split_account("1130 01 015") == (None, "1130 01 015")


@settings(database=None, deadline=None, max_examples=300)
@given(st.sampled_from(["SIA-DCS", "ADM-CID", "NULL", "X"]), st.text(max_size=60))
def test_classify_never_raises_and_alarms_only_from_the_table(token: str, data: str) -> None:
    signal = classify(token, data)
    if signal.action is Action.ALARM:
        known = {row[0] for row in SIA_TABLE if row[1] is A}
        known_cid = {f"E{e}" for events, _c, _s in CID_ALARMS for e in events}
        assert signal.code in known | known_cid
    if signal.action is Action.UNKNOWN:
        assert signal.trouble is TroubleKind.UNKNOWN_CODE


# -- dedup key ------------------------------------------------------------------------------------


def test_dedup_key_shape() -> None:
    key = dedup_key("SIA-DCS", "0001", "#1234|Nri1/BA501", ())
    prefix, seq, digest = key.split(":")
    assert (prefix, seq, len(digest)) == ("dc09", "0001", 16)
    assert int(digest, 16) >= 0
    assert key == dedup_key("*SIA-DCS", "0001", "#1234|Nri1/BA501", [])


def test_dedup_key_tells_messages_apart() -> None:
    base = dedup_key("SIA-DCS", "0001", "#1234|Nri1/BA501", ())
    assert base != dedup_key("SIA-DCS", "0002", "#1234|Nri1/BA501", ())
    assert base != dedup_key("ADM-CID", "0001", "#1234|Nri1/BA501", ())
    assert base != dedup_key("SIA-DCS", "0001", "#1234|Nri1/BA502", ())
    assert base != dedup_key("SIA-DCS", "0001", "#1234|Nri1/BA501", ("X1",))
    # No ambiguity between where data ends and x-data begins.
    assert dedup_key("SIA-DCS", "1", "a", ("b",)) != dedup_key("SIA-DCS", "1", "ab", ())


def test_encrypted_retry_is_the_same_message() -> None:
    key = bytes(range(24))
    keys = set()
    for attempt in range(3):
        raw = encode_message(
            "ADM-CID",
            17,
            "1234",
            "#1234|1130 01 015",
            ["X1"],
            key=key,
            timestamp=datetime(2024, 1, 1, 0, 0, attempt, tzinfo=UTC),
            rng=random.Random(attempt),
        )
        envelope = parse_frame(raw)
        message = open_envelope(envelope, key)
        keys.add(dedup_key(envelope.token, envelope.seq, message.data, message.xdata))
    assert len(keys) == 1

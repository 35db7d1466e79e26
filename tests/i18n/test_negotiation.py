"""Accept-Language parsing and the choice among offered languages (``alertnet.i18n``).

The header comes from any client: the parser must never raise, whatever the string.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alertnet.i18n import (
    LANGUAGES,
    MAX_RANGES,
    LanguageRange,
    negotiate,
    offered_language,
    parse_accept_language,
)


def test_offered_languages_start_with_the_default() -> None:
    assert LANGUAGES == ("uz", "ru", "en")


def test_parse_orders_by_weight_and_keeps_header_order_for_ties() -> None:
    assert parse_accept_language("ru-RU;q=0.8, uz-Cyrl, en;q=0.8, *;q=0.1") == [
        LanguageRange("uz-cyrl", 1.0),
        LanguageRange("ru-ru", 0.8),
        LanguageRange("en", 0.8),
        LanguageRange("*", 0.1),
    ]


@pytest.mark.parametrize(
    "header",
    [
        "",
        ",,,",
        ";q=1",
        "ru;q=2",  # above 1
        "ru;q=0.1234",  # four decimals
        "ru;q=-1",
        "ru;q=nan",
        "ru;q=",
        "r u",
        "русский",
        "toolongtag-x",
        "ru-",
    ],
)
def test_malformed_ranges_are_left_out(header: str) -> None:
    assert parse_accept_language(header) == []


def test_parameters_other_than_q_are_ignored() -> None:
    assert parse_accept_language("ru;level=1;q=0.5") == [LanguageRange("ru", 0.5)]


def test_only_the_first_ranges_of_a_long_header_are_read() -> None:
    header = ",".join(["fr"] * MAX_RANGES + ["ru"])
    assert len(parse_accept_language(header)) == MAX_RANGES
    assert negotiate(header) == "uz"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "uz"),
        ("", "uz"),
        ("ru", "ru"),
        ("ru-RU,ru;q=0.9,en-US;q=0.8,en;q=0.7", "ru"),
        ("en-GB, ru;q=0.5", "en"),
        ("ru-RU;q=0.8, en;q=0.9", "en"),
        ("uz-UZ", "uz"),
        ("uz-Cyrl", "uz"),  # not offered in Cyrillic: Uzbek in Latin script
        ("uz-Cyrl-UZ;q=0.9, ru;q=0.5", "uz"),
        ("UZ-latn-uz", "uz"),
        ("fr, de;q=0.9", "uz"),  # nothing offered: the default
        ("fr, en;q=0.1", "en"),
        ("*", "uz"),
        ("fr, *;q=0.5, ru;q=0.4", "uz"),
        ("uz;q=0, *", "ru"),  # the wildcard, but Uzbek ruled out
        ("ru;q=0", "uz"),
        ("ru;q=0, en;q=0", "uz"),  # only refusals: the default regardless
        ("x-klingon, ru", "ru"),
        ("zh-Hant-TW-x-private, en;q=0.3", "en"),
    ],
)
def test_negotiate(header: str | None, expected: str) -> None:
    assert negotiate(header) == expected


def test_negotiate_falls_back_to_the_given_default() -> None:
    assert negotiate("fr", default="en") == "en"
    assert negotiate("*", default="ru") == "ru"
    assert negotiate(None, default="ru") == "ru"


def test_offered_language_names_an_offered_code_in_any_case() -> None:
    assert offered_language("RU") == "ru"
    assert offered_language(" en ") == "en"
    assert offered_language("fr") is None
    assert offered_language("ru-RU") is None


# Headers as clients send them, and any text at all.
_TAG = st.from_regex(r"[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8}){0,3}|\*", fullmatch=True)
_WEIGHT = st.one_of(st.just(""), st.from_regex(r";\s*q=[0-9.]{0,6}", fullmatch=True))
_PLAUSIBLE_HEADER = st.lists(st.tuples(_TAG, _WEIGHT), max_size=12).map(
    lambda items: ", ".join(tag + weight for tag, weight in items)
)


@given(st.one_of(st.text(), _PLAUSIBLE_HEADER))
def test_parse_never_raises_and_answers_an_offered_language(header: str) -> None:
    ranges = parse_accept_language(header)
    assert len(ranges) <= MAX_RANGES
    assert all(0.0 <= entry.quality <= 1.0 for entry in ranges)
    assert [entry.quality for entry in ranges] == sorted(
        (entry.quality for entry in ranges), reverse=True
    )
    assert negotiate(header) in LANGUAGES
    assert negotiate(header, default="en") in LANGUAGES

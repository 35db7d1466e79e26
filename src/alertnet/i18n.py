"""Which language a page speaks (DESIGN §11), decided in one place.

alertnet offers Uzbek in Latin script (``uz``, the default), Russian (``ru``) and English
(``en``). A signed-in user's stored choice wins; before login (or until the user chooses) the
browser's ``Accept-Language`` decides, then ``ALERTNET_DEFAULT_LANGUAGE``. The API itself stays
in English: errors carry an English ``detail`` and a stable ``code`` the pages translate.

``Accept-Language`` comes from any client, so ``parse_accept_language`` never raises: a range
that is not a language tag, or a weight that is not a valid ``q`` value, is skipped, and only
the first ``MAX_RANGES`` ranges of a header are read. Matching is RFC 4647 "lookup": a range is
cut from the right until it names an offered language, so ``uz-Cyrl-UZ`` and ``uz-UZ`` find
``uz``; ``*`` stands for the default; ``q=0`` rules a language out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

# Offered languages, the default first. A language is added here together with its catalogs.
LANGUAGES: Final[tuple[str, ...]] = ("uz", "ru", "en")
DEFAULT_LANGUAGE: Final = "uz"
DEFAULT_TIMEZONE: Final = "Asia/Tashkent"

# A header is one line from a client: read no more than this many of its ranges.
MAX_RANGES: Final = 32
WILDCARD: Final = "*"

_LANGUAGE_RANGE = re.compile(r"[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*|\*")
# RFC 9110 §12.4.2: qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )
_QVALUE = re.compile(r"0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?")
_OFFERED_BY_KEY: Final = {code.lower(): code for code in LANGUAGES}


@dataclass(frozen=True, slots=True)
class LanguageRange:
    """One entry of ``Accept-Language``: a language range (lower case) and its weight."""

    tag: str
    quality: float


def offered_language(code: str) -> str | None:
    """The offered language ``code`` names (any letter case), or None when it is not offered."""
    return _OFFERED_BY_KEY.get(code.strip().lower())


def parse_accept_language(header: str) -> list[LanguageRange]:
    """The well-formed ranges of an ``Accept-Language`` value, most wanted first (ties keep
    the header's order). Never raises: whatever cannot be read is left out."""
    ranges: list[LanguageRange] = []
    for item in header.split(",", MAX_RANGES)[:MAX_RANGES]:
        tag, *params = (part.strip() for part in item.split(";"))
        if not _LANGUAGE_RANGE.fullmatch(tag):
            continue
        quality = 1.0
        for param in params:
            name, sep, value = param.partition("=")
            if name.strip().lower() != "q" or not sep:
                continue
            value = value.strip()
            quality = float(value) if _QVALUE.fullmatch(value) else -1.0
        if quality >= 0:
            ranges.append(LanguageRange(tag.lower(), quality))
    ranges.sort(key=lambda entry: entry.quality, reverse=True)
    return ranges


def _lookup(tag: str, offered: dict[str, str]) -> str | None:
    """RFC 4647 lookup: ``uz-cyrl-uz`` → ``uz-cyrl`` → ``uz``, the first that is offered."""
    subtags = tag.split("-")
    while subtags:
        found = offered.get("-".join(subtags))
        if found is not None:
            return found
        subtags.pop()
        if subtags and len(subtags[-1]) == 1:  # never end on a singleton such as "x"
            subtags.pop()
    return None


def negotiate(
    header: str | None,
    *,
    default: str = DEFAULT_LANGUAGE,
    offered: Sequence[str] = LANGUAGES,
) -> str:
    """The offered language ``Accept-Language: header`` wants most, else ``default``."""
    if not header:
        return default
    by_key = {code.lower(): code for code in offered}
    ranges = parse_accept_language(header)
    refused = _refused(ranges, by_key)
    for entry in ranges:
        if entry.quality == 0:
            break  # sorted: nothing acceptable follows
        if entry.tag == WILDCARD:
            wildcard_choice = _first_allowed([default, *offered], refused)
            if wildcard_choice is not None:
                return wildcard_choice
            continue
        found = _lookup(entry.tag, by_key)
        if found is not None and found not in refused:
            return found
    return default


def _refused(ranges: Iterable[LanguageRange], by_key: dict[str, str]) -> set[str]:
    """Offered languages the client ruled out with ``q=0`` (exact tags only)."""
    return {by_key[entry.tag] for entry in ranges if entry.quality == 0 and entry.tag in by_key}


def _first_allowed(candidates: Iterable[str], refused: set[str]) -> str | None:
    return next((code for code in candidates if code not in refused), None)

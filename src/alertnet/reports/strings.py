"""Text for the server-rendered reports, from the same catalogs the pages use (DESIGN §11).

A report is part of the console: its texts are the ``shared`` and ``console`` sections of
``web/static/i18n/<language>.json`` (its own keys start with ``report.``; category, state and
outcome names are the console's). ``Texts(language).t(key, **params)`` works like the pages'
``t()``: ``{name}`` placeholders, plural forms picked by ``count`` with the language's CLDR
rules (Babel), counts written the language's way. A missing key shows as the key itself, which
the report tests look for.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any, Final

from babel import Locale
from babel.numbers import format_decimal

CATALOG_DIR: Final = Path(__file__).resolve().parents[1] / "web" / "static" / "i18n"
SECTIONS: Final = ("shared", "console")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


@functools.cache
def catalog(language: str) -> dict[str, Any]:
    """The report's texts in ``language`` (read once per process)."""
    sections = json.loads((CATALOG_DIR / f"{language}.json").read_text(encoding="utf-8"))
    merged: dict[str, Any] = {}
    for section in SECTIONS:
        merged.update(sections[section])
    return merged


class Texts:
    """The texts of one language."""

    def __init__(self, language: str) -> None:
        self.language = language
        self._catalog = catalog(language)
        self._locale = Locale.parse(language)

    def has(self, key: str) -> bool:
        return key in self._catalog

    def number(self, value: float) -> str:
        return str(format_decimal(value, locale=self._locale))

    def t(self, key: str, **params: Any) -> str:
        value = self._catalog.get(key)
        if isinstance(value, dict):
            form = self._locale.plural_form(abs(int(params.get("count", 0))))
            value = value.get(form, value.get("other"))
        if not isinstance(value, str):
            return key

        def fill(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in params:
                return match.group(0)
            param = params[name]
            if name == "count" and isinstance(param, int | float):
                return self.number(param)
            return str(param)

        return _PLACEHOLDER.sub(fill, value)

    def label(self, group: str, code: str | None) -> str:
        """The text of a server code (``label("state", "closed")``), or the code made
        readable when the catalog has none."""
        if not code:
            return ""
        key = f"{group}.{code}"
        return self.t(key) if self.has(key) else code.replace("_", " ")

    def duration(self, seconds: float | None) -> str:
        """``4 s``, ``3 min 05 s``, ``2 h 05 min``, ``1 d 3 h``: as the console writes them."""
        if seconds is None:
            return "—"
        s = round(seconds)
        if s < 60:
            return self.t("duration.s", s=s)
        if s < 3600:
            return self.t("duration.min-s", min=s // 60, s=f"{s % 60:02d}")
        if s < 86400:
            return self.t("duration.h-min", h=s // 3600, min=f"{s // 60 % 60:02d}")
        return self.t("duration.d-h", d=s // 86400, h=s // 3600 % 24)

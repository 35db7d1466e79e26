"""A tiny HTML builder for the server-rendered reports: every text is escaped unless it is
already ``Html`` (built here), so a device name or a note can never become markup.

    el("td", {"class": "num"}, 42)  →  Html('<td class="num">42</td>')
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from html import escape
from typing import Final, TypeAlias

VOID_ELEMENTS: Final = frozenset({"meta", "link", "input", "br", "img"})


class Html(str):
    """Markup that is safe to insert as it is."""


Child: TypeAlias = "Html | str | int | float | Iterable[Child] | None"


def render(child: Child) -> Html:
    """``child`` as markup: text escaped, numbers written, None and False left out."""
    if child is None or child is False:
        return Html("")
    if isinstance(child, Html):
        return child
    if isinstance(child, str):
        return Html(escape(child, quote=False))
    if isinstance(child, int | float):
        return Html(escape(str(child)))
    return Html("".join(render(part) for part in child))


def el(
    tag: str, attrs: Mapping[str, str | int | bool | None] | None = None, *children: Child
) -> Html:
    """``<tag attrs>children</tag>``; an attribute that is None or False is left out, True is
    written bare."""
    parts = [tag]
    for name, value in (attrs or {}).items():
        if value is None or value is False:
            continue
        if value is True:
            parts.append(name)
        else:
            parts.append(f'{name}="{escape(str(value), quote=True)}"')
    opening = f"<{' '.join(parts)}>"
    if tag in VOID_ELEMENTS:
        return Html(opening)
    return Html(f"{opening}{render(children)}</{tag}>")

"""Every text a page shows comes from the page's one catalog, which a translation replaces.

Each page (console, tablet, login) has ``static/<page>/strings.js``: its keys → English text,
including the keys of the ``shared/`` modules. The HTML names its texts with ``data-i18n``
and ``data-i18n-<attribute>`` (keeping the English in place for the moment before the script
runs); the modules ask ``t("key")``. The catalogs are JavaScript, so Chromium reads them:
the static files come from the real web router, through Playwright's request routing.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from typing import Any, Final

import pytest
import pytest_asyncio
from fastapi import FastAPI

from alertnet.web import router as web_router
from alertnet.web.pages import STATIC_DIR
from tests.support.asgi import AppClient

ORIGIN: Final = "http://alertnet.test"
PAGES: Final = ("console", "tablet", "login")
TRANSLATED_ATTRIBUTES: Final = ("aria-label", "title", "placeholder")
# t("key", …) / tParts("key", …), and keys built from a fixed prefix: t(`stats.period.${…}`).
LITERAL_KEY: Final = re.compile(r'\b(?:t|tParts)\(\s*"([^"]+)"')
KEY_PREFIX: Final = re.compile(r"\b(?:t|tParts)\(\s*`([^`$]+)\$\{")
LABEL_GROUP: Final = re.compile(r'\blabel\(\s*"([^"]+)"')
PLACEHOLDER: Final = re.compile(r"\{(\w+)\}")
COMMENT_LINE: Final = re.compile(r"^\s*//.*$", re.M)


class TranslatedHtml(HTMLParser):
    """The keys an HTML page names, each with the English the page carries for it."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: dict[str, str] = {}
        self.attributes: dict[str, str] = {}
        self._open: list[tuple[str, str | None, list[str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        for attribute in TRANSLATED_ATTRIBUTES:
            key = found.get(f"data-i18n-{attribute}")
            if key is not None:
                self.attributes[key] = found.get(attribute) or ""
        if tag in {"input", "meta", "link", "br", "img"}:
            return
        self._open.append((tag, found.get("data-i18n"), []))

    def handle_data(self, data: str) -> None:
        for _, _, text in self._open:
            text.append(data)

    def handle_endtag(self, tag: str) -> None:
        while self._open:
            name, key, text = self._open.pop()
            if key is not None:
                self.texts[key] = " ".join("".join(text).split())
            if name == tag:
                return


def page_html(page: str) -> TranslatedHtml:
    parser = TranslatedHtml()
    parser.feed((STATIC_DIR / f"{page}.html").read_text(encoding="utf-8"))
    return parser


def keys_used(directory: str) -> tuple[set[str], set[str], set[str]]:
    """The keys the modules in ``static/<directory>/`` ask for (comment lines left out)."""
    literal, prefixes, groups = set(), set(), set()
    for module in (STATIC_DIR / directory).glob("*.js"):
        source = COMMENT_LINE.sub("", module.read_text(encoding="utf-8"))
        literal.update(LITERAL_KEY.findall(source))
        prefixes.update(KEY_PREFIX.findall(source))
        groups.update(LABEL_GROUP.findall(source))
    return literal, prefixes, groups


def forms(value: Any) -> list[str]:
    """A catalog value's texts: the string, or each plural form."""
    return list(value.values()) if isinstance(value, dict) else [value]


# The English between the tags of an element with data-i18n (the page's fallback text).
FALLBACK_TEXT: Final = re.compile(r'(<[^>]*\sdata-i18n="[^"]+"[^>]*>)[^<]*<')


@pytest_asyncio.fixture
async def static_page(browser: Any) -> AsyncIterator[Any]:
    """A Chromium page on ``ORIGIN``, served by alertnet's web router (no API behind it).

    The pages come without their fallback English: what a page shows must be what its
    scripts filled in from the catalog.
    """
    app = FastAPI()
    app.include_router(web_router)
    async with AppClient(app, base_url=ORIGIN) as web:

        async def serve(route: Any) -> None:
            answer = await web.get(route.request.url.removeprefix(ORIGIN))
            body = answer.content
            if answer.headers.get("content-type", "").startswith("text/html"):
                body = FALLBACK_TEXT.sub(r"\1<", answer.text).encode()
            headers = {k: v for k, v in answer.headers.items() if k != "content-length"}
            await route.fulfill(status=answer.status_code, headers=headers, body=body)

        context = await browser.new_context(locale="en-GB")
        await context.route(f"{ORIGIN}/**", serve)
        page = await context.new_page()
        try:
            yield page
        finally:
            await context.close()


async def catalog_of(page: Any, module: str, name: str) -> dict[str, Any]:
    catalog: dict[str, Any] = await page.evaluate(
        "async ([module, name]) => (await import(module))[name]", [module, name]
    )
    return catalog


def assert_keys_known(directory: str, catalog: dict[str, Any]) -> None:
    """Every key the modules name (or build from a prefix, or look up by group) is there."""
    where = directory
    literal, prefixes, groups = keys_used(directory)
    assert literal, where
    assert literal - catalog.keys() == set(), f"{where}: keys used but missing from the catalog"
    for prefix in prefixes | {f"{group}." for group in groups}:
        assert any(key.startswith(prefix) for key in catalog), f"{where}: no {prefix}* text"


async def test_each_page_names_only_texts_of_its_catalog(static_page: Any) -> None:
    await static_page.goto(f"{ORIGIN}/login")
    shared = await catalog_of(static_page, "/static/shared/strings.js", "SHARED_STRINGS")
    assert_keys_known("shared", shared)

    for page in PAGES:
        catalog = await catalog_of(static_page, f"/static/{page}/strings.js", "STRINGS")
        assert shared.items() <= catalog.items(), f"{page} leaves out shared texts"
        assert_keys_known(page, catalog)

        html = page_html(page)
        assert html.texts, page
        for key, english in (html.texts | html.attributes).items():
            assert key in catalog, f"{page}.html names {key!r}, missing from its catalog"
            assert catalog[key] == english, f"{page}.html's English for {key!r} differs"

        for key, value in catalog.items():
            texts = forms(value)
            assert all(isinstance(text, str) and text for text in texts), key
            # A plural form may say the count in words ("once"); every other value is in all.
            values = {frozenset(PLACEHOLDER.findall(text)) - {"count"} for text in texts}
            assert len(values) == 1, f"{page}: plural forms of {key!r} differ in values"


@pytest.mark.parametrize("page", PAGES)
async def test_a_page_shows_its_catalog_texts_not_keys(static_page: Any, page: str) -> None:
    """The page fills every named text from its catalog as it starts (before any API call)."""
    await static_page.goto(f"{ORIGIN}/{page}")
    await static_page.wait_for_function(
        "[...document.querySelectorAll('[data-i18n]')].every((element) => element.textContent)"
    )
    catalog = await catalog_of(static_page, f"/static/{page}/strings.js", "STRINGS")
    shown: dict[str, str] = await static_page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll("[data-i18n]")]
            .map((element) => [element.dataset.i18n, element.textContent]))"""
    )
    assert shown.keys() == page_html(page).texts.keys()
    assert shown == {key: catalog[key] for key in shown}
    assert await static_page.title() == catalog["page.title"]

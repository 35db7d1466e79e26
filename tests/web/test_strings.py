"""Every text a page shows comes from the catalog of the page's language, complete in each.

The catalogs are ``static/i18n/<language>.json`` (``en``, ``uz``, ``ru``), each with the
sections ``shared`` (texts of the ``shared/`` modules), ``login``, ``console``, ``tablet`` and
``mahalla``; a page uses ``shared`` plus its own section. English is the source of the keys. The
HTML names its texts with ``data-i18n`` and ``data-i18n-<attribute>`` (keeping the English in
place for the moment before the script runs); the modules ask ``t("key")``.

Checked here, without a browser: every language has exactly the English keys, the same
``{placeholders}``, and the plural forms its language has (CLDR: one/other for English and
Uzbek, one/few/many/other for Russian); every key a module or page names is in the catalog.
In Chromium (static files from the real web router, ``/web/config.json`` answered by the test
with the language wanted): each page in each language shows its catalog's texts and no raw key,
and the browser's plural rules have exactly the forms the catalogs give.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from functools import cache
from html.parser import HTMLParser
from types import SimpleNamespace
from typing import Any, Final

import pytest
import pytest_asyncio
from fastapi import FastAPI

from alertnet.errors import code_for_status
from alertnet.web import router as web_router
from alertnet.web.pages import STATIC_DIR
from tests.support.asgi import AppClient, app_settings

ORIGIN: Final = "http://alertnet.test"
PAGES: Final = ("console", "tablet", "login", "mahalla")
SECTIONS: Final = ("shared", *PAGES)
LANGUAGES: Final = ("en", "uz", "ru")
# CLDR plural categories of cardinal numbers, per language.
PLURAL_FORMS: Final = {
    "en": {"one", "other"},
    "uz": {"one", "other"},
    "ru": {"one", "few", "many", "other"},
}
CATALOG_DIR: Final = STATIC_DIR / "i18n"
TRANSLATED_ATTRIBUTES: Final = ("aria-label", "title", "placeholder")
# t("key", …) / tParts("key", …), and keys built from a fixed prefix: t(`stats.period.${…}`).
LITERAL_KEY: Final = re.compile(r'\b(?:t|tParts)\(\s*"([^"]+)"')
KEY_PREFIX: Final = re.compile(r"\b(?:t|tParts)\(\s*`([^`$]+)\$\{")
LABEL_GROUP: Final = re.compile(r'\blabel\(\s*"([^"]+)"')
PLACEHOLDER: Final = re.compile(r"\{(\w+)\}")
COMMENT_LINE: Final = re.compile(r"^\s*//.*$", re.M)
# A text that is nothing but a catalog key: "page.title", "api-error.not_found".
RAW_KEY: Final = re.compile(r"^[a-z][a-z0-9-]*(?:\.[a-z0-9_-]+)+$")


@cache
def catalog_file(language: str) -> dict[str, dict[str, Any]]:
    catalog: dict[str, dict[str, Any]] = json.loads(
        (CATALOG_DIR / f"{language}.json").read_text(encoding="utf-8")
    )
    return catalog


def page_catalog(language: str, page: str) -> dict[str, Any]:
    sections = catalog_file(language)
    return sections["shared"] | sections[page]


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


def placeholders(value: Any) -> tuple[frozenset[str], bool]:
    """The values a text names besides the count, and whether it names the count at all.

    Every plural form must name the same values; a form may say the count in words ("once",
    "bir marta"), so ``count`` need appear in one form only.
    """
    per_form = {frozenset(PLACEHOLDER.findall(text)) - {"count"} for text in forms(value)}
    assert len(per_form) == 1, f"plural forms name different values: {value!r}"
    return per_form.pop(), any("{count}" in text for text in forms(value))


def assert_keys_known(directory: str, catalog: dict[str, Any]) -> None:
    """Every key the modules name (or build from a prefix, or look up by group) is there."""
    literal, prefixes, groups = keys_used(directory)
    assert literal, directory
    assert literal - catalog.keys() == set(), f"{directory}: keys used but missing from the catalog"
    for prefix in prefixes | {f"{group}." for group in groups}:
        assert any(key.startswith(prefix) for key in catalog), f"{directory}: no {prefix}* text"


def test_the_catalogs_are_one_file_per_language_with_a_section_per_page() -> None:
    assert sorted(path.stem for path in CATALOG_DIR.glob("*.json")) == sorted(LANGUAGES)
    for language in LANGUAGES:
        assert set(catalog_file(language)) == set(SECTIONS), language
    shared = set(catalog_file("en")["shared"])
    for page in PAGES:
        assert shared.isdisjoint(catalog_file("en")[page]), f"{page} repeats a shared key"


@pytest.mark.parametrize("language", [language for language in LANGUAGES if language != "en"])
def test_every_language_has_every_key_with_the_same_placeholders(language: str) -> None:
    english, translated = catalog_file("en"), catalog_file(language)
    for section in SECTIONS:
        missing = english[section].keys() - translated[section].keys()
        extra = translated[section].keys() - english[section].keys()
        assert not missing, f"{language}/{section}: keys missing: {sorted(missing)}"
        assert not extra, f"{language}/{section}: keys English does not have: {sorted(extra)}"
        for key, source in english[section].items():
            text = translated[section][key]
            assert isinstance(text, dict) == isinstance(source, dict), f"{language}: {key}"
            assert placeholders(text) == placeholders(source), f"{language}: {key} {text!r}"


@pytest.mark.parametrize("language", LANGUAGES)
def test_texts_are_non_empty_and_plurals_have_the_languages_forms(language: str) -> None:
    for section, texts in catalog_file(language).items():
        for key, value in texts.items():
            assert all(isinstance(text, str) and text.strip() for text in forms(value)), key
            if isinstance(value, dict):
                assert set(value) == PLURAL_FORMS[language], f"{language}/{section}: {key}"
                assert "{count}" in value["other"], f"{language}/{section}: {key}"


# Error codes that never reach a page: a refused tile file stops alertnet at start, and
# "http_error" is the catch-all whose English detail says more than any fixed text.
CODES_PAGES_NEVER_SEE: Final = {"tile_file_refused", "http_error"}
ERROR_CODE: Final = re.compile(r'^\s+code(?:: ClassVar\[str\])? = "([a-z_]+)"', re.M)


def test_every_api_error_code_has_a_text_in_every_language() -> None:
    """Pages translate API errors by ``code`` (their English ``detail`` is the fallback)."""
    source = STATIC_DIR.parents[1]
    codes = {code_for_status(status) for status in range(400, 600)}
    for module in source.rglob("*.py"):
        codes.update(ERROR_CODE.findall(module.read_text(encoding="utf-8")))
    assert {"illegal_transition", "too_many_attempts", "not_found"} <= codes
    for language in LANGUAGES:
        shared = catalog_file(language)["shared"]
        missing = {code for code in codes if f"api-error.{code}" not in shared}
        assert missing <= CODES_PAGES_NEVER_SEE, f"{language}: no text for codes {missing}"


@pytest.mark.parametrize("page", PAGES)
def test_each_page_names_only_keys_of_its_catalog(page: str) -> None:
    assert_keys_known("shared", catalog_file("en")["shared"])
    catalog = page_catalog("en", page)
    assert_keys_known(page, catalog)
    html = page_html(page)
    assert html.texts, page
    for key, english in (html.texts | html.attributes).items():
        assert key in catalog, f"{page}.html names {key!r}, missing from its catalog"
        assert catalog[key] == english, f"{page}.html's English for {key!r} differs"


# The English between the tags of an element with data-i18n (the page's fallback text).
FALLBACK_TEXT: Final = re.compile(r'(<[^>]*\sdata-i18n="[^"]+"[^>]*>)[^<]*<')


@pytest_asyncio.fixture
async def static_page(browser: Any) -> AsyncIterator[Any]:
    """A Chromium page on ``ORIGIN``, served by alertnet's web router (no API behind it).

    ``/web/config.json`` says the language in ``page.language_wanted`` (set it before goto).
    The pages come without their fallback English: what a page shows must be what its
    scripts filled in from the catalog.
    """
    app = FastAPI()
    app.include_router(web_router)
    # The map pages (/mahalla) read the tile server from the settings for their CSP.
    app.state.runtime = SimpleNamespace(settings=app_settings("sqlite+aiosqlite://"))
    wanted = {"language": "en"}
    async with AppClient(app, base_url=ORIGIN) as web:

        async def serve(route: Any) -> None:
            path = route.request.url.removeprefix(ORIGIN)
            if path == "/web/config.json":
                config = {
                    "language": wanted["language"],
                    "languages": list(LANGUAGES),
                    "timezone": "Asia/Tashkent",
                    "tile_url": None,
                }
                await route.fulfill(status=200, json=config)
                return
            if path.startswith("/api/v1/refused/"):
                code = path.rsplit("/", 1)[1]
                detail = f"the English detail of {code}"
                body = {"error": code, "detail": detail, "code": code}
                await route.fulfill(status=409, json=body)
                return
            answer = await web.get(path)
            body = answer.content
            if answer.headers.get("content-type", "").startswith("text/html"):
                body = FALLBACK_TEXT.sub(r"\1<", answer.text).encode()
            headers = {k: v for k, v in answer.headers.items() if k != "content-length"}
            await route.fulfill(status=answer.status_code, headers=headers, body=body)

        context = await browser.new_context(locale="en-GB")
        await context.route(f"{ORIGIN}/**", serve)
        page = await context.new_page()
        page.language_wanted = wanted
        try:
            yield page
        finally:
            await context.close()


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("page", PAGES)
async def test_a_page_shows_its_catalog_texts_not_keys(
    static_page: Any, page: str, language: str
) -> None:
    """The page fills every named text from its language's catalog as it starts."""
    static_page.language_wanted["language"] = language
    await static_page.goto(f"{ORIGIN}/{page}")
    await static_page.wait_for_function(
        """(language) => document.documentElement.lang === language
            && [...document.querySelectorAll("[data-i18n]")].every((element) => element.textContent)
        """,
        arg=language,
    )
    catalog = page_catalog(language, page)
    shown: dict[str, str] = await static_page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll("[data-i18n]")]
            .map((element) => [element.dataset.i18n, element.textContent]))"""
    )
    assert shown.keys() == page_html(page).texts.keys()
    assert shown == {key: catalog[key] for key in shown}
    assert await static_page.title() == catalog["page.title"]
    assert await static_page.evaluate("document.documentElement.lang") == language
    attributes: list[str] = await static_page.evaluate(
        """() => [...document.querySelectorAll("*")].flatMap((element) =>
            ["aria-label", "title", "placeholder"].map((name) => element.getAttribute(name))
            ).filter(Boolean)"""
    )
    body: str = await static_page.evaluate("document.body.innerText")
    raw = [text for text in [*attributes, *body.split("\n")] if RAW_KEY.match(text.strip())]
    assert raw == [], f"{page} in {language} shows raw keys: {raw}"


async def test_the_browsers_plural_rules_have_the_catalogs_forms(static_page: Any) -> None:
    await static_page.goto(f"{ORIGIN}/login")
    for language, expected in PLURAL_FORMS.items():
        categories: list[str] = await static_page.evaluate(
            "(language) => new Intl.PluralRules(language).resolvedOptions().pluralCategories",
            language,
        )
        assert set(categories) == expected, language


async def test_counts_pick_the_plural_form_and_are_written_the_languages_way(
    static_page: Any,
) -> None:
    static_page.language_wanted["language"] = "ru"
    await static_page.goto(f"{ORIGIN}/console")
    await static_page.wait_for_function("() => document.documentElement.lang === 'ru'")
    written: list[str] = await static_page.evaluate(
        """async () => {
            const { t } = await import("/static/console/strings.js");
            const counts = [1, 3, 5, 21, 1234];
            return counts.map((count) => t("stats.counts-total", {count, period: "7"}));
        }"""
    )
    assert written == [
        "7: 1 тревога",
        "7: 3 тревоги",
        "7: 5 тревог",
        "7: 21 тревога",
        "7: 1\u00a0234 тревоги",
    ]


async def test_api_errors_are_shown_in_the_pages_language_by_their_code(static_page: Any) -> None:
    """A known ``code`` reads in the page's language; an unknown one falls back to ``detail``."""
    static_page.language_wanted["language"] = "uz"
    await static_page.goto(f"{ORIGIN}/login")
    await static_page.wait_for_function("() => document.documentElement.lang === 'uz'")
    messages: list[str] = await static_page.evaluate(
        """async () => {
            const { api } = await import("/static/shared/api.js");
            const codes = ["illegal_transition", "not_found", "brand_new_code"];
            return Promise.all(codes.map((code) =>
                api(`/api/v1/refused/${code}`).then(() => "", (error) => error.message)));
        }"""
    )
    shared = catalog_file("uz")["shared"]
    assert messages == [
        shared["api-error.illegal_transition"],
        shared["api-error.not_found"],
        "the English detail of brand_new_code",
    ]

"""ALERTNET_DEFAULT_LANGUAGE and ALERTNET_TIMEZONE: defaults, environment, refusals."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from alertnet.config import Settings


def test_defaults_are_uzbek_and_tashkent() -> None:
    settings = Settings()
    assert (settings.default_language, settings.timezone) == ("uz", "Asia/Tashkent")


def test_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALERTNET_DEFAULT_LANGUAGE", "RU")
    monkeypatch.setenv("ALERTNET_TIMEZONE", "Europe/Moscow")
    settings = Settings()
    assert (settings.default_language, settings.timezone) == ("ru", "Europe/Moscow")


@pytest.mark.parametrize("language", ["fr", "", "ru-RU", "uz-Cyrl"])
def test_a_language_not_offered_is_refused(language: str) -> None:
    with pytest.raises(ValidationError, match="not an offered language"):
        Settings(default_language=language)


@pytest.mark.parametrize(
    "timezone", ["Mars/Olympus", "", "Asia", "asia/tashkent", "../etc/passwd", "x" * 300]
)
def test_an_unknown_time_zone_is_refused(timezone: str) -> None:
    with pytest.raises(ValidationError, match="not a time zone name"):
        Settings(timezone=timezone)

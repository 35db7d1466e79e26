"""Every step the default action plans ship names a text in each language's catalog: the
console shows ``plan-step.<key>`` in the dispatcher's language, never a raw key."""

from __future__ import annotations

import json

import pytest

from alertnet.alerts.plans import DEFAULT_PLANS, PLAN_CATEGORIES, STEP_KEYS
from alertnet.web.pages import STATIC_DIR


@pytest.mark.parametrize("language", ["en", "uz", "ru"])
def test_every_shipped_step_has_a_text_in_the_catalog(language: str) -> None:
    catalog = json.loads((STATIC_DIR / "i18n" / f"{language}.json").read_text(encoding="utf-8"))
    console = catalog["console"]
    missing = {key for key in STEP_KEYS if not console.get(f"plan-step.{key}", "").strip()}
    assert missing == set()
    if language == "uz":  # Uzbek Latin uses the modifier letters, never an ASCII apostrophe
        assert not any("'" in console[f"plan-step.{key}"] for key in STEP_KEYS)


def test_every_category_has_a_default_plan() -> None:
    assert set(DEFAULT_PLANS) == set(PLAN_CATEGORIES)
    assert all(DEFAULT_PLANS[category] for category in PLAN_CATEGORIES)
    # Panic: call the site (never for a silent alert), send the post, inform the duty officer.
    assert DEFAULT_PLANS["panic"] == (
        {"key": "call-site", "not_silent": True},
        {"key": "send-post"},
        {"key": "inform-duty-officer"},
    )

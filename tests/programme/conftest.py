"""Fixtures of this test package: see ``tests.auth.helpers``."""

from __future__ import annotations

import pytest

from tests.auth.helpers import fast_password_hashing

__all__ = ["fast_password_hashing"]


@pytest.fixture(autouse=True)
def _fast_password_hashing(fast_password_hashing: None) -> None:
    """Tests here create accounts; see ``fast_password_hashing``."""


# The browser tests here use the fixtures of tests/web (one Chromium, the live site).
from tests.web.conftest import browser, site, site_options  # noqa: E402

__all__ += ["browser", "site", "site_options"]

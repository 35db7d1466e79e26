"""Fixtures of the workflow tests (notes, acknowledgement, action plans): see ``helpers``.

The browser test uses the live site and Chromium of ``tests/web/conftest.py``.
"""

from __future__ import annotations

import pytest

from tests.auth.helpers import fast_password_hashing
from tests.web.conftest import browser, site, site_options

__all__ = ["browser", "fast_password_hashing", "site", "site_options"]


@pytest.fixture(autouse=True)
def _fast_password_hashing(fast_password_hashing: None) -> None:
    """Every test here creates accounts; see ``fast_password_hashing``."""

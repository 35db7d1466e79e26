"""The web tests' live site and Chromium (``tests/web/conftest.py``), for the console test of
camera alerts here; fast (still argon2) password hashing for every account these tests make."""

from __future__ import annotations

from tests.auth.helpers import fast_password_hashing
from tests.web.conftest import _fast_password_hashing, browser, site

__all__ = ["_fast_password_hashing", "browser", "fast_password_hashing", "site"]

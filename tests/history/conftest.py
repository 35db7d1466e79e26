"""The history tests share the web tests' live site and Chromium (``tests/web/conftest.py``):
importing the fixtures here makes them available to this directory as well."""

from tests.auth.helpers import fast_password_hashing
from tests.web.conftest import _fast_password_hashing, browser, site, site_options

__all__ = ["_fast_password_hashing", "browser", "fast_password_hashing", "site", "site_options"]

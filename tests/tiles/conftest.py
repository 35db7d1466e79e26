"""The browser and live-site fixtures of the web tests, for the offline map test here."""

from tests.web.conftest import (
    _fast_password_hashing,
    browser,
    fast_password_hashing,
    site,
    site_options,
)

__all__ = ["_fast_password_hashing", "browser", "fast_password_hashing", "site", "site_options"]

"""An in-process alertnet for the edge tests: the real app, called over ASGI (``support.asgi``)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest

from alertnet.app import create_app
from tests.auth.helpers import fast_password_hashing
from tests.support.asgi import AppClient, app_settings, running_app

__all__ = ["fast_password_hashing"]

EdgeClient = Callable[..., AbstractAsyncContextManager[AppClient]]


@pytest.fixture(autouse=True)
def _fast_password_hashing(fast_password_hashing: None) -> None:
    """Tests here create accounts; see ``fast_password_hashing``."""


@pytest.fixture
def edge_client(db_url: str) -> EdgeClient:
    """``async with edge_client(**settings) as client`` → a client of a running app.

    The app's own errors are answered as a client sees them (500 and all), not re-raised.
    """

    def serve(**settings: Any) -> AbstractAsyncContextManager[AppClient]:
        app = create_app(app_settings(db_url, **settings))
        return running_app(app, raise_app_exceptions=False)

    return serve

"""An in-process alertnet for the edge tests: the real app over httpx's ASGI transport."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
import pytest

from alertnet.app import create_app
from alertnet.config import Settings
from tests.auth.helpers import fast_password_hashing

__all__ = ["fast_password_hashing"]

# Nothing listens on port 1: the MQTT ingest keeps retrying in the background, harmlessly.
NO_BROKER = "mqtt://127.0.0.1:1"

EdgeClient = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture(autouse=True)
def _fast_password_hashing(fast_password_hashing: None) -> None:
    """Tests here create accounts; see ``fast_password_hashing``."""


@pytest.fixture
def edge_client(db_url: str) -> EdgeClient:
    """``async with edge_client(**settings) as client`` → a client of a running app.

    The app's own errors are answered as a client sees them (500 and all), not re-raised.
    """

    @asynccontextmanager
    async def serve(**settings: Any) -> AsyncIterator[httpx.AsyncClient]:
        app = create_app(Settings(database_url=db_url, mqtt_url=NO_BROKER, **settings))
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://alertnet") as client:
                client.app = app  # type: ignore[attr-defined]
                yield client

    return serve

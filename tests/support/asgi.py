"""alertnet's HTTP API called in this process over ASGI, without a socket.

``AppClient(app)`` is an ``httpx.AsyncClient`` wired to ``app`` (its ``app`` and ``runtime``
stay at hand); ``running_app(app)`` also runs the app's lifespan, as a server would, so the
engine, pipeline, dispatcher and hub exist; ``alertnet_api(database_url)`` does that for the
real app on a test database and is what the ``api`` fixture of ``tests/conftest.py`` yields.
Tests that need real sockets (WebSockets, a browser) use uvicorn instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Final

import httpx
from fastapi import FastAPI

from alertnet.app import create_app
from alertnet.config import Settings

# Nothing listens on port 1: the MQTT ingest keeps retrying in the background, harmlessly.
NO_BROKER: Final = "mqtt://127.0.0.1:1"
BASE_URL: Final = "http://alertnet"
# httpx's own default peer address for ASGI requests.
CLIENT_ADDRESS: Final = ("127.0.0.1", 123)


def app_settings(database_url: str, **overrides: Any) -> Settings:
    """Settings of an in-process alertnet on ``database_url``; no MQTT broker to reach unless
    ``overrides`` name one (``mqtt_url=``)."""
    overrides.setdefault("mqtt_url", NO_BROKER)
    return Settings(database_url=database_url, **overrides)


class AppClient(httpx.AsyncClient):
    """An HTTP client whose requests go straight into ``app``.

    ``client_address`` is the peer the app sees (login throttling keys on it);
    ``raise_app_exceptions=False`` turns an unhandled error into the 500 a server would send.
    """

    def __init__(
        self,
        app: FastAPI,
        *,
        base_url: str = BASE_URL,
        client_address: tuple[str, int] = CLIENT_ADDRESS,
        raise_app_exceptions: bool = True,
    ) -> None:
        transport = httpx.ASGITransport(
            app=app, client=client_address, raise_app_exceptions=raise_app_exceptions
        )
        super().__init__(transport=transport, base_url=base_url)
        self.app = app

    @property
    def runtime(self) -> Any:
        """What the lifespan built (``alertnet.app.Runtime``): pipeline, dispatcher, hub…"""
        return self.app.state.runtime


@asynccontextmanager
async def running_app(app: FastAPI, **client_options: Any) -> AsyncIterator[AppClient]:
    """Run ``app``'s lifespan for the block and yield a client on it."""
    async with app.router.lifespan_context(app), AppClient(app, **client_options) as client:
        yield client


def alertnet_api(database_url: str, **settings: Any) -> AbstractAsyncContextManager[AppClient]:
    """The real app (``create_app``) on ``database_url``, running, with a client on it."""
    return running_app(create_app(app_settings(database_url, **settings)))

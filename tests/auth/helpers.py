"""Apps and accounts for the auth and realtime tests.

``build_app`` is ``alertnet.app.create_app`` plus whatever of issue 6's wiring the app does not
have yet (the auth and stream routers, the audit middleware, ``Runtime.login_throttle`` and
``Runtime.hub``); once ``create_app`` wires them itself, it only applies the test's tuning.
``running_server`` serves an app with a real uvicorn on a free loopback port, because
WebSockets are tested over real sockets.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.app import create_app
from alertnet.auth import users
from alertnet.auth.passwords import hash_password
from alertnet.auth.throttle import LoginThrottle
from alertnet.auth.tokens import DEFAULT_TOKEN_TTL, create_token
from alertnet.auth.users import create_user
from alertnet.db import unit_of_work
from alertnet.realtime.hub import Hub
from tests.support.asgi import app_settings
from tests.support.factories import create_mahalla, create_post
from tests.support.mosquitto import free_port
from tests.support.polling import eventually

PASSWORD = "correct horse battery"


def build_app(
    database_url: str,
    *,
    throttle: LoginThrottle | None = None,
    hub_tuning: dict[str, Any] | None = None,
    demo: bool = False,
) -> FastAPI:
    """The real app; optionally with a given login throttle and hub attributes changed, or
    serving the demo (as ``alertnet serve --demo`` does)."""
    app = create_app(app_settings(database_url, demo=demo))
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with inner(app):
            runtime = app.state.runtime
            if throttle is not None:
                runtime.login_throttle = throttle
            for name, value in (hub_tuning or {}).items():
                setattr(runtime.hub, name, value)
            yield

    app.router.lifespan_context = lifespan
    return app


@dataclass
class Server:
    app: FastAPI
    port: int

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def hub(self) -> Hub:
        hub: Hub = self.app.state.runtime.hub
        return hub


@asynccontextmanager
async def running_server(app: FastAPI) -> AsyncIterator[Server]:
    """Serve ``app`` with uvicorn on a free loopback port in this event loop."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        await eventually(
            lambda: server.started or task.done(),
            awaiting=f"uvicorn to listen on port {port}",
            timeout_s=30,
            interval_s=0.02,
        )
        if not server.started:
            task.result()
            raise RuntimeError("uvicorn stopped before it started")
        yield Server(app, port)
    finally:
        server.should_exit = True
        await task


@dataclass(frozen=True)
class Account:
    username: str
    user_id: int
    role: str
    token: str
    post_id: int | None = None
    mahalla_id: int | None = None


async def create_account(
    session: AsyncSession,
    username: str,
    role: str,
    *,
    post_callsign: str | None = None,
    mahalla_name: str | None = None,
    ttl_s: float = DEFAULT_TOKEN_TTL.total_seconds(),
) -> Account:
    """A user with ``PASSWORD`` and a fresh API token."""
    user, _ = await create_user(
        session,
        username,
        role,
        password=PASSWORD,
        post_callsign=post_callsign,
        mahalla_name=mahalla_name,
    )
    token = await create_token(session, user.id, label="test", ttl_s=ttl_s)
    return Account(username, user.id, role, token, user.post_id, user.mahalla_id)


@dataclass(frozen=True)
class Cast:
    """One account per role, two posts and two mahallas, for scope tests."""

    admin: Account
    dispatcher: Account
    post_a: Account
    post_b: Account
    observer_m1: Account
    mahalla_1: int
    mahalla_2: int


async def create_cast(session_factory: async_sessionmaker[AsyncSession]) -> Cast:
    async with unit_of_work(session_factory) as session:
        mahalla_1 = await create_mahalla(session, name="Chilonzor-1")
        mahalla_2 = await create_mahalla(session, name="Yunusobod-2")
        await create_post(session, callsign="P-101")
        await create_post(session, callsign="P-102")
        return Cast(
            admin=await create_account(session, "admin1", "admin"),
            dispatcher=await create_account(session, "dispatch1", "dispatcher"),
            post_a=await create_account(session, "post101", "post", post_callsign="P-101"),
            post_b=await create_account(session, "post102", "post", post_callsign="P-102"),
            observer_m1=await create_account(
                session, "observer1", "observer", mahalla_name="Chilonzor-1"
            ),
            mahalla_1=mahalla_1.id,
            mahalla_2=mahalla_2.id,
        )


def bearer(account: Account) -> dict[str, str]:
    return {"Authorization": f"Bearer {account.token}"}


@functools.cache
def _memoised_hash(password: str) -> str:
    return hash_password(password)


@pytest.fixture
def fast_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hash each test password once per run: accounts are made by the dozen, argon2 is slow
    on purpose, and the hashes stay real (logins still verify them with argon2)."""
    monkeypatch.setattr(users, "hash_password", _memoised_hash)

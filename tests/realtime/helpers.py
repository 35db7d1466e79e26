"""Writing feed rows and reading the stream, for the realtime tests."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from alertnet.auth.scope import Scope
from alertnet.db import create_engine, unit_of_work
from alertnet.models import Role
from alertnet.realtime.feed import FeedMessage, append
from alertnet.realtime.hub import Hub
from tests.support.polling import eventually

# The scope of a console user, which sees every feed row.
CONSOLE = Scope(Role.DISPATCHER, user_id=1, username="dispatch1")


def post_scope(post_id: int) -> Scope:
    """The scope of the tablet account of post ``post_id``."""
    return Scope(Role.POST, user_id=1000 + post_id, username=f"post{post_id}", post_id=post_id)


async def write_feed(
    session_factory: async_sessionmaker[AsyncSession], *messages: FeedMessage
) -> None:
    """Commit feed rows the way every feed writer does: ``feed.append`` in a unit of work."""
    async with unit_of_work(session_factory) as session:
        await append(session, messages)


def message(
    kind: str = "alert.updated",
    *,
    post_id: int | None = None,
    mahalla_id: int | None = None,
    **data: Any,
) -> FeedMessage:
    return FeedMessage(kind, dict(data), post_id=post_id, mahalla_id=mahalla_id)


@contextlib.asynccontextmanager
async def running_hub(database_url: str, **options: Any) -> AsyncIterator[Hub]:
    """A hub on its own engine (as in a process of its own), following until the block ends."""
    engine = create_engine(database_url)
    hub = Hub(engine, **options)
    task = asyncio.create_task(hub.run())
    try:
        await eventually(
            lambda: hub.ready and (hub.listening or not hub.uses_notify),
            awaiting="the hub to be ready (and listening, on PostgreSQL)",
            timeout_s=10,
            interval_s=0.01,
        )
        yield hub
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await engine.dispose()


class StreamClient:
    """One WebSocket client of ``/api/v1/stream``; pings are counted, not returned."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self.pings = 0

    async def receive(self, timeout_s: float = 5.0) -> dict[str, Any]:
        """The next message that is not a ping."""
        async with asyncio.timeout(timeout_s):
            while True:
                decoded: dict[str, Any] = json.loads(await self.connection.recv())
                if decoded["type"] == "stream.ping":
                    self.pings += 1
                    continue
                return decoded

    async def ready(self) -> dict[str, Any]:
        first = await self.receive()
        assert first["type"] == "stream.ready", first
        data: dict[str, Any] = first["data"]
        return data

    async def rows(self, count: int, timeout_s: float = 5.0) -> list[dict[str, Any]]:
        received = [await self.receive(timeout_s) for _ in range(count)]
        assert all("seq" in row for row in received), received
        return received

    async def rows_of_type(
        self, kind: str, count: int, timeout_s: float = 5.0
    ) -> list[dict[str, Any]]:
        """The next ``count`` rows of type ``kind``, skipping others (e.g. dispatch updates)."""
        wanted: list[dict[str, Any]] = []
        async with asyncio.timeout(timeout_s):
            while len(wanted) < count:
                row = await self.receive(timeout_s)
                if row.get("type") == kind:
                    wanted.append(row)
        return wanted

    async def rows_before_pings(
        self, pings: int = 2, timeout_s: float = 5.0
    ) -> list[dict[str, Any]]:
        """What arrives (apart from pings) before ``pings`` more heartbeats; a test expects nothing.

        The server sends rows and heartbeats from one loop, each pass reading the feed first.
        The first heartbeat may share the pass that sent the last row; the second comes from a
        later pass, so a row still owed to this client would have arrived before it.
        """
        extra: list[dict[str, Any]] = []
        heard = 0
        async with asyncio.timeout(timeout_s):
            while heard < pings:
                decoded: dict[str, Any] = json.loads(await self.connection.recv())
                if decoded["type"] == "stream.ping":
                    self.pings += 1
                    heard += 1
                else:
                    extra.append(decoded)
        return extra

    async def close_code(self, timeout_s: float = 5.0) -> int | None:
        """Read until the server closes; the close code it sent."""
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    await self.connection.recv()
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None
        raise AssertionError("unreachable")


@contextlib.asynccontextmanager
async def stream(
    ws_url: str,
    *,
    after: int | None = None,
    token: str | None = None,
    headers: dict[str, str] | None = None,
) -> AsyncIterator[StreamClient]:
    query = []
    if after is not None:
        query.append(f"after={after}")
    if token is not None:
        query.append(f"token={token}")
    url = f"{ws_url}/api/v1/stream" + ("?" + "&".join(query) if query else "")
    async with connect(url, additional_headers=headers, open_timeout=10) as connection:
        yield StreamClient(connection)

"""Waking the dispatchers of other processes: PostgreSQL ``NOTIFY alertnet_dispatch``.

A new alert is dispatched from the commit that opened it, not at the next tick (DESIGN §8):
in one process ingest calls ``Dispatcher.wake()``. When the dispatcher runs in another process
(``alertnet serve --role``, ``alertnet.roles``), ``DispatchNotifier`` sends ``NOTIFY`` on
``DISPATCH_CHANNEL`` after such a commit, and each dispatch process's ``DispatchListener``
holds a ``LISTEN`` connection that turns the notification into ``wake()``.

Both are wake-ups only: the alerts table is the truth and the dispatcher's tick stays the
safety net, so a notification lost while a connection is down delays an offer by one tick at
most. Requests are coalesced (one ``NOTIFY`` per burst), never awaited by the caller, and a
failure is counted, logged and retried; the listener reconnects on the shared schedule
(``alertnet.reconnect``) and asks for a pass as soon as it listens again, to catch up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Final

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from alertnet.metrics import Metrics
from alertnet.reconnect import Reconnector

__all__ = ["DISPATCH_CHANNEL", "DispatchListener", "DispatchNotifier"]

log = logging.getLogger(__name__)

DISPATCH_CHANNEL: Final = "alertnet_dispatch"
#: Names the LISTEN connection in pg_stat_activity.
LISTEN_APPLICATION_NAME: Final = "alertnet-dispatch-listen"
#: An idle LISTEN connection proves it is alive this often.
LISTEN_CHECK_S: Final = 30.0
_CONNECT_TIMEOUT_S: Final = 10.0
_RETRY_S: Final = 1.0
_EXPECTED: Final = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


class DispatchNotifier:
    """Sends ``NOTIFY alertnet_dispatch`` after ``request()``; ``run()`` is its task."""

    def __init__(self, engine: AsyncEngine, metrics: Metrics) -> None:
        self._engine = engine
        self._metrics = metrics
        self._requested = asyncio.Event()
        self.sent = 0

    def request(self) -> None:
        """Ask the dispatchers for a pass; never blocks (many requests, one NOTIFY)."""
        self._requested.set()

    async def run(self) -> None:
        while True:
            await self._requested.wait()
            self._requested.clear()  # a request during the send below causes another one
            try:
                async with self._engine.begin() as connection:
                    await connection.execute(
                        text("SELECT pg_notify(:channel, '')"), {"channel": DISPATCH_CHANNEL}
                    )
                self.sent += 1
            except Exception:
                self._metrics.loop_errors.labels("dispatch-notify").inc()
                log.exception("cannot NOTIFY the dispatchers; retrying in %.1f s", _RETRY_S)
                self._requested.set()
                await asyncio.sleep(_RETRY_S)


class DispatchListener:
    """Holds a ``LISTEN alertnet_dispatch`` connection; each notification calls ``on_wake``."""

    def __init__(self, url: URL, on_wake: Callable[[], None], metrics: Metrics) -> None:
        self._dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._on_wake = on_wake
        self._metrics = metrics
        self._reconnector = Reconnector(
            "dispatch LISTEN", expected=_EXPECTED, on_unexpected=self._failed
        )
        #: Set while listening.
        self.listening = self._reconnector.connected

    @property
    def connections(self) -> int:
        """LISTEN connections made since ``run()`` started."""
        return self._reconnector.connections

    async def run(self) -> None:
        await self._reconnector.run(self._session)

    async def _session(self) -> None:
        connection = await asyncpg.connect(
            self._dsn,
            timeout=_CONNECT_TIMEOUT_S,
            server_settings={"application_name": LISTEN_APPLICATION_NAME},
        )
        try:
            lost = asyncio.Event()
            connection.add_termination_listener(lambda _connection: lost.set())
            await connection.add_listener(DISPATCH_CHANNEL, self._notified)
            self._reconnector.mark_connected()
            self._on_wake()  # whatever was committed while nobody listened
            while True:
                try:
                    async with asyncio.timeout(LISTEN_CHECK_S):
                        await lost.wait()
                except TimeoutError:
                    # An idle socket can die silently: make it prove it is alive.
                    async with asyncio.timeout(_CONNECT_TIMEOUT_S):
                        await connection.fetchval("SELECT 1")
                    continue
                raise ConnectionError("the LISTEN connection was closed")
        finally:
            connection.terminate()

    def _notified(self, _connection: Any, _pid: int, _channel: str, _payload: str) -> None:
        self._on_wake()

    def _failed(self, error: Exception) -> None:
        self._metrics.loop_errors.labels("dispatch-listen").inc()
        log.error("dispatch LISTEN failed; reconnecting", exc_info=error)

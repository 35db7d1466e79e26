"""The cross-process dispatch wake-up on a real PostgreSQL: ``NOTIFY`` reaches the listener,
and a listener whose connection is killed listens again by itself."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from alertnet.db import create_engine
from alertnet.dispatch.wakeup import LISTEN_APPLICATION_NAME, DispatchListener, DispatchNotifier
from alertnet.metrics import Metrics
from tests.support.polling import eventually
from tests.support.services import asyncpg_dsn

pytestmark = [pytest.mark.postgres]


async def test_notify_wakes_the_listener_also_after_its_connection_was_killed(
    pg_url: str,
) -> None:
    engine = create_engine(pg_url)
    metrics = Metrics()
    wakes = 0

    def woken() -> None:
        nonlocal wakes
        wakes += 1

    listener = DispatchListener(engine.url, woken, metrics)
    notifier = DispatchNotifier(engine, metrics)
    tasks = [asyncio.create_task(listener.run()), asyncio.create_task(notifier.run())]
    try:
        await eventually(listener.listening.is_set, awaiting="the listener to LISTEN")
        assert wakes == 1  # a catch-up pass as soon as it listens

        notifier.request()
        await eventually(lambda: wakes == 2, awaiting="the NOTIFY to wake the listener")

        admin = await asyncpg.connect(asyncpg_dsn(pg_url))
        try:
            killed = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = $1 AND datname = current_database()",
                LISTEN_APPLICATION_NAME,
            )
        finally:
            await admin.close()
        assert killed == 1
        await eventually(
            lambda: listener.connections == 2 and listener.listening.is_set(),
            awaiting="the listener to LISTEN again",
        )
        after_reconnect = wakes  # its catch-up pass included
        assert after_reconnect == 3

        notifier.request()
        await eventually(lambda: wakes > after_reconnect, awaiting="a NOTIFY after the restart")
        assert notifier.sent == 2
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await engine.dispose()

"""The hub on real databases: it follows the feed, wakes on commits, and serves cursors."""

from __future__ import annotations

import time

from sqlalchemy import delete, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.auth.scope import Scope
from alertnet.db import create_engine, create_session_factory, unit_of_work
from alertnet.models import FeedItem
from alertnet.realtime.feed import append
from alertnet.realtime.hub import LISTEN_APPLICATION_NAME, Hub, StreamStart
from tests.realtime.helpers import CONSOLE, message, post_scope, running_hub, write_feed
from tests.support.factories import create_post
from tests.support.polling import eventually

SessionFactory = async_sessionmaker[AsyncSession]


async def read_all(hub: Hub, after: int, scope: Scope = CONSOLE) -> list[int]:
    """Every seq after ``after`` the scope sees, following the cursor as a stream does."""
    seqs: list[int] = []
    cursor = after
    while cursor < hub.head:
        records, next_cursor = await hub.fetch(cursor, scope)
        assert next_cursor > cursor
        seqs.extend(record.seq for record in records)
        cursor = next_cursor
    return seqs


async def test_a_commit_wakes_the_hub_without_waiting_for_the_poll(
    db_url: str, session_factory: SessionFactory
) -> None:
    """PostgreSQL: the trigger's NOTIFY; SQLite: the in-process session hook. Not the poll."""
    async with running_hub(db_url, safety_poll_s=60) as hub:
        assert hub.head == 0
        for expected in (1, 2, 3):
            started = time.monotonic()
            await write_feed(session_factory, message(n=expected))
            assert await hub.wait_beyond(expected - 1, timeout_s=5)
            assert time.monotonic() - started < 1.0
            assert hub.head == expected


async def test_a_rolled_back_write_is_never_seen(
    db_url: str, session_factory: SessionFactory
) -> None:
    async with running_hub(db_url, safety_poll_s=0.05) as hub:
        async with session_factory() as session:
            await append(session, [message(n=1)])
            await session.rollback()
        # The next committed row is the signal: had the rolled-back one leaked, it came first.
        await write_feed(session_factory, message(n=2))
        assert await hub.wait_beyond(0, timeout_s=5)
        records, _ = await hub.fetch(0, CONSOLE)
        assert [record.text for record in records] == [
            f'{{"seq":{hub.head},"type":"alert.updated","data":{{"n":2}}}}'
        ]


async def test_cursors_older_than_the_memory_tail_are_served_from_the_database(
    db_url: str, session_factory: SessionFactory
) -> None:
    async with unit_of_work(session_factory) as session:
        post_a, post_b = (await create_post(session)).id, (await create_post(session)).id
    async with running_hub(db_url, safety_poll_s=0.05, tail_rows=3, read_batch=4) as hub:
        for n in range(1, 21):
            post_id = post_a if n % 3 else post_b
            await write_feed(session_factory, message(n=n, post_id=post_id))
            assert await hub.wait_beyond(n - 1, timeout_s=5)
        assert hub.head == 20
        assert 10 < hub._floor < 20 and len(hub._tail) <= 6

        assert await read_all(hub, 0) == list(range(1, 21))
        assert await read_all(hub, 7) == list(range(8, 21))
        assert await read_all(hub, 19) == [20]  # from the tail
        only_b = [n for n in range(1, 21) if n % 3 == 0]
        assert await read_all(hub, 0, post_scope(post_b)) == only_b
        assert await read_all(hub, 12, post_scope(post_b)) == [15, 18]


async def test_open_says_where_a_stream_starts(
    db_url: str, session_factory: SessionFactory
) -> None:
    async with running_hub(db_url, safety_poll_s=0.05) as hub:
        assert (await hub.open(None)).after == 0
        await write_feed(session_factory, *(message(n=n) for n in range(5)))
        assert await hub.wait_beyond(4, timeout_s=5)
        assert (await hub.open(None)).after == 5
        assert (await hub.open(3)).resync is False
        assert (await hub.open(0)).resync is False
        ahead = await hub.open(99)  # a cursor from a feed that was since reset
        assert (ahead.after, ahead.resync) == (5, True)

        async with unit_of_work(session_factory) as session:  # retention removed seq 1-3
            await session.execute(delete(FeedItem).where(FeedItem.seq <= 3))
        assert await hub.open(3) == StreamStart(after=3, resync=False)
        expired = await hub.open(1)
        assert (expired.after, expired.resync) == (1, True)


async def test_a_feed_that_goes_back_restarts_the_hub(
    db_url: str, session_factory: SessionFactory
) -> None:
    """A restored backup: seq starts again below what the hub saw; streams must resync."""
    async with running_hub(db_url, safety_poll_s=0.05) as hub:
        await write_feed(session_factory, *(message(n=n) for n in range(5)))
        assert await hub.wait_beyond(4, timeout_s=5)
        async with unit_of_work(session_factory) as session:
            await session.execute(delete(FeedItem))
            if session.get_bind().dialect.name == "postgresql":
                await session.execute(text("ALTER SEQUENCE feed_seq_seq RESTART WITH 1"))
            else:
                await session.execute(text("DELETE FROM sqlite_sequence WHERE name = 'feed'"))
        await write_feed(session_factory, message(n=99))
        await eventually(
            lambda: hub.epoch != 0, awaiting="the hub to restart on the feed", timeout_s=5
        )
        assert hub.head == 1


async def test_sqlite_feed_seq_never_goes_back_after_retention(
    sqlite_url: str,
) -> None:
    """Migration 0002 gives the SQLite feed AUTOINCREMENT: emptying it does not reuse seqs."""
    engine = create_engine(sqlite_url)
    try:
        factory = create_session_factory(engine)
        await write_feed(factory, message(n=1), message(n=2))
        async with unit_of_work(factory) as session:
            top = await session.scalar(text("SELECT max(seq) FROM feed"))
            await session.execute(delete(FeedItem))
        await write_feed(factory, message(n=3))
        async with factory() as session:
            assert await session.scalar(text("SELECT max(seq) FROM feed")) == top + 1
            await session.execute(delete(FeedItem))
            await session.commit()
    finally:
        await engine.dispose()


async def test_the_hub_listens_again_after_losing_its_connection(pg_url: str) -> None:
    engine = create_engine(pg_url)
    session_factory = create_session_factory(engine)
    try:
        async with running_hub(pg_url, safety_poll_s=60) as hub:
            async with unit_of_work(session_factory) as session:
                killed = await session.scalar(
                    text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE application_name = :name AND datname = current_database()"
                    ),
                    {"name": LISTEN_APPLICATION_NAME},
                )
            assert killed == 1
            await eventually(
                lambda: not hub.listening,
                awaiting="the hub to notice its LISTEN connection died",
                timeout_s=5,
                interval_s=0.01,
            )
            await eventually(
                lambda: hub.listening,
                awaiting="the hub to listen again",
                timeout_s=5,
                interval_s=0.01,
            )
            before = hub.head
            started = time.monotonic()
            await write_feed(session_factory, message(n=1))
            assert await hub.wait_beyond(before, timeout_s=5)
            assert time.monotonic() - started < 1.0
    finally:
        await engine.dispose()

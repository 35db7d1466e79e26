"""The realtime hub: one per process, it knows the feed's newest ``seq`` and wakes the streams.

The feed table is the truth; the hub only learns *when* to look at it and keeps the most
recent rows in memory, so that one database read serves every stream client of the process
(a thousand tablets cost one query per change, not a thousand).

Wake-ups, all of them only hints:

* PostgreSQL: a dedicated asyncpg connection ``LISTEN``s on ``alertnet_feed``. Migration 0002
  installs a statement-level trigger that sends ``NOTIFY alertnet_feed`` on every insert into
  ``feed``; PostgreSQL delivers it after the commit, to every alertnet process on the database.
  The listening connection is checked every ``LISTEN_CHECK_S`` and re-opened with backoff.
* SQLite: no notification crosses connections, so every commit of an ORM session that inserted
  feed rows pokes the hubs of this process that watch that database file (a SQLAlchemy session
  event, installed when a SQLite hub starts). Other processes on the same file fall back on
  the safety poll.
* Both: a safety poll every ``safety_poll_s`` (1 s), in case a wake-up was lost.

Ordering: feed rows commit in ``seq`` order (``realtime.feed``'s advisory lock on PostgreSQL,
the single writer on SQLite), so once the hub has seen ``seq`` N, no row at or below N can
appear later. Each stream keeps a cursor; it is handed the rows in (cursor, head] that its
scope allows and moves to head. A reconnect with ``after=cursor`` therefore gets exactly what
it missed, in order, nothing twice: from the memory tail when the cursor is recent, from the
database (``read_rows``) when it is older.

If the feed's newest ``seq`` ever goes backwards (a restored backup, a recreated database),
the hub starts over from the new newest row and bumps ``epoch``; streams then tell their
clients to reload (``resync``).
"""

from __future__ import annotations

import asyncio
import bisect
import json
import logging
import os
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import Select, event, func, select
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.orm import ORMExecuteState, Session

from alertnet.auth.scope import Reach, Scope
from alertnet.metrics import Metrics
from alertnet.models import FeedItem

log = logging.getLogger(__name__)

# Also named in migrations/versions/0002 (the NOTIFY trigger).
FEED_CHANNEL: Final = "alertnet_feed"
SAFETY_POLL_S: Final = 1.0
HEARTBEAT_S: Final = 15.0
# Rows kept in memory: at ~20 feed rows/s (posts reporting positions) that is minutes of history.
TAIL_ROWS: Final = 4096
# Rows per database read for a stream whose cursor is older than the memory tail.
READ_BATCH: Final = 500
LISTEN_CHECK_S: Final = 30.0
# Names the LISTEN connection in pg_stat_activity.
LISTEN_APPLICATION_NAME: Final = "alertnet-feed-listen"
_LISTEN_TIMEOUT_S: Final = 10.0
_MAX_BACKOFF_S: Final = 30.0


# --- reading the feed -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FeedRecord:
    """One feed row as the stream sends it; ``text`` (the console's: the full row) is
    serialised once for every client, and the cut a post or an observer gets
    (``Scope.shown_feed_data``, DESIGN §10) once per kind of scope."""

    seq: int
    post_id: int | None
    mahalla_id: int | None
    text: str
    type: str = ""
    data: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    _shown: dict[tuple[str, int | None], str | None] = field(
        default_factory=dict, repr=False, compare=False
    )

    @classmethod
    def build(
        cls,
        seq: int,
        type: str,
        data: dict[str, Any],
        post_id: int | None = None,
        mahalla_id: int | None = None,
    ) -> FeedRecord:
        text = _message_text(seq, type, data)
        return cls(seq=seq, post_id=post_id, mahalla_id=mahalla_id, text=text, type=type, data=data)

    def visible_in(self, scope: Scope) -> bool:
        return scope.sees_feed_row(post_id=self.post_id, mahalla_id=self.mahalla_id)

    def text_for(self, scope: Scope) -> str | None:
        """The message as ``scope`` may read it; None when it gets none of this row."""
        if scope.reach is Reach.EVERYTHING:
            return self.text
        # What a post may read depends on whether it holds the alert: one cut per post.
        key = (scope.reach.value, scope.post_id)
        if key not in self._shown:
            data = scope.shown_feed_data(self.type, self.data)
            self._shown[key] = None if data is None else _message_text(self.seq, self.type, data)
        return self._shown[key]


def _message_text(seq: int, type_: str, data: dict[str, Any]) -> str:
    message = {"seq": seq, "type": type_, "data": data}
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


def _rows_query(after: int, upto: int | None, scope: Scope | None, limit: int) -> Select[Any]:
    query = select(
        FeedItem.seq, FeedItem.type, FeedItem.data, FeedItem.post_id, FeedItem.mahalla_id
    ).where(FeedItem.seq > after)
    if upto is not None:
        query = query.where(FeedItem.seq <= upto)
    if scope is not None:
        query = query.where(scope.feed_rows())
    return query.order_by(FeedItem.seq).limit(limit)


async def read_rows(
    connection: AsyncConnection,
    *,
    after: int,
    upto: int | None = None,
    scope: Scope | None = None,
    limit: int = READ_BATCH,
) -> list[FeedRecord]:
    """Rows with ``after < seq <= upto`` visible in ``scope`` (None: every row), oldest first,
    at most ``limit``."""
    result = await connection.execute(_rows_query(after, upto, scope, limit))
    return [
        FeedRecord.build(seq, type_, data, post_id, mahalla_id)
        for seq, type_, data, post_id, mahalla_id in result
    ]


async def read_bounds(connection: AsyncConnection) -> tuple[int | None, int | None]:
    """The oldest and newest ``seq`` in the feed (None, None when it is empty)."""
    # Two subqueries: SQLite only answers a lone min() or max() from the index.
    oldest = select(func.min(FeedItem.seq)).scalar_subquery()
    newest = select(func.max(FeedItem.seq)).scalar_subquery()
    row = (await connection.execute(select(oldest, newest))).one()
    return row[0], row[1]


@dataclass(frozen=True, slots=True)
class StreamStart:
    """Where a new stream starts, and whether its client must reload its state first.

    ``resync`` is true when the requested ``after`` cannot be honoured exactly: it is older
    than the oldest row still kept (24 h retention), or newer than the newest row (the feed
    was reset). The stream then continues from ``after`` as given, or from the newest row.
    """

    after: int
    resync: bool


# --- the hub ----------------------------------------------------------------------------------


class Hub:
    """Tracks the feed's head for one process; streams wait on it and read through it."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        safety_poll_s: float = SAFETY_POLL_S,
        heartbeat_s: float = HEARTBEAT_S,
        tail_rows: int = TAIL_ROWS,
        read_batch: int = READ_BATCH,
        metrics: Metrics | None = None,
    ) -> None:
        if safety_poll_s <= 0 or heartbeat_s <= 0 or tail_rows < 1 or read_batch < 1:
            raise ValueError("invalid hub settings")
        self.engine = engine
        # Read on every use, so a test (or an operator's hook) may tune a running hub.
        self.safety_poll_s = safety_poll_s
        self.heartbeat_s = heartbeat_s
        self.tail_rows = tail_rows
        self.read_batch = read_batch
        self._metrics = metrics
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()
        self._advanced = asyncio.Event()
        self._ready = False
        self._head = 0
        # The tail holds every row with _floor < seq <= _head, oldest first.
        self._floor = 0
        self._tail: list[FeedRecord] = []
        self.epoch = 0
        self.listening = False

    @property
    def head(self) -> int:
        """The newest ``seq`` this hub has seen committed (0 before it has looked)."""
        return self._head

    @property
    def ready(self) -> bool:
        """True once the hub has read the feed's head (its first database read)."""
        return self._ready

    @property
    def running(self) -> bool:
        return self._loop is not None

    @property
    def uses_notify(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    # --- wake-ups ---

    def poke(self) -> None:
        """Look at the feed now (new rows were committed). Safe from any thread; never blocks."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._wake.set()
        else:
            loop.call_soon_threadsafe(self._wake.set)

    def watches(self, url: URL) -> bool:
        """Whether a commit on a database at ``url`` concerns this hub."""
        return _database_identity(url) == _database_identity(self.engine.url)

    async def wait_beyond(self, seq: int, timeout_s: float) -> bool:
        """Wait until the head passes ``seq`` or the hub restarts (``epoch``).

        False when ``timeout_s`` ran out first.
        """
        epoch = self.epoch
        try:
            async with asyncio.timeout(max(timeout_s, 0.0)):
                while self._head <= seq and self.epoch == epoch:
                    await self._advanced.wait()
        except TimeoutError:
            return self._head > seq
        return True

    # --- reading for streams ---

    async def open(self, after: int | None) -> StreamStart:
        """Where a stream asking for ``after`` (None: only what comes next) starts."""
        async with self.engine.connect() as connection:
            oldest, newest = await read_bounds(connection)
        newest = newest or 0
        if newest > self._head:
            self.poke()  # the stream will wait for the hub to catch up: let it do so now
        if after is None:
            return StreamStart(after=newest, resync=False)
        if after > newest:
            return StreamStart(after=newest, resync=True)
        if oldest is not None and after < oldest - 1:
            return StreamStart(after=after, resync=True)
        return StreamStart(after=after, resync=False)

    async def fetch(self, after: int, scope: Scope) -> tuple[list[FeedRecord], int]:
        """The rows after ``after`` that ``scope`` sees, and the cursor to continue from.

        Served from memory when ``after`` is within the tail, else from the database (at most
        ``read_batch`` rows at a time: call again while the cursor is below ``head``).
        """
        limit = self.read_batch
        head = self._head
        if not self._ready or after >= head:
            return [], after
        if after >= self._floor:
            start = bisect.bisect_right(self._tail, after, key=_seq_of)
            return [record for record in self._tail[start:] if record.visible_in(scope)], head
        async with self.engine.connect() as connection:
            rows = await read_rows(connection, after=after, upto=head, scope=scope, limit=limit)
        cursor = rows[-1].seq if len(rows) == limit else head
        return [record for record in rows if record.visible_in(scope)], cursor

    # --- the loop ---

    async def run(self) -> None:
        """Follow the feed until cancelled (the runtime's lifespan owns this task)."""
        self._loop = asyncio.get_running_loop()
        local = not self.uses_notify
        if local:
            _install_local_wakeup()
            _local_hubs.add(self)
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._follow(), name="realtime-hub-follow")
                if not local:
                    tasks.create_task(self._listen_forever(), name="realtime-hub-listen")
        finally:
            _local_hubs.discard(self)
            self.listening = False
            self._loop = None

    async def _follow(self) -> None:
        backoff_s = self.safety_poll_s
        poked = True
        while True:
            try:
                await self._refresh(check_reset=not poked)
                backoff_s = self.safety_poll_s
            except Exception:
                self._count_error()
                log.exception("reading the feed failed; retrying in %.1f s", backoff_s)
                await asyncio.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, _MAX_BACKOFF_S)
                continue
            poked = await self._wait_for_wake()

    async def _wait_for_wake(self) -> bool:
        """True when poked, False when the safety poll interval ran out."""
        try:
            async with asyncio.timeout(self.safety_poll_s):
                await self._wake.wait()
            poked = True
        except TimeoutError:
            poked = False
        # Cleared before reading, so a poke during the read causes another read.
        self._wake.clear()
        return poked

    async def _refresh(self, *, check_reset: bool) -> None:
        async with self.engine.connect() as connection:
            if not self._ready:
                _, newest = await read_bounds(connection)
                self._head = self._floor = newest or 0
                self._ready = True
                self._notify_waiters()
                return
            appended = False
            while True:
                rows = await read_rows(connection, after=self._head, limit=self.tail_rows)
                if rows:
                    self._append(rows)
                    appended = True
                if len(rows) < self.tail_rows:
                    break
            if check_reset and not appended:
                _, newest = await read_bounds(connection)
                if newest is not None and newest < self._head:
                    self._restart_at(newest)

    def _append(self, rows: Sequence[FeedRecord]) -> None:
        self._tail.extend(rows)
        self._head = rows[-1].seq
        # Trim in chunks (amortised O(1) per row) rather than on every append.
        if len(self._tail) > 2 * self.tail_rows:
            cut = len(self._tail) - self.tail_rows
            self._floor = self._tail[cut - 1].seq
            del self._tail[:cut]
        self._notify_waiters()

    def _restart_at(self, newest: int) -> None:
        log.warning("the feed went back from seq %d to %d; streams will resync", self._head, newest)
        self._head = self._floor = newest
        self._tail.clear()
        self.epoch += 1
        self._notify_waiters()

    def _notify_waiters(self) -> None:
        advanced, self._advanced = self._advanced, asyncio.Event()
        advanced.set()

    # --- PostgreSQL LISTEN ---

    async def _listen_forever(self) -> None:
        """Keep one LISTEN connection; any failure is counted, logged and retried with backoff
        (giving up would silently leave the streams to the safety poll)."""
        backoff_s = 0.5
        while True:
            try:
                connection = await asyncpg.connect(
                    _asyncpg_dsn(self.engine.url),
                    timeout=_LISTEN_TIMEOUT_S,
                    server_settings={"application_name": LISTEN_APPLICATION_NAME},
                )
            except Exception as exc:
                self._count_error()
                log.warning(
                    "cannot LISTEN for feed changes (%r); retrying in %.1f s", exc, backoff_s
                )
            else:
                try:
                    await self._listen(connection)
                except Exception as exc:
                    self._count_error()
                    log.warning("lost the LISTEN connection (%r); reconnecting", exc)
                finally:
                    self.listening = False
                    connection.terminate()
                backoff_s = 0.5
            await asyncio.sleep(backoff_s)
            backoff_s = min(backoff_s * 2, _MAX_BACKOFF_S)

    async def _listen(self, connection: Any) -> None:
        lost = asyncio.Event()
        connection.add_termination_listener(lambda _connection: lost.set())
        await connection.add_listener(FEED_CHANNEL, self._notified)
        self.listening = True
        self.poke()  # catch up with whatever was committed while nobody listened
        while True:
            try:
                async with asyncio.timeout(LISTEN_CHECK_S):
                    await lost.wait()
            except TimeoutError:
                # An idle socket can die silently: make it prove it is alive.
                async with asyncio.timeout(_LISTEN_TIMEOUT_S):
                    await connection.fetchval("SELECT 1")
                continue
            raise ConnectionError("the LISTEN connection was closed")

    def _notified(self, _connection: Any, _pid: int, _channel: str, _payload: str) -> None:
        self.poke()

    def _count_error(self) -> None:
        if self._metrics is not None:
            self._metrics.loop_errors.labels("realtime-hub").inc()


def _seq_of(record: FeedRecord) -> int:
    return record.seq


def _asyncpg_dsn(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _database_identity(url: URL) -> tuple[str, str]:
    database = url.database or ""
    if url.get_backend_name() == "sqlite" and database and database != ":memory:":
        database = os.path.realpath(database)
    return url.get_backend_name(), database


# --- in-process wake-up for SQLite ----------------------------------------------------------

_FEED_WRITTEN: Final = "alertnet_feed_written"
_local_hubs: weakref.WeakSet[Hub] = weakref.WeakSet()


def _install_local_wakeup() -> None:
    """Make every ORM commit that inserted feed rows poke this process's SQLite hubs."""
    if event.contains(Session, "do_orm_execute", _note_feed_insert):
        return
    event.listen(Session, "do_orm_execute", _note_feed_insert)
    event.listen(Session, "after_commit", _poke_local_hubs)
    event.listen(Session, "after_rollback", _forget_feed_insert)


def _note_feed_insert(state: ORMExecuteState) -> None:
    table = getattr(state.statement, "table", None)
    if state.is_insert and getattr(table, "name", None) == FeedItem.__tablename__:
        state.session.info[_FEED_WRITTEN] = True


def _poke_local_hubs(session: Session) -> None:
    if not session.info.pop(_FEED_WRITTEN, False):
        return
    url = session.get_bind().engine.url
    for hub in list(_local_hubs):
        if hub.watches(url):
            hub.poke()


def _forget_feed_insert(session: Session) -> None:
    session.info.pop(_FEED_WRITTEN, None)

"""Engine and session factories, the unit of work, migrations, and the helpers every
repository shares (dialect-aware insert, the SQLite write lock, retryable errors, get-or-404).

Services never commit: HTTP requests commit in ``get_session``, ingest and the dispatcher in
``unit_of_work``. Sessions use ``expire_on_commit=False`` so async code never lazy-loads.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, event, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from alertnet.errors import NotFound

T = TypeVar("T")

PROJECT_ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS_DIR = PROJECT_ROOT / "migrations"


def create_engine(database_url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine; on SQLite with WAL, a busy timeout and foreign keys enforced."""
    # Parameters are request values (device keys, names): errors and logs never show them.
    kwargs.setdefault("hide_parameters", True)
    if database_url.startswith("sqlite"):
        engine = create_async_engine(database_url, connect_args={"timeout": 30}, **kwargs)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 10)
    kwargs.setdefault("pool_pre_ping", True)
    return create_async_engine(database_url, **kwargs)


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


@asynccontextmanager
async def unit_of_work(
    session_factory: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """One transaction: commits when the block ends normally, rolls back on any exception."""
    async with session_factory() as session, session.begin():
        yield session


def alembic_config(database_url: str) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def migrate(database_url: str, revision: str = "head") -> None:
    """Upgrade the database to ``revision``. Synchronous: call it outside a running event loop."""
    from alembic import command

    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    from alembic import command

    command.downgrade(alembic_config(database_url), revision)


def is_sqlite(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "sqlite"


def insert(session: AsyncSession, table: Any) -> Any:
    """``INSERT`` in the session's dialect, so ``on_conflict_do_nothing`` and friends exist."""
    return (sqlite.insert if is_sqlite(session) else postgresql.insert)(table)


async def write_lock(session: AsyncSession) -> None:
    """On SQLite, take the database write lock now, so the reads that follow are authoritative.

    A no-op UPDATE makes the driver open the transaction and SQLite grant the (single) write
    lock; another writer then waits on the busy timeout. PostgreSQL uses row locks instead.
    """
    await session.flush()
    if is_sqlite(session):
        await session.execute(text("UPDATE alerts SET id = id WHERE 0"))


def is_transient(exc: BaseException) -> bool:
    """Errors that say the database is unreachable, not that the input is bad."""
    if isinstance(exc, OperationalError | InterfaceError | OSError | TimeoutError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


# PostgreSQL: serialization failure, deadlock detected, lock not available.
_RETRYABLE_SQLSTATES = frozenset({"40001", "40P01", "55P03"})


def is_retryable(exc: BaseException) -> bool:
    """A database error that a fresh attempt of the same transaction may well not hit."""
    if isinstance(exc, IntegrityError):
        return True  # a lost race on a unique index: the retry re-reads and decides again
    if not isinstance(exc, DBAPIError):
        return False
    orig = exc.orig
    if getattr(orig, "sqlstate", None) in _RETRYABLE_SQLSTATES:
        return True
    message = str(orig).lower()
    return isinstance(exc, OperationalError) and ("locked" in message or "busy" in message)


async def find_by(
    session: AsyncSession, model: type[T], condition: ColumnElement[bool]
) -> T | None:
    """The one row of ``model`` matching ``condition``, or None."""
    return (await session.execute(select(model).where(condition))).scalar_one_or_none()


async def get_by(
    session: AsyncSession, model: type[T], condition: ColumnElement[bool], missing: str
) -> T:
    """The one row of ``model`` matching ``condition``; ``NotFound(missing)`` otherwise."""
    row = await find_by(session, model, condition)
    if row is None:
        raise NotFound(missing)
    return row

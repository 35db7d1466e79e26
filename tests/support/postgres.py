"""Throwaway PostgreSQL databases, one per test run (or per migration test).

Tests never touch a database someone else uses: each run creates ``alertnet_test_<pid>_<hex>``
on the server named by ``ALERTNET_TEST_PG_URL`` and drops it at the end, terminating any
connection still open so that a leaked pool cannot keep it alive.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from sqlalchemy.engine import make_url

from tests.support.services import asyncpg_dsn, pg_admin_url


def new_database_name(prefix: str = "alertnet_test") -> str:
    return f"{prefix}_{os.getpid()}_{secrets.token_hex(4)}"


def database_url(admin_url: str, name: str) -> str:
    """``admin_url`` pointed at database ``name``, in SQLAlchemy form, password kept."""
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def create_database(admin_url: str | None = None, *, prefix: str = "alertnet_test") -> str:
    """Create an empty database and return its SQLAlchemy URL."""
    admin_url = admin_url or pg_admin_url()
    name = new_database_name(prefix)
    connection = await asyncpg.connect(asyncpg_dsn(admin_url))
    try:
        await connection.execute(f"CREATE DATABASE {_quoted(name)}")
    finally:
        await connection.close()
    return database_url(admin_url, name)


async def drop_database(url: str, admin_url: str | None = None) -> None:
    """Terminate every session on the database at ``url``, then drop it."""
    admin_url = admin_url or pg_admin_url()
    name = make_url(url).database
    if not name:
        raise ValueError(f"no database name in {url!r}")
    connection = await asyncpg.connect(asyncpg_dsn(admin_url))
    try:
        await connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = $1 AND pid <> pg_backend_pid()",
            name,
        )
        # FORCE (PostgreSQL 13+) also ends sessions that connected after the terminate.
        force = " WITH (FORCE)" if connection.get_server_version().major >= 13 else ""
        await connection.execute(f"DROP DATABASE IF EXISTS {_quoted(name)}{force}")
    finally:
        await connection.close()


@asynccontextmanager
async def temporary_database(
    admin_url: str | None = None, *, prefix: str = "alertnet_test"
) -> AsyncIterator[str]:
    """An empty database for the block's duration; yields its URL."""
    url = await create_database(admin_url, prefix=prefix)
    try:
        yield url
    finally:
        await drop_database(url, admin_url)

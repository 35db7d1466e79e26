"""Fixtures of the roles suite: a fresh migrated database per test, for alertnet subprocesses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from tests.support import services
from tests.support.database import migrate, sqlite_url
from tests.support.postgres import temporary_database


@pytest_asyncio.fixture
async def roles_pg() -> AsyncIterator[str]:
    """A fresh, migrated PostgreSQL database, dropped afterwards."""
    services.require_postgres()
    async with temporary_database(prefix="alertnet_roles") as url:
        await migrate(url)
        yield url


@pytest_asyncio.fixture
async def roles_sqlite(tmp_path: Path) -> str:
    """A fresh, migrated SQLite file."""
    url = sqlite_url(tmp_path / "alertnet.db")
    await migrate(url)
    return url

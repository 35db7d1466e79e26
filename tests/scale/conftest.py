"""Fixtures of the scale suite: a fresh migrated database on the shared PostgreSQL server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from tests.support import services
from tests.support.database import migrate
from tests.support.postgres import temporary_database


@pytest_asyncio.fixture
async def scale_db() -> AsyncIterator[str]:
    """A fresh, migrated database for one deployment, dropped afterwards."""
    services.require_postgres()
    async with temporary_database(prefix="alertnet_scale") as url:
        await migrate(url)
        yield url

"""Fixtures of the fault suite: a migrated database on the shared server, or an own cluster."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from tests.support import services
from tests.support.database import migrate
from tests.support.pgcluster import PostgresCluster, require_cluster
from tests.support.postgres import create_database, temporary_database


@pytest_asyncio.fixture
async def fault_db() -> AsyncIterator[str]:
    """A fresh, migrated database on the shared test server, dropped afterwards."""
    services.require_postgres()
    async with temporary_database(prefix="alertnet_fault") as url:
        await migrate(url)
        yield url


@pytest.fixture
def pg_cluster() -> Iterator[PostgresCluster]:
    """A PostgreSQL cluster of the test's own, which the test may stop and start."""
    require_cluster()
    with PostgresCluster() as cluster:
        yield cluster


@pytest_asyncio.fixture
async def cluster_db(pg_cluster: PostgresCluster) -> str:
    """A migrated database on ``pg_cluster`` (deleted with the cluster)."""
    url = await create_database(pg_cluster.url(), prefix="alertnet_fault")
    await migrate(url)
    return url

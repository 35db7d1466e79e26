"""Integers in requests have ranges: one beyond its column is a 422, not a 500 (DESIGN §14)."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.db import unit_of_work
from tests.auth.helpers import bearer, create_account
from tests.edge.conftest import EdgeClient
from tests.edge.test_error_shape import assert_error_shape


@pytest.mark.parametrize("mahalla_id", [2**31, -(2**31) - 1, 2**63, 2**64])
async def test_a_mahalla_id_beyond_32_bits_in_the_counts_is_refused(
    edge_client: EdgeClient, session_factory: async_sessionmaker[AsyncSession], mahalla_id: int
) -> None:
    async with unit_of_work(session_factory) as session:
        dispatcher = await create_account(session, "disp", "dispatcher")
    async with edge_client() as client:
        counts = await client.get(
            f"/api/v1/stats/counts?mahalla_id={mahalla_id}", headers=bearer(dispatcher)
        )
        assert_error_shape(counts, 422, "invalid_input")
        fine = await client.get("/api/v1/stats/counts?mahalla_id=1", headers=bearer(dispatcher))
        assert fine.status_code == 200, fine.text

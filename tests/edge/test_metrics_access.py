"""``/metrics`` needs an admin, the scrape token or a scrape address (DESIGN §14)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.db import unit_of_work
from tests.auth.helpers import bearer, create_account
from tests.edge.conftest import EdgeClient
from tests.edge.test_error_shape import assert_error_shape

SCRAPE_TOKEN = "prometheus-scrape-secret-0123456789"


async def test_metrics_are_closed_to_anonymous_and_non_admin_callers(
    edge_client: EdgeClient, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    async with unit_of_work(session_factory) as session:
        admin = await create_account(session, "root", "admin")
        dispatcher = await create_account(session, "disp", "dispatcher")
    async with edge_client(metrics_token=SCRAPE_TOKEN) as client:
        assert_error_shape(await client.get("/metrics"), 401, "unauthorized")
        assert_error_shape(
            await client.get("/metrics", headers={"authorization": "Bearer guessed"}),
            401,
            "unauthorized",
        )
        assert_error_shape(
            await client.get("/metrics", headers=bearer(dispatcher)), 403, "forbidden"
        )
        as_admin = await client.get("/metrics", headers=bearer(admin))
        assert as_admin.status_code == 200 and "alertnet_uplinks_total" in as_admin.text
        as_scraper = await client.get(
            "/metrics", headers={"authorization": f"Bearer {SCRAPE_TOKEN}"}
        )
        assert as_scraper.status_code == 200
        assert as_scraper.headers["content-type"].startswith("text/plain")


async def test_a_configured_scrape_address_needs_no_token(edge_client: EdgeClient) -> None:
    # httpx's ASGI transport presents its requests as coming from 127.0.0.1.
    async with edge_client(metrics_allow="10.0.0.0/8, 127.0.0.1") as client:
        assert (await client.get("/metrics")).status_code == 200
    async with edge_client(metrics_allow="10.0.0.0/8,::1") as client:
        assert_error_shape(await client.get("/metrics"), 401, "unauthorized")

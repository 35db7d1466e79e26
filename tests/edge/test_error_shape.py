"""Every 4xx and 5xx answer is ``{"error", "detail", "code"}`` (DESIGN §14), whoever raised it."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.db import unit_of_work
from tests.auth.helpers import bearer, create_account
from tests.edge.conftest import EdgeClient


def assert_error_shape(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert set(body) == {"error", "detail", "code"}, body
    assert body["code"] == code and body["error"] == code, body
    assert isinstance(body["detail"], str) and body["detail"], body
    return body


async def test_framework_errors_have_the_error_shape(edge_client: EdgeClient) -> None:
    async with edge_client() as client:
        assert_error_shape(await client.get("/no/such/route"), 404, "not_found")
        wrong_method = await client.get("/api/v1/uplinks")
        assert_error_shape(wrong_method, 405, "method_not_allowed")
        assert wrong_method.headers["allow"] == "POST"
        missing_fields = await client.post("/api/v1/auth/login", json={})
        body = assert_error_shape(missing_fields, 422, "invalid_input")
        assert "username" in body["detail"] and "password" in body["detail"]
        not_json = await client.post(
            "/api/v1/auth/login", content=b"{", headers={"content-type": "application/json"}
        )
        assert_error_shape(not_json, 422, "invalid_input")


async def test_alertnet_errors_have_the_error_shape(
    edge_client: EdgeClient, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    async with unit_of_work(session_factory) as session:
        admin = await create_account(session, "root", "admin")
    async with edge_client() as client:
        assert_error_shape(await client.get("/api/v1/alerts"), 401, "unauthorized")
        bad_header = await client.post(
            "/api/v1/uplinks",
            content=b"\x01",
            headers={"x-alertnet-gateway": "a b", **bearer(admin)},
        )
        assert_error_shape(bad_header, 400, "invalid_header")
        too_large = await client.post("/api/v1/auth/login", content=b"x" * 70_000)
        assert_error_shape(too_large, 413, "payload_too_large")
        rejected = await client.post("/api/v1/uplinks", content=b"\x01\x02")
        assert_error_shape(rejected, 422, "bad_length")


async def test_an_unexpected_error_is_a_500_without_a_stack_trace(
    edge_client: EdgeClient,
) -> None:
    async with edge_client() as client:
        app = client.app

        @app.get("/boom")
        async def boom() -> None:
            raise RuntimeError("secret internals: /srv/alertnet/db.py line 42")

        response = await client.get("/boom")
        body = assert_error_shape(response, 500, "internal_error")
        assert "secret" not in response.text and "Traceback" not in response.text
        assert body["detail"] == "an internal error occurred; it was logged"

"""Admin endpoints: registering the network over HTTP, and who may not."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.db import unit_of_work
from alertnet.ingest.pipeline import Disposition, RawUplink
from alertnet.models import Transport
from alertnet.protocol import EventCode, Uplink
from tests.auth.helpers import bearer, build_app, create_account


@pytest_asyncio.fixture
async def api(db_url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = build_app(db_url)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://alertnet") as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


async def test_admin_registers_a_city_and_disables_a_device(
    api: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    async with unit_of_work(session_factory) as session:
        admin = await create_account(session, "root", "admin")
        dispatcher = await create_account(session, "disp", "dispatcher")
    auth = bearer(admin)
    mahalla = await api.post(
        "/api/v1/mahallas", json={"name": "Chorsu", "risk": "red"}, headers=auth
    )
    assert mahalla.status_code == 201, mahalla.text
    device = await api.post(
        "/api/v1/devices",
        json={
            "eui": "70B3D57ED0007777",
            "kind": "panic_button",
            "lat": 41.3,
            "lon": 69.2,
            "mahalla": "Chorsu",
        },
        headers=auth,
    )
    assert device.status_code == 201, device.text
    body = device.json()
    assert body["eui"] == "70b3d57ed0007777" and len(body["key"]) == 32
    assert body["supervision_interval_s"] == 900 and body["site"] == "public"
    again = await api.post(
        "/api/v1/devices",
        json={"eui": "70b3d57ed0007777", "kind": "panic_button", "lat": 41.3, "lon": 69.2},
        headers=auth,
    )
    assert again.status_code == 409
    bad = await api.post(
        "/api/v1/devices",
        json={"eui": "nothex", "kind": "panic_button", "lat": 41.3, "lon": 69.2},
        headers=auth,
    )
    assert bad.status_code == 422 and bad.json()["error"] == "invalid_input"
    post = await api.post("/api/v1/posts", json={"callsign": "P-9"}, headers=auth)
    assert post.status_code == 201 and post.json()["status"] == "off_duty"
    user = await api.post(
        "/api/v1/users", json={"username": "crew9", "role": "post", "post": "P-9"}, headers=auth
    )
    assert user.status_code == 201 and len(user.json()["password"]) >= 8
    assert (await api.post("/api/v1/posts", json={"callsign": "X"})).status_code == 401
    denied = await api.post("/api/v1/posts", json={"callsign": "X"}, headers=bearer(dispatcher))
    assert denied.status_code == 403

    disabled = await api.patch(
        "/api/v1/devices/70b3d57ed0007777", json={"status": "disabled"}, headers=auth
    )
    assert disabled.json()["status"] == "disabled"
    pipeline = api.app.state.runtime.pipeline  # type: ignore[attr-defined]
    key = bytes.fromhex(body["key"])
    press = Uplink.build(key, "70b3d57ed0007777", 1, EventCode.PANIC).to_bytes()
    outcome = await pipeline.submit(RawUplink(press, Transport.HTTP))
    assert (outcome.disposition, outcome.reason) == (Disposition.QUARANTINED, "disabled_device")

    off = await api.patch("/api/v1/users/disp", json={"active": False}, headers=auth)
    assert off.json()["active"] is False
    assert (await api.get("/api/v1/alerts", headers=bearer(dispatcher))).status_code == 401

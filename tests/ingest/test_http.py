"""``POST /api/v1/uplinks``: binary or JSON in, the signed ack out in the same form, 422 if bad."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.db import unit_of_work
from alertnet.models import Alert, Device, Event, Quarantine
from alertnet.protocol import AckState, EventCode, Uplink, decode_downlink_json
from tests.auth.helpers import bearer, create_account, fast_password_hashing
from tests.ingest.helpers import EUI, KEY
from tests.support.asgi import AppClient
from tests.support.factories import create_device

__all__ = ["fast_password_hashing"]


async def test_binary_press_gets_the_binary_ack(
    api: AppClient, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    async with unit_of_work(session_factory) as session:
        await create_device(session, eui=EUI, key=KEY)
    frame = bytes.fromhex("0170b3d57ed00012340000002a010057000033667bfe")  # DESIGN §2.1
    response = await api.post(
        "/api/v1/uplinks", content=frame, headers={"content-type": "application/octet-stream"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.content.hex() == "8170b3d57ed00012340000002a01952c5ddb"  # DESIGN §2.2
    again = await api.post("/api/v1/uplinks", content=frame)
    assert again.headers["x-alertnet-outcome"] == "duplicate"
    assert again.content == response.content
    async with session_factory() as session:
        assert await session.scalar(select(func.count()).select_from(Event)) == 1
        assert await session.scalar(select(func.count()).select_from(Alert)) == 1


async def test_json_press_gets_the_json_ack(
    api: AppClient, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    async with unit_of_work(session_factory) as session:
        await create_device(session, eui=EUI, key=KEY)
    press = Uplink.build(KEY, EUI, 7, EventCode.FIRE, battery=50)
    response = await api.post(
        "/api/v1/uplinks", content=press.to_json(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    ack = decode_downlink_json(response.content, EUI)
    assert (ack.counter, ack.state, ack.verify(KEY)) == (7, AckState.RECEIVED, True)


async def test_bad_input_is_a_422_with_the_reason_and_is_quarantined(
    api: AppClient, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    response = await api.post("/api/v1/uplinks", content=b"\x01\x02")
    assert response.status_code == 422
    assert response.json()["error"] == "bad_length"
    huge = await api.post("/api/v1/uplinks", content=b"{" * 100_000)
    assert huge.status_code == 413  # refused unread (DESIGN §14), so not quarantined
    unknown = Uplink.build(KEY, EUI, 1, EventCode.PANIC).to_bytes()
    missing = await api.post("/api/v1/uplinks", content=unknown)
    assert (missing.status_code, missing.json()["error"]) == (422, "unknown_device")
    async with session_factory() as session:
        reasons = sorted((await session.scalars(select(Quarantine.reason))).all())
    assert reasons == ["bad_length", "unknown_device"]


async def test_health_and_metrics(api: AppClient) -> None:
    assert (await api.get("/healthz")).status_code == 200
    ready = await api.get("/readyz")
    assert ready.status_code == 503 and ready.json()["database"] == "ok"
    assert ready.json()["broker"] == "disconnected"
    await api.post("/api/v1/uplinks", content=b"junk")
    async with unit_of_work(api.runtime.session_factory) as session:
        admin = await create_account(session, "root", "admin")
    metrics = (await api.get("/metrics", headers=bearer(admin))).text
    assert 'alertnet_uplinks_total{outcome="quarantined",transport="http"} 1.0' in metrics


async def press_via_gateway(
    client: httpx.AsyncClient, counter: int, headers: dict[str, str]
) -> httpx.Response:
    frame = Uplink.build(KEY, EUI, counter, EventCode.PANIC).to_bytes()
    return await client.post("/api/v1/uplinks", content=frame, headers=headers)


async def test_the_gateway_header_counts_only_with_an_admin_token(
    api: AppClient,
    session_factory: async_sessionmaker[AsyncSession],
    fast_password_hashing: None,
) -> None:
    async with unit_of_work(session_factory) as session:
        await create_device(session, eui=EUI, key=KEY)
        admin = await create_account(session, "root", "admin")
        dispatcher = await create_account(session, "disp", "dispatcher")
    anonymous = await press_via_gateway(api, 1, {"x-alertnet-gateway": "gw-roof"})
    assert anonymous.status_code == 200
    assert anonymous.headers["x-alertnet-gateway"] == "ignored"
    not_admin = await press_via_gateway(
        api, 2, {"x-alertnet-gateway": "gw-roof", **bearer(dispatcher)}
    )
    assert not_admin.headers["x-alertnet-gateway"] == "ignored"
    async with session_factory() as session:
        assert (await session.scalars(select(Event.gateway_ids))).all() == ["", ""]
        assert await session.scalar(select(Device.last_gateway_id)) is None
    trusted = await press_via_gateway(
        api, 3, {"x-alertnet-gateway": "gw-roof:1.b", **bearer(admin)}
    )
    assert trusted.status_code == 200 and trusted.headers["x-alertnet-gateway"] == "used"
    async with session_factory() as session:
        stored = await session.scalar(select(Event.gateway_ids).where(Event.counter == 3))
        assert stored == "gw-roof:1.b"
        assert await session.scalar(select(Device.last_gateway_id)) == "gw-roof:1.b"


async def test_a_bad_gateway_header_is_a_400_and_stores_nothing(
    api: AppClient,
    session_factory: async_sessionmaker[AsyncSession],
    fast_password_hashing: None,
) -> None:
    async with unit_of_work(session_factory) as session:
        await create_device(session, eui=EUI, key=KEY)
        admin = await create_account(session, "root", "admin")
    for bad in ("g" * 65, "gw 1", "gw/1", "gw;drop", "gw@1", ""):
        response = await press_via_gateway(api, 1, {"x-alertnet-gateway": bad, **bearer(admin)})
        assert response.status_code == 400, bad
        body = response.json()
        assert (body["error"], body["code"]) == ("invalid_header", "invalid_header")
        assert "X-Alertnet-Gateway" in body["detail"]
    # A 121-character id once failed its batch and stopped ingest for good (issue 12).
    too_long = await press_via_gateway(api, 1, {"x-alertnet-gateway": "g" * 121, **bearer(admin)})
    assert too_long.status_code == 400
    async with session_factory() as session:
        assert await session.scalar(select(func.count()).select_from(Event)) == 0
        assert await session.scalar(select(func.count()).select_from(Quarantine)) == 0
    after = await press_via_gateway(api, 1, {})
    assert after.status_code == 200 and after.headers["x-alertnet-outcome"] == "new"


async def test_a_device_alarm_is_never_refused_for_a_gateway_header_it_may_not_use(
    api: AppClient, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    """Without an admin's token the header never reaches the database, so whatever it holds
    the press is committed and acked, and the answer says the header was ignored."""
    async with unit_of_work(session_factory) as session:
        await create_device(session, eui=EUI, key=KEY)
    for counter, odd in enumerate(("g" * 121, "gw 1", "gw;drop", ""), start=1):
        response = await press_via_gateway(api, counter, {"x-alertnet-gateway": odd})
        assert response.status_code == 200, odd
        assert response.headers["x-alertnet-outcome"] == "new"
        assert response.headers["x-alertnet-gateway"] == "ignored"
    async with session_factory() as session:
        assert await session.scalar(select(func.count()).select_from(Event)) == 4

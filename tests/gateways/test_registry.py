"""The gateway registry: first sight, online state from MQTT and serial, the console API."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from types import SimpleNamespace

from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.app import install_error_handlers
from alertnet.db import unit_of_work
from alertnet.gateways import service
from alertnet.gateways.api import router as gateways_api
from alertnet.gateways.registry import GatewayRegistry
from alertnet.models import Gateway, Quarantine, Transport, utcnow
from alertnet.protocol import gw_state_topic
from tests.auth.helpers import bearer, create_account
from tests.support.asgi import AppClient
from tests.support.factories import create_post
from tests.support.mosquitto import MosquittoServer
from tests.support.polling import eventually

from .helpers import running_alertnet

SessionFactory = async_sessionmaker[AsyncSession]


async def _gateways(session_factory: SessionFactory) -> dict[str, tuple[str, bool]]:
    async with session_factory() as session:
        rows = await session.execute(select(Gateway.id, Gateway.transport, Gateway.online))
        return {gateway_id: (transport, online) for gateway_id, transport, online in rows}


async def test_first_sight_registers_and_state_changes_keep_last_seen(
    session_factory: SessionFactory,
) -> None:
    start = utcnow()
    async with unit_of_work(session_factory) as session:
        await service.seen(session, "gw-1", Transport.MQTT, start)
        await service.seen(session, "gw-1", Transport.MQTT, start - timedelta(seconds=5))
        await service.set_online(session, "/dev/ttyUSB0", Transport.SERIAL, False, start)
    async with unit_of_work(session_factory) as session:
        await service.set_online(
            session, "gw-1", Transport.MQTT, False, start + timedelta(seconds=1)
        )
        await service.seen(session, "gw-1", Transport.MQTT, start + timedelta(seconds=2))
    async with session_factory() as session:
        gateways = {gateway.id: gateway for gateway in await service.list_gateways(session)}
    first, serial = gateways["gw-1"], gateways["/dev/ttyUSB0"]
    assert (serial.id, serial.transport, serial.online, serial.last_seen_at) == (
        "/dev/ttyUSB0",
        "serial",
        False,
        None,
    )
    # A frame seen does not overrule the gateway's own "offline"; the latest time wins.
    assert (first.id, first.online, first.last_seen_at) == (
        "gw-1",
        False,
        start + timedelta(seconds=2),
    )


async def test_registry_writes_the_latest_state_and_resolves_every_waiter(
    session_factory: SessionFactory,
) -> None:
    registry = GatewayRegistry(session_factory, flush_interval_s=60)
    task = asyncio.create_task(registry.run())
    try:
        registry.seen("gw-2", Transport.MQTT)
        waiters = [
            registry.set_state("gw-2", Transport.MQTT, online)
            for online in (True, False, True, False)
        ]
        registry.seen("x" * (service.MAX_GATEWAY_ID_CHARS + 1), Transport.MQTT)  # refused
        async with asyncio.timeout(10):
            await asyncio.gather(*waiters)
    finally:
        task.cancel()
    assert await _gateways(session_factory) == {"gw-2": ("mqtt", False)}
    assert registry.pending == 0 and registry.write_failures == 0


async def test_mqtt_gateway_states_are_ingested_and_bad_ones_quarantined(
    session_factory: SessionFactory, mosquitto: MosquittoServer
) -> None:
    async with mosquitto.harness_client("early-gw") as early:
        # Retained before alertnet ever connects: delivered on subscribe.
        await early.publish(gw_state_topic("gw-early"), b"online", qos=1, retain=True)
    async with (
        running_alertnet(session_factory, mqtt_url=mosquitto.url),
        mosquitto.harness_client("gw-late") as gateway,
    ):
        await eventually(
            lambda: _gateways(session_factory),
            lambda g: "gw-early" in g,
            awaiting="gw-early registered from its retained state",
        )
        await gateway.publish(gw_state_topic("gw-late"), b"online", qos=1, retain=True)
        await gateway.publish(gw_state_topic("gw-early"), b"offline", qos=1, retain=True)
        await gateway.publish(gw_state_topic("gw-bad"), b"sleepy", qos=1)
        await gateway.publish(gw_state_topic("gw-late"), b"", qos=1, retain=True)  # clears
        await gateway.publish(f"alertnet/v1/gw/{'g' * 150}/state", b"online", qos=1)
        states = await eventually(
            lambda: _gateways(session_factory),
            lambda g: g.get("gw-late") == ("mqtt", True) and g.get("gw-early") == ("mqtt", False),
            awaiting="gw-late online and gw-early offline",
        )

        async def quarantined() -> list[str]:
            async with session_factory() as session:
                return sorted((await session.scalars(select(Quarantine.reason))).all())

        reasons = await eventually(
            quarantined, lambda r: len(r) == 2, awaiting="two state messages quarantined"
        )
    assert set(states) == {"gw-early", "gw-late"}
    assert reasons == ["bad_field", "bad_topic"]


async def test_console_lists_gateways(session_factory: SessionFactory) -> None:
    seen_at = utcnow()
    async with unit_of_work(session_factory) as session:
        await service.seen(session, "gw-b", Transport.MQTT, seen_at)
        await service.set_online(session, "gw-a", Transport.SERIAL, False, seen_at)
        await create_post(session, callsign="P-7")
        dispatcher = await create_account(session, "dispatch7", "dispatcher")
        crew = await create_account(session, "post7", "post", post_callsign="P-7")
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(gateways_api)
    app.state.runtime = SimpleNamespace(session_factory=session_factory)
    async with AppClient(app) as client:
        assert (await client.get("/api/v1/gateways")).status_code == 401
        as_post = await client.get("/api/v1/gateways", headers=bearer(crew))
        assert as_post.status_code == 403
        response = await client.get("/api/v1/gateways", headers=bearer(dispatcher))
    assert response.status_code == 200
    body = response.json()
    assert [(g["id"], g["transport"], g["online"]) for g in body] == [
        ("gw-a", "serial", False),
        ("gw-b", "mqtt", True),
    ]
    assert body[0]["last_seen_at"] is None
    assert body[1]["last_seen_at"] is not None
    assert set(body[0]) == {"id", "transport", "name", "lat", "lon", "online", "last_seen_at"}

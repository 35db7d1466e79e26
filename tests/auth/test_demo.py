"""Demo data stays demo (issue 12, DESIGN §14): ``--demo`` seeds only an empty database and
marks what it creates; a server without ``--demo`` refuses demo logins, tokens and device keys.
The CLI side (``serve --demo`` twice, on a real database, then without it) is in test_cli."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager

import httpx
import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet import demo
from alertnet.auth.tokens import create_token
from alertnet.auth.users import get_user_by_username
from alertnet.db import unit_of_work
from alertnet.models import Device, Mahalla, Post, User
from alertnet.protocol import EventCode, Uplink
from tests.auth.helpers import create_account
from tests.support.asgi import AppClient, alertnet_api
from tests.support.factories import create_mahalla

SessionFactory = async_sessionmaker[AsyncSession]
DEMO_ADMIN = demo.LOGINS[0]
DEMO_DEVICE = demo.DEVICES[0].eui
DEMO_DEVICES = len(demo.DEVICES) + len(demo.PROGRAMME_ALARMS)


def serving(db_url: str, *, with_demo: bool) -> AbstractAsyncContextManager[AppClient]:
    """The real app on ``db_url``, configured as ``alertnet serve [--demo]`` would be."""
    return alertnet_api(db_url, demo=with_demo)


async def seed_and_serve_mode(session_factory: SessionFactory, *, enabled: bool) -> demo.DemoMode:
    """What ``alertnet serve [--demo]`` does to the database before it starts."""
    async with unit_of_work(session_factory) as session:
        if enabled:
            await demo.seed_demo(session)
        return await demo.apply_demo_mode(session, enabled=enabled)


async def press(client: httpx.AsyncClient, counter: int) -> httpx.Response:
    frame = Uplink.build(demo.demo_key(DEMO_DEVICE), DEMO_DEVICE, counter, EventCode.PANIC)
    return await client.post(
        "/api/v1/uplinks",
        content=frame.to_bytes(),
        headers={"Content-Type": "application/octet-stream"},
    )


async def log_in(client: httpx.AsyncClient) -> httpx.Response:
    return await client.post(
        "/api/v1/auth/login",
        json={"username": DEMO_ADMIN.username, "password": DEMO_ADMIN.password},
    )


async def test_demo_seeds_only_an_empty_database(session_factory: SessionFactory) -> None:
    async with unit_of_work(session_factory) as session:
        await create_mahalla(session, name="Real mahalla")
        await create_account(session, "chief", "admin")
    with pytest.raises(demo.DemoRefused) as refused:
        async with unit_of_work(session_factory) as session:
            await demo.seed_demo(session)
    assert refused.value.status_code == 409
    assert "1 users" in refused.value.detail and "1 mahallas" in refused.value.detail
    assert "empty database" in refused.value.detail
    async with session_factory() as session:
        assert await session.scalar(select(func.count()).select_from(Device)) == 0
        assert await session.scalar(select(func.count()).select_from(User)) == 1


async def test_seeding_marks_every_row_and_fills_only_what_is_missing(
    session_factory: SessionFactory,
) -> None:
    async with unit_of_work(session_factory) as session:
        assert (await demo.seed_demo(session)).created
    async with unit_of_work(session_factory) as session:
        assert not (await demo.seed_demo(session)).created  # `make run` twice
        await session.execute(delete(Device).where(Device.eui == DEMO_DEVICE))
    async with unit_of_work(session_factory) as session:
        assert (await demo.seed_demo(session)).created
    async with session_factory() as session:
        for model, count in ((Mahalla, 3), (Device, DEMO_DEVICES), (Post, 3), (User, 6)):
            demo_flags = (await session.scalars(select(model.demo))).all()
            assert demo_flags == [True] * count, model


async def test_a_server_without_demo_refuses_demo_logins_tokens_and_keys(
    db_url: str, session_factory: SessionFactory
) -> None:
    await seed_and_serve_mode(session_factory, enabled=True)
    async with unit_of_work(session_factory) as session:
        admin = await get_user_by_username(session, DEMO_ADMIN.username)
        demo_token = await create_token(session, admin.id, label="script")
    async with serving(db_url, with_demo=True) as client:
        assert (await log_in(client)).status_code == 200
        assert (await press(client, 1)).status_code == 200

    mode = await seed_and_serve_mode(session_factory, enabled=False)
    assert (mode.devices, mode.users, mode.revoked_tokens) == (DEMO_DEVICES, 6, 2)
    async with serving(db_url, with_demo=False) as client:
        assert (await log_in(client)).status_code == 401
        bearer = {"Authorization": f"Bearer {demo_token}"}
        assert (await client.get("/api/v1/auth/me", headers=bearer)).status_code == 401
        quarantined = await press(client, 2)
        assert quarantined.status_code == 422
        assert quarantined.json()["error"] == "disabled_device"

    # Back to the demo: devices and logins work again, the old token does not.
    mode = await seed_and_serve_mode(session_factory, enabled=True)
    assert (mode.devices, mode.users) == (DEMO_DEVICES, 6)
    async with serving(db_url, with_demo=True) as client:
        assert (await log_in(client)).status_code == 200
        assert (await press(client, 3)).status_code == 200
        bearer = {"Authorization": f"Bearer {demo_token}"}
        assert (await client.get("/api/v1/auth/me", headers=bearer)).status_code == 401


async def test_a_demo_login_is_refused_even_if_the_account_was_left_enabled(
    db_url: str, session_factory: SessionFactory
) -> None:
    """A server started some other way than `alertnet serve` skips apply_demo_mode."""
    await seed_and_serve_mode(session_factory, enabled=True)
    async with serving(db_url, with_demo=False) as client:
        refused = await log_in(client)
    assert refused.status_code == 401
    assert "demo account" in refused.json()["detail"]


async def test_an_admin_cannot_re_enable_demo_devices_or_accounts(
    db_url: str, session_factory: SessionFactory
) -> None:
    await seed_and_serve_mode(session_factory, enabled=True)
    await seed_and_serve_mode(session_factory, enabled=False)
    async with unit_of_work(session_factory) as session:
        chief = await create_account(session, "chief", "admin")
    auth = {"Authorization": f"Bearer {chief.token}"}
    async with serving(db_url, with_demo=False) as client:
        device = await client.patch(
            f"/api/v1/devices/{DEMO_DEVICE}", json={"status": "active"}, headers=auth
        )
        assert device.status_code == 409 and "published key" in device.json()["detail"]
        account = await client.patch(
            f"/api/v1/users/{DEMO_ADMIN.username}", json={"active": True}, headers=auth
        )
        assert account.status_code == 409 and "demo account" in account.json()["detail"]

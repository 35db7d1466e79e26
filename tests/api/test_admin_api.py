"""Admin endpoints: registering the network over HTTP, and who may not."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.db import create_engine, unit_of_work
from alertnet.ingest.pipeline import Disposition, RawUplink
from alertnet.models import Device, Transport
from alertnet.protocol import EventCode, Uplink
from tests.auth.helpers import bearer, create_account
from tests.support.asgi import AppClient
from tests.support.factories import create_post


async def test_admin_registers_a_city_and_disables_a_device(
    api: AppClient, session_factory: async_sessionmaker[AsyncSession]
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
    pipeline = api.runtime.pipeline
    key = bytes.fromhex(body["key"])
    press = Uplink.build(key, "70b3d57ed0007777", 1, EventCode.PANIC).to_bytes()
    outcome = await pipeline.submit(RawUplink(press, Transport.HTTP))
    assert (outcome.disposition, outcome.reason) == (Disposition.QUARANTINED, "disabled_device")

    off = await api.patch("/api/v1/users/disp", json={"active": False}, headers=auth)
    assert off.json()["active"] is False
    assert (await api.get("/api/v1/alerts", headers=bearer(dispatcher))).status_code == 401


# --- request limits (issue 12: NUL → 500 with the device key in the log; schemathesis 500s) ----

KEY_HEX = "00112233445566778899aabbccddeeff"


async def test_a_nul_in_a_device_name_is_422_and_the_key_is_never_logged(
    api: AppClient,
    session_factory: async_sessionmaker[AsyncSession],
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with unit_of_work(session_factory) as session:
        admin = await create_account(session, "root", "admin")
    caplog.set_level(logging.DEBUG)
    response = await api.post(
        "/api/v1/devices",
        json={
            "eui": "70b3d57ed0007778",
            "kind": "panic_button",
            "lat": 41.3,
            "lon": 69.2,
            "key": KEY_HEX,
            "name": "Gate\u0000 north",
        },
        headers=bearer(admin),
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "invalid_input"
    assert "name" in response.json()["detail"]
    assert KEY_HEX not in response.text and KEY_HEX not in caplog.text


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/mahallas", {"name": "Chorsu\u0000", "risk": "red"}),
        ("/api/v1/mahallas", {"name": "Chorsu", "risk": "red", "district": "a\u0000"}),
        ("/api/v1/mahallas", {"name": "Chorsu", "risk": "red", "households": 2**31}),
        ("/api/v1/mahallas", {"name": "Chorsu", "risk": "red", "businesses": -1}),
        ("/api/v1/mahallas", {"name": "Chorsu", "risk": "red", "lat": 1e308, "lon": 0}),
        ("/api/v1/mahallas", {"name": "", "risk": "red"}),
        ("/api/v1/posts", {"callsign": "P-1\u0000"}),
        ("/api/v1/posts", {"callsign": "P-1", "lat": 91, "lon": 0}),
        ("/api/v1/posts", {"callsign": "x" * 41}),
        ("/api/v1/users", {"username": "a\u0000b", "role": "admin"}),
        ("/api/v1/users", {"username": "ab", "role": "admin", "password": "x\u0000" * 8}),
        ("/api/v1/users", {"username": "ab", "role": "post", "post": "P\u0000"}),
        (
            "/api/v1/devices",
            {
                "eui": "70b3d57ed0007779",
                "kind": "panic_button",
                "lat": 0,
                "lon": 0,
                "supervision_interval_s": 2**63,
            },
        ),
        (
            "/api/v1/devices",
            {
                "eui": "70b3d57ed0007779",
                "kind": "panic_button",
                "lat": 0,
                "lon": 0,
                "supervision_interval_s": -5,
            },
        ),
        (
            "/api/v1/devices",
            {"eui": "70b3d57ed0007779\u0000", "kind": "panic_button", "lat": 0, "lon": 0},
        ),
        (
            "/api/v1/devices",
            {
                "eui": "70b3d57ed0007779",
                "kind": "panic_button",
                "lat": 0,
                "lon": 0,
                "address": "line one\nline two",
            },
        ),
    ],
)
async def test_bad_strings_and_out_of_range_numbers_are_422(
    api: AppClient,
    session_factory: async_sessionmaker[AsyncSession],
    path: str,
    body: dict[str, object],
) -> None:
    async with unit_of_work(session_factory) as session:
        admin = await create_account(session, "root", "admin")
        await create_post(session, callsign="P")
    response = await api.post(path, json=body, headers=bearer(admin))
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "invalid_input"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/devices/70b3d57ed000%00", {"status": "disabled"}),
        ("/api/v1/users/root%00", {"active": False}),
        ("/api/v1/users/root", {"active": False, "password": "x\u0000yzabcdefghij"}),
    ],
)
async def test_path_parameters_and_changes_are_validated_too(
    api: AppClient,
    session_factory: async_sessionmaker[AsyncSession],
    path: str,
    body: dict[str, object],
) -> None:
    async with unit_of_work(session_factory) as session:
        admin = await create_account(session, "root", "admin")
    response = await api.patch(path, json=body, headers=bearer(admin))
    assert response.status_code == 422, response.text


async def test_a_nul_in_a_login_is_422(api: AppClient) -> None:
    for body in (
        {"username": "root\u0000", "password": "x"},
        {"username": "r", "password": "\u0000"},
    ):
        response = await api.post("/api/v1/auth/login", json=body)
        assert response.status_code == 422, response.text


async def test_database_errors_never_show_the_sql_parameters(db_url: str) -> None:
    """A failing statement's error (which the 500 handler logs) names no value from it."""
    engine = create_engine(db_url)
    key = bytes.fromhex(KEY_HEX)
    try:
        async with engine.begin() as connection:
            statement = insert(Device).values(
                eui="70b3d57ed0007780", kind="panic_button", lat=0.0, lon=0.0, key=key,
                name="x", address="", status="no such status",
            )  # fmt: skip
            with pytest.raises(DBAPIError) as failed:
                await connection.execute(statement)
    finally:
        await engine.dispose()
    message = str(failed.value)
    assert "hide_parameters=True" in message
    assert KEY_HEX not in message and key.hex() not in message and "no such status" not in message

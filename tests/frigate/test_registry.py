"""Registering cameras (DESIGN §9.3): ``alertnet device add --kind camera --camera NAME
[--labels] [--zones] [--hours]``, the CSV import's camera columns and the admin API."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.db import unit_of_work
from alertnet.devices.importer import import_devices
from alertnet.errors import InvalidInput
from alertnet.models import Device
from tests.auth.helpers import bearer, create_account
from tests.support.asgi import AppClient
from tests.test_cli import Cli, _env


def test_device_add_registers_a_camera_without_a_key(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "a.db", _env(tmp_path / "a.db"))
    cli.ok("migrate")
    out = cli.ok(
        "device", "add", "70b3d57ed0008001", "--kind", "camera", "--camera", "gate",
        "--labels", "person,car", "--zones", "yard, porch", "--hours", "22-6",
        "--lat", "41.3111", "--lon", "69.2797",
    )  # fmt: skip
    assert "Frigate camera gate: labels person,car, zones yard,porch, hours 22-06" in out
    assert "generated key" not in out
    assert cli.query(
        "SELECT kind, camera_name, camera_labels, camera_zones, camera_hours,"
        " supervision_interval_s FROM devices"
    ) == [("camera", "gate", "person,car", "yard,porch", "22-06", 604_800)]

    defaults = cli.ok(
        "device", "add", "70b3d57ed0008002", "--kind", "camera", "--camera", "back",
        "--lat", "41.3111", "--lon", "69.2797",
    )  # fmt: skip
    assert "labels person, zones everywhere, hours always" in defaults
    taken = cli(
        "device", "add", "70b3d57ed0008003", "--kind", "camera", "--camera", "gate",
        "--lat", "41.3111", "--lon", "69.2797",
    )  # fmt: skip
    assert taken.code != 0 and "camera gate" in taken.err
    for bad in (("--hours", "22-22"), ("--zones", "a b")):
        ran = cli(
            "device", "add", "70b3d57ed0008004", "--kind", "camera", "--camera", "x",
            *bad, "--lat", "41.3111", "--lon", "69.2797",
        )  # fmt: skip
        assert ran.code != 0, bad
    no_name = cli(
        "device", "add", "70b3d57ed0008005", "--kind", "camera", "--lat", "41.3", "--lon", "69.2"
    )
    assert no_name.code != 0 and "--camera" in no_name.err
    button = cli(
        "device", "add", "70b3d57ed0008006", "--kind", "panic_button", "--zones", "yard",
        "--lat", "41.3", "--lon", "69.2",
    )  # fmt: skip
    assert button.code != 0


async def test_csv_import_takes_camera_columns(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    csv = (
        "eui,kind,lat,lon,camera,camera_labels,camera_zones,camera_hours\n"
        '70b3d57ed0008101,camera,41.31,69.27,gate,person,"yard,porch",22-06\n'
        "70b3d57ed0008102,camera,41.31,69.27,back,,,\n"
    )
    async with unit_of_work(session_factory) as session:
        result = await import_devices(session, csv)
    assert result.count == 2 and result.generated_keys == ()
    async with session_factory() as session:
        rows = (
            await session.execute(
                select(
                    Device.camera_name,
                    Device.camera_labels,
                    Device.camera_zones,
                    Device.camera_hours,
                ).order_by(Device.eui)
            )
        ).all()
    assert rows == [("gate", "person", "yard,porch", "22-06"), ("back", "person", "", None)]
    again = csv.replace("8101", "8201").replace("8102", "8202")
    with pytest.raises(InvalidInput, match="camera gate is another device already"):
        async with unit_of_work(session_factory) as session:
            await import_devices(session, again)


async def test_the_admin_api_registers_and_shows_a_camera(
    api: AppClient, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    async with unit_of_work(session_factory) as session:
        admin = await create_account(session, "boss", "admin")
    body = {
        "eui": "70b3d57ed0008301",
        "kind": "camera",
        "lat": 41.31,
        "lon": 69.27,
        "camera": "gate",
        "camera_zones": "yard",
        "camera_hours": "22-06",
    }
    created = await api.post("/api/v1/devices", json=body, headers=bearer(admin))
    assert created.status_code == 201, created.text
    view = created.json()
    assert (view["camera"], view["camera_labels"], view["camera_zones"], view["camera_hours"]) == (
        "gate",
        "person",
        "yard",
        "22-06",
    )
    assert "key" not in view
    twice = await api.post(
        "/api/v1/devices", json={**body, "eui": "70b3d57ed0008302"}, headers=bearer(admin)
    )
    assert twice.status_code == 409
    bad = await api.post(
        "/api/v1/devices",
        json={**body, "eui": "70b3d57ed0008303", "camera": "x", "camera_hours": "99-01"},
        headers=bearer(admin),
    )
    assert bad.status_code == 422

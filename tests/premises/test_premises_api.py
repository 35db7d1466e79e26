"""Filling premises and call lists (DESIGN §10): ``PUT /devices/{eui}/premises``, the admin
device API with premises and ``silent``, the CSV import and ``alertnet device add --silent``.

Each on SQLite and PostgreSQL (the CLI on SQLite, as ``tests/test_cli.py``); errors are 4xx with
a stable ``code``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.db import create_engine, create_session_factory, unit_of_work
from alertnet.devices.importer import import_devices
from alertnet.errors import InvalidInput
from alertnet.models import Device
from tests.auth.helpers import bearer
from tests.support.asgi import AppClient

from .helpers import BUTTON_EUI, HOME_EUI, PREMISES, build_city

SessionFactory = async_sessionmaker[AsyncSession]
NEW_EUI = "70b3d57ed000aaaa"


async def _device_row(api: AppClient, account: Any, eui: str) -> dict[str, Any]:
    rows = (await api.get("/api/v1/devices", headers=bearer(account))).json()
    return next(row for row in rows if row["eui"] == eui)


async def test_put_premises_replaces_them_for_admins_only(
    api: AppClient, session_factory: SessionFactory
) -> None:
    city = await build_city(session_factory)
    path = f"/api/v1/devices/{BUTTON_EUI}/premises"
    body = {
        "ref": "BAZAAR-1",
        "owner": "Chorsu bozori boshqaruvi",
        "address": "Chorsu bozori, 1-darvoza",
        "street": "Bozor ko'chasi",
        "notes": "Qo'riqchi xonasi darvoza yonida\n2-qavat",
        "contacts": [
            {"name": "Qo'riqchi", "phone": "+998 71 244-00-01", "relation": "guard"},
            {"name": "Direktor", "phone": "(71) 244-00-02"},
        ],
    }
    refused = await api.put(path, json=body, headers=bearer(city.dispatcher))
    assert refused.status_code == 403 and refused.json()["code"] == "forbidden"

    stored = await api.put(path, json=body, headers=bearer(city.admin))
    assert stored.status_code == 200, stored.text
    premises = stored.json()["premises"]
    assert premises["ref"] == "BAZAAR-1" and premises["notes"].endswith("2-qavat")
    # The call list keeps its order; a missing relation is empty.
    assert [c["name"] for c in premises["contacts"]] == ["Qo'riqchi", "Direktor"]
    assert premises["contacts"][1] == {
        "name": "Direktor",
        "phone": "(71) 244-00-02",
        "relation": "",
    }
    seen = await _device_row(api, city.dispatcher, BUTTON_EUI)
    assert seen["premises"] == premises and seen["address"] == "Chorsu bozori, 1-darvoza"

    # A PUT replaces everything: what it leaves out is emptied.
    cleared = await api.put(path, json={"street": "Bozor ko'chasi"}, headers=bearer(city.admin))
    assert cleared.json()["premises"] == {
        "ref": None,
        "owner": "",
        "address": "",
        "street": "Bozor ko'chasi",
        "notes": "",
        "contacts": [],
    }


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"contacts": [{"name": "A", "phone": "call me"}]}, "contacts.0.phone"),
        ({"contacts": [{"name": "A", "phone": "12"}]}, "contacts.0.phone"),
        ({"contacts": [{"name": "", "phone": "+998901234567"}]}, "contacts.0.name"),
        ({"contacts": [{"name": "A", "phone": "+99890", "extra": 1}]}, "contacts.0.extra"),
        (
            {"contacts": [{"name": f"N{n}", "phone": "+998901234567"} for n in range(11)]},
            "contacts",
        ),
        ({"notes": "x" * 2001}, "notes"),
        ({"notes": "nul\x00byte"}, "notes"),
        ({"street": "two\nlines"}, "street"),
        ({"ref": "r" * 65}, "ref"),
        ({"owner_name": "typo"}, "owner_name"),
    ],
)
async def test_bad_premises_are_refused_with_a_clear_422(
    api: AppClient, session_factory: SessionFactory, body: dict[str, Any], where: str
) -> None:
    city = await build_city(session_factory)
    answer = await api.put(
        f"/api/v1/devices/{HOME_EUI}/premises", json=body, headers=bearer(city.admin)
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["code"] == "invalid_input"
    assert where in answer.json()["detail"]
    # Nothing changed.
    row = await _device_row(api, city.dispatcher, HOME_EUI)
    assert row["premises"] == PREMISES


async def test_premises_of_an_unknown_device_is_404(
    api: AppClient, session_factory: SessionFactory
) -> None:
    city = await build_city(session_factory)
    answer = await api.put(
        "/api/v1/devices/70b3d57ed000ffff/premises", json={}, headers=bearer(city.admin)
    )
    assert answer.status_code == 404 and answer.json()["code"] == "not_found"


async def test_device_create_and_patch_take_premises_and_silent(
    api: AppClient, session_factory: SessionFactory
) -> None:
    city = await build_city(session_factory)
    created = await api.post(
        "/api/v1/devices",
        json={
            "eui": NEW_EUI,
            "kind": "panic_button",
            "site": "business",
            "lat": 41.31,
            "lon": 69.28,
            "mahalla": "Chorsu",
            "silent": True,
            "premises": {
                "ref": "BANK-7",
                "owner": "Xalq banki",
                "address": "Navoiy ko'chasi 30",
                "street": "Navoiy ko'chasi",
                "contacts": [{"name": "Kassir", "phone": "+998712000000", "relation": "staff"}],
            },
        },
        headers=bearer(city.admin),
    )
    assert created.status_code == 201, created.text
    view = created.json()
    assert view["silent"] is True and view["address"] == "Navoiy ko'chasi 30"
    assert view["premises"]["contacts"][0]["relation"] == "staff"

    patched = await api.patch(
        f"/api/v1/devices/{NEW_EUI}",
        json={"silent": False, "premises": {"street": "Navoiy ko'chasi"}},
        headers=bearer(city.admin),
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["silent"] is False and patched.json()["premises"]["contacts"] == []
    assert patched.json()["status"] == "active"  # untouched

    nothing = await api.patch(f"/api/v1/devices/{NEW_EUI}", json={}, headers=bearer(city.admin))
    assert nothing.status_code == 422 and nothing.json()["code"] == "invalid_input"
    silenced = await api.patch(
        f"/api/v1/devices/{NEW_EUI}", json={"silent": True}, headers=bearer(city.admin)
    )
    assert silenced.json()["silent"] is True
    by_dispatcher = await api.patch(
        f"/api/v1/devices/{NEW_EUI}", json={"silent": False}, headers=bearer(city.dispatcher)
    )
    assert by_dispatcher.status_code == 403


CSV_HEADER = (
    "eui,kind,lat,lon,mahalla,site,name,silent,premises_ref,owner,address,street,notes,"
    "contact1_name,contact1_phone,contact1_relation,contact2_name,contact2_phone,"
    "contact2_relation\n"
)


async def test_csv_import_reads_premises_contacts_and_silent(
    session_factory: SessionFactory,
) -> None:
    await build_city(session_factory, posts_on_duty=False)
    text = CSV_HEADER + (
        "70b3d57ed000b001,intrusion_alarm,41.31,69.28,Chorsu,household,Flat 3,,"
        'NAV-17,Aliyev Anvar,Navoiy 17 kv 3,Navoiy ko\'chasi,"Kirish hovlidan\n2-qavat",'
        "Aliyev Anvar,+998 90 000-00-01,owner,Aliyeva Gulnora,+998 90 000-00-02,wife\n"
        "70b3d57ed000b002,panic_button,41.32,69.29,Chorsu,business,Kassa,true,"
        "BANK-1,Bank,Navoiy 30,Navoiy ko'chasi,,,,,Kassir,+998 71 200-00-00,staff\n"
        "70b3d57ed000b003,panic_button,41.33,69.30,,,,no,,,,,,,,,,,\n"
    )
    async with unit_of_work(session_factory) as session:
        result = await import_devices(session, text)
    assert result.count == 3
    async with session_factory() as session:
        devices = {d.eui: d for d in await session.scalars(select(Device))}
    flat, bank, bare = (devices[f"70b3d57ed000b00{n}"] for n in (1, 2, 3))
    assert (flat.premises_ref, flat.owner, flat.address, flat.street) == (
        "NAV-17",
        "Aliyev Anvar",
        "Navoiy 17 kv 3",
        "Navoiy ko'chasi",
    )
    assert flat.notes == "Kirish hovlidan\n2-qavat" and flat.silent is False
    assert [c["phone"] for c in flat.contacts] == ["+998 90 000-00-01", "+998 90 000-00-02"]
    # An empty first slot is skipped: the call list is [Kassir].
    assert bank.silent is True and bank.contacts == [
        {"name": "Kassir", "phone": "+998 71 200-00-00", "relation": "staff"}
    ]
    assert bare.premises_ref is None and bare.contacts == [] and bare.silent is False


async def test_csv_import_names_each_bad_premises_row_and_imports_nothing(
    session_factory: SessionFactory,
) -> None:
    text = CSV_HEADER + (
        "70b3d57ed000c001,panic_button,41.31,69.28,,,,maybe,,,,,,,,,,,\n"
        "70b3d57ed000c002,panic_button,41.31,69.28,,,,,,,,,,Aziz,,son,,,\n"
        "70b3d57ed000c003,panic_button,41.31,69.28,,,,,,,,,,Aziz,not a phone,,,,\n"
        "70b3d57ed000c004,panic_button,41.31,69.28,,,,,,,,,,Aziz,+998901112233,,,,\n"
    )
    async with unit_of_work(session_factory) as session:
        with pytest.raises(InvalidInput) as raised:
            await import_devices(session, text, source_name="homes.csv")
    report = raised.value.detail
    assert report.startswith("homes.csv: 3 bad rows, nothing imported:")
    assert "line 2 (row 1): silent 'maybe' is not true or false" in report
    assert "line 3 (row 2): contact1_phone is empty" in report
    assert "line 4 (row 3): premises: contacts.0.phone" in report
    async with session_factory() as session:
        assert (await session.scalars(select(Device))).all() == []


async def test_csv_import_refuses_an_unknown_premises_column(
    session_factory: SessionFactory,
) -> None:
    async with unit_of_work(session_factory) as session:
        with pytest.raises(InvalidInput, match=r"unknown column.*'contact_phone'"):
            await import_devices(session, "eui,kind,lat,lon,contact_phone\n")


def test_cli_device_add_silent_with_premises(tmp_path: Path) -> None:
    path = tmp_path / "cli.db"
    env = {key: value for key, value in os.environ.items() if not key.startswith("ALERTNET_")}
    env.update(ALERTNET_DATABASE_URL=f"sqlite:///{path}", ALERTNET_LOG_LEVEL="WARNING")
    alertnet = Path(sys.executable).with_name("alertnet")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(alertnet), *args], env=env, capture_output=True, text=True, timeout=60
        )

    assert run("migrate").returncode == 0
    added = run(
        "device", "add", "70b3d57ed000d001", "--kind", "panic_button", "--site", "business",
        "--lat", "41.31", "--lon", "69.28", "--silent", "--premises-ref", "BANK-2",
        "--street", "Navoiy ko'chasi", "--address", "Navoiy 32",
        "--contact", "Kassir;+998 71 200-00-01;staff", "--contact", "Boshliq;+998712000002",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert "SILENT" in added.stdout
    bad = run(
        "device", "add", "70b3d57ed000d002", "--kind", "panic_button",
        "--lat", "41.31", "--lon", "69.28", "--contact", "just a name",
    )  # fmt: skip
    assert bad.returncode == 1 and "NAME;PHONE" in bad.stderr

    async def stored() -> Device:
        engine = create_engine(f"sqlite+aiosqlite:///{path}")
        try:
            async with create_session_factory(engine)() as session:
                return (await session.scalars(select(Device))).one()
        finally:
            await engine.dispose()

    import asyncio

    device = asyncio.run(stored())
    assert device.silent is True and device.premises_ref == "BANK-2"
    assert device.address == "Navoiy 32" and device.street == "Navoiy ko'chasi"
    assert device.contacts == [
        {"name": "Kassir", "phone": "+998 71 200-00-01", "relation": "staff"},
        {"name": "Boshliq", "phone": "+998712000002", "relation": ""},
    ]

"""Registering alarm panels (DESIGN §9.1): ``alertnet device add … --dc09-account ACCT
[--dc09-key HEX]``, the ``dc09_account,dc09_key`` CSV columns and the admin API. A panel is a
device (site, mahalla, supervision 90,000 s by default); its account is unique and its key is
never shown back."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from alertnet.db import unit_of_work
from alertnet.devices.importer import import_devices
from alertnet.errors import InvalidInput
from alertnet.models import Device
from tests.auth.helpers import bearer, create_account, fast_password_hashing
from tests.dc09_pipeline.helpers import KEY_128, SessionFactory, answer_kind, cid, panel_intake
from tests.support.asgi import AppClient

ALERTNET = Path(sys.executable).with_name("alertnet")
KEY_HEX = KEY_128.hex().upper()


__all__ = ["fast_password_hashing"]  # the fixture, for the admin account made here


def run(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("ALERTNET_")}
    env["ALERTNET_DATABASE_URL"] = f"sqlite:///{db}"
    return subprocess.run(
        [str(ALERTNET), *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_device_add_registers_a_panel_by_its_account(tmp_path: Path) -> None:
    db = tmp_path / "alertnet.db"
    assert run(db, "migrate").returncode == 0
    added = run(
        db, "device", "add", "0000000000001234", "--kind", "intrusion_alarm",
        "--lat", "41.31", "--lon", "69.28", "--site", "household",
        "--dc09-account", "00ab12", "--dc09-key", KEY_HEX, "--silent",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert "DC-09 account 00AB12 (AES-128)" in added.stdout
    assert "supervision every 90000 s" in added.stdout
    assert KEY_HEX.lower() not in added.stdout.lower() and "generated key" not in added.stdout
    taken = run(
        db, "device", "add", "0000000000001235", "--kind", "intrusion_alarm",
        "--lat", "41.31", "--lon", "69.28", "--dc09-account", "00AB12",
    )  # fmt: skip
    assert taken.returncode != 0 and "00AB12" in taken.stderr
    bad_key = run(
        db, "device", "add", "0000000000001236", "--kind", "intrusion_alarm",
        "--lat", "41.31", "--lon", "69.28", "--dc09-account", "77", "--dc09-key", "abcd",
    )  # fmt: skip
    assert bad_key.returncode != 0 and "Traceback" not in bad_key.stderr
    with sqlite3.connect(db) as connection:
        stored = connection.execute(
            "SELECT eui, dc09_account, hex(dc09_key), supervision_interval_s, silent, site "
            "FROM devices"
        ).fetchall()
    assert stored == [("0000000000001234", "00AB12", KEY_HEX, 90000, 1, "household")]


async def test_csv_import_takes_panel_accounts_and_keys(session_factory: SessionFactory) -> None:
    csv = (
        "eui,kind,lat,lon,dc09_account,dc09_key\n"
        f"00000000000000a1,intrusion_alarm,41.3,69.2,1234,{KEY_HEX}\n"
        "00000000000000a2,fire_alarm,41.3,69.2,5678,\n"
        "00000000000000a3,panic_button,41.3,69.2,,\n"
    )
    async with unit_of_work(session_factory) as session:
        result = await import_devices(session, csv)
    assert result.count == 3
    assert [eui for eui, _key in result.generated_keys] == ["00000000000000a3"]
    async with session_factory() as session:
        devices = (
            await session.execute(
                select(
                    Device.eui, Device.dc09_account, Device.dc09_key, Device.supervision_interval_s
                ).order_by(Device.eui)
            )
        ).all()
    assert [tuple(row) for row in devices] == [
        ("00000000000000a1", "1234", KEY_128, 90000),
        ("00000000000000a2", "5678", None, 90000),
        ("00000000000000a3", None, None, 900),
    ]
    repeated = (
        "eui,kind,lat,lon,dc09_account\n"
        "00000000000000b1,intrusion_alarm,41.3,69.2,9999\n"
        "00000000000000b2,intrusion_alarm,41.3,69.2,9999\n"
        "00000000000000b3,intrusion_alarm,41.3,69.2,1234\n"
        "00000000000000b4,intrusion_alarm,41.3,69.2,xyz\n"
    )
    with pytest.raises(InvalidInput) as refused:
        async with unit_of_work(session_factory) as session:
            await import_devices(session, repeated)
    detail = refused.value.detail
    assert "DC-09 account 9999 repeats" in detail
    assert "DC-09 account 1234 belongs to another device" in detail
    assert "'xyz' is not 3-16 hex digits" in detail


async def test_admin_api_registers_rekeys_and_removes_a_panel(
    api: AppClient, session_factory: SessionFactory, fast_password_hashing: None
) -> None:
    async with unit_of_work(session_factory) as session:
        auth = bearer(await create_account(session, "root", "admin"))
    created = await api.post(
        "/api/v1/devices",
        json={
            "eui": "00000000000000c1",
            "kind": "intrusion_alarm",
            "lat": 41.3,
            "lon": 69.2,
            "dc09_account": "c0ffee",
        },
        headers=auth,
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["dc09_account"], body["dc09_encrypted"]) == ("C0FFEE", False)
    assert body["supervision_interval_s"] == 90000 and "key" not in body
    taken = await api.post(
        "/api/v1/devices",
        json={"eui": "00000000000000c2", "kind": "intrusion_alarm", "lat": 41.3, "lon": 69.2,
              "dc09_account": "C0FFEE"},
        headers=auth,
    )  # fmt: skip
    assert taken.status_code == 409

    # The running receiver's intake takes a panel as it is now, with its next message.
    async with panel_intake(session_factory) as (_pipeline, intake):
        plain = cid(1, "1130 01 001", account="C0FFEE")
        assert answer_kind(await intake.on_frame(plain, "p", "tcp")) == "ACK"
        rekeyed = await api.patch(
            "/api/v1/devices/00000000000000c1", json={"dc09_key": KEY_HEX}, headers=auth
        )
        assert rekeyed.status_code == 200 and rekeyed.json()["dc09_encrypted"] is True
        assert KEY_HEX not in rekeyed.text and KEY_HEX.lower() not in rekeyed.text
        again = cid(2, "1130 01 002", account="C0FFEE")
        # Plain text from a panel that has a key now: refused (DUH), its next message too.
        assert answer_kind(await intake.on_frame(again, "p", "tcp")) == "DUH"
        assert answer_kind(await intake.on_frame(again, "p", "tcp")) == "DUH"
    bad = await api.patch(
        "/api/v1/devices/00000000000000c1", json={"dc09_key": "00" * 20}, headers=auth
    )
    assert bad.status_code == 422
    removed = await api.patch(
        "/api/v1/devices/00000000000000c1", json={"dc09_account": None}, headers=auth
    )
    assert removed.status_code == 200
    assert (removed.json()["dc09_account"], removed.json()["dc09_encrypted"]) == (None, False)

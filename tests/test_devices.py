"""Device registration and CSV import, mahallas, posts and the demo city, on both databases."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet import demo
from alertnet.auth.users import authenticate
from alertnet.db import unit_of_work
from alertnet.devices.importer import import_devices
from alertnet.devices.service import add_device, get_device_by_eui, parse_key_hex
from alertnet.errors import Conflict, InvalidInput, NotFound
from alertnet.mahallas import add_mahalla, get_mahalla_by_name
from alertnet.models import Device, Mahalla, Post, User
from alertnet.posts.service import add_post, get_post_by_callsign

SessionFactory = async_sessionmaker[AsyncSession]
KEY_HEX = "000102030405060708090a0b0c0d0e0f"


async def _count(session_factory: SessionFactory, model: type[object]) -> int:
    async with unit_of_work(session_factory) as session:
        return (await session.execute(select(func.count()).select_from(model))).scalar_one()


async def _mahalla(session_factory: SessionFactory, name: str = "Chorsu") -> None:
    async with unit_of_work(session_factory) as session:
        await add_mahalla(session, name, risk="red", lat=41.3262, lon=69.2362)


# --- add_device -------------------------------------------------------------------------------


async def test_add_device_generates_a_key_and_applies_defaults(
    session_factory: SessionFactory,
) -> None:
    await _mahalla(session_factory)
    async with unit_of_work(session_factory) as session:
        device, key = await add_device(
            session,
            "70:B3:D5:7E:D0:00:12:34",
            kind="panic_button",
            lat=41.3111,
            lon=69.2797,
            mahalla_name="Chorsu",
        )
    assert len(key) == 16
    async with unit_of_work(session_factory) as session:
        stored = await get_device_by_eui(session, "70B3D57ED0001234")
        chorsu = await get_mahalla_by_name(session, "Chorsu")
    assert stored.eui == "70b3d57ed0001234" == device.eui
    assert stored.key == key
    assert (stored.kind, stored.site, stored.status) == ("panic_button", "public", "active")
    assert stored.supervision_interval_s == 900
    assert stored.mahalla_id == chorsu.id


@pytest.mark.parametrize(
    ("kind", "site", "supervision_s", "expected_site", "expected_s"),
    [
        ("intrusion_alarm", None, None, "business", 3600),
        ("fire_alarm", None, None, "business", 3600),
        ("medical_button", None, None, "household", 3600),
        ("panic_button", "business", None, "business", 3600),
        ("intrusion_alarm", "household", 600, "household", 600),
    ],
)
async def test_site_and_supervision_defaults(
    session_factory: SessionFactory,
    kind: str,
    site: str | None,
    supervision_s: int | None,
    expected_site: str,
    expected_s: int,
) -> None:
    async with unit_of_work(session_factory) as session:
        device, key = await add_device(
            session,
            "70b3d57ed0001234",
            kind=kind,
            lat=41.3,
            lon=69.2,
            key=bytes.fromhex(KEY_HEX),
            site=site,
            supervision_interval_s=supervision_s,
        )
    assert key == bytes.fromhex(KEY_HEX)
    assert (device.site, device.supervision_interval_s) == (expected_site, expected_s)
    assert device.mahalla_id is None


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"eui": "70b3d57ed000123"}, "not 16 hex"),
        ({"eui": "70b3d57ed000123g"}, "not 16 hex"),
        ({"kind": "doorbell"}, "unknown device kind"),
        ({"site": "moon"}, "unknown site"),
        ({"lat": 91.0}, "lat"),
        ({"lon": -180.5}, "lon"),
        ({"lat": math.nan}, "lat"),
        ({"key": b"short"}, "16 bytes"),
        ({"supervision_interval_s": 5}, "supervision"),
        ({"name": "n" * 201}, "name"),
    ],
)
async def test_add_device_rejects_bad_input(
    session_factory: SessionFactory, overrides: dict[str, object], message: str
) -> None:
    arguments: dict[str, object] = {
        "eui": "70b3d57ed0001234",
        "kind": "panic_button",
        "lat": 41.3,
        "lon": 69.2,
        **overrides,
    }
    eui = str(arguments.pop("eui"))
    async with unit_of_work(session_factory) as session:
        with pytest.raises(InvalidInput, match=message):
            await add_device(session, eui, **arguments)  # type: ignore[arg-type]
    assert await _count(session_factory, Device) == 0


async def test_duplicate_device_and_unknown_mahalla(session_factory: SessionFactory) -> None:
    async with unit_of_work(session_factory) as session:
        await add_device(session, "70b3d57ed0001234", kind="panic_button", lat=41.3, lon=69.2)
    async with unit_of_work(session_factory) as session:
        with pytest.raises(Conflict, match="70b3d57ed0001234 already exists"):
            await add_device(
                session, "70B3D57ED0001234", kind="intrusion_alarm", lat=41.3, lon=69.2
            )
        with pytest.raises(NotFound, match="Atlantis"):
            await add_device(
                session,
                "70b3d57ed0009999",
                kind="panic_button",
                lat=41.3,
                lon=69.2,
                mahalla_name="Atlantis",
            )


def test_parse_key_hex() -> None:
    assert parse_key_hex(KEY_HEX.upper()) == bytes(range(16))
    assert parse_key_hex("00:01:02:03:04:05:06:07:08:09:0a:0b:0c:0d:0e:0f") == bytes(range(16))
    with pytest.raises(InvalidInput, match="32 hex characters"):
        parse_key_hex("00ff")
    with pytest.raises(InvalidInput) as raised:
        parse_key_hex("zz" + KEY_HEX[2:])
    assert KEY_HEX[2:] not in raised.value.detail  # a key is never echoed back


# --- import_devices ---------------------------------------------------------------------------

GOOD_CSV = f"""\
eui,kind,lat,lon,key,mahalla,site,name,address,supervision_interval_s
70b3d57ed0000001,panic_button,41.3262,69.2362,,Chorsu,,"Bazaar, north gate",Sagbon St 1,
70b3d57ed0000002,intrusion_alarm,41.3270,69.2371,{KEY_HEX},Chorsu,household,Flat 12,,1800

70B3D57ED0000003,fire_alarm,41.3000,69.2800,,,,,,
"""


async def test_import_good_file(session_factory: SessionFactory) -> None:
    await _mahalla(session_factory)
    async with unit_of_work(session_factory) as session:
        result = await import_devices(session, GOOD_CSV)
    assert result.count == 3
    assert [eui for eui, _ in result.generated_keys] == ["70b3d57ed0000001", "70b3d57ed0000003"]
    async with unit_of_work(session_factory) as session:
        devices = {
            device.eui: device for device in (await session.execute(select(Device))).scalars()
        }
    assert set(devices) == {"70b3d57ed0000001", "70b3d57ed0000002", "70b3d57ed0000003"}
    for eui, key in result.generated_keys:
        assert devices[eui].key == key and len(key) == 16
    second = devices["70b3d57ed0000002"]
    assert second.key == bytes.fromhex(KEY_HEX)
    assert (second.site, second.supervision_interval_s, second.name) == (
        "household",
        1800,
        "Flat 12",
    )
    first = devices["70b3d57ed0000001"]
    assert (first.name, first.address, first.site) == (
        "Bazaar, north gate",
        "Sagbon St 1",
        "public",
    )
    assert devices["70b3d57ed0000003"].mahalla_id is None


async def test_import_reads_a_file_with_only_the_required_columns(
    session_factory: SessionFactory, tmp_path: Path
) -> None:
    path = tmp_path / "devices.csv"
    # A byte order mark and CRLF line ends, as spreadsheets write them.
    path.write_bytes(
        "\ufeffLon,Lat,EUI,Kind\r\n69.28,41.31,70b3d57ed0000010,panic_button\r\n".encode()
    )
    async with unit_of_work(session_factory) as session:
        result = await import_devices(session, path)
    assert result.count == 1 and len(result.generated_keys) == 1
    async with unit_of_work(session_factory) as session:
        device = await get_device_by_eui(session, "70b3d57ed0000010")
    assert (device.lat, device.lon) == (41.31, 69.28)


async def test_import_header_only_imports_nothing(session_factory: SessionFactory) -> None:
    async with unit_of_work(session_factory) as session:
        result = await import_devices(session, "eui,kind,lat,lon\n")
    assert (result.count, result.generated_keys) == (0, ())


async def test_bad_rows_are_all_named_and_nothing_is_imported(
    session_factory: SessionFactory,
) -> None:
    await _mahalla(session_factory)
    async with unit_of_work(session_factory) as session:
        await add_device(session, "70b3d57ed00000aa", kind="panic_button", lat=41.3, lon=69.2)
    text = (
        "eui,kind,lat,lon,mahalla,key,name\n"  # line 1
        "70b3d57ed0000001,panic_button,41.3,69.2,Chorsu,,ok\n"  # line 2, row 1: fine
        "70b3d57ed0000002,doorbell,41.3,69.2,,,\n"  # line 3, row 2: kind
        '70b3d57ed0000003,panic_button,41.3,69.2,,,"two\nlines"\n'  # lines 4-5, row 3: fine
        "70b3d57ed0000004,panic_button,north,69.2,,,\n"  # line 6, row 4: lat
        "70b3d57ed0000001,panic_button,41.3,69.2,,,\n"  # line 7, row 5: repeats row 1
        "70b3d57ed00000aa,panic_button,41.3,69.2,,,\n"  # line 8, row 6: registered
        "70b3d57ed0000005,panic_button,41.3,69.2,Atlantis,,\n"  # line 9, row 7: mahalla
        "70b3d57ed0000006,panic_button,41.3,69.2,,abcd,\n"  # line 10, row 8: key
        "70b3d57ed0000007,panic_button,41.3\n"  # line 11, row 9: fields
        ",panic_button,41.3,69.2,,,\n"  # line 12, row 10: empty eui
    )
    async with unit_of_work(session_factory) as session:
        with pytest.raises(InvalidInput) as raised:
            await import_devices(session, text, source_name="devices.csv")
    message = raised.value.detail
    assert message.startswith("devices.csv: 8 bad rows, nothing imported")
    expected = [
        "line 3 (row 2): unknown device kind 'doorbell'",
        "line 6 (row 4): lat 'north' is not a number",
        "line 7 (row 5): EUI 70b3d57ed0000001 repeats line 2 (row 1)",
        "line 8 (row 6): a device with EUI 70b3d57ed00000aa already exists",
        "line 9 (row 7): no mahalla named 'Atlantis'",
        "line 10 (row 8): key must be 32 hex characters",
        "line 11 (row 9): has 3 fields, the header has 7",
        "line 12 (row 10): eui is empty",
    ]
    lines = message.splitlines()[1:]
    assert len(lines) == len(expected)
    for line, start in zip(lines, expected, strict=True):
        assert line.strip().startswith(start), line
    assert await _count(session_factory, Device) == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("eui,kind,lat\n", "required column"),
        ("eui,kind,lat,lon,colour\n", "unknown column"),
        ("eui,kind,lat,lon,lat\n", "more than once"),
    ],
)
async def test_bad_header_fails_the_file(
    session_factory: SessionFactory, text: str, message: str
) -> None:
    async with unit_of_work(session_factory) as session:
        with pytest.raises(InvalidInput, match=message):
            await import_devices(session, text)


async def test_unreadable_file(session_factory: SessionFactory, tmp_path: Path) -> None:
    binary = tmp_path / "devices.xlsx"
    binary.write_bytes(b"PK\x03\x04\xff\xfe\x00")
    async with unit_of_work(session_factory) as session:
        with pytest.raises(InvalidInput, match="cannot read"):
            await import_devices(session, tmp_path / "missing.csv")
        with pytest.raises(InvalidInput, match="not a UTF-8"):
            await import_devices(session, binary)


# --- mahallas and posts -----------------------------------------------------------------------


async def test_add_mahalla(session_factory: SessionFactory) -> None:
    async with unit_of_work(session_factory) as session:
        mahalla = await add_mahalla(
            session,
            " Chorsu ",
            risk="RED",
            district="Shayxontohur",
            region="Tashkent",
            lat=41.3262,
            lon=69.2362,
            households=2150,
            businesses=640,
        )
    assert (mahalla.name, mahalla.risk, mahalla.households) == ("Chorsu", "red", 2150)
    async with unit_of_work(session_factory) as session:
        with pytest.raises(Conflict):
            await add_mahalla(session, "Chorsu", risk="green")
        with pytest.raises(InvalidInput, match="unknown risk"):
            await add_mahalla(session, "Xadra", risk="orange")
        with pytest.raises(InvalidInput, match="both lat and lon"):
            await add_mahalla(session, "Xadra", risk="green", lat=41.3)
        with pytest.raises(InvalidInput, match="negative"):
            await add_mahalla(session, "Xadra", risk="green", households=-1)
        with pytest.raises(NotFound, match="mahalla add"):
            await get_mahalla_by_name(session, "Xadra")


async def test_add_post(session_factory: SessionFactory) -> None:
    await _mahalla(session_factory)
    async with unit_of_work(session_factory) as session:
        located = await add_post(session, "P-101", lat=41.32, lon=69.24, home_mahalla_name="Chorsu")
        bare = await add_post(session, "P-102")
    assert located.status == bare.status == "off_duty"
    assert located.location_at is not None and located.home_mahalla_id is not None
    assert (bare.lat, bare.location_at, bare.home_mahalla_id) == (None, None, None)
    async with unit_of_work(session_factory) as session:
        assert (await get_post_by_callsign(session, "P-101")).id == located.id
        with pytest.raises(Conflict):
            await add_post(session, "P-101")
        with pytest.raises(NotFound):
            await add_post(session, "P-103", home_mahalla_name="Atlantis")
        with pytest.raises(InvalidInput):
            await add_post(session, "P 104")
        with pytest.raises(InvalidInput):
            await add_post(session, "P-105", lon=69.2)


# --- demo -------------------------------------------------------------------------------------


def _distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    a = (
        math.sin((phi2 - phi1) / 2) ** 2
        + math.cos(phi1) * math.cos(phi2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    )
    return 2 * 6371.0 * math.asin(math.sqrt(a))


async def test_seed_demo_is_complete_and_idempotent(session_factory: SessionFactory) -> None:
    async with unit_of_work(session_factory) as session:
        first = await demo.seed_demo(session)
    async with unit_of_work(session_factory) as session:
        again = await demo.seed_demo(session)
    assert first.created and not again.created
    assert first.logins == again.logins
    assert {login.role for login in first.logins} == {"admin", "dispatcher", "observer", "post"}

    assert await _count(session_factory, Mahalla) == 3
    assert await _count(session_factory, Device) == len(demo.DEVICES) + len(demo.PROGRAMME_ALARMS)
    assert await _count(session_factory, Post) == 3
    assert await _count(session_factory, User) == len(first.logins) == 6

    async with unit_of_work(session_factory) as session:
        mahallas = list((await session.execute(select(Mahalla))).scalars())
        devices = list((await session.execute(select(Device))).scalars())
        posts = list((await session.execute(select(Post))).scalars())
        for login in first.logins:
            user = await authenticate(session, login.username, login.password)
            assert user is not None and user.role == login.role
        observer = await authenticate(session, "observer", "observer-demo")
        red = next(m for m in mahallas if m.risk == "red")
        assert observer is not None and observer.mahalla_id == red.id

    assert sorted(m.risk for m in mahallas) == ["green", "red", "yellow"]
    for mahalla in mahallas:
        assert mahalla.lat is not None and mahalla.lon is not None
        assert _distance_km(mahalla.lat, mahalla.lon, 41.31, 69.28) < 6
        assert mahalla.households > 0 and mahalla.businesses > 0
        showcase = {d.eui for d in demo.DEVICES}
        own = [d for d in devices if d.mahalla_id == mahalla.id and d.eui in showcase]
        assert sorted(d.kind for d in own) == ["intrusion_alarm"] * 2 + ["panic_button"] * 3
    for device in devices:
        assert device.key == demo.demo_key(device.eui)
    # Off duty until a crew signs in on its tablet: a demo post is never falsely available.
    assert {p.status for p in posts} == {"off_duty"}
    assert all(p.location_at is not None for p in posts)


def test_demo_key_is_the_documented_derivation() -> None:
    eui = "70b3d57ed0010001"
    expected = hashlib.sha256(b"alertnet-demo-key:" + eui.encode()).digest()[:16]
    assert demo.demo_key(eui) == expected
    assert len({demo.demo_key(device.eui) for device in demo.DEVICES}) == len(demo.DEVICES)

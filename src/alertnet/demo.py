"""A small demo city for `alertnet serve --demo`: three Tashkent mahallas (red, yellow, green),
their buttons and alarms, three posts (off duty until a crew goes on duty on its tablet) and one
login per role. DEMO ONLY. The mahalla programme (DESIGN §12) is at a real start: Bodomzor has
reached its coverage targets, Chorsu and Mirobod are far below (``PROGRAMME_ALARMS``).

Demo device keys are not secret: ``demo_key(eui)`` is the first 16 bytes of
``SHA-256(b"alertnet-demo-key:" + eui)`` (the EUI as 16 lowercase hex ASCII characters), so the
firmware simulator can derive them; the demo passwords are printed and documented. So demo data
stays demo (DESIGN §14):

* every row the demo creates is marked ``demo``;
* ``seed_demo`` seeds only a database that holds no users, devices, posts or mahallas other
  than the demo's own (``DemoRefused`` otherwise), and creates only what of the demo is missing,
  so ``make run`` twice is fine;
* ``apply_demo_mode``, run by every ``alertnet serve``, disables the demo devices and accounts
  (revoking the accounts' tokens) when the server runs without ``--demo``, and enables them
  again when it runs with it. The ingest pipeline already refuses a disabled device, and token
  checks an inactive user; the login also refuses a demo account unless ``Settings.demo``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from alertnet.auth.tokens import revoke_user_tokens
from alertnet.auth.users import create_user
from alertnet.devices.service import add_device
from alertnet.errors import Conflict
from alertnet.mahallas import add_mahalla
from alertnet.models import (
    Device,
    DeviceKind,
    DeviceStatus,
    DeviceTestMonth,
    Mahalla,
    Post,
    Risk,
    Role,
    Site,
    User,
    utcnow,
)
from alertnet.posts.service import add_post
from alertnet.premises import Premises

DEMO_KEY_PREFIX = b"alertnet-demo-key:"


def demo_key(eui: str) -> bytes:
    """The published, deterministic key of a demo device. DEMO ONLY."""
    return hashlib.sha256(DEMO_KEY_PREFIX + eui.encode("ascii")).digest()[:16]


@dataclass(frozen=True, slots=True)
class DemoMahalla:
    name: str
    district: str
    risk: Risk
    lat: float
    lon: float
    households: int
    businesses: int


@dataclass(frozen=True, slots=True)
class DemoDevice:
    eui: str
    kind: DeviceKind
    site: Site
    mahalla: str
    name: str
    address: str
    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class DemoPost:
    callsign: str
    home_mahalla: str
    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class DemoLogin:
    username: str
    password: str
    role: Role
    bound_to: str | None = None  # the post callsign or the mahalla name


@dataclass(frozen=True, slots=True)
class DemoLogins:
    logins: tuple[DemoLogin, ...]
    created: bool  # False when the whole demo was already in the database


@dataclass(frozen=True, slots=True)
class DemoMode:
    """What ``apply_demo_mode`` changed: demo devices and accounts enabled or disabled."""

    enabled: bool
    devices: int
    users: int
    revoked_tokens: int


class DemoRefused(Conflict):
    """``--demo`` on a database that holds data of its own (409)."""


REGION = "Tashkent"

MAHALLAS = (
    DemoMahalla("Chorsu", "Shayxontohur", Risk.RED, 41.3262, 69.2362, 2150, 640),
    DemoMahalla("Mirobod", "Mirobod", Risk.YELLOW, 41.2996, 69.2826, 1870, 310),
    DemoMahalla("Bodomzor", "Yunusobod", Risk.GREEN, 41.3371, 69.2848, 160, 18),
)

# EUI 70b3d57ed0MMNNNN: MM the mahalla (1-3), NNNN the device; clear of the DESIGN test vector.
DEVICES = (
    DemoDevice("70b3d57ed0010001", DeviceKind.PANIC_BUTTON, Site.PUBLIC, "Chorsu",
               "Chorsu Bazaar, dome north gate", "Chorsu Bazaar, Sagbon St", 41.3272, 69.2352),
    DemoDevice("70b3d57ed0010002", DeviceKind.PANIC_BUTTON, Site.PUBLIC, "Chorsu",
               "Chorsu metro, exit 2", "Navoi Ave 2", 41.3248, 69.2378),
    DemoDevice("70b3d57ed0010003", DeviceKind.PANIC_BUTTON, Site.PUBLIC, "Chorsu",
               "Kukeldash madrasa square", "Kukeldash Sq", 41.3257, 69.2331),
    DemoDevice("70b3d57ed0010004", DeviceKind.INTRUSION_ALARM, Site.BUSINESS, "Chorsu",
               "Gold jewellery shop, row 4", "Chorsu Bazaar, row 4, shop 17", 41.3266, 69.2369),
    DemoDevice("70b3d57ed0010005", DeviceKind.INTRUSION_ALARM, Site.HOUSEHOLD, "Chorsu",
               "Apartment 12", "Zarqaynar St 15, apt 12", 41.3285, 69.2391),
    DemoDevice("70b3d57ed0020001", DeviceKind.PANIC_BUTTON, Site.PUBLIC, "Mirobod",
               "Mirobod bazaar, main gate", "Mirobod St 41", 41.3007, 69.2841),
    DemoDevice("70b3d57ed0020002", DeviceKind.PANIC_BUTTON, Site.PUBLIC, "Mirobod",
               "Railway station forecourt", "Turkiston St 7", 41.2925, 69.2876),
    DemoDevice("70b3d57ed0020003", DeviceKind.PANIC_BUTTON, Site.PUBLIC, "Mirobod",
               "School No. 64, entrance", "Nukus St 30", 41.2979, 69.2797),
    DemoDevice("70b3d57ed0020004", DeviceKind.INTRUSION_ALARM, Site.BUSINESS, "Mirobod",
               "Pharmacy", "Mirobod St 24", 41.3012, 69.2818),
    DemoDevice("70b3d57ed0020005", DeviceKind.INTRUSION_ALARM, Site.HOUSEHOLD, "Mirobod",
               "House", "Nukus St 71", 41.2968, 69.2762),
    DemoDevice("70b3d57ed0030001", DeviceKind.PANIC_BUTTON, Site.PUBLIC, "Bodomzor",
               "Bodomzor metro, exit 1", "Amir Temur Ave 91", 41.3375, 69.2853),
    DemoDevice("70b3d57ed0030002", DeviceKind.PANIC_BUTTON, Site.PUBLIC, "Bodomzor",
               "Children's park, playground", "Amir Temur Ave 99", 41.3392, 69.2871),
    DemoDevice("70b3d57ed0030003", DeviceKind.PANIC_BUTTON, Site.PUBLIC, "Bodomzor",
               "Bus stop Bodomzor", "Bodomzor Rd 2", 41.3358, 69.2826),
    DemoDevice("70b3d57ed0030004", DeviceKind.INTRUSION_ALARM, Site.BUSINESS, "Bodomzor",
               "Grocery store", "Bodomzor Rd 9", 41.3364, 69.2809),
    DemoDevice("70b3d57ed0030005", DeviceKind.INTRUSION_ALARM, Site.HOUSEHOLD, "Bodomzor",
               "Apartment 40", "Amir Temur Ave 107, apt 40", 41.3401, 69.2840),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class DemoProgramme:
    """A mahalla's protected homes and shops, and the alarms registered that never reported."""

    mahalla: str
    code: str  # the EUI's mahalla byte
    prefix: str  # of the premises refs
    streets: tuple[str, ...]
    households: int
    businesses: int
    never_heard: int


@dataclass(frozen=True, slots=True)
class DemoAlarm:
    eui: str
    kind: DeviceKind
    site: Site
    mahalla: str
    ref: str
    street: str
    lat: float
    lon: float
    heard: bool  # reports its daily test (refreshed by every `serve --demo`)
    missed_a_test: bool  # no test two months ago: not an exemplary house


# Alarm panels reporting a daily test, as DC-09 panels do (DESIGN §3: 90,000 s supervision).
PROGRAMME_SUPERVISION_S = 90_000
PROGRAMME_REGISTERED_DAYS_AGO = 120
PROGRAMME = (
    DemoProgramme("Chorsu", "01", "CHR", ("Zarqaynar ko\u02bbchasi", "Sagbon ko\u02bbchasi",
                  "Ko\u02bbkcha darvoza ko\u02bbchasi"), 14, 21, 2),
    DemoProgramme("Mirobod", "02", "MRB", ("Nukus ko\u02bbchasi", "Mirobod ko\u02bbchasi",
                  "Shahrisabz ko\u02bbchasi"), 29, 12, 2),
    DemoProgramme("Bodomzor", "03", "BDZ", ("Bodomzor yo\u02bbli", "Minor ko\u02bbchasi",
                  "Yunusobod ko\u02bbchasi"), 49, 11, 2),
)  # fmt: skip


def _programme_alarms() -> tuple[DemoAlarm, ...]:
    """Every site an intrusion alarm (every ninth a fire alarm too, same premises ref), on a
    ~100 m grid around its mahalla's centre; EUIs 70b3d57ed0MM1NNN."""
    alarms: list[DemoAlarm] = []
    for plan in PROGRAMME:
        centre = next(mahalla for mahalla in MAHALLAS if mahalla.name == plan.mahalla)
        sites = [(Site.HOUSEHOLD, True)] * plan.households
        sites += [(Site.BUSINESS, True)] * plan.businesses
        sites += [(Site.HOUSEHOLD, False)] * plan.never_heard
        serial = 0
        for index, (site, heard) in enumerate(sites):
            kinds = [DeviceKind.INTRUSION_ALARM]
            if index % 9 == 4:
                kinds.append(DeviceKind.FIRE_ALARM)
            for kind in kinds:
                serial += 1
                alarms.append(
                    DemoAlarm(
                        eui=f"70b3d57ed0{plan.code}{0x1000 + serial:04x}",
                        kind=kind,
                        site=site,
                        mahalla=plan.mahalla,
                        ref=f"{plan.prefix}-{index + 1:03d}",
                        street=plan.streets[index % len(plan.streets)],
                        lat=round(centre.lat + ((index * 7) % 11 - 5) * 0.0009, 6),
                        lon=round(centre.lon + ((index * 5) % 13 - 6) * 0.0011, 6),
                        heard=heard,
                        missed_a_test=index % 7 == 3,
                    )
                )
    return tuple(alarms)


PROGRAMME_ALARMS = _programme_alarms()

POSTS = (
    DemoPost("P-101", "Chorsu", 41.3241, 69.2395),
    DemoPost("P-102", "Mirobod", 41.3019, 69.2793),
    DemoPost("P-103", "Bodomzor", 41.3347, 69.2879),
)

LOGINS = (
    DemoLogin("admin", "admin-demo", Role.ADMIN),
    DemoLogin("dispatcher", "dispatch-demo", Role.DISPATCHER),
    DemoLogin("observer", "observer-demo", Role.OBSERVER, "Chorsu"),
    DemoLogin("post101", "post101-demo", Role.POST, "P-101"),
    DemoLogin("post102", "post102-demo", Role.POST, "P-102"),
    DemoLogin("post103", "post103-demo", Role.POST, "P-103"),
)


# The tables the demo fills, with the column naming each row.
DEMO_TABLES: tuple[tuple[type[Any], str], ...] = (
    (User, "users"),
    (Device, "devices"),
    (Post, "posts"),
    (Mahalla, "mahallas"),
)


async def foreign_rows(session: AsyncSession) -> dict[str, int]:
    """How many users, devices, posts and mahallas are not the demo's own (only those > 0)."""
    counts: dict[str, int] = {}
    for model, label in DEMO_TABLES:
        count = await session.scalar(
            select(func.count()).select_from(model).where(model.demo.is_(False))
        )
        if count:
            counts[label] = count
    return counts


async def _existing(session: AsyncSession, column: Any) -> set[str]:
    return set((await session.scalars(select(column))).all())


async def seed_demo(session: AsyncSession) -> DemoLogins:
    """Add whatever of the demo city the database lacks, marked ``demo``; either way, the
    logins. Refuses (``DemoRefused``) a database holding anything but the demo.

    Runs in the caller's transaction. New posts start off duty, like any registered post: a
    post is available only once its crew goes on duty on the tablet, which then reports where
    it really is (a demo post shown available at a made-up spot would take offers nobody sees).
    """
    foreign = await foreign_rows(session)
    if foreign:
        held = ", ".join(f"{count} {label}" for label, count in foreign.items())
        raise DemoRefused(
            f"--demo seeds only an empty database, and this one holds {held} that are not "
            "demo data; point ALERTNET_DATABASE_URL at a new database for the demo, or serve "
            "without --demo"
        )
    created = 0
    mahallas = await _existing(session, Mahalla.name)
    for mahalla in MAHALLAS:
        if mahalla.name in mahallas:
            continue
        new_mahalla = await add_mahalla(
            session,
            mahalla.name,
            risk=mahalla.risk.value,
            district=mahalla.district,
            region=REGION,
            lat=mahalla.lat,
            lon=mahalla.lon,
            households=mahalla.households,
            businesses=mahalla.businesses,
        )
        new_mahalla.demo = True
        created += 1
    devices = await _existing(session, Device.eui)
    for device in DEVICES:
        if device.eui in devices:
            continue
        new_device, _key = await add_device(
            session,
            device.eui,
            kind=device.kind.value,
            lat=device.lat,
            lon=device.lon,
            key=demo_key(device.eui),
            mahalla_name=device.mahalla,
            site=device.site.value,
            name=device.name,
            address=device.address,
        )
        new_device.demo = True
        created += 1
    created += await _seed_programme(session, devices)
    posts = await _existing(session, Post.callsign)
    for demo_post in POSTS:
        if demo_post.callsign in posts:
            continue
        post = await add_post(
            session,
            demo_post.callsign,
            lat=demo_post.lat,
            lon=demo_post.lon,
            home_mahalla_name=demo_post.home_mahalla,
        )
        post.demo = True
        created += 1
    usernames = await _existing(session, User.username)
    for login in LOGINS:
        if login.username in usernames:
            continue
        await create_user(
            session,
            login.username,
            login.role.value,
            password=login.password,
            post_callsign=login.bound_to if login.role is Role.POST else None,
            mahalla_name=login.bound_to if login.role is Role.OBSERVER else None,
            demo=True,
        )
        created += 1
    await session.flush()
    return DemoLogins(LOGINS, created=created > 0)


async def _seed_programme(session: AsyncSession, existing: set[str]) -> int:
    """The programme's alarms the database lacks, registered ``PROGRAMME_REGISTERED_DAYS_AGO``
    days ago with a test in each of the four months before this one (but for those that
    missed one, and those never heard)."""
    now = utcnow()
    months = []
    for back in range(1, 5):
        year, month = divmod(now.year * 12 + now.month - 1 - back, 12)
        months.append(f"{year}-{month + 1:02d}")
    created = 0
    for alarm in PROGRAMME_ALARMS:
        if alarm.eui in existing:
            continue
        device, _key = await add_device(
            session,
            alarm.eui,
            kind=alarm.kind.value,
            lat=alarm.lat,
            lon=alarm.lon,
            key=demo_key(alarm.eui),
            mahalla_name=alarm.mahalla,
            site=alarm.site.value,
            supervision_interval_s=PROGRAMME_SUPERVISION_S,
            premises=Premises(
                ref=alarm.ref, street=alarm.street, address=f"{alarm.street}, {alarm.ref}"
            ),
        )
        device.demo = True
        device.created_at = now - timedelta(days=PROGRAMME_REGISTERED_DAYS_AGO)
        device.last_seen_at = now if alarm.heard else None
        tested = [m for m in months if alarm.heard and not (alarm.missed_a_test and m == months[1])]
        session.add_all(DeviceTestMonth(device_id=device.id, month=m, first_at=now) for m in tested)
        created += 1
    return created


async def apply_demo_mode(session: AsyncSession, *, enabled: bool) -> DemoMode:
    """Enable the demo devices and accounts (``serve --demo``) or disable them (any other
    ``serve``); disabling an account revokes its tokens, so re-enabling brings none back."""
    if enabled:
        devices = await session.execute(
            update(Device)
            .where(Device.demo.is_(True), Device.status == DeviceStatus.DISABLED.value)
            .values(status=DeviceStatus.ACTIVE.value)
        )
        users = await session.execute(
            update(User).where(User.demo.is_(True), User.active.is_(False)).values(active=True)
        )
        # The programme's alarms have just reported their daily test (they are protecting).
        heard = [alarm.eui for alarm in PROGRAMME_ALARMS if alarm.heard]
        await session.execute(
            update(Device)
            .where(
                Device.demo.is_(True),
                Device.eui.in_(heard),
                Device.status == DeviceStatus.ACTIVE.value,
            )
            .values(last_seen_at=utcnow())
        )
        return DemoMode(True, _rowcount(devices), _rowcount(users), 0)
    devices = await session.execute(
        update(Device)
        .where(Device.demo.is_(True), Device.status != DeviceStatus.DISABLED.value)
        .values(status=DeviceStatus.DISABLED.value)
    )
    demo_users = list(
        (
            await session.scalars(select(User).where(User.demo.is_(True), User.active.is_(True)))
        ).all()
    )
    revoked = 0
    for user in demo_users:
        user.active = False
        revoked += await revoke_user_tokens(session, user.id)
    await session.flush()
    return DemoMode(False, _rowcount(devices), len(demo_users), revoked)


def _rowcount(result: Any) -> int:
    count: int = result.rowcount
    return max(count, 0)

"""A small demo city for `alertnet serve --demo`: three Tashkent mahallas (red, yellow, green),
their buttons and alarms, three available posts and one login per role. DEMO ONLY.

Demo device keys are not secret: ``demo_key(eui)`` is the first 16 bytes of
``SHA-256(b"alertnet-demo-key:" + eui)`` (the EUI as 16 lowercase hex ASCII characters), so the
firmware simulator can derive them. Never use them, or the demo passwords, on a real network.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from alertnet.auth.users import create_user
from alertnet.devices.service import add_device
from alertnet.mahallas import add_mahalla, find_mahalla_by_name
from alertnet.models import DeviceKind, PostStatus, Risk, Role, Site
from alertnet.posts.service import add_post

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
    created: bool  # False when the demo was already in the database


REGION = "Tashkent"

MAHALLAS = (
    DemoMahalla("Chorsu", "Shayxontohur", Risk.RED, 41.3262, 69.2362, 2150, 640),
    DemoMahalla("Mirobod", "Mirobod", Risk.YELLOW, 41.2996, 69.2826, 1870, 310),
    DemoMahalla("Bodomzor", "Yunusobod", Risk.GREEN, 41.3371, 69.2848, 2600, 180),
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


async def seed_demo(session: AsyncSession) -> DemoLogins:
    """Add the demo city unless its first mahalla already exists; either way, the logins.

    Runs in the caller's transaction. The posts start available with a location of now, so
    the first press is dispatched at once.
    """
    if await find_mahalla_by_name(session, MAHALLAS[0].name) is not None:
        return DemoLogins(LOGINS, created=False)
    for mahalla in MAHALLAS:
        await add_mahalla(
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
    for device in DEVICES:
        await add_device(
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
    for demo_post in POSTS:
        post = await add_post(
            session,
            demo_post.callsign,
            lat=demo_post.lat,
            lon=demo_post.lon,
            home_mahalla_name=demo_post.home_mahalla,
        )
        post.status = PostStatus.AVAILABLE.value
    for login in LOGINS:
        await create_user(
            session,
            login.username,
            login.role.value,
            password=login.password,
            post_callsign=login.bound_to if login.role is Role.POST else None,
            mahalla_name=login.bound_to if login.role is Role.OBSERVER else None,
        )
    await session.flush()
    return DemoLogins(LOGINS, created=True)

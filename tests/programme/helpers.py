"""A small programme city for the API and page tests: two mahallas, a home with premises and a
call list, a shop, a public button, one account per role, and the personal strings that must
never reach the mahalla team (DESIGN §10)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.db import unit_of_work
from alertnet.models import DeviceTestMonth, utcnow
from tests.auth.helpers import Account, create_account
from tests.support.factories import create_alert, create_device, create_mahalla, create_post

HOME_EUI: Final = "70b3d57ed0091001"
SHOP_EUI: Final = "70b3d57ed0091002"
BUTTON_EUI: Final = "70b3d57ed0091003"
DEAD_HOME_EUI: Final = "70b3d57ed0091004"
DEAD_BUTTON_EUI: Final = "70b3d57ed0091005"
FOREIGN_EUI: Final = "70b3d57ed0092001"
# Six decimals: an observer must get three.
HOME_AT: Final = (41.326123, 69.236789)
SHOP_AT: Final = (41.326456, 69.237234)
BUTTON_AT: Final = (41.327789, 69.235567)
DEAD_HOME_AT: Final = (41.328321, 69.239654)
STREET: Final = "Zarqaynar ko\u02bbchasi"
OTHER_STREET: Final = "Sagbon ko\u02bbchasi"

# What an observer must never find anywhere in what it is sent (§10).
PERSONAL: Final = (
    "Karimova",
    "Karimov Aziz",
    "123-45-67",
    "Zarqaynar 15",
    "kv. 12",
    "Kalit qo\u02bbshnida",
    "Oila Market",
    "Rustamov",
    "Dilnoza uyi",
    "Oila dokoni",
    "HOME-REF-7",
    "SHOP-REF-2",
    "41.326123",
    "69.236789",
    "41.326456",
    "69.237234",
    "41.328321",
)


@dataclass
class City:
    chorsu: int
    bodomzor: int
    admin: Account
    dispatcher: Account
    observer: Account
    post: Account
    open_alert: int


async def build_city(session_factory: async_sessionmaker[AsyncSession]) -> City:
    now = utcnow()
    async with unit_of_work(session_factory) as session:
        chorsu = await create_mahalla(
            session, "Chorsu", risk="red", lat=41.3262, lon=69.2362, district="Shayxontohur",
            region="Tashkent", households=10, businesses=2,
        )  # fmt: skip
        bodomzor = await create_mahalla(
            session, "Bodomzor", risk="green", lat=41.3371, lon=69.2848, district="Yunusobod",
            region="Tashkent", households=100, businesses=10,
        )  # fmt: skip
        home = await create_device(
            session,
            HOME_EUI,
            kind="intrusion_alarm",
            site="household",
            lat=HOME_AT[0],
            lon=HOME_AT[1],
            mahalla_id=chorsu.id,
            name="Dilnoza uyi",
            address="Zarqaynar 15, kv. 12",
            premises_ref="HOME-REF-7",
            owner="Karimova Dilnoza",
            street=STREET,
            notes="Kalit qo\u02bbshnida",
            contacts=[{"name": "Karimov Aziz", "phone": "+998 90 123-45-67", "relation": "son"}],
            last_seen_at=now,
            created_at=now - timedelta(days=200),
        )
        await create_device(
            session,
            SHOP_EUI,
            kind="fire_alarm",
            site="business",
            lat=SHOP_AT[0],
            lon=SHOP_AT[1],
            mahalla_id=chorsu.id,
            name="Oila dokoni",
            premises_ref="SHOP-REF-2",
            owner="Oila Market MChJ",
            street=STREET,
            contacts=[{"name": "Rustamov Bek", "phone": "+998 97 111-22-33", "relation": ""}],
            last_seen_at=now,
        )
        await create_device(
            session,
            BUTTON_EUI,
            lat=BUTTON_AT[0],
            lon=BUTTON_AT[1],
            mahalla_id=chorsu.id,
            name="Chorsu Bazaar gate",
            street=OTHER_STREET,
            last_seen_at=now,
        )
        # Offline: a home's alarm (the team may count it per street, not know it) and a
        # public button (listed by name).
        await create_device(
            session,
            DEAD_HOME_EUI,
            kind="intrusion_alarm",
            site="household",
            lat=DEAD_HOME_AT[0],
            lon=DEAD_HOME_AT[1],
            mahalla_id=chorsu.id,
            street=STREET,
            status="offline",
            last_seen_at=now - timedelta(days=3),
        )
        await create_device(
            session,
            DEAD_BUTTON_EUI,
            mahalla_id=chorsu.id,
            name="Kukeldash square",
            status="offline",
            last_seen_at=now - timedelta(days=3),
        )
        await create_device(
            session,
            FOREIGN_EUI,
            kind="intrusion_alarm",
            site="household",
            mahalla_id=bodomzor.id,
            name="Bodomzor secret home",
            street="Secret street",
            last_seen_at=now,
        )
        for months_ago in range(1, 8):
            year, month = divmod(now.year * 12 + now.month - 1 - months_ago, 12)
            session.add(
                DeviceTestMonth(device_id=home.id, month=f"{year}-{month + 1:02d}", first_at=now)
            )
        alert = await create_alert(session, home, category="intrusion", state="new")
        await create_post(session, callsign="P-9", status="off_duty")
        return City(
            chorsu=chorsu.id,
            bodomzor=bodomzor.id,
            admin=await create_account(session, "root", "admin"),
            dispatcher=await create_account(session, "disp", "dispatcher"),
            observer=await create_account(session, "team", "observer", mahalla_name="Chorsu"),
            post=await create_account(session, "crew9", "post", post_callsign="P-9"),
            open_alert=alert.id,
        )


def leaked(payload: Any) -> list[str]:
    """The personal strings found anywhere in ``payload`` (JSON-encoded as sent)."""
    text = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    return [needle for needle in PERSONAL if needle in text]

"""A small city for the premises tests: a home with a call list, a public button, two posts
and one account per role, and the personal strings that must never reach an observer."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.db import unit_of_work
from alertnet.ingest.pipeline import Pipeline, RawUplink
from alertnet.models import Transport
from alertnet.protocol import EventCode, Uplink
from tests.auth.helpers import Account, create_account
from tests.support.factories import create_device, create_mahalla, create_post

HOME_EUI: Final = "70b3d57ed0001111"
SHOP_EUI: Final = "70b3d57ed0002222"
BUTTON_EUI: Final = "70b3d57ed0003333"
HOME_KEY: Final = bytes(range(16))
SHOP_KEY: Final = bytes(range(16, 32))
BUTTON_KEY: Final = bytes(range(32, 48))
# Six decimals: an observer must get three.
HOME_AT: Final = (41.311123, 69.279789)
SHOP_AT: Final = (41.312456, 69.281234)
BUTTON_AT: Final = (41.313789, 69.282567)
# ~550 m north of the home: P-1 is offered its alerts first.
NEAR: Final = (41.3161, 69.2797)
FAR: Final = (41.3261, 69.2797)

PREMISES: Final[dict[str, Any]] = {
    "ref": "CHORSU-17",
    "owner": "Karimova Dilnoza",
    "address": "Chorsu mahallasi, Navoiy ko'chasi 17, 3-xonadon",
    "street": "Navoiy ko'chasi",
    "notes": "Kirish hovlidan; kalit qo'shnida (4-xonadon)",
    "contacts": [
        {"name": "Karimova Dilnoza", "phone": "+998 90 123-45-67", "relation": "owner"},
        {"name": "Karimov Aziz", "phone": "+998 93 765-43-21", "relation": "son"},
    ],
}
SHOP_PREMISES: Final[dict[str, Any]] = {
    "ref": "CHORSU-SHOP-2",
    "owner": "Oila Market MChJ",
    "address": "Navoiy ko'chasi 21",
    "street": "Navoiy ko'chasi",
    "notes": "Orqa eshik",
    "contacts": [{"name": "Rustamov Bek", "phone": "+998 97 111-22-33", "relation": "manager"}],
}
# What an observer must never find anywhere in what it is sent (§10).
PERSONAL: Final = (
    "Karimova",
    "Karimov Aziz",
    "123-45-67",
    "765-43-21",
    "3-xonadon",
    "ko'chasi 17",
    "ko'chasi 21",
    "Kirish hovlidan",
    "Oila Market",
    "Orqa eshik",
    "111-22-33",
    "Rustamov",
    "Dilnoza's flat",
    "Oila shop",
    "41.311123",
    "69.279789",
    "41.312456",
)


@dataclass
class City:
    mahalla_id: int
    other_mahalla_id: int
    admin: Account
    dispatcher: Account
    observer: Account
    p1: Account
    p2: Account
    home_id: int
    shop_id: int
    button_id: int


def _premises_columns(premises: dict[str, Any]) -> dict[str, Any]:
    return {
        "premises_ref": premises["ref"],
        "owner": premises["owner"],
        "address": premises["address"],
        "street": premises["street"],
        "notes": premises["notes"],
        "contacts": premises["contacts"],
    }


async def build_city(
    session_factory: async_sessionmaker[AsyncSession],
    *,
    home_silent: bool = False,
    posts_on_duty: bool = True,
) -> City:
    """The city; both posts available with a fresh fix unless ``posts_on_duty`` is False."""
    status = "available" if posts_on_duty else "off_duty"
    async with unit_of_work(session_factory) as session:
        chorsu = await create_mahalla(session, name="Chorsu", risk="red")
        other = await create_mahalla(session, name="Bodomzor", risk="green")
        home = await create_device(
            session,
            eui=HOME_EUI,
            key=HOME_KEY,
            kind="intrusion_alarm",
            site="household",
            name="Dilnoza's flat",
            lat=HOME_AT[0],
            lon=HOME_AT[1],
            mahalla_id=chorsu.id,
            silent=home_silent,
            **_premises_columns(PREMISES),
        )
        shop = await create_device(
            session,
            eui=SHOP_EUI,
            key=SHOP_KEY,
            kind="intrusion_alarm",
            site="business",
            name="Oila shop",
            lat=SHOP_AT[0],
            lon=SHOP_AT[1],
            mahalla_id=chorsu.id,
            **_premises_columns(SHOP_PREMISES),
        )
        button = await create_device(
            session,
            eui=BUTTON_EUI,
            key=BUTTON_KEY,
            kind="panic_button",
            site="public",
            name="Chorsu bazaar gate",
            lat=BUTTON_AT[0],
            lon=BUTTON_AT[1],
            mahalla_id=chorsu.id,
            street="Bozor ko'chasi",
        )
        await create_post(session, callsign="P-1", lat=NEAR[0], lon=NEAR[1], status=status)
        await create_post(session, callsign="P-2", lat=FAR[0], lon=FAR[1], status=status)
        return City(
            mahalla_id=chorsu.id,
            other_mahalla_id=other.id,
            admin=await create_account(session, "admin1", "admin"),
            dispatcher=await create_account(session, "disp1", "dispatcher"),
            observer=await create_account(session, "obs1", "observer", mahalla_name="Chorsu"),
            p1=await create_account(session, "crew1", "post", post_callsign="P-1"),
            p2=await create_account(session, "crew2", "post", post_callsign="P-2"),
            home_id=home.id,
            shop_id=shop.id,
            button_id=button.id,
        )


async def press(
    pipeline: Pipeline,
    eui: str,
    key: bytes,
    counter: int,
    event: EventCode = EventCode.INTRUSION,
) -> None:
    """One press over HTTP (answered in its response: no downlink routing involved)."""
    frame = Uplink.build(key, eui, counter, event).to_bytes()
    outcome = await pipeline.submit(RawUplink(frame, Transport.HTTP))
    assert outcome.accepted, outcome


def leaked(payload: Any) -> list[str]:
    """The personal strings found anywhere in ``payload`` (JSON-encoded as sent)."""
    text = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    return [needle for needle in PERSONAL if needle in text]

"""Who reads premises (DESIGN §10), through every path: REST lists and records, the tablet's
reads, the device list and the stream, on SQLite and PostgreSQL.

Dispatchers read everything; the post that holds or is offered an alert reads its address,
street, notes and call list (a silent alert: no call list); the mahalla team (observer) reads
the street only, no household or business device name, coordinates to 3 decimals, and
offline homes only as counts per street.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.alerts.views import alert_views
from alertnet.db import unit_of_work
from alertnet.models import Device
from alertnet.realtime.feed import FeedMessage
from tests.auth.helpers import Account, Server, bearer, build_app, running_server
from tests.realtime.helpers import StreamClient, stream, write_feed
from tests.support.asgi import AppClient
from tests.support.factories import create_alert
from tests.support.polling import eventually

from .helpers import (
    BUTTON_AT,
    BUTTON_EUI,
    HOME_AT,
    HOME_EUI,
    HOME_KEY,
    PREMISES,
    SHOP_EUI,
    City,
    build_city,
    leaked,
    press,
)

SessionFactory = async_sessionmaker[AsyncSession]
POST_FIELDS = {"address", "street", "notes", "contacts"}


async def _get(api: AppClient, path: str, who: Account) -> Any:
    answer = await api.get(path, headers=bearer(who))
    assert answer.status_code == 200, (path, who.role, answer.text)
    return answer.json()


async def _offer_of(api: AppClient, crew: Account) -> dict[str, Any]:
    me = await eventually(
        lambda: _get(api, "/api/v1/posts/me", crew),
        lambda me: me["offer"] is not None,
        awaiting=f"an offer to {crew.username}",
    )
    offer: dict[str, Any] = me["offer"]
    return offer


async def test_each_role_reads_its_cut_of_an_alert_over_rest(
    api: AppClient, session_factory: SessionFactory
) -> None:
    city = await build_city(session_factory)
    await press(api.runtime.pipeline, HOME_EUI, HOME_KEY, 1)
    offer = await _offer_of(api, city.p1)
    alert_id = offer["alert_id"]
    path = f"/api/v1/alerts/{alert_id}"

    full = await _get(api, path, city.dispatcher)
    assert full["premises"] == PREMISES and full["silent"] is False
    assert full["device_name"] == "Dilnoza's flat" and (full["lat"], full["lon"]) == HOME_AT

    # The offered post: address, street, notes and the call list, in order; no owner, no ref.
    for seen in (offer["alert"], await _get(api, path, city.p1)):
        assert set(seen["premises"]) == POST_FIELDS
        assert seen["premises"]["contacts"] == PREMISES["contacts"]
        assert seen["address"] == PREMISES["address"]
    # Another post never offered it reads nothing of it.
    assert (await api.get(path, headers=bearer(city.p2))).status_code == 403

    # The mahalla team: the street, a nameless device 100 m wide, in lists and records alike.
    listed = await _get(api, "/api/v1/alerts", city.observer)
    record = await _get(api, path, city.observer)
    (in_list,) = [row for row in listed if row["id"] == alert_id]
    for seen in (in_list, record):
        assert seen["premises"] == {"street": PREMISES["street"]}
        assert seen["address"] == "" and seen["device_name"] == ""
        assert (seen["lat"], seen["lon"]) == (round(HOME_AT[0], 3), round(HOME_AT[1], 3))
    assert leaked(listed) == [] and leaked(record) == []
    history = await _get(api, "/api/v1/alerts?state=all", city.observer)
    assert history and leaked(history) == []

    # P-1 declines: it no longer holds nor is offered it, so it reads no premises; P-2 does.
    declined = await api.post(
        f"/api/v1/offers/{offer['id']}/decline", json={"reason": "tyre"}, headers=bearer(city.p1)
    )
    assert declined.status_code == 200 and declined.json()["alert"]["premises"] == {}
    assert (await _get(api, path, city.p1))["premises"] == {}
    second = await _offer_of(api, city.p2)
    assert second["alert"]["premises"]["contacts"] == PREMISES["contacts"]


async def test_a_post_gets_no_call_list_for_a_silent_alert(
    api: AppClient, session_factory: SessionFactory
) -> None:
    city = await build_city(session_factory, home_silent=True)
    await press(api.runtime.pipeline, HOME_EUI, HOME_KEY, 1)
    offer = await _offer_of(api, city.p1)
    assert offer["alert"]["silent"] is True
    assert set(offer["alert"]["premises"]) == POST_FIELDS - {"contacts"}
    accepted = await api.post(f"/api/v1/offers/{offer['id']}/accept", headers=bearer(city.p1))
    assert "contacts" not in accepted.json()["alert"]["premises"]
    held = (await _get(api, "/api/v1/posts/me", city.p1))["alert"]
    assert held["silent"] is True and set(held["premises"]) == POST_FIELDS - {"contacts"}
    # The console keeps the call list (locked in the page until a dispatcher overrides it).
    full = await _get(api, f"/api/v1/alerts/{offer['alert_id']}", city.dispatcher)
    assert full["premises"]["contacts"] == PREMISES["contacts"]


async def test_the_device_list_shows_homes_and_shops_to_observers_as_dots_on_a_street(
    api: AppClient, session_factory: SessionFactory
) -> None:
    city = await build_city(session_factory, posts_on_duty=False)
    async with unit_of_work(session_factory) as session:
        await session.execute(
            update(Device).where(Device.id == city.shop_id).values(status="offline")
        )
        shop = await session.get_one(Device, city.shop_id)
        trouble = await create_alert(session, shop, category="trouble", trouble="offline")
        button = await session.get_one(Device, city.button_id)
        public_trouble = await create_alert(
            session, button, category="trouble", trouble="low_battery"
        )

    dispatcher_rows = {r["eui"]: r for r in await _get(api, "/api/v1/devices", city.dispatcher)}
    assert dispatcher_rows[HOME_EUI]["premises"] == PREMISES
    assert dispatcher_rows[SHOP_EUI]["status"] == "offline"
    assert dispatcher_rows[SHOP_EUI]["troubles"] == ["offline"]

    rows = await _get(api, "/api/v1/devices", city.observer)
    assert leaked(rows) == []
    by_eui = {r["eui"]: r for r in rows}
    home = by_eui[HOME_EUI]
    assert home["name"] == "" and home["address"] == "" and home["silent"] is None
    assert (home["lat"], home["lon"]) == (round(HOME_AT[0], 3), round(HOME_AT[1], 3))
    assert home["premises"] == {"street": PREMISES["street"]}
    # No health for a shop: which one is offline is not the mahalla team's to know…
    assert by_eui[SHOP_EUI]["status"] is None and by_eui[SHOP_EUI]["troubles"] == []
    for query in ("?status=offline", "?trouble=true"):
        picked = await _get(api, f"/api/v1/devices{query}", city.observer)
        assert SHOP_EUI not in {r["eui"] for r in picked}, query
    # …but how many on its street is.
    counts = await _get(api, "/api/v1/devices/offline-by-street", city.observer)
    assert counts == [
        {
            "mahalla_id": city.mahalla_id,
            "mahalla": "Chorsu",
            "street": "Navoiy ko'chasi",
            "offline": 1,
        }
    ]
    # A public button is shown in full.
    button_row = by_eui[BUTTON_EUI]
    assert button_row["name"] == "Chorsu bazaar gate"
    assert (button_row["lat"], button_row["lon"]) == BUTTON_AT
    assert button_row["troubles"] == ["low_battery"]

    # The shop's trouble alert is not an observer's; the public button's is.
    listed = {r["id"] for r in await _get(api, "/api/v1/alerts?state=all", city.observer)}
    assert public_trouble.id in listed and trouble.id not in listed
    refused = await api.get(f"/api/v1/alerts/{trouble.id}", headers=bearer(city.observer))
    assert refused.status_code == 403
    posts = await api.get("/api/v1/devices/offline-by-street", headers=bearer(city.p1))
    assert posts.status_code == 403


# --- the stream ---------------------------------------------------------------------------


@pytest_asyncio.fixture
async def live(db_url: str) -> AsyncIterator[Server]:
    app = build_app(db_url, hub_tuning={"heartbeat_s": 0.3})
    async with running_server(app) as server:
        yield server


async def _rows_until(client: StreamClient, kind: str) -> list[dict[str, Any]]:
    """Every row up to and including the first of type ``kind``."""
    rows: list[dict[str, Any]] = []
    while not rows or rows[-1]["type"] != kind:
        rows.append(await client.receive(timeout_s=10))
    return rows


async def test_the_stream_cuts_every_row_to_its_reader(
    live: Server, session_factory: SessionFactory
) -> None:
    city: City = await build_city(session_factory)
    async with contextlib.AsyncExitStack() as stack:
        clients = {
            who.username: await stack.enter_async_context(stream(live.ws_url, token=who.token))
            for who in (city.dispatcher, city.observer, city.p1, city.p2)
        }
        for client in clients.values():
            await client.ready()
        await press(live.app.state.runtime.pipeline, HOME_EUI, HOME_KEY, 1)

        console = await _rows_until(clients["disp1"], "offer.created")
        assert console[0]["type"] == "alert.opened"
        assert console[0]["data"]["premises"] == PREMISES

        # The observer gets the alert (its mahalla's), cut to the street; no offer rows (below).
        seen = await _rows_until(clients["obs1"], "alert.opened")
        assert leaked(seen) == []
        opened = seen[0]["data"]
        assert opened["premises"] == {"street": PREMISES["street"]}
        assert (opened["lat"], opened["lon"]) == (round(HOME_AT[0], 3), round(HOME_AT[1], 3))

        # The offered post reads the call list in its offer; the other post gets nothing.
        (offer,) = await clients["crew1"].rows_of_type("offer.created", 1)
        alert = offer["data"]["alert"]
        assert set(alert["premises"]) == POST_FIELDS
        assert alert["premises"]["contacts"] == PREMISES["contacts"]
        assert "owner" not in alert["premises"] and alert["device_name"] == "Dilnoza's flat"
        assert await clients["crew2"].rows_before_pings() == []

        # An observer gets no household or business trouble and no such device row; it gets a
        # public device's (the positive signal that the others were skipped, not late).
        async with unit_of_work(session_factory) as session:
            shop = await session.get_one(Device, city.shop_id)
            trouble = await create_alert(session, shop, category="trouble", trouble="offline")
            shop_trouble = (await alert_views(session, [trouble.id]))[trouble.id]
        await write_feed(
            session_factory,
            _feed("alert.opened", shop_trouble, city.mahalla_id, alert_id=trouble.id),
            _feed(
                "device.updated",
                {"eui": SHOP_EUI, "site": "business", "status": "offline"},
                city.mahalla_id,
            ),
            _feed(
                "device.updated",
                {"eui": BUTTON_EUI, "site": "public", "status": "offline"},
                city.mahalla_id,
            ),
        )
        observed = await _rows_until(clients["obs1"], "device.updated")
        public = observed[-1]
        assert public["data"]["eui"] == BUTTON_EUI
        extra = await clients["obs1"].rows_before_pings()
        # Offers name a post, its distance and a decline reason: never the mahalla team's.
        assert [row for row in observed + extra if row["type"].startswith("offer.")] == []
        assert all(row["data"].get("eui") != SHOP_EUI for row in extra)
        assert [row for row in extra if row["type"] == "alert.opened"] == []
        console_rows = await clients["disp1"].rows_of_type("device.updated", 2)
        assert [row["data"]["eui"] for row in console_rows] == [SHOP_EUI, BUTTON_EUI]


def _feed(
    kind: str, data: dict[str, Any], mahalla_id: int, alert_id: int | None = None
) -> FeedMessage:
    return FeedMessage(kind, data, alert_id=alert_id, mahalla_id=mahalla_id)

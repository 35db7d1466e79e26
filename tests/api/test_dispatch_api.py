"""The tablet and console endpoints through the real app: a press from offer to close.

Scope rules are checked on the way: unauthenticated 401, wrong role 403, a post acting on
another post's offer 403, an observer reading another mahalla's alert 403.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.db import unit_of_work
from alertnet.ingest.pipeline import RawUplink
from alertnet.models import Post, Transport, utcnow
from alertnet.protocol import EventCode, Uplink
from tests.auth.helpers import Account, bearer, create_account
from tests.support.asgi import AppClient
from tests.support.factories import create_device, create_mahalla, create_post
from tests.support.polling import eventually

KEY = bytes(range(16))
EUI = "70b3d57ed0005555"
# Two posts north of the device: P-1 ~550 m away, P-2 ~1.1 km away.
DEVICE_AT = (41.3111, 69.2797)
NEAR = (41.3161, 69.2797)
FAR = (41.3211, 69.2797)


class City:
    def __init__(self, accounts: dict[str, Account], mahallas: dict[str, int]) -> None:
        self.accounts = accounts
        self.mahallas = mahallas


async def _city(session_factory: async_sessionmaker[AsyncSession]) -> City:
    async with unit_of_work(session_factory) as session:
        red = await create_mahalla(session, name="Chorsu", risk="red")
        green = await create_mahalla(session, name="Bodomzor", risk="green")
        await create_device(
            session, eui=EUI, key=KEY, lat=DEVICE_AT[0], lon=DEVICE_AT[1], mahalla_id=red.id
        )
        await create_post(session, callsign="P-1", lat=NEAR[0], lon=NEAR[1], status="off_duty")
        await create_post(session, callsign="P-2", lat=FAR[0], lon=FAR[1], status="off_duty")
        accounts = {
            "dispatcher": await create_account(session, "disp", "dispatcher"),
            "p1": await create_account(session, "crew1", "post", post_callsign="P-1"),
            "p2": await create_account(session, "crew2", "post", post_callsign="P-2"),
            "observer_red": await create_account(
                session, "obs-red", "observer", mahalla_name="Chorsu"
            ),
            "observer_green": await create_account(
                session, "obs-green", "observer", mahalla_name="Bodomzor"
            ),
        }
    return City(accounts, {"red": red.id, "green": green.id})


async def _press(api: AppClient, counter: int) -> None:
    pipeline = api.runtime.pipeline
    frame = Uplink.build(KEY, EUI, counter, EventCode.PANIC).to_bytes()
    outcome = await pipeline.submit(RawUplink(frame, Transport.HTTP))
    assert outcome.accepted


async def _body(api: AppClient, path: str, who: Account) -> Any:
    return (await api.get(path, headers=bearer(who))).json()


def _has_offer(me: Any) -> bool:
    return me["offer"] is not None


async def test_press_to_close_through_the_tablet_endpoints(
    api: AppClient, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    city = await _city(session_factory)
    p1, p2 = city.accounts["p1"], city.accounts["p2"]
    for crew, (lat, lon) in ((p1, NEAR), (p2, FAR)):
        on_duty = await api.post(
            "/api/v1/posts/me/status", json={"status": "available"}, headers=bearer(crew)
        )
        assert on_duty.status_code == 200, on_duty.text
        located = await api.post(
            "/api/v1/posts/me/location",
            json={"lat": lat, "lon": lon, "accuracy_m": 8},
            headers=bearer(crew),
        )
        assert located.json()["post"]["status"] == "available"

    await _press(api, 1)
    me = await eventually(
        lambda: _body(api, "/api/v1/posts/me", p1), _has_offer, awaiting="P-1's offer"
    )
    offer = me["offer"]
    assert offer["post"] == "P-1" and offer["state"] == "pending"
    assert 500 < offer["distance_m"] < 600
    assert offer["alert"]["risk"] == "red" and offer["alert"]["category"] == "panic"

    # The other crew cannot take it; nobody unauthenticated can; a dispatcher is not a post.
    stolen = await api.post(f"/api/v1/offers/{offer['id']}/accept", headers=bearer(p2))
    assert stolen.status_code == 403
    assert (await api.post(f"/api/v1/offers/{offer['id']}/accept")).status_code == 401
    by_dispatcher = await api.post(
        f"/api/v1/offers/{offer['id']}/accept", headers=bearer(city.accounts["dispatcher"])
    )
    assert by_dispatcher.status_code == 403

    accepted = await api.post(f"/api/v1/offers/{offer['id']}/accept", headers=bearer(p1))
    assert accepted.status_code == 200 and accepted.json()["state"] == "accepted"
    alert_id = offer["alert_id"]
    arrived = await api.post(f"/api/v1/alerts/{alert_id}/arrive", headers=bearer(p1))
    assert arrived.json()["state"] == "on_scene"
    closed = await api.post(
        f"/api/v1/alerts/{alert_id}/close",
        json={"outcome": "false_alarm", "note": "child pressed it"},
        headers=bearer(p1),
    )
    assert closed.status_code == 200 and closed.json()["state"] == "closed"
    again = await api.post(f"/api/v1/alerts/{alert_id}/arrive", headers=bearer(p1))
    assert again.status_code == 409

    detail = (
        await api.get(f"/api/v1/alerts/{alert_id}", headers=bearer(city.accounts["dispatcher"]))
    ).json()
    assert [row["to"] for row in detail["audit"]] == [
        "new",
        "offered",
        "accepted",
        "on_scene",
        "closed",
    ]
    assert detail["outcome"] == "false_alarm" and detail["events"][0]["counter"] == 1
    me_after = (await api.get("/api/v1/posts/me", headers=bearer(p1))).json()
    assert me_after["post"]["status"] == "available" and me_after["alert"] is None


async def test_decline_moves_the_offer_to_the_next_post(
    api: AppClient, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    city = await _city(session_factory)
    p1, p2 = city.accounts["p1"], city.accounts["p2"]
    for crew, (lat, lon) in ((p1, NEAR), (p2, FAR)):
        await api.post(
            "/api/v1/posts/me/status", json={"status": "available"}, headers=bearer(crew)
        )
        await api.post(
            "/api/v1/posts/me/location", json={"lat": lat, "lon": lon}, headers=bearer(crew)
        )
    await _press(api, 1)
    first = await eventually(
        lambda: _body(api, "/api/v1/posts/me", p1), _has_offer, awaiting="P-1's offer"
    )
    declined = await api.post(
        f"/api/v1/offers/{first['offer']['id']}/decline",
        json={"reason": "engine trouble"},
        headers=bearer(p1),
    )
    assert declined.json()["state"] == "declined"
    second = await eventually(
        lambda: _body(api, "/api/v1/posts/me", p2),
        _has_offer,
        awaiting="P-2's offer after P-1 declined",
    )
    assert second["offer"]["alert_id"] == first["offer"]["alert_id"]


async def test_console_queue_assign_and_cancel_with_scopes(
    api: AppClient, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    city = await _city(session_factory)
    dispatcher = city.accounts["dispatcher"]
    await _press(api, 1)  # no post is on duty: the alert escalates
    queue = await eventually(
        lambda: _body(api, "/api/v1/alerts", dispatcher),
        lambda body: body and body[0]["state"] == "escalated",
        awaiting="the alert escalated with nobody on duty",
    )
    alert_id = queue[0]["id"]
    assert (await api.get("/api/v1/alerts")).status_code == 401

    red = await api.get("/api/v1/alerts", headers=bearer(city.accounts["observer_red"]))
    green = await api.get("/api/v1/alerts", headers=bearer(city.accounts["observer_green"]))
    assert [a["id"] for a in red.json()] == [alert_id] and green.json() == []
    foreign = await api.get(
        f"/api/v1/alerts/{alert_id}", headers=bearer(city.accounts["observer_green"])
    )
    assert foreign.status_code == 403
    observer_assign = await api.post(
        f"/api/v1/alerts/{alert_id}/assign",
        json={"post_id": 1},
        headers=bearer(city.accounts["observer_red"]),
    )
    assert observer_assign.status_code == 403

    candidates = (
        await api.get(f"/api/v1/alerts/{alert_id}/candidates", headers=bearer(dispatcher))
    ).json()
    assert candidates == []  # both posts are off duty
    p2 = city.accounts["p2"]
    await api.post("/api/v1/posts/me/status", json={"status": "available"}, headers=bearer(p2))
    # P-2 going available is served the escalated alert at once.
    me = await eventually(
        lambda: _body(api, "/api/v1/posts/me", p2),
        _has_offer,
        awaiting="P-2 served the escalated alert",
    )
    assert me["offer"]["alert_id"] == alert_id

    cancelled = await api.post(
        f"/api/v1/alerts/{alert_id}/cancel",
        json={"reason": "caller confirmed a test"},
        headers=bearer(dispatcher),
    )
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    no_reason = await api.post(
        f"/api/v1/alerts/{alert_id}/cancel", json={"reason": ""}, headers=bearer(dispatcher)
    )
    assert no_reason.status_code == 422
    me = (await api.get("/api/v1/posts/me", headers=bearer(p2))).json()
    assert me["offer"] is None


async def test_a_fresh_location_report_brings_a_waiting_alert(
    api: AppClient, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    """An available post whose position went stale is not eligible until it reports again."""
    city = await _city(session_factory)
    p1 = city.accounts["p1"]
    await api.post("/api/v1/posts/me/status", json={"status": "available"}, headers=bearer(p1))
    async with unit_of_work(session_factory) as session:
        post = await session.get_one(Post, p1.post_id)
        post.location_at = utcnow() - timedelta(minutes=10)
    await _press(api, 1)
    await eventually(
        lambda: _body(api, "/api/v1/alerts", city.accounts["dispatcher"]),
        lambda body: body and body[0]["state"] == "escalated",
        awaiting="the alert escalated while P-1's position is stale",
    )
    report = await api.post(
        "/api/v1/posts/me/location", json={"lat": NEAR[0], "lon": NEAR[1]}, headers=bearer(p1)
    )
    assert report.status_code == 200
    assert report.json()["offer"] is not None and report.json()["offer"]["post"] == "P-1"

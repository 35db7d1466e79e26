"""Silent alarms (DESIGN §3): the alert is silent when the device or the event says so; the
device hears "received" and never "police on the way"; a dispatcher's call override is
audited and announced. Through the real app, pipeline, dispatcher and downlink router, on
SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.alerts.intake import AlertIntake
from alertnet.alerts.opening import DeviceRef
from alertnet.db import unit_of_work
from alertnet.dispatch.realpress import cancel_device_drills
from alertnet.ingest.pipeline import RawUplink
from alertnet.models import Alert, Device, FeedItem, Transport, utcnow
from alertnet.protocol import EventCode, Uplink, decode_downlink
from tests.auth.helpers import Account, bearer
from tests.support.asgi import AppClient
from tests.support.factories import create_alert
from tests.support.polling import eventually

from .helpers import HOME_AT, HOME_EUI, HOME_KEY, SHOP_EUI, SHOP_KEY, build_city

SessionFactory = async_sessionmaker[AsyncSession]


async def _alert_of(session_factory: SessionFactory, device_id: int) -> Alert | None:
    async with session_factory() as session:
        return (
            await session.scalars(select(Alert).where(Alert.device_id == device_id))
        ).one_or_none()


async def _me(api: AppClient, crew: Account) -> dict[str, Any]:
    answer: dict[str, Any] = (await api.get("/api/v1/posts/me", headers=bearer(crew))).json()
    return answer


async def test_a_silent_device_hears_received_and_never_more(
    api: AppClient, session_factory: SessionFactory
) -> None:
    city = await build_city(session_factory, home_silent=True)
    published: list[tuple[str, bytes]] = []
    router = api.runtime.downlinks
    router.publish_via(lambda topic, payload: published.append((topic, payload)))

    # Both devices press over MQTT: the router answers devices there with progress states.
    for eui, key in ((HOME_EUI, HOME_KEY), (SHOP_EUI, SHOP_KEY)):
        frame = Uplink.build(key, eui, 1, EventCode.INTRUSION).to_bytes()
        outcome = await api.runtime.pipeline.submit(RawUplink(frame, Transport.MQTT, topic_eui=eui))
        assert outcome.accepted
        # What the MQTT ingest does after the commit: the "received" ack (state 1).
        router.uplink_committed(outcome, RawUplink(frame, Transport.MQTT, topic_eui=eui))

    home = await _alert_of(session_factory, city.home_id)
    shop = await _alert_of(session_factory, city.shop_id)
    assert home is not None and shop is not None
    assert home.silent is True and shop.silent is False

    # The dispatcher offers both (one to each post); the crew holding the home's accepts.
    # The home's device is told neither "dispatched" nor "accepted".
    offers = []
    for crew in (city.p1, city.p2):
        me = await eventually(
            lambda crew=crew: _me(api, crew),
            lambda me: me["offer"] is not None,
            awaiting=f"an offer to {crew.username}",
        )
        offers.append((crew, me["offer"]))
    crew, offer = next((c, o) for c, o in offers if o["alert"]["device_eui"] == HOME_EUI)
    assert offer["alert"]["silent"] is True
    accepted = await api.post(f"/api/v1/offers/{offer['id']}/accept", headers=bearer(crew))
    assert accepted.status_code == 200
    await eventually(
        lambda: router.silent_withheld, lambda n: n >= 2, awaiting="two withheld notices"
    )

    def states(eui: str) -> list[int]:
        return [
            decode_downlink(payload).state.value
            for topic, payload in published
            if topic == f"alertnet/v1/down/{eui}"
        ]

    await eventually(lambda: states(SHOP_EUI), lambda s: 2 in s, awaiting="the shop told")
    assert states(HOME_EUI) == [1]
    assert 1 in states(SHOP_EUI)


async def test_the_event_can_ask_for_silence_and_a_silent_press_silences_an_open_alert(
    db_url: str, session_factory: SessionFactory
) -> None:
    city = await build_city(session_factory, posts_on_duty=False)
    home = DeviceRef(
        id=city.home_id,
        eui=HOME_EUI,
        mahalla_id=city.mahalla_id,
        risk="red",
        lat=HOME_AT[0],
        lon=HOME_AT[1],
    )
    shop = DeviceRef(
        id=city.shop_id,
        eui=SHOP_EUI,
        mahalla_id=city.mahalla_id,
        risk="red",
        lat=HOME_AT[0],
        lon=HOME_AT[1],
    )
    async with unit_of_work(session_factory) as session:
        intake = AlertIntake(session, cancel_drills=cancel_device_drills)
        duress = Uplink.build(HOME_KEY, HOME_EUI, 1, EventCode.PANIC)
        await intake.apply(0, home, duress, utcnow(), silent=True)
        plain = Uplink.build(SHOP_KEY, SHOP_EUI, 1, EventCode.PANIC)
        await intake.apply(0, shop, plain, utcnow())
    home_alert = await _alert_of(session_factory, city.home_id)
    shop_alert = await _alert_of(session_factory, city.shop_id)
    assert home_alert is not None and home_alert.silent is True
    assert shop_alert is not None and shop_alert.silent is False

    # A duress code on the shop's open alert merges into it and makes it silent for good.
    async with unit_of_work(session_factory) as session:
        intake = AlertIntake(session, cancel_drills=cancel_device_drills)
        again = Uplink.build(SHOP_KEY, SHOP_EUI, 2, EventCode.PANIC)
        await intake.apply(0, shop, again, utcnow(), silent=True)
        later = Uplink.build(SHOP_KEY, SHOP_EUI, 3, EventCode.PANIC)
        await intake.apply(0, shop, later, utcnow())
    merged = await _alert_of(session_factory, city.shop_id)
    assert merged is not None and merged.id == shop_alert.id
    assert merged.press_count == 3 and merged.silent is True


async def test_call_override_is_for_dispatchers_audited_and_on_the_feed(
    api: AppClient, session_factory: SessionFactory
) -> None:
    city = await build_city(session_factory, posts_on_duty=False)
    async with unit_of_work(session_factory) as session:
        home_device = await session.get_one(Device, city.home_id)
        shop_device = await session.get_one(Device, city.shop_id)
        # Escalated: no post is on duty, so the app's dispatcher would escalate a `new`
        # alert at any moment (another audit and feed row); an escalated one it leaves.
        silent = await create_alert(
            session, home_device, category="intrusion", state="escalated", silent=True
        )
        loud = await create_alert(session, shop_device, category="intrusion")
    path = f"/api/v1/alerts/{silent.id}/call-override"
    reason = {"reason": "the crew needs the key-holder"}

    for who in (city.p1, city.observer):
        refused = await api.post(path, json=reason, headers=bearer(who))
        assert refused.status_code == 403, who.role
    no_reason = await api.post(path, json={"reason": ""}, headers=bearer(city.dispatcher))
    assert no_reason.status_code == 422
    not_silent = await api.post(
        f"/api/v1/alerts/{loud.id}/call-override", json=reason, headers=bearer(city.dispatcher)
    )
    assert not_silent.status_code == 409 and not_silent.json()["code"] == "alert_not_silent"
    missing = await api.post(
        "/api/v1/alerts/999999/call-override", json=reason, headers=bearer(city.dispatcher)
    )
    assert missing.status_code == 404

    overridden = await api.post(path, json=reason, headers=bearer(city.dispatcher))
    assert overridden.status_code == 200, overridden.text
    view = overridden.json()
    assert view["silent"] is True and view["call_override_by"] == "disp1"
    assert view["call_override_at"] is not None
    # A second dispatcher's override changes nothing: the first name stays, one audit row.
    again = await api.post(path, json={"reason": "me too"}, headers=bearer(city.admin))
    assert again.json()["call_override_by"] == "disp1"

    record = (await api.get(f"/api/v1/alerts/{silent.id}", headers=bearer(city.dispatcher))).json()
    overrides = [row for row in record["audit"] if row["reason"].startswith("call override")]
    assert overrides == [
        {
            "at": overrides[0]["at"],
            "actor": "disp1",
            "from": "escalated",
            "to": "escalated",
            "reason": "call override: the crew needs the key-holder",
        }
    ]
    async with session_factory() as session:
        rows = (
            await session.scalars(
                select(FeedItem).where(FeedItem.alert_id == silent.id).order_by(FeedItem.seq)
            )
        ).all()
    assert [(row.type, row.data["call_override_by"]) for row in rows] == [
        ("alert.updated", "disp1")
    ]
    assert rows[0].mahalla_id == city.mahalla_id

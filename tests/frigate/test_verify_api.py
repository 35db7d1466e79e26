"""Confirm and dismiss a camera alert through the real app (DESIGN §9.3), on SQLite and
PostgreSQL: the alert opens in ``verify`` through the one pipeline and is never offered to a
post until a dispatcher confirms it; a dismissal is refused while evidence the dispatcher has
not seen merged in; every move is audited; only dispatchers and admins may answer."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.db import unit_of_work
from alertnet.ingest.sources import SourceEvent, SourceKind
from alertnet.models import AlertAudit, AlertCategory, Offer, Transport
from tests.auth.helpers import Account, bearer, create_account
from tests.support.asgi import AppClient
from tests.support.factories import create_device, create_mahalla, create_post
from tests.support.polling import eventually

SessionFactory = async_sessionmaker[AsyncSession]


class Scene:
    def __init__(self, camera_id: int, accounts: dict[str, Account]) -> None:
        self.camera_id = camera_id
        self.accounts = accounts


async def _scene(session_factory: SessionFactory) -> Scene:
    async with unit_of_work(session_factory) as session:
        red = await create_mahalla(session, name="Chorsu", risk="red")
        camera = await create_device(session, kind="camera", camera_name="gate", mahalla_id=red.id)
        await create_post(session, callsign="P-1")  # available, right at the camera
        accounts = {
            "dispatcher": await create_account(session, "disp", "dispatcher"),
            "admin": await create_account(session, "boss", "admin"),
            "post": await create_account(session, "crew1", "post", post_callsign="P-1"),
            "observer": await create_account(session, "obs", "observer", mahalla_name="Chorsu"),
        }
    return Scene(camera.id, accounts)


async def _seen(api: AppClient, scene: Scene, frigate_id: str) -> int:
    """A qualifying Frigate event through the one pipeline; returns its alert id."""
    outcome = await api.runtime.pipeline.submit_event(
        SourceEvent(
            device_id=scene.camera_id,
            dedup_key=f"frigate:{frigate_id}",
            kind=SourceKind.ALARM,
            code="camera",
            transport=Transport.FRIGATE,
            category=AlertCategory.CAMERA,
            details={"label": "person", "zones": ["yard"], "snapshot": None},
        )
    )
    assert outcome.accepted and outcome.alert_id is not None
    return outcome.alert_id


async def _alert(api: AppClient, alert_id: int, who: Account) -> Any:
    answer = await api.get(f"/api/v1/alerts/{alert_id}", headers=bearer(who))
    assert answer.status_code == 200, answer.text
    return answer.json()


async def _offers(session_factory: SessionFactory) -> int:
    async with session_factory() as session:
        return int(await session.scalar(select(func.count()).select_from(Offer)) or 0)


async def test_a_camera_alert_is_never_offered_until_confirmed_then_dispatched_like_an_intrusion(
    api: AppClient, session_factory: SessionFactory
) -> None:
    scene = await _scene(session_factory)
    dispatcher = scene.accounts["dispatcher"]
    alert_id = await _seen(api, scene, "1")
    for frigate_id in ("2", "3"):  # three events: the repeat bonus comes with confirmation
        assert await _seen(api, scene, frigate_id) == alert_id

    # The dispatcher's loop passes over it, however often it runs, with a post right there.
    for _ in range(3):
        await api.runtime.dispatcher.step()
    assert await _offers(session_factory) == 0
    view = await _alert(api, alert_id, dispatcher)
    assert (view["state"], view["category"], view["priority"]) == ("verify", "camera", 65)
    assert view["last_event_id"] is not None and view["verify_due_at"] is not None
    posts = (await api.get("/api/v1/posts", headers=bearer(dispatcher))).json()
    assign = await api.post(
        f"/api/v1/alerts/{alert_id}/assign",
        json={"post_id": posts[0]["id"]},
        headers=bearer(dispatcher),
    )
    assert assign.status_code == 409 and assign.json()["code"] == "illegal_transition"
    assert await _offers(session_factory) == 0

    confirmed = await api.post(f"/api/v1/alerts/{alert_id}/confirm", headers=bearer(dispatcher))
    assert confirmed.status_code == 200, confirmed.text
    body = confirmed.json()
    # An intrusion's 70, +10 for a red mahalla, +5 for three events.
    assert (body["category"], body["priority"]) == ("camera", 85)
    await eventually(
        lambda: _alert(api, alert_id, dispatcher),
        lambda view: view["state"] == "offered" and view["offered_post_id"] is not None,
        awaiting="the confirmed alert offered to the post",
    )
    async with session_factory() as session:
        moves = (
            await session.execute(
                select(AlertAudit.from_state, AlertAudit.to_state, AlertAudit.actor)
                .where(AlertAudit.alert_id == alert_id)
                .order_by(AlertAudit.id)
            )
        ).all()
    assert moves[:2] == [
        (None, "verify", "device:" + view["device_eui"]),
        ("verify", "new", "disp"),
    ]
    assert moves[2][1] == "offered"

    again = await api.post(f"/api/v1/alerts/{alert_id}/confirm", headers=bearer(dispatcher))
    assert again.status_code == 409 and again.json()["code"] == "illegal_transition"


async def test_dismiss_is_refused_while_newer_evidence_merged_then_cancels_as_false_alarm(
    api: AppClient, session_factory: SessionFactory
) -> None:
    scene = await _scene(session_factory)
    admin = scene.accounts["admin"]
    alert_id = await _seen(api, scene, "a")
    seen = (await _alert(api, alert_id, admin))["last_event_id"]
    await _seen(api, scene, "b")  # a second person, merged while the dispatcher looked

    stale = await api.post(
        f"/api/v1/alerts/{alert_id}/dismiss", json={"last_event_id": seen}, headers=bearer(admin)
    )
    assert stale.status_code == 409, stale.text
    assert stale.json()["code"] == "new_evidence"
    view = await _alert(api, alert_id, admin)
    assert view["state"] == "verify" and view["last_event_id"] > seen

    done = await api.post(
        f"/api/v1/alerts/{alert_id}/dismiss",
        json={"last_event_id": view["last_event_id"]},
        headers=bearer(admin),
    )
    assert done.status_code == 200, done.text
    assert done.json()["state"] == "cancelled"
    async with session_factory() as session:
        audit = (
            await session.scalars(select(AlertAudit).where(AlertAudit.to_state == "cancelled"))
        ).one()
        outcome = await session.scalar(
            select(func.max(AlertAudit.id)).where(AlertAudit.alert_id == alert_id)
        )
    assert (audit.from_state, audit.actor) == ("verify", "boss")
    assert "false alarm" in audit.reason and outcome == audit.id
    history = await api.get(f"/api/v1/alerts/{alert_id}", headers=bearer(admin))
    assert history.json()["state"] == "cancelled"
    assert await _offers(session_factory) == 0

    # The camera's next event opens a new alert (the old one is closed).
    assert await _seen(api, scene, "c") != alert_id


async def test_only_dispatchers_and_admins_answer_a_camera_alert(
    api: AppClient, session_factory: SessionFactory
) -> None:
    scene = await _scene(session_factory)
    alert_id = await _seen(api, scene, "x")
    for role in ("post", "observer"):
        who = bearer(scene.accounts[role])
        assert (
            await api.post(f"/api/v1/alerts/{alert_id}/confirm", headers=who)
        ).status_code == 403
        dismiss = await api.post(
            f"/api/v1/alerts/{alert_id}/dismiss", json={"last_event_id": 10**6}, headers=who
        )
        assert dismiss.status_code == 403
        events = await api.get(f"/api/v1/alerts/{alert_id}/camera-events", headers=who)
        assert events.status_code == 403
    assert (await api.post(f"/api/v1/alerts/{alert_id}/confirm")).status_code == 401
    missing = await api.post(
        "/api/v1/alerts/999999/confirm", headers=bearer(scene.accounts["dispatcher"])
    )
    assert missing.status_code == 404
    bad = await api.post(
        f"/api/v1/alerts/{alert_id}/dismiss",
        json={"last_event_id": -1},
        headers=bearer(scene.accounts["dispatcher"]),
    )
    assert bad.status_code == 422
    listed = await api.get(
        f"/api/v1/alerts/{alert_id}/camera-events", headers=bearer(scene.accounts["dispatcher"])
    )
    assert [(e["label"], e["zones"]) for e in listed.json()] == [("person", ["yard"])]
    view = await _alert(api, alert_id, scene.accounts["dispatcher"])
    assert view["state"] == "verify"

"""Notes, acknowledgement and action plans through the real app (DESIGN §10), on SQLite and
PostgreSQL: who may write and read them, the audit record each leaves, and the feed rows that
announce them (the stream itself: ``test_workflow_stream``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from alertnet.alerts.notes import notes_for
from alertnet.alerts.plans import DEFAULT_PLANS, PLAN_CATEGORIES, ticks_for
from alertnet.auth.scope import Scope
from alertnet.db import unit_of_work
from alertnet.models import Alert, AlertAcknowledgement, AlertStepTick, Role
from tests.auth.helpers import Account, bearer
from tests.support.asgi import AppClient
from tests.workflow.helpers import City, SessionFactory, create_city, feed_rows, new_alert


def _observer_scope(city: City) -> Scope:
    return Scope(Role.OBSERVER, city.observer.user_id, "obs", mahalla_id=city.mahalla_id)


def _post_scope(city: City) -> Scope:
    return Scope(Role.POST, city.crew.user_id, "crew7", post_id=city.post_id)


async def _detail(api: AppClient, alert_id: int, who: Account) -> dict[str, Any]:
    answer = await api.get(f"/api/v1/alerts/{alert_id}", headers=bearer(who))
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def test_a_note_is_shared_by_every_dispatcher_and_kept_from_observers(
    api: AppClient, session_factory: SessionFactory
) -> None:
    city = await create_city(session_factory)
    alert_id = await new_alert(session_factory, city, post_id=None)
    path = f"/api/v1/alerts/{alert_id}/notes"

    added = await api.post(
        path,
        json={"text": "  Caller: two men, one knife.\nGate code 41.  "},
        headers=bearer(city.dispatcher),
    )
    assert added.status_code == 201, added.text
    note = added.json()
    assert (
        note["author"] == "disp-a" and note["text"] == "Caller: two men, one knife.\nGate code 41."
    )
    by_admin = await api.post(path, json={"text": "Duty officer told."}, headers=bearer(city.admin))
    assert by_admin.status_code == 201

    # The other dispatcher reads both, oldest first, with who wrote each.
    seen = await _detail(api, alert_id, city.dispatcher_2)
    assert [(n["author"], n["text"]) for n in seen["notes"]] == [
        ("disp-a", "Caller: two men, one knife.\nGate code 41."),
        ("admin1", "Duty officer told."),
    ]

    # Nobody else writes a note; the mahalla team and the crew read none of it (§10).
    for who, status in ((city.observer, 403), (city.crew, 403)):
        refused = await api.post(path, json={"text": "x"}, headers=bearer(who))
        assert refused.status_code == status, (who.username, refused.text)
    assert (await api.post(path, json={"text": "x"})).status_code == 401
    as_observer = await _detail(api, alert_id, city.observer)
    assert as_observer["id"] == alert_id
    assert {"notes", "acknowledgements", "plan"}.isdisjoint(as_observer)

    # Empty, blank or NUL text is refused; an unknown alert is 404.
    for text in ("", "   \n ", "a\x00b", "x" * 2001):
        bad = await api.post(path, json={"text": text}, headers=bearer(city.dispatcher))
        assert bad.status_code == 422, (text[:5], bad.text)
    missing = await api.post(
        "/api/v1/alerts/999999/notes", json={"text": "x"}, headers=bearer(city.dispatcher)
    )
    assert missing.status_code == 404

    # Each note was announced on the feed for the console alone.
    rows = await feed_rows(session_factory, "alert.workflow")
    assert [(r.data["action"], r.data["note"]["text"]) for r in rows] == [
        ("note", "Caller: two men, one knife.\nGate code 41."),
        ("note", "Duty officer told."),
    ]
    for row in rows:
        assert row.alert_id == alert_id and row.post_id is None and row.mahalla_id is None
        assert not _observer_scope(city).sees_feed_row(
            post_id=row.post_id, mahalla_id=row.mahalla_id
        )
        assert not _post_scope(city).sees_feed_row(post_id=row.post_id, mahalla_id=row.mahalla_id)


async def test_a_closed_alert_still_takes_a_note_and_notes_for_reads_many_alerts(
    api: AppClient, session_factory: SessionFactory
) -> None:
    city = await create_city(session_factory)
    closed = await new_alert(session_factory, city, state="closed")
    quiet = await new_alert(session_factory, city, category="fire", state="new")
    answer = await api.post(
        f"/api/v1/alerts/{closed}/notes",
        json={"text": "Owner called back: all well."},
        headers=bearer(city.dispatcher),
    )
    assert answer.status_code == 201
    async with session_factory() as session:
        found = await notes_for(session, [closed, quiet])
    assert list(found) == [closed, quiet]
    assert [(n.author, n.text) for n in found[closed]] == [
        ("disp-a", "Owner called back: all well.")
    ]
    assert found[closed][0].at.tzinfo is not None and found[quiet] == []


async def test_acknowledge_is_shared_once_and_again_after_a_new_escalation(
    api: AppClient, session_factory: SessionFactory
) -> None:
    city = await create_city(session_factory)
    alert_id = await new_alert(session_factory, city)
    path = f"/api/v1/alerts/{alert_id}/acknowledge"

    for who in (city.observer, city.crew):
        assert (await api.post(path, headers=bearer(who))).status_code == 403
    first = await api.post(path, headers=bearer(city.dispatcher))
    assert first.status_code == 200, first.text
    assert first.json()["acknowledged_by"] == "disp-a"
    # The second dispatcher is told who was first; nothing new is recorded.
    second = await api.post(path, headers=bearer(city.dispatcher_2))
    assert second.json()["acknowledged_by"] == "disp-a"
    assert second.json()["acknowledged_at"] == first.json()["acknowledged_at"]

    # Every console's queue hears it (alert.updated, routed like any change of the alert);
    # the console's workflow row names no post and no mahalla.
    updated = await feed_rows(session_factory, "alert.updated")
    assert [(r.data["acknowledged_by"], r.mahalla_id) for r in updated] == [
        ("disp-a", city.mahalla_id)
    ]
    workflow = await feed_rows(session_factory, "alert.workflow")
    assert [(r.data["action"], r.data["by"], r.mahalla_id) for r in workflow] == [
        ("acknowledge", "disp-a", None)
    ]

    # It escalates again (no post took it in its round): the alarm rings again and the next
    # acknowledgement is recorded as well.
    async with unit_of_work(session_factory) as session:
        alert = await session.get_one(Alert, alert_id)
        assert alert.acknowledged_at is not None
        alert.escalated_at = alert.acknowledged_at + timedelta(seconds=5)
    again = await api.post(path, headers=bearer(city.dispatcher_2))
    assert again.json()["acknowledged_by"] == "disp-b"
    assert again.json()["acknowledged_at"] >= again.json()["escalated_at"]
    detail = await _detail(api, alert_id, city.dispatcher)
    assert [(a["by"], a["state"]) for a in detail["acknowledgements"]] == [
        ("disp-a", "escalated"),
        ("disp-b", "escalated"),
    ]
    # The observer sees that the centre acknowledged (the alert's own fields), not the history.
    as_observer = await _detail(api, alert_id, city.observer)
    assert as_observer["acknowledged_by"] == "disp-b" and "acknowledgements" not in as_observer


async def test_only_an_open_alert_is_acknowledged(
    api: AppClient, session_factory: SessionFactory
) -> None:
    city = await create_city(session_factory)
    for state in ("closed", "cancelled"):
        alert_id = await new_alert(session_factory, city, state=state)
        answer = await api.post(
            f"/api/v1/alerts/{alert_id}/acknowledge", headers=bearer(city.dispatcher)
        )
        assert answer.status_code == 409 and answer.json()["code"] == "alert_not_open"
    missing = await api.post("/api/v1/alerts/424242/acknowledge", headers=bearer(city.dispatcher))
    assert missing.status_code == 404
    async with session_factory() as session:
        assert await session.scalar(select(func.count()).select_from(AlertAcknowledgement)) == 0


async def test_default_plans_ship_for_every_category_and_admins_edit_them(
    api: AppClient, session_factory: SessionFactory
) -> None:
    city = await create_city(session_factory)
    plans = (await api.get("/api/v1/action-plans", headers=bearer(city.dispatcher))).json()
    assert [plan["category"] for plan in plans] == list(PLAN_CATEGORIES)
    assert all(plan["default"] and plan["steps"] for plan in plans)
    panic = plans[0]
    assert [step["key"] for step in panic["steps"]] == [
        "call-site",
        "send-post",
        "inform-duty-officer",
    ]
    assert panic["steps"][0]["not_silent"] is True
    for who in (city.observer, city.crew):
        assert (await api.get("/api/v1/action-plans", headers=bearer(who))).status_code == 403

    new_plan = {
        "steps": [
            {"text": "Call the  bank's   security desk"},
            {"key": "send-post"},
            {"text": "Phone the branch manager", "not_silent": True},
        ]
    }
    path = "/api/v1/action-plans/intrusion"
    assert (await api.put(path, json=new_plan, headers=bearer(city.dispatcher))).status_code == 403
    saved = await api.put(path, json=new_plan, headers=bearer(city.admin))
    assert saved.status_code == 200, saved.text
    assert saved.json()["default"] is False and saved.json()["updated_by"] == "admin1"
    assert saved.json()["steps"] == [
        {"text": "Call the bank's security desk"},
        {"key": "send-post"},
        {"text": "Phone the branch manager", "not_silent": True},
    ]
    # Saving again replaces it.
    replaced = await api.put(
        path, json={"steps": [{"key": "send-post"}]}, headers=bearer(city.admin)
    )
    assert replaced.json()["steps"] == [{"key": "send-post"}]
    read = (await api.get(path, headers=bearer(city.dispatcher_2))).json()
    assert read["steps"] == [{"key": "send-post"}]

    bad_plans = [
        {"steps": [{"key": "send-post", "text": "both"}]},
        {"steps": [{}]},
        {"steps": [{"key": "make-tea"}]},
        {"steps": [{"text": "   "}]},
        {"steps": [{"text": "line\nbreak"}]},
        {"steps": [{"key": "send-post"}] * 21},
        {"steps": [{"key": "send-post", "colour": "red"}]},
    ]
    for body in bad_plans:
        answer = await api.put(path, json=body, headers=bearer(city.admin))
        assert answer.status_code == 422, (body, answer.text)
    unknown = await api.put(
        "/api/v1/action-plans/weather", json={"steps": []}, headers=bearer(city.admin)
    )
    assert unknown.status_code == 404

    reset = await api.delete(path, headers=bearer(city.admin))
    assert reset.json()["default"] is True
    assert reset.json()["steps"] == [dict(step) for step in DEFAULT_PLANS["intrusion"]]


async def test_ticking_a_step_is_recorded_once_and_announced(
    api: AppClient, session_factory: SessionFactory
) -> None:
    city = await create_city(session_factory)
    alert_id = await new_alert(session_factory, city)
    step_2 = f"/api/v1/alerts/{alert_id}/steps/2"

    for who in (city.observer, city.crew):
        assert (await api.post(step_2, headers=bearer(who))).status_code == 403
    ticked = await api.post(step_2, headers=bearer(city.dispatcher))
    assert ticked.status_code == 200, ticked.text
    assert ticked.json() | {"at": None} == {
        "n": 2,
        "key": "send-post",
        "by": "disp-a",
        "at": None,
        "new": True,
    }
    again = await api.post(step_2, headers=bearer(city.dispatcher_2))
    assert again.json()["by"] == "disp-a" and again.json()["new"] is False
    for n in (4, 20):
        assert (
            await api.post(f"/api/v1/alerts/{alert_id}/steps/{n}", headers=bearer(city.dispatcher))
        ).status_code == 404
    for n in ("0", "21", "two"):
        assert (
            await api.post(f"/api/v1/alerts/{alert_id}/steps/{n}", headers=bearer(city.dispatcher))
        ).status_code == 422

    plan = (await _detail(api, alert_id, city.dispatcher_2))["plan"]
    assert plan["category"] == "panic" and plan["default"] is True
    assert [(s["n"], s["key"], s["ticked_by"]) for s in plan["steps"]] == [
        (1, "call-site", None),
        (2, "send-post", "disp-a"),
        (3, "inform-duty-officer", None),
    ]
    rows = await feed_rows(session_factory, "alert.workflow")
    assert [(r.data["action"], r.data["step"]["n"], r.data["by"]) for r in rows] == [
        ("step", 2, "disp-a")
    ]
    assert rows[0].post_id is None and rows[0].mahalla_id is None
    async with session_factory() as session:
        assert await session.scalar(select(func.count()).select_from(AlertStepTick)) == 1
        ticks = await ticks_for(session, [alert_id, alert_id + 1])
    assert [(t.n, t.step, t.actor) for t in ticks[alert_id]] == [
        (2, {"key": "send-post"}, "disp-a")
    ]
    assert ticks[alert_id + 1] == []

    # The plan changes under the alert: the old tick is kept, no longer counted for step 2.
    await api.put(
        "/api/v1/action-plans/panic",
        json={"steps": [{"key": "send-post"}, {"text": "Check the CCTV"}]},
        headers=bearer(city.admin),
    )
    plan = (await _detail(api, alert_id, city.dispatcher))["plan"]
    assert [(s["text"] or s["key"], s["ticked_by"]) for s in plan["steps"]] == [
        ("send-post", None),
        ("Check the CCTV", None),
    ]
    assert [(t["n"], t["key"], t["by"]) for t in plan["earlier_ticks"]] == [
        (2, "send-post", "disp-a")
    ]
    # Ticking the new step 2 is a new record.
    new_tick = await api.post(step_2, headers=bearer(city.dispatcher_2))
    assert new_tick.json()["text"] == "Check the CCTV" and new_tick.json()["new"] is True


async def test_a_silent_alert_refuses_the_steps_that_call_the_site(
    api: AppClient, session_factory: SessionFactory
) -> None:
    city = await create_city(session_factory)
    alert_id = await new_alert(session_factory, city, silent=True)
    refused = await api.post(f"/api/v1/alerts/{alert_id}/steps/1", headers=bearer(city.dispatcher))
    assert refused.status_code == 409 and refused.json()["code"] == "step_not_for_silent"
    plan = (await _detail(api, alert_id, city.dispatcher))["plan"]
    assert [(s["key"], s["skipped"]) for s in plan["steps"]] == [
        ("call-site", True),
        ("send-post", False),
        ("inform-duty-officer", False),
    ]
    sent = await api.post(f"/api/v1/alerts/{alert_id}/steps/2", headers=bearer(city.dispatcher))
    assert sent.status_code == 200


async def test_a_post_reads_its_alert_without_the_consoles_workflow(
    api: AppClient, session_factory: SessionFactory
) -> None:
    city = await create_city(session_factory)
    alert_id = await new_alert(session_factory, city, state="accepted", post_id=city.post_id)
    await api.post(
        f"/api/v1/alerts/{alert_id}/notes",
        json={"text": "neighbour's name"},
        headers=bearer(city.dispatcher),
    )
    await api.post(f"/api/v1/alerts/{alert_id}/steps/2", headers=bearer(city.dispatcher))
    as_crew = await _detail(api, alert_id, city.crew)
    assert as_crew["post"] == "P-7"
    assert {"notes", "acknowledgements", "plan"}.isdisjoint(as_crew)
    assert "neighbour" not in str(as_crew)

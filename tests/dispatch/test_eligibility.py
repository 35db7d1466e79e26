"""Why a post is or is not eligible for an alert (DESIGN §4): ``eligibility.judge``, the
``GET /api/v1/alerts/{id}/eligibility`` list built on it, and the dispatcher's agreement with it
(the post the dispatcher offers an alert to is the first eligible post of the list).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from alertnet.db import unit_of_work
from alertnet.dispatch import actions
from alertnet.dispatch.eligibility import (
    Holding,
    PostFacts,
    Reason,
    Target,
    explain,
    judge,
)
from alertnet.dispatch.policy import DEFAULT_POLICY
from alertnet.models import Alert, Offer, Post, utcnow
from tests.auth.helpers import bearer, create_account
from tests.support.asgi import AppClient
from tests.support.factories import (
    create_alert,
    create_device,
    create_mahalla,
    create_offer,
    create_post,
)

from .helpers import SessionFactory, at, dispatcher, make_posts, offered_to, point, press

# --- the rule itself --------------------------------------------------------------------------

HERE = Target(7, *point(0, 0), drill=False)
DRILL_HERE = Target(8, *point(0, 0), drill=True)


def _post(status: str = "available", *, east_m: float = 500, age_s: float = 10) -> Post:
    lat, lon = point(0, east_m)
    return Post(id=1, callsign="P-1", status=status, lat=lat, lon=lon, location_at=at(-age_s))


def _judge(facts: PostFacts, target: Target = HERE) -> tuple[Reason, Any]:
    verdict = judge(facts, target, at(0), DEFAULT_POLICY)
    return verdict.reason, verdict


def test_an_available_fresh_near_post_is_eligible() -> None:
    reason, verdict = _judge(PostFacts(_post()))
    assert reason is Reason.ELIGIBLE and verdict.eligible
    assert verdict.distance_m == pytest.approx(500, rel=0.01)


@pytest.mark.parametrize(
    ("facts", "reason"),
    [
        (PostFacts(_post("off_duty")), Reason.OFF_DUTY),
        (PostFacts(_post("busy")), Reason.BUSY),
        (PostFacts(_post("busy"), held=Holding(3, drill=False)), Reason.HOLDS_ALERT),
        (PostFacts(_post("busy"), held=Holding(7, drill=False)), Reason.HOLDS_THIS),
        (PostFacts(_post(), pending=Holding(3, drill=False)), Reason.OFFERED_OTHER),
        (PostFacts(_post(), pending=Holding(7, drill=False)), Reason.OFFERED_THIS),
        (PostFacts(_post(age_s=301)), Reason.LOCATION_STALE),
        (PostFacts(_post(east_m=10_100)), Reason.TOO_FAR),
        (PostFacts(_post(), declined_at=at(-599)), Reason.DECLINE_PAUSE),
        (PostFacts(_post(), expired_at=at(-119)), Reason.EXPIRY_PAUSE),
    ],
)
def test_what_keeps_a_post_from_a_real_alert(facts: PostFacts, reason: Reason) -> None:
    got, verdict = _judge(facts)
    assert got is reason and not verdict.eligible


def test_pauses_end_on_time_and_say_when() -> None:
    declined = PostFacts(_post(), declined_at=at(-60))
    assert _judge(declined)[1].until == at(540)
    assert _judge(PostFacts(_post(), declined_at=at(-600)))[0] is Reason.ELIGIBLE
    expired = PostFacts(_post(), expired_at=at(-30))
    assert _judge(expired)[1].until == at(90)
    assert _judge(PostFacts(_post(), expired_at=at(-120)))[0] is Reason.ELIGIBLE
    stale = _judge(PostFacts(_post(age_s=400)))[1]
    assert stale.until == at(-400)  # when the position was taken


def test_a_drill_held_or_offered_gives_way_to_a_real_alert_only() -> None:
    for facts in (
        PostFacts(_post("busy"), held=Holding(3, drill=True)),
        PostFacts(_post("busy", east_m=200), held=Holding(3, drill=True)),
        PostFacts(_post(), pending=Holding(3, drill=True)),
    ):
        reason, verdict = _judge(facts)
        assert reason is Reason.HOLDS_DRILL and verdict.eligible
        assert verdict.other_alert_id == 3
        drill_reason, _ = _judge(facts, DRILL_HERE)
        assert drill_reason in (Reason.HOLDS_ALERT, Reason.OFFERED_OTHER)
    # A drill that gives way still has to be within reach and not paused.
    far = PostFacts(_post("busy", east_m=12_000), held=Holding(3, drill=True))
    assert _judge(far)[0] is Reason.TOO_FAR


def test_off_duty_comes_before_everything_else() -> None:
    facts = PostFacts(_post("off_duty", age_s=999, east_m=20_000), declined_at=at(-1))
    assert _judge(facts)[0] is Reason.OFF_DUTY


# --- the list the console shows ----------------------------------------------------------------


async def _city(session_factory: SessionFactory) -> dict[str, Any]:
    """One accepted panic (held by HOLDER) and a post in every situation around it.

    Nothing waits and no offer falls due: the app's dispatcher, running, changes nothing.
    """
    now = utcnow()
    hour = timedelta(hours=1)

    def at_m(north_m: float, east_m: float) -> dict[str, float]:
        lat, lon = point(north_m, east_m)
        return {"lat": lat, "lon": lon}

    async with unit_of_work(session_factory) as session:
        chorsu = await create_mahalla(session, name="Chorsu")
        device = await create_device(session, mahalla_id=chorsu.id, **at_m(0, 0))
        posts = {
            "HOLDER": await create_post(session, "HOLDER", status="busy", **at_m(0, 50)),
            "NEAR": await create_post(session, "NEAR", **at_m(0, 300)),
            "DRILLER": await create_post(session, "DRILLER", status="busy", **at_m(0, 200)),
            "HOME": await create_post(session, "HOME", status="off_duty", **at_m(0, 100)),
            "STALE": await create_post(
                session, "STALE", location_at=now - timedelta(seconds=400), **at_m(0, 400)
            ),
            "FARAWAY": await create_post(session, "FARAWAY", **at_m(15_000, 0)),
            "DECLINER": await create_post(session, "DECLINER", **at_m(0, 600)),
            "SLEEPY": await create_post(session, "SLEEPY", **at_m(0, 700)),
            "OFFERED": await create_post(session, "OFFERED", **at_m(0, 800)),
            "NOWHERE": await create_post(session, "NOWHERE", lat=None, lon=None),
        }
        alert = await create_alert(
            session, device, category="panic", state="accepted", post_id=posts["HOLDER"].id
        )
        drill = await create_alert(
            session,
            await create_device(session, **at_m(0, 210)),
            category="intrusion",
            state="accepted",
            drill=True,
            post_id=posts["DRILLER"].id,
        )
        other = await create_alert(
            session, await create_device(session, **at_m(0, 900)), state="offered"
        )
        await create_offer(session, other, posts["OFFERED"], deadline_at=now + hour)
        declined_at = now - timedelta(seconds=60)
        await create_offer(
            session, alert, posts["DECLINER"], state="declined", decided_at=declined_at
        )
        expired_at = now - timedelta(seconds=30)
        await create_offer(session, alert, posts["SLEEPY"], state="expired", decided_at=expired_at)
        accounts = {
            "dispatcher": await create_account(session, "disp", "dispatcher"),
            "admin": await create_account(session, "root", "admin"),
            "observer": await create_account(session, "obs", "observer", mahalla_name="Chorsu"),
            "post": await create_account(session, "crew", "post", post_callsign="NEAR"),
        }
    return {
        "alert": alert.id,
        "drill": drill.id,
        "other": other.id,
        "accounts": accounts,
        "declined_until": declined_at + timedelta(seconds=600),
        "expired_until": expired_at + timedelta(seconds=120),
    }


async def test_the_eligibility_list_says_why_for_every_post(
    api: AppClient, session_factory: SessionFactory
) -> None:
    city = await _city(session_factory)
    path = f"/api/v1/alerts/{city['alert']}/eligibility"
    response = await api.get(path, headers=bearer(city["accounts"]["dispatcher"]))
    assert response.status_code == 200
    rows = response.json()
    by_callsign = {row["callsign"]: row for row in rows}
    assert {name: row["reason"] for name, row in by_callsign.items()} == {
        "NEAR": "eligible",
        "DRILLER": "holds_drill",
        "HOLDER": "holds_this",
        "HOME": "off_duty",
        "STALE": "location_stale",
        "FARAWAY": "too_far",
        "DECLINER": "decline_pause",
        "SLEEPY": "expiry_pause",
        "OFFERED": "offered_other",
        "NOWHERE": "no_location",
    }
    # Eligible first, nearest first; then the others by distance, the unplaced last.
    assert [row["callsign"] for row in rows[:2]] == ["DRILLER", "NEAR"]
    assert all(row["eligible"] for row in rows[:2])
    assert not any(row["eligible"] for row in rows[2:])
    assert rows[-1]["callsign"] == "NOWHERE" and rows[-1]["distance_m"] is None
    assert by_callsign["DRILLER"]["other_alert_id"] == city["drill"]
    assert by_callsign["OFFERED"]["other_alert_id"] == city["other"]
    assert by_callsign["FARAWAY"]["distance_m"] == pytest.approx(15_000, rel=0.01)
    assert by_callsign["DECLINER"]["until"] == city["declined_until"].isoformat()
    assert by_callsign["SLEEPY"]["until"] == city["expired_until"].isoformat()
    assert by_callsign["STALE"]["location_fresh"] is False
    assert by_callsign["NEAR"]["status"] == "available" and by_callsign["NEAR"]["lat"] is not None

    # The same verdicts in the assign drawer's list (posts on duty only).
    candidates = (
        await api.get(
            f"/api/v1/alerts/{city['alert']}/candidates",
            headers=bearer(city["accounts"]["admin"]),
        )
    ).json()
    assert [row["callsign"] for row in candidates] == [
        row["callsign"] for row in rows if row["status"] != "off_duty"
    ]
    assert all(row["reason"] == by_callsign[row["callsign"]]["reason"] for row in candidates)


async def test_only_dispatchers_and_admins_read_the_eligibility_list(
    api: AppClient, session_factory: SessionFactory
) -> None:
    city = await _city(session_factory)
    path = f"/api/v1/alerts/{city['alert']}/eligibility"
    assert (await api.get(path)).status_code == 401
    for role in ("observer", "post"):
        refused = await api.get(path, headers=bearer(city["accounts"][role]))
        assert refused.status_code == 403, role
    assert (await api.get(path, headers=bearer(city["accounts"]["admin"]))).status_code == 200
    missing = await api.get(
        "/api/v1/alerts/999999/eligibility", headers=bearer(city["accounts"]["dispatcher"])
    )
    assert missing.status_code == 404


async def test_a_drill_is_kept_off_a_post_owed_a_real_alert(
    session_factory: SessionFactory,
) -> None:
    await make_posts(session_factory, ("NEAR", 0, 100))
    real_id = await press(session_factory, category="panic", north_m=15_000)
    drill_id = await press(session_factory, category="fire", drill=True)
    async with unit_of_work(session_factory) as session:
        real = await session.get(Alert, real_id)
        assert real is not None
        real.state = "escalated"
        real.lat, real.lon = point(0, 5_000)  # within NEAR's reach after all
    async with session_factory() as session:
        drill = await session.get(Alert, drill_id)
        assert drill is not None
        rows = await explain(session, drill, at(0), DEFAULT_POLICY)
    assert [(row["callsign"], row["reason"], row["eligible"]) for row in rows] == [
        ("NEAR", "kept_for_real", False)
    ]


# --- the dispatcher follows the list ------------------------------------------------------------


@pytest.mark.parametrize("drill", [False, True], ids=["real", "drill"])
async def test_the_dispatcher_offers_the_first_eligible_post_of_the_list(
    session_factory: SessionFactory, drill: bool
) -> None:
    """Posts in several situations; the engine's choice is the list's first eligible post."""
    posts = await make_posts(
        session_factory,
        ("CLOSEST", 0, 50),
        ("SECOND", 0, 400),
        ("THIRD", 0, 900),
        ("FAR", 0, 11_000),
    )
    engine = dispatcher(session_factory)
    held = await press(session_factory, category="fire", north_m=20)
    await engine.step(now=at(0))
    async with unit_of_work(session_factory) as session:
        offer = (await session.execute(select(Offer).where(Offer.alert_id == held))).scalar_one()
        await actions.accept(session, offer.id, posts["CLOSEST"], "crew", now=at(1))
    alert_id = await press(session_factory, category="panic", drill=drill, opened_at=at(2))
    async with unit_of_work(session_factory) as session:
        alert = await session.get(Alert, alert_id)
        second = await session.get(Post, posts["SECOND"])
        assert alert is not None and second is not None
        await create_offer(
            session, alert, second, state="declined", offered_at=at(1), decided_at=at(1)
        )
    async with session_factory() as session:
        alert = await session.get(Alert, alert_id)
        assert alert is not None
        rows = await explain(session, alert, at(2), DEFAULT_POLICY)
    reasons = {row["callsign"]: row["reason"] for row in rows}
    assert reasons == {
        "CLOSEST": "holds_alert",
        "SECOND": "decline_pause",
        "THIRD": "eligible",
        "FAR": "too_far",
    }
    await engine.step(now=at(2))
    assert await offered_to(session_factory, alert_id) == rows[0]["callsign"] == "THIRD"

"""The drill report's figures against crafted histories (DESIGN §12).

Rows are written directly with chosen times, so each figure has one right value: per alert the
time to offer, accept, on scene and close (none for a cancelled alert, none for a stage not
reached); per post its answers by how each offer ended (a withdrawn offer is no answer) and its
misses (the offers it let expire); the drill's counts and percentiles. An observer reads the
same report without the names of homes' and businesses' devices (DESIGN §10).
"""

from __future__ import annotations

from typing import Any

from alertnet.auth.scope import Scope
from alertnet.db import unit_of_work
from alertnet.drills.report import drill_report, list_drills
from alertnet.models import Device, Drill, DrillEvent, Mahalla, Role
from tests.dispatch.helpers import T0, SessionFactory, at
from tests.support.factories import create_alert, create_event, create_offer, create_post

from .helpers import build_town

DISPATCHER = Scope(role=Role.DISPATCHER, user_id=1, username="disp")

DEVICES = (
    ("bazaar", "panic_button", "public", 0, 100),
    ("school", "panic_button", "public", 200, 0),
    ("shop", "intrusion_alarm", "business", -200, 0),
    ("clinic", "medical_button", "public", 0, -300),
    ("flat", "intrusion_alarm", "household", 300, 300),
)


async def _crafted(session_factory: SessionFactory) -> tuple[int, dict[str, Any]]:
    """A drill of five devices: three alerts with crafted histories, one skipped, one pending."""
    town = await build_town(session_factory, DEVICES)
    async with unit_of_work(session_factory) as session:
        drill = Drill(
            mahalla_id=town.mahalla_id,
            started_by="disp",
            started_at=T0,
            device_count=5,
            spread_s=300,
            state="running",
        )
        session.add(drill)
        await session.flush()
        p1 = await create_post(session, callsign="P-1")
        p2 = await create_post(session, callsign="P-2")
        devices = {name: await session.get_one(Device, town.devices[name]) for name in town.devices}
        alerts = {}
        # bazaar: offered after 2 s to P-1, who missed it; P-2 accepted at 40 s, arrived at
        # 160 s, closed at 400 s.
        alerts["bazaar"] = await create_alert(
            session,
            devices["bazaar"],
            drill=True,
            drill_id=drill.id,
            opened_at=at(0),
            state="closed",
            first_offered_at=at(2),
            accepted_at=at(40),
            on_scene_at=at(160),
            closed_at=at(400),
            outcome="other",
            post_id=p2.id,
        )
        await create_offer(
            session, alerts["bazaar"], p1, "expired", offered_at=at(2), decided_at=at(32)
        )
        await create_offer(
            session, alerts["bazaar"], p2, "accepted", offered_at=at(32), decided_at=at(40)
        )
        # school: P-2 declined after 5 s, then P-1 accepted in 10 s and is on the way.
        alerts["school"] = await create_alert(
            session,
            devices["school"],
            drill=True,
            drill_id=drill.id,
            opened_at=at(75),
            state="accepted",
            first_offered_at=at(76),
            accepted_at=at(91),
            post_id=p1.id,
        )
        await create_offer(
            session, alerts["school"], p2, "declined", offered_at=at(76), decided_at=at(81)
        )
        await create_offer(
            session, alerts["school"], p1, "accepted", offered_at=at(81), decided_at=at(91)
        )
        # shop: offered to P-1, withdrawn by a dispatcher, cancelled: no acceptance, no close.
        alerts["shop"] = await create_alert(
            session,
            devices["shop"],
            category="intrusion",
            drill=True,
            drill_id=drill.id,
            opened_at=at(150),
            state="cancelled",
            first_offered_at=at(154),
            closed_at=at(170),
        )
        await create_offer(
            session, alerts["shop"], p1, "withdrawn", offered_at=at(154), decided_at=at(160)
        )
        rows = []
        for n, name in enumerate(("bazaar", "school", "shop"), start=1):
            event = await create_event(
                session,
                devices[name],
                None,
                dedup_key=f"drill:{drill.id}:{n}",
                drill=True,
                received_at=alerts[name].opened_at,
                alert_id=alerts[name].id,
                reception_count=0,
                first_transport="drill",
            )
            rows.append(
                DrillEvent(
                    drill_id=drill.id,
                    n=n,
                    device_id=devices[name].id,
                    due_at=at(75 * (n - 1)),
                    state="created",
                    event_id=event.id,
                    done_at=alerts[name].opened_at,
                )
            )
        rows.append(
            DrillEvent(
                drill_id=drill.id,
                n=4,
                device_id=devices["clinic"].id,
                due_at=at(225),
                state="skipped",
                done_at=at(226),
                note="the device had a real alert open",
            )
        )
        rows.append(
            DrillEvent(drill_id=drill.id, n=5, device_id=devices["flat"].id, due_at=at(300))
        )
        session.add_all(rows)
        return drill.id, {name: alert.id for name, alert in alerts.items()} | {"p1": p1.id}


async def _report(session_factory: SessionFactory, drill_id: int, scope: Scope) -> dict[str, Any]:
    async with session_factory() as session:
        drill = await session.get_one(Drill, drill_id)
        mahalla = await session.get_one(Mahalla, drill.mahalla_id)
        return await drill_report(session, drill, mahalla.name, scope)


async def test_each_alert_is_timed_from_its_opening(session_factory: SessionFactory) -> None:
    drill_id, ids = await _crafted(session_factory)
    report = await _report(session_factory, drill_id, DISPATCHER)
    rows = {row["n"]: row for row in report["alerts"]}
    times = ("to_offer_s", "to_accept_s", "to_on_scene_s", "to_close_s")
    assert [rows[1][stage] for stage in times] == [2.0, 40.0, 160.0, 400.0]
    assert [rows[2][stage] for stage in times] == [1.0, 16.0, None, None]
    assert [rows[3][stage] for stage in times] == [4.0, None, None, None]  # cancelled
    assert [rows[4][stage] for stage in times] == [None] * 4
    assert (rows[1]["alert_id"], rows[1]["post"], rows[1]["offers"], rows[1]["outcome"]) == (
        ids["bazaar"],
        "P-2",
        2,
        "other",
    )
    assert (rows[3]["category"], rows[3]["alert_state"], rows[3]["post"]) == (
        "intrusion",
        "cancelled",
        None,
    )
    assert (rows[4]["state"], rows[4]["note"], rows[4]["alert_id"]) == (
        "skipped",
        "the device had a real alert open",
        None,
    )
    assert (rows[5]["state"], rows[5]["due_at"]) == ("pending", at(300).isoformat())

    summary = report["summary"]
    assert {key: summary[key] for key in ("events", "created", "skipped", "pending")} == {
        "events": 5,
        "created": 3,
        "skipped": 1,
        "pending": 1,
    }
    assert (summary["alerts"], summary["never_accepted"]) == (3, 1)
    assert summary["alert_states"] == {"accepted": 1, "cancelled": 1, "closed": 1}
    assert summary["to_offer_s"] == {"count": 3, "p50": 2.0, "p80": 4.0, "p95": 4.0, "p99": 4.0}
    assert summary["to_accept_s"] == {
        "count": 2,
        "p50": 16.0,
        "p80": 40.0,
        "p95": 40.0,
        "p99": 40.0,
    }
    assert summary["to_close_s"]["count"] == 1


async def test_each_post_has_its_answers_and_misses(session_factory: SessionFactory) -> None:
    drill_id, ids = await _crafted(session_factory)
    report = await _report(session_factory, drill_id, DISPATCHER)
    p1, p2 = report["posts"]  # by callsign
    assert {
        k: p1[k] for k in ("post", "offers", "accepted", "declined", "expired", "withdrawn")
    } == {
        "post": "P-1",
        "offers": 3,
        "accepted": 1,
        "declined": 0,
        "expired": 1,
        "withdrawn": 1,
    }
    assert p1["misses"] == [
        {
            "alert_id": ids["bazaar"],
            "n": 1,
            "offered_at": at(2).isoformat(),
            "deadline_at": at(32).isoformat(),
        }
    ]
    # Answer times: accepting the school in 10 s (the miss and the withdrawal are no answers).
    assert (p1["answer_s"]["count"], p1["answer_s"]["p50"]) == (1, 10.0)
    assert {k: p2[k] for k in ("post", "offers", "accepted", "declined", "expired")} == {
        "post": "P-2",
        "offers": 2,
        "accepted": 1,
        "declined": 1,
        "expired": 0,
    }
    assert p2["misses"] == []
    assert p2["answer_s"] == {"count": 2, "p50": 5.0, "p80": 8.0, "p95": 8.0, "p99": 8.0}


async def test_observers_read_their_mahallas_drills_without_private_device_names(
    session_factory: SessionFactory,
) -> None:
    drill_id, _ids = await _crafted(session_factory)
    async with session_factory() as session:
        drill = await session.get_one(Drill, drill_id)
    team = Scope(role=Role.OBSERVER, user_id=2, username="obs", mahalla_id=drill.mahalla_id)
    report = await _report(session_factory, drill_id, team)
    names = {row["n"]: row["device_name"] for row in report["alerts"]}
    assert names == {1: "bazaar", 2: "school", 3: "", 4: "clinic", 5: ""}
    # No post named: per-post figures are the console's (as ``ensure_reads_statistics``).
    assert report["posts"] is None and all(row["post"] is None for row in report["alerts"])
    console = await _report(session_factory, drill_id, DISPATCHER)
    assert console["posts"] and any(row["post"] for row in console["alerts"])

    async with session_factory() as session:
        own = await list_drills(session, team)
        other_team = Scope(
            role=Role.OBSERVER, user_id=3, username="obs2", mahalla_id=drill.mahalla_id + 1
        )
        assert await list_drills(session, other_team) == []
        everything = await list_drills(session, DISPATCHER)
    assert [row["id"] for row in own] == [row["id"] for row in everything] == [drill_id]
    assert own[0]["events"] == {"pending": 1, "created": 3, "skipped": 1}

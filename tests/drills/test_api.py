"""``/api/v1/drills`` through the real app (DESIGN §12): start, read, stop, and who may.

The app's own drill runner creates the events once a drill is started (the runtime runs it
under its supervisor). Refusals are 4xx with a stable ``code``; a post reads no drill, an
observer its own mahalla's only (the one ``Scope``), and only dispatchers and admins start or
stop one.
"""

from __future__ import annotations

from typing import Any

import pytest

from alertnet.db import unit_of_work
from tests.auth.helpers import Account, bearer, create_account, fast_password_hashing
from tests.dispatch.helpers import SessionFactory
from tests.support.asgi import AppClient
from tests.support.factories import create_device, create_post
from tests.support.polling import eventually

from .helpers import Town, build_town

__all__ = ["fast_password_hashing"]
pytestmark = pytest.mark.usefixtures("fast_password_hashing")


async def _accounts(session_factory: SessionFactory, town: Town) -> dict[str, Account]:
    async with unit_of_work(session_factory) as session:
        await create_post(session, callsign="P-1")
        return {
            "dispatcher": await create_account(session, "disp", "dispatcher"),
            "admin": await create_account(session, "root", "admin"),
            "post": await create_account(session, "crew1", "post", post_callsign="P-1"),
            "team": await create_account(session, "obs", "observer", mahalla_name="Chorsu"),
            "other_team": await create_account(
                session, "obs2", "observer", mahalla_name="Bodomzor"
            ),
        }


async def _post(api: AppClient, who: Account, body: dict[str, Any]) -> Any:
    return await api.post("/api/v1/drills", json=body, headers=bearer(who))


async def test_a_dispatcher_starts_a_drill_and_its_events_are_created(
    api: AppClient, session_factory: SessionFactory
) -> None:
    town = await build_town(session_factory)
    who = await _accounts(session_factory, town)
    started = await _post(api, who["dispatcher"], {"mahalla": "Chorsu", "devices": 2})
    assert started.status_code == 201, started.text
    drill = started.json()
    assert (drill["mahalla"], drill["device_count"], drill["spread_s"]) == ("Chorsu", 2, 0)
    assert drill["started_by"] == "disp" and drill["state"] in ("running", "complete")
    assert len(drill["alerts"]) == 2

    path = f"/api/v1/drills/{drill['id']}"
    done = await eventually(
        lambda: api.get(path, headers=bearer(who["dispatcher"])),
        lambda response: response.json()["state"] == "complete",
        awaiting="the drill's events",
    )
    report = done.json()
    assert [row["state"] for row in report["alerts"]] == ["created", "created"]
    assert all(row["alert_id"] is not None for row in report["alerts"])
    assert {row["device_eui"] for row in report["alerts"]} <= set(town.euis.values())
    # The alerts are drills, in the console's list as any alert.
    alerts = (await api.get("/api/v1/alerts?drill=true", headers=bearer(who["dispatcher"]))).json()
    assert {a["id"] for a in alerts} == {row["alert_id"] for row in report["alerts"]}
    assert all(a["drill"] for a in alerts)

    # By id and by name alike; an admin may too. Devices with an open alert are not chosen.
    again = await _post(api, who["admin"], {"mahalla": town.mahalla_id, "devices": 1})
    assert again.status_code == 201, again.text
    [row] = again.json()["alerts"]
    busy = {r["device_eui"] for r in report["alerts"]}
    assert row["device_eui"] not in busy
    none_left = await _post(api, who["dispatcher"], {"mahalla": "Chorsu", "devices": 1})
    assert (none_left.status_code, none_left.json()["code"]) == (409, "drill_not_enough_devices")

    listed = (await api.get("/api/v1/drills", headers=bearer(who["dispatcher"]))).json()
    assert [d["id"] for d in listed] == [again.json()["id"], drill["id"]]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"mahalla": "Nowhere", "devices": 1}, 422, "unknown_mahalla"),
        ({"mahalla": 9999, "devices": 1}, 422, "unknown_mahalla"),
        ({"mahalla": "Chorsu", "devices": 0}, 422, "invalid_input"),
        ({"mahalla": "Chorsu", "devices": 51}, 422, "invalid_input"),
        ({"mahalla": "Chorsu", "devices": True}, 422, "invalid_input"),
        ({"mahalla": "Chorsu", "devices": []}, 422, "invalid_input"),
        ({"mahalla": "Chorsu", "devices": ["not-an-eui"]}, 422, "invalid_input"),
        ({"mahalla": "Chorsu", "devices": 1, "spread_s": -1}, 422, "invalid_input"),
        ({"mahalla": "Chorsu", "devices": 1, "spread_s": 28_801}, 422, "invalid_input"),
        ({"mahalla": "Chorsu", "devices": 1, "surprise": 1}, 422, "invalid_input"),
        ({"mahalla": "Chorsu", "devices": 4}, 409, "drill_not_enough_devices"),
        ({"mahalla": "Chorsu", "devices": ["ffffffffffffffff"]}, 422, "drill_device_unknown"),
        ({"mahalla": "Chorsu", "devices": ["@elsewhere"]}, 422, "drill_device_elsewhere"),
        ({"mahalla": "Chorsu", "devices": ["@disabled"]}, 409, "drill_device_unavailable"),
        ({"mahalla": "Chorsu", "devices": ["@bazaar", "@bazaar"]}, 422, "invalid_input"),
    ],
)
async def test_a_drill_that_cannot_be_started_is_refused_with_a_code(
    api: AppClient, session_factory: SessionFactory, body: dict[str, Any], status: int, code: str
) -> None:
    town = await build_town(session_factory)
    who = await _accounts(session_factory, town)
    async with unit_of_work(session_factory) as session:
        elsewhere = await create_device(session, mahalla_id=town.other_mahalla_id)
        disabled = await create_device(session, mahalla_id=town.mahalla_id, status="disabled")
    euis = {"@elsewhere": elsewhere.eui, "@disabled": disabled.eui, "@bazaar": town.euis["bazaar"]}
    if isinstance(body["devices"], list):
        body = body | {"devices": [euis.get(eui, eui) for eui in body["devices"]]}
    refused = await _post(api, who["dispatcher"], body)
    assert (refused.status_code, refused.json()["code"]) == (status, code), refused.text
    assert (await api.get("/api/v1/drills", headers=bearer(who["dispatcher"]))).json() == []


async def test_who_may_start_read_and_stop_drills(
    api: AppClient, session_factory: SessionFactory
) -> None:
    town = await build_town(session_factory)
    who = await _accounts(session_factory, town)
    body = {"mahalla": "Chorsu", "devices": 1, "spread_s": 3600}
    for role in ("post", "team"):
        refused = await _post(api, who[role], body)
        assert (refused.status_code, refused.json()["code"]) == (403, "forbidden")
    assert (await api.post("/api/v1/drills", json=body)).status_code == 401

    started = await _post(api, who["dispatcher"], {**body, "devices": 2})
    assert started.status_code == 201, started.text
    drill_id = started.json()["id"]
    path = f"/api/v1/drills/{drill_id}"
    # The mahalla team reads its own drill; another mahalla's team and a post read none.
    team = await api.get(path, headers=bearer(who["team"]))
    assert team.status_code == 200 and team.json()["id"] == drill_id
    assert [
        d["id"] for d in (await api.get("/api/v1/drills", headers=bearer(who["team"]))).json()
    ] == [drill_id]
    assert (await api.get("/api/v1/drills", headers=bearer(who["other_team"]))).json() == []
    assert (await api.get(path, headers=bearer(who["other_team"]))).status_code == 403
    assert (await api.get(path, headers=bearer(who["post"]))).status_code == 403
    assert (await api.get("/api/v1/drills", headers=bearer(who["post"]))).status_code == 403
    missing = await api.get("/api/v1/drills/999999", headers=bearer(who["dispatcher"]))
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")

    # Stopping: not for the team; a dispatcher stops it once, the waiting event is skipped.
    await eventually(
        lambda: api.get(path, headers=bearer(who["dispatcher"])),
        lambda response: response.json()["alerts"][0]["state"] == "created",
        awaiting="the drill's first event",
    )
    stop = f"{path}/stop"
    assert (await api.post(stop, headers=bearer(who["team"]))).status_code == 403
    stopped = await api.post(stop, headers=bearer(who["dispatcher"]))
    assert stopped.status_code == 200, stopped.text
    assert stopped.json()["state"] == "stopped"
    assert [row["state"] for row in stopped.json()["alerts"]] == ["created", "skipped"]
    again = await api.post(stop, headers=bearer(who["dispatcher"]))
    assert (again.status_code, again.json()["code"]) == (409, "drill_not_running")

"""Notes, acknowledgements and ticks on the live stream (real uvicorn, real WebSockets), on
SQLite and PostgreSQL: every console hears each at once; the mahalla team hears only that the
alert was acknowledged (its ``alert.updated``), never a note or a tick.
"""

from __future__ import annotations

import httpx

from tests.auth.helpers import bearer, build_app, running_server
from tests.realtime.helpers import stream
from tests.workflow.helpers import SessionFactory, create_city, new_alert


async def test_every_console_hears_a_note_and_the_mahalla_team_does_not(
    db_url: str, session_factory: SessionFactory
) -> None:
    city = await create_city(session_factory)
    alert_id = await new_alert(session_factory, city)
    app = build_app(db_url, hub_tuning={"heartbeat_s": 0.5})
    async with (
        running_server(app) as server,
        httpx.AsyncClient(base_url=server.http_url) as http,
        stream(server.ws_url, token=city.dispatcher.token) as console_a,
        stream(server.ws_url, token=city.dispatcher_2.token) as console_b,
        stream(server.ws_url, token=city.observer.token) as mahalla_team,
    ):
        for client in (console_a, console_b, mahalla_team):
            await client.ready()
        noted = await http.post(
            f"/api/v1/alerts/{alert_id}/notes",
            json={"text": "Caller hiding in the back room"},
            headers=bearer(city.dispatcher),
        )
        assert noted.status_code == 201, noted.text
        ticked = await http.post(
            f"/api/v1/alerts/{alert_id}/steps/2", headers=bearer(city.dispatcher_2)
        )
        assert ticked.status_code == 200, ticked.text
        acked = await http.post(
            f"/api/v1/alerts/{alert_id}/acknowledge", headers=bearer(city.dispatcher_2)
        )
        assert acked.status_code == 200, acked.text

        for console in (console_a, console_b):
            note, step, updated, acknowledge = await console.rows(4)
            assert note["type"] == "alert.workflow" and note["data"]["action"] == "note"
            assert note["data"]["note"]["text"] == "Caller hiding in the back room"
            assert note["data"]["by"] == "disp-a" and note["data"]["alert_id"] == alert_id
            assert step["data"]["action"] == "step" and step["data"]["step"]["n"] == 2
            assert updated["type"] == "alert.updated"
            assert updated["data"]["acknowledged_by"] == "disp-b"
            assert acknowledge["data"] | {"at": None} == {
                "alert_id": alert_id,
                "action": "acknowledge",
                "by": "disp-b",
                "at": None,
            }
        # Rows reach a stream in seq order: the observer's first row is the acknowledgement,
        # so the note and the tick before it never reached it.
        (first,) = await mahalla_team.rows(1)
        assert first["type"] == "alert.updated" and first["data"]["id"] == alert_id
        assert first["data"]["acknowledged_by"] == "disp-b"
        assert await mahalla_team.rows_before_pings() == []

"""An acknowledged trouble alert and a later unknown panel code (DESIGN §9.1: an unknown code
"rings on the console"), through the real API on SQLite and PostgreSQL: the new code takes the
acknowledgement back on the server, so every console rings again, not only the one that
happened to be looking."""

from __future__ import annotations

from alertnet.db import unit_of_work
from tests.auth.helpers import bearer, create_account
from tests.dc09_pipeline.helpers import answer_kind, create_panel, panel_intake, sia
from tests.support.asgi import AppClient
from tests.workflow.helpers import SessionFactory


async def test_a_new_unknown_code_takes_back_the_acknowledgement(
    api: AppClient, session_factory: SessionFactory
) -> None:
    async with unit_of_work(session_factory) as session:
        await create_panel(session)
        dispatcher = await create_account(session, "disp-a", "dispatcher")
    async with panel_intake(session_factory) as (_pipeline, intake):
        assert answer_kind(await intake.on_frame(sia(1, "Nri1/ZZ12"), "p", "tcp")) == "ACK"
        listed = await api.get("/api/v1/alerts", headers=bearer(dispatcher))
        assert listed.status_code == 200, listed.text
        (alert_id,) = [a["id"] for a in listed.json() if a["category"] == "trouble"]
        acked = await api.post(f"/api/v1/alerts/{alert_id}/acknowledge", headers=bearer(dispatcher))
        assert acked.status_code == 200, acked.text
        seen = (await api.get(f"/api/v1/alerts/{alert_id}", headers=bearer(dispatcher))).json()
        assert seen["acknowledged_by"] == "disp-a"

        # A battery trouble on the same alert is not news enough to ring again …
        assert answer_kind(await intake.on_frame(sia(2, "NYT"), "p", "tcp")) == "ACK"
        seen = (await api.get(f"/api/v1/alerts/{alert_id}", headers=bearer(dispatcher))).json()
        assert seen["acknowledged_by"] == "disp-a"
        # … a second unknown code is.
        assert answer_kind(await intake.on_frame(sia(3, "Nri1/QQ7"), "p", "tcp")) == "ACK"
    seen = (await api.get(f"/api/v1/alerts/{alert_id}", headers=bearer(dispatcher))).json()
    assert seen["id"] == alert_id and seen["trouble"] == "unknown_code,low_battery"
    assert (seen["acknowledged_by"], seen["acknowledged_at"]) == (None, None)

"""An alert's full record (``GET /api/v1/alerts/{id}``) as each caller reads it (DESIGN §10,
``Scope.shown_alert_record``), on SQLite and PostgreSQL.

Exists because the record carries more than the alert view: the closing note, the audit trail's
reasons, every offer (other posts' callsigns, distances, decline reasons) and each event's
source details and dedup key (a camera's sub-label and snapshot, a panel's user and account).
The console reads it all; a post its own offers and no reasons; the mahalla team no offers.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.db import unit_of_work
from alertnet.models import Alert, Event
from tests.auth.helpers import Account, bearer
from tests.support.asgi import AppClient
from tests.support.polling import eventually

from .helpers import HOME_EUI, HOME_KEY, build_city, leaked, press

SessionFactory = async_sessionmaker[AsyncSession]
DECLINE = "tyre burst near Karimova's gate"
CANCEL = "son Karimov Aziz called: false alarm"
NOTE = "key with the neighbour, flat 4"
DETAILS = {
    "user": "007",
    "zone": "015",
    "sub_label": "face-Shahnoza",
    "snapshot": "http://cam/1.jpg",
}
DEDUP = "dc09:ACCT-7781:0042"
SECRETS = (DECLINE, CANCEL, NOTE, "face-Shahnoza", "cam/1.jpg", "ACCT-7781")


async def _get(api: AppClient, path: str, who: Account) -> Any:
    answer = await api.get(path, headers=bearer(who))
    assert answer.status_code == 200, (path, who.role, answer.text)
    return answer.json()


def _secrets_in(payload: Any) -> list[str]:
    text = str(payload)
    return [secret for secret in SECRETS if secret in text]


async def test_only_the_console_reads_notes_reasons_other_posts_offers_and_event_details(
    api: AppClient, session_factory: SessionFactory
) -> None:
    city = await build_city(session_factory)
    await press(api.runtime.pipeline, HOME_EUI, HOME_KEY, 1)

    async def offer_of(crew: Account) -> dict[str, Any]:
        me = await eventually(
            lambda: _get(api, "/api/v1/posts/me", crew),
            lambda me: me["offer"] is not None,
            awaiting=f"an offer to {crew.username}",
        )
        return dict(me["offer"])

    first = await offer_of(city.p1)
    alert_id = first["alert_id"]
    declined = await api.post(
        f"/api/v1/offers/{first['id']}/decline", json={"reason": DECLINE}, headers=bearer(city.p1)
    )
    assert declined.status_code == 200, declined.text
    await offer_of(city.p2)
    cancelled = await api.post(
        f"/api/v1/alerts/{alert_id}/cancel",
        json={"reason": CANCEL},
        headers=bearer(city.dispatcher),
    )
    assert cancelled.status_code == 200, cancelled.text
    async with unit_of_work(session_factory) as session:
        await session.execute(update(Alert).where(Alert.id == alert_id).values(note=NOTE))
        await session.execute(
            update(Event).where(Event.alert_id == alert_id).values(details=DETAILS, dedup_key=DEDUP)
        )
    path = f"/api/v1/alerts/{alert_id}"

    full = await _get(api, path, city.dispatcher)
    assert full["note"] == NOTE and CANCEL in [row["reason"] for row in full["audit"]]
    assert [offer["post"] for offer in full["offers"]] == ["P-1", "P-2"]
    assert DECLINE in full["offers"][0]["reason"]
    assert full["events"][0]["details"] == DETAILS and full["events"][0]["dedup_key"] == DEDUP

    team = await _get(api, path, city.observer)
    assert team["offers"] == [] and team["note"] is None
    assert team["audit"] and all(row["reason"] is None for row in team["audit"])
    assert [row["to"] for row in team["audit"]] == [row["to"] for row in full["audit"]]
    (event,) = team["events"]
    assert "details" not in event and "dedup_key" not in event
    assert event["code"] == full["events"][0]["code"] and event["reception_count"] >= 1
    assert _secrets_in(team) == [] and leaked(team) == []

    # Each post: its own offer rows (its own decline reason), nobody else's; no note, no reason.
    for crew, callsign in ((city.p1, "P-1"), (city.p2, "P-2")):
        seen = await _get(api, path, crew)
        assert [offer["post"] for offer in seen["offers"]] == [callsign], callsign
        assert seen["note"] is None and all(row["reason"] is None for row in seen["audit"])
        assert all("details" not in e and "dedup_key" not in e for e in seen["events"])
        assert _secrets_in({**seen, "offers": []}) == [], callsign

"""What the fuzz found, each pinned by one focused test (issue 12: no input gets a 500).

On PostgreSQL each of these was a 500 before its fix: a NUL in a reason or a note (text
columns cannot hold one), a NUL in a query filter, and ids beyond what their column holds
(asyncpg refuses an out-of-range parameter). Now each is a 422 with the error shape, and a
valid request right after still works. Both backends run them.
"""

from __future__ import annotations

from typing import Any, Final

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.db import unit_of_work
from tests.auth.helpers import Account, bearer, create_account
from tests.support.asgi import AppClient
from tests.support.factories import (
    create_alert,
    create_device,
    create_mahalla,
    create_offer,
    create_post,
)

BEYOND_64_BITS: Final = (2**63, 2**64, -(2**63) - 1)
BEYOND_32_BITS: Final = (2**31, -(2**31) - 1, 2**63)


class Desk:
    """A dispatcher, and a post's tablet with an offer pending and an alert accepted."""

    def __init__(self, dispatcher: Account, tablet: Account, ids: dict[str, int]) -> None:
        self.dispatcher = dispatcher
        self.tablet = tablet
        self.ids = ids


async def _desk(session_factory: async_sessionmaker[AsyncSession]) -> Desk:
    async with unit_of_work(session_factory) as session:
        mahalla = await create_mahalla(session, name="Chorsu")
        post = await create_post(session, callsign="P-7")
        dispatcher = await create_account(session, "disp", "dispatcher")
        tablet = await create_account(session, "crew", "post", post_callsign="P-7")
        offered = await create_alert(
            session, await create_device(session, mahalla_id=mahalla.id), state="offered"
        )
        offer = await create_offer(session, offered, post)
        accepted = await create_alert(
            session,
            await create_device(session, mahalla_id=mahalla.id),
            state="accepted",
            post_id=post.id,
        )
        open_alert = await create_alert(session, await create_device(session), state="new")
        ids = {"offer": offer.id, "accepted": accepted.id, "open": open_alert.id}
    return Desk(dispatcher, tablet, ids)


def _assert_refused(response: Any) -> None:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "invalid_input" and body["detail"], body


async def test_nul_in_a_reason_or_a_note_is_refused_not_a_500(
    api: AppClient, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    desk = await _desk(session_factory)
    dispatcher, tablet = bearer(desk.dispatcher), bearer(desk.tablet)
    cancel = f"/api/v1/alerts/{desk.ids['open']}/cancel"
    decline = f"/api/v1/offers/{desk.ids['offer']}/decline"
    close = f"/api/v1/alerts/{desk.ids['accepted']}/close"

    _assert_refused(await api.post(cancel, json={"reason": "test\x00"}, headers=dispatcher))
    _assert_refused(await api.post(decline, json={"reason": "busy\x00"}, headers=tablet))
    _assert_refused(
        await api.post(close, json={"outcome": "other", "note": "a\x00b"}, headers=tablet)
    )

    # Line breaks are fine in a note; each action still works once the text is clean.
    assert (await api.post(cancel, json={"reason": "test"}, headers=dispatcher)).status_code == 200
    assert (await api.post(decline, json={"reason": "busy"}, headers=tablet)).status_code == 200
    closed = await api.post(
        close, json={"outcome": "other", "note": "gate locked\nneighbour called"}, headers=tablet
    )
    assert closed.status_code == 200, closed.text


@pytest.mark.parametrize("number", BEYOND_64_BITS)
async def test_alert_and_offer_ids_beyond_64_bits_are_refused_not_a_500(
    api: AppClient, session_factory: async_sessionmaker[AsyncSession], number: int
) -> None:
    desk = await _desk(session_factory)
    dispatcher, tablet = bearer(desk.dispatcher), bearer(desk.tablet)
    calls = [
        ("GET", f"/api/v1/alerts/{number}", dispatcher, None),
        ("GET", f"/api/v1/alerts/{number}/candidates", dispatcher, None),
        ("POST", f"/api/v1/alerts/{number}/assign", dispatcher, {"post_id": 1}),
        ("POST", f"/api/v1/alerts/{number}/cancel", dispatcher, {"reason": "test"}),
        ("POST", f"/api/v1/offers/{number}/withdraw", dispatcher, None),
        ("POST", f"/api/v1/offers/{number}/accept", tablet, None),
        ("POST", f"/api/v1/offers/{number}/decline", tablet, {"reason": "busy"}),
        ("POST", f"/api/v1/alerts/{number}/arrive", tablet, None),
        ("POST", f"/api/v1/alerts/{number}/close", tablet, {"outcome": "other"}),
    ]
    for method, path, headers, body in calls:
        _assert_refused(await api.request(method, path, json=body, headers=headers))
    # The largest BIGINT is an id like any other: one that does not exist.
    missing = await api.get(f"/api/v1/alerts/{2**63 - 1}", headers=dispatcher)
    assert missing.status_code == 404, missing.text


@pytest.mark.parametrize("number", BEYOND_32_BITS)
async def test_mahalla_and_post_ids_beyond_32_bits_are_refused_not_a_500(
    api: AppClient, session_factory: async_sessionmaker[AsyncSession], number: int
) -> None:
    desk = await _desk(session_factory)
    dispatcher = bearer(desk.dispatcher)
    _assert_refused(await api.get(f"/api/v1/alerts?mahalla_id={number}", headers=dispatcher))
    _assert_refused(await api.get(f"/api/v1/devices?mahalla_id={number}", headers=dispatcher))
    assign = f"/api/v1/alerts/{desk.ids['open']}/assign"
    _assert_refused(await api.post(assign, json={"post_id": number}, headers=dispatcher))


async def test_nul_in_a_category_filter_is_refused_not_a_500(
    api: AppClient, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    desk = await _desk(session_factory)
    dispatcher = bearer(desk.dispatcher)
    _assert_refused(await api.get("/api/v1/alerts?category=panic%00", headers=dispatcher))
    listed = await api.get("/api/v1/alerts?category=panic", headers=dispatcher)
    assert listed.status_code == 200

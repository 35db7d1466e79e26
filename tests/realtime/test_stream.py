"""``/api/v1/stream`` over real sockets (uvicorn + the ``websockets`` client), on both databases.

Reconnecting with ``after`` gets exactly what was missed, in order, nothing twice; each role sees
its own rows; credentials are checked at the handshake and again at every heartbeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.db import unit_of_work
from alertnet.models import ApiToken, User, utcnow
from alertnet.realtime.api import RedactQueryTokens, redact_query_tokens_in_server_logs
from alertnet.realtime.hub import Hub
from tests.auth.helpers import PASSWORD, Cast, Server, build_app, create_cast, running_server
from tests.realtime.helpers import message, stream, write_feed

SessionFactory = async_sessionmaker[AsyncSession]


@dataclass
class Live:
    server: Server
    cast: Cast
    session_factory: SessionFactory


@pytest_asyncio.fixture
async def live(db_url: str, session_factory: SessionFactory) -> AsyncIterator[Live]:
    cast = await create_cast(session_factory)
    # A long safety poll: prompt delivery below can only come from the wake-ups.
    app = build_app(db_url, hub_tuning={"safety_poll_s": 30.0, "heartbeat_s": 0.5})
    async with running_server(app) as server:
        yield Live(server, cast, session_factory)


def seqs(rows: list[dict[str, object]]) -> list[object]:
    return [row["seq"] for row in rows]


async def test_a_reconnect_with_after_gets_exactly_what_it_missed(live: Live) -> None:
    token = live.cast.dispatcher.token
    async with stream(live.server.ws_url, token=token) as first:
        assert await first.ready() == {"after": 0, "resync": False}
        await write_feed(live.session_factory, message("alert.opened", n=1))
        (seen,) = await first.rows(1)
        assert seen == {"seq": 1, "type": "alert.opened", "data": {"n": 1}}
    last_seq = seen["seq"]

    # Offline: three alerts change.
    for n in (2, 3, 4):
        await write_feed(live.session_factory, message("alert.updated", n=n))

    async with stream(live.server.ws_url, token=token, after=last_seq) as again:
        assert await again.ready() == {"after": 1, "resync": False}
        missed = await again.rows(3)
        assert missed == [
            {"seq": 2, "type": "alert.updated", "data": {"n": 2}},
            {"seq": 3, "type": "alert.updated", "data": {"n": 3}},
            {"seq": 4, "type": "alert.updated", "data": {"n": 4}},
        ]
        # Live again: the next change arrives promptly, and nothing comes twice.
        await write_feed(live.session_factory, message("offer.created", n=5))
        assert seqs(await again.rows(1, timeout_s=2)) == [5]
        assert await again.rows_before_pings() == []
        assert again.pings >= 2


async def test_without_after_a_stream_starts_at_the_newest_row(live: Live) -> None:
    await write_feed(live.session_factory, message(n=1), message(n=2))
    async with stream(live.server.ws_url, token=live.cast.admin.token) as client:
        assert await client.ready() == {"after": 2, "resync": False}
        await write_feed(live.session_factory, message(n=3))
        assert seqs(await client.rows(1)) == [3]


async def test_many_rows_missed_arrive_in_order(live: Live) -> None:
    live.server.hub.tail_rows = 5
    live.server.hub.read_batch = 7
    for batch in range(6):
        await write_feed(live.session_factory, *(message(n=batch * 10 + i) for i in range(10)))
    async with stream(live.server.ws_url, token=live.cast.dispatcher.token, after=3) as client:
        await client.ready()
        assert seqs(await client.rows(57)) == list(range(4, 61))
        assert await client.rows_before_pings() == []


async def test_an_impossible_after_asks_the_client_to_resync(live: Live) -> None:
    await write_feed(live.session_factory, message(n=1))
    async with stream(live.server.ws_url, token=live.cast.admin.token, after=500) as client:
        assert await client.ready() == {"after": 1, "resync": True}


async def test_each_role_sees_its_own_rows(live: Live) -> None:
    cast = live.cast
    post_a, post_b = cast.post_a.post_id, cast.post_b.post_id
    rows = [
        message("offer.created", post_id=post_a, mahalla_id=cast.mahalla_1, n=1),
        message("offer.created", post_id=post_b, mahalla_id=cast.mahalla_2, n=2),
        message("post.updated", post_id=post_a, n=3),
        # A public device's: an observer gets no household's or business's (DESIGN §10).
        message("device.updated", mahalla_id=cast.mahalla_1, site="public", n=4),
        message("device.updated", mahalla_id=cast.mahalla_2, n=5),
        message("alert.opened", n=6),
        message("offer.updated", post_id=post_b, mahalla_id=cast.mahalla_1, n=7),
    ]
    expected = {
        "admin": [1, 2, 3, 4, 5, 6, 7],
        "dispatcher": [1, 2, 3, 4, 5, 6, 7],
        "post_a": [1, 3],
        "post_b": [2, 7],
        "observer_m1": [4],  # no offer rows: they name posts (DESIGN §10)
    }
    accounts = {name: getattr(cast, name) for name in expected}

    # Live: everybody is connected while the rows are written (served from the hub's memory).
    async with contextlib.AsyncExitStack() as stack:
        clients = {
            name: await stack.enter_async_context(stream(live.server.ws_url, token=account.token))
            for name, account in accounts.items()
        }
        for client in clients.values():
            await client.ready()
        await write_feed(live.session_factory, *rows)
        for name, want in expected.items():
            got = await clients[name].rows(len(want))
            assert [row["data"]["n"] for row in got] == want, name
        leftovers = await asyncio.gather(
            *(client.rows_before_pings() for client in clients.values())
        )
        assert leftovers == [[]] * len(clients)

    # Catching up from 0: the same rules, applied in SQL to rows read from the database.
    live.server.hub.tail_rows = 1
    await write_feed(live.session_factory, message(n=8), message(n=9), message(n=10))
    assert await live.server.hub.wait_beyond(9, timeout_s=5)
    assert live.server.hub._floor > 0  # row 1 is no longer in memory
    for name, want in expected.items():
        if name in ("admin", "dispatcher"):
            want = [*want, 8, 9, 10]
        async with stream(live.server.ws_url, token=accounts[name].token, after=0) as client:
            await client.ready()
            assert [row["data"]["n"] for row in await client.rows(len(want))] == want, name
            assert await client.rows_before_pings() == []


# --- credentials ------------------------------------------------------------------------------


async def test_every_way_of_presenting_the_token_works(live: Live) -> None:
    token = live.cast.post_a.token
    url = live.server.ws_url
    async with stream(url, headers={"Authorization": f"Bearer {token}"}) as by_header:
        assert (await by_header.ready())["resync"] is False
    async with stream(url, token=token) as by_query:
        await by_query.ready()
    # A browser always sends its page's Origin on a WebSocket handshake, with the cookie.
    from_our_page = {"Cookie": f"alertnet_session={token}", "Origin": live.server.http_url}
    async with stream(url, headers=from_our_page) as by_cookie:
        await by_cookie.ready()
    fetch_metadata = {**from_our_page, "Sec-Fetch-Site": "same-origin"}
    async with stream(url, headers=fetch_metadata) as by_cookie_with_fetch_metadata:
        await by_cookie_with_fetch_metadata.ready()


@pytest.mark.parametrize(
    ("options", "code"),
    [
        ({}, 4401),
        ({"token": "not-a-real-token"}, 4401),
        ({"headers": {"Authorization": "Basic abc"}}, 4401),
        ({"after": -1}, 4400),
        ({"after": "soon"}, 4400),
        ({"after": "%C2%B2"}, 4400),  # "²" is a digit to str.isdigit, not to int()
    ],
)
async def test_a_bad_handshake_gets_a_clear_close_code(
    live: Live, options: dict[str, object], code: int
) -> None:
    if "after" in options:
        options = {**options, "token": live.cast.admin.token}
    async with stream(live.server.ws_url, **options) as client:  # type: ignore[arg-type]
        assert await client.close_code() == code


def other_origins(live: Live) -> dict[str, dict[str, str]]:
    """Handshake headers of pages that are not alertnet's own (the rule of ``auth.csrf``)."""
    own = live.server.http_url
    return {
        "another site": {"Origin": "https://evil.example"},
        "the same host on another port": {"Origin": f"http://127.0.0.1:{live.server.port + 1}"},
        "the same host and port over another scheme": {
            "Origin": own.replace("http://", "https://")
        },
        "a same-site page, by the browser's word": {"Origin": own, "Sec-Fetch-Site": "same-site"},
        "no Origin at all": {},
    }


async def test_the_session_cookie_from_another_origin_is_4403(live: Live) -> None:
    cookie = {"Cookie": f"alertnet_session={live.cast.dispatcher.token}"}
    for origin, headers in other_origins(live).items():
        async with stream(live.server.ws_url, headers={**cookie, **headers}) as client:
            assert await client.close_code() == 4403, origin


async def test_a_token_is_not_ambient_so_any_origin_may_present_it(live: Live) -> None:
    token = live.cast.dispatcher.token
    for origin, headers in other_origins(live).items():
        async with stream(live.server.ws_url, token=token, headers=headers) as by_query:
            assert (await by_query.ready())["resync"] is False, origin
        bearer = {**headers, "Authorization": f"Bearer {token}"}
        async with stream(live.server.ws_url, headers=bearer) as by_header:
            assert (await by_header.ready())["resync"] is False, origin


async def test_an_expired_token_closes_the_stream_with_4401(live: Live) -> None:
    account = live.cast.observer_m1
    async with stream(live.server.ws_url, token=account.token) as client:
        await client.ready()
        async with unit_of_work(live.session_factory) as session:
            await session.execute(
                update(ApiToken)
                .where(ApiToken.user_id == account.user_id)
                .values(expires_at=utcnow() - timedelta(seconds=1))
            )
        assert await client.close_code(timeout_s=3) == 4401  # within one heartbeat (0.5 s)


async def test_logging_out_closes_the_stream(live: Live) -> None:
    async with httpx.AsyncClient(base_url=live.server.http_url) as http:
        login = await http.post(
            "/api/v1/auth/login", json={"username": "post102", "password": PASSWORD}
        )
        token = login.json()["token"]
        async with stream(live.server.ws_url, token=token) as client:
            await client.ready()
            logout = await http.post(
                "/api/v1/auth/logout", headers={"Authorization": f"Bearer {token}"}
            )
            assert logout.status_code == 204
            assert await client.close_code(timeout_s=3) == 4401


async def test_a_changed_role_closes_the_stream_with_4403(live: Live) -> None:
    account = live.cast.dispatcher
    async with stream(live.server.ws_url, token=account.token) as client:
        await client.ready()
        async with unit_of_work(live.session_factory) as session:
            await session.execute(
                update(User)
                .where(User.id == account.user_id)
                .values(role="observer", mahalla_id=live.cast.mahalla_2)
            )
        assert await client.close_code(timeout_s=3) == 4403
    async with stream(live.server.ws_url, token=account.token) as client:
        await client.ready()  # reconnecting gives the new, narrower scope


async def test_a_disabled_user_cannot_connect(live: Live) -> None:
    account = live.cast.post_a
    async with unit_of_work(live.session_factory) as session:
        await session.execute(update(User).where(User.id == account.user_id).values(active=False))
    async with stream(live.server.ws_url, token=account.token) as client:
        assert await client.close_code() == 4401


async def test_heartbeat_pings_arrive_on_a_quiet_stream(live: Live) -> None:
    async with stream(live.server.ws_url, token=live.cast.admin.token) as client:
        await client.ready()
        assert await client.rows_before_pings(2) == []
        assert client.pings >= 2


async def test_without_a_running_hub_the_stream_refuses_loudly(
    db_url: str, session_factory: SessionFactory
) -> None:
    cast = await create_cast(session_factory)
    app = build_app(db_url)
    async with running_server(app) as server:
        app.state.runtime.hub = Hub(app.state.runtime.engine)  # never started
        async with stream(server.ws_url, token=cast.admin.token) as client:
            assert await client.close_code() == 1011


def test_tokens_in_query_strings_are_redacted_from_server_logs() -> None:
    record = logging.LogRecord(
        "uvicorn.error",
        logging.INFO,
        __file__,
        1,
        '%s - "WebSocket %s" [accepted]',
        ("127.0.0.1:5555", "/api/v1/stream?after=4&token=s3cr3t-Tok_en&x=1"),
        None,
    )
    assert RedactQueryTokens().filter(record)
    assert record.getMessage() == (
        '127.0.0.1:5555 - "WebSocket /api/v1/stream?after=4&token=[redacted]&x=1" [accepted]'
    )
    redact_query_tokens_in_server_logs()
    redact_query_tokens_in_server_logs()
    filters = logging.getLogger("uvicorn.error").filters
    assert sum(isinstance(f, RedactQueryTokens) for f in filters) == 1

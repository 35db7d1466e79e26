"""The WebSocket ``GET /api/v1/stream?after=SEQ`` (DESIGN §5): the feed, live, per role.

Credentials: ``Authorization: Bearer <token>``, or ``?token=<token>`` (browsers cannot set
headers on a WebSocket), or the ``alertnet_session`` cookie of the web pages. A cookie
handshake is refused unless it shows it comes from a page of alertnet's own origin (the rule
of ``alertnet.auth.csrf``: another port of the same host is another origin, and a cookie
handshake without ``Origin`` is refused), whatever SameSite does.

Messages from the server, one JSON object per text frame:

* ``{"seq": N, "type": "alert.opened|…", "data": {…}}`` — a feed row the caller may see, in
  ``seq`` order; the client keeps the last ``seq`` and reconnects with ``?after=`` it, to get
  exactly what it missed, nothing twice.
* ``{"type": "stream.ready", "data": {"after": N, "resync": false}}`` — first, once: the stream
  continues after ``seq`` N. Without ``?after`` it starts at the newest row (load the current
  state over REST, then apply what follows). ``resync: true`` means the requested ``after``
  could not be honoured (older than the 24 h the feed keeps, or newer than the feed: it was
  reset): reload the state over REST. It is sent again, mid-stream, if the feed is reset.
* ``{"type": "stream.ping", "data": {}}`` — every ``Hub.heartbeat_s`` (15 s), so a client can
  tell a quiet stream from a dead connection (browsers do not expose protocol pings). The
  token is re-checked at each ping: a stream outlives neither its token nor a logout.

Control messages carry no ``seq``. What the client sends is read and ignored.

uvicorn logs each handshake's path with its query string, ``?token=`` included:
``redact_query_tokens_in_server_logs()`` (called once at start-up) scrubs it. Pages served by
alertnet should rather rely on the cookie, which never appears in a URL.

Close codes: 4400 a bad ``after``; 4401 no, an unknown, an expired or a revoked token (or a
disabled user) — log in again; 4403 credentials fine but the stream is not allowed (a
cross-origin cookie, a user bound to no post or mahalla, or a role or binding changed while
connected: reconnect). The connection is accepted before it is closed, so that browsers can
read the code; an HTTP refusal of the handshake would reach them as 1006 only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from typing import Final

from fastapi import APIRouter, WebSocket
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.websockets import WebSocketDisconnect

from alertnet.auth import csrf
from alertnet.auth.deps import (
    Credential,
    CredentialSource,
    actor_for_credential,
    credential_from,
)
from alertnet.auth.scope import Scope
from alertnet.db import unit_of_work
from alertnet.errors import AlertnetError, Forbidden, InvalidInput, Unauthorized
from alertnet.realtime.hub import Hub

log = logging.getLogger(__name__)

router = APIRouter(tags=["realtime"])

CLOSE_BAD_REQUEST: Final = 4400
CLOSE_UNAUTHORIZED: Final = 4401
CLOSE_FORBIDDEN: Final = 4403
_CLOSE_INTERNAL: Final = 1011
# A close frame's reason is at most 123 bytes.
_MAX_REASON_BYTES: Final = 120

PING: Final = json.dumps({"type": "stream.ping", "data": {}}, separators=(",", ":"))

_TOKEN_IN_QUERY: Final = re.compile(r"(?<=[?&])token=[^&\s\"']*")
# uvicorn logs every WebSocket handshake with its query string ("uvicorn.error", INFO).
UVICORN_LOGGERS: Final = ("uvicorn.error", "uvicorn.access")


class RedactQueryTokens(logging.Filter):
    """Replaces ``token=…`` in a log record's arguments, so ``?token=`` never reaches a log."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _TOKEN_IN_QUERY.sub("token=[redacted]", arg) if isinstance(arg, str) else arg
                for arg in record.args
            )
        return True


def redact_query_tokens_in_server_logs() -> None:
    """Install ``RedactQueryTokens`` on uvicorn's loggers (idempotent)."""
    for name in UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(existing, RedactQueryTokens) for existing in logger.filters):
            logger.addFilter(RedactQueryTokens())


def close_code(error: AlertnetError) -> int:
    if isinstance(error, Unauthorized):
        return CLOSE_UNAUTHORIZED
    if isinstance(error, Forbidden):
        return CLOSE_FORBIDDEN
    if isinstance(error, InvalidInput):
        return CLOSE_BAD_REQUEST
    return _CLOSE_INTERNAL


def parse_after(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    if not (value.isascii() and value.isdigit()) or len(value) > 19:
        raise InvalidInput(f"after must be a feed seq (a whole number >= 0), not {value[:40]!r}")
    return int(value)


def check_origin(websocket: WebSocket, credential: Credential | None) -> None:
    """Refuse the session cookie on a handshake not started by a page of alertnet's own origin.

    The rule is ``alertnet.auth.csrf``'s, the same as for a state-changing HTTP request: a
    browser sends ``Origin`` (and ``Sec-Fetch-Site``) on every WebSocket handshake, so a cookie
    handshake without them comes from no page of ours. Tokens are not ambient and pass.
    """
    if credential is None or credential.source is not CredentialSource.COOKIE:
        return
    reason = csrf.cross_origin_reason(websocket)
    if reason is not None:
        raise csrf.CrossOriginRequest(
            f"the session cookie cannot open this stream: {reason}; alertnet's pages open it "
            "from their own origin, other clients use ?token= or 'Authorization: Bearer'"
        )


@router.websocket("/api/v1/stream")
async def stream(websocket: WebSocket) -> None:
    runtime = websocket.app.state.runtime
    await websocket.accept()
    hub: Hub | None = getattr(runtime, "hub", None)
    if hub is None or not hub.running:
        log.error("a stream client connected, but the realtime hub is not running")
        await _close(websocket, _CLOSE_INTERNAL, "the realtime hub is not running")
        return
    try:
        after = parse_after(websocket.query_params.get("after"))
        credential = credential_from(
            websocket.headers, websocket.cookies, websocket.query_params.get("token")
        )
        check_origin(websocket, credential)
        async with unit_of_work(runtime.session_factory) as session:
            actor = await actor_for_credential(session, credential)
        scope = actor.scope
        scope.ensure_follows_feed()
    except AlertnetError as exc:
        await _close(websocket, close_code(exc), exc.detail)
        return
    assert credential is not None  # actor_for_credential refuses None
    follower = _Follower(websocket, hub, runtime.session_factory, credential, scope)
    await follower.run(after)


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    encoded = reason.encode("utf-8")[:_MAX_REASON_BYTES]
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        await websocket.close(code=code, reason=encoded.decode("utf-8", errors="ignore"))


class _Follower:
    """One client's stream: sends what its scope sees, pings, and notices a dead token."""

    def __init__(
        self,
        websocket: WebSocket,
        hub: Hub,
        session_factory: async_sessionmaker[AsyncSession],
        credential: Credential,
        scope: Scope,
    ) -> None:
        self._websocket = websocket
        self._hub = hub
        self._session_factory = session_factory
        self._credential = credential
        self._scope = scope

    async def run(self, after: int | None) -> None:
        sending = asyncio.create_task(self._send(after), name="stream-send")
        receiving = asyncio.create_task(self._drain(), name="stream-receive")
        try:
            done, _ = await asyncio.wait({sending, receiving}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sending, receiving):
                task.cancel()
            await asyncio.gather(sending, receiving, return_exceptions=True)
        for task in done:
            error = task.exception() if not task.cancelled() else None
            if error is None or isinstance(error, WebSocketDisconnect):
                continue
            if isinstance(error, AlertnetError):
                await _close(self._websocket, close_code(error), error.detail)
            else:
                log.error("stream failed", exc_info=error)
                await _close(self._websocket, _CLOSE_INTERNAL, "internal error; reconnect")

    async def _drain(self) -> None:
        """Read (and ignore) what the client sends; returns when it disconnects."""
        while True:
            message = await self._websocket.receive()
            if message["type"] == "websocket.disconnect":
                return

    async def _send(self, after: int | None) -> None:
        hub, websocket = self._hub, self._websocket
        loop = asyncio.get_running_loop()
        epoch = hub.epoch
        start = await hub.open(after)
        cursor = start.after
        await websocket.send_text(_ready(cursor, start.resync))
        next_ping = loop.time() + hub.heartbeat_s
        while True:
            if hub.epoch != epoch:
                epoch, cursor = hub.epoch, hub.head
                await websocket.send_text(_ready(cursor, resync=True))
            records, cursor = await hub.fetch(cursor, self._scope)
            for record in records:
                text = record.text_for(self._scope)  # cut to the scope (DESIGN §10)
                if text is not None:
                    await websocket.send_text(text)
            if loop.time() >= next_ping:
                await self._check_credential()
                await websocket.send_text(PING)
                next_ping = loop.time() + hub.heartbeat_s
            if cursor < hub.head and hub.epoch == epoch:
                continue  # more to read (a database batch, or rows that came meanwhile)
            await hub.wait_beyond(cursor, next_ping - loop.time())

    async def _check_credential(self) -> None:
        """Unauthorized when the token died; Forbidden when the user's scope changed."""
        async with unit_of_work(self._session_factory) as session:
            actor = await actor_for_credential(session, self._credential)
        if actor.scope != self._scope:
            raise Forbidden("your role or binding changed; reconnect")


def _ready(after: int, resync: bool) -> str:
    message = {"type": "stream.ready", "data": {"after": after, "resync": resync}}
    return json.dumps(message, separators=(",", ":"))

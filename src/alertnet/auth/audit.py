"""The request audit: who changed what, when, and how it ended (issue 6: every change audited).

``RequestAuditMiddleware`` writes one ``request_audit`` row for every HTTP request whose method
can change state (POST, PUT, PATCH, DELETE): time, user, role, method, path, status, client
address. The identity comes from the auth dependencies (``note_identity``) or, for a login
attempt, from the name it gave (``note_username``); a request refused before anyone was
identified is recorded with no user.

The row is written in a short transaction of its own once the response has been sent, after
the request's own transaction has ended: refused and failed requests are recorded too, a
rollback never erases its audit row, the client does not wait for the audit write, and the
write never queues behind the request's own SQLite write lock (whichever way the request's
session was declared). A failure to write the row is logged and counted, never turned into an
error for a request that has already happened. A process killed between the response and the
audit write loses that one row; domain changes keep their own transactional trail
(``alert_audit``).

Not audited: safe methods (GET, HEAD, OPTIONS), WebSockets, and device traffic on
``/api/v1/uplinks`` — devices authenticate with a MIC, not a user, and every uplink is already
recorded as an event, a reception or a quarantine row; a second row per uplink would double the
write load of the ingest hot path.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from alertnet.db import unit_of_work
from alertnet.models import RequestAudit, utcnow

log = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
UNAUDITED_PATHS = frozenset({"/api/v1/uplinks"})

# Keys in the ASGI scope's "state" dict, which ``request.state`` reads and writes.
_IDENTITY_KEY = "alertnet_audit_identity"
_MAX_PATH = 400
_MAX_USERNAME = 80


@dataclass(frozen=True, slots=True)
class AuditIdentity:
    user_id: int | None
    username: str | None
    role: str | None


def note_identity(request: Request, *, user_id: int, username: str, role: str) -> None:
    """Record who the request is from, for its audit row (called by the auth dependencies)."""
    setattr(request.state, _IDENTITY_KEY, AuditIdentity(user_id, username, role))


def note_username(request: Request, username: str) -> None:
    """Record the name an unauthenticated request claimed (a login attempt), for its audit row."""
    setattr(request.state, _IDENTITY_KEY, AuditIdentity(None, username[:_MAX_USERNAME], None))


async def record_request(
    session: AsyncSession,
    *,
    identity: AuditIdentity | None,
    method: str,
    path: str,
    status: int,
    client_addr: str | None,
) -> None:
    """Insert one audit row in the caller's transaction."""
    await session.execute(
        insert(RequestAudit).values(
            at=utcnow(),
            user_id=identity.user_id if identity else None,
            username=identity.username if identity else None,
            role=identity.role if identity else None,
            method=method[:8],
            path=path[:_MAX_PATH],
            status=status,
            client_addr=client_addr,
        )
    )


def is_audited(method: str, path: str) -> bool:
    return method.upper() not in SAFE_METHODS and path not in UNAUDITED_PATHS


class RequestAuditMiddleware:
    """Pure ASGI middleware (no response buffering, no task per request) writing the audit."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_audited(scope["method"], scope["path"]):
            await self.app(scope, receive, send)
            return
        # Created here, so the dict the endpoint's ``request.state`` writes is the one read below.
        state: MutableMapping[str, Any] = scope.setdefault("state", {})
        status: int | None = None

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        except Exception:
            # The outer error middleware answers 500 (unless a response had started).
            await self._record(scope, state, status if status is not None else 500)
            raise
        await self._record(scope, state, status if status is not None else 500)

    async def _record(self, scope: Scope, state: MutableMapping[str, Any], status: int) -> None:
        identity = state.get(_IDENTITY_KEY)
        client = scope.get("client")
        runtime = scope["app"].state.runtime
        try:
            async with unit_of_work(runtime.session_factory) as session:
                await record_request(
                    session,
                    identity=identity if isinstance(identity, AuditIdentity) else None,
                    method=scope["method"],
                    path=scope["path"],
                    status=status,
                    client_addr=client[0] if client else None,
                )
        except Exception:
            runtime.metrics.loop_errors.labels("request-audit").inc()
            log.exception(
                "could not write the audit row for %s %s (%s)",
                scope["method"],
                scope["path"],
                status,
            )

"""FastAPI dependencies at the HTTP edge: the request's transaction, who is calling, and may they.

Every endpoint declares its role with one of these, so the rule sits next to the route; what
the caller may see or act on within its role is ``actor.scope`` (``alertnet.auth.scope``):

    @router.post("/alerts/{alert_id}/arrive")
    async def arrive(alert_id: int, request: Request, actor: PostActor) -> dict[str, Any]:
        post_id = actor.scope.own_post_id()  # Forbidden for an account bound to no post

``get_session`` is the one place an HTTP request commits (STYLE habit 2). ``DbSession`` runs it
with FastAPI's ``scope="function"``: the commit happens *before* the response is sent, so a
client never sees 200 for a change that then fails to commit. (FastAPI's default for a
``yield`` dependency ends it after the response, which would answer first and commit later.)

Credentials, in this order: ``Authorization: Bearer <token>`` (devices, scripts, the console's
API calls), then the ``alertnet_session`` cookie that ``POST /api/v1/auth/login`` sets for the
web pages. Both carry an API token (``alertnet.auth.tokens``). A missing, unknown, expired or
revoked token, or a deactivated user, is ``Unauthorized`` (401); a known user without the role
or the scope is ``Forbidden`` (403). Both render as ``{"error", "detail"}``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from alertnet.auth import audit, csrf
from alertnet.auth.scope import Scope
from alertnet.auth.tokens import user_for_token
from alertnet.db import unit_of_work
from alertnet.errors import Forbidden, Unauthorized
from alertnet.models import Role, User

SESSION_COOKIE = "alertnet_session"


class CredentialSource(StrEnum):
    HEADER = "header"
    QUERY = "query"  # WebSocket only: a browser cannot set headers on a WebSocket
    COOKIE = "cookie"


@dataclass(frozen=True, slots=True)
class Credential:
    token: str
    source: CredentialSource


@dataclass(frozen=True, slots=True)
class Actor:
    """The authenticated caller, detached from the ORM so it can outlive the session."""

    user_id: int
    username: str
    role: Role
    post_id: int | None
    mahalla_id: int | None

    @classmethod
    def of(cls, user: User) -> Actor:
        return cls(
            user_id=user.id,
            username=user.username,
            role=Role(user.role),
            post_id=user.post_id,
            mahalla_id=user.mahalla_id,
        )

    @property
    def scope(self) -> Scope:
        """What this caller may see and act on: the one place that decides it."""
        return Scope(
            role=self.role,
            user_id=self.user_id,
            username=self.username,
            post_id=self.post_id,
            mahalla_id=self.mahalla_id,
        )


# --- the transaction ------------------------------------------------------------------------


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's session: commits when the endpoint returns, rolls back when it raises.

    Use it as ``DbSession`` (which ends it before the response is sent), not ``Depends`` alone.
    """
    async with request.app.state.runtime.session_factory() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        await session.commit()


DbSession = Annotated[AsyncSession, Depends(get_session, scope="function")]


# --- credentials ----------------------------------------------------------------------------


def credential_from(
    headers: Mapping[str, str],
    cookies: Mapping[str, str],
    query_token: str | None = None,
) -> Credential | None:
    """The token a request or WebSocket handshake presents, or None when it presents none.

    An ``Authorization`` header that is present but not ``Bearer <token>`` is an error rather
    than a reason to fall back to the cookie: the caller meant to authenticate and got it wrong.
    """
    authorization = headers.get("authorization")
    if authorization is not None:
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("the Authorization header must be 'Bearer <token>'")
        return Credential(token, CredentialSource.HEADER)
    if query_token:
        return Credential(query_token, CredentialSource.QUERY)
    cookie = cookies.get(SESSION_COOKIE)
    if cookie:
        return Credential(cookie, CredentialSource.COOKIE)
    return None


async def actor_for_credential(session: AsyncSession, credential: Credential | None) -> Actor:
    """The actor a credential belongs to; Unauthorized when there is none or it is not valid."""
    if credential is None:
        raise Unauthorized(
            "not logged in: send 'Authorization: Bearer <token>' or log in at /api/v1/auth/login"
        )
    user = await user_for_token(session, credential.token)
    if user is None:
        raise Unauthorized("the token is unknown, expired or revoked, or the user is disabled")
    return Actor.of(user)


def request_credential(request: Request) -> Credential | None:
    """The credential of a plain HTTP request (header or cookie; never the query string)."""
    return credential_from(request.headers, request.cookies)


async def current_user(request: Request) -> Actor:
    """The authenticated caller, whatever the role (401 otherwise); noted for the audit.

    The token lookup (which may stamp ``last_used_at``) commits in a transaction of its own,
    so an endpoint that then acts through the dispatcher never waits on the request's own
    write lock (on SQLite that would wait for itself).
    """
    credential = request_credential(request)
    by_cookie = credential is not None and credential.source is CredentialSource.COOKIE
    csrf.ensure_same_origin(request, by_cookie=by_cookie)
    async with unit_of_work(request.app.state.runtime.session_factory) as session:
        actor = await actor_for_credential(session, credential)
    audit.note_identity(
        request, user_id=actor.user_id, username=actor.username, role=actor.role.value
    )
    return actor


CurrentUser = Annotated[Actor, Depends(current_user)]


def require_roles(*roles: Role | str) -> Callable[[Actor], Awaitable[Actor]]:
    """A dependency that returns the caller when it has one of ``roles``, else Forbidden (403)."""
    if not roles:
        raise ValueError("require_roles needs at least one role")
    allowed = frozenset(Role(role) for role in roles)
    names = " or ".join(sorted(role.value for role in allowed))

    async def has_role(actor: CurrentUser) -> Actor:
        if actor.role not in allowed:
            raise Forbidden(f"this needs the role {names}; {actor.username} is {actor.role}")
        return actor

    has_role.__name__ = f"require_{'_or_'.join(sorted(role.value for role in allowed))}"
    return has_role


# Role declarations for endpoints, one per audience of DESIGN §5.
AnyActor = CurrentUser
AdminActor = Annotated[Actor, Depends(require_roles(Role.ADMIN))]
DispatcherActor = Annotated[Actor, Depends(require_roles(Role.DISPATCHER, Role.ADMIN))]
PostActor = Annotated[Actor, Depends(require_roles(Role.POST))]

"""Logging in and out: ``/api/v1/auth/login``, ``/logout`` and ``/me`` (DESIGN §5).

The caller's view (``ActorOut``, also what ``/api/v1/users/me`` answers: ``alertnet.auth.me``)
includes the language the user chose for the pages.

A login issues an ordinary API token with a lifetime of one shift (``LOGIN_TTL_S``), returned
in the body for API clients and set as the ``alertnet_session`` cookie for the web pages:
HttpOnly (page scripts cannot read it), SameSite=Strict (other sites cannot make the browser
send it), Secure when the request came over HTTPS; requests it authenticates must also come
from alertnet's own origin (``alertnet.auth.csrf``), and so must a login a browser makes.
Logging out revokes the token that authenticated the request, so a stolen copy stops working.

Logins are throttled per account, per address and per pair before any password is hashed
(``alertnet.auth.throttle``). Demo accounts log in only while the server runs with ``--demo``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status
from pydantic import BaseModel, StringConstraints

from alertnet.auth import audit
from alertnet.auth.csrf import ensure_login_not_cross_origin
from alertnet.auth.deps import (
    SESSION_COOKIE,
    Actor,
    CurrentUser,
    DbSession,
    request_credential,
)
from alertnet.auth.passwords import MAX_LENGTH as MAX_PASSWORD_LENGTH
from alertnet.auth.throttle import LoginThrottle
from alertnet.auth.tokens import create_token, revoke_token_by_secret
from alertnet.auth.users import authenticate, stored_language
from alertnet.errors import Unauthorized
from alertnet.models import utcnow
from alertnet.validation import SafeLine, SafeStr

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])

# One patrol shift: the tablet logs in at the start and the token dies by itself after it.
LOGIN_TTL_S = 12 * 3600
LOGIN_TOKEN_LABEL = "login"


class LoginIn(BaseModel):
    username: Annotated[SafeLine, StringConstraints(min_length=1, max_length=80)]
    # Bounded so that a huge body cannot buy a long argon2 computation.
    password: Annotated[SafeStr, StringConstraints(min_length=1, max_length=MAX_PASSWORD_LENGTH)]


class ActorOut(BaseModel):
    """Who the caller is (fields may be added, never renamed)."""

    user_id: int
    username: str
    role: str
    post_id: int | None
    mahalla_id: int | None
    # The language the user chose for the pages (DESIGN §11), null until they choose one.
    language: str | None

    @classmethod
    def of(cls, actor: Actor, *, language: str | None) -> ActorOut:
        return cls(
            user_id=actor.user_id,
            username=actor.username,
            role=actor.role.value,
            post_id=actor.post_id,
            mahalla_id=actor.mahalla_id,
            language=language,
        )


class LoginOut(ActorOut):
    token: str
    expires_at: datetime


def login_throttle(request: Request) -> LoginThrottle:
    """The process's throttle, kept by the runtime (``Runtime.login_throttle``)."""
    throttle: LoginThrottle = request.app.state.runtime.login_throttle
    return throttle


@router.post(
    "/login",
    summary="Exchange a username and password for a token (also set as the session cookie)",
    responses={
        401: {"description": "wrong credentials, or a demo account on a server without --demo"},
        403: {"description": "a browser logging in for a page of another origin"},
        429: {"description": "throttled"},
    },
)
async def login(
    body: LoginIn,
    request: Request,
    response: Response,
    session: DbSession,
    throttle: Annotated[LoginThrottle, Depends(login_throttle)],
) -> LoginOut:
    audit.note_username(request, body.username)
    ensure_login_not_cross_origin(request)
    demo_allowed: bool = request.app.state.runtime.settings.demo
    client_addr = request.client.host if request.client else "unknown"
    async with throttle.attempt(body.username, client_addr) as attempt:
        user = await authenticate(session, body.username, body.password)
        if user is None or (user.demo and not demo_allowed):
            attempt.failure()
        else:
            attempt.success()
    if user is None:
        raise Unauthorized("wrong username or password")
    if user.demo and not demo_allowed:
        raise Unauthorized(f"{user.username} is a demo account: it works only with serve --demo")
    actor = Actor.of(user)
    audit.note_identity(
        request, user_id=actor.user_id, username=actor.username, role=actor.role.value
    )
    token = await create_token(session, user.id, label=LOGIN_TOKEN_LABEL, ttl_s=LOGIN_TTL_S)
    expires_at = utcnow() + timedelta(seconds=LOGIN_TTL_S)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=LOGIN_TTL_S,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    actor_view = ActorOut.of(actor, language=user.language)
    return LoginOut(token=token, expires_at=expires_at, **actor_view.model_dump())


@router.post(
    "/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Expire the token this request was made with and clear the session cookie",
)
async def logout(
    request: Request, response: Response, actor: CurrentUser, session: DbSession
) -> None:
    credential = request_credential(request)
    if credential is not None:  # always true once current_user let the request through
        await revoke_token_by_secret(session, credential.token)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")


@router.get("/me", summary="Who the token or session cookie belongs to")
async def me(actor: CurrentUser, session: DbSession) -> ActorOut:
    return ActorOut.of(actor, language=await stored_language(session, actor.user_id))

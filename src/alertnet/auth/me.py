"""The caller's own account: ``GET`` and ``PATCH /api/v1/users/me`` (DESIGN §11).

Any signed-in role may read its own view and choose the language its pages speak; the choice
is stored on the user, so it follows them to the next login on any device. Changing anything
else about an account is the admin's (``PATCH /api/v1/users/{username}``, ``alertnet.admin``):
this router is included before that one, and no user may be named ``me``.

``page_language`` is the language a page should start in (``/web/config.json``): the stored
choice of the user whose session cookie the request carries, else ``Accept-Language``, else
``ALERTNET_DEFAULT_LANGUAGE``. That page is public, so a missing or dead cookie is no error.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from alertnet.auth.api import ActorOut
from alertnet.auth.deps import SESSION_COOKIE, AnyActor, DbSession
from alertnet.auth.tokens import user_for_token
from alertnet.auth.users import set_language, stored_language
from alertnet.db import unit_of_work
from alertnet.i18n import negotiate, offered_language

router = APIRouter(prefix="/api/v1/users", tags=["auth"])


class OwnAccountChangeIn(BaseModel):
    """What a user may change about their own account."""

    # Unknown fields are refused, so an admin's {"active": false} sent here is not a silent no-op.
    model_config = ConfigDict(extra="forbid")

    language: str | None = Field(
        max_length=16,
        description="one of the offered languages (uz, ru, en); null to follow the browser",
    )


@router.get("/me", summary="The caller's own account, with the language the pages use")
async def own_account(actor: AnyActor, session: DbSession) -> ActorOut:
    return ActorOut.of(actor, language=await stored_language(session, actor.user_id))


@router.patch(
    "/me",
    summary="Choose the language of the caller's pages",
    responses={422: {"description": "a language alertnet does not offer"}},
)
async def change_own_account(
    body: OwnAccountChangeIn, actor: AnyActor, session: DbSession
) -> ActorOut:
    user = await set_language(session, actor.user_id, body.language)
    return ActorOut.of(actor, language=user.language)


async def page_language(request: Request) -> str:
    """The language a page of this request starts in (see the module's docstring)."""
    chosen = await _session_user_language(request)
    if chosen is not None:
        return chosen
    default: str = request.app.state.runtime.settings.default_language
    return negotiate(request.headers.get("accept-language"), default=default)


async def _session_user_language(request: Request) -> str | None:
    """The language stored for the session cookie's user; None without a live session or a
    choice. The cookie is looked up as ``current_user`` does, but its absence is no error."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    async with unit_of_work(request.app.state.runtime.session_factory) as session:
        user = await user_for_token(session, token)
        language = None if user is None else user.language
    return None if language is None else offered_language(language)

"""CAP 1.2 over HTTP (DESIGN §9.4): one alert's latest CAP message and the caller's Atom feed,
both read in the caller's scope (``alertnet.alerts.cap`` makes them)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request, Response

from alertnet.alerts.cap import ATOM_MEDIA_TYPE, CAP_MEDIA_TYPE, alert_cap, cap_feed
from alertnet.auth.deps import CurrentUser, DbSession
from alertnet.config import Settings
from alertnet.models import utcnow
from alertnet.validation import Int64

router = APIRouter(prefix="/api/v1", tags=["cap"])


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.runtime.settings
    return settings


@router.get(
    "/alerts/{alert_id}/cap",
    summary="The alert's latest OASIS CAP 1.2 message",
    response_class=Response,
    responses={200: {"content": {CAP_MEDIA_TYPE: {}}}},
)
async def get_alert_cap(
    alert_id: Int64, request: Request, session: DbSession, actor: CurrentUser
) -> Response:
    settings = _settings(request)
    document = await alert_cap(
        session,
        actor.scope,
        alert_id,
        sender=settings.cap_sender,
        zone=ZoneInfo(settings.timezone),
    )
    return Response(document, media_type=CAP_MEDIA_TYPE)


@router.get(
    "/cap.atom",
    summary="Atom feed of the caller's alerts of the last 24 h, each linking its CAP message",
    response_class=Response,
    responses={200: {"content": {ATOM_MEDIA_TYPE: {}}}},
)
async def get_cap_feed(request: Request, session: DbSession, actor: CurrentUser) -> Response:
    settings = _settings(request)
    feed_url = str(request.url_for("get_cap_feed"))
    cap_url = feed_url.removesuffix("/cap.atom") + "/alerts/{id}/cap"
    document = await cap_feed(
        session,
        actor.scope,
        sender=settings.cap_sender,
        zone=ZoneInfo(settings.timezone),
        now=utcnow(),
        feed_url=feed_url,
        cap_url=cap_url,
    )
    return Response(document, media_type=ATOM_MEDIA_TYPE)

"""``GET /api/v1/reports/shift?from=&to=`` (DESIGN §10): the shift report as a printable page.

It is a page a person opens from the console (a link in a new tab), so it authenticates as the
console does — the session cookie (a GET: no CSRF check applies) or a bearer token for scripts
— and a browser without a session is sent to ``/login?next=…`` and brought back, where an API
client gets the usual 401. The period defaults to the last ``DEFAULT_PERIOD``; it may span at
most ``MAX_PERIOD``. ``from`` and ``to`` are read as the history's filters are (a date-time
without an offset, or a date, in ``ALERTNET_TIMEZONE``; a date as ``to`` includes that day).

The language: ``lang=`` when given, else the user's stored choice, else the browser's
``Accept-Language``, else ``ALERTNET_DEFAULT_LANGUAGE`` (DESIGN §11).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Final
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from alertnet.alerts.history import parse_time
from alertnet.auth.deps import Actor, DbSession, current_user
from alertnet.auth.users import stored_language
from alertnet.errors import InvalidInput, Unauthorized
from alertnet.i18n import LANGUAGES, negotiate, offered_language
from alertnet.models import utcnow
from alertnet.reports.render import CONTENT_SECURITY_POLICY, ShiftPage
from alertnet.reports.shift import shift_report
from alertnet.reports.strings import Texts

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])

DEFAULT_PERIOD: Final = timedelta(hours=12)
MAX_PERIOD: Final = timedelta(days=31)


async def _actor_or_login(request: Request) -> Actor | RedirectResponse:
    try:
        return await current_user(request)
    except Unauthorized:
        if "text/html" not in request.headers.get("accept", ""):
            raise
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


async def _language(request: Request, session: DbSession, actor: Actor, lang: str | None) -> str:
    if lang is not None:
        chosen = offered_language(lang)
        if chosen is None:
            raise InvalidInput(f"lang: one of {', '.join(LANGUAGES)}")
        return chosen
    stored = await stored_language(session, actor.user_id)
    chosen = offered_language(stored) if stored else None
    if chosen is not None:
        return chosen
    default: str = request.app.state.runtime.settings.default_language
    return negotiate(request.headers.get("accept-language"), default=default)


@router.get(
    "/shift",
    summary="The shift report: a printable HTML page (counts, handling times, every alert)",
    response_class=HTMLResponse,
    responses={303: {"description": "a browser without a session goes to /login first"}},
)
async def shift_report_page(
    request: Request,
    session: DbSession,
    since: Annotated[str | None, Query(alias="from", max_length=40)] = None,
    until: Annotated[str | None, Query(alias="to", max_length=40)] = None,
    lang: Annotated[str | None, Query(max_length=16)] = None,
) -> Response:
    found = await _actor_or_login(request)
    if isinstance(found, RedirectResponse):
        return found
    actor = found
    settings = request.app.state.runtime.settings
    zone = ZoneInfo(settings.timezone)
    now = utcnow()
    until_at = parse_time(until, zone, name="to", end_of_day=True) if until else now
    since_at = parse_time(since, zone, name="from") if since else until_at - DEFAULT_PERIOD
    if since_at >= until_at:
        raise InvalidInput("from must be earlier than to")
    if until_at - since_at > MAX_PERIOD:
        raise InvalidInput(f"a report covers at most {MAX_PERIOD.days} days")
    language = await _language(request, session, actor, lang)
    report = await shift_report(session, actor.scope, since=since_at, until=until_at, now=now)
    page = ShiftPage(
        report,
        Texts(language),
        zone=zone,
        username=actor.username,
        role=actor.role.value,
        languages=LANGUAGES,
    )
    return HTMLResponse(
        page.page(),
        headers={
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Content-Language": language,
        },
    )

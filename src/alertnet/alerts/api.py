"""Alerts over HTTP: the console's queue and the history (DESIGN §10), read in the caller's
scope (a dispatcher sees all, an observer its mahalla, a post what was offered to it), and the
history as a CSV file.

``GET /alerts`` with no filter is the console's queue (open alerts: escalated first, then
priority, then age); any other ``state`` or a ``before`` gives the history, newest first, one
page of ``limit`` alerts at a time (``before=<the last id of the page>`` for the next; a
``Link: <…>; rel="next"`` header names it). ``order`` chooses explicitly. The filters are
``alertnet.alerts.history``'s; ``export.csv`` takes the same ones (``alertnet.alerts.export``).

One alert's full record and every action on an alert or an offer are dispatch's
(``dispatch.api``): they involve offers and posts.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse

from alertnet.alerts import export
from alertnet.alerts.history import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    AlertFilter,
    Order,
    build_filter,
    history_page,
    history_views,
    queue_page,
)
from alertnet.auth.deps import CurrentUser, DbSession
from alertnet.errors import InvalidInput
from alertnet.models import utcnow
from alertnet.validation import Int32, Int64

router = APIRouter(prefix="/api/v1", tags=["alerts"])

# Long enough for any legitimate value; FastAPI refuses longer ones (422) before we parse.
_Short = Annotated[str | None, Query(max_length=120)]


def _zone(request: Request) -> ZoneInfo:
    return ZoneInfo(request.app.state.runtime.settings.timezone)


async def alert_filter(
    request: Request,
    actor: CurrentUser,
    state: Annotated[
        str,
        Query(max_length=120, description="open, closed, cancelled, all, or state names (a,b)"),
    ] = "open",
    since: Annotated[
        str | None,
        Query(alias="from", max_length=40, description="opened at or after (ISO 8601)"),
    ] = None,
    until: Annotated[
        str | None,
        Query(alias="to", max_length=40, description="opened before; a date: that whole day"),
    ] = None,
    mahalla: Annotated[str | None, Query(max_length=120, description="id or name")] = None,
    mahalla_id: Int32 | None = None,
    category: Annotated[str | None, Query(max_length=16)] = None,
    post: Annotated[str | None, Query(max_length=120, description="id or callsign")] = None,
    device: Annotated[str | None, Query(max_length=16, description="EUI")] = None,
    drill: Annotated[bool | None, Query(description="true: drills only; false: none")] = None,
    q: Annotated[str | None, Query(max_length=100, description="free text")] = None,
) -> AlertFilter:
    """The history filters of the request (``alertnet.alerts.history``), checked."""
    found = build_filter(
        zone=_zone(request),
        state=state,
        since=since,
        until=until,
        mahalla=mahalla,
        mahalla_id=mahalla_id,
        category=category,
        post=post,
        device=device,
        drill=drill,
        q=q,
    )
    if found.mahalla_id is not None:
        actor.scope.ensure_sees_mahalla(found.mahalla_id)
    return found


AlertFilterParam = Annotated[AlertFilter, Depends(alert_filter)]
Before = Annotated[Int64 | None, Query(ge=1, description="only alerts with a smaller id")]


def _next_page_link(request: Request, before: int) -> str:
    url = request.url.remove_query_params("before").include_query_params(before=before)
    return f'<{url.path}?{url.query}>; rel="next"'


@router.get(
    "/alerts",
    summary="Alerts: the open queue by default; the history (newest first) with filters",
)
async def list_alerts(
    request: Request,
    response: Response,
    session: DbSession,
    actor: CurrentUser,
    filters: AlertFilterParam,
    before: Before = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    order: Order | None = None,
) -> list[dict[str, Any]]:
    if order is None:
        plain_queue = request.query_params.get("state", "open") == "open" and before is None
        order = Order.QUEUE if plain_queue else Order.NEWEST
    if order is Order.QUEUE:
        if before is not None:
            raise InvalidInput("before pages the history: use it with order=newest")
        ids = await queue_page(session, filters, actor.scope, limit=limit)
    else:
        ids = await history_page(session, filters, actor.scope, limit=limit, before=before)
        if len(ids) == limit:
            response.headers["Link"] = _next_page_link(request, ids[-1])
    return [actor.scope.shown_alert(view) for view in await history_views(session, ids)]


@router.get(
    "/alerts/export.csv",
    summary="The history as CSV for Excel (UTF-8 with BOM), same filters as GET /alerts",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}},
)
async def export_alerts(
    request: Request,
    session: DbSession,
    actor: CurrentUser,
    filters: AlertFilterParam,
    before: Before = None,
    sep: Annotated[Literal[",", ";"], Query(description="; for Excel with a decimal comma")] = ",",
) -> StreamingResponse:
    scope = actor.scope
    await export.ensure_exportable(session, filters, scope, before=before)
    zone = _zone(request)
    chunks = export.csv_chunks(
        request.app.state.runtime.session_factory,
        filters,
        scope,
        zone=zone,
        separator=sep,
        before=before,
    )
    filename = export.export_filename(utcnow(), zone)
    return StreamingResponse(
        chunks,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )

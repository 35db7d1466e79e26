"""The programme's read API (DESIGN §12): coverage against targets, exemplary streets and
houses, and the monthly report's figures of one mahalla.

Who reads what is the caller's scope (``alertnet.auth.scope``): dispatchers and admins every
mahalla; an observer its own mahalla's rows only — coverage per district or region sums other
mahallas' figures, so it is refused (403) to an observer, as grouping by post is for handling
times — and households and businesses only as counts per street; posts read no statistics.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from alertnet.auth.deps import CurrentUser, DbSession
from alertnet.config import Settings
from alertnet.models import utcnow
from alertnet.programme.coverage import Level, Targets, coverage
from alertnet.programme.exemplary import Thresholds, exemplary
from alertnet.programme.report import month_report
from alertnet.validation import Int32

router = APIRouter(prefix="/api/v1/stats", tags=["programme"])

MahallaFilter = Annotated[Int32 | None, Query(description="one mahalla's rows only")]


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.runtime.settings
    return settings


@router.get("/coverage", summary="Protected households and businesses against the targets")
async def get_coverage(
    request: Request,
    session: DbSession,
    actor: CurrentUser,
    level: Level = "mahalla",
    mahalla_id: MahallaFilter = None,
) -> list[dict[str, Any]]:
    scope = actor.scope
    scope.ensure_reads_statistics(per=level)
    if mahalla_id is not None:
        scope.ensure_sees_mahalla(mahalla_id)
    targets = Targets.of(_settings(request))
    return await coverage(
        session, scope, level=level, targets=targets, now=utcnow(), mahalla_id=mahalla_id
    )


@router.get(
    "/exemplary",
    summary="Exemplary streets, houses and mahallas: each criterion met or not, with its figure",
)
async def get_exemplary(
    request: Request,
    session: DbSession,
    actor: CurrentUser,
    days: Annotated[float, Query(gt=0, le=366)] = 90,
    mahalla_id: MahallaFilter = None,
) -> dict[str, Any]:
    scope = actor.scope
    scope.ensure_reads_statistics()
    if mahalla_id is not None:
        scope.ensure_sees_mahalla(mahalla_id)
    now = utcnow()
    figures = await exemplary(
        session,
        scope,
        since=now - timedelta(days=days),
        until=now,
        now=now,
        thresholds=Thresholds.of(_settings(request)),
        mahalla_id=mahalla_id,
    )
    return {"days": days, **figures}


@router.get(
    "/mahalla-report",
    summary="One mahalla's monthly report: incidents, response times, coverage, exemplary",
)
async def get_mahalla_report(
    request: Request,
    session: DbSession,
    actor: CurrentUser,
    mahalla_id: Int32,
    month: Annotated[str, Query(min_length=7, max_length=7, description="YYYY-MM, local")],
) -> dict[str, Any]:
    return await month_report(
        session,
        actor.scope,
        mahalla_id=mahalla_id,
        month=month,
        settings=_settings(request),
        now=utcnow(),
    )

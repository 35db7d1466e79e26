"""How many alerts, by category and by outcome, over a recent period: the console's tallies.

Counted are the alerts *opened* in the period. Drills are left out (DESIGN §2.3) and reported
as one separate number. The outcome of an alert is its close outcome (``confirmed``,
``false_alarm``, …, ``resolved`` for a trouble that cleared), ``cancelled`` for one a
dispatcher cancelled, and ``open`` while it is still being handled.

``GET /api/v1/stats/counts?days=7`` serves it; ``days`` may be fractional, so a page can ask
for "since local midnight". Only the alerts the caller's scope sees are counted: an observer
gets its own mahalla's figures only; a post reads no statistics.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Query
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from alertnet.auth.deps import CurrentUser, DbSession
from alertnet.auth.scope import Scope
from alertnet.models import Alert, AlertCategory, AlertState, utcnow
from alertnet.validation import Int32

router = APIRouter(prefix="/api/v1", tags=["alerts"])

CATEGORIES = tuple(category.value for category in AlertCategory)


def outcome_of(state: str, outcome: str | None) -> str:
    """The outcome an alert counts under (see the module docstring)."""
    if state == AlertState.CANCELLED:
        return "cancelled"
    if state == AlertState.CLOSED:
        return outcome or "closed"
    return "open"


async def alert_counts(
    session: AsyncSession,
    scope: Scope,
    *,
    since: datetime,
    until: datetime,
    mahalla_id: int | None = None,
) -> dict[str, Any]:
    """``{"since", "until", "total", "drills", "by_category", "by_outcome"}`` of the alerts
    ``scope`` sees (in mahalla ``mahalla_id`` only, when given).

    ``by_category`` names every category (zero included), in the order of ``AlertCategory``;
    ``by_outcome`` only the outcomes that occurred, most frequent first.
    """
    query = select(Alert.category, Alert.state, Alert.outcome, Alert.drill, func.count()).where(
        Alert.opened_at >= since, Alert.opened_at < until, scope.alerts()
    )
    if mahalla_id is not None:
        query = query.where(Alert.mahalla_id == mahalla_id)
    query = query.group_by(Alert.category, Alert.state, Alert.outcome, Alert.drill)
    by_category: Counter[str] = Counter({category: 0 for category in CATEGORIES})
    by_outcome: Counter[str] = Counter()
    drills = 0
    for category, state, outcome, drill, count in await session.execute(query):
        if drill:
            drills += count
            continue
        by_category[category] += count
        by_outcome[outcome_of(state, outcome)] += count
    return {
        "since": since.isoformat(),
        "until": until.isoformat(),
        "total": sum(by_outcome.values()),
        "drills": drills,
        "by_category": dict(by_category),
        "by_outcome": dict(sorted(by_outcome.items(), key=lambda item: (-item[1], item[0]))),
    }


@router.get("/stats/counts", summary="Alerts opened in the last days, by category and outcome")
async def counts(
    session: DbSession,
    actor: CurrentUser,
    days: float = Query(default=1, gt=0, le=366),
    mahalla_id: Int32 | None = None,
) -> dict[str, Any]:
    scope = actor.scope
    scope.ensure_reads_statistics()
    if mahalla_id is not None:
        scope.ensure_sees_mahalla(mahalla_id)
    until = utcnow()
    return await alert_counts(
        session, scope, since=until - timedelta(days=days), until=until, mahalla_id=mahalla_id
    )

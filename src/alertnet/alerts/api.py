"""Alerts over HTTP: the console's queue, read in the caller's scope (a dispatcher sees all, an
observer its mahalla, a post what was offered to it).

One alert's full record and every action on an alert or an offer are dispatch's
(``dispatch.api``): they involve offers and posts.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import StringConstraints
from sqlalchemy import case, select

from alertnet.alerts.views import alert_views
from alertnet.auth.deps import CurrentUser, DbSession
from alertnet.errors import InvalidInput
from alertnet.models import OPEN_ALERT_STATES, Alert, AlertState
from alertnet.validation import Int32, SafeLine

router = APIRouter(prefix="/api/v1", tags=["alerts"])


@router.get("/alerts", summary="Alerts, open ones by default: escalated first, then priority, age")
async def list_alerts(
    session: DbSession,
    actor: CurrentUser,
    state: str = Query(
        default="open", max_length=16, description="open, closed, all, or one alert state"
    ),
    category: Annotated[SafeLine, StringConstraints(max_length=16)] | None = None,
    mahalla_id: Int32 | None = None,
    limit: int = Query(default=200, ge=1, le=1000),
) -> list[dict[str, Any]]:
    query = select(Alert.id)
    if state == "open":
        query = query.where(Alert.state.in_(OPEN_ALERT_STATES))
    elif state == "closed":
        query = query.where(Alert.state.in_((AlertState.CLOSED, AlertState.CANCELLED)))
    elif state != "all":
        if state not in set(AlertState):
            raise InvalidInput(f"unknown state {state!r}")
        query = query.where(Alert.state == state)
    if category is not None:
        query = query.where(Alert.category == category)
    query = query.where(actor.scope.alerts())
    if mahalla_id is not None:
        actor.scope.ensure_sees_mahalla(mahalla_id)
        query = query.where(Alert.mahalla_id == mahalla_id)
    escalated_first = case((Alert.state == AlertState.ESCALATED, 0), else_=1)
    ids = (
        await session.scalars(
            query.order_by(escalated_first, Alert.priority.desc(), Alert.opened_at, Alert.id).limit(
                limit
            )
        )
    ).all()
    views = await alert_views(session, ids)
    return [views[alert_id] for alert_id in ids]

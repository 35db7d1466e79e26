"""A dispatcher answers a camera alert in ``verify`` (DESIGN §9.3): confirm or dismiss it.

- ``confirm`` (``POST /api/v1/alerts/{id}/confirm``): ``verify → new``; the priority becomes an
  intrusion's (70) plus the mahalla's risk bonus and the repeat bonus (3+ merged events); the
  category stays ``camera``. The dispatcher's loop, woken by ``Dispatcher.perform``, then
  offers it to the nearest post like any new alert.
- ``dismiss`` (``POST /api/v1/alerts/{id}/dismiss {"last_event_id": N}``): ``verify →
  cancelled`` with outcome ``false_alarm`` — unless an event newer than ``N`` (the newest the
  dispatcher saw) merged into it meanwhile: ``NewEvidence`` (409 ``new_evidence``), so nobody
  dismisses a person they have not seen.

Both lock the alert row first (a merge of a new event holds that lock until its commit, so the
newest event read here is the newest there is), move it through ``alerts.state.transition``
(audit row, ops log line, ``alert.updated`` feed row) and never commit: the dispatcher's
``perform`` runs each in one transaction. ``GET /api/v1/alerts/{id}/camera-events`` lists the
events merged into a camera alert with their snapshot links, for the console's verify panel
(dispatchers and admins only: snapshots show people).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from alertnet.alerts.priority import confirmed_priority
from alertnet.alerts.state import IllegalTransition, transition
from alertnet.alerts.views import alert_views, iso
from alertnet.auth.deps import DbSession, DispatcherActor
from alertnet.dispatch.engine import Dispatcher
from alertnet.dispatch.locks import lock_alert
from alertnet.dispatch.notifier import StateNotice
from alertnet.errors import Conflict, NotFound
from alertnet.models import Alert, AlertCategory, AlertState, Event, Mahalla
from alertnet.validation import Int64

__all__ = ["NewEvidence", "confirm", "dismiss", "router"]

FALSE_ALARM = "false_alarm"


class NewEvidence(Conflict):
    """An event newer than the one the dispatcher saw merged into the alert."""

    code = "new_evidence"


async def _verifying(session: AsyncSession, alert_id: int, to_state: AlertState) -> Alert:
    alert = await lock_alert(session, alert_id)
    if alert is None:
        raise NotFound(f"no alert {alert_id}")
    if alert.state != AlertState.VERIFY:
        raise IllegalTransition(alert.id, alert.state, to_state)
    return alert


async def newest_event_id(session: AsyncSession, alert_id: int) -> int | None:
    return await session.scalar(select(func.max(Event.id)).where(Event.alert_id == alert_id))


async def confirm(session: AsyncSession, alert_id: int, actor: str) -> Sequence[StateNotice]:
    """``verify → new`` at an intrusion's priority; the dispatcher's loop offers it next."""
    alert = await _verifying(session, alert_id, AlertState.NEW)
    risk = (
        await session.scalar(select(Mahalla.risk).where(Mahalla.id == alert.mahalla_id))
        if alert.mahalla_id is not None
        else None
    )
    alert.priority = confirmed_priority(risk, alert.press_count)
    await transition(
        session, alert, AlertState.NEW, actor=actor, reason="confirmed by a dispatcher"
    )
    return []


async def dismiss(
    session: AsyncSession, alert_id: int, last_event_id: int, actor: str
) -> Sequence[StateNotice]:
    """``verify → cancelled`` as a false alarm, unless newer evidence merged (409)."""
    alert = await _verifying(session, alert_id, AlertState.CANCELLED)
    newest = await newest_event_id(session, alert.id)
    if newest is not None and newest > last_event_id:
        raise NewEvidence(
            f"alert {alert.id} has event {newest}, newer than {last_event_id}: look again"
        )
    alert.outcome = FALSE_ALARM
    await transition(
        session,
        alert,
        AlertState.CANCELLED,
        actor=actor,
        reason=f"dismissed as a false alarm (last event seen: {last_event_id})",
    )
    return []


async def camera_events(session: AsyncSession, alert_id: int) -> list[dict[str, Any]]:
    """The events merged into an alert, oldest first, with what the camera saw."""
    rows = await session.execute(
        select(Event.id, Event.received_at, Event.details)
        .where(Event.alert_id == alert_id)
        .order_by(Event.id)
    )
    events = []
    for event_id, received_at, details in rows:
        found = details if isinstance(details, dict) else {}
        events.append(
            {
                "id": event_id,
                "received_at": iso(received_at),
                "label": found.get("label"),
                "sub_label": found.get("sub_label"),
                "zones": found.get("zones") or [],
                "score": found.get("score"),
                "start_time": found.get("start_time"),
                "end_time": found.get("end_time"),
                "snapshot": found.get("snapshot"),
                "camera": found.get("camera"),
            }
        )
    return events


# -- HTTP ---------------------------------------------------------------------------------------

router = APIRouter(prefix="/api/v1", tags=["dispatch"])


class DismissIn(BaseModel):
    last_event_id: Annotated[int, Field(ge=0, le=2**63 - 1)]


def _dispatcher(request: Request) -> Dispatcher:
    dispatcher: Dispatcher = request.app.state.runtime.dispatcher
    return dispatcher


async def _alert_now(request: Request, alert_id: int, actor: DispatcherActor) -> dict[str, Any]:
    async with request.app.state.runtime.session_factory() as session:
        found = await alert_views(session, [alert_id])
    return actor.scope.shown_alert(found[alert_id])


@router.post(
    "/alerts/{alert_id}/confirm",
    summary="Confirm a camera alert in verify: it is dispatched like an intrusion",
    responses={409: {"description": "the alert is not in verify (code illegal_transition)"}},
)
async def confirm_alert(
    alert_id: Int64, request: Request, actor: DispatcherActor
) -> dict[str, Any]:
    await _dispatcher(request).perform(
        functools.partial(confirm, alert_id=alert_id, actor=actor.username)
    )
    return await _alert_now(request, alert_id, actor)


@router.post(
    "/alerts/{alert_id}/dismiss",
    summary="Dismiss a camera alert in verify as a false alarm",
    responses={
        409: {
            "description": "newer evidence merged (code new_evidence), or the alert is not "
            "in verify (code illegal_transition)"
        }
    },
)
async def dismiss_alert(
    alert_id: Int64, body: DismissIn, request: Request, actor: DispatcherActor
) -> dict[str, Any]:
    await _dispatcher(request).perform(
        functools.partial(
            dismiss, alert_id=alert_id, last_event_id=body.last_event_id, actor=actor.username
        )
    )
    return await _alert_now(request, alert_id, actor)


@router.get(
    "/alerts/{alert_id}/camera-events",
    summary="The camera events merged into an alert, with snapshot links",
)
async def list_camera_events(
    alert_id: Int64, session: DbSession, actor: DispatcherActor
) -> list[dict[str, Any]]:
    alert = await session.get(Alert, alert_id)
    if alert is None:
        raise NotFound(f"no alert {alert_id}")
    if alert.category != AlertCategory.CAMERA:
        return []
    return await camera_events(session, alert_id)

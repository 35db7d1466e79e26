"""The dispatchers' shared work on an alert over HTTP (DESIGN §10): notes, acknowledgement,
action-plan ticks, and the plans themselves.

Thin edges: each endpoint checks the role, locks the alert (``alerts.locks.lock_alert``: a
row lock on PostgreSQL, the write lock on SQLite, so two dispatchers acting at once are
serialized), makes one service call (``alerts.notes``, ``alerts.plans``) that writes the
record and its feed row, and answers from the same transaction, committed by ``get_session``.
Notes, ticks and acknowledgement are the console's: dispatchers and admins write them; plans
are edited by admins. Reading them back is the alert's record (``GET /alerts/{id}``), for the
scopes that ``Scope.reads_alert_workflow`` allows.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from alertnet.alerts import notes, plans
from alertnet.alerts.locks import lock_alert
from alertnet.alerts.views import alert_views, iso
from alertnet.auth.deps import AdminActor, DbSession, DispatcherActor
from alertnet.errors import InvalidInput, NotFound
from alertnet.models import Alert
from alertnet.realtime.feed import FeedMessage, append
from alertnet.validation import Int64, SafeLine, SafeStr

router = APIRouter(prefix="/api/v1", tags=["workflow"])

RowId = Int64
StepNumber = Annotated[int, Path(ge=1, le=plans.MAX_STEPS)]
Category = Annotated[str, Path(max_length=16, pattern=r"^[a-z_]+$")]


class NoteIn(BaseModel):
    text: Annotated[SafeStr, StringConstraints(min_length=1, max_length=notes.NOTE_MAX_CHARS)]


class StepIn(BaseModel):
    """One step: ``key`` of a shipped step, or an admin's own ``text``."""

    model_config = ConfigDict(extra="forbid")

    key: Annotated[SafeLine, StringConstraints(max_length=40)] | None = None
    text: Annotated[SafeLine, StringConstraints(max_length=plans.STEP_MAX_CHARS)] | None = None
    not_silent: bool = False


class PlanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    steps: list[StepIn] = Field(max_length=plans.MAX_STEPS)


async def _locked_alert(session: DbSession, alert_id: int) -> Alert:
    alert = await lock_alert(session, alert_id)
    if alert is None:
        raise NotFound(f"no alert {alert_id}")
    return alert


@router.post(
    "/alerts/{alert_id}/notes",
    status_code=201,
    summary="Add a note to an alert, shared with every dispatcher",
)
async def add_note(
    alert_id: RowId, body: NoteIn, session: DbSession, actor: DispatcherActor
) -> dict[str, Any]:
    text = body.text.strip()
    if not text:
        raise InvalidInput("the note is empty")
    alert = await _locked_alert(session, alert_id)
    note = await notes.add_note(session, alert, text, author=actor.username)
    await plans.announce(session, alert, "note", by=actor.username, note=note.view())
    return note.view()


@router.post(
    "/alerts/{alert_id}/acknowledge",
    summary="Acknowledge an open alert for every dispatcher (silences its escalation alarm)",
)
async def acknowledge(
    alert_id: RowId, session: DbSession, actor: DispatcherActor
) -> dict[str, Any]:
    alert = await _locked_alert(session, alert_id)
    if await notes.acknowledge(session, alert, actor=actor.username):
        view = (await alert_views(session, [alert.id]))[alert.id]
        await append(
            session,
            [
                # The alert's view changed: everyone who follows the alert hears it.
                FeedMessage(
                    "alert.updated",
                    view,
                    alert_id=alert.id,
                    post_id=alert.post_id,
                    mahalla_id=alert.mahalla_id,
                )
            ],
        )
        await plans.announce(
            session, alert, "acknowledge", by=actor.username, at=iso(alert.acknowledged_at)
        )
        return actor.scope.shown_alert(view)
    return actor.scope.shown_alert((await alert_views(session, [alert.id]))[alert.id])


@router.post(
    "/alerts/{alert_id}/steps/{n}",
    summary="Tick step n (1-based) of the alert's action plan",
)
async def tick_step(
    alert_id: RowId, n: StepNumber, session: DbSession, actor: DispatcherActor
) -> dict[str, Any]:
    alert = await _locked_alert(session, alert_id)
    tick = await plans.tick_step(session, alert, n, actor=actor.username)
    if tick["new"]:
        step = {key: value for key, value in tick.items() if key != "new"}
        await plans.announce(session, alert, "step", by=actor.username, step=step)
    return tick


@router.get("/action-plans", summary="Every category's action plan (the default where unedited)")
async def list_plans(session: DbSession, actor: DispatcherActor) -> list[dict[str, Any]]:
    return await plans.all_plans(session)


@router.get("/action-plans/{category}", summary="One category's action plan")
async def get_plan(
    category: Category, session: DbSession, actor: DispatcherActor
) -> dict[str, Any]:
    return await plans.plan_of(session, category)


@router.put("/action-plans/{category}", summary="Replace a category's action plan (admin)")
async def put_plan(
    category: Category, body: PlanIn, session: DbSession, actor: AdminActor
) -> dict[str, Any]:
    steps = [step.model_dump(exclude_none=True) for step in body.steps]
    return await plans.save_plan(session, category, steps, actor=actor.username)


@router.delete(
    "/action-plans/{category}", summary="Return a category to the shipped default plan (admin)"
)
async def reset_plan(category: Category, session: DbSession, actor: AdminActor) -> dict[str, Any]:
    return await plans.reset_plan(session, category)

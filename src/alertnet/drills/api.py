"""Training drills over HTTP (DESIGN §12): a dispatcher starts or stops one; the console and the
mahalla team read how it went.

``POST /api/v1/drills {"mahalla", "devices": N | [eui…], "spread_s"}`` (dispatcher, admin) →
the drill; its events are then created by the runtime's drill runner as they fall due.
``GET /api/v1/drills`` and ``GET /api/v1/drills/{id}``: dispatchers and admins read every drill,
an observer (the mahalla team) its own mahalla's, a post none (``Scope``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StringConstraints
from sqlalchemy import select

from alertnet.auth.deps import Actor, CurrentUser, DbSession, DispatcherActor
from alertnet.db import unit_of_work
from alertnet.drills.report import drill_report, list_drills
from alertnet.drills.service import (
    MAX_DRILL_DEVICES,
    MAX_SPREAD_S,
    DrillRequest,
    start_drill,
    stop_drill,
)
from alertnet.errors import NotFound
from alertnet.models import Drill, Mahalla, utcnow
from alertnet.validation import INT32_MAX, SafeLine

router = APIRouter(prefix="/api/v1", tags=["drills"])

MahallaName = Annotated[SafeLine, StringConstraints(min_length=1, max_length=120)]
MahallaId = Annotated[StrictInt, Field(ge=1, le=INT32_MAX)]
Eui = Annotated[str, StringConstraints(pattern=r"^[0-9A-Fa-f]{16}$")]
DrillId = Annotated[int, Field(ge=1, le=INT32_MAX)]


class DrillIn(BaseModel):
    """``mahalla``: its id or its name; ``devices``: how many (alertnet chooses) or which
    (EUIs); ``spread_s``: the events are due evenly over this many seconds."""

    model_config = ConfigDict(extra="forbid")

    mahalla: MahallaId | MahallaName
    devices: (
        Annotated[StrictInt, Field(ge=1, le=MAX_DRILL_DEVICES)]
        | Annotated[list[Eui], Field(min_length=1, max_length=MAX_DRILL_DEVICES)]
    )
    spread_s: Annotated[StrictInt, Field(ge=0, le=MAX_SPREAD_S)] = 0


async def _report(request: Request, drill_id: int, actor: Actor) -> dict[str, Any]:
    async with request.app.state.runtime.session_factory() as session:
        found = (
            await session.execute(
                select(Drill, Mahalla.name)
                .join(Mahalla, Mahalla.id == Drill.mahalla_id)
                .where(Drill.id == drill_id)
            )
        ).one_or_none()
        if found is None:
            raise NotFound(f"no drill {drill_id}")
        drill, name = found
        actor.scope.ensure_sees_mahalla(drill.mahalla_id)
        return await drill_report(session, drill, name, actor.scope)


@router.post(
    "/drills",
    summary="Start a training drill in a mahalla",
    status_code=201,
    responses={
        409: {
            "description": "not enough devices free (drill_not_enough_devices), or a named "
            "device cannot take part (drill_device_unavailable)"
        },
        422: {"description": "unknown_mahalla, drill_device_unknown, drill_device_elsewhere"},
    },
)
async def start(body: DrillIn, request: Request, actor: DispatcherActor) -> dict[str, Any]:
    runtime = request.app.state.runtime
    drill_request = DrillRequest(body.mahalla, body.devices, body.spread_s)
    async with unit_of_work(runtime.session_factory) as session:
        drill = await start_drill(session, drill_request, started_by=actor.username, now=utcnow())
        drill_id = drill.id
    runtime.drills.wake()
    return await _report(request, drill_id, actor)


@router.post(
    "/drills/{drill_id}/stop",
    summary="Stop a running drill: its events not yet created are skipped",
    responses={409: {"description": "the drill has already ended (drill_not_running)"}},
)
async def stop(drill_id: DrillId, request: Request, actor: DispatcherActor) -> dict[str, Any]:
    async with unit_of_work(request.app.state.runtime.session_factory) as session:
        await stop_drill(session, drill_id, now=utcnow())
    return await _report(request, drill_id, actor)


@router.get("/drills", summary="Drills, newest first (an observer: its mahalla's)")
async def index(
    session: DbSession,
    actor: CurrentUser,
    limit: int = Query(default=50, ge=1, le=500),
    before: DrillId | None = None,
) -> list[dict[str, Any]]:
    actor.scope.ensure_reads_statistics("mahalla")
    return await list_drills(session, actor.scope, limit=limit, before=before)


@router.get(
    "/drills/{drill_id}",
    summary="How a drill went: each alert's times, each post's answers and misses",
)
async def report(drill_id: DrillId, request: Request, actor: CurrentUser) -> dict[str, Any]:
    actor.scope.ensure_reads_statistics("mahalla")
    return await _report(request, drill_id, actor)

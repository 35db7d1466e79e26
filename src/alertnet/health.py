"""Liveness and readiness probes: ``/healthz`` (the process runs) and ``/readyz`` (it can work).

Every process serves both, whatever its roles (``alertnet.roles``). ``/readyz`` is honest about
every part the process runs (DESIGN §14), and only those: it answers 503 while the database
does not answer, the MQTT ingest (``broker``; or the ChirpStack ingest, when configured:
``chirpstack``; or Frigate's: ``frigate``) is not connected, any of the process's tasks is down
or restarting too often (``alertnet.supervisor``), or the ingest pipeline has left an uplink
waiting longer than ``PIPELINE_STALLED_AFTER_S``. A process without the ``ingest`` role has no
MQTT ingest and reports no ``broker``: its downlink publisher (advisory progress LEDs) is a
task like any other, and a broker outage does not make an API unready. The body keeps its
first fields (``ready``, ``database``, ``broker`` where it runs), adds ``roles``, ``tasks``
(each task's state) and ``pipeline``, and ``failing`` names every part that is not ``ok``; a
503 also carries ``error``, ``detail`` and ``code`` like every error.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

router = APIRouter()

#: An uplink unanswered this long means the pipeline is stuck (a batch takes milliseconds).
PIPELINE_STALLED_AFTER_S: Final = 10.0
DATABASE_CHECK_TIMEOUT_S: Final = 3.0
OK: Final = "ok"


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": OK}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """Ready when the database answers, the process's MQTT connections for ingest are
    connected and every one of its tasks runs."""
    runtime = request.app.state.runtime
    checks: dict[str, Any] = {"database": await _database(runtime)}
    if runtime.mqtt is not None:  # only in a process with the ingest role
        checks["broker"] = OK if runtime.broker_connected() else "disconnected"
    chirpstack = getattr(runtime, "chirpstack", None)
    if chirpstack is not None:  # only when ALERTNET_CHIRPSTACK_MQTT_URL is set
        checks["chirpstack"] = OK if chirpstack.connected.is_set() else "disconnected"
    frigate = getattr(runtime, "frigate", None)
    if frigate is not None:  # only when ALERTNET_FRIGATE_MQTT_URL is set
        checks["frigate"] = OK if frigate.connected.is_set() else "disconnected"
    waited_s = runtime.pipeline.oldest_wait_s()
    checks["pipeline"] = (
        OK
        if waited_s < PIPELINE_STALLED_AFTER_S
        else f"stalled: an uplink has waited {waited_s:.0f} s"
    )
    tasks: dict[str, str] = runtime.tasks.states()
    failing = [name for name, state in checks.items() if state != OK]
    failing += [f"task:{name}" for name, state in tasks.items() if state != OK]
    body: dict[str, Any] = {
        "ready": not failing,
        **checks,
        "roles": sorted(runtime.plan.roles),
        "tasks": tasks,
        "failing": failing,
    }
    if failing:
        # Every error body carries the error triple (DESIGN §14), a 503 from here included.
        body |= {
            "error": "not_ready",
            "code": "not_ready",
            "detail": "not ready: " + ", ".join(failing),
        }
    return JSONResponse(body, status_code=503 if failing else 200)


async def _database(runtime: Any) -> str:
    try:
        async with asyncio.timeout(DATABASE_CHECK_TIMEOUT_S):
            async with runtime.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
    except Exception as exc:  # any driver error, or no answer in time, means not ready
        return f"error: {type(exc).__name__}"
    return OK

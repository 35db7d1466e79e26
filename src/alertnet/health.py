"""Liveness and readiness probes: ``/healthz`` (the process runs) and ``/readyz`` (it can work)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

router = APIRouter()


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """Ready when the database answers and the MQTT ingest is connected to its broker."""
    runtime = request.app.state.runtime
    checks: dict[str, Any] = {}
    try:
        async with runtime.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # any driver error means not ready
        checks["database"] = f"error: {type(exc).__name__}"
    checks["broker"] = "ok" if runtime.broker_connected() else "disconnected"
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse({"ready": ready, **checks}, status_code=200 if ready else 503)

"""Console-facing read API of the gateway registry: ``GET /api/v1/gateways``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict
from sqlalchemy.ext.asyncio import AsyncSession

from alertnet.gateways import service

router = APIRouter(prefix="/api/v1", tags=["gateways"])


class GatewayOut(BaseModel):
    """A gateway as the console shows it (fields may be added, never renamed)."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    transport: str
    name: str
    lat: float | None
    lon: float | None
    online: bool
    last_seen_at: datetime | None


async def _read_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session on the running app's database; read-only, so nothing to commit."""
    async with request.app.state.runtime.session_factory() as session:
        yield session


@router.get("/gateways", summary="Every LoRa gateway: transport, online state, last seen")
async def get_gateways(
    session: Annotated[AsyncSession, Depends(_read_session)],
) -> list[GatewayOut]:
    return [GatewayOut.model_validate(gateway) for gateway in await service.list_gateways(session)]

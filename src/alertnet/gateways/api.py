"""Console-facing read API of the gateway registry: ``GET /api/v1/gateways``."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from alertnet.auth.deps import DbSession, DispatcherActor
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


@router.get("/gateways", summary="Every LoRa gateway: transport, online state, last seen")
async def get_gateways(session: DbSession, actor: DispatcherActor) -> list[GatewayOut]:
    return [GatewayOut.model_validate(gateway) for gateway in await service.list_gateways(session)]

"""Admin endpoints: register devices, posts, mahallas and users; disable devices and users.

The same services as the CLI (``alertnet device add`` …), so both validate alike. A generated
device key or password is in the answer once and never again (it is not stored in the clear).
Reads of these resources live with their consoles (``GET /devices``, ``/posts``, ``/mahallas``,
``/gateways``).
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from alertnet.auth.deps import AdminActor, DbSession
from alertnet.auth.users import create_user, get_user_by_username
from alertnet.devices.service import add_device, get_device_by_eui, parse_key_hex
from alertnet.dispatch.service import post_view
from alertnet.mahallas import add_mahalla
from alertnet.models import Device, DeviceStatus
from alertnet.posts.service import add_post

router = APIRouter(prefix="/api/v1", tags=["admin"])


class DeviceIn(BaseModel):
    eui: str
    kind: str
    lat: float
    lon: float
    key: str | None = Field(default=None, description="32 hex characters; generated if absent")
    mahalla: str | None = None
    site: str | None = None
    name: str = ""
    address: str = ""
    supervision_interval_s: int | None = None


class DeviceStatusIn(BaseModel):
    status: Literal["active", "disabled"]


class PostIn(BaseModel):
    callsign: str
    lat: float | None = None
    lon: float | None = None
    mahalla: str | None = None


class MahallaIn(BaseModel):
    name: str
    risk: Literal["red", "yellow", "green"]
    district: str = ""
    region: str = ""
    lat: float | None = None
    lon: float | None = None
    households: int = Field(default=0, ge=0)
    businesses: int = Field(default=0, ge=0)


class UserIn(BaseModel):
    username: str
    role: Literal["admin", "dispatcher", "post", "observer"]
    post: str | None = None
    mahalla: str | None = None
    password: str | None = None


class UserActiveIn(BaseModel):
    active: bool


def _device_view(device: Device) -> dict[str, Any]:
    return {
        "eui": device.eui,
        "kind": device.kind,
        "site": device.site,
        "name": device.name,
        "address": device.address,
        "lat": device.lat,
        "lon": device.lon,
        "mahalla_id": device.mahalla_id,
        "status": device.status,
        "supervision_interval_s": device.supervision_interval_s,
    }


@router.post("/devices", status_code=201, summary="Register a device (its key is shown once)")
async def create_device(body: DeviceIn, session: DbSession, actor: AdminActor) -> dict[str, Any]:
    device, key = await add_device(
        session,
        body.eui,
        kind=body.kind,
        lat=body.lat,
        lon=body.lon,
        key=parse_key_hex(body.key) if body.key is not None else None,
        mahalla_name=body.mahalla,
        site=body.site,
        name=body.name,
        address=body.address,
        supervision_interval_s=body.supervision_interval_s,
    )
    generated = {"key": key.hex()} if body.key is None else {}
    return {**_device_view(device), **generated}


@router.patch(
    "/devices/{eui}", summary="Disable a device (its uplinks are quarantined) or re-enable it"
)
async def set_device_status(
    eui: str, body: DeviceStatusIn, session: DbSession, actor: AdminActor
) -> dict[str, Any]:
    device = await get_device_by_eui(session, eui)
    device.status = DeviceStatus(body.status).value
    return _device_view(device)


@router.post("/posts", status_code=201, summary="Register a mobile police post (off duty)")
async def create_post(body: PostIn, session: DbSession, actor: AdminActor) -> dict[str, Any]:
    post = await add_post(
        session, body.callsign, lat=body.lat, lon=body.lon, home_mahalla_name=body.mahalla
    )
    return post_view(post)


@router.post("/mahallas", status_code=201, summary="Register a mahalla with its risk class")
async def create_mahalla(body: MahallaIn, session: DbSession, actor: AdminActor) -> dict[str, Any]:
    mahalla = await add_mahalla(
        session,
        body.name,
        risk=body.risk,
        district=body.district,
        region=body.region,
        lat=body.lat,
        lon=body.lon,
        households=body.households,
        businesses=body.businesses,
    )
    return {"id": mahalla.id, "name": mahalla.name, "risk": mahalla.risk}


@router.post(
    "/users", status_code=201, summary="Create a user (a generated password is shown once)"
)
async def create_account(body: UserIn, session: DbSession, actor: AdminActor) -> dict[str, Any]:
    user, generated = await create_user(
        session,
        body.username,
        body.role,
        password=body.password,
        post_callsign=body.post,
        mahalla_name=body.mahalla,
    )
    answer: dict[str, Any] = {"id": user.id, "username": user.username, "role": user.role}
    if generated is not None:
        answer["password"] = generated
    return answer


@router.patch(
    "/users/{username}", summary="Deactivate a user (its tokens stop working) or reactivate"
)
async def set_user_active(
    username: str, body: UserActiveIn, session: DbSession, actor: AdminActor
) -> dict[str, Any]:
    user = await get_user_by_username(session, username)
    user.active = body.active
    return {"id": user.id, "username": user.username, "role": user.role, "active": user.active}

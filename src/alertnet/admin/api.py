"""Admin endpoints: register devices, posts, mahallas and users; disable devices; change users.

The same services as the CLI (``alertnet device add`` …), so both validate alike. A generated
device key or password is in the answer once and never again (it is not stored in the clear).
Reads of these resources live with their consoles (``GET /devices``, ``/posts``, ``/mahallas``,
``/gateways``).

Every string in a request model is ``alertnet.validation`` text with a length and every number
has a range, so no request value reaches the database as something it cannot store (a 422
instead of a 500). A demo device (``alertnet.demo``) cannot be re-enabled on a server started
without ``--demo``: its key is published.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, Field, StringConstraints

from alertnet.auth.deps import AdminActor, DbSession
from alertnet.auth.passwords import MAX_LENGTH as MAX_PASSWORD_LENGTH
from alertnet.auth.users import (
    AccountChange,
    create_user,
    get_user_by_username,
    set_active,
    set_password,
    set_role,
)
from alertnet.devices.service import (
    MAX_ADDRESS_LENGTH,
    MAX_SUPERVISION_S,
    MIN_SUPERVISION_S,
    add_device,
    get_device_by_eui,
    parse_key_hex,
)
from alertnet.devices.service import MAX_NAME_LENGTH as MAX_DEVICE_NAME_LENGTH
from alertnet.errors import Conflict, InvalidInput
from alertnet.mahallas import MAX_NAME_LENGTH as MAX_MAHALLA_NAME_LENGTH
from alertnet.mahallas import add_mahalla
from alertnet.models import Device, DeviceStatus, User
from alertnet.posts.service import MAX_CALLSIGN_LENGTH, add_post
from alertnet.posts.views import post_view
from alertnet.validation import Latitude, Longitude, SafeLine, SafeStr

router = APIRouter(prefix="/api/v1", tags=["admin"])

# An EUI as printed on a label may carry separators: 16 hex digits and up to 7 of them.
MAX_EUI_INPUT_LENGTH = 23
MAX_KEY_INPUT_LENGTH = 64
MAX_USERNAME_LENGTH = 80
# Far beyond any mahalla (a few thousand households), far below what a column holds.
MAX_MAHALLA_COUNT = 10_000_000

EuiText = Annotated[SafeLine, StringConstraints(min_length=1, max_length=MAX_EUI_INPUT_LENGTH)]
Callsign = Annotated[SafeLine, StringConstraints(min_length=1, max_length=MAX_CALLSIGN_LENGTH)]
MahallaName = Annotated[
    SafeLine, StringConstraints(min_length=1, max_length=MAX_MAHALLA_NAME_LENGTH)
]
Username = Annotated[SafeLine, StringConstraints(min_length=1, max_length=MAX_USERNAME_LENGTH)]
Password = Annotated[SafeStr, StringConstraints(min_length=1, max_length=MAX_PASSWORD_LENGTH)]
MahallaCount = Annotated[int, Field(ge=0, le=MAX_MAHALLA_COUNT)]
RoleName = Literal["admin", "dispatcher", "post", "observer"]


class DeviceIn(BaseModel):
    eui: EuiText
    kind: Annotated[SafeLine, StringConstraints(min_length=1, max_length=32)]
    lat: Latitude
    lon: Longitude
    key: Annotated[SafeLine, StringConstraints(max_length=MAX_KEY_INPUT_LENGTH)] | None = Field(
        default=None, description="32 hex characters; generated if absent"
    )
    mahalla: MahallaName | None = None
    site: Annotated[SafeLine, StringConstraints(min_length=1, max_length=16)] | None = None
    name: Annotated[SafeLine, StringConstraints(max_length=MAX_DEVICE_NAME_LENGTH)] = ""
    address: Annotated[SafeLine, StringConstraints(max_length=MAX_ADDRESS_LENGTH)] = ""
    supervision_interval_s: (
        Annotated[int, Field(ge=MIN_SUPERVISION_S, le=MAX_SUPERVISION_S)] | None
    ) = None


class DeviceStatusIn(BaseModel):
    status: Literal["active", "disabled"]


class PostIn(BaseModel):
    callsign: Callsign
    lat: Latitude | None = None
    lon: Longitude | None = None
    mahalla: MahallaName | None = None


class MahallaIn(BaseModel):
    name: MahallaName
    risk: Literal["red", "yellow", "green"]
    district: Annotated[SafeLine, StringConstraints(max_length=MAX_MAHALLA_NAME_LENGTH)] = ""
    region: Annotated[SafeLine, StringConstraints(max_length=MAX_MAHALLA_NAME_LENGTH)] = ""
    lat: Latitude | None = None
    lon: Longitude | None = None
    households: MahallaCount = 0
    businesses: MahallaCount = 0


class UserIn(BaseModel):
    username: Username
    role: RoleName
    post: Callsign | None = None
    mahalla: MahallaName | None = None
    password: Password | None = None


class UserChangeIn(BaseModel):
    """Any of: enable or disable; a new role (with its binding); a new password.

    Disabling, or a new password, revokes the user's tokens. The last active admin can be
    neither disabled nor given another role; a move up to admin or dispatcher needs a new
    password that meets their longer minimum.
    """

    active: bool | None = None
    role: RoleName | None = None
    post: Callsign | None = Field(default=None, description="with role post")
    mahalla: MahallaName | None = Field(default=None, description="with role observer")
    password: Password | None = None


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


def _user_view(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "username": user.username,
        "role": user.role,
        "post_id": user.post_id,
        "mahalla_id": user.mahalla_id,
        "active": user.active,
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
    eui: Annotated[SafeLine, Path(min_length=1, max_length=MAX_EUI_INPUT_LENGTH)],
    body: DeviceStatusIn,
    request: Request,
    session: DbSession,
    actor: AdminActor,
) -> dict[str, Any]:
    device = await get_device_by_eui(session, eui)
    status = DeviceStatus(body.status)
    if (
        device.demo
        and status is DeviceStatus.ACTIVE
        and not request.app.state.runtime.settings.demo
    ):
        raise Conflict(
            f"device {device.eui} is a demo device with a published key: "
            "it is enabled only while alertnet runs with --demo"
        )
    device.status = status.value
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
    answer = _user_view(user)
    if generated is not None:
        answer["password"] = generated
    return answer


@router.patch(
    "/users/{username}",
    summary="Disable or re-enable a user, change its role or its password",
    responses={409: {"description": "the last active admin, or a demo account"}},
)
async def change_account(
    username: Annotated[SafeLine, Path(min_length=1, max_length=MAX_USERNAME_LENGTH)],
    body: UserChangeIn,
    session: DbSession,
    actor: AdminActor,
) -> dict[str, Any]:
    if body.role is None and (body.post is not None or body.mahalla is not None):
        raise InvalidInput("post and mahalla bind a role: give them together with role")
    user = await get_user_by_username(session, username)
    changes: list[AccountChange] = []
    if body.role is not None:
        changes.append(
            await set_role(
                session,
                user,
                body.role,
                post_callsign=body.post,
                mahalla_name=body.mahalla,
                password=body.password,
            )
        )
    elif body.password is not None:
        changes.append(await set_password(session, user, body.password))
    if body.active is not None:
        changes.append(await set_active(session, user, body.active))
    return {
        **_user_view(user),
        "revoked_tokens": sum(change.revoked_tokens for change in changes),
    }

"""Admin endpoints: register devices, posts, mahallas and users; disable devices; change users
and mahallas (households and businesses: DESIGN §12).

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
    camera_setup,
    get_device_by_eui,
    parse_dc09_account,
    parse_dc09_key,
    parse_key_hex,
    set_dc09,
)
from alertnet.devices.service import MAX_NAME_LENGTH as MAX_DEVICE_NAME_LENGTH
from alertnet.errors import Conflict, InvalidInput
from alertnet.mahallas import MAX_NAME_LENGTH as MAX_MAHALLA_NAME_LENGTH
from alertnet.mahallas import add_mahalla
from alertnet.models import Device, DeviceStatus, User
from alertnet.posts.service import MAX_CALLSIGN_LENGTH, add_post
from alertnet.posts.views import post_view
from alertnet.premises import Premises, PremisesIn, set_premises
from alertnet.programme import registry as programme_registry
from alertnet.programme.registry import MahallaChange, mahalla_view
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
Dc09Account = Annotated[SafeLine, StringConstraints(min_length=3, max_length=16)]
Dc09Key = Annotated[SafeLine, StringConstraints(min_length=32, max_length=64)]


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
    silent: bool = Field(default=False, description="a hold-up device: its alerts are silent")
    premises: PremisesIn | None = Field(default=None, description="premises and call list")
    dc09_account: Dc09Account | None = Field(
        default=None, description="an alarm panel's SIA DC-09 account (DESIGN §9.1)"
    )
    dc09_key: Dc09Key | None = Field(
        default=None, description="its AES key, 32/48/64 hex digits (never shown again)"
    )
    camera: Annotated[SafeLine, StringConstraints(min_length=1, max_length=64)] | None = Field(
        default=None, description="kind camera: its Frigate camera name (DESIGN §9.3)"
    )
    camera_labels: Annotated[SafeLine, StringConstraints(max_length=200)] | None = Field(
        default=None, description="comma-separated labels that alert (default person)"
    )
    camera_zones: Annotated[SafeLine, StringConstraints(max_length=500)] | None = Field(
        default=None, description="comma-separated Frigate zones to watch (default all)"
    )
    camera_hours: Annotated[SafeLine, StringConstraints(max_length=5)] | None = Field(
        default=None, description="HH-HH in ALERTNET_TIMEZONE, e.g. 22-06 (default always)"
    )


class DeviceStatusIn(BaseModel):
    """Any of: enable or disable; make it silent or not; replace its premises; its DC-09
    account and key (``null`` removes them; the key is never shown)."""

    status: Literal["active", "disabled"] | None = None
    silent: bool | None = None
    premises: PremisesIn | None = None
    dc09_account: Dc09Account | None = None
    dc09_key: Dc09Key | None = None


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


class MahallaChangeIn(BaseModel):
    """Any of: risk class, district, region, centroid (both), households, businesses."""

    risk: Literal["red", "yellow", "green"] | None = None
    district: Annotated[SafeLine, StringConstraints(max_length=MAX_MAHALLA_NAME_LENGTH)] | None = (
        None
    )
    region: Annotated[SafeLine, StringConstraints(max_length=MAX_MAHALLA_NAME_LENGTH)] | None = None
    lat: Latitude | None = None
    lon: Longitude | None = None
    households: MahallaCount | None = None
    businesses: MahallaCount | None = None


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
        "silent": device.silent,
        "premises": Premises.of_device(device).as_dict(),
        "dc09_account": device.dc09_account,
        "dc09_encrypted": device.dc09_key is not None,
        "camera": device.camera_name,
        "camera_labels": device.camera_labels,
        "camera_zones": device.camera_zones,
        "camera_hours": device.camera_hours,
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
        silent=body.silent,
        premises=Premises.of(body.premises) if body.premises is not None else None,
        dc09_account=body.dc09_account,
        dc09_key=parse_dc09_key(body.dc09_key) if body.dc09_key is not None else None,
        camera=camera_setup(body.camera, body.camera_labels, body.camera_zones, body.camera_hours),
    )
    no_frames = body.dc09_account is not None or body.camera is not None
    generated = {"key": key.hex()} if body.key is None and not no_frames else {}
    return {**_device_view(device), **generated}


@router.patch(
    "/devices/{eui}",
    summary="Disable a device (its uplinks are quarantined) or re-enable it; silent; premises",
)
async def set_device_status(
    eui: Annotated[SafeLine, Path(min_length=1, max_length=MAX_EUI_INPUT_LENGTH)],
    body: DeviceStatusIn,
    request: Request,
    session: DbSession,
    actor: AdminActor,
) -> dict[str, Any]:
    if not body.model_fields_set:
        raise InvalidInput("nothing to change: give status, silent, premises or dc09_account")
    device = await get_device_by_eui(session, eui)
    if body.status is not None:
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
    if body.silent is not None:
        device.silent = body.silent
    if body.premises is not None:
        await set_premises(session, device, Premises.of(body.premises))
    if {"dc09_account", "dc09_key"} & body.model_fields_set:
        account = device.dc09_account
        if "dc09_account" in body.model_fields_set:
            account = parse_dc09_account(body.dc09_account) if body.dc09_account else None
        key = device.dc09_key if account is not None else None
        if "dc09_key" in body.model_fields_set:
            key = parse_dc09_key(body.dc09_key) if body.dc09_key else None
        await set_dc09(session, device, account, key)
    return _device_view(device)


@router.put(
    "/devices/{eui}/premises",
    summary="Replace a device's premises and call list (DESIGN §10)",
)
async def put_premises(
    eui: Annotated[SafeLine, Path(min_length=1, max_length=MAX_EUI_INPUT_LENGTH)],
    body: PremisesIn,
    session: DbSession,
    actor: AdminActor,
) -> dict[str, Any]:
    device = await get_device_by_eui(session, eui)
    await set_premises(session, device, Premises.of(body))
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


@router.patch(
    "/mahallas/{name}",
    summary="Change a mahalla: its households and businesses (coverage, DESIGN §12), risk…",
)
async def change_mahalla(
    name: Annotated[SafeLine, Path(min_length=1, max_length=MAX_MAHALLA_NAME_LENGTH)],
    body: MahallaChangeIn,
    session: DbSession,
    actor: AdminActor,
) -> dict[str, Any]:
    if not body.model_fields_set:
        raise InvalidInput("nothing to change: give households, businesses, risk, …")
    change = MahallaChange(**body.model_dump(exclude_unset=True))
    return mahalla_view(await programme_registry.change_mahalla(session, name, change))


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

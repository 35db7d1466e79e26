"""Registering devices: validation of what an installer types, defaults, and the device key.

Defaults (DESIGN §3 leaves the site open): a panic button is ``public``, a medical button is
worn at home (``household``), every alarm is ``business`` — the program's alarm target is
mostly businesses, and the site only feeds coverage figures and the supervision default.
Supervision is 900 s for public panic buttons and 3600 s for everything else.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from alertnet.errors import Conflict, InvalidInput, NotFound
from alertnet.mahallas import check_coordinates, get_mahalla_by_name
from alertnet.models import Device, DeviceKind, DeviceStatus, Site

KEY_BYTES = 16
MAX_NAME_LENGTH = 200
MAX_ADDRESS_LENGTH = 300
PUBLIC_PANIC_SUPERVISION_S = 900
DEFAULT_SUPERVISION_S = 3600
MIN_SUPERVISION_S = 60
MAX_SUPERVISION_S = 7 * 24 * 3600

DEFAULT_SITE = {
    DeviceKind.PANIC_BUTTON: Site.PUBLIC,
    DeviceKind.MEDICAL_BUTTON: Site.HOUSEHOLD,
    DeviceKind.INTRUSION_ALARM: Site.BUSINESS,
    DeviceKind.FIRE_ALARM: Site.BUSINESS,
}

_EUI = re.compile(r"[0-9a-f]{16}")
_KEY = re.compile(r"[0-9a-f]{32}")
_SEPARATORS = re.compile(r"[\s:-]")


def normalize_eui(eui: str) -> str:
    """16 lowercase hex characters; separators an installer may copy from a label are dropped."""
    normalized = _SEPARATORS.sub("", eui).lower()
    if not _EUI.fullmatch(normalized):
        raise InvalidInput(f"EUI {eui!r} is not 16 hex characters")
    return normalized


def parse_key_hex(text: str) -> bytes:
    """A device key from its 32-character hex form (the key itself is never echoed back)."""
    normalized = _SEPARATORS.sub("", text).lower()
    if not _KEY.fullmatch(normalized):
        raise InvalidInput(
            f"key must be 32 hex characters ({KEY_BYTES} bytes), got {len(normalized)} characters"
        )
    return bytes.fromhex(normalized)


def parse_kind(kind: str) -> DeviceKind:
    try:
        return DeviceKind(kind.strip().lower())
    except ValueError:
        choices = ", ".join(member.value for member in DeviceKind)
        raise InvalidInput(f"unknown device kind {kind!r} (one of {choices})") from None


def parse_site(site: str) -> Site:
    try:
        return Site(site.strip().lower())
    except ValueError:
        choices = ", ".join(member.value for member in Site)
        raise InvalidInput(f"unknown site {site!r} (one of {choices})") from None


def default_supervision_s(kind: DeviceKind, site: Site) -> int:
    if kind is DeviceKind.PANIC_BUTTON and site is Site.PUBLIC:
        return PUBLIC_PANIC_SUPERVISION_S
    return DEFAULT_SUPERVISION_S


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    """A device as validated before any database lookup (mahalla and EUI checks come later)."""

    eui: str
    kind: DeviceKind
    site: Site
    lat: float
    lon: float
    key: bytes | None
    mahalla_name: str | None
    name: str
    address: str
    supervision_interval_s: int


def device_spec(
    eui: str,
    *,
    kind: str,
    lat: float,
    lon: float,
    key: bytes | None = None,
    mahalla_name: str | None = None,
    site: str | None = None,
    name: str = "",
    address: str = "",
    supervision_interval_s: int | None = None,
) -> DeviceSpec:
    """Validate everything that needs no database; raises InvalidInput on the first problem."""
    normalized_eui = normalize_eui(eui)
    device_kind = parse_kind(kind)
    device_site = parse_site(site) if site else DEFAULT_SITE.get(device_kind, Site.BUSINESS)
    location = check_coordinates(lat, lon)
    if key is not None and len(key) != KEY_BYTES:
        raise InvalidInput(f"key must be {KEY_BYTES} bytes, got {len(key)}")
    name, address = name.strip(), address.strip()
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidInput(f"device name is longer than {MAX_NAME_LENGTH} characters")
    if len(address) > MAX_ADDRESS_LENGTH:
        raise InvalidInput(f"device address is longer than {MAX_ADDRESS_LENGTH} characters")
    if supervision_interval_s is None:
        supervision_interval_s = default_supervision_s(device_kind, device_site)
    elif not MIN_SUPERVISION_S <= supervision_interval_s <= MAX_SUPERVISION_S:
        raise InvalidInput(
            f"supervision interval {supervision_interval_s} s is outside "
            f"{MIN_SUPERVISION_S}..{MAX_SUPERVISION_S} s"
        )
    mahalla_name = mahalla_name.strip() if mahalla_name else None
    return DeviceSpec(
        eui=normalized_eui,
        kind=device_kind,
        site=device_site,
        lat=location[0],
        lon=location[1],
        key=key,
        mahalla_name=mahalla_name or None,
        name=name,
        address=address,
        supervision_interval_s=supervision_interval_s,
    )


def new_device(spec: DeviceSpec, *, mahalla_id: int | None) -> tuple[Device, bytes]:
    """The ORM row for a validated spec, with its key (freshly generated when none was given)."""
    key = spec.key if spec.key is not None else secrets.token_bytes(KEY_BYTES)
    device = Device(
        eui=spec.eui,
        kind=spec.kind.value,
        site=spec.site.value,
        name=spec.name,
        address=spec.address,
        lat=spec.lat,
        lon=spec.lon,
        mahalla_id=mahalla_id,
        key=key,
        supervision_interval_s=spec.supervision_interval_s,
        status=DeviceStatus.ACTIVE.value,
    )
    return device, key


async def find_device_by_eui(session: AsyncSession, eui: str) -> Device | None:
    return (
        await session.execute(select(Device).where(Device.eui == normalize_eui(eui)))
    ).scalar_one_or_none()


async def get_device_by_eui(session: AsyncSession, eui: str) -> Device:
    """The device with this EUI; NotFound otherwise."""
    device = await find_device_by_eui(session, eui)
    if device is None:
        raise NotFound(f"no device with EUI {normalize_eui(eui)}")
    return device


async def add_device(
    session: AsyncSession,
    eui: str,
    *,
    kind: str,
    lat: float,
    lon: float,
    key: bytes | None = None,
    mahalla_name: str | None = None,
    site: str | None = None,
    name: str = "",
    address: str = "",
    supervision_interval_s: int | None = None,
) -> tuple[Device, bytes]:
    """Register one device; returns it and its key (generated when ``key`` is None)."""
    spec = device_spec(
        eui,
        kind=kind,
        lat=lat,
        lon=lon,
        key=key,
        mahalla_name=mahalla_name,
        site=site,
        name=name,
        address=address,
        supervision_interval_s=supervision_interval_s,
    )
    mahalla_id = None
    if spec.mahalla_name is not None:
        mahalla_id = (await get_mahalla_by_name(session, spec.mahalla_name)).id
    if await find_device_by_eui(session, spec.eui) is not None:
        raise Conflict(f"a device with EUI {spec.eui} already exists")
    device, device_key = new_device(spec, mahalla_id=mahalla_id)
    session.add(device)
    try:
        await session.flush()
    except IntegrityError as exc:  # a concurrent insert of the same EUI
        raise Conflict(f"a device with EUI {spec.eui} already exists") from exc
    return device, device_key

"""Registering devices: validation of what an installer types, defaults, and the device key.

Defaults (DESIGN §3 leaves the site open): a panic button is ``public``, a medical button is
worn at home (``household``), every alarm is ``business`` — the program's alarm target is
mostly businesses, and the site only feeds coverage figures and the supervision default.
Supervision is 900 s for public panic buttons, 90,000 s for alarm panels reporting over SIA
DC-09 (a daily test report, DESIGN §3) and 3600 s for everything else — but a week for a
camera (DESIGN §9.3): Frigate reports objects, not heartbeats, so a quiet street is not a fault.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, replace

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from alertnet.errors import Conflict, InvalidInput, NotFound
from alertnet.mahallas import check_coordinates, get_mahalla_by_name
from alertnet.models import Device, DeviceKind, DeviceStatus, Site
from alertnet.premises import Premises

KEY_BYTES = 16
MAX_NAME_LENGTH = 200
MAX_ADDRESS_LENGTH = 300
PUBLIC_PANIC_SUPERVISION_S = 900
DEFAULT_SUPERVISION_S = 3600
DC09_PANEL_SUPERVISION_S = 90_000
MIN_SUPERVISION_S = 60
MAX_SUPERVISION_S = 7 * 24 * 3600

CAMERA_SUPERVISION_S = MAX_SUPERVISION_S

DEFAULT_SITE = {
    DeviceKind.PANIC_BUTTON: Site.PUBLIC,
    DeviceKind.MEDICAL_BUTTON: Site.HOUSEHOLD,
    DeviceKind.INTRUSION_ALARM: Site.BUSINESS,
    DeviceKind.FIRE_ALARM: Site.BUSINESS,
}

_EUI = re.compile(r"[0-9a-f]{16}")
_KEY = re.compile(r"[0-9a-f]{32}")
_DC09_ACCOUNT = re.compile(r"[0-9A-F]{3,16}")
_DC09_KEY_BYTES = (16, 24, 32)
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


def parse_dc09_account(text: str) -> str:
    """A DC-09 account as panels send it: 3-16 hex digits, kept upper-case (leading zeros count)."""
    account = text.strip().upper()
    if not _DC09_ACCOUNT.fullmatch(account):
        raise InvalidInput(f"DC-09 account {text!r} is not 3-16 hex digits")
    return account


def parse_dc09_key(text: str) -> bytes:
    """A DC-09 AES key from 32, 48 or 64 hex digits (AES-128/192/256); never echoed back."""
    from alertnet.protocol.dc09_crypto import CryptoError, parse_key

    try:
        return parse_key(_SEPARATORS.sub("", text))
    except CryptoError as exc:
        raise InvalidInput(str(exc)) from None


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
    if kind is DeviceKind.CAMERA:
        return CAMERA_SUPERVISION_S
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
    # A hold-up device (DESIGN §3) and the premises (§10; None: only ``address`` is known).
    silent: bool = False
    premises: Premises | None = None
    # An alarm panel over SIA DC-09 (DESIGN §9.1): its account and optional AES key.
    dc09_account: str | None = None
    dc09_key: bytes | None = None
    # A Frigate camera (DESIGN §9.3): its name there and what it watches.
    camera: CameraSetup | None = None


@dataclass(frozen=True, slots=True)
class CameraSetup:
    """A camera's Frigate name, labels, zones (comma-joined) and hours (``HH-HH`` or None)."""

    name: str
    labels: str = "person"
    zones: str = ""
    hours: str | None = None


def camera_setup(
    name: str | None, labels: str | None = None, zones: str | None = None, hours: str | None = None
) -> CameraSetup | None:
    """Validate ``--camera/--labels/--zones/--hours`` (None: not a camera)."""
    from alertnet.protocol.frigate import DEFAULT_LABELS, MAX_NAME_CHARS, parse_hours, parse_names

    if name is None or not name.strip():
        if labels or zones or hours:
            raise InvalidInput("--labels, --zones and --hours need a camera name (--camera)")
        return None
    name = name.strip()
    if len(name) > MAX_NAME_CHARS or not name.isprintable() or " " in name:
        raise InvalidInput(f"camera name {name!r} is not a Frigate camera name")
    try:
        label_names = parse_names(labels or "") or DEFAULT_LABELS
        zone_names = parse_names(zones or "")
        if hours and hours.strip():
            first, last = parse_hours(hours)
            hours = f"{first:02d}-{last:02d}"
        else:
            hours = None
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    joined_labels, joined_zones = ",".join(label_names), ",".join(zone_names)
    if len(joined_labels) > 200 or len(joined_zones) > 500:
        raise InvalidInput("too many labels or zones for one camera")
    return CameraSetup(name, joined_labels, joined_zones, hours)


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
    silent: bool = False,
    premises: Premises | None = None,
    dc09_account: str | None = None,
    dc09_key: bytes | None = None,
    camera: CameraSetup | None = None,
) -> DeviceSpec:
    """Validate everything that needs no database; raises InvalidInput on the first problem.

    ``premises`` (validated by ``alertnet.premises``) carry an address of their own: it wins
    over ``address`` unless it is empty.
    """
    if premises is not None:
        address = premises.address or address
        premises = replace(premises, address=address.strip())
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
    dc09_account = parse_dc09_account(dc09_account) if dc09_account else None
    if dc09_key is not None:
        if dc09_account is None:
            raise InvalidInput("a DC-09 key needs a DC-09 account")
        if len(dc09_key) not in _DC09_KEY_BYTES:
            raise InvalidInput(f"a DC-09 key is 16, 24 or 32 bytes, got {len(dc09_key)}")
    if (camera is not None) != (device_kind is DeviceKind.CAMERA):
        raise InvalidInput("a camera device needs --camera NAME, and only a camera has one")
    if supervision_interval_s is None and dc09_account is not None:
        supervision_interval_s = DC09_PANEL_SUPERVISION_S
    elif supervision_interval_s is None:
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
        silent=silent,
        premises=premises,
        dc09_account=dc09_account,
        dc09_key=dc09_key,
        camera=camera,
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
        silent=spec.silent,
        contacts=[],
        dc09_account=spec.dc09_account,
        dc09_key=spec.dc09_key,
    )
    if spec.camera is not None:
        set_camera(device, spec.camera)
    if spec.premises is not None:
        spec.premises.apply_to(device)
    return device, key


def set_camera(device: Device, camera: CameraSetup | None) -> None:
    """Make ``device`` the Frigate camera ``camera`` (None: no camera any more)."""
    device.camera_name = camera.name if camera else None
    device.camera_labels = camera.labels if camera else ""
    device.camera_zones = camera.zones if camera else ""
    device.camera_hours = camera.hours if camera else None


async def ensure_camera_name_free(
    session: AsyncSession, name: str, device_id: int | None = None
) -> None:
    """Conflict if another device than ``device_id`` is the Frigate camera ``name``."""
    owner = (
        await session.execute(select(Device.id, Device.eui).where(Device.camera_name == name))
    ).first()
    if owner is not None and owner.id != device_id:
        raise Conflict(f"camera {name} is device {owner.eui}")


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
    silent: bool = False,
    premises: Premises | None = None,
    dc09_account: str | None = None,
    dc09_key: bytes | None = None,
    camera: CameraSetup | None = None,
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
        silent=silent,
        premises=premises,
        dc09_account=dc09_account,
        dc09_key=dc09_key,
        camera=camera,
    )
    mahalla_id = None
    if spec.mahalla_name is not None:
        mahalla_id = (await get_mahalla_by_name(session, spec.mahalla_name)).id
    if await find_device_by_eui(session, spec.eui) is not None:
        raise Conflict(f"a device with EUI {spec.eui} already exists")
    if spec.dc09_account is not None:
        await ensure_dc09_account_free(session, spec.dc09_account)
    if spec.camera is not None:
        await ensure_camera_name_free(session, spec.camera.name)
    device, device_key = new_device(spec, mahalla_id=mahalla_id)
    session.add(device)
    try:
        await session.flush()
    except IntegrityError as exc:  # a concurrent insert of the same EUI or account
        raise Conflict(f"a device with EUI {spec.eui} or its DC-09 account exists") from exc
    return device, device_key


async def ensure_dc09_account_free(
    session: AsyncSession, account: str, device_id: int | None = None
) -> None:
    """Conflict if another device than ``device_id`` has the DC-09 ``account``."""
    owner = (
        await session.execute(select(Device.id, Device.eui).where(Device.dc09_account == account))
    ).first()
    if owner is not None and owner.id != device_id:
        raise Conflict(f"DC-09 account {account} belongs to device {owner.eui}")


async def set_dc09(
    session: AsyncSession, device: Device, account: str | None, key: bytes | None
) -> None:
    """Give ``device`` a DC-09 account (``account`` validated upper-case) and key, or remove
    both (``account`` None). The receiver sees the change with the panel's next message."""
    if account is None:
        if key is not None:
            raise InvalidInput("a DC-09 key needs a DC-09 account")
        device.dc09_account, device.dc09_key = None, None
        return
    if key is not None and len(key) not in _DC09_KEY_BYTES:
        raise InvalidInput(f"a DC-09 key is 16, 24 or 32 bytes, got {len(key)}")
    await ensure_dc09_account_free(session, account, device.id)
    device.dc09_account, device.dc09_key = account, key

"""Mahallas, the neighbourhoods the program is planned by, and the coordinate checks every
place in alertnet (mahalla centroid, device, post) goes through."""

from __future__ import annotations

import math

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from alertnet.errors import Conflict, InvalidInput, NotFound
from alertnet.models import Mahalla, Risk

MAX_NAME_LENGTH = 120


def check_coordinates(lat: float, lon: float) -> tuple[float, float]:
    """``(lat, lon)`` when both are finite WGS84 degrees in range; InvalidInput otherwise."""
    if not (math.isfinite(lat) and -90.0 <= lat <= 90.0):
        raise InvalidInput(f"lat {lat} is outside -90..90")
    if not (math.isfinite(lon) and -180.0 <= lon <= 180.0):
        raise InvalidInput(f"lon {lon} is outside -180..180")
    return lat, lon


def check_location(lat: float | None, lon: float | None) -> tuple[float, float] | None:
    """An optional location: both coordinates valid, or both missing (None)."""
    if lat is None and lon is None:
        return None
    if lat is None or lon is None:
        raise InvalidInput("give both lat and lon, or neither")
    return check_coordinates(lat, lon)


def parse_risk(risk: str) -> Risk:
    try:
        return Risk(risk.strip().lower())
    except ValueError:
        choices = ", ".join(member.value for member in Risk)
        raise InvalidInput(f"unknown risk class {risk!r} (one of {choices})") from None


async def find_mahalla_by_name(session: AsyncSession, name: str) -> Mahalla | None:
    return (
        await session.execute(select(Mahalla).where(Mahalla.name == name.strip()))
    ).scalar_one_or_none()


async def get_mahalla_by_name(session: AsyncSession, name: str) -> Mahalla:
    """The mahalla with exactly this name; NotFound otherwise."""
    mahalla = await find_mahalla_by_name(session, name)
    if mahalla is None:
        raise NotFound(f"no mahalla named {name.strip()!r} (add it with `alertnet mahalla add`)")
    return mahalla


async def add_mahalla(
    session: AsyncSession,
    name: str,
    *,
    risk: str,
    district: str = "",
    region: str = "",
    lat: float | None = None,
    lon: float | None = None,
    households: int = 0,
    businesses: int = 0,
) -> Mahalla:
    """Register a mahalla; its name is unique (Conflict when taken)."""
    name = name.strip()
    if not name:
        raise InvalidInput("a mahalla needs a name")
    for label, value in (("name", name), ("district", district), ("region", region)):
        if len(value) > MAX_NAME_LENGTH:
            raise InvalidInput(f"mahalla {label} is longer than {MAX_NAME_LENGTH} characters")
    if households < 0 or businesses < 0:
        raise InvalidInput("households and businesses cannot be negative")
    risk_class = parse_risk(risk)
    centroid = check_location(lat, lon)
    if await find_mahalla_by_name(session, name) is not None:
        raise Conflict(f"mahalla {name!r} already exists")
    mahalla = Mahalla(
        name=name,
        risk=risk_class.value,
        district=district.strip(),
        region=region.strip(),
        lat=centroid[0] if centroid else None,
        lon=centroid[1] if centroid else None,
        households=households,
        businesses=businesses,
    )
    session.add(mahalla)
    try:
        await session.flush()
    except IntegrityError as exc:  # a concurrent insert of the same name
        raise Conflict(f"mahalla {name!r} already exists") from exc
    return mahalla

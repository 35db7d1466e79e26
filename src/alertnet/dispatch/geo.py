"""Great-circle distances for dispatch: who is nearest, and a box to pre-filter rows in SQL.

Pure functions (no I/O) so the geometry is tested on its own, apart from the database.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, TypeVar

# Mean Earth radius (IUGG), the usual choice for haversine; the error against the ellipsoid is
# below 0.5 %, far less than a post's GPS fix matters at city scale.
EARTH_RADIUS_M = 6_371_008.8


class Located(Protocol):
    """Anything with a position; ``None`` means the position is unknown."""

    @property
    def lat(self) -> float | None: ...

    @property
    def lon(self) -> float | None: ...


LocatedT = TypeVar("LocatedT", bound=Located)


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres between two points given in decimal degrees."""
    phi1 = math.radians(lat1)
    phi2 = math.radians(lat2)
    half_dphi = math.radians(lat2 - lat1) / 2
    half_dlambda = math.radians(lon2 - lon1) / 2
    h = math.sin(half_dphi) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(half_dlambda) ** 2
    # Rounding can push h a hair above 1 for antipodal points; asin would then fail.
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, max(0.0, h))))


def nearest(
    items: Iterable[LocatedT],
    lat: float,
    lon: float,
    *,
    max_distance_m: float,
) -> list[tuple[LocatedT, float]]:
    """``(item, distance_m)`` for every item within ``max_distance_m``, nearest first.

    Items with an unknown position are left out. Equal distances keep the input order, so a
    caller that passes rows ordered by id gets a deterministic choice.
    """
    found: list[tuple[LocatedT, float]] = []
    for item in items:
        if item.lat is None or item.lon is None:
            continue
        distance_m = haversine_m(lat, lon, item.lat, item.lon)
        if distance_m <= max_distance_m:
            found.append((item, distance_m))
    found.sort(key=lambda pair: pair[1])  # stable: ties stay in input order
    return found


@dataclass(frozen=True, slots=True)
class BoundingBox:
    """A latitude/longitude rectangle; SQL uses it to skip rows that cannot be near."""

    min_lat: float
    max_lat: float
    min_lon: float
    max_lon: float

    def contains(self, lat: float, lon: float) -> bool:
        return self.min_lat <= lat <= self.max_lat and self.min_lon <= lon <= self.max_lon


def half_extent_deg(lat: float, radius_m: float) -> tuple[float, float]:
    """Half the height and half the width, in degrees, of the box around a circle of
    ``radius_m`` centred at latitude ``lat``; the width is 180 when the circle reaches a pole.

    The width is the exact one of the circle's widest point (which lies poleward of the
    centre, so ``radius / cos(lat)`` would be too narrow). A tiny margin absorbs
    floating-point error for points on the very edge of the circle.
    """
    angular = radius_m / EARTH_RADIUS_M
    dlat = math.degrees(angular) * (1 + 1e-9) + 1e-12
    if abs(lat) + dlat >= 90.0 or angular >= math.pi / 2:
        return dlat, 180.0
    ratio = math.sin(angular) / math.cos(math.radians(lat))
    if ratio >= 1.0:
        return dlat, 180.0
    return dlat, math.degrees(math.asin(ratio)) * (1 + 1e-9) + 1e-12


def bounding_box(lat: float, lon: float, radius_m: float) -> BoundingBox:
    """A box holding every point within ``radius_m`` of (lat, lon).

    Near a pole or across the antimeridian the box spans every longitude: correct, merely
    less selective.
    """
    dlat, dlon = half_extent_deg(lat, radius_m)
    min_lat, max_lat = max(lat - dlat, -90.0), min(lat + dlat, 90.0)
    min_lon, max_lon = lon - dlon, lon + dlon
    if dlon >= 180.0 or min_lon < -180.0 or max_lon > 180.0:
        return BoundingBox(min_lat, max_lat, -180.0, 180.0)
    return BoundingBox(min_lat, max_lat, min_lon, max_lon)

"""Great-circle geometry: known distances, symmetry, ordering and the SQL pre-filter box."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alertnet.dispatch.geo import EARTH_RADIUS_M, bounding_box, haversine_m, nearest
from alertnet.dispatch.policy import DEFAULT_POLICY

lats = st.floats(min_value=-89.9, max_value=89.9, allow_nan=False)
lons = st.floats(min_value=-180.0, max_value=180.0, allow_nan=False)
city_lats = st.floats(min_value=-70.0, max_value=70.0, allow_nan=False)
city_lons = st.floats(min_value=-179.0, max_value=179.0, allow_nan=False)


@dataclass(frozen=True)
class Spot:
    name: str
    lat: float | None
    lon: float | None


@pytest.mark.parametrize(
    ("a", "b", "expected_m", "rel"),
    [
        # One degree along the equator and along a meridian: R * pi / 180.
        ((0.0, 0.0), (0.0, 1.0), EARTH_RADIUS_M * math.pi / 180, 1e-12),
        ((10.0, 30.0), (11.0, 30.0), EARTH_RADIUS_M * math.pi / 180, 1e-12),
        # Pole to pole and antipodes: half the circumference.
        ((90.0, 0.0), (-90.0, 0.0), EARTH_RADIUS_M * math.pi, 1e-12),
        ((0.0, 0.0), (0.0, 180.0), EARTH_RADIUS_M * math.pi, 1e-12),
        # Paris (Notre-Dame) to London (Charing Cross): ~343.5 km on the sphere.
        ((48.8530, 2.3499), (51.5073, -0.1277), 343_500.0, 2e-3),
        # Tashkent, Amir Temur square to Chorsu bazaar: ~4.2 km as the crow flies.
        ((41.3111, 69.2797), (41.3264, 69.2340), 4_180.0, 1e-2),
    ],
)
def test_known_distances(
    a: tuple[float, float], b: tuple[float, float], expected_m: float, rel: float
) -> None:
    assert haversine_m(*a, *b) == pytest.approx(expected_m, rel=rel)


def test_same_point_is_zero() -> None:
    assert haversine_m(41.3111, 69.2797, 41.3111, 69.2797) == 0.0


@given(lats, lons, lats, lons)
def test_symmetric_and_bounded(lat1: float, lon1: float, lat2: float, lon2: float) -> None:
    there = haversine_m(lat1, lon1, lat2, lon2)
    back = haversine_m(lat2, lon2, lat1, lon1)
    assert there == pytest.approx(back, rel=1e-9, abs=1e-6)
    assert 0.0 <= there <= EARTH_RADIUS_M * math.pi + 1e-6


@given(lats, lons, lats, lons, lats, lons)
def test_triangle_inequality(
    lat1: float, lon1: float, lat2: float, lon2: float, lat3: float, lon3: float
) -> None:
    direct = haversine_m(lat1, lon1, lat3, lon3)
    via = haversine_m(lat1, lon1, lat2, lon2) + haversine_m(lat2, lon2, lat3, lon3)
    assert direct <= via + 1e-6


@given(lats, lons, st.floats(min_value=-360.0, max_value=360.0, allow_nan=False))
def test_longitude_wraps(lat: float, lon: float, turns: float) -> None:
    """Adding whole turns of longitude does not move a point."""
    shifted = lon + 360.0 * round(turns / 360.0)
    assert haversine_m(lat, lon, lat, shifted) == pytest.approx(0.0, abs=1e-3)


def test_nearest_orders_and_filters() -> None:
    spots = [
        Spot("far", 41.40, 69.28),  # ~9.9 km north
        Spot("unknown", None, None),
        Spot("near", 41.312, 69.28),
        Spot("too-far", 41.45, 69.28),  # ~15 km
        Spot("mid", 41.33, 69.28),
    ]
    found = nearest(spots, 41.3111, 69.2797, max_distance_m=DEFAULT_POLICY.max_distance_m)
    assert [spot.name for spot, _ in found] == ["near", "mid", "far"]
    distances = [distance for _, distance in found]
    assert distances == sorted(distances)
    assert all(distance <= 10_000 for distance in distances)
    assert nearest(spots, 41.3111, 69.2797, max_distance_m=50_000)[-1][0].name == "too-far"


def test_nearest_keeps_input_order_on_ties() -> None:
    spots = [Spot(name, 41.0, 69.0) for name in ("b", "a", "c")]
    found = nearest(spots, 41.0, 69.001, max_distance_m=1_000)
    assert [spot.name for spot, _ in found] == ["b", "a", "c"]


@given(
    city_lats,
    city_lons,
    st.lists(st.tuples(st.floats(-0.2, 0.2), st.floats(-0.2, 0.2)), max_size=20),
    st.floats(min_value=100.0, max_value=30_000.0),
)
def test_nearest_is_sorted_complete_and_bounded(
    lat: float,
    lon: float,
    offsets: list[tuple[float, float]],
    max_distance_m: float,
) -> None:
    spots = [Spot(str(i), lat + dlat, lon + dlon) for i, (dlat, dlon) in enumerate(offsets)]
    found = nearest(spots, lat, lon, max_distance_m=max_distance_m)
    distances = [distance for _, distance in found]
    assert distances == sorted(distances)
    inside = {
        spot.name
        for spot in spots
        if haversine_m(lat, lon, spot.lat, spot.lon) <= max_distance_m  # type: ignore[arg-type]
    }
    assert {spot.name for spot, _ in found} == inside


@settings(max_examples=300)
@given(
    lats,
    lons,
    st.floats(min_value=1.0, max_value=50_000.0),
    st.floats(min_value=0.0, max_value=1.0),
    st.floats(min_value=0.0, max_value=2 * math.pi),
)
def test_bounding_box_holds_the_circle(
    lat: float, lon: float, radius_m: float, fraction: float, bearing: float
) -> None:
    """Every point within the radius, in any direction, lies in the box."""
    box = bounding_box(lat, lon, radius_m)
    angular = radius_m * fraction / EARTH_RADIUS_M
    phi1, lambda1 = math.radians(lat), math.radians(lon)
    phi2 = math.asin(
        math.sin(phi1) * math.cos(angular) + math.cos(phi1) * math.sin(angular) * math.cos(bearing)
    )
    lambda2 = lambda1 + math.atan2(
        math.sin(bearing) * math.sin(angular) * math.cos(phi1),
        math.cos(angular) - math.sin(phi1) * math.sin(phi2),
    )
    lat2 = math.degrees(phi2)
    lon2 = (math.degrees(lambda2) + 540.0) % 360.0 - 180.0
    if haversine_m(lat, lon, lat2, lon2) <= radius_m:
        assert box.contains(lat2, lon2)


def test_bounding_box_is_tight_in_a_city() -> None:
    box = bounding_box(41.3111, 69.2797, 10_000)
    assert box.max_lat - box.min_lat == pytest.approx(2 * 10_000 / 111_195, rel=1e-3)
    assert 0.2 < box.max_lon - box.min_lon < 0.25
    near_pole = bounding_box(89.99, 10.0, 10_000)
    assert (near_pole.min_lon, near_pole.max_lon) == (-180.0, 180.0)

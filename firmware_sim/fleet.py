"""The simulated fleet on paper: which devices exist, where they are, their keys and transports.

A fleet is derived from a seed, so the simulator and whoever registers the devices with
alertnet (``alertnet device import`` of the CSV written by ``write_import_csv``, or a bench
harness inserting rows) agree on every EUI and key without exchanging secrets at run time.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Final

from alertnet.protocol import WireFormat

__all__ = [
    "CITY_CENTRE",
    "DeviceSpec",
    "FleetPlan",
    "Geo",
    "TransportKind",
    "distance_m",
    "make_fleet",
    "offset",
    "read_import_csv",
    "write_import_csv",
]

#: Tashkent, where the programme starts; any point works.
CITY_CENTRE: Final = (41.3111, 69.2797)
_EARTH_RADIUS_M: Final = 6_371_000.0
_IMPORT_COLUMNS: Final = (
    "eui",
    "kind",
    "lat",
    "lon",
    "key",
    "site",
    "name",
    "supervision_interval_s",
)


class TransportKind(StrEnum):
    """How a simulated device reaches alertnet."""

    MQTT = "mqtt"  # binary frames on alertnet/v1/up/{eui}
    MQTT_JSON = "mqtt-json"  # the JSON form on the same topic
    HTTP = "http"  # POST /api/v1/uplinks
    LORA = "lora"  # radio to simulated REYAX gateways on ptys
    CHIRPSTACK = "chirpstack"  # LoRaWAN through a simulated ChirpStack (firmware_sim.chirpstack)

    @property
    def wire_format(self) -> WireFormat:
        return WireFormat.JSON if self is TransportKind.MQTT_JSON else WireFormat.BINARY


@dataclass(frozen=True, slots=True)
class Geo:
    """A point on the map, degrees."""

    lat: float
    lon: float


def distance_m(a: Geo, b: Geo) -> float:
    """Great-circle distance (haversine); exact enough for a city."""
    lat1, lat2 = math.radians(a.lat), math.radians(b.lat)
    dlat = lat2 - lat1
    dlon = math.radians(b.lon - a.lon)
    h = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlon / 2) ** 2
    return 2 * _EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def offset(origin: Geo, north_m: float, east_m: float) -> Geo:
    """The point ``north_m`` north and ``east_m`` east of ``origin`` (flat-earth, city scale)."""
    lat = origin.lat + math.degrees(north_m / _EARTH_RADIUS_M)
    lon = origin.lon + math.degrees(east_m / (_EARTH_RADIUS_M * math.cos(math.radians(lat))))
    return Geo(lat, lon)


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    """One device as it is registered with alertnet and flashed."""

    eui: str
    key: bytes
    kind: str  # panic_button, intrusion_alarm, fire_alarm, medical_button
    site: str  # public, household, business
    location: Geo
    transport: TransportKind
    supervision_interval_s: int

    @property
    def mains_powered(self) -> bool:
        """Intrusion and fire alarms run on mains with a backup battery; buttons on battery."""
        return self.kind in ("intrusion_alarm", "fire_alarm")


@dataclass(frozen=True, slots=True)
class FleetPlan:
    """How to derive a fleet: size, seed, area and the share of each transport and kind."""

    devices: int
    seed: int = 1
    centre: Geo = Geo(*CITY_CENTRE)
    radius_m: float = 5_000.0
    #: Relative weights of the transports; zero-weight transports are not used.
    transports: tuple[tuple[TransportKind, float], ...] = ((TransportKind.MQTT, 1.0),)
    #: Share of mains-powered intrusion alarms (the rest are public panic buttons).
    alarm_share: float = 0.5
    supervision_interval_s: int = 900

    def __post_init__(self) -> None:
        if not 0 < self.devices <= 1_000_000:
            raise ValueError(f"devices must be 1..1000000, got {self.devices}")
        if not 0 <= self.seed <= 0xFFFF:
            raise ValueError(f"seed must be 0..65535, got {self.seed}")
        if not any(weight > 0 for _, weight in self.transports):
            raise ValueError("at least one transport needs a positive weight")


def _device_key(seed: int, eui: str) -> bytes:
    return hashlib.sha256(f"firmware-sim/{seed}/{eui}".encode()).digest()[:16]


def _eui(seed: int, index: int) -> str:
    # "f15e" marks simulator devices; the seed keeps fleets of different runs apart.
    return f"f15e{seed:04x}{index:08x}"


def make_fleet(plan: FleetPlan) -> list[DeviceSpec]:
    """The fleet ``plan`` describes, identical for identical plans."""
    rng = random.Random(plan.seed)
    # Transports come from their own stream: changing the mix moves no device.
    transport_rng = random.Random(f"{plan.seed}/transport")
    kinds = [kind for kind, weight in plan.transports if weight > 0]
    weights = [weight for _, weight in plan.transports if weight > 0]
    fleet: list[DeviceSpec] = []
    for index in range(plan.devices):
        eui = _eui(plan.seed, index)
        # Uniform over the disc: the square root keeps the density flat.
        r = plan.radius_m * math.sqrt(rng.random())
        angle = rng.uniform(0, 2 * math.pi)
        is_alarm = rng.random() < plan.alarm_share
        fleet.append(
            DeviceSpec(
                eui=eui,
                key=_device_key(plan.seed, eui),
                kind="intrusion_alarm" if is_alarm else "panic_button",
                site=rng.choice(("household", "business")) if is_alarm else "public",
                location=offset(plan.centre, r * math.cos(angle), r * math.sin(angle)),
                transport=transport_rng.choices(kinds, weights)[0],
                supervision_interval_s=plan.supervision_interval_s,
            )
        )
    return fleet


def import_csv_text(fleet: Iterable[DeviceSpec]) -> str:
    """The fleet as the CSV ``alertnet device import`` reads (keys included: keep it secret)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(_IMPORT_COLUMNS)
    for device in fleet:
        writer.writerow(
            (
                device.eui,
                device.kind,
                f"{device.location.lat:.6f}",
                f"{device.location.lon:.6f}",
                device.key.hex(),
                device.site,
                f"sim {device.transport.value}",
                device.supervision_interval_s,
            )
        )
    return out.getvalue()


def write_import_csv(path: Path, fleet: Sequence[DeviceSpec]) -> None:
    """Write ``import_csv_text`` to ``path`` (blocking: call it before the event loop runs)."""
    path.write_text(import_csv_text(fleet), encoding="utf-8")


def read_import_csv(path: Path, transport: TransportKind) -> list[DeviceSpec]:
    """A fleet from an import CSV (keys required), all on ``transport``."""
    fleet: list[DeviceSpec] = []
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            fleet.append(
                DeviceSpec(
                    eui=row["eui"].strip().lower(),
                    key=bytes.fromhex(row["key"]),
                    kind=row["kind"],
                    site=row.get("site") or "public",
                    location=Geo(float(row["lat"]), float(row["lon"])),
                    transport=transport,
                    supervision_interval_s=int(row.get("supervision_interval_s") or 900),
                )
            )
    return fleet

"""A run as asked and as answered: the scenarios, a run's configuration (``RunConfig``), its
verdict (``RunReport``) and the broker control the chaos scenario needs.

``firmware_sim.runner`` carries a run out; the CLI and the tests build a
``RunConfig`` and read a ``RunReport`` from here.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

from firmware_sim.device import PROTOCOL_RETRY, RetryPolicy
from firmware_sim.fleet import FleetPlan, TransportKind
from firmware_sim.radio import RadioModel
from firmware_sim.stats import format_table
from firmware_sim.tablet import TabletBehaviour, TabletSpec

__all__ = ["SCENARIOS", "BrokerControl", "RunConfig", "RunReport", "ShellBrokerControl"]

SCENARIOS: Final = ("steady", "surge", "storm", "flood", "chaos")


class BrokerControl(Protocol):
    """What the chaos scenario needs from whoever runs the broker."""

    async def restart(self) -> None:
        """Stop the broker and start it again on the same port (persistence kept)."""
        ...


class ShellBrokerControl:
    """Restart the broker by running a shell command (e.g. ``systemctl restart mosquitto``)."""

    def __init__(self, command: str) -> None:
        self.command = command

    async def restart(self) -> None:
        process = await asyncio.create_subprocess_shell(self.command)
        if await process.wait() != 0:
            raise RuntimeError(f"broker restart command failed: {self.command}")


@dataclass(frozen=True, slots=True)
class RunConfig:
    """Everything a run needs; the CLI fills it from its options."""

    scenario: str
    base_url: str = "http://127.0.0.1:8000"
    mqtt_url: str = "mqtt://127.0.0.1:1883"
    #: The broker ChirpStack publishes to (``chirpstack`` devices); None: ``mqtt_url``.
    chirpstack_url: str | None = None
    devices: int = 1000
    seed: int = 1
    #: Salts the choice of who presses and when: runs with the same fleet but another id
    #: press other devices (a repeat would merge into the alert the first run left open).
    run_id: int = 0
    transports: tuple[tuple[TransportKind, float], ...] = ((TransportKind.MQTT, 1.0),)
    #: Heartbeats per second across the fleet; None = as fast as the links take them.
    rate: float | None = 100.0
    #: With ``rate=None``: how many heartbeats to send.
    uplinks: int = 10_000
    duration_s: float = 30.0
    drain_s: float = 30.0
    presses: int = 20
    drill_share: float = 0.1
    tamper_share: float = 0.05
    surge_radius_m: float = 800.0
    surge_window_s: float = 5.0
    repeat_share: float = 0.3
    storm_window_s: float = 60.0
    reboot_share: float = 0.05
    gateways: int = 3
    radio: RadioModel = field(default_factory=RadioModel)
    pty_dir: Path = Path(".firmware_sim/pty")
    state_path: Path | None = Path(".firmware_sim/counters-1.json")
    retry: RetryPolicy = PROTOCOL_RETRY
    tablets: tuple[TabletSpec, ...] = ()
    tablet_behaviour: TabletBehaviour = field(default_factory=TabletBehaviour)
    watcher: tuple[str, str] | None = None
    connections: int = 2
    concurrency: int = 1000
    wait_ready_s: float = 30.0
    radius_m: float = 5_000.0
    alarm_share: float = 0.5
    progress: bool = True

    def __post_init__(self) -> None:
        if self.scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {self.scenario!r}; one of {', '.join(SCENARIOS)}")
        if self.rate is not None and self.rate <= 0:
            raise ValueError("rate must be positive (or None for as fast as possible)")
        if self.duration_s <= 0 or self.drain_s < 0:
            raise ValueError("duration_s must be positive and drain_s not negative")

    def fleet_plan(self) -> FleetPlan:
        """The fleet this run simulates: register exactly these devices with alertnet."""
        transports = self.transports
        if self.scenario == "flood":
            transports = ((TransportKind.LORA, 1.0),)
        return FleetPlan(
            devices=self.devices,
            seed=self.seed,
            radius_m=self.radius_m,
            transports=transports,
            alarm_share=self.alarm_share,
        )


@dataclass(slots=True)
class RunReport:
    """What a run measured; ``as_dict()`` is the JSON the bench reads."""

    scenario: str
    config: dict[str, Any]
    load_s: float
    offered_rate: float
    committed_rate: float | None
    server_uplinks: float | None
    expected_server_uplinks: int
    backlog_at_load_end: float | None
    caught_up_s: float | None
    summary: dict[str, Any]
    links: dict[str, Any]
    tablets: dict[str, Any]
    #: Every press as ``eui:counter``, for a harness that checks the database afterwards.
    presses: list[str] = field(default_factory=list)

    @property
    def lost(self) -> int:
        return int(self.summary["presses_lost"])

    @property
    def duplicated(self) -> int:
        return int(self.summary["alerts_duplicated"])

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def table(self) -> str:
        s = self.summary

        def ms(part: dict[str, Any]) -> str:
            if not part["n"]:
                return "n=0"
            return (
                f"p50 {part['p50_ms']} ms  p95 {part['p95_ms']} ms  p99 {part['p99_ms']} ms  "
                f"(n={part['n']})"
            )

        committed = "-" if self.committed_rate is None else f"{self.committed_rate:,.0f}/s"
        rows = [
            ("load", f"{self.load_s:.1f} s, offered {self.offered_rate:,.0f} uplinks/s"),
            ("committed by alertnet", committed),
            (
                "server uplinks",
                f"{self.server_uplinks or 0:,.0f} of {self.expected_server_uplinks:,} expected",
            ),
            ("presses", f"{s['presses']} (retransmissions {s['retransmissions']})"),
            ("presses lost", str(s["presses_lost"])),
            ("alerts duplicated", str(s["alerts_duplicated"])),
            ("press → ack", ms(s["press_to_ack"])),
            ("press → offer", ms(s["press_to_offer"])),
        ]
        for transport, part in s["press_to_ack_by_transport"].items():
            rows.append((f"  ack via {transport}", ms(part)))
        if s["alerts_opened"]:
            rows.append(("alerts opened (stream)", str(s["alerts_opened"])))
        if s["offers"]:
            rows.append(("offers", ", ".join(f"{k} {v}" for k, v in sorted(s["offers"].items()))))
        if s["send_failures"]:
            rows.append(("send failures", str(s["send_failures"])))
        for note in s["notes"][:5]:
            rows.append(("note", note))
        return format_table(rows, f"firmware_sim {self.scenario}")

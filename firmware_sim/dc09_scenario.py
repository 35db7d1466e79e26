"""The ``panels`` scenario: a fleet of simulated SIA DC-09 alarm panels against a receiver.

``make_panels(plan)`` derives the fleet from a seed — EUI, account, key, token (``SIA-DCS`` or
``ADM-CID``), link (persistent TCP, one-shot TCP, UDP) and whose clock is wrong — so the
simulator and whoever registers the panels (``write_panels_csv`` for ``alertnet device
import``) agree without exchanging secrets. ``run_panels(config)`` drives it against
``host:port``:

- ``rate=None``: ``messages`` messages flat out, every panel sending its share back to back
  (each waits for its answer, as a panel does): the receiver's throughput;
- ``rate=R``: messages scheduled at R per second for ``duration_s`` across the fleet;
- ``alarms`` of the messages are alarms (intrusion, panic, duress, fire, medical, tamper), the
  rest open/close and test reports; panels start at random sequence numbers, so some wrap
  9999 → 0001 during a run; ``test_interval_s`` adds each panel's periodic test report.

The report counts messages answered, acknowledged, NAKed, refused (DUH) and never answered,
and message → answer latency (first transmission to the answer) p50/p95/p99. With
``expect_ack=False`` any answer carrying the message's sequence counts (the bench's bare echo
baseline). ``keys`` lists every acknowledged alarm's ``(account, dedup_key)`` so a harness can
ask the database that each is exactly one event.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import hashlib
import io
import itertools
import json
import math
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Final, Literal

from alertnet.ingest.dc09.codes import dedup_key
from firmware_sim.dc09_panel import Dc09Panel, Delivery, PanelEvent, PanelSpec
from firmware_sim.fleet import CITY_CENTRE, Geo, offset
from firmware_sim.stats import format_table, percentile

__all__ = [
    "FleetPanel",
    "PanelPlan",
    "PanelsConfig",
    "PanelsReport",
    "make_panels",
    "panels_csv_text",
    "run_panels",
    "write_panels_csv",
]

ALARM_EVENTS: Final = (
    PanelEvent.INTRUSION,
    PanelEvent.INTRUSION,
    PanelEvent.INTRUSION,
    PanelEvent.PANIC,
    PanelEvent.DURESS,
    PanelEvent.FIRE,
    PanelEvent.MEDICAL,
    PanelEvent.TAMPER,
)
ROUTINE_EVENTS: Final = (
    PanelEvent.OPEN,
    PanelEvent.CLOSE,
    PanelEvent.PERIODIC_TEST,
    PanelEvent.PERIODIC_TEST,
)
_CSV_COLUMNS: Final = (
    "eui",
    "kind",
    "lat",
    "lon",
    "name",
    "site",
    "supervision_interval_s",
    "dc09_account",
    "dc09_key",
)


@dataclass(frozen=True, slots=True)
class PanelPlan:
    """Which panels exist: shares of each token, cipher, link and fault."""

    panels: int = 100
    seed: int = 1
    encrypted_share: float = 0.5
    key_bits: Literal[128, 192, 256] = 128
    cid_share: float = 0.5
    udp_share: float = 0.2
    one_shot_share: float = 0.2
    wrong_clock_share: float = 0.0
    radius_m: float = 5_000.0

    def __post_init__(self) -> None:
        if not 1 <= self.panels <= 0xFFFFFF:
            raise ValueError("between 1 and 16,777,215 panels")
        if self.key_bits not in (128, 192, 256):
            raise ValueError("key_bits is 128, 192 or 256")


@dataclass(frozen=True, slots=True)
class FleetPanel:
    """One panel as it is registered with alertnet and installed."""

    eui: str
    location: Geo
    spec: PanelSpec
    site: Literal["household", "business"] = "household"


def _digest(*parts: object) -> bytes:
    return hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()


def make_panels(plan: PanelPlan) -> list[FleetPanel]:
    """The fleet ``plan`` describes, identical for identical plans.

    Every panel draws the same numbers whatever the shares, so changing one share (say, more
    wrong clocks) changes that attribute only, never who has a key or which account is whose.
    """
    rng = random.Random(f"panels/{plan.seed}")
    centre = Geo(*CITY_CENTRE)
    fleet: list[FleetPanel] = []
    for index in range(plan.panels):
        eui = _digest("panel-eui", plan.seed, index)[:8].hex()
        r = plan.radius_m * math.sqrt(rng.random())
        angle = rng.uniform(0, 2 * math.pi)
        encrypted, link, cid, wrong, late, business = (rng.random() for _ in range(6))
        skew_s = (-900.0 if late < 0.5 else 900.0) if wrong < plan.wrong_clock_share else 0.0
        spec = PanelSpec(
            account=f"{plan.seed % 256:02X}{index:06X}",
            key=_digest("panel-key", plan.seed, index)[: plan.key_bits // 8]
            if encrypted < plan.encrypted_share
            else None,
            token="ADM-CID" if cid < plan.cid_share else "SIA-DCS",
            transport="udp" if link < plan.udp_share else "tcp",
            persistent=not plan.udp_share <= link < plan.udp_share + plan.one_shot_share,
            clock_skew_s=skew_s,
        )
        location = offset(centre, r * math.cos(angle), r * math.sin(angle))
        fleet.append(FleetPanel(eui, location, spec, "business" if business < 0.3 else "household"))
    return fleet


def panels_csv_text(fleet: Sequence[FleetPanel]) -> str:
    """The fleet as ``alertnet device import`` reads it (kind ``intrusion_alarm``)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(_CSV_COLUMNS)
    for panel in fleet:
        spec = panel.spec
        writer.writerow(
            [
                panel.eui,
                "intrusion_alarm",
                f"{panel.location.lat:.6f}",
                f"{panel.location.lon:.6f}",
                f"sim panel {spec.account} {spec.token} {spec.transport}",
                panel.site,
                "90000",
                spec.account,
                spec.key.hex() if spec.key else "",
            ]
        )
    return out.getvalue()


def write_panels_csv(path: Path, fleet: Sequence[FleetPanel]) -> None:
    """Write ``panels_csv_text`` (blocking: call it before the event loop runs)."""
    path.write_text(panels_csv_text(fleet), encoding="utf-8")


@dataclass(frozen=True, slots=True)
class PanelsConfig:
    host: str
    port: int
    plan: PanelPlan = field(default_factory=PanelPlan)
    #: Messages per second across the fleet; None: ``messages`` flat out.
    rate: float | None = None
    messages: int = 1000
    duration_s: float = 30.0
    alarms: int = 20
    #: How long after the load to wait for the last answers.
    drain_s: float = 30.0
    ack_timeout_s: float = 20.0
    test_interval_s: float | None = None
    run_id: int = 0
    #: False: any answer with the message's sequence counts (an echo baseline).
    expect_ack: bool = True
    progress: bool = False


@dataclass(slots=True)
class PanelsReport:
    config: dict[str, Any]
    load_s: float
    messages: int
    answered: int
    acked: int
    refused: int
    naks: int
    unanswered: int
    retransmissions: int
    sequence_wraps: int
    latency: dict[str, Any]
    latency_alarms: dict[str, Any]
    by_link: dict[str, dict[str, Any]]
    #: Every acknowledged alarm as [account, dedup_key].
    keys: list[list[str]] = field(default_factory=list)

    @property
    def answered_rate(self) -> float:
        return self.answered / self.load_s if self.load_s > 0 else 0.0

    @property
    def ok(self) -> bool:
        expected = self.acked if self.config["expect_ack"] else self.answered
        return self.unanswered == 0 and expected == self.messages

    def as_dict(self) -> dict[str, Any]:
        result = asdict(self)
        result["answered_rate"] = round(self.answered_rate, 1)
        result["ok"] = self.ok
        return result

    def table(self) -> str:
        def ms(part: dict[str, Any]) -> str:
            if not part["n"]:
                return "n=0"
            return (
                f"p50 {part['p50_ms']} ms  p95 {part['p95_ms']} ms  p99 {part['p99_ms']} ms  "
                f"(n={part['n']})"
            )

        rows = [
            ("load", f"{self.load_s:.1f} s, {self.answered_rate:,.0f} messages answered/s"),
            ("messages", f"{self.messages} (retransmissions {self.retransmissions})"),
            ("answered", f"{self.answered} (ACK {self.acked}, DUH {self.refused})"),
            ("NAKs (clock corrected)", str(self.naks)),
            ("never answered", str(self.unanswered)),
            ("sequence wraps 9999→0001", str(self.sequence_wraps)),
            ("message → answer", ms(self.latency)),
            ("  alarms", ms(self.latency_alarms)),
        ]
        for link, part in sorted(self.by_link.items()):
            rows.append((f"  via {link}", ms(part["latency"])))
        return format_table(rows, "firmware_sim panels (SIA DC-09)")


def _summary(values_s: Sequence[float]) -> dict[str, Any]:
    def ms(value: float | None) -> float | None:
        return None if value is None else round(value * 1000, 1)

    return {
        "n": len(values_s),
        "p50_ms": ms(percentile(values_s, 0.50)),
        "p95_ms": ms(percentile(values_s, 0.95)),
        "p99_ms": ms(percentile(values_s, 0.99)),
        "max_ms": ms(max(values_s) if values_s else None),
    }


def _link(spec: PanelSpec) -> str:
    if spec.transport == "udp":
        return "udp"
    return "tcp" if spec.persistent else "tcp-one-shot"


@dataclass(slots=True)
class _Sent:
    panel: Dc09Panel
    event: PanelEvent
    delivery: Delivery | None = None


class _Run:
    def __init__(self, config: PanelsConfig) -> None:
        self.config = config
        self.rng = random.Random(f"{config.plan.seed}/{config.run_id}/load")
        self.fleet = make_panels(config.plan)
        self.panels = [
            Dc09Panel(
                replace(
                    entry.spec,
                    ack_timeout_s=config.ack_timeout_s,
                    test_interval_s=config.test_interval_s,
                ),
                config.host,
                config.port,
                rng=random.Random(f"{config.plan.seed}/{config.run_id}/{entry.eui}"),
                first_seq=self.rng.randint(1, 9999),
            )
            for entry in self.fleet
        ]
        self.sent: list[_Sent] = []
        self.tasks: set[asyncio.Task[None]] = set()

    def schedule(self, count: int) -> list[_Sent]:
        """``count`` messages, ``alarms`` of them alarms, each from a random panel."""
        alarms = set(self.rng.sample(range(count), min(self.config.alarms, count)))
        plan: list[_Sent] = []
        for number in range(count):
            panel = self.panels[number % len(self.panels)]
            events = ALARM_EVENTS if number in alarms else ROUTINE_EVENTS
            plan.append(_Sent(panel, self.rng.choice(events)))
        self.rng.shuffle(plan)
        return plan

    async def send(self, item: _Sent) -> None:
        item.delivery = await item.panel.report(
            item.event, zone=self.rng.randint(1, 99), area=self.rng.randint(1, 4)
        )

    def spawn(self, item: _Sent) -> None:
        self.sent.append(item)
        task = asyncio.create_task(self.send(item))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)


async def run_panels(config: PanelsConfig) -> PanelsReport:
    """Drive the fleet against ``config.host:config.port``; see the module docstring."""
    run = _Run(config)
    testers = (
        [asyncio.create_task(_periodic_tests(run, panel)) for panel in run.panels]
        if config.test_interval_s
        else []
    )
    loop = asyncio.get_running_loop()
    started = time.monotonic()
    try:
        if config.rate is None:
            for item in run.schedule(config.messages):
                run.spawn(item)  # each panel's lock keeps its own messages one at a time
            await asyncio.wait(set(run.tasks), timeout=config.drain_s)
        else:
            plan = run.schedule(max(1, round(config.rate * config.duration_s)))
            begin = loop.time()
            for number, item in enumerate(plan):
                await asyncio.sleep(max(0.0, begin + number / config.rate - loop.time()))
                run.spawn(item)
            for tester in testers:
                tester.cancel()
            if run.tasks:
                await asyncio.wait(set(run.tasks), timeout=config.drain_s)
    finally:
        load_s = time.monotonic() - started
        for task in [*run.tasks, *testers]:
            task.cancel()
        await asyncio.gather(*run.tasks, *testers, return_exceptions=True)
        for panel in run.panels:
            await panel.close()
    return _report(run, load_s)


async def _periodic_tests(run: _Run, panel: Dc09Panel) -> None:
    interval = run.config.test_interval_s
    assert interval is not None
    await asyncio.sleep(run.rng.uniform(0, interval))
    while True:
        run.spawn(_Sent(panel, PanelEvent.PERIODIC_TEST))
        await asyncio.sleep(interval)


def _wrapped(deliveries: Sequence[Delivery]) -> bool:
    seqs = [int(d.seq) for d in deliveries]
    return any(later < earlier for earlier, later in itertools.pairwise(seqs))


def _report(run: _Run, load_s: float) -> PanelsReport:
    config = run.config
    deliveries = [d for panel in run.panels for d in panel.deliveries]
    answered = [d for d in deliveries if d.answer is not None]
    alarm_latencies = [
        item.delivery.latency_s
        for item in run.sent
        if item.event.alarm and item.delivery is not None and item.delivery.latency_s is not None
    ]
    by_link: dict[str, list[Delivery]] = {}
    for panel in run.panels:
        by_link.setdefault(_link(panel.spec), []).extend(panel.deliveries)
    keys = [
        [
            item.panel.spec.account,
            dedup_key(item.panel.spec.token, item.delivery.seq, item.delivery.data, ()),
        ]
        for item in run.sent
        if item.event.alarm and item.delivery is not None and item.delivery.acked
    ]
    return PanelsReport(
        config={
            **asdict(config.plan),
            "rate": config.rate,
            "messages": config.messages if config.rate is None else None,
            "duration_s": config.duration_s if config.rate is not None else None,
            "alarms": config.alarms,
            "expect_ack": config.expect_ack,
            "test_interval_s": config.test_interval_s,
        },
        load_s=round(load_s, 3),
        messages=len(run.sent),
        answered=len(answered),
        acked=sum(1 for d in deliveries if d.acked),
        refused=sum(1 for d in deliveries if d.answer == "DUH"),
        naks=sum(d.naks for d in deliveries),
        unanswered=len(run.sent) - len(answered),
        retransmissions=sum(max(0, d.attempts - 1) for d in deliveries),
        sequence_wraps=sum(1 for panel in run.panels if _wrapped(panel.deliveries)),
        latency=_summary([d.latency_s for d in answered if d.latency_s is not None]),
        latency_alarms=_summary(alarm_latencies),
        by_link={
            link: {
                "messages": len(items),
                "latency": _summary([d.latency_s for d in items if d.latency_s is not None]),
            }
            for link, items in by_link.items()
        },
        keys=keys,
    )


# -- the command line (``python -m firmware_sim panels`` and ``run panels``) ----------------------


def add_plan_options(parser: argparse.ArgumentParser) -> None:
    """The options that decide the fleet: the same for writing its CSV and for running it."""
    parser.add_argument("--dc09-encrypted", type=float, default=0.5, help="share with AES keys")
    parser.add_argument("--dc09-key-bits", type=int, default=128, choices=(128, 192, 256))
    parser.add_argument("--dc09-cid", type=float, default=0.5, help="share sending Contact ID")
    parser.add_argument("--dc09-udp", type=float, default=0.2, help="share reporting over UDP")
    parser.add_argument(
        "--dc09-one-shot",
        type=float,
        default=0.2,
        help="share connecting per message",
    )
    parser.add_argument(
        "--dc09-wrong-clock", type=float, default=0.0, help="share whose clock is 15 min off"
    )


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """``run panels``: where the receiver is and how the panels behave."""
    add_plan_options(parser)
    parser.add_argument(
        "--dc09", default="127.0.0.1:5100", help="panels: alertnet's ALERTNET_DC09_LISTEN"
    )
    parser.add_argument(
        "--dc09-ack-timeout", type=float, default=20.0, help="panels: wait for an answer, s"
    )
    parser.add_argument(
        "--dc09-test-interval", type=float, default=None, help="panels: periodic test report, s"
    )
    parser.add_argument(
        "--dc09-echo",
        action="store_true",
        help="panels: any answer with the message's sequence counts (a bare echo baseline)",
    )


def add_fleet_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``python -m firmware_sim panels -o panels.csv``: the fleet for ``alertnet device import``."""
    command = commands.add_parser(
        "panels", help="write the DC-09 alarm panel fleet as a CSV for alertnet device import"
    )
    command.add_argument("--devices", type=int, default=100, help="panels in the fleet")
    command.add_argument("--seed", type=int, default=1)
    add_plan_options(command)
    command.add_argument("-o", "--output", type=Path, required=True, help="CSV file to write")


def plan_from(args: argparse.Namespace) -> PanelPlan:
    return PanelPlan(
        panels=args.devices,
        seed=args.seed,
        encrypted_share=args.dc09_encrypted,
        key_bits=args.dc09_key_bits,
        cid_share=args.dc09_cid,
        udp_share=args.dc09_udp,
        one_shot_share=args.dc09_one_shot,
        wrong_clock_share=args.dc09_wrong_clock,
    )


def write_fleet_command(args: argparse.Namespace) -> int:
    write_panels_csv(args.output, make_panels(plan_from(args)))
    print(f"{args.devices} DC-09 panels written to {args.output} (it holds their keys)")
    return 0


def run_command(args: argparse.Namespace) -> int:
    """``run panels``: 0 when every message was answered (acknowledged), 1 otherwise."""
    host, _, port = args.dc09.rpartition(":")
    config = PanelsConfig(
        host=host.strip("[]") or "127.0.0.1",
        port=int(port),
        plan=plan_from(args),
        rate=args.rate,
        messages=args.uplinks,
        duration_s=args.duration,
        alarms=args.presses,
        drain_s=args.drain,
        ack_timeout_s=args.dc09_ack_timeout,
        test_interval_s=args.dc09_test_interval,
        run_id=args.run_id,
        expect_ack=not args.dc09_echo,
    )
    report = asyncio.run(run_panels(config))
    print(report.table())
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report.as_dict(), indent=2), encoding="utf-8")
    return 0 if report.ok else 1

"""The ``python -m firmware_sim`` command: write a fleet's import CSV, run a scenario.

    python -m firmware_sim fleet --devices 2000 --seed 1 -o fleet.csv
    alertnet device import fleet.csv
    python -m firmware_sim run steady --devices 2000 --seed 1 --rate 500 --duration 60
    python -m firmware_sim frigate --mqtt URL --camera gate:yard --tracks 40   (§9.3)

``run`` exits 0 when nothing was lost and nothing duplicated, 1 otherwise, 2 on bad usage.
Devices must be registered first (same ``--devices`` and ``--seed``); frame counters persist
in ``--state`` so that successive runs against one database never replay a counter.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from firmware_sim import dc09_scenario
from firmware_sim.device import PROTOCOL_RETRY, RetryPolicy
from firmware_sim.fleet import FleetPlan, TransportKind, make_fleet, write_import_csv
from firmware_sim.radio import RadioModel
from firmware_sim.runner import run_scenario
from firmware_sim.scenario import SCENARIOS, RunConfig, ShellBrokerControl
from firmware_sim.tablet import TabletBehaviour, parse_tablets

__all__ = ["build_parser", "main", "parse_transports"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def parse_transports(text: str) -> tuple[tuple[TransportKind, float], ...]:
    """``mqtt=3,lora=1`` (a bare name weighs 1) → weights per transport."""
    mix: list[tuple[TransportKind, float]] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, weight = item.partition("=")
        try:
            mix.append((TransportKind(name), float(weight) if weight else 1.0))
        except ValueError as exc:
            choices = ", ".join(kind.value for kind in TransportKind)
            raise argparse.ArgumentTypeError(
                f"bad transport {item!r} (one of {choices}, optionally =WEIGHT)"
            ) from exc
    if not mix:
        raise argparse.ArgumentTypeError("no transport given")
    return tuple(mix)


def _rate(text: str) -> float | None:
    if text == "max":
        return None
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("rate must be positive, or 'max'")
    return value


def _login(text: str) -> tuple[str, str]:
    username, sep, password = text.partition(":")
    if not sep or not username:
        raise argparse.ArgumentTypeError("expected USERNAME:PASSWORD")
    return username, password


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m firmware_sim",
        description="Simulated alertnet devices, LoRa gateways and patrol tablets.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the links do")
    commands = parser.add_subparsers(dest="command", required=True)

    fleet = commands.add_parser("fleet", help="write the fleet as a CSV for alertnet device import")
    _fleet_options(fleet)
    fleet.add_argument("-o", "--output", type=Path, required=True, help="CSV file to write")
    dc09_scenario.add_fleet_command(commands)

    run = commands.add_parser(
        "run",
        help="run a scenario against a running alertnet",
        description=(
            "steady: heartbeats at --rate plus --presses presses; surge: --presses presses "
            "in one neighbourhood within --surge-window; storm: mains_lost from every alarm "
            "within --storm-window; flood: all devices on LoRa, every packet heard by five "
            "gateways; chaos: steady with the broker restarted halfway "
            "(--broker-restart-command) and devices rebooting; panels: SIA DC-09 alarm "
            "panels (--devices of them) sending --uplinks messages (or --rate per second), "
            "--presses of them alarms, to alertnet's receiver at --dc09."
        ),
    )
    run.add_argument("scenario", choices=(*SCENARIOS, "panels"))
    _fleet_options(run)
    run.add_argument("--url", default="http://127.0.0.1:8000", help="alertnet's base URL")
    run.add_argument(
        "--run-id", type=int, default=0, help="vary who presses between runs of one fleet"
    )
    run.add_argument("--mqtt", default="mqtt://127.0.0.1:1883", help="the broker alertnet uses")
    run.add_argument(
        "--chirpstack",
        default=None,
        help="the broker the simulated ChirpStack publishes to (default: --mqtt); log in as "
        "the broker's chirpstack user, e.g. mqtt://chirpstack:PASS@host:1883",
    )
    run.add_argument(
        "--rate",
        type=_rate,
        default=100.0,
        help="heartbeats per second across the fleet, or 'max' (send --uplinks flat out)",
    )
    run.add_argument("--uplinks", type=int, default=20_000, help="heartbeats sent with --rate max")
    run.add_argument("--duration", type=float, default=30.0, help="seconds of load")
    run.add_argument("--drain", type=float, default=30.0, help="seconds to wait for acks after")
    run.add_argument("--presses", type=int, default=20, help="presses in the run")
    run.add_argument("--drill-share", type=float, default=0.1)
    run.add_argument("--tamper-share", type=float, default=0.05)
    run.add_argument("--surge-window", type=float, default=5.0)
    run.add_argument("--surge-radius", type=float, default=800.0, help="metres")
    run.add_argument("--storm-window", type=float, default=60.0)
    run.add_argument("--reboot-share", type=float, default=0.05, help="chaos: devices rebooted")
    run.add_argument("--gateways", type=int, default=3, help="simulated LoRa gateways (flood: 5)")
    run.add_argument("--radio-loss", type=float, default=0.02, help="random LoRa packet loss")
    run.add_argument(
        "--pty-dir",
        type=Path,
        default=Path(".firmware_sim/pty"),
        help="where the gateways' serial paths appear (gw-1, gw-2, ...)",
    )
    run.add_argument(
        "--state",
        type=Path,
        default=None,
        help="frame counter state file (default .firmware_sim/counters-SEED.json)",
    )
    run.add_argument(
        "--retry-first",
        type=float,
        help="first ack wait, s, doubling up to --retry-max (default: the protocol's schedule, "
        "1, 2, 4, 8 s, then every 15 s ±20 %%)",
    )
    run.add_argument("--retry-max", type=float, help="longest ack wait, s (with --retry-first)")
    run.add_argument(
        "--tablets",
        default="",
        help="CALLSIGN:USERNAME:PASSWORD,... or @FILE (one per line): posts to simulate",
    )
    run.add_argument("--accept", type=float, default=0.85, help="tablet accept probability")
    run.add_argument("--decline", type=float, default=0.10, help="tablet decline probability")
    run.add_argument("--reaction", type=float, default=3.0, help="median reaction time, s")
    run.add_argument("--speed", type=float, default=12.0, help="patrol speed, m/s")
    run.add_argument("--scene", type=float, default=5.0, help="time on scene, s")
    run.add_argument(
        "--location-interval", type=float, default=5.0, help="tablet location reports, s"
    )
    run.add_argument(
        "--watch", type=_login, default=None, help="DISPATCHER:PASSWORD: count alerts on the stream"
    )
    run.add_argument(
        "--broker-restart-command", default="", help="chaos: shell command restarting the broker"
    )
    run.add_argument("--connections", type=int, default=2, help="MQTT publisher connections")
    run.add_argument("--concurrency", type=int, default=500, help="transmissions in flight")
    run.add_argument("--json", type=Path, default=None, help="write the report as JSON here")
    run.add_argument("--no-progress", action="store_true", help="no progress line")
    dc09_scenario.add_run_options(run)
    return parser


def _fleet_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--devices", type=int, default=1000, help="fleet size")
    parser.add_argument("--seed", type=int, default=1, help="fleet seed (EUIs, keys, places)")
    parser.add_argument(
        "--transport",
        type=parse_transports,
        default=((TransportKind.MQTT, 1.0),),
        help="transport mix, e.g. mqtt=3,mqtt-json=1,http=1,lora=1,chirpstack=1",
    )
    parser.add_argument("--radius", type=float, default=5000.0, help="city radius, metres")
    parser.add_argument("--alarm-share", type=float, default=0.5, help="share of intrusion alarms")


def _fleet(args: argparse.Namespace) -> int:
    plan = FleetPlan(
        devices=args.devices,
        seed=args.seed,
        radius_m=args.radius,
        transports=args.transport,
        alarm_share=args.alarm_share,
    )
    write_import_csv(args.output, make_fleet(plan))
    print(f"{args.devices} devices written to {args.output} (it holds their keys)")
    return EXIT_OK


def _retry_policy(first_s: float | None, max_s: float | None) -> RetryPolicy:
    """The protocol's schedule, unless the run shortens it with --retry-first/--retry-max."""
    if first_s is None and max_s is None:
        return PROTOCOL_RETRY
    first = first_s if first_s is not None else PROTOCOL_RETRY.waits_s[0]
    longest = max_s if max_s is not None else PROTOCOL_RETRY.waits_s[-1]
    return RetryPolicy.doubling(first, max(longest, first), jitter=PROTOCOL_RETRY.jitter)


def config_from(args: argparse.Namespace) -> RunConfig:
    tablets_text: str = args.tablets
    if tablets_text.startswith("@"):
        tablets_text = Path(tablets_text[1:]).read_text(encoding="utf-8")
    return RunConfig(
        scenario=args.scenario,
        base_url=args.url,
        mqtt_url=args.mqtt,
        chirpstack_url=args.chirpstack,
        devices=args.devices,
        seed=args.seed,
        run_id=args.run_id,
        transports=args.transport,
        rate=args.rate,
        uplinks=args.uplinks,
        duration_s=args.duration,
        drain_s=args.drain,
        presses=args.presses,
        drill_share=args.drill_share,
        tamper_share=args.tamper_share,
        surge_radius_m=args.surge_radius,
        surge_window_s=args.surge_window,
        storm_window_s=args.storm_window,
        reboot_share=args.reboot_share,
        gateways=args.gateways,
        radio=RadioModel(random_loss=args.radio_loss),
        pty_dir=args.pty_dir,
        state_path=args.state or Path(f".firmware_sim/counters-{args.seed}.json"),
        retry=_retry_policy(args.retry_first, args.retry_max),
        tablets=tuple(parse_tablets(tablets_text)),
        tablet_behaviour=TabletBehaviour(
            accept_p=args.accept,
            decline_p=args.decline,
            reaction_median_s=args.reaction,
            speed_mps=args.speed,
            scene_s=args.scene,
            location_interval_s=args.location_interval,
        ),
        watcher=args.watch,
        connections=args.connections,
        concurrency=args.concurrency,
        radius_m=args.radius,
        alarm_share=args.alarm_share,
        progress=not args.no_progress,
    )


def _run(args: argparse.Namespace) -> int:
    if args.scenario == "panels":
        return dc09_scenario.run_command(args)
    config = config_from(args)
    broker = (
        ShellBrokerControl(args.broker_restart_command) if args.broker_restart_command else None
    )
    if config.scenario == "chaos" and broker is None:
        print("chaos needs --broker-restart-command", file=sys.stderr)
        return EXIT_USAGE
    if any(kind is TransportKind.LORA for kind, _ in config.transports) or (
        config.scenario == "flood"
    ):
        print(
            f"LoRa gateways appear under {config.pty_dir}/ (gw-1, gw-2, ...): start alertnet "
            "with ALERTNET_SERIAL=gw-1=<dir>/gw-1,...",
            file=sys.stderr,
        )
    if any(kind is TransportKind.CHIRPSTACK for kind, _ in config.transports):
        print(
            "LoRaWAN devices publish through a simulated ChirpStack on the --chirpstack "
            "broker (default --mqtt): start alertnet with ALERTNET_CHIRPSTACK_MQTT_URL "
            "pointing at that broker",
            file=sys.stderr,
        )
    report = asyncio.run(run_scenario(config, broker))
    print(report.table())
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report.as_dict(), indent=2), encoding="utf-8")
    return EXIT_OK if report.lost == 0 and report.duplicated == 0 else EXIT_FAILED


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["frigate"]:  # a simulated Frigate NVR (DESIGN §9.3): firmware_sim.frigate
        from firmware_sim.frigate import main as frigate_main

        logging.basicConfig(level=logging.WARNING)
        return frigate_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        # paho logs every broker disconnect as an error; the links reconnect and count them.
        logging.getLogger("mqtt").setLevel(logging.CRITICAL)
    try:
        if args.command == "fleet":
            return _fleet(args)
        if args.command == "panels":
            return dc09_scenario.write_fleet_command(args)
        return _run(args)
    except (ValueError, OSError, TimeoutError) as exc:
        print(f"firmware_sim: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_FAILED

"""``make bench``: alertnet under the firmware simulator, measured against DESIGN §8.

On loopback only: a fresh PostgreSQL database, the project's own Mosquitto, ``alertnet
serve`` as a subprocess, and the simulator as another (``python -m firmware_sim run``).
The steps (``--steps``, in this order; all by default):

- baseline: the simulator publishes ``--uplinks`` heartbeats flat out to a bare aiomqtt
  subscriber that does nothing (live rate), then the same number is queued for that
  subscriber's offline session and drained (its receive capacity);
- echo: a bare echo responder (bench/echo.py) in alertnet's place answers every press at once;
  press → reply at each ``--offer-rates`` heartbeat load: the latency baseline;
- drain: the same backlog queued for alertnet's session while it is stopped, then drained:
  alertnet's ingest capacity with the publisher out of the way;
- offer: +tablets at ``--offer-rates`` heartbeats/s: presses while simulated patrol tablets
  follow their streams: press → offer on the nearest tablet (and press → ack);
- max: the simulator flat out into alertnet (committed/s, ratio to the bare subscriber);
- steady at ``--rates``: offered vs committed, press → ack ("received" downlink, i.e. the
  alert committed) p50/p95/p99;
- alarms80: press → ack p99 at 80 % of the live capacity (the max and steady steps'; the
  drain rate when neither ran) vs at 500/s;
- storm: every mains-powered alarm loses mains at ~1,700/s over heartbeats;
- scale: the backlog drained by 1 and by 2 ``--role ingest`` processes (bench/scale.py);
- failover: two ingest processes under load with presses, one SIGKILLed halfway;
- dc09: the SIA DC-09 receiver (bench/dc09.py).

After each run the database is asked too: every press must be an event, and no device may
have two open alerts of one kind. VmRSS and VmHWM of every alertnet process are read at the
end of each step. Results: ``bench/results/bench-<time>.json`` and ``.png`` (and
``latest.*``). ``--profile drain,storm`` runs alertnet under pyinstrument in those steps
(``bench/results/profile-<step>.txt``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiomqtt

_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from bench import dc09, scale  # noqa: E402
from bench.echo import EchoResponder, write_keys  # noqa: E402
from bench.harness import (  # noqa: E402
    DISPATCHER,
    AlertnetServer,
    Broker,
    count_alerts,
    create_tablet_users,
    missing_events,
    register_fleet,
    scratch_database,
    tablet_endpoints_exist,
)
from bench.report import alarms_capacity, failures, p99, plot, table  # noqa: E402
from firmware_sim.fleet import FleetPlan, make_fleet  # noqa: E402

RESULTS = _ROOT / "bench" / "results"
SEED = 8
STEPS = (
    "baseline",
    "echo",
    "drain",
    "offer",
    "max",
    "steady",
    "alarms80",
    "storm",
    "scale",
    "failover",
    "dc09",
)
#: The single all-role alertnet's client id: its persistent session holds the drain's backlog.
SERVER_CLIENT_ID = "alertnet-bench"
BARE_SUBSCRIBER_ID = "bench-bare-subscriber"
#: alarms80 compares with press → ack at this background load (DESIGN §8).
ALARMS_BASE_RATE = 500


def _load_average() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.broker = Broker(workdir / "broker")
        self.tablets_file: Path | None = None
        self.steps: list[dict[str, Any]] = []
        self.step_no = 0
        self.server: AlertnetServer | None = None
        self.roles = False

    def sim_command(self, scenario: str, base_url: str, **options: Any) -> list[str]:
        command = [sys.executable, "-m", "firmware_sim", "run", scenario, "--url", base_url]
        # Time compressed: the first retry after 2 s (a step may override it).
        options = {
            "mqtt": self.broker.url,
            "devices": self.args.devices,
            "seed": SEED,
            "state": self.workdir / "counters.json",
            "connections": self.args.connections,
            "retry_first": 2,
            "retry_max": 8,
            **options,
        }
        for name, value in options.items():
            if value is True:
                command.append(f"--{name.replace('_', '-')}")
            elif value is not None and value is not False:
                command += [f"--{name.replace('_', '-')}", str(value)]
        if not sys.stderr.isatty():
            command.append("--no-progress")
        return command

    async def simulate(
        self, label: str, scenario: str, base_url: str, **options: Any
    ) -> dict[str, Any]:
        self.step_no += 1
        out = self.workdir / f"{self.step_no:02d}-{label}.json"
        command = self.sim_command(scenario, base_url, json=out, run_id=self.step_no, **options)
        print(f"\n== {label}: {' '.join(command[3:])}", flush=True)
        process = await asyncio.create_subprocess_exec(*command, cwd=_ROOT)
        try:
            code = await process.wait()
        finally:
            if process.returncode is None:  # cancelled: the simulator goes too
                process.kill()
                await process.wait()
        if not out.exists():
            raise RuntimeError(f"{label}: the simulator wrote no report (exit {code})")
        report: dict[str, Any] = json.loads(out.read_text())
        report["exit_code"] = code
        report["load_average"] = _load_average()
        return report

    async def publish_only(self, label: str) -> dict[str, Any]:
        """The simulator sends ``--uplinks`` heartbeats flat out, alertnet not running."""
        return await self.simulate(
            label,
            "steady",
            scale.NO_METRICS_URL,  # alertnet is not part of this step
            rate="max",
            uplinks=self.args.uplinks,
            presses=0,
            drain=0,
        )

    async def baseline(self) -> dict[str, Any]:
        """A subscriber that does nothing: what it receives from the simulator flat out
        (live), then how fast it drains the same number queued for its session (drain)."""
        expected = self.args.uplinks
        address = ("127.0.0.1", self.broker.port)

        async def receive(
            client: aiomqtt.Client, publish: bool
        ) -> tuple[int, float, dict[str, Any]]:
            received = 0
            first = last = 0.0
            done = asyncio.Event()

            async def count() -> None:
                nonlocal received, first, last
                async for _message in client.messages:
                    received += 1
                    last = time.monotonic()
                    first = first or last
                    if received >= expected:
                        done.set()

            counter = asyncio.create_task(count())
            report = await self.publish_only("baseline") if publish else {}
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), 120)
            counter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await counter
            return received, (received / (last - first) if last > first else 0.0), report

        identifier = BARE_SUBSCRIBER_ID
        async with aiomqtt.Client(*address, identifier=identifier, clean_session=False) as client:
            await client.subscribe("alertnet/v1/up/+", qos=1)
            received, live_rate, report = await receive(client, publish=True)
        # The same subscriber, offline while the backlog builds, then draining it.
        await self.publish_only("baseline-backlog")
        async with aiomqtt.Client(*address, identifier=identifier, clean_session=False) as client:
            drained, drain_rate, _ = await receive(client, publish=False)
        await self.broker.forget_session(identifier)  # nothing more is queued for it
        report["bare_received"] = received
        report["bare_rate"] = round(live_rate, 1)
        report["bare_drained"] = drained
        report["bare_drain_rate"] = round(drain_rate, 1)
        print(
            f"bare subscriber: live {received:,} messages at {live_rate:,.0f}/s; "
            f"backlog {drained:,} drained at {drain_rate:,.0f}/s",
            flush=True,
        )
        return report

    async def verify(self, db_url: str, report: dict[str, Any]) -> None:
        presses = []
        for key in report.get("presses", []):
            eui, _, counter = key.partition(":")
            presses.append((eui, int(counter)))
        missing = await missing_events(db_url, presses)
        alerts = await count_alerts(db_url)
        report["db_missing_events"] = len(missing)
        report["db_alerts"] = alerts["alerts"]
        report["db_alerts_duplicated"] = alerts["duplicated"]
        report.pop("presses", None)

    async def run(self) -> dict[str, Any]:
        self.broker.directory.mkdir(parents=True)
        self.broker.start()
        try:
            async with scratch_database() as db_url:
                try:
                    return await self._run_on(db_url)
                finally:  # before the database goes
                    if self.server is not None:
                        self.server.stop()
        finally:
            self.broker.stop()

    async def serve(self, db_url: str, label: str) -> AlertnetServer:
        """The running alertnet, (re)started under pyinstrument when ``label`` is profiled."""
        profile = RESULTS / f"profile-{label}.txt" if label in self.args.profile else None
        if self.server is not None and self.server.profile_to is None and profile is None:
            return self.server
        if self.server is not None:
            self.server.stop()
        self.server = AlertnetServer(
            db_url,
            self.broker.url,
            self.workdir / "alertnet.log",
            client_id=SERVER_CLIENT_ID,
            profile_to=profile,
        )
        await self.server.start()
        return self.server

    async def stop_server(self) -> None:
        """Stop the single alertnet and drop its session: while other processes (or the echo)
        answer, nothing may pile up for it."""
        if self.server is not None:
            await asyncio.to_thread(self.server.stop)
            self.server = None
        await self.broker.forget_session(SERVER_CLIENT_ID)

    def server_memory(self) -> list[dict[str, Any]]:
        if self.server is None:
            return []
        return [{"process": "all roles", "pid": self.server.pid, **self.server.memory()}]

    def record(self, report: dict[str, Any], label: str, kind: str, **extra: Any) -> None:
        """One row of the table: ``report`` labelled, with this step's alertnet memory."""
        report.update(label=label, kind=kind, **extra)
        report.setdefault("memory", self.server_memory())
        self.steps.append(report)

    async def drain(self, db_url: str) -> dict[str, Any]:
        """alertnet stopped, ``--uplinks`` queued for its session, then started: the rate at
        which it commits the backlog — its ingest capacity, free of the publisher's."""
        await self.serve(db_url, "drain-setup")  # its persistent session exists from here on
        assert self.server is not None
        self.server.stop()
        self.server = None
        await self.publish_only("drain-backlog")
        server = await self.serve(db_url, "drain")

        async def committed() -> float:
            return await server.uplinks_committed() or 0.0

        drained = await scale.wait_for_count(committed, self.args.uplinks)
        rate = drained.rate()
        print(f"alertnet drained {drained.count:,.0f} queued uplinks at {rate:,.0f}/s", flush=True)
        return {
            "label": "drain",
            "committed": drained.count,
            "committed_rate": round(rate, 1),
            # Committed before the first poll (during start-up), left out of the rate.
            "committed_at_first_poll": drained.first_count,
            "load_average": _load_average(),
            "memory": self.server_memory(),
        }

    async def echo(self, keys_path: Path) -> None:
        """Press → reply through the broker with a bare echo in alertnet's place, at the
        heartbeat loads of the offer steps, with as many presses."""
        await self.stop_server()
        args = self.args
        for rate in args.offer_rates:
            responder = EchoResponder(self.broker.url, keys_path)
            await responder.start()
            try:
                report = await self.simulate(
                    f"echo-{rate}",
                    "steady",
                    scale.NO_METRICS_URL,
                    rate=rate,
                    duration=args.duration,
                    presses=min(args.presses, args.tablets),
                    drain=30,
                    drill_share=0,
                    tamper_share=0,
                )
                memory = responder.memory()
            finally:
                counts = await responder.stop()
            report.pop("presses", None)  # the echo stores nothing: no database to ask
            self.record(report, f"echo {rate}/s", "echo", rate=rate, echo=counts, memory=memory)

    async def alarms80(self, db_url: str, result: dict[str, Any]) -> None:
        """Press → ack p99 at 80 % of the capacity measured in this run vs at 500/s, one
        after the other with as many presses (like with like on a drifting machine). The
        capacity is the live one of the max and steady steps (``report.alarms_capacity``)."""
        args = self.args
        chosen = alarms_capacity(result, args.capacity)
        if chosen is None:
            print("alarms80: no capacity measured (run max, steady or drain, or give --capacity)")
            return
        capacity = chosen.rate
        print(f"alarms80: 80 % of {capacity:,.0f}/s, the {chosen.basis}", flush=True)
        rate80 = round(0.8 * capacity)
        p99_ms: dict[int, float | None] = {}
        for rate in (ALARMS_BASE_RATE, rate80):
            server = await self.serve(db_url, f"alarms80-{rate}")
            report = await self.simulate(
                f"alarms80-{rate}",
                "steady",
                server.base_url,
                rate=rate,
                duration=args.duration,
                presses=args.alarm_presses,
                drain=30,
            )
            await self.verify(db_url, report)
            self.record(report, f"alarms {rate}/s", "alarms80", rate=rate)
            p99_ms[rate] = p99(report)
        high, base = p99_ms[rate80], p99_ms[ALARMS_BASE_RATE]
        result["alarms80"] = {
            "capacity": capacity,
            "capacity_basis": chosen.basis,
            "drain_capacity": (result.get("drain") or {}).get("committed_rate"),
            "rate": rate80,
            "offered_rate": self.steps[-1].get("offered_rate"),
            "p99_ms": high,
            "p99_ms_500": base,
            "ratio": round(high / base, 2) if high and base else None,
        }

    async def dc09(self, db_url: str) -> dict[str, Any]:
        """The SIA DC-09 part (bench/dc09.py), with its own alertnet: the other one stops."""
        await self.stop_server()
        args = self.args
        return await dc09.dc09_step(
            self.workdir, db_url, self.broker.url, args.dc09_panels, args.dc09_messages
        )

    async def _run_on(self, db_url: str) -> dict[str, Any]:
        args = self.args
        steps = args.steps
        fleet = make_fleet(FleetPlan(devices=args.devices, seed=SEED))
        await register_fleet(db_url, fleet)
        keys_path = self.workdir / "keys.txt"
        write_keys(keys_path, {spec.eui: spec.key for spec in fleet})
        tablets_api = tablet_endpoints_exist()
        self.roles = scale.roles_supported()
        tablet_options: dict[str, Any] = {}
        if tablets_api and args.tablets and "offer" in steps:
            specs = await create_tablet_users(db_url, args.tablets)
            self.tablets_file = self.workdir / "tablets.txt"
            self.tablets_file.write_text(
                "\n".join(f"{s.callsign}:{s.username}:{s.password}" for s in specs)
            )
            tablet_options = {
                "tablets": f"@{self.tablets_file}",
                "watch": f"{DISPATCHER[0]}:{DISPATCHER[1]}",
                "reaction": 0.5,
                # Time compressed: crews drive fast and leave the scene soon, so that posts
                # are free when presses come and press → offer measures alertnet, not the
                # shortage of posts (offers after an escalation are counted apart).
                "speed": 1000,
                "scene": 1,
                "location_interval": 5,  # what a tablet in the field sends
                "accept": 0.95,
                "decline": 0.05,
            }
        result: dict[str, Any] = {
            "started_at": datetime.now(UTC).isoformat(),
            "machine": {"cpus": os.cpu_count(), "load_average_at_start": _load_average()},
            "devices": args.devices,
            "uplinks": args.uplinks,
            "tablet_api": tablets_api,
            "roles": self.roles,
            "selected_steps": [step for step in STEPS if step in steps],
            "steps": self.steps,
        }
        if "baseline" in steps:
            result["baseline"] = await self.baseline()
        if "echo" in steps:
            await self.echo(keys_path)
        if "drain" in steps:
            result["drain"] = await self.drain(db_url)
        # Press → offer on the nearest tablet's stream, at the budget's background loads;
        # first, while no unserved alert of other steps waits in the escalated queue.
        for rate in args.offer_rates if tablet_options else []:
            label = f"offer-{rate}"
            server = await self.serve(db_url, label)
            report = await self.simulate(
                label,
                "steady",
                server.base_url,
                rate=rate,
                duration=args.duration,
                presses=min(args.presses, args.tablets),
                drain=45,
                drill_share=0,
                tamper_share=0,
                **tablet_options,
            )
            await self.verify(db_url, report)
            self.record(report, f"+tablets {rate}/s", "offer", rate=rate)
        if "max" in steps:
            server = await self.serve(db_url, "max")
            report = await self.simulate(
                "max", "steady", server.base_url, rate="max", uplinks=args.uplinks, presses=50
            )
            await self.verify(db_url, report)
            self.record(report, "max", "max")
        for rate in args.rates if "steady" in steps else []:
            label = f"steady-{rate}"
            server = await self.serve(db_url, label)
            report = await self.simulate(
                label,
                "steady",
                server.base_url,
                rate=rate,
                duration=args.duration,
                presses=args.presses,
                drain=30,
            )
            await self.verify(db_url, report)
            self.record(report, f"steady {rate}/s", "steady", rate=rate)
        if "alarms80" in steps:
            await self.alarms80(db_url, result)
        if "storm" in steps:
            alarms = sum(1 for spec in fleet if spec.mains_powered)
            server = await self.serve(db_url, "storm")
            report = await self.simulate(
                "storm",
                "storm",
                server.base_url,
                rate=args.storm_background,
                duration=max(5.0, alarms / 1700 + 2),
                storm_window=round(alarms / 1700, 2),
                drain=90,
            )
            await self.verify(db_url, report)
            self.record(report, "storm", "storm")
        if "scale" in steps:
            await self.stop_server()
            for ingests in (1, 2):
                self.steps.append(await scale.drain_step(self, db_url, ingests, roles=self.roles))
        if "failover" in steps:
            await self.stop_server()
            self.steps.append(await scale.failover_step(self, db_url, roles=self.roles))
        if "dc09" in steps and args.dc09_panels:
            result["dc09"] = await self.dc09(db_url)
        result["finished_at"] = datetime.now(UTC).isoformat()
        result["machine"]["load_average_at_end"] = _load_average()
        return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--devices", type=int, default=5000)
    parser.add_argument(
        "--uplinks", type=int, default=40_000, help="the backlog and flat-out steps' heartbeats"
    )
    parser.add_argument(
        "--rates",
        type=lambda t: [int(x) for x in t.split(",") if x],
        default=[500, 1000, 2000, 3000, 5000],
    )
    parser.add_argument(
        "--offer-rates",
        type=lambda t: [int(x) for x in t.split(",") if x],
        default=[1000, 3000],
        help="heartbeat rates of the echo and +tablets steps (press → reply, ack, offer)",
    )
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per steady step")
    parser.add_argument("--presses", type=int, default=20, help="presses per steady step")
    parser.add_argument("--tablets", type=int, default=30, help="simulated posts")
    parser.add_argument("--storm-background", type=float, default=500.0)
    parser.add_argument("--connections", type=int, default=2)
    parser.add_argument(
        "--profile",
        type=lambda text: set(text.split(",")),
        default=set(),
        help="steps to run alertnet under pyinstrument, e.g. drain,storm,steady-1000",
    )
    parser.add_argument(
        "--dc09-panels", type=int, default=200, help="SIA DC-09 panels in the last step (0: none)"
    )
    parser.add_argument("--dc09-messages", type=int, default=20_000, help="DC-09 messages sent")
    parser.add_argument("--dc09-only", action="store_true", help="the same as --steps dc09")
    parser.add_argument(
        "--steps",
        type=_steps,
        default=set(STEPS),
        help=f"comma-separated, run in this order: {','.join(STEPS)} (default: all)",
    )
    parser.add_argument(
        "--capacity",
        type=float,
        default=0.0,
        help="alarms80's capacity in uplinks/s instead of the one measured in this run",
    )
    parser.add_argument("--alarm-presses", type=int, default=40, help="presses per alarms80 run")
    parser.add_argument("--failover-rate", type=float, default=1000.0, help="heartbeats/s")
    parser.add_argument("--failover-duration", type=float, default=20.0, help="seconds of load")
    parser.add_argument("--failover-presses", type=int, default=100)
    args = parser.parse_args()
    if args.dc09_only:
        args.steps = {"dc09"}
    RESULTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="alertnet-bench-") as directory:
        bench = Bench(args, Path(directory))
        result = asyncio.run(bench.run())
        for log in Path(directory).glob("alertnet*.log"):
            with contextlib.suppress(OSError):
                copy = RESULTS / log.name.replace("alertnet", "alertnet-last", 1)
                copy.write_text(log.read_text(errors="replace"))
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    text = table(result)
    result["table"] = text
    for name in (f"bench-{stamp}", "latest"):
        (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2))
    plotted = bool(result["steps"]) and plot(result, RESULTS / f"bench-{stamp}.png")
    if plotted:
        (RESULTS / "latest.png").write_bytes((RESULTS / f"bench-{stamp}.png").read_bytes())
    print("\n" + text)
    print(f"\nresults: {RESULTS}/bench-{stamp}.json" + (" and .png" if plotted else ""))
    failed = failures(result)
    if failed:
        print(f"LOST OR DUPLICATED in: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def _steps(text: str) -> set[str]:
    chosen = {name.strip() for name in text.split(",") if name.strip()}
    unknown = chosen - set(STEPS)
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown steps {sorted(unknown)}; known: {STEPS}")
    return chosen


if __name__ == "__main__":
    raise SystemExit(main())

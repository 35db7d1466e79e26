"""``make bench``: alertnet under the firmware simulator, measured against DESIGN §8.

On loopback only: a fresh PostgreSQL database, the project's own Mosquitto, ``alertnet
serve`` as a subprocess, and the simulator as another (``python -m firmware_sim run``):

1. baseline: the simulator publishes ``--uplinks`` heartbeats flat out to a bare aiomqtt
   subscriber that does nothing (live rate), then the same number is queued for that
   subscriber's offline session and drained (its receive capacity);
2. drain: the same backlog queued for alertnet's session while it is stopped, then drained:
   alertnet's ingest capacity with the publisher out of the way;
3. +tablets at ``--offer-rates`` heartbeats/s: presses while simulated patrol tablets follow
   their streams: press → offer on the nearest tablet (and press → ack);
4. max: the simulator flat out into alertnet (committed/s, ratio to the bare subscriber);
5. steady at ``--rates``: offered vs committed, press → ack ("received" downlink, i.e. the
   alert committed) p50/p95/p99;
6. storm: every mains-powered alarm loses mains at ~1,700/s over heartbeats.

After each run the database is asked too: every press must be an event, and no device may
have two open alerts of one kind. Results: ``bench/results/bench-<time>.json`` and ``.png``
(and ``latest.*``). ``--profile drain,storm`` runs alertnet under pyinstrument in those steps
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

from bench import dc09  # noqa: E402
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
from firmware_sim.fleet import FleetPlan, make_fleet  # noqa: E402

RESULTS = _ROOT / "bench" / "results"
SEED = 8


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

    def sim_command(self, scenario: str, base_url: str, **options: Any) -> list[str]:
        command = [
            sys.executable,
            "-m",
            "firmware_sim",
            "run",
            scenario,
            "--url",
            base_url,
            "--mqtt",
            self.broker.url,
            "--devices",
            str(self.args.devices),
            "--seed",
            str(SEED),
            "--state",
            str(self.workdir / "counters.json"),
            "--connections",
            str(self.args.connections),
            "--retry-first",
            "2",
            "--retry-max",
            "8",
        ]
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
        code = await process.wait()
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
            "http://127.0.0.1:9",  # nothing listens: alertnet is not part of this step
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

        identifier = "bench-bare-subscriber"
        async with aiomqtt.Client(*address, identifier=identifier, clean_session=False) as client:
            await client.subscribe("alertnet/v1/up/+", qos=1)
            received, live_rate, report = await receive(client, publish=True)
        # The same subscriber, offline while the backlog builds, then draining it.
        await self.publish_only("baseline-backlog")
        async with aiomqtt.Client(*address, identifier=identifier, clean_session=False) as client:
            drained, drain_rate, _ = await receive(client, publish=False)
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
            db_url, self.broker.url, self.workdir / "alertnet.log", profile_to=profile
        )
        await self.server.start()
        return self.server

    async def drain(self, db_url: str) -> dict[str, Any]:
        """alertnet stopped, ``--uplinks`` queued for its session, then started: the rate at
        which it commits the backlog — its ingest capacity, free of the publisher's."""
        await self.serve(db_url, "drain-setup")  # its persistent session exists from here on
        assert self.server is not None
        self.server.stop()
        self.server = None
        await self.publish_only("drain-backlog")
        server = await self.serve(db_url, "drain")
        expected = self.args.uplinks
        first_at = last_at = 0.0
        committed = 0.0
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            committed = await server.uplinks_committed() or 0.0
            now = time.monotonic()
            if committed and not first_at:
                first_at = now
            if committed >= expected:
                last_at = now
                break
            await asyncio.sleep(0.05)
        rate = committed / (last_at - first_at) if last_at > first_at else 0.0
        print(f"alertnet drained {committed:,.0f} queued uplinks at {rate:,.0f}/s", flush=True)
        return {
            "label": "drain",
            "committed": committed,
            "committed_rate": round(rate, 1),
            "load_average": _load_average(),
        }

    async def dc09(self, db_url: str) -> dict[str, Any]:
        """The SIA DC-09 part (bench/dc09.py), with its own alertnet: the other one stops."""
        if self.server is not None:
            self.server.stop()
            self.server = None
        args = self.args
        return await dc09.dc09_step(
            self.workdir, db_url, self.broker.url, args.dc09_panels, args.dc09_messages
        )

    async def _run_on(self, db_url: str) -> dict[str, Any]:
        args = self.args
        if args.dc09_only:
            return {
                "started_at": datetime.now(UTC).isoformat(),
                "machine": {"cpus": os.cpu_count(), "load_average_at_start": _load_average()},
                "steps": self.steps,
                "dc09": await self.dc09(db_url),
            }
        fleet = make_fleet(FleetPlan(devices=args.devices, seed=SEED))
        await register_fleet(db_url, fleet)
        tablets_api = tablet_endpoints_exist()
        tablet_options: dict[str, Any] = {}
        if tablets_api and args.tablets:
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
            "steps": self.steps,
        }
        result["baseline"] = await self.baseline()
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
            report["label"] = f"+tablets {rate}/s"
            self.steps.append(report)
        server = await self.serve(db_url, "max")
        report = await self.simulate(
            "max", "steady", server.base_url, rate="max", uplinks=args.uplinks, presses=50
        )
        await self.verify(db_url, report)
        report["label"] = "max"
        self.steps.append(report)
        for rate in args.rates:
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
            report["label"] = f"steady {rate}/s"
            self.steps.append(report)
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
        report["label"] = "storm"
        self.steps.append(report)
        if args.dc09_panels:
            result["dc09"] = await self.dc09(db_url)
        result["finished_at"] = datetime.now(UTC).isoformat()
        result["machine"]["load_average_at_end"] = _load_average()
        return result


def _ms(part: dict[str, Any] | None, key: str) -> str:
    if not part or not part.get("n"):
        return "-"
    value = part.get(key)
    return "-" if value is None else f"{value:.0f}"


def table(result: dict[str, Any]) -> str:
    if "baseline" not in result:  # --dc09-only
        return "\n".join(dc09.lines(result["dc09"]))
    bare = result["baseline"]["bare_rate"] or 0.0
    header = (
        f"{'step':<14}{'offered/s':>10}{'alertnet/s':>11}{'÷bare':>7}"
        f"{'ack p50':>9}{'p95':>6}{'p99':>7}{'offer p50':>11}{'p95':>6}{'p99':>7}"
        f"{'lost':>6}{'dup':>5}{'load1':>7}"
    )
    base = result["baseline"]
    drain = result["drain"]
    bare_drain = base.get("bare_drain_rate") or 0.0
    drain_ratio = f"{drain['committed_rate'] / bare_drain:.0%}" if bare_drain else "-"
    lines = [
        f"bare aiomqtt subscriber: {bare:,.0f} msgs/s live from the simulator flat out "
        f"(it offered {base['offered_rate']:,.0f}/s); drains a {result['uplinks']:,} backlog "
        f"at {bare_drain:,.0f}/s",
        f"alertnet drains the same backlog at {drain['committed_rate']:,.0f} uplinks/s "
        f"({drain_ratio} of bare) — its ingest capacity without the publisher in the way",
        header,
        "-" * len(header),
    ]
    for step in result["steps"]:
        summary = step["summary"]
        committed = step.get("committed_rate") or 0.0
        lost = summary["presses_lost"] + step.get("db_missing_events", 0)
        dup = max(summary["alerts_duplicated"], step.get("db_alerts_duplicated", 0))
        # The ratio compares like with like: both flat out from the same publisher.
        ratio = f"{committed / bare:.0%}" if bare and step["label"] == "max" else "-"
        lines.append(
            f"{step['label']:<14}{step['offered_rate']:>10,.0f}{committed:>11,.0f}"
            f"{ratio:>7}"
            f"{_ms(summary['press_to_ack'], 'p50_ms'):>9}"
            f"{_ms(summary['press_to_ack'], 'p95_ms'):>6}"
            f"{_ms(summary['press_to_ack'], 'p99_ms'):>7}"
            f"{_ms(summary['press_to_offer'], 'p50_ms'):>11}"
            f"{_ms(summary['press_to_offer'], 'p95_ms'):>6}"
            f"{_ms(summary['press_to_offer'], 'p99_ms'):>7}"
            f"{lost:>6}{dup:>5}{step['load_average'][0]:>7.2f}"
        )
    lines.append(
        "latencies in ms; ack = press → 'received' downlink at the device (alert committed); "
        "offer = press → offer.created on the nearest tablet's stream"
    )
    if not result["tablet_api"]:
        lines.append("press → offer: not measured, this alertnet has no tablet API yet")
    if "dc09" in result:
        lines += dc09.lines(result["dc09"])
    return "\n".join(lines)


def plot(result: dict[str, Any], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot", file=sys.stderr)
        return False
    steady = [s for s in result["steps"] if s["label"].startswith("steady")]
    offered = [s["offered_rate"] for s in steady]
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    left.plot(offered, [s.get("committed_rate") or 0 for s in steady], "o-", label="committed")
    top = max([*offered, result["baseline"]["bare_rate"]] or [1])
    left.plot([0, top], [0, top], ":", color="grey", label="offered = committed")
    left.axhline(
        result["baseline"]["bare_rate"], color="tab:green", ls="--", label="bare subscriber"
    )
    left.axhline(
        result["baseline"].get("bare_drain_rate") or 0,
        color="tab:olive",
        ls="--",
        label="bare subscriber, backlog",
    )
    left.axhline(
        result["drain"]["committed_rate"], color="tab:purple", ls="-.", label="alertnet, backlog"
    )
    for step in result["steps"]:
        if not step["label"].startswith("steady"):
            marker = "^" if step["label"].startswith("+tablets") else "s"
            left.plot(
                step["offered_rate"], step.get("committed_rate") or 0, marker, label=step["label"]
            )
    left.axhline(5000, color="tab:red", ls=":", label="budget 5,000/s")
    left.set_xlabel("offered uplinks/s")
    left.set_ylabel("committed uplinks/s")
    left.set_title("throughput")
    left.legend(fontsize=8)
    with_tablets = [s for s in result["steps"] if s["label"].startswith("+tablets")]
    series = (
        (steady, "press_to_ack", "press → ack"),
        (with_tablets, "press_to_ack", "press → ack (+tablets)"),
        (with_tablets, "press_to_offer", "press → offer"),
    )
    for steps, key, name in series:
        for pct, style in (("p50_ms", "o-"), ("p99_ms", "s--")):
            values = [step["summary"][key].get(pct) for step in steps]
            if any(value is not None for value in values):
                right.plot(
                    [step["offered_rate"] for step in steps],
                    [value if value is not None else float("nan") for value in values],
                    style,
                    label=f"{name} {pct[:3]}",
                )
    right.axhline(50, color="tab:red", ls=":", label="budget offer p99 50 ms @1,000/s")
    right.axhline(250, color="tab:pink", ls=":", label="budget offer p99 250 ms @3,000/s")
    right.set_yscale("log")
    right.set_xlabel("offered heartbeats/s")
    right.set_ylabel("ms")
    right.set_title("latency")
    right.legend(fontsize=8)
    figure.suptitle(
        f"alertnet bench {result['started_at'][:19]} — {result['machine']['cpus']} CPUs, "
        f"load {result['machine']['load_average_at_start'][0]}"
        f"→{result['machine'].get('load_average_at_end', ['?'])[0]} (shared machine: noisy)"
    )
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--devices", type=int, default=5000)
    parser.add_argument("--uplinks", type=int, default=40_000, help="baseline and max step")
    parser.add_argument(
        "--rates",
        type=lambda t: [int(x) for x in t.split(",") if x],
        default=[500, 1000, 2000, 3000, 5000],
    )
    parser.add_argument(
        "--offer-rates",
        type=lambda t: [int(x) for x in t.split(",") if x],
        default=[1000, 3000],
        help="heartbeat rates of the steps with tablets (press → offer)",
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
    parser.add_argument("--dc09-only", action="store_true", help="run the DC-09 step alone")
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="alertnet-bench-") as directory:
        bench = Bench(args, Path(directory))
        result = asyncio.run(bench.run())
        log_copy = RESULTS / "alertnet-last.log"
        with contextlib.suppress(OSError):
            log_copy.write_text((Path(directory) / "alertnet.log").read_text(errors="replace"))
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    text = table(result)
    result["table"] = text
    for name in (f"bench-{stamp}", "latest"):
        (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2))
    plotted = "baseline" in result and plot(result, RESULTS / f"bench-{stamp}.png")
    if plotted:
        (RESULTS / "latest.png").write_bytes((RESULTS / f"bench-{stamp}.png").read_bytes())
    print("\n" + text)
    print(f"\nresults: {RESULTS}/bench-{stamp}.json" + (" and .png" if plotted else ""))
    failures = [
        step["label"]
        for step in result["steps"]
        if step["summary"]["presses_lost"]
        or step.get("db_missing_events")
        or step["summary"]["alerts_duplicated"]
        or step.get("db_alerts_duplicated")
    ]
    if "dc09" in result and dc09.failed(result["dc09"]):
        failures.append("dc09")
    if failures:
        print(f"LOST OR DUPLICATED in: {', '.join(failures)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

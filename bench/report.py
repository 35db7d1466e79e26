"""What ``make bench`` prints and draws: the table, the budget checks of DESIGN §8 against the
baselines of the same run, the per-process memory, the plot, and the verdict (lost = 0 and
duplicated = 0 in every step). Kept apart from ``bench.run``, which only carries steps out.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import dc09

#: DESIGN §8: press → ack and press → offer p99 over the echo's p99, by background load.
ACK_OVER_ECHO_MS = {1000: 20.0, 3000: 250.0}
OFFER_OVER_ECHO_MS = {1000: 50.0, 3000: 250.0}
FAILOVER_GOAL_MS = 2000.0
ALARMS_GOAL_RATIO = 2.0
DRAIN_GOAL_SHARE = 0.6
#: A step "kept up" when it committed at least this share of what it offered.
KEPT_UP_SHARE = 0.95


def _ms(part: dict[str, Any] | None, key: str) -> str:
    if not part or not part.get("n"):
        return "-"
    value = part.get(key)
    return "-" if value is None else f"{value:.0f}"


def p99(step: dict[str, Any] | None, key: str = "press_to_ack") -> float | None:
    """A step's p99 of ``key`` in ms (None when nothing was measured)."""
    if step is None:
        return None
    part = step.get("summary", {}).get(key) or {}
    value = part.get("p99_ms") if part.get("n") else None
    return None if value is None else float(value)


@dataclass(frozen=True, slots=True)
class Capacity:
    """The uplinks/s that alarms80 takes 80 % of, and where it comes from (for the table)."""

    rate: float
    basis: str


def live_capacity(steps: list[dict[str, Any]]) -> Capacity | None:
    """alertnet's capacity with the simulator publishing beside it, from this run's max and
    steady steps (None when neither ran).

    The highest committed rate of a step that kept up (committed ≥ ``KEPT_UP_SHARE`` of
    offered): there the publisher ran for the whole measurement, as it will in alarms80. A
    step that fell behind times its commits to when alertnet caught up, so its rate includes
    a catch-up tail with the publisher silent and the machine to alertnet alone — the drain
    regime, not the live one — and more of it the further behind it fell; such a step is
    used only when no step kept up. The drain rate (publisher out of the way) is no live
    capacity on a box where the simulator takes a core of its own.
    """
    measured = [
        step
        for step in steps
        if step.get("kind") in ("max", "steady")
        and step.get("committed_rate")
        and step.get("offered_rate")
    ]
    if not measured:
        return None
    kept_up = [s for s in measured if s["committed_rate"] >= KEPT_UP_SHARE * s["offered_rate"]]
    best = max(kept_up or measured, key=lambda step: float(step["committed_rate"]))
    rate = float(best["committed_rate"])
    committed = f"{best['label']} committed {rate:,.0f} of {best['offered_rate']:,.0f}/s offered"
    if not kept_up:
        basis = f"no max/steady step kept up within {1 - KEPT_UP_SHARE:.0%}: {committed}"
    elif len(kept_up) == len(measured):
        basis = f"{committed}; every max/steady step kept up: a lower bound"
    else:
        basis = f"{committed}, the highest that kept up within {1 - KEPT_UP_SHARE:.0%}"
    return Capacity(rate, f"live capacity: {basis}")


def alarms_capacity(result: dict[str, Any], given: float = 0.0) -> Capacity | None:
    """What alarms80 takes 80 % of: ``given`` (``--capacity``) when set, else the live
    capacity of this run, else (no max/steady step ran) the drain rate."""
    if given:
        return Capacity(given, "--capacity")
    live = live_capacity(result["steps"])
    if live is not None:
        return live
    drain = (result.get("drain") or {}).get("committed_rate")
    if drain:
        return Capacity(
            float(drain),
            "drain capacity (no max/steady step ran: the publisher was out of the way, so "
            "this is above what alertnet commits live)",
        )
    return None


def lost(step: dict[str, Any]) -> int:
    """Presses never acked or missing in the database; uplinks a drain never committed."""
    summary = step.get("summary", {})
    return (
        int(summary.get("presses_lost", 0))
        + int(step.get("db_missing_events", 0))
        + int(step.get("uplinks_missing", 0))
    )


def duplicated(step: dict[str, Any]) -> int:
    summary = step.get("summary", {})
    return max(int(summary.get("alerts_duplicated", 0)), int(step.get("db_alerts_duplicated", 0)))


def failures(result: dict[str, Any]) -> list[str]:
    """The steps that lost or duplicated anything (and DC-09, by its own rules)."""
    failed = [step["label"] for step in result["steps"] if lost(step) or duplicated(step)]
    if "dc09" in result and dc09.failed(result["dc09"]):
        failed.append("dc09")
    return failed


def _memory_totals(step: dict[str, Any]) -> tuple[str, str]:
    memory = step.get("memory") or []
    if not memory:
        return "-", "-"
    rss = sum(part.get("rss_mb", 0.0) for part in memory)
    hwm = sum(part.get("hwm_mb", 0.0) for part in memory)
    return f"{rss:.0f}", f"{hwm:.0f}"


def _ratio(value: float | None, base: float | None) -> str:
    return f"{value / base:.0%}" if value and base else "-"


def _by_kind(result: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [step for step in result["steps"] if step.get("kind") == kind]


def _rows(result: dict[str, Any]) -> list[str]:
    base = result.get("baseline") or {}
    bare, bare_drain = base.get("bare_rate"), base.get("bare_drain_rate")
    header = (
        f"{'step':<17}{'offered/s':>10}{'alertnet/s':>11}{'÷bare':>7}"
        f"{'ack p50':>9}{'p95':>6}{'p99':>7}{'offer p50':>11}{'p95':>6}{'p99':>7}"
        f"{'lost':>6}{'dup':>5}{'RSS MB':>8}{'HWM MB':>8}{'load1':>7}"
    )
    lines = [header, "-" * len(header)]
    for step in result["steps"]:
        summary = step.get("summary", {})
        committed = step.get("committed_rate")
        # Like with like: flat out from the same publisher, or a backlog drained.
        ratio = "-"
        if step.get("kind") == "max":
            ratio = _ratio(committed, bare)
        elif step.get("kind") == "drain":
            ratio = _ratio(committed, bare_drain)
        offered = step.get("offered_rate")
        rss, hwm = _memory_totals(step)
        load = step.get("load_average") or [0.0]
        lines.append(
            f"{step['label']:<17}"
            f"{'-' if offered is None else f'{offered:,.0f}':>10}"
            f"{'-' if committed is None else f'{committed:,.0f}':>11}{ratio:>7}"
            f"{_ms(summary.get('press_to_ack'), 'p50_ms'):>9}"
            f"{_ms(summary.get('press_to_ack'), 'p95_ms'):>6}"
            f"{_ms(summary.get('press_to_ack'), 'p99_ms'):>7}"
            f"{_ms(summary.get('press_to_offer'), 'p50_ms'):>11}"
            f"{_ms(summary.get('press_to_offer'), 'p95_ms'):>6}"
            f"{_ms(summary.get('press_to_offer'), 'p99_ms'):>7}"
            f"{lost(step):>6}{duplicated(step):>5}{rss:>8}{hwm:>8}{load[0]:>7.2f}"
        )
    return lines


def _verdict(value: float | None, limit: float | None) -> str:
    if value is None or limit is None:
        return "not measured"
    return "ok" if value <= limit else "OVER"


def _budget_lines(result: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    echoes = {step["rate"]: step for step in _by_kind(result, "echo")}
    offers = {step["rate"]: step for step in _by_kind(result, "offer")}
    for rate in sorted(set(echoes) | set(offers)):
        echo = p99(echoes.get(rate), "press_to_ack")
        ack, offer = (
            p99(offers.get(rate), "press_to_ack"),
            p99(offers.get(rate), "press_to_offer"),
        )
        ack_over = ACK_OVER_ECHO_MS.get(rate, ACK_OVER_ECHO_MS[3000])
        offer_over = OFFER_OVER_ECHO_MS.get(rate, OFFER_OVER_ECHO_MS[3000])
        ack_limit = None if echo is None else echo + ack_over
        offer_limit = None if echo is None else echo + offer_over
        lines.append(
            f"  {rate:,}/s: echo p99 {echo} ms; press → ack p99 {ack} ms "
            f"(≤ echo + {ack_over:.0f}: {_verdict(ack, ack_limit)}); press → offer p99 "
            f"{offer} ms (≤ echo + {offer_over:.0f}: {_verdict(offer, offer_limit)})"
        )
    base = result.get("baseline") or {}
    bare_drain = base.get("bare_drain_rate")
    if "drain" in result:
        rate = result["drain"]["committed_rate"]
        verdict = "not measured"
        if bare_drain:
            verdict = "ok" if rate >= DRAIN_GOAL_SHARE * bare_drain else "UNDER"
        lines.append(
            f"  one all-role process drains {rate:,.0f}/s = {_ratio(rate, bare_drain)} of the "
            f"bare subscriber (≥ {DRAIN_GOAL_SHARE:.0%}: {verdict})"
        )
    drains = {step["ingests"]: step for step in _by_kind(result, "drain")}
    if drains:
        parts = [
            f"{n} ingest {rate:,.0f}/s ({_ratio(rate, bare_drain)} of bare)"
            for n, rate in sorted((n, step["committed_rate"]) for n, step in drains.items())
        ]
        one, two = drains.get(1), drains.get(2)
        if one and two and one["committed_rate"]:
            parts.append(
                f"2 ÷ 1 = {two['committed_rate'] / one['committed_rate']:.2f}x (the 1.6x goal "
                f"applies on ≥ 4 cores; this box has {result['machine']['cpus']})"
            )
        roles = "roles" if next(iter(drains.values())).get("roles") else "all-role processes"
        lines.append(f"  scale-out ({roles}): " + "; ".join(parts))
    for step in _by_kind(result, "failover"):
        around = step["around_kill"]
        worst = around["worst_ack_ms"]
        lines.append(
            f"  failover: one of 2 ingest processes SIGKILLed {step['killed_after_s']} s in; "
            f"lost {lost(step)}, duplicated {duplicated(step)}; {around['presses']} presses "
            f"within 2 s of the kill: worst press → ack {worst} ms (≤ {FAILOVER_GOAL_MS:,.0f}: "
            f"{_verdict(worst, FAILOVER_GOAL_MS)}), unacked {around['unacked']}; worst of the run "
            f"{(step['summary']['press_to_ack'] or {}).get('max_ms')} ms"
        )
    alarms = result.get("alarms80")
    if alarms:
        ratio = alarms.get("ratio")
        drain = alarms.get("drain_capacity")
        lines.append(
            f"  alarms first: at {alarms['rate']:,.0f}/s (80 % of {alarms['capacity']:,.0f}/s; "
            f"offered {alarms.get('offered_rate') or 0:,.0f}/s) "
            f"press → ack p99 {alarms['p99_ms']} ms vs {alarms['p99_ms_500']} ms at 500/s = "
            f"{'-' if ratio is None else f'{ratio:.2f}'}x "
            f"(≤ {ALARMS_GOAL_RATIO:.0f}x: {_verdict(ratio, ALARMS_GOAL_RATIO)})"
        )
        drain_text = "not measured" if not drain else f"{drain:,.0f}/s (publisher out of the way)"
        lines.append(
            f"    capacity = {alarms.get('capacity_basis', 'not recorded')}; "
            f"drain capacity {drain_text}"
        )
    return ["budgets (DESIGN §8), against this run's baselines:", *lines] if lines else []


def _memory_lines(result: dict[str, Any]) -> list[str]:
    lines = []
    for part in (result.get("drain") or {}).get("memory", []):
        lines.append(f"  drain (one process): {part.get('rss_mb', '-')}/{part.get('hwm_mb', '-')}")
    for step in result["steps"]:
        memory = step.get("memory") or []
        if len(memory) > 1 or step.get("kind") in ("drain", "failover"):
            parts = [
                f"{part['process']} {part.get('rss_mb', '-')}/{part.get('hwm_mb', '-')}"
                for part in memory
            ]
            lines.append(f"  {step['label']}: " + ", ".join(parts))
    if lines:
        lines.insert(0, "memory per process (VmRSS / VmHWM peak, MB):")
    return lines


def table(result: dict[str, Any]) -> str:
    lines: list[str] = []
    base = result.get("baseline")
    if base:
        lines.append(
            f"bare aiomqtt subscriber: {base['bare_rate']:,.0f} msgs/s live from the simulator "
            f"flat out (it offered {base['offered_rate']:,.0f}/s); drains a "
            f"{result['uplinks']:,} backlog at {base['bare_drain_rate']:,.0f}/s"
        )
    if "drain" in result:
        drain = result["drain"]
        lines.append(
            f"alertnet (one process) drains the same backlog at {drain['committed_rate']:,.0f} "
            f"uplinks/s ({_ratio(drain['committed_rate'], (base or {}).get('bare_drain_rate'))} "
            "of bare) — its ingest capacity without the publisher in the way"
        )
    if result["steps"]:
        lines += _rows(result)
        lines.append(
            "latencies in ms; ack = press → 'received' downlink at the device (alert committed;"
            " for echo rows: the echo's reply); offer = press → offer.created on the nearest "
            "tablet's stream; RSS/HWM: the step's alertnet processes (echo rows: the echo), "
            "VmRSS and VmHWM summed, MB"
        )
    if not result.get("tablet_api", True):
        lines.append("press → offer: not measured, this alertnet has no tablet API yet")
    lines += _budget_lines(result)
    lines += _memory_lines(result)
    if "dc09" in result:
        lines += dc09.lines(result["dc09"])
    return "\n".join(lines)


def _legend(axes: Any) -> None:
    if axes.get_legend_handles_labels()[0]:
        axes.legend(fontsize=7)


def plot(result: dict[str, Any], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot", file=sys.stderr)
        return False
    base = result.get("baseline") or {}
    steady = _by_kind(result, "steady")
    offered = [s["offered_rate"] for s in steady]
    figure, (left, right) = plt.subplots(1, 2, figsize=(13, 5))
    left.plot(offered, [s.get("committed_rate") or 0 for s in steady], "o-", label="committed")
    top = max([*offered, base.get("bare_rate") or 0, 1])
    left.plot([0, top], [0, top], ":", color="grey", label="offered = committed")
    lines = [
        (base.get("bare_rate"), "tab:green", "--", "bare subscriber"),
        (base.get("bare_drain_rate"), "tab:olive", "--", "bare subscriber, backlog"),
        (
            (result.get("drain") or {}).get("committed_rate"),
            "tab:purple",
            "-.",
            "alertnet, backlog",
        ),
    ]
    for step, color in zip(_by_kind(result, "drain"), ("tab:brown", "tab:pink"), strict=False):
        lines.append((step["committed_rate"], color, ":", f"{step['label']}, backlog"))
    for value, color, style, name in lines:
        if value:
            left.axhline(value, color=color, ls=style, label=name)
    for step in result["steps"]:
        if step.get("kind") in ("offer", "max", "storm", "alarms80"):
            marker = {"offer": "^", "alarms80": "D"}.get(step["kind"], "s")
            left.plot(
                step["offered_rate"], step.get("committed_rate") or 0, marker, label=step["label"]
            )
    left.axhline(5000, color="tab:red", ls=":", label="budget 5,000/s")
    left.set_xlabel("offered uplinks/s")
    left.set_ylabel("committed uplinks/s")
    left.set_title("throughput")
    _legend(left)
    series = (
        (steady, "press_to_ack", "press → ack"),
        (_by_kind(result, "offer"), "press_to_ack", "press → ack (+tablets)"),
        (_by_kind(result, "offer"), "press_to_offer", "press → offer"),
        (_by_kind(result, "echo"), "press_to_ack", "echo reply"),
        (_by_kind(result, "alarms80"), "press_to_ack", "press → ack, alarms80 (500/s, 80 %)"),
    )
    for steps, key, name in series:
        for pct, style in (("p50_ms", "o-"), ("p99_ms", "s--")):
            values = [(step.get("summary", {}).get(key) or {}).get(pct) for step in steps]
            if any(value is not None for value in values):
                right.plot(
                    [step["offered_rate"] for step in steps],
                    [value if value is not None else float("nan") for value in values],
                    style,
                    label=f"{name} {pct[:3]}",
                )
    right.set_yscale("log")
    right.set_xlabel("offered heartbeats/s")
    right.set_ylabel("ms")
    right.set_title("latency (budgets: over the echo's p99, same load)")
    _legend(right)
    machine = result["machine"]
    figure.suptitle(
        f"alertnet bench {result['started_at'][:19]} — {machine['cpus']} CPUs, "
        f"load {machine['load_average_at_start'][0]}"
        f"→{machine.get('load_average_at_end', ['?'])[0]} (shared machine: noisy)"
    )
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return True

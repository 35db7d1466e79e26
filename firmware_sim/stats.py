"""What a simulation run observed: every press and its fate, uplinks sent, latencies, a table.

The recorder is the simulator's ledger. Devices note each press (an alarm, tamper or trouble
event that must be acknowledged), each transmission and each ack; tablets note offers; the
stream watcher notes alerts. ``summary()`` turns it into the figures a run reports: presses
lost (never acknowledged), alerts duplicated, press → ack and press → offer percentiles.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from alertnet.protocol import AckState, EventCode

__all__ = ["PressRecord", "Recorder", "format_table", "percentile"]

POLICE_EVENTS = frozenset(
    {EventCode.PANIC, EventCode.INTRUSION, EventCode.FIRE, EventCode.MEDICAL, EventCode.TAMPER}
)


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """Nearest-rank percentile of ``values`` (None when there are none)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def _latency_summary(values_s: Sequence[float]) -> dict[str, float | int | None]:
    def ms(value: float | None) -> float | None:
        return None if value is None else round(value * 1000, 1)

    return {
        "n": len(values_s),
        "p50_ms": ms(percentile(values_s, 0.50)),
        "p95_ms": ms(percentile(values_s, 0.95)),
        "p99_ms": ms(percentile(values_s, 0.99)),
        "max_ms": ms(max(values_s) if values_s else None),
    }


@dataclass(slots=True)
class PressRecord:
    """One event a device needs acknowledged, from the press to its ack and offer."""

    eui: str
    counter: int
    event: EventCode
    transport: str
    drill: bool
    pressed_at: float
    attempts: int = 0
    acked_at: float | None = None
    state: int = 0
    offered_at: float | None = None

    @property
    def acked(self) -> bool:
        return self.acked_at is not None


@dataclass(slots=True)
class Recorder:
    """Counters and per-press records of one run (single event loop: no locking)."""

    presses: dict[tuple[str, int], PressRecord] = field(default_factory=dict)
    presses_by_eui: dict[str, list[PressRecord]] = field(default_factory=dict)
    sent: Counter[str] = field(default_factory=Counter)
    send_failures: Counter[str] = field(default_factory=Counter)
    downlinks: Counter[str] = field(default_factory=Counter)
    offers: Counter[str] = field(default_factory=Counter)
    offer_latencies_s: list[float] = field(default_factory=list)
    alerts_opened: int = 0
    alerts_duplicated: int = 0
    alerts_unexplained: int = 0
    reboots: int = 0
    notes: list[str] = field(default_factory=list)
    #: Alerts the stream watcher saw escalated: no post was free, so their first offer
    #: measures post scarcity, not alertnet; it is counted apart.
    escalated_alerts: set[int] = field(default_factory=set)
    _offered_alerts: set[int] = field(default_factory=set)

    # -- devices ------------------------------------------------------------------------

    def pressed(self, record: PressRecord) -> None:
        self.presses[(record.eui, record.counter)] = record
        self.presses_by_eui.setdefault(record.eui, []).append(record)

    def transmitted(self, kind: str, ok: bool) -> None:
        """``kind``: heartbeat, alarm or retransmission; ``ok`` when the transport took it."""
        if ok:
            self.sent[kind] += 1
        else:
            self.send_failures[kind] += 1

    def acked(self, eui: str, counter: int, state: AckState, now: float) -> bool:
        """An ack for one of our presses; True when it is the first one that counts."""
        record = self.presses.get((eui, counter))
        if record is None:
            self.downlinks["unexpected"] += 1
            return False
        self.downlinks[state.wire_name] += 1
        record.state = max(record.state, int(state))
        if record.acked_at is None and state >= AckState.RECEIVED:
            record.acked_at = now
            return True
        return False

    # -- tablets and the stream -----------------------------------------------------------

    def offer_received(
        self, alert_id: int, eui: str, now: float, *, timed: bool = True
    ) -> float | None:
        """An offer reached a tablet. The first offer of an alert times press → offer for
        the presses it answers (re-offers after a decline or a deadline do not count, nor
        offers a tablet found over REST before its stream showed them: ``timed=False``)."""
        self.offers["received"] += 1
        if alert_id in self._offered_alerts:
            return None
        self._offered_alerts.add(alert_id)
        if alert_id in self.escalated_alerts:
            self.offers["first_after_escalation"] += 1
            return None
        if not timed:
            self.offers["first_seen_over_rest"] += 1
            for record in self.presses_by_eui.get(eui, ()):
                record.offered_at = record.offered_at or now
            return None
        waiting = [
            record
            for record in self.presses_by_eui.get(eui, ())
            if record.offered_at is None and record.event in POLICE_EVENTS
        ]
        if not waiting:
            return None
        for record in waiting:
            record.offered_at = now
        latency = now - min(record.pressed_at for record in waiting)
        self.offer_latencies_s.append(latency)
        return latency

    # -- results ------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        return sum(1 for record in self.presses.values() if record.acked_at is None)

    def press_ack_latencies_s(self, records: Iterable[PressRecord] | None = None) -> list[float]:
        chosen = self.presses.values() if records is None else records
        return [
            record.acked_at - record.pressed_at for record in chosen if record.acked_at is not None
        ]

    def summary(self) -> dict[str, Any]:
        records = list(self.presses.values())
        by_transport: dict[str, dict[str, float | int | None]] = {}
        for transport in sorted({record.transport for record in records}):
            chosen = [record for record in records if record.transport == transport]
            by_transport[transport] = {
                "presses": len(chosen),
                **_latency_summary(self.press_ack_latencies_s(chosen)),
            }
        lost = [record for record in records if record.acked_at is None]
        return {
            "presses": len(records),
            "presses_acked": len(records) - len(lost),
            "presses_lost": len(lost),
            "lost_examples": [f"{record.eui}:{record.counter}" for record in lost[:10]],
            "retransmissions": self.sent["retransmission"],
            "uplinks_sent": dict(self.sent),
            "send_failures": dict(self.send_failures),
            "downlinks": dict(self.downlinks),
            "press_to_ack": _latency_summary(self.press_ack_latencies_s()),
            "press_to_ack_by_transport": by_transport,
            "press_to_offer": _latency_summary(self.offer_latencies_s),
            "offers": dict(self.offers),
            "alerts_opened": self.alerts_opened,
            "alerts_duplicated": self.alerts_duplicated,
            "alerts_unexplained": self.alerts_unexplained,
            "reboots": self.reboots,
            "notes": list(self.notes),
        }


def format_table(rows: Sequence[tuple[str, str]], title: str = "") -> str:
    """Two aligned columns, with an optional title line."""
    width = max((len(name) for name, _ in rows), default=0)
    lines = [title] if title else []
    lines += [f"  {name:<{width}}  {value}" for name, value in rows]
    return "\n".join(lines)

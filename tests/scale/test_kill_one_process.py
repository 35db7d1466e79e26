"""Any one process of a multi-process deployment dies under load, and nothing is lost.

DESIGN §13: two ingest processes share the uplinks (an MQTT shared subscription), two API and
dispatch processes run the dispatch timers, all on one PostgreSQL and one Mosquitto. Devices
press at a steady rate (retransmitting as firmware does, DESIGN §2.2, until a signed
"received" comes back) over background heartbeats; posts never answer, so offers keep
expiring and moving on. Then one process is SIGKILLed for good: an ingest process after
hanging for a second (SIGSTOP), so presses are sure to be in flight in it; a dispatcher after
being the only one running (the other is frozen until the kill), so every offer pending when
it dies is its own timer. And then:

- every press is acked by a survivor and stored as exactly one event, counted once in one
  alert per device and category (Mosquitto does not hand a dead member's in-flight shared
  messages to another: the device's retransmissions are the guarantee);
- the offers that were pending when it died expire past their deadline and their alerts are
  offered again; every alert, opened before or after the kill, got an offer; none waits in
  ``new``; no alert ever had two offers pending at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pytest

from tests.faults.harness import Fleet, Press, assert_exactly_once, now, register_devices
from tests.scale.deployment import (
    Deployment,
    DispatchLedger,
    DispatchSnapshot,
    HeartbeatLoad,
    in_background,
    register_posts,
)
from tests.support.mosquitto import MosquittoServer
from tests.support.polling import eventually

pytestmark = [pytest.mark.postgres, pytest.mark.mosquitto, pytest.mark.slow]

PRESSING_DEVICES: Final = 8  # their alerts are opened before the kill
#: The fleet's presses are panics and intrusions: two open alerts per device.
ALERTS_PER_DEVICE: Final = 2
LATE_DEVICES: Final = 3  # their alerts are opened after the kill
HEARTBEAT_DEVICES: Final = 20
HEARTBEATS_PER_S: Final = 50.0
#: More posts than alerts, so every alert can hold an offer and get another after it expires.
POSTS: Final = ALERTS_PER_DEVICE * (PRESSING_DEVICES + LATE_DEVICES) + 6
OFFER_TIMEOUT_S: Final = 4.0
PRESS_PAUSE_S: Final = 0.3
WARM_UP_PRESSES: Final = 30
PRESSES_AFTER_KILL: Final = 40
LATE_PRESSES: Final = 15
#: The firmware's retransmission schedule: 1, 2, 4, 8 s, then every 15 s (DESIGN §2.2).
RETRY_FIRST_S: Final = 1.0
RETRY_MAX_S: Final = 15.0
#: Bounds on a hang, not performance claims.
SETTLE_BOUND_S: Final = 60.0
DRAIN_BOUND_S: Final = 90.0
FREEZE_ATTEMPTS: Final = 20
#: How long an ingest victim hangs before it dies, so that presses are in flight in it.
HUNG_BEFORE_DEATH_S: Final = 1.0
FREEZE_LOOK_S: Final = 0.2


def firmware_fleet(broker: MosquittoServer, devices: dict[str, bytes]) -> Fleet:
    return Fleet(
        broker,
        devices,
        pause_s=PRESS_PAUSE_S,
        retry_first_s=RETRY_FIRST_S,
        retry_max_s=RETRY_MAX_S,
    )


@dataclass(frozen=True, slots=True)
class Checked:
    """A snapshot and what is still wrong with it (all a failure message needs to show)."""

    snapshot: DispatchSnapshot
    problems: list[str]

    def __repr__(self) -> str:
        return f"{len(self.problems)} problems: {self.problems[:10]}"


class Scenario:
    """Waits on the running deployment, failing at once when a fleet or a survivor dies."""

    def __init__(
        self, deployment: Deployment, ledger: DispatchLedger, fleets: dict[str, Fleet]
    ) -> None:
        self.deployment = deployment
        self.ledger = ledger
        self.fleets = fleets
        self.fleet_tasks: dict[str, asyncio.Task[None]] = {}

    async def freeze_between_transactions(self, name: str) -> None:
        """SIGSTOP process ``name`` at a moment it has no transaction open, so that the rows it
        would otherwise hold locked block no other process while it is frozen."""
        process = self.deployment.processes[name]
        for _ in range(FREEZE_ATTEMPTS):
            process.pause()
            # A transaction open in two looks apart is the frozen process's.
            first = await self.ledger.open_transactions()
            await asyncio.sleep(FREEZE_LOOK_S)
            if not first & await self.ledger.open_transactions():
                return
            process.resume()
            await asyncio.sleep(FREEZE_LOOK_S)
        raise AssertionError(f"{name} always had a transaction open when frozen")

    def _check_alive(self) -> None:
        for name, task in self.fleet_tasks.items():
            if task.done() and (task.cancelled() or task.exception() is not None):
                task.result()
                raise AssertionError(f"the {name} fleet stopped pressing before it was told to")
        self.deployment.assert_survivors_alive()

    def progress(self) -> str:
        fleets = "; ".join(
            f"{name}: {len(fleet.acked)}/{len(fleet.presses)} presses acked, "
            f"{fleet.retransmissions} retransmissions"
            for name, fleet in self.fleets.items()
        )
        return f"{fleets}\n{self.deployment.logs()}"

    async def until(
        self, condition: Callable[[], bool], what: str, bound_s: float = SETTLE_BOUND_S
    ) -> None:
        def holds() -> bool:
            self._check_alive()
            return bool(condition())

        await eventually(holds, awaiting=what, timeout_s=bound_s, details=self.progress)

    async def until_dispatch(
        self,
        what: str,
        problems: Callable[[DispatchSnapshot], list[str]],
        bound_s: float = SETTLE_BOUND_S,
    ) -> DispatchSnapshot:
        """The first snapshot in which ``problems`` finds none."""

        async def check() -> Checked:
            self._check_alive()
            snapshot = await self.ledger.snapshot()
            return Checked(snapshot, problems(snapshot))

        checked = await eventually(
            check,
            lambda checked: not checked.problems,
            awaiting=what,
            timeout_s=bound_s,
            interval_s=0.25,
            details=self.progress,
        )
        return checked.snapshot

    async def drained(self) -> None:
        """Every fleet told to stop; return once each has every press acked."""
        for fleet in self.fleets.values():
            fleet.stop_pressing()
        try:
            async with asyncio.timeout(DRAIN_BOUND_S):
                await asyncio.gather(*(asyncio.shield(t) for t in self.fleet_tasks.values()))
        except TimeoutError:
            unacked = [
                (press.eui, press.counter, press.transmissions)
                for fleet in self.fleets.values()
                for press in fleet.presses
                if press.acked_at is None
            ]
            raise AssertionError(
                f"{len(unacked)} presses (eui, counter, transmissions) still unacked "
                f"{DRAIN_BOUND_S:g} s after pressing stopped: {unacked[:10]}\n{self.progress()}"
            ) from None


@pytest.mark.parametrize(
    "victim",
    [pytest.param("ingest-1", id="ingest"), pytest.param("api-dispatch-1", id="api-dispatch")],
)
async def test_kill_one_process_under_load_loses_nothing(
    victim: str, scale_db: str, mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    early_devices = await register_devices(scale_db, PRESSING_DEVICES)
    late_devices = await register_devices(scale_db, LATE_DEVICES)
    heartbeat_devices = await register_devices(scale_db, HEARTBEAT_DEVICES)
    await register_posts(scale_db, POSTS)
    await mosquitto.allow_registry(scale_db)
    early, late = set(early_devices), set(late_devices)

    deployment = Deployment(
        scale_db,
        mosquitto,
        tmp_path,
        offer_timeout_s=OFFER_TIMEOUT_S,
    )
    ledger = DispatchLedger(scale_db)
    heartbeats = HeartbeatLoad(mosquitto, heartbeat_devices, HEARTBEATS_PER_S)
    fleets = {
        "early": firmware_fleet(mosquitto, early_devices),
        "late": firmware_fleet(mosquitto, late_devices),
    }
    scenario = Scenario(deployment, ledger, fleets)
    async with AsyncExitStack() as stack:
        stack.push_async_callback(ledger.close)
        await stack.enter_async_context(deployment.running())
        # A dispatcher victim is the only dispatcher until it dies: every offer pending then
        # is its own timer, which a survivor must take over.
        other_dispatchers = (
            [name for name in deployment.with_role("dispatch") if name != victim]
            if victim in deployment.with_role("dispatch")
            else []
        )
        for name in other_dispatchers:
            await scenario.freeze_between_transactions(name)
        await stack.enter_async_context(in_background(heartbeats.run(), "heartbeats"))
        scenario.fleet_tasks["early"] = await stack.enter_async_context(
            in_background(fleets["early"].run(), "early fleet")
        )
        await scenario.until(
            lambda: len(fleets["early"].acked) >= WARM_UP_PRESSES, "warm-up presses acked"
        )
        before = await scenario.until_dispatch(
            "every alert of the early devices to get an offer",
            lambda s: s.offer_gaps(early, ALERTS_PER_DEVICE),
        )
        if victim in deployment.with_role("ingest"):
            # Hung for a moment, then dead: the broker goes on handing it its share of the
            # uplinks, which it never acknowledges.
            deployment.processes[victim].pause()
            await asyncio.sleep(HUNG_BEFORE_DEATH_S)
        killed_at = now()
        await asyncio.to_thread(deployment.kill, victim)
        for name in other_dispatchers:
            deployment.processes[name].resume()
        # The timers the kill leaves behind (some may be overdue already: a busy dispatcher
        # expires an offer a little after its deadline).
        stranded = before.pending()
        assert stranded, f"no offer was pending when {victim} died: {before.summary()}"
        scenario.fleet_tasks["late"] = await stack.enter_async_context(
            in_background(fleets["late"].run(), "late fleet")
        )
        await scenario.until(
            lambda: (
                fleets["early"].pressed_after(killed_at) >= PRESSES_AFTER_KILL
                and len(fleets["late"].acked) >= LATE_PRESSES
            ),
            "presses acked after the kill",
        )
        await scenario.until_dispatch(
            "the offers pending at the kill to expire and their alerts to be offered again, "
            "and every alert opened after the kill to get an offer",
            lambda s: s.takeover_gaps(stranded) + s.offer_gaps(late, ALERTS_PER_DEVICE),
        )
        await scenario.drained()
        after = await scenario.until_dispatch(
            "no alert left waiting in new", DispatchSnapshot.waiting_new
        )
        deployment.assert_survivors_alive()

    presses: list[Press] = [press for fleet in fleets.values() for press in fleet.presses]
    bad_acks = {name: fleet.bad_acks for name, fleet in fleets.items() if fleet.bad_acks}
    assert not bad_acks, f"acks that were malformed or badly signed: {bad_acks}"
    stored = await assert_exactly_once(scale_db, presses)
    assert not after.unoffered(early | late), "an alert never got an offer"
    assert not after.overlapping(), f"two offers pending at once: {after.overlapping()[:5]}"
    assert heartbeats.sent > 0
    assert await heartbeats.unseen(scale_db) == [], "heartbeats were not read"

    caught = [p for p in presses if p.pressed_at < killed_at and (p.acked_at or 0) >= killed_at]
    if victim in deployment.with_role("ingest"):
        assert caught, "no press was in flight when the ingest process died"
    offers = sum(len(offers) for offers in after.offers.values())
    retried_before = sum(1 for p in presses if p.transmissions > 1 and p.pressed_at < killed_at)
    retried_after = sum(1 for p in presses if p.transmissions > 1 and p.pressed_at >= killed_at)
    slowest_s = max(p.acked_at - p.pressed_at for p in presses if p.acked_at is not None)
    print(
        f"\nKILL {victim} ({' '.join(deployment.specs[victim].roles)}): "
        f"{len(caught)} presses in flight, {len(presses)} presses "
        f"({retried_before} retransmitted before the kill, {retried_after} after; slowest ack "
        f"{slowest_s:.1f} s) → "
        f"{stored.events} events, {stored.alerts} alerts, 0 lost, 0 duplicated; "
        f"{len(stranded)} offers pending at the kill, all expired and re-offered; "
        f"{offers} offers in all; {heartbeats.sent} heartbeats"
    )

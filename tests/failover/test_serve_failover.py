"""Two ``alertnet serve`` in one share group; one is SIGKILLed while devices press (DESIGN §13).

Both processes ingest from ``$share/alertnet/…`` on one PostgreSQL and a real Mosquitto. The
devices press and retransmit each press until its signed "received" comes back (1 s, then
doubling: DESIGN §2.2). One member is frozen for half a second, so presses are routed to it
and stuck, then SIGKILLed. Every press, those the dead process held included, is acked by the
survivor and stored exactly once.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.faults.harness import (
    RECOVERY_BOUND_S,
    AlertnetProcess,
    Fleet,
    assert_exactly_once,
    metric_total,
    now,
    register_devices,
)
from tests.support import services
from tests.support.database import migrate
from tests.support.mosquitto import MosquittoServer
from tests.support.polling import eventually
from tests.support.postgres import temporary_database

pytestmark = [pytest.mark.postgres, pytest.mark.mosquitto, pytest.mark.slow]

DEVICES = 8
WARM_UP_PRESSES = 30
PRESSES_AFTER = 30
#: Long enough for several presses to be routed to the frozen member (one every ~0.15 s per
#: device, half of them to it), shorter than a device's first retry.
FROZEN_S = 0.5


@pytest_asyncio.fixture
async def failover_db() -> AsyncIterator[str]:
    services.require_postgres()
    async with temporary_database(prefix="alertnet_failover") as url:
        await migrate(url)
        yield url


async def _committed_uplinks(server: AlertnetProcess) -> float:
    return metric_total(await server.metrics(), "alertnet_uplinks_total", "mqtt")


async def test_the_survivor_acks_every_press_after_a_member_is_killed(
    failover_db: str, mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    devices = await register_devices(failover_db, DEVICES)
    await mosquitto.allow_registry(failover_db)
    victim, survivor = (
        AlertnetProcess(
            failover_db,
            mosquitto.url,
            tmp_path / f"alertnet-{number}.log",
            env={
                "ALERTNET_MQTT_SHARE_GROUP": "alertnet",
                "ALERTNET_MQTT_PROCESS": str(number),
            },
        )
        for number in (1, 2)
    )
    await asyncio.gather(victim.start(), survivor.start())
    fleet = Fleet(mosquitto, devices)
    fleet_task = asyncio.create_task(fleet.run())
    try:
        await eventually(
            lambda: len(fleet.acked) >= WARM_UP_PRESSES,
            awaiting="warm-up presses acked",
            timeout_s=RECOVERY_BOUND_S,
        )
        # Both members take their share before one dies.
        assert await _committed_uplinks(victim) > 0, victim.log()
        assert await _committed_uplinks(survivor) > 0, survivor.log()
        # Frozen first, so presses are sure to be stuck with it when it dies.
        victim.pause()
        await asyncio.sleep(FROZEN_S)
        victim.send(signal.SIGKILL)
        assert victim.process is not None
        await asyncio.to_thread(victim.process.wait, 10)
        killed_at = now()
        caught = [press for press in fleet.presses if press.acked_at is None]
        await eventually(
            lambda: fleet.pressed_after(killed_at) >= PRESSES_AFTER,
            awaiting="new presses acked by the survivor",
            timeout_s=RECOVERY_BOUND_S,
            details=survivor.log,
        )
        fleet.stop_pressing()
        await asyncio.wait_for(asyncio.shield(fleet_task), RECOVERY_BOUND_S)
    finally:
        fleet_task.cancel()
        await asyncio.gather(fleet_task, return_exceptions=True)
        await asyncio.to_thread(victim.stop)
        await asyncio.to_thread(survivor.stop)

    assert caught, "no press was pending when the member died"
    assert all(press.acked_at is not None for press in caught)
    assert fleet.bad_acks == 0
    stored = await assert_exactly_once(failover_db, fleet.presses)
    last_caught_s = max((press.acked_at or killed_at) - killed_at for press in caught)
    print(
        f"\nshared-member SIGKILL: {len(caught)} presses pending at the kill, the last acked "
        f"{last_caught_s:.2f} s after it; {stored.events} presses stored exactly once"
    )

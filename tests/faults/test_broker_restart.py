"""The broker stops for a few seconds while devices press, then starts again on its port.

alertnet's MQTT ingest loses its connection and comes back to its persisted session; the
devices reconnect and retransmit what was not acknowledged. ``/readyz`` must answer 503 naming
the broker while it is away, and 200 once alertnet is connected again.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.faults.harness import (
    AlertnetProcess,
    assert_exactly_once,
    now,
    pressing,
    register_devices,
    report,
)
from tests.support.mosquitto import MosquittoServer

pytestmark = [pytest.mark.postgres, pytest.mark.mosquitto, pytest.mark.slow]

DEVICES = 10
WARM_UP_PRESSES = 40
PRESSES_AFTER = 40
OUTAGE_S = 4.0
#: How long alertnet may take to notice that the broker went away before /readyz must say so.
DETECT_S = 1.0


async def test_broker_restart_during_presses(
    fault_db: str, mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    devices = await register_devices(fault_db, DEVICES)
    await mosquitto.allow_registry(fault_db)
    server = AlertnetProcess(fault_db, mosquitto.url, tmp_path / "alertnet.log")
    async with pressing(server, mosquitto, devices, warm_up_presses=WARM_UP_PRESSES) as run:
        down_at = now()
        await asyncio.to_thread(mosquitto.stop)
        stopped_at = now()
        await asyncio.sleep(OUTAGE_S)
        starting_at = now()
        await asyncio.to_thread(mosquitto.restart)  # the same port and persistence file
        back_at = now()
        ready_at = await run.probe.first(200, after=back_at)
        await run.presses_after(back_at, PRESSES_AFTER, "new presses acked after the restart")

    run.probe.assert_down_between(stopped_at + DETECT_S, starting_at, "broker")
    run.probe.assert_ready_between(ready_at, run.drained_at)
    stored = await assert_exactly_once(fault_db, run.fleet.presses)
    print(
        "\n"
        + report(
            run, stored, "broker restart", fault_at=down_at, back_at=back_at, ready_at=ready_at
        )
    )

"""PostgreSQL stops for a few seconds while devices press, then starts again.

It is a cluster of the test's own (``tests.support.pgcluster``): the shared test server is
never taken away. While the database is down nothing can be committed, so nothing may be
acknowledged; the ingest retries its batch, the broker keeps the unacknowledged messages, the
devices retransmit, and once PostgreSQL is back every press is committed exactly once.
``/readyz`` must answer 503 naming the database while it is away.
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
from tests.support.pgcluster import PostgresCluster

pytestmark = [pytest.mark.mosquitto, pytest.mark.slow]

DEVICES = 10
WARM_UP_PRESSES = 40
PRESSES_AFTER = 40
OUTAGE_S = 4.0
#: How long alertnet may take to notice that the database went away before /readyz must say so.
DETECT_S = 1.0


async def test_postgres_restart_during_presses(
    pg_cluster: PostgresCluster, cluster_db: str, mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    devices = await register_devices(cluster_db, DEVICES)
    await mosquitto.allow_registry(cluster_db)
    server = AlertnetProcess(cluster_db, mosquitto.url, tmp_path / "alertnet.log")
    async with pressing(server, mosquitto, devices, warm_up_presses=WARM_UP_PRESSES) as run:
        down_at = now()
        await asyncio.to_thread(pg_cluster.stop, "fast")  # ends every session, as a restart does
        stopped_at = now()
        await asyncio.sleep(OUTAGE_S)
        starting_at = now()
        await asyncio.to_thread(pg_cluster.start)
        back_at = now()
        ready_at = await run.probe.first(200, after=back_at)
        await run.presses_after(back_at, PRESSES_AFTER, "new presses acked after the restart")

    run.probe.assert_down_between(stopped_at + DETECT_S, starting_at, "database")
    run.probe.assert_ready_between(ready_at, run.drained_at)
    stored = await assert_exactly_once(cluster_db, run.fleet.presses)
    print(
        "\n"
        + report(
            run, stored, "PostgreSQL restart", fault_at=down_at, back_at=back_at, ready_at=ready_at
        )
    )

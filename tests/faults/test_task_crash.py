"""A runtime task crashes while devices press: the ingest pipeline, with a batch in hand.

No known input crashes a task any more, so the crash is set off from outside through
``tests.faults.serve_with_fault`` (the real ``alertnet serve``; SIGUSR1 makes the pipeline's
next batches raise out of its loop, as the over-long gateway header once did). The supervisor
(``alertnet.supervisor``) must restart the task, count each restart in
``alertnet_task_restarts_total``, log it, and have ``/readyz`` answer 503 naming the task while
it is down; the presses the dead task held must still be committed, exactly once.

First, the input that used to kill the pipeline is sent once more: it must be refused (4xx)
and kill nothing.
"""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest

from alertnet.protocol import EventCode, Uplink
from tests.faults.harness import (
    AlertnetProcess,
    assert_exactly_once,
    metric_total,
    now,
    pressing,
    register_devices,
    report,
)
from tests.faults.probe import reports_down
from tests.faults.serve_with_fault import CRASHES_ENV
from tests.support.factories import random_eui
from tests.support.mosquitto import MosquittoServer

pytestmark = [pytest.mark.postgres, pytest.mark.mosquitto, pytest.mark.slow]

TASK = "ingest-pipeline"
#: Batches in a row that crash: the restart backoff grows (0.1, 0.2, 0.4 s), and the task is
#: down long enough for a probe every 20 ms to see it.
CRASHES = 3
DEVICES = 10
WARM_UP_PRESSES = 40
PRESSES_AFTER = 40


async def test_crashed_ingest_pipeline_is_restarted_and_loses_nothing(
    fault_db: str, mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    devices = await register_devices(fault_db, DEVICES)
    await mosquitto.allow_registry(fault_db)
    server = AlertnetProcess(
        fault_db,
        mosquitto.url,
        tmp_path / "alertnet.log",
        module="tests.faults.serve_with_fault",
        env={CRASHES_ENV: str(CRASHES)},
    )
    async with pressing(
        server, mosquitto, devices, warm_up_presses=WARM_UP_PRESSES, probe_interval_s=0.02
    ) as run:
        old_killer = Uplink.build(bytes(16), random_eui(), 1, EventCode.PANIC).to_bytes()
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10.0) as client:
            refused = await client.post(
                "/api/v1/uplinks", content=old_killer, headers={"x-alertnet-gateway": "g" * 200}
            )
        assert 400 <= refused.status_code < 500, refused.text

        crashed_at = now()
        server.send(signal.SIGUSR1)
        down = await run.probe.first_answer(503, after=crashed_at, bound_s=10.0)
        ready_at = await run.probe.first(200, after=down.sent_at)
        await run.presses_after(crashed_at, PRESSES_AFTER, "new presses acked after the crash")
        metrics = await server.metrics()

    assert reports_down(down.body, TASK), down
    while_down = [a for a in run.probe.between(down.sent_at, ready_at) if a.status is not None]
    assert all(a.status == 503 and reports_down(a.body, TASK) for a in while_down), while_down
    run.probe.assert_ready_between(ready_at, run.drained_at)
    assert metric_total(metrics, "alertnet_task_restarts_total", TASK) == CRASHES
    assert "InjectedCrash" in server.log(tail=200_000), "the crash was not logged"
    stored = await assert_exactly_once(fault_db, run.fleet.presses)
    print(
        "\n"
        + report(
            run,
            stored,
            f"{TASK} crashed x{CRASHES}",
            fault_at=crashed_at,
            back_at=crashed_at,
            ready_at=ready_at,
        )
    )

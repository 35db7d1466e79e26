"""The alertnet process is frozen (SIGSTOP) for a few seconds while devices press, then thawed.

A frozen process answers nothing: ``/readyz`` cannot say 200 and does not answer at all, as an
orchestrator's probe would see. The broker keeps what the devices send; the devices retransmit
what was not acknowledged; once thawed (SIGCONT) alertnet commits everything exactly once.
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
#: Long enough that a probe lands in the window checked below whatever its phase: the window is
#: FROZEN_S minus the probe's timeout (2 s), and one probe cycle while frozen takes the timeout
#: plus the interval (2.05 s); 4 s left a window of 2 s, which a probe could straddle.
FROZEN_S = 5.0


async def test_sigstop_sigcont_during_presses(
    fault_db: str, mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    devices = await register_devices(fault_db, DEVICES)
    await mosquitto.allow_registry(fault_db)
    server = AlertnetProcess(fault_db, mosquitto.url, tmp_path / "alertnet.log")
    async with pressing(server, mosquitto, devices, warm_up_presses=WARM_UP_PRESSES) as run:
        frozen_at = now()
        server.pause()
        await asyncio.sleep(FROZEN_S)
        thawing_at = now()
        server.resume()
        back_at = now()
        ready_at = await run.probe.first(200, after=back_at)
        await run.presses_after(back_at, PRESSES_AFTER, "new presses acked after SIGCONT")

    # A request sent while frozen is answered after the thaw at the earliest: never in time.
    frozen = run.probe.between(frozen_at, thawing_at - run.probe.timeout_s)
    assert len(frozen) >= 1, run.probe.answers
    answered = [answer for answer in frozen if answer.status is not None]
    assert not answered, f"a frozen process answered /readyz: {answered}"
    run.probe.assert_ready_between(ready_at, run.drained_at)
    stored = await assert_exactly_once(fault_db, run.fleet.presses)
    print(
        "\n"
        + report(
            run, stored, "SIGSTOP/SIGCONT", fault_at=frozen_at, back_at=back_at, ready_at=ready_at
        )
    )

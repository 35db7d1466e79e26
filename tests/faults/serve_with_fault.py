"""``alertnet serve`` with one fault a test can set off from outside: SIGUSR1 crashes ingest.

No known input crashes a runtime task any more (the over-long ``X-Alertnet-Gateway`` that
killed the ingest pipeline in issue 12 is now refused with 400), yet DESIGN §14 promises that
a task that does crash is restarted, counted and reported by ``/readyz``. To show that with
presses in flight, this entry point is the real ``alertnet serve`` with a single difference:
after SIGUSR1, the pipeline's next batches raise out of its loop while the pipeline holds
them — where the gateway-header bug raised (the quarantine fallback inside the batch's
processing). ``FAULT_SUITE_CRASHES`` (default 1) batches in a row crash per signal, as a
poisonous batch would. Nothing else is changed; the code under test copes, or not.

Run as ``python -m tests.faults.serve_with_fault serve --port N`` (``ALERTNET_*`` as usual).
"""

from __future__ import annotations

import os
import signal
from types import FrameType
from typing import Any

from alertnet.cli import main
from alertnet.ingest.pipeline import Pipeline

#: The method of ``Pipeline`` that handles one collected batch: the crash happens inside it.
CRASH_SITE = "_process_with_retry"


class InjectedCrash(RuntimeError):
    """The fault the test asked for (SIGUSR1): an unexpected error out of a batch."""


CRASHES_ENV = "FAULT_SUITE_CRASHES"


class CrashSwitch:
    """Batches still to crash: set by the signal handler, spent by the pipeline's task."""

    def __init__(self, crashes_per_signal: int) -> None:
        self.crashes_per_signal = crashes_per_signal
        self.due = 0

    def arm(self, _signum: int, _frame: FrameType | None) -> None:
        self.due = self.crashes_per_signal

    def take(self) -> bool:
        if self.due <= 0:
            return False
        self.due -= 1
        return True


def install(switch: CrashSwitch) -> None:
    """Make the pipeline crash on its next batches after each SIGUSR1."""
    handle_batch = getattr(Pipeline, CRASH_SITE, None)
    if handle_batch is None:
        raise SystemExit(f"Pipeline.{CRASH_SITE} is gone: update the fault suite's crash site")

    async def crash_when_armed(self: Pipeline, batch: list[Any]) -> None:
        if switch.take():
            raise InjectedCrash(f"fault test: the pipeline crashed holding {len(batch)} uplinks")
        await handle_batch(self, batch)

    setattr(Pipeline, CRASH_SITE, crash_when_armed)
    signal.signal(signal.SIGUSR1, switch.arm)


if __name__ == "__main__":
    install(CrashSwitch(int(os.environ.get(CRASHES_ENV, "1"))))
    raise SystemExit(main())

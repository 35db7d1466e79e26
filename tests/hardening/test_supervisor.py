"""``TaskSupervisor``: every runtime task restarted with backoff, counted, logged, and reported.

Issue 12: a crashed ``ingest-pipeline`` task stayed dead while ``/readyz`` answered 200. Under
the supervisor a task that raises, returns or is cancelled by a stray ``cancel()`` runs again
after a growing wait; each restart is in ``alertnet_task_restarts_total{task=…}`` and in the
log with its traceback; ``problems()`` (what ``/readyz`` shows) names a task while it is down
or restarting too often; ``stop()`` is bounded even for a task that ignores cancellation, and
``ShutdownDeadline`` ends a process that SIGTERM alone would not.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import signal
import subprocess
import sys
import time

import pytest

from alertnet.metrics import Metrics
from alertnet.reconnect import BackoffSchedule
from alertnet.supervisor import FORCED_EXIT_STATUS, TaskState, TaskSupervisor
from tests.support.polling import eventually

FAST = BackoffSchedule(first_s=0.02, early_max_s=0.08, early_period_s=60.0, late_max_s=0.08)


def _restarts_metric(metrics: Metrics, task: str) -> float:
    value = metrics.registry.get_sample_value("alertnet_task_restarts_total", {"task": task})
    assert value is not None, f"no restart counter for {task}"
    return value


async def test_a_crashing_task_is_restarted_with_growing_waits_counted_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    metrics = Metrics()
    supervisor = TaskSupervisor(metrics, schedule=FAST)
    starts: list[float] = []
    forever = asyncio.Event()

    async def flaky() -> None:
        starts.append(time.monotonic())
        if len(starts) <= 3:
            raise RuntimeError(f"boom {len(starts)}")
        await forever.wait()

    supervisor.add("flaky", flaky)
    assert _restarts_metric(metrics, "flaky") == 0  # listed before it ever fails
    supervisor.start()
    try:
        await eventually(lambda: len(starts), lambda n: n == 4, awaiting="the fourth start")
        assert supervisor.state("flaky") is TaskState.RUNNING
        assert supervisor.restarts("flaky") == 3
        assert _restarts_metric(metrics, "flaky") == 3
        assert metrics.registry.get_sample_value("alertnet_task_up", {"task": "flaky"}) == 1
        waits = [later - earlier for earlier, later in itertools.pairwise(starts)]
        assert waits[0] >= 0.02 and waits[1] >= 0.04 and waits[2] >= 0.08
        crashes = [r for r in caplog.records if r.getMessage() == "task flaky crashed"]
        assert len(crashes) == 3
        assert all(r.levelno == logging.ERROR and r.exc_info for r in crashes)
        assert "boom 1" in caplog.text
    finally:
        assert await supervisor.stop(1.0) == []
    assert supervisor.state("flaky") is TaskState.STOPPED


async def test_a_task_that_returns_or_is_cancelled_by_a_stray_cancel_runs_again() -> None:
    supervisor = TaskSupervisor(Metrics(), schedule=FAST)
    runs = {"returns": 0, "stray-cancel": 0}
    forever = asyncio.Event()

    async def returns() -> None:
        runs["returns"] += 1
        if runs["returns"] > 1:
            await forever.wait()

    async def stray_cancel() -> None:
        runs["stray-cancel"] += 1
        if runs["stray-cancel"] > 1:
            await forever.wait()
        raise asyncio.CancelledError  # as a bug in a library might

    supervisor.add("returns", returns)
    supervisor.add("stray-cancel", stray_cancel)
    supervisor.start()
    try:
        await eventually(lambda: dict(runs), lambda r: min(r.values()) == 2, awaiting="reruns")
        assert supervisor.restarts("returns") == supervisor.restarts("stray-cancel") == 1
    finally:
        await supervisor.stop(1.0)


async def test_problems_name_a_task_while_it_is_down_and_forget_it_once_it_runs() -> None:
    slow_restart = BackoffSchedule(first_s=0.5, early_max_s=0.5, late_max_s=0.5)
    supervisor = TaskSupervisor(Metrics(), schedule=slow_restart)
    runs = 0
    forever = asyncio.Event()

    async def crashes_once() -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            raise ValueError("value too long for type character varying(120)")
        await forever.wait()

    supervisor.add("ingest-pipeline", crashes_once)
    supervisor.add("dispatcher", forever.wait)
    supervisor.start()
    try:
        problems = await eventually(supervisor.problems, awaiting="the crash to show")
        assert list(problems) == ["ingest-pipeline"]
        assert problems["ingest-pipeline"].startswith("down, restarting (1 restart(s) in 60 s)")
        assert problems["ingest-pipeline"].endswith(
            "after: ValueError: value too long for type character varying(120)"
        )
        assert supervisor.states()["dispatcher"] == "ok"
        await eventually(supervisor.problems, lambda p: p == {}, awaiting="the restart")
        assert supervisor.states() == {"ingest-pipeline": "ok", "dispatcher": "ok"}
    finally:
        await supervisor.stop(1.0)


async def test_more_than_five_restarts_in_a_minute_is_reported_until_the_minute_has_passed() -> (
    None
):
    now = [1000.0]
    supervisor = TaskSupervisor(
        Metrics(),
        schedule=BackoffSchedule(first_s=0.001, early_max_s=0.001, late_max_s=0.001),
        clock=lambda: now[0],
    )
    runs = 0
    forever = asyncio.Event()

    async def flapping() -> None:
        nonlocal runs
        runs += 1
        if runs <= 6:
            raise OSError("port vanished")
        await forever.wait()

    supervisor.add("serial-bridge:/dev/ttyUSB0", flapping)
    supervisor.start()
    try:
        await eventually(lambda: runs, lambda n: n == 7, awaiting="the seventh run")
        problem = supervisor.problems()["serial-bridge:/dev/ttyUSB0"]
        assert problem.startswith("restarted 6 times in 60 s, last after: OSError: port vanished")
        now[0] += 61
        assert supervisor.problems() == {}
    finally:
        await supervisor.stop(1.0)


async def test_stop_is_bounded_even_when_a_task_ignores_cancellation() -> None:
    supervisor = TaskSupervisor(Metrics(), schedule=FAST)
    released = asyncio.Event()
    started = asyncio.Event()

    async def stubborn() -> None:
        started.set()
        while not released.is_set():
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                continue  # the bug under test: swallowing cancellation

    supervisor.add("stubborn", stubborn)
    supervisor.add("polite", asyncio.Event().wait)
    supervisor.start()
    await started.wait()
    began = time.monotonic()
    assert await supervisor.stop(0.3) == ["stubborn"]
    assert time.monotonic() - began < 1.0
    assert supervisor.state("polite") is TaskState.STOPPED
    released.set()  # a second cancel now ends it, and it is not restarted
    assert await supervisor.stop(1.0) == []
    assert supervisor.state("stubborn") is TaskState.STOPPED


def test_a_name_is_supervised_once() -> None:
    supervisor = TaskSupervisor(Metrics())
    supervisor.add("hub", asyncio.Event().wait)
    with pytest.raises(ValueError, match="already supervised"):
        supervisor.add("hub", asyncio.Event().wait)


HUNG_PROCESS = """
import asyncio, signal, sys
from alertnet.supervisor import ShutdownDeadline

async def main():
    signal.signal(signal.SIGTERM, lambda signum, frame: None)  # a server that never gets done
    ShutdownDeadline(1.0).install()
    print("ready", flush=True)
    while True:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            continue  # and a task that will not be cancelled

asyncio.run(main())
"""


def test_the_shutdown_deadline_ends_a_process_that_will_not_stop() -> None:
    with subprocess.Popen(
        [sys.executable, "-c", HUNG_PROCESS], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as process:
        try:
            assert process.stdout is not None and process.stdout.readline() == b"ready\n"
            began = time.monotonic()
            process.send_signal(signal.SIGTERM)
            _out, err = process.communicate(timeout=10)
            elapsed_s = time.monotonic() - began
        finally:
            if process.poll() is None:
                process.kill()
    assert process.returncode == FORCED_EXIT_STATUS
    assert 0.9 <= elapsed_s < 3.0
    assert b"did not finish within 1.0 s; exiting now" in err

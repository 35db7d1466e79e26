"""Keeps every long-running task of a process alive, and says honestly when one is not.

DESIGN §14: nothing a client sends may stop ingest. Each runtime task (the ingest pipeline,
MQTT ingest, serial bridges, the dispatcher, device supervision, the realtime hub, retention…)
runs under ``TaskSupervisor``: a task that raises, or that returns although it should run
forever, is logged with its traceback, counted in ``alertnet_task_restarts_total{task=…}`` and
started again after a backoff (0.1 s doubling to 2 s in the first minute of a crash streak,
then up to 10 s). ``problems()`` names each task that is down (waiting to be restarted) or
restarting too often (more than ``flapping_restarts`` restarts in ``flapping_window_s``), which
``/readyz`` turns into a 503.

Stopping is bounded: ``stop(timeout_s)`` cancels every task and waits at most ``timeout_s``; a
task that does not finish is named in the log and left behind. ``ShutdownDeadline`` is the
process's last resort: armed by the first SIGTERM or SIGINT, it ends the process with
``os._exit`` if the orderly shutdown has not finished in time, whatever its tasks are doing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from types import FrameType
from typing import Any, Final

from alertnet.metrics import Metrics
from alertnet.reconnect import Backoff, BackoffSchedule

__all__ = [
    "RESTART_SCHEDULE",
    "ShutdownDeadline",
    "TaskState",
    "TaskSupervisor",
]

log = logging.getLogger(__name__)

Clock = Callable[[], float]
TaskFactory = Callable[[], Awaitable[None]]

#: The wait before each restart of a crashed task: 0.1 s doubling to 2 s during the first
#: minute of a crash streak, then up to 10 s.
RESTART_SCHEDULE: Final = BackoffSchedule(
    first_s=0.1, early_max_s=2.0, early_period_s=60.0, late_max_s=10.0
)
#: A task that ran this long before it crashed starts a new crash streak (first wait again).
STABLE_AFTER_S: Final = 30.0
#: The exit status of a process that ``ShutdownDeadline`` had to end.
FORCED_EXIT_STATUS: Final = 70


class TaskState(StrEnum):
    PENDING = "pending"  # added, not started yet
    RUNNING = "running"
    RESTARTING = "restarting"  # crashed, waiting out its backoff
    STOPPED = "stopped"


@dataclass(slots=True)
class _Supervised:
    name: str
    factory: TaskFactory
    backoff: Backoff
    state: TaskState = TaskState.PENDING
    restarts: int = 0
    recent_restarts: deque[float] = field(default_factory=deque)
    last_error: str = ""
    task: asyncio.Task[None] | None = None


class TaskSupervisor:
    """Named long-running tasks, each restarted with backoff whenever it ends."""

    def __init__(
        self,
        metrics: Metrics,
        *,
        schedule: BackoffSchedule = RESTART_SCHEDULE,
        flapping_restarts: int = 5,
        flapping_window_s: float = 60.0,
        stable_after_s: float = STABLE_AFTER_S,
        clock: Clock = time.monotonic,
    ) -> None:
        self._metrics = metrics
        self._schedule = schedule
        self._flapping_restarts = flapping_restarts
        self._flapping_window_s = flapping_window_s
        self._stable_after_s = stable_after_s
        self._clock = clock
        self._tasks: dict[str, _Supervised] = {}
        self._started = False

    def add(self, name: str, factory: TaskFactory) -> None:
        """Supervise ``factory()`` under ``name``; it starts now if the supervisor runs."""
        if name in self._tasks:
            raise ValueError(f"a task named {name!r} is already supervised")
        supervised = _Supervised(name, factory, Backoff(self._schedule, clock=self._clock))
        self._tasks[name] = supervised
        self._metrics.task_restarts.labels(name).inc(0)  # every task shows up in /metrics
        self._metrics.task_up.labels(name).set(0)
        if self._started:
            self._launch(supervised)

    def start(self) -> None:
        """Start every task added so far (and, from now on, each one as it is added)."""
        self._started = True
        for supervised in self._tasks.values():
            if supervised.task is None:
                self._launch(supervised)

    def state(self, name: str) -> TaskState:
        return self._tasks[name].state

    def restarts(self, name: str) -> int:
        return self._tasks[name].restarts

    def problems(self) -> dict[str, str]:
        """``{task: what is wrong}`` for each task that is down or restarting too often."""
        found: dict[str, str] = {}
        for supervised in self._tasks.values():
            recent = self._recent_restarts(supervised)
            if supervised.state is TaskState.RESTARTING:
                found[supervised.name] = (
                    f"down, restarting ({recent} restart(s) in {self._flapping_window_s:.0f} s) "
                    f"after: {supervised.last_error}"
                )
            elif supervised.state is TaskState.STOPPED and self._started:
                found[supervised.name] = "stopped"
            elif recent > self._flapping_restarts:
                found[supervised.name] = (
                    f"restarted {recent} times in {self._flapping_window_s:.0f} s, last after: "
                    f"{supervised.last_error}"
                )
        return found

    def states(self) -> dict[str, str]:
        """Every task's state for ``/readyz``: ``ok`` or what is wrong with it."""
        problems = self.problems()
        return {name: problems.get(name, "ok") for name in self._tasks}

    async def stop(self, timeout_s: float) -> list[str]:
        """Cancel every task and wait at most ``timeout_s``; returns those still not finished."""
        self._started = False
        running = {s.task: s for s in self._tasks.values() if s.task is not None}
        for task in running:
            task.cancel()
        if not running:
            return []
        _done, pending = await asyncio.wait(running, timeout=timeout_s)
        stuck = sorted(running[task].name for task in pending)
        if stuck:
            log.error(
                "task(s) %s did not stop within %.1f s of being cancelled; left behind",
                ", ".join(stuck),
                timeout_s,
            )
            for task in pending:
                log.error("%s is stuck at:\n%s", running[task].name, _await_chain(task))
        return stuck

    # -- one task -------------------------------------------------------------------------------

    def _launch(self, supervised: _Supervised) -> None:
        supervised.task = asyncio.create_task(self._keep_running(supervised), name=supervised.name)

    async def _keep_running(self, supervised: _Supervised) -> None:
        try:
            while True:
                supervised.state = TaskState.RUNNING
                self._metrics.task_up.labels(supervised.name).set(1)
                started_at = self._clock()
                try:
                    await supervised.factory()
                except asyncio.CancelledError as exc:
                    if _being_cancelled():
                        raise
                    # A cancellation nobody asked for (a stray cancel inside the task) is a
                    # crash like any other, not a reason to stay down.
                    self._crashed(supervised, exc)
                except Exception as exc:
                    self._crashed(supervised, exc)
                else:
                    if not self._started or _being_cancelled():
                        return  # it swallowed the cancel of a stop, then ended: stopped
                    supervised.last_error = "returned, but it must run until stopped"
                    log.error("task %s ended by itself", supervised.name)
                if not self._started or _being_cancelled():
                    return  # it failed while being stopped: not restarted
                if self._clock() - started_at >= self._stable_after_s:
                    supervised.backoff.reset()
                delay_s = supervised.backoff.next_delay_s()
                self._note_restart(supervised)
                log.warning("restarting task %s in %.1f s", supervised.name, delay_s)
                await asyncio.sleep(delay_s)
        finally:
            supervised.state = TaskState.STOPPED
            supervised.task = None
            self._metrics.task_up.labels(supervised.name).set(0)

    def _crashed(self, supervised: _Supervised, exc: BaseException) -> None:
        supervised.last_error = f"{type(exc).__name__}: {exc}"[:300]
        log.error("task %s crashed", supervised.name, exc_info=exc)

    def _note_restart(self, supervised: _Supervised) -> None:
        supervised.state = TaskState.RESTARTING
        supervised.restarts += 1
        supervised.recent_restarts.append(self._clock())
        self._metrics.task_restarts.labels(supervised.name).inc()
        self._metrics.task_up.labels(supervised.name).set(0)

    def _recent_restarts(self, supervised: _Supervised) -> int:
        horizon = self._clock() - self._flapping_window_s
        while supervised.recent_restarts and supervised.recent_restarts[0] < horizon:
            supervised.recent_restarts.popleft()
        return len(supervised.recent_restarts)


def _being_cancelled() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


class ShutdownDeadline:
    """Ends the process ``deadline_s`` after the first SIGTERM/SIGINT if it is still running.

    ``install()`` (in the main thread, after the server installed its own handlers) wraps the
    current handlers: the first signal arms a daemon timer, then the server's handler runs as
    before and the orderly shutdown begins. If that shutdown is stuck — a task that ignores
    cancellation, a blocking call on the event loop — the timer logs it and calls ``os._exit``.
    ``uninstall()`` puts the server's handlers back; an armed timer stays armed, since the
    process can still hang after the app has stopped (``asyncio.run`` waits for every task,
    including one that was left behind).
    """

    SIGNALS: Final = (signal.SIGTERM, signal.SIGINT)

    def __init__(self, deadline_s: float) -> None:
        self.deadline_s = deadline_s
        self._previous: dict[signal.Signals, signal.Handlers | Callable[..., object] | int] = {}
        self._timer: threading.Timer | None = None

    def install(self) -> bool:
        """Wrap the signal handlers; False (nothing done) outside the main thread."""
        if threading.current_thread() is not threading.main_thread():
            return False
        for signum in self.SIGNALS:
            previous = signal.getsignal(signum)
            self._previous[signum] = previous if previous is not None else signal.SIG_DFL
            signal.signal(signum, self._on_signal)
        return True

    def uninstall(self) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._timer is None:
            self._timer = threading.Timer(self.deadline_s, self._force_exit, args=(signum,))
            self._timer.daemon = True
            self._timer.start()
        previous = self._previous.get(signal.Signals(signum), signal.SIG_DFL)
        if callable(previous):
            previous(signum, frame)
        elif previous == signal.SIG_DFL:
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)

    def _force_exit(self, signum: int) -> None:
        log.critical(
            "shutdown after %s did not finish within %.1f s; exiting now",
            signal.Signals(signum).name,
            self.deadline_s,
        )
        for handler in logging.getLogger().handlers:
            handler.flush()
        sys.stderr.flush()
        os._exit(FORCED_EXIT_STATUS)


def _await_chain(task: asyncio.Task[Any]) -> str:
    """Where a suspended task waits: each coroutine of its await chain, outermost first."""
    lines: list[str] = []
    awaited: Any = task.get_coro()
    while awaited is not None and len(lines) < 40:
        frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None)
        if frame is not None:
            lines.append(f"  {frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}")
        awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "gi_yieldfrom", None)
    return "\n".join(lines) or "  (no frames)"

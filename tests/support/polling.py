"""Waiting in tests for something that happens in another task, process or service.

``eventually`` is the one polling loop of the test suite: it asks ``probe`` (a plain function
or a coroutine function) again and again until ``accept`` holds for the answer, and fails with
what it was waiting for and the last answer it got. A check that something did NOT happen
should wait for a later positive signal (a later row arrived, a counter moved) with it,
rather than sleep and look.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar, overload

T = TypeVar("T")

DEFAULT_TIMEOUT_S: Final = 15.0
DEFAULT_INTERVAL_S: Final = 0.05

Probe = Callable[[], Awaitable[T]] | Callable[[], T]
Details = Callable[[], Awaitable[str]] | Callable[[], str]


@overload
async def eventually(
    probe: Callable[[], Awaitable[T]],
    accept: Callable[[T], object] = bool,
    *,
    awaiting: str,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    interval_s: float = DEFAULT_INTERVAL_S,
    details: Details | None = None,
) -> T: ...


@overload
async def eventually(
    probe: Callable[[], T],
    accept: Callable[[T], object] = bool,
    *,
    awaiting: str,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    interval_s: float = DEFAULT_INTERVAL_S,
    details: Details | None = None,
) -> T: ...


async def eventually(
    probe: Probe[T],
    accept: Callable[[T], object] = bool,
    *,
    awaiting: str,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    interval_s: float = DEFAULT_INTERVAL_S,
    details: Details | None = None,
) -> T:
    """The first answer of ``probe`` that ``accept`` (truthiness by default) takes.

    ``awaiting`` says what the test waits for ("P-1's tablet to get an offer"); it opens the
    failure message, followed by the last answer and, if given, ``details()`` (for what is
    known only then, e.g. the tail of a server's log). A probe still running at the deadline
    is cancelled; an exception raised by ``probe`` or ``accept`` ends the wait at once.
    """
    answers = 0
    last: object = None
    timeout = asyncio.timeout(timeout_s)
    try:
        async with timeout:
            while True:
                value: T = await _answer_of(probe)
                answers, last = answers + 1, value
                if accept(value):
                    return value
                await asyncio.sleep(interval_s)
    except TimeoutError:
        if not timeout.expired():
            raise  # the probe's own timeout, not ours
    message = f"gave up after {timeout_s:g} s waiting for {awaiting}"
    message += f"; last answer: {last!r}" if answers else "; the probe never answered"
    if details is not None:
        message += "\n" + await _answer_of(details)
    raise AssertionError(message)


async def _answer_of(function: Callable[[], Awaitable[T]] | Callable[[], T]) -> T:
    result = function()
    if inspect.isawaitable(result):
        awaited: T = await result
        return awaited
    return result

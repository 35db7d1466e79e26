"""Slowing down password guessing: a lockout window that doubles with each failed login.

Failures are counted per (username, client address). The first ``free_failures`` cost
nothing; from then on each failure locks that pair out for ``base_lockout_s``, doubled per
further failure, up to ``max_lockout_s`` (defaults: 5 free, then 1 s, 2 s, 4 s … 15 min). While
locked, a login is refused with 429 *without* checking the password, so a guesser learns
nothing and costs no argon2 time; the lockout is not extended by refused attempts. A success
clears the count; failures older than ``forget_after_s`` are forgotten.

Keying on the pair, not the username alone, means a guesser elsewhere cannot lock an officer
out of their own tablet. Attempts for one pair run one at a time, so a burst of parallel
guesses cannot all slip in before the first failure is counted.

Per process, in memory: a restart forgets, and N alertnet processes behind a load balancer
allow N times the attempts. The address is the TCP peer: behind a reverse proxy, run uvicorn
with ``--proxy-headers --forwarded-allow-ips`` so that it is the client's. At most
``max_tracked`` pairs are remembered (the stalest are dropped first), which bounds memory
under a flood of invented usernames (forgetting the least recently used first).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import ClassVar

from alertnet.errors import AlertnetError


class LoginThrottled(AlertnetError):
    """Too many failed logins for this username from this address (429)."""

    status_code: ClassVar[int] = 429
    code: ClassVar[str] = "too_many_attempts"

    def __init__(self, retry_after_s: float) -> None:
        self.retry_after_s = max(1, math.ceil(retry_after_s))
        super().__init__(
            f"too many failed logins; try again in {self.retry_after_s} s",
        )


@dataclass(slots=True)
class _Record:
    failures: int = 0
    last_failure_at: float = 0.0
    locked_until: float = 0.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass(slots=True)
class LoginAttempt:
    """Handed to the login code inside ``LoginThrottle.attempt``; it reports the outcome."""

    succeeded: bool | None = None

    def success(self) -> None:
        self.succeeded = True

    def failure(self) -> None:
        self.succeeded = False


class LoginThrottle:
    def __init__(
        self,
        *,
        free_failures: int = 5,
        base_lockout_s: float = 1.0,
        max_lockout_s: float = 900.0,
        forget_after_s: float = 3600.0,
        max_tracked: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if free_failures < 0 or base_lockout_s <= 0 or max_lockout_s < base_lockout_s:
            raise ValueError("invalid login throttle settings")
        self.free_failures = free_failures
        self.base_lockout_s = base_lockout_s
        self.max_lockout_s = max_lockout_s
        self.forget_after_s = forget_after_s
        self.max_tracked = max_tracked
        self._clock = clock
        # Insertion order is recency order (records are moved to the end when used).
        self._records: dict[tuple[str, str], _Record] = {}

    @staticmethod
    def key(username: str, client_addr: str) -> tuple[str, str]:
        return username.strip().casefold(), client_addr

    def lockout_s(self, failures: int) -> float:
        """How long ``failures`` consecutive failures lock the pair out (0 while still free)."""
        if failures < self.free_failures or failures == 0:
            return 0.0
        exponent = min(failures - self.free_failures, 32)
        return min(self.max_lockout_s, self.base_lockout_s * 2.0**exponent)

    def retry_after_s(self, username: str, client_addr: str) -> float:
        """Seconds until this pair may try again (0 when it may try now)."""
        record = self._records.get(self.key(username, client_addr))
        if record is None:
            return 0.0
        return max(0.0, record.locked_until - self._clock())

    @asynccontextmanager
    async def attempt(self, username: str, client_addr: str) -> AsyncIterator[LoginAttempt]:
        """Run one login attempt for the pair; raises LoginThrottled while it is locked out.

        The block reports ``attempt.success()`` or ``attempt.failure()``; a block that reports
        neither (it raised, e.g. the database was down) changes nothing.
        """
        key = self.key(username, client_addr)
        record = self._records.pop(key, None) or _Record()
        self._records[key] = record
        self._prune()
        async with record.lock:
            now = self._clock()
            if record.locked_until > now:
                raise LoginThrottled(record.locked_until - now)
            if record.failures and now - record.last_failure_at > self.forget_after_s:
                record.failures = 0
            attempt = LoginAttempt()
            yield attempt
            if attempt.succeeded is True:
                record.failures = 0
                record.locked_until = 0.0
            elif attempt.succeeded is False:
                now = self._clock()
                record.failures += 1
                record.last_failure_at = now
                record.locked_until = now + self.lockout_s(record.failures)

    def _prune(self) -> None:
        """Drop the least recently used pairs beyond ``max_tracked`` (never one in use)."""
        excess = len(self._records) - self.max_tracked
        if excess <= 0:
            return
        for key in [key for key, record in self._records.items() if not record.lock.locked()]:
            del self._records[key]
            excess -= 1
            if excess <= 0:
                return

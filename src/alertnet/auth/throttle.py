"""Slowing down password guessing before it costs anything (DESIGN §14 "Sessions and accounts").

A password check is an argon2 hash: 64 MiB and tens of milliseconds of a core, which a flood of
logins would take from the alarm path. So every login attempt passes ``LoginThrottle.attempt``
first, and a refused one costs no hash and no database read.

Failures are counted three ways, each with a lockout window that doubles with each failure
beyond its free ones, up to a cap (defaults below):

* per (username, address): 5 free, then 1 s, 2 s, 4 s … 15 min — one guesser at one account;
* per username, from any address: 10 free, then up to 60 s — guessing spread over many
  addresses; the short cap means a guesser can delay an officer's login by a minute at most;
* per address, whatever the username: 20 free, then up to 15 min — one address trying many
  accounts (each unknown username costs a hash too, to keep timing uniform).

While any of the three is locked, a login is refused with 429 without checking the password
(the lockout is not extended by refused attempts). A success clears the pair's and the
account's counts, not the address's (a guesser holding one valid account could reset it
otherwise); failures older than ``forget_after_s`` are forgotten. Attempts from one address run
one at a time, so a burst of parallel guesses cannot all slip in before the first failure is
counted, and at most ``max_concurrent_checks`` password checks run at once in the process.

IPv6 addresses count per /64 (what one subscriber gets). The address is the TCP peer: behind a
reverse proxy, run uvicorn with ``--proxy-headers --forwarded-allow-ips`` so that it is the
client's. Per process, in memory: a restart forgets, and N processes allow N times the attempts.
At most ``max_tracked`` keys of each kind are remembered (the least recently used are dropped
first), which bounds memory under a flood of invented usernames.
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
import time
from collections.abc import AsyncIterator, Callable, Hashable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import ClassVar

from alertnet.errors import AlertnetError

IPV6_SUBSCRIBER_PREFIX = 64


class LoginThrottled(AlertnetError):
    """Too many failed logins for this account or from this address (429)."""

    status_code: ClassVar[int] = 429
    code: ClassVar[str] = "too_many_attempts"

    def __init__(self, retry_after_s: float) -> None:
        self.retry_after_s = max(1, math.ceil(retry_after_s))
        super().__init__(f"too many failed logins; try again in {self.retry_after_s} s")


@dataclass(frozen=True, slots=True)
class Lockout:
    """How many failures are free, and how long each one beyond them locks out."""

    free_failures: int
    base_s: float
    max_s: float

    def __post_init__(self) -> None:
        if self.free_failures < 0 or self.base_s <= 0 or self.max_s < self.base_s:
            raise ValueError("invalid login throttle settings")

    def lockout_s(self, failures: int) -> float:
        """How long ``failures`` consecutive failures lock out (0 while still free)."""
        if failures < self.free_failures or failures == 0:
            return 0.0
        exponent = min(failures - self.free_failures, 32)
        return min(self.max_s, self.base_s * 2.0**exponent)


@dataclass(slots=True)
class _Record:
    failures: int = 0
    last_failure_at: float = 0.0
    locked_until: float = 0.0

    def forget_if_stale(self, now: float, forget_after_s: float) -> None:
        if self.failures and now - self.last_failure_at > forget_after_s:
            self.failures = 0

    def clear(self) -> None:
        self.failures = 0
        self.locked_until = 0.0


class _Counter:
    """Failures per key under one ``Lockout``, remembering at most ``max_tracked`` keys."""

    def __init__(self, lockout: Lockout, max_tracked: int) -> None:
        self.lockout = lockout
        self.max_tracked = max_tracked
        # Insertion order is recency order (records are moved to the end when used).
        self.records: dict[Hashable, _Record] = {}

    def touch(self, key: Hashable) -> _Record:
        """The key's record, now the most recently used; the stalest beyond the limit go."""
        record = self.records.pop(key, None) or _Record()
        self.records[key] = record
        while len(self.records) > self.max_tracked:
            del self.records[next(iter(self.records))]
        return record

    def remaining_s(self, key: Hashable, now: float) -> float:
        record = self.records.get(key)
        return 0.0 if record is None else max(0.0, record.locked_until - now)

    def fail(self, record: _Record, now: float) -> None:
        record.failures += 1
        record.last_failure_at = now
        record.locked_until = now + self.lockout.lockout_s(record.failures)


@dataclass(slots=True)
class LoginAttempt:
    """Handed to the login code inside ``LoginThrottle.attempt``; it reports the outcome."""

    succeeded: bool | None = None

    def success(self) -> None:
        self.succeeded = True

    def failure(self) -> None:
        self.succeeded = False


@dataclass(slots=True)
class _AddressGate:
    """Lets one attempt at a time through for an address; dropped when nobody waits on it."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    holders: int = 0


def address_key(client_addr: str) -> str:
    """The unit an address is counted in: itself, or its /64 for IPv6."""
    try:
        address = ipaddress.ip_address(client_addr)
    except ValueError:
        return client_addr
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, IPV6_SUBSCRIBER_PREFIX), strict=False))
    return str(address)


class LoginThrottle:
    def __init__(
        self,
        *,
        free_failures: int = 5,
        base_lockout_s: float = 1.0,
        max_lockout_s: float = 900.0,
        account_free_failures: int = 10,
        account_max_lockout_s: float = 60.0,
        address_free_failures: int = 20,
        forget_after_s: float = 3600.0,
        max_tracked: int = 10_000,
        max_concurrent_checks: int = 2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_concurrent_checks < 1 or max_tracked < 1:
            raise ValueError("invalid login throttle settings")
        self.pair = _Counter(Lockout(free_failures, base_lockout_s, max_lockout_s), max_tracked)
        self.account = _Counter(
            Lockout(account_free_failures, base_lockout_s, account_max_lockout_s), max_tracked
        )
        self.address = _Counter(
            Lockout(address_free_failures, base_lockout_s, max_lockout_s), max_tracked
        )
        self.forget_after_s = forget_after_s
        self._clock = clock
        self._gates: dict[str, _AddressGate] = {}
        self._checks = asyncio.Semaphore(max_concurrent_checks)

    @staticmethod
    def username_key(username: str) -> str:
        return username.strip().casefold()

    def lockout_s(self, failures: int) -> float:
        """How long ``failures`` consecutive failures of one (username, address) lock it out."""
        return self.pair.lockout.lockout_s(failures)

    def retry_after_s(self, username: str, client_addr: str) -> float:
        """Seconds until this username may try again from this address (0 when it may now)."""
        name, address = self.username_key(username), address_key(client_addr)
        now = self._clock()
        return max(
            self.pair.remaining_s((name, address), now),
            self.account.remaining_s(name, now),
            self.address.remaining_s(address, now),
        )

    def tracked(self) -> int:
        """How many keys are remembered in all (what the memory use grows with)."""
        return sum(len(counter.records) for counter in (self.pair, self.account, self.address))

    @asynccontextmanager
    async def attempt(self, username: str, client_addr: str) -> AsyncIterator[LoginAttempt]:
        """Run one login attempt; raises LoginThrottled while it is locked out.

        The block reports ``attempt.success()`` or ``attempt.failure()``; a block that reports
        neither (it raised, e.g. the database was down) changes nothing.
        """
        name, address = self.username_key(username), address_key(client_addr)
        gate = self._gates.setdefault(address, _AddressGate())
        gate.holders += 1
        try:
            async with gate.lock:
                now = self._clock()
                pair = self.pair.touch((name, address))
                account = self.account.touch(name)
                source = self.address.touch(address)
                for record in (pair, account, source):
                    record.forget_if_stale(now, self.forget_after_s)
                locked_until = max(pair.locked_until, account.locked_until, source.locked_until)
                if locked_until > now:
                    raise LoginThrottled(locked_until - now)
                attempt = LoginAttempt()
                async with self._checks:
                    yield attempt
                now = self._clock()
                if attempt.succeeded is True:
                    pair.clear()
                    account.clear()
                elif attempt.succeeded is False:
                    self.pair.fail(pair, now)
                    self.account.fail(account, now)
                    self.address.fail(source, now)
        finally:
            gate.holders -= 1
            if gate.holders == 0:
                del self._gates[address]

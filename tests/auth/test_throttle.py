"""The login throttle on its own, with a fake clock: the lockout arithmetic and its edges."""

from __future__ import annotations

import asyncio

import pytest

from alertnet.auth.throttle import LoginThrottle, LoginThrottled, address_key


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def fail(throttle: LoginThrottle, username: str = "ana", client: str = "10.0.0.1") -> None:
    async with throttle.attempt(username, client) as attempt:
        attempt.failure()


async def succeed(throttle: LoginThrottle, username: str = "ana", client: str = "10.0.0.1") -> None:
    async with throttle.attempt(username, client) as attempt:
        attempt.success()


def test_lockout_doubles_after_the_free_failures_up_to_the_cap() -> None:
    throttle = LoginThrottle(free_failures=5, base_lockout_s=1.0, max_lockout_s=900.0)
    assert [throttle.lockout_s(n) for n in range(8)] == [0, 0, 0, 0, 0, 1, 2, 4]
    assert throttle.lockout_s(15) == 900.0
    assert throttle.lockout_s(10_000) == 900.0


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError):
        LoginThrottle(base_lockout_s=0)
    with pytest.raises(ValueError):
        LoginThrottle(base_lockout_s=10, max_lockout_s=5)


async def test_locked_pair_is_refused_until_the_window_ends() -> None:
    clock = FakeClock()
    throttle = LoginThrottle(free_failures=2, base_lockout_s=10.0, clock=clock)
    await fail(throttle)
    await fail(throttle)
    assert throttle.retry_after_s("ana", "10.0.0.1") == 10.0
    with pytest.raises(LoginThrottled) as refused:
        await succeed(throttle)
    assert (refused.value.status_code, refused.value.retry_after_s) == (429, 10)
    clock.now = 9.5
    with pytest.raises(LoginThrottled) as refused:
        await succeed(throttle)
    assert refused.value.retry_after_s == 1  # rounded up, never 0
    # Refused attempts did not extend the lockout.
    clock.now = 10.0
    await succeed(throttle)
    assert throttle.retry_after_s("ana", "10.0.0.1") == 0.0


async def test_success_resets_and_old_failures_are_forgotten() -> None:
    clock = FakeClock()
    throttle = LoginThrottle(free_failures=3, forget_after_s=60.0, clock=clock)
    await fail(throttle)
    await fail(throttle)
    await succeed(throttle)
    await fail(throttle)
    await fail(throttle)
    assert throttle.retry_after_s("ana", "10.0.0.1") == 0.0  # 2 failures since the success
    clock.now = 61.0
    await fail(throttle)  # the two before are more than 60 s old
    await fail(throttle)
    assert throttle.retry_after_s("ana", "10.0.0.1") == 0.0
    await fail(throttle)
    assert throttle.retry_after_s("ana", "10.0.0.1") == 1.0


async def test_pairs_are_independent_and_usernames_fold_case() -> None:
    throttle = LoginThrottle(free_failures=1, clock=FakeClock())
    await fail(throttle, "Ana", "10.0.0.1")
    with pytest.raises(LoginThrottled):
        await succeed(throttle, " ana ", "10.0.0.1")
    await succeed(throttle, "ana", "10.0.0.2")
    await succeed(throttle, "bob", "10.0.0.1")


async def test_an_attempt_that_reports_nothing_changes_nothing() -> None:
    throttle = LoginThrottle(free_failures=1, clock=FakeClock())
    with pytest.raises(RuntimeError):
        async with throttle.attempt("ana", "10.0.0.1"):
            raise RuntimeError("database down")
    await succeed(throttle)


async def test_parallel_guesses_for_one_pair_run_one_at_a_time() -> None:
    """A burst cannot slip past the count: each attempt sees the failures before it."""
    throttle = LoginThrottle(free_failures=2, clock=FakeClock())
    checked = 0

    async def guess() -> str:
        nonlocal checked
        try:
            async with throttle.attempt("ana", "10.0.0.1") as attempt:
                checked += 1
                await asyncio.sleep(0.01)  # the argon2 check
                attempt.failure()
        except LoginThrottled:
            return "refused"
        return "checked"

    outcomes = await asyncio.gather(*(guess() for _ in range(10)))
    assert sorted(outcomes) == ["checked"] * 2 + ["refused"] * 8
    assert checked == 2


async def test_memory_is_bounded() -> None:
    throttle = LoginThrottle(free_failures=1, max_tracked=100, clock=FakeClock())
    for index in range(1000):
        await fail(throttle, f"user{index}", f"10.0.{index // 250}.{index % 250}")
    assert throttle.tracked() <= 300  # pairs, accounts and addresses: 100 of each at most
    # The most recent pairs are the ones remembered.
    with pytest.raises(LoginThrottled):
        await succeed(throttle, "user999", "10.0.3.249")


async def test_one_account_guessed_from_many_addresses_is_locked() -> None:
    throttle = LoginThrottle(account_free_failures=4, account_max_lockout_s=60, clock=FakeClock())
    for index in range(4):
        await fail(throttle, "ana", f"10.0.0.{index}")
    assert throttle.retry_after_s("ana", "192.0.2.99") == 1.0
    with pytest.raises(LoginThrottled):
        await succeed(throttle, "ANA", "192.0.2.99")
    # Other accounts are not affected, and the account's cap is short (an officer waits at
    # most a minute, however long a distributed guesser keeps at it).
    await succeed(throttle, "bob", "192.0.2.99")
    assert throttle.account.lockout.lockout_s(1000) == 60


async def test_many_usernames_from_one_address_are_locked_before_any_check() -> None:
    clock = FakeClock()
    throttle = LoginThrottle(address_free_failures=5, clock=clock)
    checked = 0

    async def guess(username: str, address: str = "10.0.0.1") -> str:
        nonlocal checked
        try:
            async with throttle.attempt(username, address) as attempt:
                checked += 1  # where the login checks the password (an argon2 hash)
                attempt.failure()
        except LoginThrottled:
            return "refused"
        return "checked"

    outcomes = [await guess(f"user{index}") for index in range(50)]
    assert outcomes == ["checked"] * 5 + ["refused"] * 45
    assert checked == 5
    # Another address is not affected; a success does not reset the address's count.
    assert await guess("user1", "10.0.0.2") == "checked"
    clock.now += 1.0
    async with throttle.attempt("real-user", "10.0.0.1") as attempt:
        attempt.success()
    assert await guess("user99") == "checked"  # the 6th failure: locked again, for 2 s now
    clock.now += 1.5
    assert await guess("user100") == "refused"


async def test_parallel_guesses_across_usernames_from_one_address_run_one_at_a_time() -> None:
    throttle = LoginThrottle(address_free_failures=3, clock=FakeClock())
    checked = 0

    async def guess(index: int) -> str:
        nonlocal checked
        try:
            async with throttle.attempt(f"user{index}", "10.0.0.1") as attempt:
                checked += 1
                await asyncio.sleep(0.01)
                attempt.failure()
        except LoginThrottled:
            return "refused"
        return "checked"

    outcomes = await asyncio.gather(*(guess(index) for index in range(20)))
    assert sorted(outcomes) == ["checked"] * 3 + ["refused"] * 17
    assert checked == 3


async def test_password_checks_in_flight_are_bounded() -> None:
    throttle = LoginThrottle(max_concurrent_checks=2, clock=FakeClock())
    in_flight = peak = 0

    async def login(index: int) -> None:
        nonlocal in_flight, peak
        async with throttle.attempt("ana", f"10.0.1.{index}") as attempt:
            in_flight += 1
            peak = max(peak, in_flight)
            await asyncio.sleep(0.01)
            in_flight -= 1
            attempt.success()

    await asyncio.gather(*(login(index) for index in range(10)))
    assert peak == 2


def test_ipv6_addresses_count_per_64() -> None:
    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:bbbb::9")
    assert address_key("2001:db8:1:2::1") != address_key("2001:db8:1:3::1")
    assert address_key("::ffff:10.0.0.1") == address_key("10.0.0.1") == "10.0.0.1"
    assert address_key("testclient") == "testclient"

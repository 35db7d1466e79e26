"""Anti-replay window (DESIGN §2.3) checked against a set-based model."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from alertnet.protocol import ReplayWindow, Verdict

from ._strategies import PROPERTY

UINT32_MAX = 2**32 - 1


def model_verdict(accepted: set[int], counter: int) -> Verdict:
    """The specification, in the plainest terms: a set of accepted counters and its max."""
    if not accepted or counter > max(accepted):
        return Verdict.NEW
    if max(accepted) - counter >= ReplayWindow.SIZE:
        return Verdict.REPLAY
    return Verdict.DUPLICATE if counter in accepted else Verdict.NEW


def test_fresh_window_accepts_anything() -> None:
    window = ReplayWindow()
    assert (window.highest, window.seen) == (-1, 0)
    for counter in (0, 1, 2**31, UINT32_MAX):
        assert window.check(counter) is Verdict.NEW
    assert window.accept(0) == ReplayWindow(0, 1)
    assert window.accept(UINT32_MAX) == ReplayWindow(UINT32_MAX, 1)


def test_window_edges() -> None:
    window = ReplayWindow().accept(100)
    assert window.check(100) is Verdict.DUPLICATE
    assert window.check(37) is Verdict.NEW  # 100 - 63: the oldest slot
    assert window.check(36) is Verdict.REPLAY
    window = window.accept(37)
    assert window.seen == 1 | 1 << 63
    assert window.check(37) is Verdict.DUPLICATE
    window = window.accept(101)  # 37 slides out of the window
    assert window.check(37) is Verdict.REPLAY
    assert window.check(38) is Verdict.NEW
    assert window.seen == 0b11
    window = window.accept(1000)
    assert window == ReplayWindow(1000, 1)


def test_accept_refuses_non_new_counters() -> None:
    window = ReplayWindow().accept(100)
    with pytest.raises(ValueError, match="duplicate"):
        window.accept(100)
    with pytest.raises(ValueError, match="replay"):
        window.accept(0)
    with pytest.raises(ValueError):
        window.check(-1)
    with pytest.raises(ValueError):
        window.check(2**32)


def test_db_form() -> None:
    window = ReplayWindow().accept(0).accept(63)
    assert window.seen == 1 | 1 << 63
    assert window.seen_signed == 1 - 2**63
    assert ReplayWindow.from_db(window.highest, window.seen_signed) == window
    assert ReplayWindow.from_db(-1, 0) == ReplayWindow()
    with pytest.raises(ValueError):
        ReplayWindow.from_db(5, 2**63)


@pytest.mark.parametrize(
    ("highest", "seen"),
    [(-2, 0), (2**32, 1), (-1, 1), (5, 0), (5, 2), (0, 0b11), (10, 2**64 + 1), (3, -1)],
)
def test_invalid_windows(highest: int, seen: int) -> None:
    with pytest.raises(ValueError):
        ReplayWindow(highest, seen)


counters_near_zero = st.integers(0, 300)
counters_near_max = st.integers(UINT32_MAX - 300, UINT32_MAX)


@PROPERTY
@given(st.lists(counters_near_zero, max_size=80) | st.lists(counters_near_max, max_size=80))
def test_window_matches_model(counters: list[int]) -> None:
    window = ReplayWindow()
    accepted: set[int] = set()
    for counter in counters:
        verdict = window.check(counter)
        assert verdict is model_verdict(accepted, counter)
        if verdict is Verdict.NEW:
            window = window.accept(counter)
            accepted.add(counter)
        assert window.highest == max(accepted)
        assert ReplayWindow.from_db(window.highest, window.seen_signed) == window


class ReplayMachine(RuleBasedStateMachine):
    """Random receptions, near the current highest counter and anywhere, against the model."""

    def __init__(self) -> None:
        super().__init__()
        self.window = ReplayWindow()
        self.accepted: set[int] = set()

    def receive(self, counter: int) -> None:
        verdict = self.window.check(counter)
        assert verdict is model_verdict(self.accepted, counter)
        if verdict is Verdict.NEW:
            self.window = self.window.accept(counter)
            self.accepted.add(counter)

    @rule(offset=st.integers(-70, 70))
    def near_highest(self, offset: int) -> None:
        self.receive(min(max(self.window.highest + offset, 0), UINT32_MAX))

    @rule(counter=st.integers(0, UINT32_MAX))
    def anywhere(self, counter: int) -> None:
        self.receive(counter)

    @rule()
    def reload_from_database(self) -> None:
        self.window = ReplayWindow.from_db(self.window.highest, self.window.seen_signed)

    @invariant()
    def consistent(self) -> None:
        assert self.window.highest == max(self.accepted, default=-1)
        assert -(2**63) <= self.window.seen_signed < 2**63
        assert 0 <= self.window.seen < 2**64
        for offset in range(ReplayWindow.SIZE):
            counter = self.window.highest - offset
            if counter < 0:
                break
            assert bool(self.window.seen >> offset & 1) == (counter in self.accepted)


ReplayMachine.TestCase.settings = settings(
    database=None, deadline=None, max_examples=60, stateful_step_count=40
)
TestReplayMachine = ReplayMachine.TestCase

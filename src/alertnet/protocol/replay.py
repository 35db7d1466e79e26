"""Per-device anti-replay window over frame counters (DESIGN §2.3, RFC 4303 §3.4.3).

Tells a new counter (process it) from a duplicate (ack it again, never reprocess) and a replay
(quarantine it), while tolerating the reordering that several gateways cause.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar, Self

__all__ = ["ReplayWindow", "Verdict"]

_UINT32_MAX = 0xFFFF_FFFF
_MASK64 = (1 << 64) - 1
_INT64_SIGN = 1 << 63


class Verdict(StrEnum):
    """What a counter means to a device's window."""

    NEW = "new"
    DUPLICATE = "duplicate"
    REPLAY = "replay"


def _check_counter(counter: int) -> None:
    if isinstance(counter, bool) or not isinstance(counter, int) or not 0 <= counter <= _UINT32_MAX:
        raise ValueError(f"counter must be a uint32, got {counter!r}")


@dataclass(frozen=True, slots=True)
class ReplayWindow:
    """The highest counter seen and which of the 64 counters up to it were seen.

    Bit ``i`` of ``seen`` is set when counter ``highest - i`` was seen (bit 0 is ``highest``).
    ``highest == -1`` is a device that has sent nothing yet: it accepts any counter. Store it
    as ``(highest, seen_signed)`` in two BIGINT columns and load it with ``from_db``.
    """

    SIZE: ClassVar[int] = 64

    highest: int = -1
    seen: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.highest, bool) or not isinstance(self.highest, int):
            raise ValueError(f"highest must be an integer, got {self.highest!r}")
        if isinstance(self.seen, bool) or not isinstance(self.seen, int):
            raise ValueError(f"seen must be an integer, got {self.seen!r}")
        if not -1 <= self.highest <= _UINT32_MAX:
            raise ValueError(f"highest must be -1 or a uint32, got {self.highest}")
        if not 0 <= self.seen <= _MASK64:
            raise ValueError(f"seen must fit in 64 bits, got {self.seen}")
        if self.highest == -1:
            if self.seen:
                raise ValueError("an empty window has no seen counters")
        elif not self.seen & 1:
            raise ValueError("the highest counter must be marked seen")
        elif self.seen >> (self.highest + 1):
            raise ValueError("seen marks counters below zero")

    def check(self, counter: int) -> Verdict:
        """Classify ``counter`` without changing the window."""
        _check_counter(counter)
        if counter > self.highest:
            return Verdict.NEW
        offset = self.highest - counter
        if offset >= self.SIZE:
            return Verdict.REPLAY
        return Verdict.DUPLICATE if self.seen >> offset & 1 else Verdict.NEW

    def accept(self, counter: int) -> Self:
        """The window after marking ``counter`` seen; only valid for a ``NEW`` counter."""
        verdict = self.check(counter)
        if verdict is not Verdict.NEW:
            raise ValueError(f"counter {counter} is a {verdict}, not new")
        if counter > self.highest:
            shift = counter - self.highest
            seen = (self.seen << shift | 1) & _MASK64 if shift < self.SIZE else 1
            return type(self)(highest=counter, seen=seen)
        return type(self)(highest=self.highest, seen=self.seen | 1 << (self.highest - counter))

    @property
    def seen_signed(self) -> int:
        """``seen`` as a two's-complement int64, for a BIGINT column."""
        return self.seen - (1 << 64) if self.seen & _INT64_SIGN else self.seen

    @classmethod
    def from_db(cls, highest: int, seen_signed: int) -> Self:
        """Rebuild a window stored as ``(highest, seen_signed)``."""
        if not -_INT64_SIGN <= seen_signed < _INT64_SIGN:
            raise ValueError(f"seen_signed must be an int64, got {seen_signed}")
        return cls(highest=highest, seen=seen_signed & _MASK64)

"""Telling devices how their alarm progresses (DESIGN §2.2 states 2 to 5), after the commit.

Dispatch services only *collect* ``StateNotice`` values; whoever commits the transaction hands
them to a ``DeviceNotifier``. A notice is never sent for a change that was rolled back. The real
notifier (MQTT or the best gateway) is wired by the application; ``RecordingNotifier`` is the
in-memory fake for tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from alertnet.protocol import AckState


@dataclass(frozen=True, slots=True)
class StateNotice:
    """Tell device ``device_id`` that its alarm ``counter`` reached ``state``."""

    device_id: int
    counter: int
    state: AckState

    def __post_init__(self) -> None:
        if not isinstance(self.state, AckState):
            object.__setattr__(self, "state", AckState(self.state))
        if self.counter < 0:
            raise ValueError(f"negative counter {self.counter}")


class DeviceNotifier(Protocol):
    async def notify(self, notices: Sequence[StateNotice]) -> None:
        """Send downlinks for committed changes; must not raise for one unreachable device."""
        ...


class RecordingNotifier:
    """Keeps every notice in memory, in the order it was handed over."""

    def __init__(self) -> None:
        self.notices: list[StateNotice] = []

    async def notify(self, notices: Sequence[StateNotice]) -> None:
        self.notices.extend(notices)

    def states_for(self, device_id: int) -> list[AckState]:
        return [notice.state for notice in self.notices if notice.device_id == device_id]

    def clear(self) -> None:
        self.notices.clear()

"""How an alert comes into being, written once for every path that opens one.

A press opens a police alert (``alerts.intake``), a device condition a trouble alert
(``alerts.trouble``). Both build the new row and the audit of its opening (``None → new``) here,
so the opening priority, the counters and the audit read the same whichever path opened it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from alertnet.alerts.priority import opening_priority
from alertnet.models import AlertAudit, AlertCategory, AlertState


@dataclass(frozen=True, slots=True)
class DeviceRef:
    """What opening or touching an alert needs to know about the device that caused it."""

    id: int
    eui: str
    mahalla_id: int | None
    risk: str | None
    lat: float
    lon: float

    @property
    def actor(self) -> str:
        """The audit actor for changes the device itself caused."""
        return f"device:{self.eui}"


@dataclass(frozen=True, slots=True)
class AlertOpening:
    """A new alert at ``device``'s location and in its mahalla: its row and its opening audit.

    ``row()`` serves an ORM ``Alert(**row)`` and an ``INSERT … VALUES`` alike; ``audit()`` is
    written once the row has its id (and only when the row was really created, not merged).
    """

    device: DeviceRef
    category: AlertCategory
    at: datetime
    reason: str
    drill: bool = False
    last_counter: int = 0
    trouble: str | None = None
    # The event itself asks for silence (hold-up, duress: DESIGN §3, §9.1). A silent device
    # makes the alert silent too: ``AlertIntake`` ORs this with the device's flag in SQL.
    silent: bool = False
    # A camera alert opens in ``verify`` (DESIGN §9.3) and rings this long after it opened.
    verify_timeout_s: float = 60.0

    @property
    def initial_state(self) -> AlertState:
        """``verify`` for a camera (a dispatcher confirms it first), else ``new``."""
        return AlertState.VERIFY if self.category is AlertCategory.CAMERA else AlertState.NEW

    def row(self) -> dict[str, Any]:
        """The column values of the new alert."""
        return {
            "device_id": self.device.id,
            "mahalla_id": self.device.mahalla_id,
            "category": self.category.value,
            "trouble": self.trouble,
            "priority": opening_priority(self.category, self.device.risk),
            "state": self.initial_state.value,
            "press_count": 1,
            "cancel_count": 0,
            "refusal_count": 0,
            "drill": self.drill,
            "silent": self.silent,
            "lat": self.device.lat,
            "lon": self.device.lon,
            "last_counter": self.last_counter,
            "opened_at": self.at,
            "last_event_at": self.at,
            "verify_due_at": (
                self.at + timedelta(seconds=self.verify_timeout_s)
                if self.initial_state is AlertState.VERIFY
                else None
            ),
        }

    def audit(self, alert_id: int) -> AlertAudit:
        """The audit row of the opening, for the alert ``row()`` created."""
        return AlertAudit(
            alert_id=alert_id,
            at=self.at,
            actor=self.device.actor,
            from_state=None,
            to_state=self.initial_state.value,
            reason=self.reason,
        )

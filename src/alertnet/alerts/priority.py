"""Alert priority (DESIGN §4): category first, then the mahalla's risk class, then repeat presses.

When posts are scarce the highest priority is served first; the dispatcher and the console
order their queues by it.
"""

from __future__ import annotations

from alertnet.models import AlertCategory

BASE_PRIORITY = {
    AlertCategory.PANIC: 100,
    AlertCategory.FIRE: 90,
    AlertCategory.MEDICAL: 80,
    AlertCategory.INTRUSION: 70,
    AlertCategory.TAMPER: 40,
    AlertCategory.TROUBLE: 10,
}
RISK_BONUS = {"red": 10, "yellow": 5, "green": 0}
REPEAT_PRESS_BONUS = 5
REPEAT_PRESS_THRESHOLD = 3


def opening_priority(category: AlertCategory, risk: str | None) -> int:
    """The priority an alert opens with; the third press adds ``REPEAT_PRESS_BONUS``."""
    return BASE_PRIORITY[category] + RISK_BONUS.get(risk or "", 0)

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
    # A camera alert waiting for a dispatcher (``verify``, DESIGN §9.3): never offered, so its
    # priority only orders the console's queue. Confirmed, it is dispatched like an intrusion.
    AlertCategory.CAMERA: 60,
}
#: What a camera alert's priority becomes when a dispatcher confirms it (DESIGN §9.3).
CONFIRMED_CAMERA_PRIORITY = BASE_PRIORITY[AlertCategory.INTRUSION]
RISK_BONUS = {"red": 10, "yellow": 5, "green": 0}
REPEAT_PRESS_BONUS = 5
REPEAT_PRESS_THRESHOLD = 3


def opening_priority(category: AlertCategory, risk: str | None) -> int:
    """The priority an alert opens with; the third press adds ``REPEAT_PRESS_BONUS``.

    A camera alert opens at its flat 60 (DESIGN §9.3): the bonuses come with confirmation.
    """
    if category is AlertCategory.CAMERA:
        return BASE_PRIORITY[category]
    return BASE_PRIORITY[category] + RISK_BONUS.get(risk or "", 0)


def confirmed_priority(risk: str | None, press_count: int) -> int:
    """A confirmed camera alert's priority: an intrusion's, with risk and repeat bonuses."""
    bonus = REPEAT_PRESS_BONUS if press_count >= REPEAT_PRESS_THRESHOLD else 0
    return CONFIRMED_CAMERA_PRIORITY + RISK_BONUS.get(risk or "", 0) + bonus

"""Silent alarms (DESIGN §3): the dispatcher's override of the call lock, audited.

A silent alert (a hold-up device, a duress code) tells everybody "do not call the site": the
console's click-to-call stays locked and the post gets no call list (``Scope.premises_fields``).
A dispatcher who must call anyway (the crew needs a key-holder) overrides the lock: the alert
records who and when, the audit trail gets a row with the reason (the state does not change),
and every console hears it on the stream. Works in the caller's transaction; never commits.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from alertnet.alerts.views import alert_views
from alertnet.errors import Conflict
from alertnet.models import Alert, AlertAudit, utcnow
from alertnet.realtime.feed import FeedMessage, append

CALL_OVERRIDE_REASON_PREFIX = "call override: "


class NotSilent(Conflict):
    """Only a silent alert has a call lock to override."""

    code = "alert_not_silent"


async def override_calls(session: AsyncSession, alert: Alert, *, actor: str, reason: str) -> bool:
    """Unlock calling the site of silent ``alert`` (locked by the caller).

    False when it was already unlocked (the first dispatcher's name stays); ``NotSilent``
    for an alert that is not silent.
    """
    if not alert.silent:
        raise NotSilent(f"alert {alert.id} is not silent: calling its site is not locked")
    if alert.call_override_at is not None:
        return False
    at = utcnow()
    alert.call_override_by = actor
    alert.call_override_at = at
    session.add(
        AlertAudit(
            alert_id=alert.id,
            at=at,
            actor=actor,
            from_state=alert.state,
            to_state=alert.state,
            reason=CALL_OVERRIDE_REASON_PREFIX + reason,
        )
    )
    await session.flush()
    view = (await alert_views(session, [alert.id]))[alert.id]
    await append(
        session,
        [
            FeedMessage(
                "alert.updated",
                view,
                alert_id=alert.id,
                post_id=view["post_id"] or view["offered_post_id"],
                mahalla_id=alert.mahalla_id,
            )
        ],
    )
    return True

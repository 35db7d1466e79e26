"""The alert state machine (DESIGN §3) in one place: which moves are legal, and what each records.

An alert enters the machine in ``new``, its row and opening audit built by ``alerts.opening``.
Every state change after that goes through ``transition``: it refuses an illegal move with
``IllegalTransition`` (a 409), stamps the alert's time fields, writes the audit row and the
``alert.updated`` feed row in the caller's transaction, and says which progress state (DESIGN
§2.2) the device should be told once that transaction commits.

Dispatched categories (panic, intrusion, fire, medical, tamper):

    new       → offered      offered to the nearest eligible post (or one a dispatcher chose)
    new       → escalated    no post is eligible
    offered   → new          declined, no answer before the deadline, or withdrawn (then re-offered)
    offered   → escalated    the refusal that used up the allowance (3 refusals)
    offered   → accepted     the offered post took it
    escalated → offered      a post became eligible, or a dispatcher assigned one
    accepted  → on_scene     the post arrived
    accepted  → closed       finished before arriving (e.g. handed over, false alarm seen en route)
    accepted  → offered      a dispatcher reassigned it to another post
    on_scene  → closed       with an outcome
    any open  → cancelled    a dispatcher, with a reason

A camera alert (DESIGN §9.3) opens in ``verify`` instead: ``verify → new`` when a dispatcher
confirms it (then dispatched as above), ``verify → cancelled`` when one dismisses it. Nothing
offers an alert in ``verify`` to a post (the dispatcher serves only ``new`` and ``escalated``).

A drill held by a post (accepted or on scene) also goes back to ``new`` when that post accepts a
real alert (DESIGN §4, "pre-empted by a real alert"); a real alert never does.

Trouble alerts (mains lost, low battery, offline, counter reset) are never dispatched: they go
from ``new`` straight to ``closed`` (resolved, when the device's last condition clears:
``alerts.trouble``) or ``cancelled``. The machine itself refuses to
offer one, so no code path can send a trouble notice to the police.

Time fields keep the *first* moment of each stage (first offer, first acceptance, first
arrival) because handling statistics measure how long the citizen waited for each;
``escalated_at`` keeps the latest escalation, ``closed_at`` the end (closed or cancelled).

Device progress states only move forward: an alert re-offered after a decline does not make the
button's LED go back, and a device is told each of dispatched, accepted, on scene once.

The ops trail: every state change, the opening included (``log_opened``), is one INFO line of
the ``alertnet.alerts.state`` logger — alert id, category, mahalla, from → to, by whom, why.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from alertnet.alerts.opening import AlertOpening
from alertnet.alerts.views import alert_views
from alertnet.errors import Conflict
from alertnet.models import Alert, AlertAudit, AlertCategory, AlertState, Mahalla, utcnow
from alertnet.protocol import AckState
from alertnet.realtime.feed import FeedMessage, append

_S = AlertState

DISPATCH_TRANSITIONS: Mapping[AlertState, frozenset[AlertState]] = {
    _S.VERIFY: frozenset({_S.NEW, _S.CANCELLED}),
    _S.NEW: frozenset({_S.OFFERED, _S.ESCALATED, _S.CANCELLED}),
    _S.OFFERED: frozenset({_S.NEW, _S.ACCEPTED, _S.ESCALATED, _S.CANCELLED}),
    _S.ACCEPTED: frozenset({_S.ON_SCENE, _S.CLOSED, _S.OFFERED, _S.CANCELLED}),
    _S.ON_SCENE: frozenset({_S.CLOSED, _S.CANCELLED}),
    _S.ESCALATED: frozenset({_S.OFFERED, _S.CANCELLED}),
    _S.CLOSED: frozenset(),
    _S.CANCELLED: frozenset(),
}

TROUBLE_TRANSITIONS: Mapping[AlertState, frozenset[AlertState]] = {
    _S.NEW: frozenset({_S.CLOSED, _S.CANCELLED}),
}

# Moves only a drill may make: its post took a real alert, so it waits for another post.
DRILL_PREEMPTION_TRANSITIONS: Mapping[AlertState, frozenset[AlertState]] = {
    _S.ACCEPTED: frozenset({_S.NEW}),
    _S.ON_SCENE: frozenset({_S.NEW}),
}

TERMINAL_STATES = frozenset({_S.CLOSED, _S.CANCELLED})
# States in which the alert has no post of its own (an offer is not a hold).
_POSTLESS_STATES = frozenset({_S.NEW, _S.OFFERED, _S.ESCALATED})

log = logging.getLogger(__name__)


class IllegalTransition(Conflict):
    """The alert cannot move from its current state to the one asked for."""

    code = "illegal_transition"

    def __init__(self, alert_id: int, from_state: str, to_state: str) -> None:
        super().__init__(f"alert {alert_id} cannot go from {from_state} to {to_state}")
        self.alert_id = alert_id
        self.from_state = from_state
        self.to_state = to_state


def allowed_transitions(
    category: str, from_state: str, *, drill: bool = False
) -> frozenset[AlertState]:
    """The states an alert of ``category`` (a drill or not) may move to from ``from_state``."""
    if category == AlertCategory.TROUBLE:
        return TROUBLE_TRANSITIONS.get(AlertState(from_state), frozenset())
    allowed = DISPATCH_TRANSITIONS.get(AlertState(from_state), frozenset())
    if drill:
        allowed |= DRILL_PREEMPTION_TRANSITIONS.get(AlertState(from_state), frozenset())
    return allowed


def is_legal(category: str, from_state: str, to_state: str, *, drill: bool = False) -> bool:
    return AlertState(to_state) in allowed_transitions(category, from_state, drill=drill)


async def _mahalla_name(session: AsyncSession, mahalla_id: int | None) -> str:
    """The mahalla's name for the ops trail; the session's identity map keeps it after the
    first look, and nothing pending is flushed to read it."""
    if mahalla_id is None:
        return "-"
    with session.no_autoflush:
        mahalla = await session.get(Mahalla, mahalla_id)
    return mahalla.name if mahalla is not None else f"#{mahalla_id}"


async def log_transition(
    session: AsyncSession,
    *,
    alert_id: int,
    category: str,
    mahalla_id: int | None,
    from_state: str | None,
    to_state: str,
    actor: str,
    reason: str,
) -> None:
    """The ops trail's one INFO line for one state change (``from_state`` None: opened)."""
    if not log.isEnabledFor(logging.INFO):
        return
    log.info(
        "alert %s %s mahalla=%s: %s → %s by %s%s",
        alert_id,
        category,
        await _mahalla_name(session, mahalla_id),
        from_state or "(opened)",
        to_state,
        actor,
        f" ({reason})" if reason else "",
    )


async def log_opened(session: AsyncSession, alert_id: int, opening: AlertOpening) -> None:
    """The ops trail's line for an alert ``opening`` has just created."""
    await log_transition(
        session,
        alert_id=alert_id,
        category=opening.category,
        mahalla_id=opening.device.mahalla_id,
        from_state=None,
        to_state=opening.initial_state,
        actor=opening.device.actor,
        reason=opening.reason,
    )


def _device_progress(alert: Alert, to_state: AlertState) -> AckState | None:
    """The progress state to tell the device about this move, if it is news to the device.

    Called before the time fields are stamped: an unset field means "first time".
    """
    if alert.category in (AlertCategory.TROUBLE, AlertCategory.CAMERA):
        return None  # nobody pressed anything (a camera has no downlink): nothing to tell
    if to_state is _S.OFFERED and alert.first_offered_at is None:
        return AckState.DISPATCHED
    if to_state is _S.ACCEPTED and alert.accepted_at is None:
        return AckState.ACCEPTED
    if to_state is _S.ON_SCENE and alert.on_scene_at is None:
        return AckState.ON_SCENE
    if to_state in TERMINAL_STATES:
        return AckState.CLOSED
    return None


def _stamp(alert: Alert, to_state: AlertState, at: datetime) -> None:
    if to_state is _S.OFFERED and alert.first_offered_at is None:
        alert.first_offered_at = at
    elif to_state is _S.ACCEPTED and alert.accepted_at is None:
        alert.accepted_at = at
    elif to_state is _S.ON_SCENE and alert.on_scene_at is None:
        alert.on_scene_at = at
    elif to_state is _S.ESCALATED:
        alert.escalated_at = at
    elif to_state in TERMINAL_STATES:
        alert.closed_at = at


async def transition(
    session: AsyncSession,
    alert: Alert,
    to_state: AlertState | str,
    *,
    actor: str,
    reason: str = "",
    at: datetime | None = None,
    feed: list[FeedMessage] | None = None,
    announce: bool = True,
) -> AckState | None:
    """Move ``alert`` to ``to_state``, with its audit and feed rows, in the caller's transaction.

    Raises ``IllegalTransition`` without touching anything when the move is not allowed.
    Leaving ``accepted`` for a dispatch state (a reassignment) drops the alert's post; closing
    or cancelling keeps it, as the record of who handled the alert. Returns the progress state
    the device must be told after the commit, or ``None``.

    With ``feed``, the ``alert.updated`` message (whose data is the alert's §5 view) is added
    to that list instead of written at once: the caller writes it, with messages of its own,
    in one insert before its transaction ends. With ``announce=False`` no feed message is made
    (and nothing is flushed): the caller announces the alert itself, as ingest does for every
    alert its batch changed, after all its row locks.
    """
    target = AlertState(to_state)
    origin = AlertState(alert.state)
    if target not in allowed_transitions(alert.category, origin, drill=alert.drill):
        raise IllegalTransition(alert.id, origin, target)
    at = at or utcnow()
    progress = _device_progress(alert, target)
    _stamp(alert, target, at)
    previous_post_id = alert.post_id
    if target in _POSTLESS_STATES:
        alert.post_id = None
    alert.state = target
    session.add(
        AlertAudit(
            alert_id=alert.id,
            at=at,
            actor=actor,
            from_state=origin,
            to_state=target,
            reason=reason,
        )
    )
    await log_transition(
        session,
        alert_id=alert.id,
        category=alert.category,
        mahalla_id=alert.mahalla_id,
        from_state=origin,
        to_state=target,
        actor=actor,
        reason=reason,
    )
    if not announce:
        return progress
    await session.flush()
    view = (await alert_views(session, [alert.id]))[alert.id]
    message = FeedMessage(
        "alert.updated",
        view,
        alert_id=alert.id,
        # A post that just lost the alert must hear about it too.
        post_id=alert.post_id if alert.post_id is not None else previous_post_id,
        mahalla_id=alert.mahalla_id,
    )
    if feed is None:
        await append(session, [message])
    else:
        feed.append(message)
    return progress

"""Notes and acknowledgement on an alert (DESIGN §10), shared by every dispatcher.

A note is a dispatcher's line on an alert ("caller says two men, one knife"); an
acknowledgement says a dispatcher has taken the alert in hand, and silences the console's
escalation alarm for every dispatcher at once. Each is an append-only row (``alert_notes``,
``alert_acknowledgements``: who, when, what) written with its feed row in the caller's
transaction. The workflow read (``workflow_of``) and the message announcing a change live in
``alerts.plans``, which shows notes, acknowledgement and the action plan together.

Who reads notes: the console (dispatchers, admins) only — ``Scope.reads_alert_workflow``.
Notes are the centre's working notes and may name callers, neighbours and what they said:
an observer (the mahalla team) never gets them (§10), and neither does a post's tablet (what a
crew needs is said to it by radio or phone; the premises notes of §10 are its written channel).

``notes_for`` is the batch read other modules use (the shift report): one query for many alerts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from alertnet.alerts.views import iso
from alertnet.errors import Conflict
from alertnet.models import (
    OPEN_ALERT_STATES,
    Alert,
    AlertAcknowledgement,
    AlertNote,
    AlertState,
    utcnow,
)

NOTE_MAX_CHARS = 2000


@dataclass(frozen=True, slots=True)
class Note:
    """One note as it was written: never edited, never deleted."""

    id: int
    alert_id: int
    at: datetime
    author: str
    text: str

    def view(self) -> dict[str, Any]:
        """The note as the API and the feed show it."""
        return {"id": self.id, "at": iso(self.at), "author": self.author, "text": self.text}

    @classmethod
    def of(cls, row: AlertNote) -> Note:
        return cls(id=row.id, alert_id=row.alert_id, at=row.at, author=row.author, text=row.text)


async def notes_for(session: AsyncSession, alert_ids: Sequence[int]) -> dict[int, list[Note]]:
    """``{alert_id: [Note, …]}``, oldest first, for every given alert (an empty list if none).

    Callers decide who may read them (``Scope.reads_alert_workflow``): this reads, nothing more.
    """
    found: dict[int, list[Note]] = {alert_id: [] for alert_id in alert_ids}
    if not found:
        return found
    rows = await session.scalars(
        select(AlertNote)
        .where(AlertNote.alert_id.in_(list(found)))
        .order_by(AlertNote.alert_id, AlertNote.at, AlertNote.id)
    )
    for row in rows:
        found[row.alert_id].append(Note.of(row))
    return found


async def add_note(session: AsyncSession, alert: Alert, text: str, *, author: str) -> Note:
    """Append a note to ``alert`` (any state: a closed alert may still get a follow-up)."""
    row = AlertNote(alert_id=alert.id, at=utcnow(), author=author, text=text)
    session.add(row)
    await session.flush()
    return Note.of(row)


class NotOpen(Conflict):
    """Only an open alert can be acknowledged."""

    code = "alert_not_open"


def needs_acknowledgement(alert: Alert) -> bool:
    """Whether a dispatcher's acknowledgement would be news: never acknowledged, or escalated
    again since the last acknowledgement (the alarm rings again then)."""
    if alert.acknowledged_at is None:
        return True
    return (
        alert.state == AlertState.ESCALATED
        and alert.escalated_at is not None
        and alert.escalated_at > alert.acknowledged_at
    )


async def acknowledge(session: AsyncSession, alert: Alert, *, actor: str) -> bool:
    """Acknowledge ``alert`` (locked by the caller) for every dispatcher; False when that is not
    news (another dispatcher was first: the alert keeps their name). ``NotOpen`` for a closed
    or cancelled alert."""
    if alert.state not in OPEN_ALERT_STATES:
        raise NotOpen(f"alert {alert.id} is {alert.state}: only an open alert is acknowledged")
    if not needs_acknowledgement(alert):
        return False
    at = utcnow()
    # An acknowledgement is never earlier than the escalation it answers (clocks of two
    # processes may differ by a little).
    if alert.escalated_at is not None and at < alert.escalated_at:
        at = alert.escalated_at
    alert.acknowledged_by = actor
    alert.acknowledged_at = at
    session.add(AlertAcknowledgement(alert_id=alert.id, at=at, actor=actor, state=alert.state))
    await session.flush()
    return True

"""The dispatchers' shared work on an alert (DESIGN §10): notes, ticked action-plan steps, and
the action plans themselves (an admin's edit of a category's checklist; no row: the default).

Notes and ticks are append-only: each row is its own audit record (who, when, what). The
acknowledgement is two columns on the alert (``acknowledged_by``, ``acknowledged_at``) with an
``alert_notes``-style record of its own in ``alert_acknowledgements``, so a re-acknowledgement
after a new escalation keeps the earlier one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from alertnet.models.base import Base, BigId, utcnow


class AlertNote(Base):
    """A dispatcher's note on an alert: shared by every dispatcher, never edited or deleted."""

    __tablename__ = "alert_notes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    author: Mapped[str] = mapped_column(String(120))
    text: Mapped[str] = mapped_column(Text)


class AlertAcknowledgement(Base):
    """Each time a dispatcher acknowledged an alert (the alert row keeps the latest)."""

    __tablename__ = "alert_acknowledgements"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(120))
    # The alert's state when it was acknowledged (an escalated alert is acknowledged again
    # when it escalates again).
    state: Mapped[str] = mapped_column(String(16))


class AlertStepTick(Base):
    """Step ``n`` (1-based) of the alert's action plan done, with the step as it read then."""

    __tablename__ = "alert_step_ticks"
    __table_args__ = (Index("ix_alert_step_ticks_alert_id_n", "alert_id", "n"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"))
    n: Mapped[int] = mapped_column(Integer)
    # {"key": catalog key} for a shipped step, {"text": …} for an admin's own wording.
    step: Mapped[dict[str, Any]] = mapped_column(JSON)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(120))


class ActionPlan(Base):
    """An admin's checklist for one alert category; a category without a row uses the default."""

    __tablename__ = "action_plans"

    category: Mapped[str] = mapped_column(String(16), primary_key=True)
    # Ordered steps, each {"key": …} or {"text": …} (``alertnet.alerts.plans``).
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(120))

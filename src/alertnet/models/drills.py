"""Training drills started by a dispatcher (DESIGN §12): the drill and its schedule of events.

A drill names a mahalla and a number of its devices; ``drill_events`` is its schedule, one row
per device, each due at a moment within ``spread_s`` of the start. The row is the restart-safe
timer: ``alertnet.drills.runner`` creates the row's event in the ingest pipeline (dedup key
``drill:<drill_id>:<n>``) once it is due, and only then marks it ``created`` with the event's
id. The alerts the events open point back at their drill (``alerts.drill_id``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from alertnet.models.base import Base, utcnow


class Drill(Base):
    """One drill: who started it, where, how many devices over how long, and how far it got.

    ``state``: ``running`` while events remain to be created, ``complete`` once all are (or were
    skipped), ``stopped`` when a dispatcher stopped it before that.
    """

    __tablename__ = "drills"
    __table_args__ = (
        CheckConstraint("state IN ('running', 'complete', 'stopped')", name="state"),
        CheckConstraint("device_count > 0", name="device_count"),
        CheckConstraint("spread_s >= 0", name="spread_s"),
        Index("ix_drills_started_at", "started_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    mahalla_id: Mapped[int] = mapped_column(ForeignKey("mahallas.id"), index=True)
    started_by: Mapped[str] = mapped_column(String(120))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    device_count: Mapped[int] = mapped_column(Integer)
    spread_s: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[str] = mapped_column(String(16), default="running")
    # When the last event was created (complete) or the drill was stopped.
    ended_at: Mapped[datetime | None]


class DrillEvent(Base):
    """The ``n``-th event of a drill: its device, when it is due, and what became of it.

    ``state``: ``pending`` (not created yet), ``created`` (``event_id`` is its event),
    ``skipped`` (``note`` says why: the device had a real alert open, was disabled meanwhile, or
    the drill was stopped).
    """

    __tablename__ = "drill_events"
    __table_args__ = (
        CheckConstraint("state IN ('pending', 'created', 'skipped')", name="state"),
        CheckConstraint("n > 0", name="n"),
        Index("ix_drill_events_state_due_at", "state", "due_at"),
    )

    drill_id: Mapped[int] = mapped_column(ForeignKey("drills.id"), primary_key=True)
    n: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"), index=True)
    due_at: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(16), default="pending")
    event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id"), index=True)
    done_at: Mapped[datetime | None]
    note: Mapped[str] = mapped_column(String(200), default="", server_default="")

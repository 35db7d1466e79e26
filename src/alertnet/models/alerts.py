"""What happened and who handles it: events, receptions, alerts, audit, posts and offers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from alertnet.models.base import OPEN_ALERT_STATES, Base, BigId, utcnow

# "Open" as SQL, for the partial unique index of open alerts and for every ON CONFLICT that
# targets it: the database picks the index for an upsert only when the predicates agree, so
# both use this one object.
OPEN_ALERT_PREDICATE = text(
    "state IN (" + ", ".join(f"'{state.value}'" for state in OPEN_ALERT_STATES) + ")"
)


class Event(Base):
    """One row per (device, dedup_key) that is not a heartbeat; the database is the dedup.

    ``dedup_key`` (DESIGN §2.3) names the message whatever its source: ``c:<counter>`` for v1
    frames (``counter`` is kept too), ``dc09:<seq>:<hash>`` for alarm panels (§9.1),
    ``drill:<drill_id>:<n>`` for drills (§12). ``details`` holds what the source says beyond
    the event code, e.g. a DC-09 panel's zone, partition, raw code and clock skew.
    """

    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("device_id", "dedup_key", name="uq_events_device_dedup_key"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"))
    dedup_key: Mapped[str] = mapped_column(String(96))
    counter: Mapped[int | None] = mapped_column(BigInteger)
    code: Mapped[str] = mapped_column(String(24))
    flags: Mapped[int] = mapped_column(Integer, default=0)
    drill: Mapped[bool] = mapped_column(Boolean, default=False)
    battery: Mapped[int | None]
    occurred_at: Mapped[datetime]
    received_at: Mapped[datetime]
    reception_count: Mapped[int] = mapped_column(Integer, default=1)
    best_rssi: Mapped[int | None]
    best_snr: Mapped[float | None]
    gateway_ids: Mapped[str] = mapped_column(Text, default="")
    first_transport: Mapped[str] = mapped_column(String(8))
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id"), index=True)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Reception(Base):
    """Each copy of an event as heard by one gateway or transport."""

    __tablename__ = "receptions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"), index=True)
    transport: Mapped[str] = mapped_column(String(8))
    gateway_id: Mapped[str | None] = mapped_column(String(120))
    rssi: Mapped[int | None]
    snr: Mapped[float | None]
    received_at: Mapped[datetime]


class Post(Base):
    """A mobile police post: a patrol crew with a tablet."""

    __tablename__ = "posts"
    __table_args__ = (
        CheckConstraint("status IN ('off_duty', 'available', 'busy')", name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    callsign: Mapped[str] = mapped_column(String(40), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="off_duty")
    lat: Mapped[float | None]
    lon: Mapped[float | None]
    accuracy_m: Mapped[float | None]
    location_at: Mapped[datetime | None]
    home_mahalla_id: Mapped[int | None] = mapped_column(ForeignKey("mahallas.id"))
    demo: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class Alert(Base):
    __tablename__ = "alerts"
    __table_args__ = (
        CheckConstraint(
            "state IN ('verify', 'new', 'offered', 'accepted', 'on_scene', 'escalated', "
            "'closed', 'cancelled')",
            name="state",
        ),
        # At most one open alert per (device, category, drill): DESIGN §3. A drill alert and a
        # real one of the same device are separate (§2.3); migration 0010 added ``drill``.
        Index(
            "uq_alerts_open_device_category",
            "device_id",
            "category",
            "drill",
            unique=True,
            postgresql_where=OPEN_ALERT_PREDICATE,
            sqlite_where=OPEN_ALERT_PREDICATE,
        ),
        # A post holds one alert at a time.
        Index(
            "uq_alerts_open_post",
            "post_id",
            unique=True,
            postgresql_where=text("state IN ('accepted', 'on_scene')"),
            sqlite_where=text("state IN ('accepted', 'on_scene')"),
        ),
        Index("ix_alerts_state_priority", "state", "priority"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"), index=True)
    mahalla_id: Mapped[int | None] = mapped_column(ForeignKey("mahallas.id"), index=True)
    category: Mapped[str] = mapped_column(String(16))
    # For trouble alerts: its kinds, comma-separated (mains_lost, low_battery, offline,
    # counter_reset, unknown_code).
    trouble: Mapped[str | None] = mapped_column(String(200))
    priority: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default="new")
    press_count: Mapped[int] = mapped_column(Integer, default=1)
    cancel_count: Mapped[int] = mapped_column(Integer, default=0)
    refusal_count: Mapped[int] = mapped_column(Integer, default=0)
    drill: Mapped[bool] = mapped_column(Boolean, default=False)
    lat: Mapped[float]
    lon: Mapped[float]
    last_counter: Mapped[int] = mapped_column(BigInteger)
    opened_at: Mapped[datetime]
    last_event_at: Mapped[datetime]
    first_offered_at: Mapped[datetime | None]
    accepted_at: Mapped[datetime | None]
    on_scene_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    escalated_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(Text)
    post_id: Mapped[int | None] = mapped_column(ForeignKey("posts.id"))
    # The training drill a dispatcher started that opened it (DESIGN §12; ``drill`` is set
    # too). Nobody pressed anything: its device is never told how it progresses.
    drill_id: Mapped[int | None] = mapped_column(ForeignKey("drills.id"), index=True)
    # The latest dispatcher acknowledgement, shared by every console (DESIGN §10;
    # ``alert_acknowledgements`` keeps each one).
    acknowledged_by: Mapped[str | None] = mapped_column(String(120))
    acknowledged_at: Mapped[datetime | None]
    # Silent (DESIGN §3: hold-up, duress, a silent device): nobody calls the site until a
    # dispatcher overrides it (audited); who did and when.
    silent: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    call_override_by: Mapped[str | None] = mapped_column(String(120))
    call_override_at: Mapped[datetime | None]
    # A camera alert in ``verify`` (DESIGN §9.3, §6.3): from this moment it rings on the
    # console until a dispatcher answers it (opened + ALERTNET_VERIFY_TIMEOUT_S).
    verify_due_at: Mapped[datetime | None]


class AlertAudit(Base):
    """Every alert state transition: who, when, from, to, why."""

    __tablename__ = "alert_audit"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(120))
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")


class Offer(Base):
    __tablename__ = "offers"
    __table_args__ = (
        CheckConstraint(
            "state IN ('pending', 'accepted', 'declined', 'expired', 'withdrawn')", name="state"
        ),
        # Exactly one: an alert has at most one pending offer, a post at most one.
        Index(
            "uq_offers_pending_alert",
            "alert_id",
            unique=True,
            postgresql_where=text("state = 'pending'"),
            sqlite_where=text("state = 'pending'"),
        ),
        Index(
            "uq_offers_pending_post",
            "post_id",
            unique=True,
            postgresql_where=text("state = 'pending'"),
            sqlite_where=text("state = 'pending'"),
        ),
        Index("ix_offers_state_deadline", "state", "deadline_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), index=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id"), index=True)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    offered_at: Mapped[datetime] = mapped_column(default=utcnow)
    deadline_at: Mapped[datetime]
    decided_at: Mapped[datetime | None]
    distance_m: Mapped[float]
    reason: Mapped[str | None] = mapped_column(Text)

"""Where alarms come from: mahallas, the devices mounted in them, the gateways hearing them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from alertnet.models.base import Base, utcnow


class Mahalla(Base):
    __tablename__ = "mahallas"
    __table_args__ = (CheckConstraint("risk IN ('red', 'yellow', 'green')", name="risk"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    district: Mapped[str] = mapped_column(String(120), default="")
    region: Mapped[str] = mapped_column(String(120), default="")
    risk: Mapped[str] = mapped_column(String(8))
    lat: Mapped[float | None]
    lon: Mapped[float | None]
    households: Mapped[int] = mapped_column(Integer, default=0)
    businesses: Mapped[int] = mapped_column(Integer, default=0)
    demo: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class Device(Base):
    __tablename__ = "devices"
    __table_args__ = (
        CheckConstraint("status IN ('active', 'offline', 'disabled')", name="status"),
        CheckConstraint("length(key) = 16", name="key_length"),
        CheckConstraint("length(dc09_key) IN (16, 24, 32)", name="dc09_key_length"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    eui: Mapped[str] = mapped_column(String(16), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    site: Mapped[str] = mapped_column(String(16), default="public")
    name: Mapped[str] = mapped_column(String(200), default="")
    address: Mapped[str] = mapped_column(String(300), default="")
    lat: Mapped[float]
    lon: Mapped[float]
    mahalla_id: Mapped[int | None] = mapped_column(ForeignKey("mahallas.id"), index=True)
    key: Mapped[bytes] = mapped_column(LargeBinary(16))
    # An alarm panel reporting over SIA DC-09 (DESIGN §9.1): its account (3-16 uppercase hex
    # digits, unique) and, when it encrypts, its AES-128/192/256 key.
    dc09_account: Mapped[str | None] = mapped_column(String(16), unique=True)
    dc09_key: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    supervision_interval_s: Mapped[int] = mapped_column(Integer, default=3600)
    status: Mapped[str] = mapped_column(String(16), default="active")
    last_seen_at: Mapped[datetime | None]
    battery: Mapped[int | None]
    # Anti-replay window (DESIGN §2.3): highest counter seen and a 64-bit mask below it.
    window_highest: Mapped[int] = mapped_column(BigInteger, default=-1)
    window_seen: Mapped[int] = mapped_column(BigInteger, default=0)
    # Bumped by database triggers (migration 0011) whenever a column the ingest caches
    # changes, or its mahalla's risk: ``ingest.device_cache`` trusts a cached device only at
    # the revision it read. Never written by application code.
    revision: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    # How to answer it: the wire format it last used and the gateway that heard it best.
    last_format: Mapped[str] = mapped_column(String(8), default="binary")
    last_transport: Mapped[str | None] = mapped_column(String(8))
    last_gateway_id: Mapped[str | None] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Made by `serve --demo` (alertnet.demo): its key is public, so it is disabled otherwise.
    demo: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # A hold-up device (DESIGN §3): its alerts are silent, it is told "received" and no more.
    silent: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Its premises (§10; ``address`` above is one of them): devices sharing a ref are one site.
    # Who reads which part is ``auth.scope``'s decision; ``alertnet.premises`` validates them.
    premises_ref: Mapped[str | None] = mapped_column(String(64), index=True)
    owner: Mapped[str] = mapped_column(String(200), default="", server_default="")
    street: Mapped[str] = mapped_column(String(200), default="", server_default="")
    notes: Mapped[str] = mapped_column(Text, default="", server_default="")
    # The ordered call list: [{"name", "phone", "relation"}], first to call first.
    contacts: Mapped[list[dict[str, str]]] = mapped_column(
        JSON, default=list, server_default=text("'[]'")
    )
    # A camera (DESIGN §9.3): its Frigate camera name (unique), the labels and zones it
    # watches (comma-separated; no zones: the whole picture) and the hours it watches
    # (``HH-HH`` in ALERTNET_TIMEZONE, ``22-06`` wraps midnight; none: always).
    camera_name: Mapped[str | None] = mapped_column(String(64), unique=True)
    camera_labels: Mapped[str] = mapped_column(String(200), default="", server_default="")
    camera_zones: Mapped[str] = mapped_column(String(500), default="", server_default="")
    camera_hours: Mapped[str | None] = mapped_column(String(5))


class DeviceTestMonth(Base):
    """A calendar month (UTC, ``YYYY-MM``) in which the device reported a test: a test event,
    an automatic test report or a DC-09 link test (DESIGN §9.1, §12's "a test in every month")."""

    __tablename__ = "device_test_months"

    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"), primary_key=True)
    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    first_at: Mapped[datetime]


class Gateway(Base):
    __tablename__ = "gateways"

    id: Mapped[str] = mapped_column(String(120), primary_key=True)
    transport: Mapped[str] = mapped_column(String(8))
    name: Mapped[str] = mapped_column(String(200), default="")
    lat: Mapped[float | None]
    lon: Mapped[float | None]
    online: Mapped[bool] = mapped_column(Boolean, default=False)
    last_seen_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

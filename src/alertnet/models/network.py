"""Where alarms come from: mahallas, the devices mounted in them, the gateways hearing them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    false,
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
    supervision_interval_s: Mapped[int] = mapped_column(Integer, default=3600)
    status: Mapped[str] = mapped_column(String(16), default="active")
    last_seen_at: Mapped[datetime | None]
    battery: Mapped[int | None]
    # Anti-replay window (DESIGN §2.3): highest counter seen and a 64-bit mask below it.
    window_highest: Mapped[int] = mapped_column(BigInteger, default=-1)
    window_seen: Mapped[int] = mapped_column(BigInteger, default=0)
    # How to answer it: the wire format it last used and the gateway that heard it best.
    last_format: Mapped[str] = mapped_column(String(8), default="binary")
    last_transport: Mapped[str | None] = mapped_column(String(8))
    last_gateway_id: Mapped[str | None] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Made by `serve --demo` (alertnet.demo): its key is public, so it is disabled otherwise.
    demo: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


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

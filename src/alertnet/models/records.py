"""Append-only records: rejected input kept as data, and the realtime feed (outbox)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from alertnet.models.base import Base, BigId, utcnow


class Quarantine(Base):
    """Every rejected input, raw bytes kept. Nothing is dropped silently.

    ``raw`` holds at most the first KiB of the input (``alertnet.ingest.outcomes``);
    ``raw_length`` and ``raw_sha256`` describe the whole of it. Rows are deleted after 30 days
    (``alertnet.retention``).
    """

    __tablename__ = "quarantine"
    __table_args__ = (
        Index("ix_quarantine_reason_received_at", "reason", "received_at"),
        Index("ix_quarantine_received_at", "received_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    transport: Mapped[str] = mapped_column(String(8))
    source: Mapped[str] = mapped_column(String(200), default="")
    gateway_id: Mapped[str | None] = mapped_column(String(120))
    device_eui: Mapped[str | None] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text, default="")
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    raw_length: Mapped[int] = mapped_column(BigInteger)
    raw_sha256: Mapped[str] = mapped_column(String(64))


class FeedItem(Base):
    """The realtime outbox, written in the transaction of the change it announces."""

    __tablename__ = "feed"
    # SQLite must never reuse a seq once retention has emptied the table (migration 0002).
    __table_args__ = ({"sqlite_autoincrement": True},)

    seq: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    type: Mapped[str] = mapped_column(String(32))
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id"))
    post_id: Mapped[int | None] = mapped_column(ForeignKey("posts.id"))
    mahalla_id: Mapped[int | None] = mapped_column(ForeignKey("mahallas.id"))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)

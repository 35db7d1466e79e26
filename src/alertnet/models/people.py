"""Who uses alertnet: users with roles, and their API tokens (stored only as hashes)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, String, false
from sqlalchemy.orm import Mapped, mapped_column

from alertnet.models.base import Base, utcnow


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("role IN ('admin', 'dispatcher', 'post', 'observer')", name="role"),
        CheckConstraint("role != 'post' OR post_id IS NOT NULL", name="post_bound"),
        CheckConstraint("role != 'observer' OR mahalla_id IS NOT NULL", name="observer_bound"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    post_id: Mapped[int | None] = mapped_column(ForeignKey("posts.id"))
    mahalla_id: Mapped[int | None] = mapped_column(ForeignKey("mahallas.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Made by `serve --demo` (alertnet.demo): usable only while a server runs with --demo.
    demo: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The language the user chose for the pages (alertnet.i18n.LANGUAGES); None until they
    # choose, and the pages then follow the browser's Accept-Language, then the default.
    language: Mapped[str | None] = mapped_column(String(16))


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(80), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Every token expires (alertnet.auth.tokens.MAX_TOKEN_TTL caps how far ahead).
    expires_at: Mapped[datetime]
    # Set by `token revoke`, by disabling the user and by a password change; never cleared.
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]

"""The request audit: one row per state-changing HTTP request, who made it and how it ended.

Written by ``alertnet.auth.audit`` in a transaction of its own, so failed and refused requests
(401, 403, 422, 500) are recorded as well as the ones that changed something.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from alertnet.models.base import Base, BigId, utcnow


class RequestAudit(Base):
    __tablename__ = "request_audit"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    # Kept when the user is deleted: the username column still says who it was.
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    # The authenticated user, or the name a login attempt gave (even a wrong one).
    username: Mapped[str | None] = mapped_column(String(80))
    role: Mapped[str | None] = mapped_column(String(16))
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(400))
    status: Mapped[int] = mapped_column(Integer)
    client_addr: Mapped[str | None] = mapped_column(String(64))

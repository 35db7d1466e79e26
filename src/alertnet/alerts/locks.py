"""Locking an alert's row before deciding on it: the one way any transaction takes an alert.

Dispatch (``dispatch.locks``, which holds the lock order: alert → offer → post) and the
alert's own HTTP edges (notes, plans) both take an alert through ``lock_alert``; it lives here
so that ``alerts`` never imports ``dispatch``. SQLite has no row locks: the database write
lock is taken first (``db.write_lock``).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from alertnet import db
from alertnet.models import Alert


async def lock_alert(
    session: AsyncSession, alert_id: int, *, skip_locked: bool = False
) -> Alert | None:
    """The alert's latest committed row, locked for this transaction (None: absent or busy)."""
    await db.write_lock(session)
    return (
        await session.execute(
            select(Alert)
            .where(Alert.id == alert_id)
            .with_for_update(skip_locked=skip_locked, key_share=True)
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()

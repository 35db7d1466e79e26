"""Row locks for dispatch: how a transaction takes an alert, an offer or a post before deciding.

Rules every caller keeps (the whole argument is in the ``dispatch`` package docstring):

* lock order is alert → offer → post; code that already holds a post takes alerts only with
  ``skip_locked`` and so never waits in the opposite order;
* every wait for a row lock comes before the transaction's first feed row (feed writers share
  one advisory lock until commit, ``realtime.feed``);
* each lock re-reads the row (``populate_existing``): what was loaded before the lock may be
  stale, and decisions are made on the locked row only.

SQLite has no row locks; there each helper takes the database write lock first
(``db.write_lock``), so dispatch transactions of one process are serialized.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.expression import Executable

from alertnet import db
from alertnet.alerts.locks import lock_alert as lock_alert  # the alert's own; re-exported
from alertnet.dispatch.policy import ACTIVE_STATES
from alertnet.errors import NotFound
from alertnet.models import Alert, Offer, OfferState, Post


async def lock_offer(session: AsyncSession, offer_id: int) -> Offer:
    return (
        await session.execute(
            select(Offer)
            .where(Offer.id == offer_id)
            .with_for_update(key_share=True)
            .execution_options(populate_existing=True)
        )
    ).scalar_one()


async def lock_offer_and_alert(session: AsyncSession, offer_id: int) -> tuple[Alert, Offer]:
    """An offer and its alert, alert first (the lock order); NotFound when either is gone."""
    alert_id = await session.scalar(select(Offer.alert_id).where(Offer.id == offer_id))
    if alert_id is None:
        raise NotFound(f"offer {offer_id} not found")
    alert = await lock_alert(session, alert_id)
    if alert is None:
        raise NotFound(f"alert {alert_id} not found")
    return alert, await lock_offer(session, offer_id)


async def lock_post(session: AsyncSession, post_id: int) -> Post:
    await db.write_lock(session)
    post = (
        await session.execute(
            select(Post)
            .where(Post.id == post_id)
            .with_for_update(key_share=True)
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()
    if post is None:
        raise NotFound(f"post {post_id} not found")
    return post


async def pending_offer_of_alert(session: AsyncSession, alert_id: int) -> Offer | None:
    """The alert's pending offer, locked (call while holding the alert)."""
    return (
        await session.execute(
            select(Offer)
            .where(Offer.alert_id == alert_id, Offer.state == OfferState.PENDING)
            .with_for_update(key_share=True)
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()


async def active_alert_of_post(session: AsyncSession, post_id: int) -> int | None:
    """The alert the post holds (accepted or on scene), if any; read after locking the post."""
    return await session.scalar(
        select(Alert.id).where(Alert.post_id == post_id, Alert.state.in_(ACTIVE_STATES))
    )


async def claim_rows(session: AsyncSession, query: Executable) -> list[Any]:
    """Run a queue claim: ``FOR UPDATE SKIP LOCKED`` on PostgreSQL; on SQLite a cheap look
    first, then the write lock and the authoritative read only when there is work."""
    if db.is_sqlite(session):
        if not (await session.execute(query)).first():
            return []
        await db.write_lock(session)
    return list((await session.execute(query.execution_options(populate_existing=True))).all())

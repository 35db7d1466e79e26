"""A real alarm on a device cancels the device's open drill alerts (DESIGN §2.3).

The training must never stand between a citizen and a post: the drill alert is cancelled
("real alarm on this device") in the ingest transaction that opens the real one, its pending
offer withdrawn and the post that held it freed, so the dispatcher's next pass (woken by the
new real alert) may send that very post to the real alarm. Locks are taken alert → offer → post
as dispatch takes them (``dispatch.locks``), and every feed message is returned to the batch,
which writes them after all its row locks (``realtime.feed``). Never commits.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from alertnet.alerts.opening import DeviceRef
from alertnet.alerts.state import is_legal, transition
from alertnet.dispatch.locks import lock_alert, lock_post, pending_offer_of_alert
from alertnet.dispatch.policy import ACTIVE_STATES
from alertnet.dispatch.views import offer_message, post_message
from alertnet.models import (
    OPEN_ALERT_STATES,
    Alert,
    AlertCategory,
    AlertState,
    OfferState,
    PostStatus,
)
from alertnet.realtime.feed import FeedMessage

#: The audit reason of a drill alert a real alarm cancelled.
REAL_ALARM_REASON: Final = "real alarm on this device"


async def cancel_device_drills(
    session: AsyncSession, device: DeviceRef, at: datetime
) -> tuple[list[int], list[FeedMessage]]:
    """Cancel every open drill alert of ``device``; returns their ids and the offer and post
    feed messages to write (the alerts' own ``alert.updated`` is the caller's to announce)."""
    open_drills = (
        await session.scalars(
            select(Alert.id)
            .where(
                Alert.device_id == device.id,
                Alert.drill.is_(True),
                Alert.category != AlertCategory.TROUBLE.value,
                Alert.state.in_(OPEN_ALERT_STATES),
            )
            .order_by(Alert.id)
        )
    ).all()
    cancelled: list[int] = []
    feed: list[FeedMessage] = []
    for alert_id in open_drills:
        alert = await lock_alert(session, alert_id)
        if alert is None or not is_legal(
            alert.category, alert.state, AlertState.CANCELLED, drill=alert.drill
        ):
            continue  # closed or cancelled meanwhile
        pending = await pending_offer_of_alert(session, alert.id)
        holder = None
        if alert.state in ACTIVE_STATES and alert.post_id is not None:
            holder = await lock_post(session, alert.post_id)
        if pending is not None:
            pending.state = OfferState.WITHDRAWN
            pending.decided_at = at
            pending.reason = f"alert cancelled: {REAL_ALARM_REASON}"
        await transition(
            session,
            alert,
            AlertState.CANCELLED,
            actor=device.actor,
            reason=REAL_ALARM_REASON,
            at=at,
            announce=False,
        )
        if pending is not None:
            feed.append(await offer_message(session, pending, "offer.updated", alert))
        if holder is not None and holder.status == PostStatus.BUSY:
            holder.status = PostStatus.AVAILABLE
            feed.append(post_message(holder))
        cancelled.append(alert.id)
    return cancelled, feed

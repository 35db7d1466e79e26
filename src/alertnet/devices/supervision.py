"""Device supervision: a device silent for more than twice its interval (plus a grace) is offline.

It lives with the devices, not the transports: it reads only the database, whichever transport
last heard a device. The check runs periodically in every process; on PostgreSQL the rows it
changes are claimed with ``SKIP LOCKED`` so two processes never raise the same trouble twice.
The device comes back online (and its ``offline`` trouble clears) in the ingest pipeline when
it is heard again. It also refreshes the open-alert gauge (the feed's retention is
``alertnet.retention``'s).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.alerts import trouble
from alertnet.config import Settings
from alertnet.db import unit_of_work
from alertnet.metrics import Metrics
from alertnet.models import (
    OPEN_ALERT_STATES,
    Alert,
    Device,
    DeviceStatus,
    Mahalla,
    utcnow,
)
from alertnet.realtime.feed import FeedMessage, append

log = logging.getLogger(__name__)


class Supervisor:
    """The periodic check; ``run()`` is its long-lived task, ``check()`` one pass."""

    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        settings: Settings,
        metrics: Metrics,
    ) -> None:
        self._session_factory = session_factory
        self._interval_s = settings.supervision_check_s
        self._grace = timedelta(seconds=settings.supervision_grace_s)
        self._metrics = metrics

    async def run(self) -> None:
        while True:
            try:
                await self.check()
            except Exception:
                self._metrics.loop_errors.labels("supervision").inc()
                log.exception("supervision check failed")
            await asyncio.sleep(self._interval_s)

    async def check(self, now: datetime | None = None) -> list[str]:
        """Mark silent devices offline; returns their EUIs."""
        now = now or utcnow()
        async with unit_of_work(self._session_factory) as session:
            silent = await self._mark_silent(session, now)
        async with self._session_factory() as session:
            counts = await session.execute(
                select(Alert.category, func.count())
                .where(Alert.state.in_(OPEN_ALERT_STATES))
                .group_by(Alert.category)
            )
            self._metrics.open_alerts.clear()
            for category, count in counts:
                self._metrics.open_alerts.labels(category).set(count)
        return silent

    async def _mark_silent(self, session: AsyncSession, now: datetime) -> list[str]:
        intervals = (await session.scalars(select(Device.supervision_interval_s).distinct())).all()
        silent: list[str] = []
        for interval_s in intervals:
            cutoff = now - timedelta(seconds=2 * interval_s) - self._grace
            devices = await session.execute(
                select(Device, Mahalla.risk)
                .outerjoin(Mahalla, Mahalla.id == Device.mahalla_id)
                .where(
                    Device.status == DeviceStatus.ACTIVE.value,
                    Device.supervision_interval_s == interval_s,
                    func.coalesce(Device.last_seen_at, Device.created_at) < cutoff,
                )
                .with_for_update(of=Device, skip_locked=True, key_share=True)
            )
            feed = []
            for device, risk in devices:
                device.status = DeviceStatus.OFFLINE.value
                ref = trouble.DeviceRef(
                    device.id, device.eui, device.mahalla_id, risk, device.lat, device.lon
                )
                change = await trouble.raise_(session, ref, "offline", now)
                feed.append(
                    FeedMessage(
                        "device.updated",
                        {
                            "eui": device.eui,
                            # An observer gets a public device's row only (Scope, DESIGN §10).
                            "site": device.site,
                            "status": device.status,
                            "battery": device.battery,
                            "trouble_alert_id": change.alert_id,
                        },
                        mahalla_id=device.mahalla_id,
                    )
                )
                silent.append(device.eui)
            await append(session, feed)
        if silent:
            log.warning("%d device(s) went silent: %s", len(silent), ", ".join(silent[:20]))
        return silent

"""The ingest side of the gateway registry: sightings and state changes, written in batches.

Transports note every frame a gateway forwards (``seen``) and every up/down change
(``set_state``) without touching the database themselves. One long-lived task, ``run()``,
writes them: state changes at once (the MQTT ingest acknowledges a gateway's state message
only after it is committed), sightings at most once per ``flush_interval_s``, so a busy
gateway costs one row update per interval instead of one per frame. Only the latest state
of a gateway is kept while a write is pending; a failed write is retried with backoff.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.db import unit_of_work
from alertnet.gateways import service
from alertnet.models import Transport, utcnow

__all__ = ["GatewayRegistry"]

log = logging.getLogger(__name__)

_RETRY_FIRST_S = 0.1
_RETRY_MAX_S = 5.0


def _storable(gateway_id: str) -> bool:
    """Transports refuse longer ids at their edge; one slipping through must not wedge writes."""
    if 0 < len(gateway_id) <= service.MAX_GATEWAY_ID_CHARS:
        return True
    log.error("gateway id of %d characters not recorded: %.60r", len(gateway_id), gateway_id)
    return False


@dataclass(slots=True)
class _PendingState:
    transport: Transport
    online: bool
    at: datetime
    waiters: list[asyncio.Future[None]] = field(default_factory=list)


class GatewayRegistry:
    """Collects gateway sightings and states from the transports; ``run()`` writes them."""

    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        *,
        flush_interval_s: float = 1.0,
    ) -> None:
        self._session_factory = session_factory
        self._flush_interval_s = flush_interval_s
        self._sightings: dict[str, tuple[Transport, datetime]] = {}
        self._states: dict[str, _PendingState] = {}
        self._state_arrived = asyncio.Event()
        self.writes = 0
        self.write_failures = 0

    def seen(self, gateway_id: str, transport: Transport, at: datetime | None = None) -> None:
        """Note that ``gateway_id`` forwarded a frame (registers it when new)."""
        if not _storable(gateway_id):
            return
        at = at or utcnow()
        previous = self._sightings.get(gateway_id)
        if previous is None or previous[1] < at:
            self._sightings[gateway_id] = (transport, at)

    def set_state(
        self, gateway_id: str, transport: Transport, online: bool, at: datetime | None = None
    ) -> asyncio.Future[None]:
        """Record a gateway going up or down; the future resolves once that is committed.

        A newer state for the same gateway replaces a pending one; both futures resolve when
        the newer one is written. The future never fails, so callers may ignore it.
        """
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if not _storable(gateway_id):
            waiter.set_result(None)
            return waiter
        pending = self._states.get(gateway_id)
        waiters = [*pending.waiters, waiter] if pending is not None else [waiter]
        self._states[gateway_id] = _PendingState(transport, online, at or utcnow(), waiters)
        self._state_arrived.set()
        return waiter

    @property
    def pending(self) -> int:
        return len(self._sightings) + len(self._states)

    async def run(self) -> None:
        """Write forever: states as they come, sightings every ``flush_interval_s``."""
        retry_s = _RETRY_FIRST_S
        while True:
            if not self._states:
                self._state_arrived.clear()
                try:
                    async with asyncio.timeout(self._flush_interval_s):
                        await self._state_arrived.wait()
                except TimeoutError:
                    pass
            if await self.flush():
                retry_s = _RETRY_FIRST_S
            else:
                await asyncio.sleep(retry_s)
                retry_s = min(retry_s * 2, _RETRY_MAX_S)

    async def flush(self) -> bool:
        """Write everything pending in one transaction; False (and kept pending) on failure."""
        if not self._sightings and not self._states:
            return True
        sightings, self._sightings = self._sightings, {}
        states, self._states = self._states, {}
        try:
            async with unit_of_work(self._session_factory) as session:
                await service.seen_many(
                    session,
                    [
                        (gateway_id, transport, at)
                        for gateway_id, (transport, at) in sightings.items()
                    ],
                )
                for gateway_id, state in sorted(states.items()):
                    await service.set_online(
                        session, gateway_id, state.transport, state.online, state.at
                    )
        except asyncio.CancelledError:
            self._restore(sightings, states)
            raise
        except Exception:
            self.write_failures += 1
            log.exception("gateway registry write failed; retrying")
            self._restore(sightings, states)
            return False
        self.writes += 1
        for state in states.values():
            for waiter in state.waiters:
                if not waiter.done():
                    waiter.set_result(None)
        return True

    def _restore(
        self,
        sightings: dict[str, tuple[Transport, datetime]],
        states: dict[str, _PendingState],
    ) -> None:
        """Put a failed write back, under anything newer that arrived meanwhile."""
        for gateway_id, (transport, at) in sightings.items():
            self.seen(gateway_id, transport, at)
        for gateway_id, state in states.items():
            newer = self._states.get(gateway_id)
            if newer is None:
                self._states[gateway_id] = state
            else:
                newer.waiters[:0] = state.waiters
        if self._states:
            self._state_arrived.set()

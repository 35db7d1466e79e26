"""Gateway rows: register on first sight, record last-seen and online state, list them.

Functions take the caller's session and never commit (the ingest's registry writer or an
HTTP request owns the transaction). Every write is one upsert, so a gateway that nobody
declared is registered the first time anything hears from it, from any process.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

from sqlalchemy import case, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from alertnet.errors import NotFound
from alertnet.models import Gateway, Transport

__all__ = [
    "MAX_GATEWAY_ID_CHARS",
    "get_gateway",
    "list_gateways",
    "seen",
    "seen_many",
    "set_online",
]

#: What the ``gateways.id`` column holds; longer ids are refused at the transport's edge.
MAX_GATEWAY_ID_CHARS: Final[int] = Gateway.__table__.c.id.type.length  # type: ignore[attr-defined]


def _upsert(session: AsyncSession) -> Any:
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(Gateway)


def _later(current: Any, candidate: Any) -> Any:
    """SQL for the later of two timestamps, NULL-safe (no GREATEST on SQLite)."""
    return case(
        (current.is_(None), candidate),
        (candidate.is_(None), current),
        (current < candidate, candidate),
        else_=current,
    )


async def seen(session: AsyncSession, gateway_id: str, transport: Transport, at: datetime) -> None:
    """Note that ``gateway_id`` forwarded something at ``at``; registers it (online) if new.

    An existing gateway keeps its online flag: only its state messages or its port change it.
    """
    await seen_many(session, [(gateway_id, transport, at)])


async def seen_many(
    session: AsyncSession, sightings: Sequence[tuple[str, Transport, datetime]]
) -> None:
    """``seen`` for several sightings in one statement (the latest per gateway counts)."""
    latest: dict[str, tuple[Transport, datetime]] = {}
    for gateway_id, transport, at in sightings:
        if gateway_id not in latest or latest[gateway_id][1] < at:
            latest[gateway_id] = (transport, at)
    if not latest:
        return
    statement = _upsert(session)
    statement = statement.on_conflict_do_update(
        index_elements=[Gateway.id],
        set_={"last_seen_at": _later(Gateway.last_seen_at, statement.excluded.last_seen_at)},
    )
    await session.execute(
        statement,
        [
            {
                "id": gateway_id,
                "transport": transport.value,
                "name": "",
                "online": True,
                "last_seen_at": at,
                "created_at": at,
            }
            for gateway_id, (transport, at) in sorted(latest.items())
        ],
    )


async def set_online(
    session: AsyncSession, gateway_id: str, transport: Transport, online: bool, at: datetime
) -> None:
    """Record a gateway going up or down (registering it if new).

    Going online counts as being seen; going offline (often the broker delivering the
    gateway's last will) leaves ``last_seen_at`` alone. A declared gateway keeps its transport.
    """
    statement = _upsert(session).values(
        id=gateway_id,
        transport=transport.value,
        name="",
        online=online,
        last_seen_at=at if online else None,
        created_at=at,
    )
    set_: dict[str, Any] = {"online": statement.excluded.online}
    if online:
        set_["last_seen_at"] = _later(Gateway.last_seen_at, statement.excluded.last_seen_at)
    await session.execute(statement.on_conflict_do_update(index_elements=[Gateway.id], set_=set_))


async def list_gateways(session: AsyncSession) -> list[Gateway]:
    """Every gateway, by id."""
    return list((await session.scalars(select(Gateway).order_by(Gateway.id))).all())


async def get_gateway(session: AsyncSession, gateway_id: str) -> Gateway:
    gateway = await session.get(Gateway, gateway_id)
    if gateway is None:
        raise NotFound(f"no gateway {gateway_id!r}")
    return gateway

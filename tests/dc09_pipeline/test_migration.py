"""Migration 0008 on SQLite and PostgreSQL: the events of v1 frames already stored become
``c:<counter>`` (their receptions kept), the database then holds one event per
(device, dedup_key) whatever the source, and the downgrade drops only what the old schema
cannot hold."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from alertnet.db import create_engine
from tests.support.database import alembic_check, downgrade, migrate

AT = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
DEVICE = text(
    "INSERT INTO devices (id, eui, kind, site, name, address, lat, lon, key, "
    "supervision_interval_s, status, window_highest, window_seen, last_format, created_at) "
    "VALUES (:id, :eui, 'panic_button', 'public', '', '', 41.3, 69.2, :key, 900, 'active', "
    "-1, 0, 'binary', :at)"
)
V1_EVENT = text(
    "INSERT INTO events (id, device_id, counter, code, flags, drill, occurred_at, received_at, "
    "reception_count, gateway_ids, first_transport) "
    "VALUES (:id, :device_id, :counter, 'panic', 0, false, :at, :at, 1, '', 'mqtt')"
)
KEYED_EVENT = text(
    "INSERT INTO events (id, device_id, counter, dedup_key, code, flags, drill, occurred_at, "
    "received_at, reception_count, gateway_ids, first_transport) "
    "VALUES (:id, :device_id, :counter, :key, 'panic', 0, false, :at, :at, 1, '', 'dc09')"
)
RECEPTION = text(
    "INSERT INTO receptions (event_id, transport, received_at) VALUES (:event_id, 'mqtt', :at)"
)


async def rows(engine: AsyncEngine, sql: str) -> list[tuple[Any, ...]]:
    async with engine.connect() as connection:
        return [tuple(row) for row in await connection.execute(text(sql))]


async def test_existing_events_become_counter_keys(empty_db_url: str) -> None:
    await migrate(empty_db_url, "0007")
    engine = create_engine(empty_db_url)
    try:
        async with engine.begin() as connection:
            for device_id in (1, 2):
                eui = f"70b3d57ed000000{device_id}"
                await connection.execute(
                    DEVICE, {"id": device_id, "eui": eui, "key": bytes(16), "at": AT}
                )
            for event_id, device_id, counter in [(1, 1, 7), (2, 1, 8), (3, 2, 7)]:
                await connection.execute(
                    V1_EVENT, {"id": event_id, "device_id": device_id, "counter": counter, "at": AT}
                )
            await connection.execute(RECEPTION, {"event_id": 1, "at": AT})

        await migrate(empty_db_url)
        await alembic_check(empty_db_url)
        assert await rows(engine, "SELECT id, device_id, counter, dedup_key FROM events") == [
            (1, 1, 7, "c:7"),
            (2, 1, 8, "c:8"),
            (3, 2, 7, "c:7"),
        ]
        assert await rows(engine, "SELECT event_id FROM receptions") == [(1,)]

        # A panel's message has no counter; a key is unique per device, whatever the source.
        async with engine.begin() as connection:
            panel = {"id": 4, "device_id": 1, "counter": None, "key": "dc09:0001:00aa", "at": AT}
            await connection.execute(KEYED_EVENT, panel)
        with pytest.raises(IntegrityError):
            async with engine.begin() as connection:
                again = {"id": 5, "device_id": 1, "counter": 99, "key": "c:7", "at": AT}
                await connection.execute(KEYED_EVENT, again)

        await downgrade(empty_db_url, "0007")
        assert await rows(engine, "SELECT id, counter FROM events ORDER BY id") == [
            (1, 7),
            (2, 8),
            (3, 7),
        ]
        await migrate(empty_db_url)
        await alembic_check(empty_db_url)
    finally:
        await engine.dispose()

"""A panel account moved to another device, or removed, while the receiver still has it cached
(the 30 s account cache, DESIGN §9.1), on SQLite and PostgreSQL: the batch checks under the row
lock that the device still owns the account, and the intake looks it up again and resubmits
once, so the alarm opens at the account's device now, never at the old one."""

from __future__ import annotations

from sqlalchemy import update

from alertnet.db import unit_of_work
from alertnet.models import Device
from tests.dc09_pipeline.helpers import (
    SessionFactory,
    alerts,
    answer_kind,
    create_panel,
    events,
    panel_intake,
    sia,
)


async def _move(session_factory: SessionFactory, old_id: int, new_id: int | None) -> None:
    async with unit_of_work(session_factory) as session:
        await session.execute(update(Device).where(Device.id == old_id).values(dc09_account=None))
        if new_id is not None:
            await session.flush()
            await session.execute(
                update(Device).where(Device.id == new_id).values(dc09_account="1234")
            )


async def test_an_account_moved_within_the_cache_alarms_at_its_new_device(
    session_factory: SessionFactory,
) -> None:
    async with unit_of_work(session_factory) as session:
        old = await create_panel(session, account="1234")
        new = await create_panel(session, account="5678")
    async with panel_intake(session_factory) as (_pipeline, intake):
        assert answer_kind(await intake.on_frame(sia(1, "NRP"), "p", "tcp")) == "ACK"  # cached
        await _move(session_factory, old.id, new.id)
        assert answer_kind(await intake.on_frame(sia(2, "Nri1/BA501"), "p", "tcp")) == "ACK"
    (alert,) = await alerts(session_factory)
    assert (alert.device_id, alert.category) == (new.id, "intrusion")
    assert [e.code for e in await events(session_factory, new.id)] == ["intrusion"]


async def test_an_account_removed_within_the_cache_gets_duh(
    session_factory: SessionFactory,
) -> None:
    async with unit_of_work(session_factory) as session:
        old = await create_panel(session, account="1234")
    async with panel_intake(session_factory) as (_pipeline, intake):
        assert answer_kind(await intake.on_frame(sia(1, "NRP"), "p", "tcp")) == "ACK"  # cached
        await _move(session_factory, old.id, None)
        assert answer_kind(await intake.on_frame(sia(2, "Nri1/BA501"), "p", "tcp")) == "DUH"
    assert await alerts(session_factory) == []

"""Migration 0010 on SQLite and PostgreSQL, with rows in the tables it changes.

Upgraded, a drill alert and a real alert of one device and category may both be open (the
open-alert index includes ``drill``, DESIGN §2.3). The downgrade cancels the open drill alerts
that share a device and category with an open real one (the old index cannot hold both),
keeps every other alert, and restores the old index; upgrading again gives the models' schema.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from alertnet.db import create_engine, create_session_factory, unit_of_work
from alertnet.models import Alert, Drill
from tests.dispatch.helpers import T0
from tests.support.database import alembic_check, downgrade, migrate
from tests.support.factories import create_alert, create_device, create_mahalla


async def test_downgrade_cancels_only_the_drills_beside_a_real_alert(empty_db_url: str) -> None:
    await migrate(empty_db_url)
    engine = create_engine(empty_db_url)
    session_factory = create_session_factory(engine)
    try:
        async with unit_of_work(session_factory) as session:
            mahalla = await create_mahalla(session)
            drill = Drill(mahalla_id=mahalla.id, started_by="disp", device_count=2, started_at=T0)
            session.add(drill)
            await session.flush()
            both = await create_device(session, mahalla_id=mahalla.id)
            alone = await create_device(session, mahalla_id=mahalla.id)
            real = await create_alert(session, both, opened_at=T0)
            beside = await create_alert(
                session, both, state="offered", drill=True, drill_id=drill.id, opened_at=T0
            )
            lone = await create_alert(session, alone, drill=True, drill_id=drill.id, opened_at=T0)
            ids = {"real": real.id, "beside": beside.id, "lone": lone.id}

        await downgrade(empty_db_url, "0009")
        async with engine.connect() as connection:
            result = await connection.execute(text("SELECT id, state FROM alerts"))
            states = {alert_id: state for alert_id, state in result}
        assert states == {ids["real"]: "new", ids["beside"]: "cancelled", ids["lone"]: "new"}
        # The old index is back: one open alert per device and category, drill or not.
        async with engine.begin() as connection:
            with pytest.raises(IntegrityError):
                await connection.execute(
                    text(
                        "INSERT INTO alerts (device_id, category, priority, state, press_count, "
                        "cancel_count, refusal_count, drill, lat, lon, last_counter, opened_at, "
                        "last_event_at, silent) SELECT device_id, category, priority, 'new', 1, "
                        "0, 0, true, lat, lon, 0, opened_at, last_event_at, silent FROM alerts "
                        f"WHERE id = {ids['real']}"
                    )
                )

        await migrate(empty_db_url)
        await alembic_check(empty_db_url)
        async with unit_of_work(session_factory) as session:
            device = await session.get_one(type(both), both.id)
            again = await create_alert(session, device, drill=True, opened_at=T0)
        async with session_factory() as session:
            open_ones = await session.scalars(
                select(Alert.id).where(Alert.device_id == both.id, Alert.state == "new")
            )
            assert sorted(open_ones) == [ids["real"], again.id]
    finally:
        await engine.dispose()

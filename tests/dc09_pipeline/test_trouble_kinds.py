"""A panel whose trouble alert lists many kinds at once (DESIGN §3, §9.1), on SQLite and
PostgreSQL: the comma-separated list outgrew the old 24-character column on PostgreSQL, the
batch failed and the panel's message was never answered (it retried forever)."""

from __future__ import annotations

from alertnet.db import unit_of_work
from tests.dc09_pipeline.helpers import (
    SessionFactory,
    alerts,
    answer_kind,
    cid,
    create_panel,
    panel_intake,
    sia,
)


async def test_mains_battery_and_an_unknown_code_are_one_trouble_alert(
    session_factory: SessionFactory,
) -> None:
    async with unit_of_work(session_factory) as session:
        await create_panel(session)
    async with panel_intake(session_factory) as (_pipeline, intake):
        send = intake.on_frame
        assert answer_kind(await send(cid(1, "1301 00 000"), "p", "tcp")) == "ACK"
        assert answer_kind(await send(sia(2, "NYT"), "p", "tcp")) == "ACK"
        assert answer_kind(await send(sia(3, "Nri1/ZZ12"), "p", "tcp")) == "ACK"
    (trouble,) = await alerts(session_factory)
    assert (trouble.category, trouble.state) == ("trouble", "new")
    assert trouble.trouble == "mains_lost,low_battery,unknown_code"

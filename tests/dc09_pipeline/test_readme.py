"""The README's DC-09 example is true: alertnet answers its panel message with its answer, and
the command it shows registers such a panel."""

from __future__ import annotations

import re
from pathlib import Path

from alertnet.db import unit_of_work
from alertnet.devices.service import add_device, parse_dc09_key
from tests.dc09_pipeline.helpers import SessionFactory, alerts, events, panel_intake
from tests.support.factories import create_mahalla

README = Path(__file__).resolve().parents[2] / "README.md"


def wire(text: str) -> bytes:
    return text.replace("\\n", "\n").replace("\\r", "\r").encode("ascii")


async def test_the_readme_example_message_gets_the_readme_answer(
    session_factory: SessionFactory,
) -> None:
    section = README.read_text(encoding="utf-8").split("## Connecting alarm panels (SIA DC-09)")[1]
    message = wire(re.search(r"^panel: +(\S+)$", section, re.M)[1])  # type: ignore[index]
    answer = wire(re.search(r"^alertnet: +(\S+)$", section, re.M)[1])  # type: ignore[index]
    command = re.search(r"alertnet device add (.+?)\n\s*```", section, re.S)[1]  # type: ignore[index]
    args = command.replace("\\\n", " ").split()
    options = dict(zip(args[1::2], args[2::2], strict=True))
    async with unit_of_work(session_factory) as session:
        await create_mahalla(session, options["--mahalla"])
        await add_device(
            session,
            args[0],
            kind=options["--kind"],
            lat=float(options["--lat"]),
            lon=float(options["--lon"]),
            mahalla_name=options["--mahalla"],
            site=options["--site"],
            dc09_account=options["--dc09-account"],
        )
    async with panel_intake(session_factory) as (_pipeline, intake):
        assert await intake.on_frame(message, "192.0.2.10:5000", "tcp") == answer
    (event,) = await events(session_factory)
    (alert,) = await alerts(session_factory)
    assert (event.code, alert.category) == ("intrusion", "intrusion")
    assert event.details is not None and event.details["zone"] == "501"
    assert len(parse_dc09_key(options["--dc09-key"])) == 16

"""``alertnet press EUI`` (a device tried without the device) and the newcomer fixes of
``alertnet serve``: a taken port is one clear line and exit 1 before anything is touched, and
the demo's posts start off duty.

In process: the press is signed with the key the database holds and sent to the real app
running its lifespan (``tests.support.asgi``), which answers with the signed ack. End to end:
the real ``alertnet`` command against a real ``alertnet serve`` on a free port, and a real
socket holding the port that ``serve`` is asked for.
"""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

from sqlalchemy import select

from alertnet.cli.press import Pressed, send_press, signed_press
from alertnet.db import unit_of_work
from alertnet.models import Alert, Device
from alertnet.protocol import AckState, EventCode
from tests.support.asgi import AppClient
from tests.support.factories import create_device
from tests.support.polling import eventually
from tests.test_cli import Cli, _serving
from tests.test_cli import fresh_cli as fresh_cli  # the fixture

KEY = bytes(range(16))
EUI = "70b3d57ed000b001"
DEMO_BUTTON = "70b3d57ed0010001"  # Chorsu Bazaar, dome north gate (alertnet.demo)


# --- in process, against the running app -------------------------------------------------------


async def test_a_press_is_signed_with_the_device_key_and_its_ack_checked(
    api: AppClient,
) -> None:
    runtime = api.runtime
    async with unit_of_work(runtime.session_factory) as session:
        await create_device(session, eui=EUI, key=KEY)

    async def press(event: EventCode = EventCode.PANIC, *, drill: bool = False) -> Pressed:
        async with runtime.session_factory() as session:
            uplink, key = await signed_press(session, EUI.upper(), event, drill=drill, counter=None)
        return await send_press(api, uplink, key)

    first = await press()
    assert first.ack_valid and first.ack.state == AckState.RECEIVED
    assert (first.uplink.counter, first.ack.counter) == (0, 0)  # a device never heard before
    assert first.uplink.verify(KEY)

    # Each run is a new press: the counter follows what the server has seen.
    second = await press()
    assert (second.uplink.counter, second.ack.counter) == (1, 1) and second.ack_valid
    drill = await press(EventCode.FIRE, drill=True)
    assert drill.uplink.counter == 2 and drill.uplink.drill and drill.ack_valid

    async def alerts() -> list[tuple[str, bool, int]]:
        async with runtime.session_factory() as session:
            rows = await session.execute(
                select(Alert.category, Alert.drill, Alert.press_count)
                .join(Device, Device.id == Alert.device_id)
                .where(Device.eui == EUI)
                .order_by(Alert.id)
            )
            return [(category, drill, count) for category, drill, count in rows]

    assert await alerts() == [("panic", False, 2), ("fire", True, 1)]


async def test_the_same_counter_again_is_acknowledged_not_pressed_twice(api: AppClient) -> None:
    runtime = api.runtime
    async with unit_of_work(runtime.session_factory) as session:
        await create_device(session, eui=EUI, key=KEY)
    for _ in range(2):
        async with runtime.session_factory() as session:
            uplink, key = await signed_press(session, EUI, EventCode.PANIC, drill=False, counter=41)
        pressed = await send_press(api, uplink, key)
        assert pressed.ack.counter == 41 and pressed.ack_valid
    async with runtime.session_factory() as session:
        counts = list(
            await session.scalars(select(Alert.press_count).join(Device).where(Device.eui == EUI))
        )
    assert counts == [1]


# --- end to end: the command, a server, a port ---------------------------------------------------


def test_press_against_alertnet_serve_prints_the_ack(fresh_cli: Cli, tmp_path: Path) -> None:
    with _serving(fresh_cli, tmp_path, "--demo") as served:
        url = f"http://127.0.0.1:{served.port}"
        ran = fresh_cli("press", DEMO_BUTTON, "--url", url)
        assert ran.code == 0, ran.err
        lines = ran.out.splitlines()
        assert lines[0] == (f"sent panic from {DEMO_BUTTON}, counter 0, to {url}/api/v1/uplinks"), (
            ran.out
        )
        assert lines[2].endswith("counter 0, state received (1), MIC valid"), ran.out
        drill = fresh_cli("press", DEMO_BUTTON, "--event", "fire", "--drill", "--url", url)
        assert drill.code == 0 and "sent fire (drill)" in drill.out and "counter 1," in drill.out

        unknown = fresh_cli("press", "70b3d57ed00fffff", "--url", url)
        assert unknown.code == 1 and "no device 70b3d57ed00fffff" in unknown.err
        bad = fresh_cli("press", "not-an-eui", "--url", url)
        assert bad.code == 1 and "EUI must be 16 hex characters" in bad.err

        # The demo's posts are off duty until a crew goes on duty: nobody was offered it.
        def escalated() -> bool:
            rows = fresh_cli.query(
                "SELECT a.state FROM alerts a JOIN devices d ON d.id = a.device_id "
                "WHERE d.eui = ? AND a.drill = 0",
                DEMO_BUTTON,
            )
            return rows == [("escalated",)]

        asyncio.run(eventually(escalated, awaiting="the press to escalate", timeout_s=20))
    assert fresh_cli.query("SELECT DISTINCT status FROM posts") == [("off_duty",)]
    assert fresh_cli.query("SELECT count(*) FROM offers") == [(0,)]

    # No server any more: one line saying so, exit 1.
    gone = fresh_cli("press", DEMO_BUTTON, "--url", url)
    assert gone.code == 1 and f"no alertnet answers at {url}" in gone.err


def test_serve_on_a_taken_port_says_so_and_exits_1(fresh_cli: Cli) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        ran = fresh_cli("serve", "--demo", "--port", str(port), timeout_s=30)
    assert ran.code == 1
    assert ran.err.splitlines() == [
        f"error: cannot serve on 127.0.0.1:{port}: the port is already in use "
        "(is alertnet already running?)",
        f"hint: stop the other server, or pick a free port: alertnet serve --port {port + 1} "
        f"(or make run PORT={port + 1})",
    ]
    # It stopped before anything else: no database was created or migrated, nothing printed.
    assert not fresh_cli.db_path.exists()
    assert ran.out == ""
    assert time.monotonic() - started < 20

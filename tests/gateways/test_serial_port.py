"""A serial gateway whose USB adapter is unplugged and plugged back (a pty behind a symlink)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.db import unit_of_work
from alertnet.models import Event, Gateway, Quarantine
from alertnet.protocol import EventCode, Uplink, format_rcv
from tests.support.factories import create_device
from tests.support.polling import eventually

from .helpers import EUI, KEY, FakeModule, running_alertnet

SessionFactory = async_sessionmaker[AsyncSession]
GATEWAY = "/dev/ttyUSB0"  # a bare path is its own gateway id (DESIGN §2.5)


def _line(counter: int) -> bytes:
    return format_rcv(5, Uplink.build(KEY, EUI, counter, EventCode.TEST).to_bytes(), -88, 6)


async def _counters(session_factory: SessionFactory) -> list[int]:
    async with session_factory() as session:
        return list((await session.scalars(select(Event.counter).order_by(Event.counter))).all())


async def _online(session_factory: SessionFactory) -> bool | None:
    async with session_factory() as session:
        return await session.scalar(select(Gateway.online).where(Gateway.id == GATEWAY))


async def test_unplug_and_replug_loses_nothing_written_after_the_port_is_back(
    session_factory: SessionFactory, tmp_path: Path
) -> None:
    async with unit_of_work(session_factory) as session:
        await create_device(session, eui=EUI, key=KEY)
    module = FakeModule(tmp_path, "ttyUSB0")
    try:
        async with running_alertnet(session_factory, serial={GATEWAY: module.path}) as net:
            bridge = net.bridges[GATEWAY]
            await net.wait_ports_open()
            await eventually(
                lambda: _online(session_factory),
                lambda online: online is True,
                awaiting="the gateway to be online",
            )
            for counter in range(1, 11):
                await module.write(_line(counter))
            await eventually(
                lambda: _counters(session_factory),
                lambda c: len(c) == 10,
                awaiting="presses 1-10 stored",
            )
            read_so_far = bridge.module.port.bytes_read
            await module.write(_line(11)[:30])  # mid-line when the cable is pulled
            await eventually(
                lambda: bridge.module.port.bytes_read == read_so_far + 30,
                awaiting="the port to read the 30 bytes of half a line",
            )

            module.unplug()
            await eventually(
                lambda: _online(session_factory),
                lambda online: online is False,
                awaiting="the unplugged gateway to be offline",
            )
            assert not bridge.online
            await asyncio.sleep(0.3)  # a few failed re-opens on a path that is gone

            module.plug()
            await eventually(
                lambda: bridge.online and bridge.module.port.opens == 2,
                awaiting="the bridge to reopen the replugged port",
            )
            await eventually(
                lambda: _online(session_factory),
                lambda online: online is True,
                awaiting="the replugged gateway to be online again",
            )
            for counter in range(12, 40):
                await module.write(_line(counter))
            counters = await eventually(
                lambda: _counters(session_factory),
                lambda c: len(c) == 38,
                awaiting="38 presses stored",
            )
            # The module's acks went out through the port that is open now.
            await module.wait_sends(28)
    finally:
        module.close()
    assert counters == [*range(1, 11), *range(12, 40)]
    assert (bridge.module.port.opens, bridge.module.port.losses) == (2, 1)
    async with session_factory() as session:
        quarantined = (await session.execute(select(Quarantine.reason, Quarantine.raw))).all()
        assert quarantined == [("bad_line", _line(11)[:30])]
        gateway = await session.get(Gateway, GATEWAY)
        assert gateway is not None
        assert (gateway.transport, gateway.online) == ("serial", True)
        assert gateway.last_seen_at is not None


async def test_a_path_that_now_names_another_device_is_reopened(
    session_factory: SessionFactory, tmp_path: Path
) -> None:
    """udev can re-point a link while the old descriptor still looks fine: watch the path."""
    async with unit_of_work(session_factory) as session:
        await create_device(session, eui=EUI, key=KEY)
    old = FakeModule(tmp_path, "ttyUSB1")
    new: FakeModule | None = None
    try:
        async with running_alertnet(
            session_factory,
            serial={"gw-1": old.path},
            bridge_options={"watch_interval_s": 0.05},
        ) as net:
            bridge = net.bridges["gw-1"]
            await net.wait_ports_open()
            await old.write(_line(1))
            await eventually(
                lambda: _counters(session_factory), lambda c: c == [1], awaiting="press 1 stored"
            )
            new = FakeModule(tmp_path, "ttyUSB1")  # re-points the link; the old pty lives on
            await eventually(
                lambda: bridge.module.port.opens == 2 and bridge.online,
                awaiting="the bridge to open the re-pointed link",
            )
            await new.write(_line(2))
            await eventually(
                lambda: _counters(session_factory),
                lambda c: c == [1, 2],
                awaiting="press 2 stored through the new pty",
            )
    finally:
        old.close()
        if new is not None:
            new.close()
    assert bridge.module.port.losses == 1
    async with session_factory() as session:
        assert await session.scalar(select(func.count()).select_from(Quarantine)) == 0

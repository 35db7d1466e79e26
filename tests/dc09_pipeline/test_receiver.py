"""The DC-09 receiver on real sockets in front of the pipeline, on SQLite and PostgreSQL: a
persistent TCP connection carrying several messages gets its answers in order, a UDP panel gets
its answer as a datagram, and garbage on the line is quarantined."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from alertnet.db import unit_of_work
from alertnet.ingest.dc09.intake import Dc09Intake
from alertnet.ingest.dc09.receiver import Receiver
from tests.dc09_pipeline.helpers import (
    KEY_128,
    SessionFactory,
    alerts,
    answer_kind,
    cid,
    create_panel,
    events,
    null,
    panel_intake,
    quarantined,
    sia,
)
from tests.support.polling import eventually


@contextlib.asynccontextmanager
async def receiver(intake: Dc09Intake) -> AsyncIterator[Receiver]:
    server = Receiver("127.0.0.1", 0, intake.on_frame, intake.on_garbage)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def read_answers(reader: asyncio.StreamReader, count: int) -> list[bytes]:
    answers = []
    for _ in range(count):
        async with asyncio.timeout(10):
            answers.append(await reader.readuntil(b"\r"))
    return answers


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.received: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.received.put_nowait(data)


async def test_a_persistent_tcp_connection_gets_every_answer_in_order(
    session_factory: SessionFactory,
) -> None:
    async with unit_of_work(session_factory) as session:
        await create_panel(session, account="1234")
    async with panel_intake(session_factory) as (_pipeline, intake), receiver(intake) as server:
        assert server.tcp_port is not None
        reader, writer = await asyncio.open_connection("127.0.0.1", server.tcp_port)
        try:
            writer.write(cid(1, "1130 01 015") + b"noise\r\n" + sia(2, "Nri1/OP2"))
            writer.write(sia(3, "Nri1/BA7", account="FFFF") + null(4))
            await writer.drain()
            answers = await read_answers(reader, 4)
        finally:
            writer.close()
    assert [answer_kind(a) for a in answers] == ["ACK", "ACK", "DUH", "ACK"]
    assert [a.split(b'"')[2][:4] for a in answers] == [b"0001", b"0002", b"0003", b"0004"]
    assert [e.code for e in await events(session_factory)] == ["intrusion", "opening"]
    assert len(await alerts(session_factory)) == 1
    reasons = sorted(row.reason for row in await quarantined(session_factory))
    assert reasons == ["bad_frame", "unknown_account"]


async def test_a_udp_panel_gets_its_encrypted_ack(session_factory: SessionFactory) -> None:
    async with unit_of_work(session_factory) as session:
        await create_panel(session, account="0042", key=KEY_128)
    async with panel_intake(session_factory) as (_pipeline, intake), receiver(intake) as server:
        assert server.udp_port is not None
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.create_datagram_endpoint(
            _Datagrams, remote_addr=("127.0.0.1", server.udp_port)
        )
        try:
            transport.sendto(sia(9, "Nri2/FA3", account="0042", key=KEY_128))
            async with asyncio.timeout(10):
                answer = await protocol.received.get()
        finally:
            transport.close()
    assert answer_kind(answer, KEY_128) == "ACK" and b'"*ACK"0009L0#0042[' in answer
    (alert,) = await alerts(session_factory)
    assert alert.category == "fire"


async def test_a_frame_whose_connection_drops_is_still_committed(
    session_factory: SessionFactory,
) -> None:
    async with unit_of_work(session_factory) as session:
        await create_panel(session)
    async with panel_intake(session_factory) as (_pipeline, intake), receiver(intake) as server:
        assert server.tcp_port is not None
        _reader, writer = await asyncio.open_connection("127.0.0.1", server.tcp_port)
        writer.write(cid(1, "1120 01 001"))
        await writer.drain()
        writer.transport.abort()  # gone before any answer
        await eventually(
            lambda: alerts(session_factory), awaiting="the panic of a panel that hung up"
        )

"""The DC-09 receiver on real 127.0.0.1 sockets: TCP (one-shot and persistent) and UDP, every
answer type, garbage, and the limits that keep one hostile connection from delaying another.

``on_frame`` is a small fake (``ReferenceIntake``, or a blocking one where a test needs it); the
real intake is tested with the pipeline in ``tests/dc09_pipeline``. Timing assertions are
behavioural: "answered while the other connection is still open", never "within N ms".
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio

from alertnet.config import parse_listen
from alertnet.ingest.dc09.frame import encode_message, parse_answer
from alertnet.ingest.dc09.receiver import (
    FrameSplitter,
    Piece,
    Receiver,
    ReceiverLimits,
)
from alertnet.metrics import Metrics
from alertnet.supervisor import TaskSupervisor
from tests.support.polling import eventually

from .helpers import ReferenceIntake

HOST = "127.0.0.1"
KEY = bytes(range(16))
SAFETY_S = 30.0  # only so that a broken receiver fails the test instead of hanging it

Factory = Callable[..., Awaitable[Receiver]]


def alarm(seq: int, account: str = "1234", **options: object) -> bytes:
    return encode_message("SIA-DCS", seq, account, f"#{account}|Nri1/BA50{seq % 10}", **options)  # type: ignore[arg-type]


@pytest_asyncio.fixture
async def start_receiver() -> AsyncIterator[Factory]:
    receivers: list[Receiver] = []

    async def start(
        on_frame: Callable[[bytes, str, str], Awaitable[bytes | None]],
        on_garbage: Callable[[bytes, str, str], Awaitable[None]] | None = None,
        **limits: float,
    ) -> Receiver:
        receiver = Receiver(
            HOST,
            0,
            on_frame,
            on_garbage,
            limits=ReceiverLimits(**limits),  # type: ignore[arg-type]
        )
        await receiver.start()
        receivers.append(receiver)
        return receiver

    yield start
    for receiver in receivers:
        await receiver.stop()


@pytest.fixture
def intake() -> ReferenceIntake:
    return ReferenceIntake({"1234": None, "BEEF": KEY})


async def read_answer(reader: asyncio.StreamReader) -> bytes:
    async with asyncio.timeout(SAFETY_S):
        return await reader.readuntil(b"\r")


_CLIENTS: list[asyncio.StreamWriter] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    for writer in _CLIENTS:
        # A client the test closed itself may have finished closing: asyncio's transport
        # must not be aborted then (its loop is gone; abort() raises AttributeError).
        if not writer.transport.is_closing():
            writer.transport.abort()
    _CLIENTS.clear()


async def connect(receiver: Receiver) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    assert receiver.tcp_port is not None
    reader, writer = await asyncio.open_connection(HOST, receiver.tcp_port)
    _CLIENTS.append(writer)
    return reader, writer


async def closed_by_peer(reader: asyncio.StreamReader) -> bool:
    async with asyncio.timeout(SAFETY_S):
        with contextlib.suppress(ConnectionError):
            while await reader.read(65536):
                pass
    return True


# -- the ordinary cases -------------------------------------------------------------------------


async def test_one_shot_tcp(start_receiver: Factory, intake: ReferenceIntake) -> None:
    receiver = await start_receiver(intake.on_frame, intake.on_garbage)
    reader, writer = await connect(receiver)
    writer.write(alarm(1))
    answer = parse_answer(await read_answer(reader))
    assert (answer.kind, answer.seq, answer.account) == ("ACK", "0001", "1234")
    writer.close()
    assert intake.accepted[0][3] == "tcp"


async def test_persistent_tcp_answers_in_order(
    start_receiver: Factory, intake: ReferenceIntake
) -> None:
    receiver = await start_receiver(intake.on_frame, intake.on_garbage)
    reader, writer = await connect(receiver)
    writer.write(b"".join(alarm(seq) for seq in range(1, 51)))
    seqs = [parse_answer(await read_answer(reader)).seq for _ in range(50)]
    assert seqs == [f"{seq:04d}" for seq in range(1, 51)]
    writer.write(alarm(51))  # and it stays open for more
    assert parse_answer(await read_answer(reader)).seq == "0051"
    writer.close()
    assert receiver.stats.connections_opened == 1


async def test_every_answer_type_over_tcp(start_receiver: Factory, intake: ReferenceIntake) -> None:
    receiver = await start_receiver(intake.on_frame, intake.on_garbage)
    reader, writer = await connect(receiver)
    now = datetime.now(UTC)
    writer.write(alarm(1, "BEEF", key=KEY, timestamp=now))
    star = parse_answer(await read_answer(reader), KEY)
    assert (star.kind, star.encrypted, star.seq) == ("ACK", True, "0001")
    writer.write(alarm(2, "BEEF", key=KEY, timestamp=now - timedelta(minutes=5)))
    assert parse_answer(await read_answer(reader)).kind == "NAK"
    writer.write(alarm(3, "FFFF"))
    duh = parse_answer(await read_answer(reader))
    assert (duh.kind, duh.seq, duh.account) == ("DUH", "0003", "FFFF")
    # Bad CRC and bad length: silence; the next frame on the same connection is answered.
    writer.write(alarm(4).replace(b"BA504", b"BA505"))
    writer.write(alarm(5)[:5] + b"0000" + alarm(5)[9:])
    writer.write(alarm(6))
    assert parse_answer(await read_answer(reader)).seq == "0006"
    assert intake.refused == ["bad_timestamp", "duh", "bad_crc", "bad_length"]
    writer.close()


async def test_udp(start_receiver: Factory, intake: ReferenceIntake) -> None:
    receiver = await start_receiver(intake.on_frame, intake.on_garbage)
    assert receiver.udp_port == receiver.tcp_port
    loop = asyncio.get_running_loop()
    answers: asyncio.Queue[bytes] = asyncio.Queue()

    class Client(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: object) -> None:
            answers.put_nowait(data)

    transport, _ = await loop.create_datagram_endpoint(
        Client, remote_addr=(HOST, receiver.udp_port)
    )
    try:
        transport.sendto(b"junk that is no frame")
        transport.sendto(alarm(7, "BEEF", key=KEY))
        async with asyncio.timeout(SAFETY_S):
            answer = parse_answer(await answers.get(), KEY)
        assert (answer.kind, answer.seq, answer.encrypted) == ("ACK", "0007", True)
        assert intake.accepted[-1][3] == "udp"
        await eventually(lambda: intake.garbage, awaiting="UDP garbage reported")
        assert intake.garbage[0][2] == "garbage"
    finally:
        transport.close()


async def test_garbage_between_frames_is_reported_and_frames_still_answered(
    start_receiver: Factory, intake: ReferenceIntake
) -> None:
    receiver = await start_receiver(intake.on_frame, intake.on_garbage)
    reader, writer = await connect(receiver)
    writer.write(b"GET / HTTP/1.0" + alarm(1) + b"\r\n\x00 " + b'\n05520028"SIA' + alarm(2))
    assert parse_answer(await read_answer(reader)).seq == "0001"
    assert parse_answer(await read_answer(reader)).seq == "0002"
    reasons = [reason for _raw, _peer, reason in intake.garbage]
    assert reasons == ["garbage", "truncated"]  # blank bytes are not garbage
    assert intake.garbage[0][0] == b"GET / HTTP/1.0"
    writer.close()


async def test_line_too_long(start_receiver: Factory, intake: ReferenceIntake) -> None:
    receiver = await start_receiver(intake.on_frame, intake.on_garbage, max_line_bytes=200)
    reader, writer = await connect(receiver)
    writer.write(b"\n" + b"A" * 500)
    writer.write(b"B" * 500 + b"\r" + alarm(1))
    assert parse_answer(await read_answer(reader)).seq == "0001"
    assert [g[2] for g in intake.garbage] == ["line_too_long"]
    assert len(intake.garbage[0][0]) <= 1024
    writer.close()


async def test_handler_error_is_silence_not_a_dead_connection(start_receiver: Factory) -> None:
    calls = 0

    async def on_frame(raw: bytes, peer: str, transport: str) -> bytes | None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("database went away")
        return b"\nANSWER\r"

    receiver = await start_receiver(on_frame)
    reader, writer = await connect(receiver)
    writer.write(alarm(1) + alarm(2))
    assert await read_answer(reader) == b"\nANSWER\r"
    assert receiver.stats.handler_errors == 1
    writer.close()


# -- one connection cannot hold up another ------------------------------------------------------


async def test_garbage_flood_does_not_delay_another_panel(
    start_receiver: Factory, intake: ReferenceIntake
) -> None:
    receiver = await start_receiver(
        intake.on_frame, intake.on_garbage, max_garbage_bytes=10**12, max_garbage_reports=3
    )
    _hostile_reader, hostile = await connect(receiver)
    sent = 0
    flooding = asyncio.Event()

    async def flood() -> None:
        nonlocal sent
        chunk = (b"\x00\xff garbage \n half a frame" * 2000)[:60000]
        while True:
            hostile.write(chunk)
            await hostile.drain()
            sent += len(chunk)
            if sent > 1_000_000:
                flooding.set()

    flooder = asyncio.create_task(flood())
    try:
        await asyncio.wait_for(flooding.wait(), SAFETY_S)
        reader, writer = await connect(receiver)
        writer.write(alarm(1))
        answer = parse_answer(await read_answer(reader))
        assert answer.kind == "ACK"
        # Answered while the flood goes on: the hostile peer is still connected and sending.
        assert not flooder.done()
        assert receiver.stats.connections_open == 2
        hostile_bytes_then = receiver.stats.garbage_bytes
        await eventually(
            lambda: receiver.stats.garbage_bytes > hostile_bytes_then,
            awaiting="the flood still being read",
        )
        assert len(intake.garbage) == 3  # reports capped; the rest only counted
        writer.close()
    finally:
        flooder.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await flooder
        hostile.close()


async def test_garbage_allowance_closes_the_flooding_connection(
    start_receiver: Factory, intake: ReferenceIntake
) -> None:
    receiver = await start_receiver(intake.on_frame, intake.on_garbage, max_garbage_bytes=10_000)
    reader, writer = await connect(receiver)
    with contextlib.suppress(ConnectionError):
        for _ in range(20):
            writer.write(b"x" * 5000 + b"\n")
            await writer.drain()
    assert await closed_by_peer(reader)
    await eventually(
        lambda: receiver.stats.connections_closed.get("garbage_flood"), awaiting="flood close"
    )


async def test_slow_loris_does_not_delay_another_panel_and_is_cut(
    start_receiver: Factory, intake: ReferenceIntake
) -> None:
    receiver = await start_receiver(intake.on_frame, intake.on_garbage, frame_timeout_s=1.0)
    slow_reader, slow = await connect(receiver)
    slow.write(b"\n0552")  # a frame begun, never finished
    await slow.drain()
    reader, writer = await connect(receiver)
    writer.write(alarm(1))
    assert parse_answer(await read_answer(reader)).seq == "0001"
    assert receiver.stats.connections_open == 2  # answered while the slow one hangs on
    assert await closed_by_peer(slow_reader)  # then its unfinished frame runs out of time
    await eventually(
        lambda: receiver.stats.connections_closed.get("frame_timeout"), awaiting="timeout"
    )
    assert ("truncated") in [g[2] for g in intake.garbage]
    writer.close()


async def test_idle_connection_is_closed(start_receiver: Factory, intake: ReferenceIntake) -> None:
    receiver = await start_receiver(intake.on_frame, idle_timeout_s=0.5)
    reader, writer = await connect(receiver)
    writer.write(alarm(1))
    assert parse_answer(await read_answer(reader)).seq == "0001"
    assert await closed_by_peer(reader)
    assert receiver.stats.connections_closed == {"idle_timeout": 1}


async def test_in_flight_limit_stops_reading_only_that_connection(start_receiver: Factory) -> None:
    release = asyncio.Event()
    seen: list[str] = []

    async def on_frame(raw: bytes, peer: str, transport: str) -> bytes | None:
        account = raw.split(b"#", 1)[1].split(b"[", 1)[0].decode()
        seen.append(account)
        if account == "DEAD":
            await release.wait()
        return raw

    raw_frames = [encode_message("NULL", seq, "DEAD", "") for seq in range(1, 6)]
    receiver = await start_receiver(on_frame, max_in_flight=2)
    slow_reader, slow = await connect(receiver)
    slow.write(b"".join(raw_frames))
    await eventually(lambda: seen.count("DEAD") == 2, awaiting="two frames in flight")
    reader, writer = await connect(receiver)
    writer.write(encode_message("NULL", 1, "1234", ""))
    assert await read_answer(reader)  # the other panel is answered…
    assert seen.count("DEAD") == 2  # …while the full one is not even read further
    release.set()
    echoed = [await read_answer(slow_reader) for _ in range(5)]
    assert echoed == raw_frames  # all of them, in arrival order
    slow.close()
    writer.close()


async def test_answers_keep_arrival_order(start_receiver: Factory) -> None:
    second_done = asyncio.Event()

    async def on_frame(raw: bytes, peer: str, transport: str) -> bytes | None:
        if b"0001" in raw[9:20]:
            await second_done.wait()  # the first finishes last
        else:
            second_done.set()
        return raw

    receiver = await start_receiver(on_frame)
    reader, writer = await connect(receiver)
    first, second = alarm(1), alarm(2)
    writer.write(first + second)
    assert [await read_answer(reader), await read_answer(reader)] == [first, second]
    writer.close()


async def test_frame_is_processed_even_if_its_connection_is_gone(start_receiver: Factory) -> None:
    release = asyncio.Event()
    done: list[bytes] = []

    async def on_frame(raw: bytes, peer: str, transport: str) -> bytes | None:
        await release.wait()
        done.append(raw)  # e.g. the commit of the alarm
        return raw

    receiver = await start_receiver(on_frame)
    _reader, writer = await connect(receiver)
    writer.write(alarm(1))
    await eventually(lambda: receiver.stats.frames.get("tcp"), awaiting="frame dispatched")
    writer.transport.abort()  # the panel gives up before the answer
    release.set()
    await eventually(lambda: done, awaiting="processing finished")
    await eventually(lambda: receiver.stats.connections_open == 0, awaiting="connection gone")


async def test_max_connections(start_receiver: Factory, intake: ReferenceIntake) -> None:
    receiver = await start_receiver(intake.on_frame, max_connections=2)
    kept = [await connect(receiver) for _ in range(2)]
    await eventually(lambda: receiver.stats.connections_open == 2, awaiting="two connections")
    refused_reader, _refused = await connect(receiver)
    assert await closed_by_peer(refused_reader)
    assert receiver.stats.connections_refused == 1
    reader, writer = kept[0]
    writer.write(alarm(1))
    assert parse_answer(await read_answer(reader)).seq == "0001"
    for _reader, kept_writer in kept:
        kept_writer.close()


async def test_udp_in_flight_limit_per_peer(start_receiver: Factory) -> None:
    release = asyncio.Event()

    async def on_frame(raw: bytes, peer: str, transport: str) -> bytes | None:
        await release.wait()
        return raw

    receiver = await start_receiver(on_frame, max_in_flight=1)
    assert receiver.udp_port is not None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        for seq in (1, 2, 3):
            client.sendto(alarm(seq), (HOST, receiver.udp_port))
        await eventually(
            lambda: receiver.stats.frames.get("udp", 0) + receiver.stats.udp_dropped == 3,
            awaiting="three datagrams seen",
        )
        assert receiver.stats.udp_dropped == 2
        release.set()
        client.settimeout(SAFETY_S)
        answer = await asyncio.to_thread(client.recv, 4096)
    assert answer == alarm(1)


# -- pieces and plumbing ------------------------------------------------------------------------


def test_splitter_is_independent_of_chunking() -> None:
    stream = b"xx" + alarm(1) + b"\n123" + alarm(2) + b"\r\n" + b"\n" + b"y" * 50
    whole = FrameSplitter(2048)
    expected = whole.feed(stream) + whole.flush()
    for size in (1, 2, 3, 7, 64):
        splitter = FrameSplitter(2048)
        pieces: list[Piece] = []
        for start in range(0, len(stream), size):
            pieces += splitter.feed(stream[start : start + size])
        pieces += splitter.flush()
        assert pieces == expected
    assert [p.kind for p in expected] == ["garbage", "frame", "garbage", "frame", "garbage"]
    assert [p.reason for p in expected if p.kind == "garbage"] == [
        "garbage",
        "truncated",
        "truncated",
    ]


def test_parse_listen() -> None:
    assert parse_listen("0.0.0.0:5100") == ("0.0.0.0", 5100)
    assert parse_listen(":5100") == ("0.0.0.0", 5100)
    assert parse_listen("[::1]:5100") == ("::1", 5100)
    for bad in ("5100", "host:", "host:port", "h:70000"):
        with pytest.raises(ValueError):
            parse_listen(bad)


async def test_runs_under_the_task_supervisor(intake: ReferenceIntake) -> None:
    receiver = Receiver(HOST, 0, intake.on_frame, intake.on_garbage)
    supervisor = TaskSupervisor(Metrics())
    supervisor.add("dc09", receiver.run)
    supervisor.start()
    try:
        await eventually(lambda: receiver.tcp_port, awaiting="receiver bound")
        reader, writer = await connect(receiver)
        writer.write(alarm(1))
        assert parse_answer(await read_answer(reader)).kind == "ACK"
        writer.close()
        assert supervisor.problems() == {}
    finally:
        assert await supervisor.stop(5.0) == []
    # Stopped: nothing listens any more.
    with pytest.raises(OSError):
        await asyncio.open_connection(HOST, receiver.tcp_port)

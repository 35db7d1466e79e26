"""The SIA DC-09 network receiver: TCP and UDP on one ``host:port`` (DESIGN §9.1, §14).

A transport only. It cuts the byte stream into ``LF … CR`` frames, hands each one to an
injected ``on_frame(raw, peer, transport)`` (``transport`` is ``"tcp"`` or ``"udp"``) and
sends back whatever answer that returns (``None``: silence). It never parses a frame's
contents: CRC, length, accounts and answers are ``on_frame``'s (``dc09.intake``). Bytes outside
frames go to ``on_garbage(raw, peer, reason)`` for quarantine, ``reason`` one of
``garbage`` (between frames), ``truncated`` (a frame cut off by the next LF, the end of the
connection or its time running out), ``line_too_long``.

One slow or hostile connection never delays another panel (each TCP connection is its own
task, and every wait is bounded per connection, ``ReceiverLimits``):

- a connection may have ``max_in_flight`` frames waiting for their answers; beyond that it is
  simply not read (TCP backpressure on that peer only). Answers go out in arrival order.
- ``idle_timeout_s`` without a byte closes a connection that waits for nothing;
  ``frame_timeout_s`` bounds an unfinished frame or garbage line (slow loris);
  ``write_timeout_s`` drops a peer that does not read its answers;
- garbage is reported at most ``max_garbage_reports`` times per connection (then only
  counted), and ``max_garbage_bytes`` of it closes the connection;
- at ``max_connections`` open connections a new one is closed at once;
- UDP: at most ``max_in_flight`` frames per peer and ``max_udp_in_flight`` in all await their
  answers; beyond, a datagram is dropped (the panel retries).

A frame whose connection closes before its answer is still processed to the end (the alarm is
committed; the panel's retry is then a duplicate). ``run()`` is the task for
``TaskSupervisor``: it binds, serves until cancelled, and stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final, Literal, cast

__all__ = [
    "FrameSplitter",
    "OnFrame",
    "OnGarbage",
    "Piece",
    "Receiver",
    "ReceiverLimits",
    "ReceiverStats",
]

log = logging.getLogger(__name__)

OnFrame = Callable[[bytes, str, str], Awaitable[bytes | None]]
OnGarbage = Callable[[bytes, str, str], Awaitable[None]]

LF: Final = 0x0A
CR: Final = 0x0D
#: Garbage is reported with at most this many of its bytes (the quarantine keeps 1 KiB).
REPORT_BYTES: Final = 1024
_READ_CHUNK: Final = 65536
_BLANK: Final = frozenset(b" \t\r\n\x00")
_UDP_REPORT_PERIOD_S: Final = 60.0
_MAX_GARBAGE_TASKS: Final = 64


@dataclass(frozen=True, slots=True)
class ReceiverLimits:
    max_line_bytes: int = 2048
    max_in_flight: int = 16
    max_connections: int = 2000
    idle_timeout_s: float = 300.0
    frame_timeout_s: float = 10.0
    write_timeout_s: float = 10.0
    drain_timeout_s: float = 30.0
    max_garbage_reports: int = 8
    max_garbage_bytes: int = 65536
    max_udp_in_flight: int = 1000

    def __post_init__(self) -> None:
        if self.max_line_bytes < 32 or self.max_in_flight < 1 or self.max_connections < 1:
            raise ValueError("limits too small to receive a DC-09 frame")


@dataclass(slots=True)
class ReceiverStats:
    """Counters since start (the runtime may export them)."""

    connections_opened: int = 0
    connections_open: int = 0
    connections_refused: int = 0
    connections_closed: dict[str, int] = field(default_factory=dict)  # by why
    frames: dict[str, int] = field(default_factory=dict)  # by transport
    answers: int = 0
    no_answer: int = 0
    handler_errors: int = 0
    garbage_pieces: dict[str, int] = field(default_factory=dict)  # by reason
    garbage_bytes: int = 0
    garbage_reports: int = 0
    udp_dropped: int = 0

    def _bump(self, counter: dict[str, int], key: str) -> None:
        counter[key] = counter.get(key, 0) + 1


@dataclass(frozen=True, slots=True)
class Piece:
    """A frame (``reason`` empty) or garbage (``reason`` says which) cut from the stream.
    ``size`` is the garbage's full length; ``data`` holds at most ``REPORT_BYTES`` of it."""

    kind: Literal["frame", "garbage"]
    data: bytes
    reason: str = ""
    size: int = 0


class FrameSplitter:
    """Cuts a byte stream into ``LF … CR`` frames and the garbage around them.

    A frame starts at LF and ends at the first CR after it; a second LF before that CR cuts the
    first frame off (``truncated``), so one damaged frame never swallows the next. A line whose
    CR (or next LF) is not within ``max_line_bytes`` is ``line_too_long``: its first
    ``max_line_bytes + 1`` bytes are reported and the rest is skipped up to the next CR or LF
    (``skipped_bytes`` counts them). Garbage between frames comes in pieces of at most
    ``max_line_bytes``; whitespace and NULs between frames are ignored. What comes out does not
    depend on how the stream was chunked.
    """

    def __init__(self, max_line_bytes: int) -> None:
        self.max_line_bytes = max_line_bytes
        self.skipped_bytes = 0
        self._buffer = bytearray()
        self._skipping = False

    @property
    def pending(self) -> bool:
        """Whether an unfinished frame, line or garbage run is held back (or being skipped)."""
        return bool(self._buffer) or self._skipping

    def feed(self, data: bytes) -> list[Piece]:
        buffer = self._buffer
        buffer += data
        pieces: list[Piece] = []
        limit = self.max_line_bytes
        while buffer:
            if self._skipping:
                stops = [i for i in (buffer.find(b"\n"), buffer.find(b"\r")) if i >= 0]
                if not stops:
                    self.skipped_bytes += len(buffer)
                    buffer.clear()
                    break
                stop = min(stops)
                stop += buffer[stop] == CR  # a CR ends the long line; an LF starts the next
                self.skipped_bytes += stop
                del buffer[:stop]
                self._skipping = False
                continue
            lf = buffer.find(b"\n")
            if lf != 0:  # garbage up to the next LF, in pieces of at most ``limit`` bytes
                end = lf if lf > 0 else len(buffer)
                if end > limit:
                    end = limit
                elif lf < 0:
                    break  # wait: it may still grow, or an LF may come
                self._garbage(pieces, buffer[:end], "garbage")
                del buffer[:end]
                continue
            cr = buffer.find(b"\r", 1, limit)  # a frame is at most ``limit`` bytes
            next_lf = buffer.find(b"\n", 1, limit + 1)
            if next_lf > 0 and (cr < 0 or next_lf < cr):
                self._garbage(pieces, buffer[:next_lf], "truncated")
                del buffer[:next_lf]
            elif cr > 0:
                pieces.append(Piece("frame", bytes(buffer[: cr + 1]), "", cr + 1))
                del buffer[: cr + 1]
            elif len(buffer) > limit:
                self._garbage(pieces, buffer[: limit + 1], "line_too_long")
                del buffer[: limit + 1]
                self._skipping = True
            else:
                break  # an unfinished frame: wait for the rest
        return pieces

    def flush(self) -> list[Piece]:
        """The end of the stream: what is held back is garbage (``truncated`` if a frame)."""
        pieces: list[Piece] = []
        if self._buffer:
            reason = "truncated" if self._buffer[0] == LF else "garbage"
            self._garbage(pieces, self._buffer, reason)
        self._buffer = bytearray()
        self._skipping = False
        return pieces

    @staticmethod
    def _garbage(pieces: list[Piece], data: bytes | bytearray, reason: str) -> None:
        if _BLANK.issuperset(data):
            return
        pieces.append(Piece("garbage", bytes(data[:REPORT_BYTES]), reason, len(data)))


@dataclass(slots=True)
class _Connection:
    peer: str
    writer: asyncio.StreamWriter
    slots: asyncio.Semaphore
    answers: asyncio.Queue[asyncio.Task[bytes | None] | None] = field(default_factory=asyncio.Queue)
    in_flight: int = 0
    garbage_reports: int = 0
    garbage_bytes: int = 0
    broken: bool = False


class _UdpEndpoint(asyncio.DatagramProtocol):
    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Python 3.11's selector transport is not a DatagramTransport subclass.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.receiver._datagram(data, addr)

    def error_received(self, exc: Exception) -> None:  # ICMP unreachable from a gone panel
        log.debug("DC-09 UDP error: %s", exc)


def _peer_text(address: object) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        host, port = address[0], address[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(address)


class Receiver:
    """TCP and UDP DC-09 endpoints on ``host:port``; see the module docstring."""

    def __init__(
        self,
        host: str,
        port: int,
        on_frame: OnFrame,
        on_garbage: OnGarbage | None = None,
        *,
        limits: ReceiverLimits | None = None,
        udp: bool = True,
    ) -> None:
        self.host = host
        self.port = port
        self.on_frame = on_frame
        self.on_garbage = on_garbage
        self.limits = limits or ReceiverLimits()
        self.udp = udp
        self.stats = ReceiverStats()
        self.tcp_port: int | None = None
        self.udp_port: int | None = None
        self._server: asyncio.Server | None = None
        self._udp: _UdpEndpoint | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._frame_tasks: set[asyncio.Task[bytes | None]] = set()
        self._garbage_tasks: set[asyncio.Task[None]] = set()
        self._udp_in_flight: dict[str, int] = {}
        self._udp_reports: dict[str, int] = {}
        self._udp_reports_reset_at = 0.0
        self._stopping = False

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind TCP, then UDP on the same port (with port 0, the port TCP was given)."""
        for attempt in range(5):
            try:
                await self._bind()
                break
            except OSError:
                if self.port != 0 or attempt == 4:
                    raise  # with port 0, another ephemeral port may be free for both
        log.info("DC-09 receiver on %s:%s (TCP%s)", self.host, self.tcp_port, "+UDP" * self.udp)

    async def _bind(self) -> None:
        self._server = await asyncio.start_server(
            self._serve_connection, self.host, self.port, limit=_READ_CHUNK
        )
        sockets = self._server.sockets
        self.tcp_port = int(sockets[0].getsockname()[1]) if sockets else self.port
        if self.udp:
            loop = asyncio.get_running_loop()
            try:
                _transport, endpoint = await loop.create_datagram_endpoint(
                    lambda: _UdpEndpoint(self), local_addr=(self.host, self.tcp_port)
                )
            except BaseException:
                self._server.close()
                raise
            self._udp = endpoint
            assert endpoint.transport is not None
            self.udp_port = int(endpoint.transport.get_extra_info("sockname")[1])

    async def stop(self, timeout_s: float = 5.0) -> None:
        """Stop listening, end every connection and every frame still being processed."""
        self._stopping = True
        if self._server is not None:
            self._server.close()
        if self._udp is not None and self._udp.transport is not None:
            self._udp.transport.close()
        pending = [*self._connections, *self._frame_tasks, *self._garbage_tasks]
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=timeout_s)
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout_s):
                    await self._server.wait_closed()
        self._server = None
        self._udp = None
        self._stopping = False

    async def run(self) -> None:
        """Serve until cancelled (the ``TaskSupervisor`` task); a bind error propagates."""
        await self.start()
        try:
            await asyncio.Future()  # forever
        finally:
            await self.stop()

    # -- frames ---------------------------------------------------------------------------------

    def _spawn_frame(self, raw: bytes, peer: str, transport: str) -> asyncio.Task[bytes | None]:
        self.stats._bump(self.stats.frames, transport)
        task = asyncio.create_task(self._answer(raw, peer, transport))
        self._frame_tasks.add(task)
        task.add_done_callback(self._frame_tasks.discard)
        return task

    async def _answer(self, raw: bytes, peer: str, transport: str) -> bytes | None:
        try:
            answer = await self.on_frame(raw, peer, transport)
        except Exception:
            self.stats.handler_errors += 1
            log.exception("DC-09 frame handler failed for a frame from %s", peer)
            return None
        if answer is None:
            self.stats.no_answer += 1
        return answer

    async def _report(self, piece: Piece, peer: str) -> None:
        if self.on_garbage is None:
            return
        self.stats.garbage_reports += 1
        try:
            await self.on_garbage(piece.data, peer, piece.reason)
        except Exception:
            log.exception("DC-09 garbage handler failed for %s", peer)

    def _count_garbage(self, piece: Piece) -> None:
        self.stats._bump(self.stats.garbage_pieces, piece.reason)
        self.stats.garbage_bytes += piece.size

    # -- TCP ------------------------------------------------------------------------------------

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        peer = _peer_text(writer.get_extra_info("peername"))
        if len(self._connections) >= self.limits.max_connections:
            self.stats.connections_refused += 1
            writer.transport.abort()
            return
        self._connections.add(task)
        self.stats.connections_opened += 1
        self.stats.connections_open += 1
        connection = _Connection(peer, writer, asyncio.Semaphore(self.limits.max_in_flight))
        answering = asyncio.create_task(self._write_answers(connection))
        why = "error"
        try:
            why = await self._read_frames(connection, reader)
            if why == "eof":  # the peer is done sending: its answers still go out
                connection.answers.put_nowait(None)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.limits.drain_timeout_s):
                        await asyncio.shield(answering)
        except (ConnectionError, OSError):
            why = "reset"
        except asyncio.CancelledError:
            why = "stopped"
            if not self._stopping:
                raise
            # Ours to end: returning (not raising) keeps asyncio's stream machinery from
            # logging every connection cancelled by stop() as an error.
        finally:
            answering.cancel()
            if why == "eof":
                writer.close()
            else:
                writer.transport.abort()
            self._connections.discard(task)
            self.stats.connections_open -= 1
            self.stats._bump(self.stats.connections_closed, why)

    async def _read_frames(self, connection: _Connection, reader: asyncio.StreamReader) -> str:
        """Read until the peer is done or breaks a limit; returns why it ended."""
        limits = self.limits
        splitter = FrameSplitter(limits.max_line_bytes)
        unfinished_since: float | None = None
        while not connection.broken:
            if unfinished_since is None:
                wait_s = limits.idle_timeout_s
            else:
                wait_s = max(0.0, unfinished_since + limits.frame_timeout_s - time.monotonic())
            try:
                async with asyncio.timeout(wait_s):
                    data = await reader.read(_READ_CHUNK)
            except TimeoutError:
                if unfinished_since is not None:
                    await self._pieces(connection, splitter.flush())
                    return "frame_timeout"
                if connection.in_flight:
                    continue  # quiet because it waits for its answers, not idle
                return "idle_timeout"
            if not data:
                await self._pieces(connection, splitter.flush())
                return "eof"
            skipped_before = splitter.skipped_bytes
            if not await self._pieces(connection, splitter.feed(data)):
                return "garbage_flood"
            skipped = splitter.skipped_bytes - skipped_before  # the tail of an over-long line
            if skipped:
                self.stats.garbage_bytes += skipped
                connection.garbage_bytes += skipped
                if connection.garbage_bytes > limits.max_garbage_bytes:
                    return "garbage_flood"
            if splitter.pending:
                unfinished_since = unfinished_since or time.monotonic()
            else:
                unfinished_since = None
        return "write_failed"

    async def _pieces(self, connection: _Connection, pieces: list[Piece]) -> bool:
        """Dispatch frames, report garbage; False once the garbage allowance is spent."""
        for piece in pieces:
            if piece.kind == "frame":
                await connection.slots.acquire()  # in flight full: stop reading this peer
                connection.in_flight += 1
                connection.answers.put_nowait(self._spawn_frame(piece.data, connection.peer, "tcp"))
                continue
            self._count_garbage(piece)
            connection.garbage_bytes += piece.size
            if connection.garbage_reports < self.limits.max_garbage_reports:
                connection.garbage_reports += 1
                await self._report(piece, connection.peer)
            if connection.garbage_bytes > self.limits.max_garbage_bytes:
                return False
        return True

    async def _write_answers(self, connection: _Connection) -> None:
        writer = connection.writer
        while True:
            task = await connection.answers.get()
            if task is None:
                return
            try:
                await asyncio.wait({task})  # never cancels the frame's processing
                answer = task.result() if not task.cancelled() else None
                if answer and not connection.broken:
                    writer.write(answer)
                    async with asyncio.timeout(self.limits.write_timeout_s):
                        await writer.drain()
                    self.stats.answers += 1
            except (ConnectionError, OSError, TimeoutError):
                connection.broken = True
                writer.transport.abort()
            finally:
                connection.in_flight -= 1
                connection.slots.release()

    # -- UDP ------------------------------------------------------------------------------------

    def _datagram(self, data: bytes, address: tuple[str | int, ...]) -> None:
        peer = _peer_text(address)
        splitter = FrameSplitter(self.limits.max_line_bytes)
        for piece in [*splitter.feed(data), *splitter.flush()]:
            if piece.kind == "garbage":
                self._count_garbage(piece)
                self._udp_garbage(piece, peer)
                continue
            in_flight = self._udp_in_flight.get(peer, 0)
            total = sum(self._udp_in_flight.values())
            if in_flight >= self.limits.max_in_flight or total >= self.limits.max_udp_in_flight:
                self.stats.udp_dropped += 1
                continue
            self._udp_in_flight[peer] = in_flight + 1
            task = self._spawn_frame(piece.data, peer, "udp")
            task.add_done_callback(functools.partial(self._udp_answered, address, peer))

    def _udp_answered(
        self, address: tuple[str | int, ...], peer: str, task: asyncio.Task[bytes | None]
    ) -> None:
        left = self._udp_in_flight.get(peer, 1) - 1
        if left > 0:
            self._udp_in_flight[peer] = left
        else:
            self._udp_in_flight.pop(peer, None)
        if task.cancelled() or self._udp is None or self._udp.transport is None:
            return
        answer = task.result()
        if answer:
            self._udp.transport.sendto(answer, address)
            self.stats.answers += 1

    def _udp_garbage(self, piece: Piece, peer: str) -> None:
        now = time.monotonic()
        if now - self._udp_reports_reset_at > _UDP_REPORT_PERIOD_S:
            self._udp_reports.clear()
            self._udp_reports_reset_at = now
        reported = self._udp_reports.get(peer, 0)
        if reported >= self.limits.max_garbage_reports:
            return
        if len(self._garbage_tasks) >= _MAX_GARBAGE_TASKS:
            return
        self._udp_reports[peer] = reported + 1
        task = asyncio.create_task(self._report(piece, peer))
        self._garbage_tasks.add(task)
        task.add_done_callback(self._garbage_tasks.discard)

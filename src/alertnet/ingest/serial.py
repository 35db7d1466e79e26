"""Serial LoRa gateways: REYAX-style UART modules on local ports (DESIGN §2.5).

Three layers, so that alertnet's in-process bridge and the standalone ``alertnet gateway``
process share one implementation of the port and the module:

- ``SerialPort`` reads a non-blocking pyserial port with ``loop.add_reader``, splits lines,
  writes through an outgoing buffer with ``loop.add_writer`` (never blocking the loop), and
  re-opens the port with capped backoff when it vanishes (read error, EOF, the path gone or
  pointing at another device: a USB unplug).
- ``ReyaxModule`` speaks the module's AT protocol on top: ``+RCV`` lines become packets,
  malformed lines and unsolicited ``+ERR`` become ``DecodeError`` values for quarantine,
  ``send()`` writes ``AT+SEND`` and waits for the module's ``+OK``/``+ERR``.
- ``SerialBridge`` is the alertnet consumer: packets go to the ingest pipeline with the
  gateway id, RSSI and SNR, bad lines to quarantine, port state to the gateway registry, and
  committed outcomes to the downlink router.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import Counter
from collections.abc import Callable
from enum import StrEnum
from functools import partial
from typing import Final, Protocol

import serial

from alertnet.errors import InvalidInput
from alertnet.gateways.registry import GatewayRegistry
from alertnet.gateways.service import MAX_GATEWAY_ID_CHARS
from alertnet.ingest.downlinks import DownlinkRouter
from alertnet.ingest.pipeline import Disposition, Outcome, Pipeline, RawUplink
from alertnet.models import Transport
from alertnet.protocol import (
    DecodeError,
    LineSplitter,
    ModuleStatus,
    Reason,
    Received,
    format_send,
    parse_line,
)

__all__ = [
    "BAUDRATE",
    "ModuleListener",
    "PortClosedError",
    "ReyaxModule",
    "SendResult",
    "SerialBridge",
    "SerialPort",
]

log = logging.getLogger(__name__)

BAUDRATE: Final = 115200
_READ_CHUNK: Final = 4096
#: Bytes queued for the module beyond which a write is refused (the module stopped reading).
_MAX_OUTGOING_BYTES: Final = 16 * 1024


class PortClosedError(ConnectionError):
    """The serial port is not open (unplugged, or not yet re-opened)."""


class SerialPort:
    """One serial device, read line by line and re-opened whenever it goes away.

    ``on_line`` receives each complete line (see ``LineSplitter``), ``on_state`` True after
    every open and False after every loss. Both run inside the event loop and must not block.
    """

    def __init__(
        self,
        path: str,
        on_line: Callable[[bytes], None],
        *,
        on_state: Callable[[bool], None] | None = None,
        baudrate: int = BAUDRATE,
        backoff_first_s: float = 0.1,
        backoff_max_s: float = 5.0,
        watch_interval_s: float = 1.0,
    ) -> None:
        self.path = path
        self._on_line = on_line
        self._on_state = on_state
        self._baudrate = baudrate
        self._backoff_first_s = backoff_first_s
        self._backoff_max_s = backoff_max_s
        self._watch_interval_s = watch_interval_s
        self._splitter = LineSplitter()
        self._port: serial.Serial | None = None
        self._fd = -1
        self._device = 0  # st_rdev of the open device, to notice the path pointing elsewhere
        self._outgoing = bytearray()
        self._writing = False
        self._reading = False
        self._paused = False
        self._lost = asyncio.Event()
        self.opened = asyncio.Event()
        self.opens = 0
        self.losses = 0
        self.bytes_read = 0
        self.line_errors = 0
        self.pauses = 0

    @property
    def is_open(self) -> bool:
        return self._port is not None and not self._lost.is_set()

    async def run(self) -> None:
        """Open, serve until the port is lost, close, back off, forever."""
        backoff_s = self._backoff_first_s
        failures = 0
        while True:
            try:
                self._open()
            except (OSError, serial.SerialException) as exc:
                failures += 1
                (log.warning if failures == 1 else log.debug)(
                    "serial port %s cannot be opened (%s); retrying in %.1fs",
                    self.path,
                    exc,
                    backoff_s,
                )
                await asyncio.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, self._backoff_max_s)
                continue
            failures = 0
            backoff_s = self._backoff_first_s
            try:
                await self._serve()
            finally:
                self._close()
            await asyncio.sleep(backoff_s)

    def write(self, data: bytes) -> bool:
        """Queue bytes for the port; False if too much is already waiting.

        Raises ``PortClosedError`` when the port is not open. Never blocks: what the device
        does not take at once is written when it becomes writable.
        """
        if not self.is_open:
            raise PortClosedError(f"{self.path} is not open")
        if len(self._outgoing) + len(data) > _MAX_OUTGOING_BYTES:
            return False
        self._outgoing += data
        if not self._writing:
            self._flush_outgoing()
        return True

    def pause_reading(self) -> None:
        """Stop reading (back-pressure: the kernel and the module buffer meanwhile)."""
        if not self._paused:
            self.pauses += 1
        self._paused = True
        self._stop_reading()

    def resume_reading(self) -> None:
        self._paused = False
        if self._port is not None and not self._lost.is_set():
            self._start_reading()

    # -- opening and closing --------------------------------------------------------------

    def _open(self) -> None:
        # O_NONBLOCK open and termios set-up: quick even on a real USB adapter.
        port = serial.Serial(self.path, self._baudrate, timeout=0, write_timeout=0)
        try:
            fd = port.fileno()
            os.set_blocking(fd, False)
            self._device = os.fstat(fd).st_rdev
        except BaseException:
            port.close()
            raise
        self._port = port
        self._fd = fd
        self._lost.clear()
        self.opens += 1
        if not self._paused:
            self._start_reading()
        log.info("serial port %s open", self.path)
        self.opened.set()
        if self._on_state is not None:
            self._on_state(True)

    def _close(self) -> None:
        self._stop_reading()
        self._stop_writing()
        port, self._port = self._port, None
        self._fd = -1
        self._outgoing.clear()
        self.opened.clear()
        if port is not None:
            try:
                port.close()
            except (OSError, serial.SerialException) as exc:
                log.debug("closing %s: %s", self.path, exc)
        partial_line = self._splitter.reset()
        if partial_line:
            # The bytes of a line cut off by the loss are bad input like any other.
            self._deliver(partial_line)
        if self._on_state is not None:
            self._on_state(False)

    async def _serve(self) -> None:
        """Return when the port is lost; also notice the path vanishing or being replaced."""
        while not self._lost.is_set():
            try:
                await asyncio.wait_for(self._lost.wait(), self._watch_interval_s)
            except TimeoutError:
                if not self._path_still_ours():
                    self._mark_lost("the path is gone or now names another device")

    def _path_still_ours(self) -> bool:
        try:
            return os.stat(self.path).st_rdev == self._device
        except OSError:
            return False

    def _mark_lost(self, why: object) -> None:
        if self._lost.is_set():
            return
        self.losses += 1
        log.warning("serial port %s lost: %s", self.path, why)
        # Stop watching at once: a hung-up descriptor stays "readable" and would spin the loop.
        self._stop_reading()
        self._stop_writing()
        self._lost.set()

    # -- reading ---------------------------------------------------------------------------

    def _start_reading(self) -> None:
        if not self._reading and self._fd >= 0:
            asyncio.get_running_loop().add_reader(self._fd, self._read_ready)
            self._reading = True

    def _stop_reading(self) -> None:
        if self._reading:
            asyncio.get_running_loop().remove_reader(self._fd)
            self._reading = False

    def _read_ready(self) -> None:
        try:
            chunk = os.read(self._fd, _READ_CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._mark_lost(exc)
            return
        if not chunk:
            self._mark_lost("end of file")
            return
        self.bytes_read += len(chunk)
        for line in self._splitter.feed(chunk):
            self._deliver(line)

    def _deliver(self, line: bytes) -> None:
        try:
            self._on_line(line)
        except Exception:
            # A handler bug must not kill the reader; it is counted and logged.
            self.line_errors += 1
            log.exception("serial line handler failed on %s", self.path)

    # -- writing ---------------------------------------------------------------------------

    def _flush_outgoing(self) -> None:
        if self._fd < 0:
            return
        try:
            written = os.write(self._fd, self._outgoing)
        except (BlockingIOError, InterruptedError):
            written = 0
        except OSError as exc:
            self._mark_lost(exc)
            return
        del self._outgoing[:written]
        if self._outgoing:
            if not self._writing:
                asyncio.get_running_loop().add_writer(self._fd, self._flush_outgoing)
                self._writing = True
        else:
            self._stop_writing()

    def _stop_writing(self) -> None:
        if self._writing:
            asyncio.get_running_loop().remove_writer(self._fd)
            self._writing = False


class SendResult(StrEnum):
    """What became of one ``AT+SEND``."""

    OK = "ok"  # the module answered +OK
    ERROR = "error"  # the module answered +ERR=<n>
    TIMEOUT = "timeout"  # no answer in time
    PORT_CLOSED = "port_closed"  # the port was not open, or went away while waiting
    BUSY = "busy"  # too many bytes already waiting for the port
    REJECTED = "rejected"  # the frame cannot be sent (empty or too long for the module)


class ModuleListener(Protocol):
    """What a ``ReyaxModule`` reports; called inside the event loop, must not block."""

    def packet_received(self, packet: Received, line: bytes) -> None: ...

    def bad_line(self, line: bytes, error: DecodeError) -> None: ...

    def port_state_changed(self, online: bool) -> None: ...


class ReyaxModule:
    """A REYAX RYLR-style LoRa module on a serial port: packets in, ``AT+SEND`` out.

    Counters (plain attributes, for metrics and tests): ``packets``, ``bad_lines`` (per
    quarantine reason), ``statuses`` (unsolicited ``+OK`` and ``+READY``) and ``downlinks``
    (per ``SendResult``).
    """

    def __init__(
        self,
        path: str,
        listener: ModuleListener,
        *,
        response_timeout_s: float = 2.0,
        backoff_first_s: float = 0.1,
        backoff_max_s: float = 5.0,
        watch_interval_s: float = 1.0,
    ) -> None:
        self._listener = listener
        self._response_timeout_s = response_timeout_s
        self.port = SerialPort(
            path,
            self._on_line,
            on_state=self._on_state,
            backoff_first_s=backoff_first_s,
            backoff_max_s=backoff_max_s,
            watch_interval_s=watch_interval_s,
        )
        self._send_lock = asyncio.Lock()
        self._awaiting: asyncio.Future[ModuleStatus] | None = None
        self.packets = 0
        self.bad_lines: Counter[Reason] = Counter()
        self.statuses: Counter[str] = Counter()
        self.downlinks: Counter[SendResult] = Counter()

    @property
    def path(self) -> str:
        return self.port.path

    async def run(self) -> None:
        await self.port.run()

    async def send(self, frame: bytes) -> SendResult:
        """Transmit ``frame`` (``AT+SEND=0,<len>,<hex>``) and wait for the module's answer.

        One command at a time: the module's ``+OK``/``+ERR`` carry no tag, so the next
        command waits until this one is answered or timed out.
        """
        try:
            command = format_send(frame)
        except DecodeError as exc:
            log.warning("downlink not sent on %s: %s", self.path, exc)
            self.downlinks[SendResult.REJECTED] += 1
            return SendResult.REJECTED
        async with self._send_lock:
            result = await self._command(command)
        self.downlinks[result] += 1
        if result is not SendResult.OK:
            log.warning("downlink on %s: %s", self.path, result.value)
        return result

    async def _command(self, command: bytes) -> SendResult:
        awaiting: asyncio.Future[ModuleStatus] = asyncio.get_running_loop().create_future()
        self._awaiting = awaiting
        try:
            if not self.port.write(command):
                return SendResult.BUSY
            status = await asyncio.wait_for(awaiting, self._response_timeout_s)
        except PortClosedError:
            return SendResult.PORT_CLOSED
        except TimeoutError:
            return SendResult.TIMEOUT
        finally:
            self._awaiting = None
        return SendResult.OK if status.kind == "ok" else SendResult.ERROR

    def _on_line(self, line: bytes) -> None:
        try:
            parsed = parse_line(line)
        except DecodeError as exc:
            self._bad(line, exc)
            return
        if isinstance(parsed, Received):
            self.packets += 1
            self._listener.packet_received(parsed, line)
            return
        awaiting = self._awaiting
        if parsed.kind != "ready" and awaiting is not None and not awaiting.done():
            awaiting.set_result(parsed)
            return
        if parsed.kind == "error":
            self._bad(line, DecodeError(Reason.MODULE_ERROR, f"unsolicited +ERR={parsed.code}"))
            return
        self.statuses[parsed.kind] += 1
        if parsed.kind == "ready":
            log.info("LoRa module on %s (re)started", self.path)

    def _bad(self, line: bytes, error: DecodeError) -> None:
        self.bad_lines[error.reason] += 1
        self._listener.bad_line(line, error)

    def _on_state(self, online: bool) -> None:
        awaiting = self._awaiting
        if not online and awaiting is not None and not awaiting.done():
            awaiting.set_exception(PortClosedError(f"{self.path} went away"))
        self._listener.port_state_changed(online)


class SerialBridge:
    """A serial LoRa gateway inside alertnet: one per ``ALERTNET_SERIAL`` entry.

    Every ``+RCV`` frame is submitted to the pipeline at once (the reader never waits for a
    commit); the outcome, when its batch commits, is counted and handed to the downlink
    router. Past ``max_in_flight`` uncommitted submissions the bridge stops reading until
    the pipeline catches up, so memory stays bounded. Downlinks the router queues here go
    out one by one as ``AT+SEND``.
    """

    def __init__(
        self,
        gateway_id: str,
        path: str,
        *,
        pipeline: Pipeline,
        registry: GatewayRegistry,
        router: DownlinkRouter | None = None,
        max_in_flight: int = 2000,
        max_queued_downlinks: int = 64,
        response_timeout_s: float = 2.0,
        backoff_first_s: float = 0.1,
        backoff_max_s: float = 5.0,
        watch_interval_s: float = 1.0,
    ) -> None:
        if not 0 < len(gateway_id) <= MAX_GATEWAY_ID_CHARS:
            raise InvalidInput(
                f"serial gateway id must be 1..{MAX_GATEWAY_ID_CHARS} characters: {gateway_id!r}"
            )
        self.gateway_id = gateway_id
        self._pipeline = pipeline
        self._registry = registry
        self._router = router
        self._max_in_flight = max_in_flight
        self._downlinks: asyncio.Queue[bytes] = asyncio.Queue(max_queued_downlinks)
        self.module = ReyaxModule(
            path,
            self,
            response_timeout_s=response_timeout_s,
            backoff_first_s=backoff_first_s,
            backoff_max_s=backoff_max_s,
            watch_interval_s=watch_interval_s,
        )
        self.in_flight = 0
        self.outcomes: Counter[Disposition] = Counter()
        if router is not None:
            router.add_serial_gateway(gateway_id, self)

    @property
    def path(self) -> str:
        return self.module.path

    @property
    def online(self) -> bool:
        return self.module.port.is_open

    @property
    def bad_lines(self) -> Counter[Reason]:
        return self.module.bad_lines

    async def run(self) -> None:
        """The bridge's long-lived task: the port, and the downlink sender."""
        self._registry.set_state(self.gateway_id, Transport.SERIAL, online=False)
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self.module.run())
            tasks.create_task(self._send_downlinks())

    async def send(self, frame: bytes) -> SendResult:
        """Write ``AT+SEND`` for ``frame`` now and wait for the module's answer."""
        return await self.module.send(frame)

    def queue_downlink(self, frame: bytes) -> bool:
        """Queue ``frame`` for transmission; False when the port is down or the queue full."""
        if not self.online:
            return False
        try:
            self._downlinks.put_nowait(frame)
        except asyncio.QueueFull:
            return False
        return True

    async def _send_downlinks(self) -> None:
        while True:
            await self.send(await self._downlinks.get())

    # -- ModuleListener -----------------------------------------------------------------------

    def packet_received(self, packet: Received, line: bytes) -> None:
        raw = RawUplink(
            packet.data,
            Transport.SERIAL,
            gateway_id=self.gateway_id,
            rssi=packet.rssi,
            snr=packet.snr,
            source=self.path,
        )
        self._registry.seen(self.gateway_id, Transport.SERIAL, raw.received_at)
        self._track(raw, self._pipeline.submit(raw))

    def bad_line(self, line: bytes, error: DecodeError) -> None:
        raw = RawUplink(line, Transport.SERIAL, gateway_id=self.gateway_id, source=self.path)
        self._track(raw, self._pipeline.submit(raw, rejected=error))

    def port_state_changed(self, online: bool) -> None:
        self._registry.set_state(self.gateway_id, Transport.SERIAL, online)
        if not online:
            # Queued acks would go out late through a module that may have been swapped.
            while not self._downlinks.empty():
                self._downlinks.get_nowait()

    # -- outcomes -----------------------------------------------------------------------------

    def _track(self, raw: RawUplink, future: asyncio.Future[Outcome]) -> None:
        self.in_flight += 1
        if self.in_flight >= self._max_in_flight:
            self.module.port.pause_reading()
        future.add_done_callback(partial(self._committed, raw))

    def _committed(self, raw: RawUplink, future: asyncio.Future[Outcome]) -> None:
        self.in_flight -= 1
        if self.in_flight <= self._max_in_flight // 2:
            self.module.port.resume_reading()
        if future.cancelled():
            return  # the pipeline is shutting down
        if (error := future.exception()) is not None:
            log.error("uplink from %s failed in the pipeline: %r", self.gateway_id, error)
            return
        outcome = future.result()
        self.outcomes[outcome.disposition] += 1
        if self._router is not None:
            self._router.uplink_committed(outcome, raw)

"""A serial port read line by line without blocking the loop, and re-opened when it goes away.

``SerialPort`` reads a non-blocking pyserial port with ``loop.add_reader``, splits lines,
writes through an outgoing buffer with ``loop.add_writer``, and re-opens the port on the
shared reconnect schedule (``alertnet.reconnect``) when it vanishes: a read error, end
of file, or the path gone or pointing at another device (a USB unplug, DESIGN §2.5). It knows
nothing of what the lines mean; ``ReyaxModule`` (``module.py``) does.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from typing import Final

import serial

from alertnet.protocol import LineSplitter
from alertnet.reconnect import RECONNECT_SCHEDULE, BackoffSchedule, Reconnector

__all__ = ["BAUDRATE", "PortClosedError", "SerialPort"]

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
        reopen_backoff: BackoffSchedule = RECONNECT_SCHEDULE,
        watch_interval_s: float = 1.0,
    ) -> None:
        self.path = path
        self._on_line = on_line
        self._on_state = on_state
        self._baudrate = baudrate
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
        self._reconnector = Reconnector(
            f"serial port {path}",
            expected=(OSError, serial.SerialException),
            schedule=reopen_backoff,
        )
        #: Set while the port is open (the reconnector's flag: it clears it after each loss).
        self.opened = self._reconnector.connected
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
        await self._reconnector.run(self._open_and_serve)

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

    async def _open_and_serve(self) -> None:
        """One attempt of ``run``: open the port and serve it until it is lost."""
        self._open()
        try:
            await self._serve()
        finally:
            self._close()

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
        self._reconnector.mark_connected()
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
                async with asyncio.timeout(self._watch_interval_s):
                    await self._lost.wait()
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

"""A REYAX RYLR-style LoRa module on a serial port: its AT protocol (DESIGN §2.5).

``ReyaxModule`` turns the lines its ``SerialPort`` reads into packets (``+RCV``) and bad
lines (malformed lines and unsolicited ``+ERR``, as ``DecodeError`` values for quarantine) for
a ``ModuleListener``, and writes downlinks as ``AT+SEND``, waiting for the module's
``+OK``/``+ERR``. alertnet's in-process ``SerialBridge`` and the standalone ``alertnet
gateway`` relay are its two listeners.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from enum import StrEnum
from typing import Protocol

from alertnet.ingest.serial.port import PortClosedError, SerialPort
from alertnet.protocol import (
    DecodeError,
    ModuleStatus,
    Reason,
    Received,
    format_send,
    parse_line,
)
from alertnet.reconnect import RECONNECT_SCHEDULE, BackoffSchedule

__all__ = ["ModuleListener", "ReyaxModule", "SendResult"]

log = logging.getLogger(__name__)


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
        reopen_backoff: BackoffSchedule = RECONNECT_SCHEDULE,
        watch_interval_s: float = 1.0,
    ) -> None:
        self._listener = listener
        self._response_timeout_s = response_timeout_s
        self.port = SerialPort(
            path,
            self._on_line,
            on_state=self._on_state,
            reopen_backoff=reopen_backoff,
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
            async with asyncio.timeout(self._response_timeout_s):
                status = await awaiting
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

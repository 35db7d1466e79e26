"""The module's answers to ``AT+SEND``: ``+OK``, ``+ERR``, silence, and no port at all."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from alertnet.ingest.serial import ReyaxModule, SendResult
from alertnet.protocol import DecodeError, Received, format_rcv
from tests.support.polling import eventually

from .helpers import FakeModule

FRAME = bytes.fromhex("8170b3d57ed00012340000002a01952c5ddb")


class Listener:
    def __init__(self) -> None:
        self.packets: list[Received] = []
        self.bad: list[DecodeError] = []
        self.states: list[bool] = []

    def packet_received(self, packet: Received, line: bytes) -> None:
        self.packets.append(packet)

    def bad_line(self, line: bytes, error: DecodeError) -> None:
        self.bad.append(error)

    def port_state_changed(self, online: bool) -> None:
        self.states.append(online)


@contextlib.asynccontextmanager
async def _running(module: ReyaxModule) -> AsyncIterator[ReyaxModule]:
    task = asyncio.create_task(module.run())
    try:
        yield module
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_send_reports_what_the_module_answered(tmp_path: Path) -> None:
    fake = FakeModule(tmp_path, "ttyUSB9", answer=b"+ERR=5\r\n")
    listener = Listener()
    module = ReyaxModule(fake.path, listener, response_timeout_s=0.2)
    try:
        async with _running(module):
            assert await module.send(FRAME) is SendResult.PORT_CLOSED  # not open yet
            await module.port.opened.wait()
            assert await module.send(FRAME) is SendResult.ERROR
            fake._answer = b"+OK\r\n"
            assert await module.send(FRAME) is SendResult.OK
            fake._answer = None  # a module that hangs
            assert await module.send(FRAME) is SendResult.TIMEOUT
            assert await module.send(b"") is SendResult.REJECTED
            # An answer that comes too late is an unsolicited one: quarantined, not matched.
            await fake.write(b"+ERR=5\r\n" + format_rcv(1, FRAME, -80, 2))
            await eventually(lambda: len(listener.packets) == 1, awaiting="one packet heard")
            fake.unplug()
            await eventually(
                lambda: listener.states == [True, False],
                awaiting="the listener to hear the port open, then close",
            )
            assert await module.send(FRAME) is SendResult.PORT_CLOSED
    finally:
        fake.close()
    assert fake.sends() == [FRAME] * 3
    assert [error.reason.value for error in listener.bad] == ["module_error"]
    assert module.downlinks == {
        SendResult.PORT_CLOSED: 2,
        SendResult.ERROR: 1,
        SendResult.OK: 1,
        SendResult.TIMEOUT: 1,
        SendResult.REJECTED: 1,
    }

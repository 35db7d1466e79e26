"""Test doubles at the edge only: a pty standing in for a LoRa module, and a running alertnet.

``FakeModule`` owns the master side of a real pty and a symlink to its slave (the stand-in
for ``/dev/ttyUSB0``); it prints what a REYAX module prints and records what alertnet writes,
answering ``AT+SEND`` with ``+OK`` like the module does. ``running_alertnet`` wires the real
pipeline, gateway registry, downlink router, MQTT ingest and serial bridges the way the
application does, and runs them as tasks for the duration of a test.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import tty
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.config import Settings
from alertnet.gateways.registry import GatewayRegistry
from alertnet.ingest.downlinks import DownlinkRouter
from alertnet.ingest.mqtt import MqttIngest
from alertnet.ingest.mqtt_client import MqttPurpose, mqtt_login
from alertnet.ingest.pipeline import Pipeline
from alertnet.ingest.serial import SerialBridge
from alertnet.metrics import Metrics
from tests.support.polling import eventually

KEY = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
EUI = "70b3d57ed0001234"
AT_SEND = re.compile(rb"AT\+SEND=0,(\d+),([0-9a-f]+)\r\n")


class FakeModule:
    """The module's side of a pty, reachable by alertnet through ``link``."""

    def __init__(self, directory: Path, name: str, *, answer: bytes | None = b"+OK\r\n") -> None:
        self.link = directory / name
        self._answer = answer
        self._master = -1
        self._slave = -1
        self._pending = bytearray()
        self.written = bytearray()  # everything alertnet wrote to the module
        self._wrote = asyncio.Event()
        self.plug()

    @property
    def path(self) -> str:
        return str(self.link)

    def plug(self) -> None:
        """A fresh pty behind ``link`` (replacing the link atomically, like udev would)."""
        master, slave = os.openpty()
        tty.setraw(slave)  # a UART has no line discipline: no echo, no CR/LF translation
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        staging = self.link.with_name(self.link.name + ".new")
        staging.unlink(missing_ok=True)
        staging.symlink_to(os.ttyname(slave))
        os.replace(staging, self.link)
        asyncio.get_running_loop().add_reader(master, self._readable)

    def unplug(self) -> None:
        """Close both ends and remove the link, as udev removes the node of an unplugged device.

        alertnet's descriptor hangs up. (A dangling link could otherwise name a pty that
        another process allocates next under the same number.)
        """
        self.link.unlink(missing_ok=True)
        if self._master < 0:
            return
        asyncio.get_running_loop().remove_reader(self._master)
        os.close(self._master)
        os.close(self._slave)
        self._master = self._slave = -1
        self._pending.clear()

    async def write(self, data: bytes) -> None:
        """Write everything, waiting (never blocking) while the pty buffer is full."""
        view = memoryview(data)
        while view:
            try:
                written = os.write(self._master, view)
            except BlockingIOError:
                await asyncio.sleep(0.001)
                continue
            view = view[written:]

    def _readable(self) -> None:
        try:
            chunk = os.read(self._master, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return
        self.written += chunk
        self._pending += chunk
        while (end := self._pending.find(b"\n")) >= 0:
            line = bytes(self._pending[: end + 1])
            del self._pending[: end + 1]
            if self._answer is not None and line.startswith(b"AT+SEND="):
                os.write(self._master, self._answer)
        self._wrote.set()

    def sends(self) -> list[bytes]:
        """The frames of every ``AT+SEND`` alertnet wrote, checked against their length field."""
        frames = []
        for length, data in AT_SEND.findall(bytes(self.written)):
            assert int(length) == len(data)
            frames.append(bytes.fromhex(data.decode()))
        return frames

    async def wait_sends(self, count: int, timeout_s: float = 10.0) -> list[bytes]:
        return await eventually(
            self.sends,
            lambda sends: len(sends) >= count,
            awaiting=f"{count} AT+SEND frame(s) written to {self.link.name}",
            timeout_s=timeout_s,
        )

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.unplug()


@dataclass
class Alertnet:
    """The running parts of one alertnet process, as a test sees them."""

    pipeline: Pipeline
    registry: GatewayRegistry
    router: DownlinkRouter
    mqtt: MqttIngest | None
    bridges: dict[str, SerialBridge] = field(default_factory=dict)

    async def wait_ports_open(self, timeout_s: float = 10.0) -> None:
        async with asyncio.timeout(timeout_s):
            for bridge in self.bridges.values():
                await bridge.module.port.opened.wait()


@contextlib.asynccontextmanager
async def running_alertnet(
    session_factory: async_sessionmaker[AsyncSession],
    *,
    mqtt_url: str | None = None,
    client_id: str = "alertnet-gateway-test",
    serial: dict[str, str] | None = None,
    route_downlinks: bool = True,
    window_s: float = 0.2,
    bridge_options: dict[str, Any] | None = None,
) -> AsyncIterator[Alertnet]:
    """Pipeline, registry, router, MQTT ingest and serial bridges, wired as in the app."""
    metrics = Metrics()
    pipeline = Pipeline(session_factory, metrics=metrics)
    registry = GatewayRegistry(session_factory, flush_interval_s=0.05)
    router = DownlinkRouter(session_factory, window_s=window_s)
    login = (
        mqtt_login(Settings(mqtt_client_id=client_id), MqttPurpose.INGEST, mqtt_url)
        if mqtt_url is not None
        else None
    )
    mqtt = (
        MqttIngest(
            pipeline,
            metrics,
            url=login.url,
            client_id=login.client_id,
            router=router,
            registry=registry,
        )
        if login is not None
        else None
    )
    bridges = {
        gateway_id: SerialBridge(
            gateway_id,
            path,
            pipeline=pipeline,
            registry=registry,
            router=router if route_downlinks else None,
            **(bridge_options or {}),
        )
        for gateway_id, path in (serial or {}).items()
    }
    tasks = [
        asyncio.create_task(pipeline.run()),
        asyncio.create_task(registry.run()),
        asyncio.create_task(router.run()),
        *(asyncio.create_task(bridge.run()) for bridge in bridges.values()),
    ]
    if mqtt is not None:
        tasks.append(asyncio.create_task(mqtt.run()))
    try:
        if mqtt is not None:
            async with asyncio.timeout(10):
                await mqtt.connected.wait()
        yield Alertnet(pipeline, registry, router, mqtt, bridges)
    finally:
        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                raise result

"""How simulated devices reach alertnet: MQTT (binary or JSON), HTTP, and LoRa radio.

Each link has ``run()`` (its long-lived task: connections, reconnection with backoff, pty
I/O) and ``send(device, uplink)``; acks come back to ``SimDevice.receive_downlink``.

- ``MqttLink``: against a broker that authenticates (a user in the URL, DESIGN §14) each
  device has its own connection, logged in as its EUI with the password derived from its key,
  subscribed to its own down topic; the URL's own login is not used. Without a user in the
  URL, a few anonymous publisher connections are shared by the fleet and one subscriber reads
  ``alertnet/v1/down/+`` (a benchmark broker on loopback). QoS 1, each publish awaits its
  PUBACK. A broker restart drops the connections; they come back with capped backoff, and
  devices retransmit what was not acknowledged meanwhile.
- ``HttpLink``: ``POST /api/v1/uplinks``; the answer is the ack.
- ``LoraLink``: simulated REYAX modules (``SimulatedModule``), each owning the master side of
  a pty whose slave path alertnet opens as a serial gateway (``ALERTNET_SERIAL``). The
  ``RadioModel`` decides which modules hear a device (each then prints ``+RCV=...``) and
  whether the device hears the ``AT+SEND`` downlink the chosen module transmits.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import logging
import math
import os
import random
import re
import struct
import termios
import tty
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Final
from urllib.parse import unquote, urlsplit

import aiomqtt
import httpx

from alertnet.protocol import (
    DOWN_SUBSCRIPTION,
    DecodeError,
    Downlink,
    EventCode,
    LineSplitter,
    Uplink,
    WireFormat,
    decode_downlink,
    decode_downlink_json,
    device_mqtt_password,
    down_topic,
    format_rcv,
    parse_topic,
    up_topic,
)
from firmware_sim.device import SimDevice
from firmware_sim.fleet import Geo, offset
from firmware_sim.radio import RadioModel
from firmware_sim.stats import Recorder

__all__ = ["HttpLink", "LoraLink", "MqttLink", "SimulatedModule", "TransportDown"]

log = logging.getLogger(__name__)

_BACKOFF_FIRST_S: Final = 0.2
_BACKOFF_MAX_S: Final = 5.0
_PUBLISH_TIMEOUT_S: Final = 10.0
#: What a module buffers towards a host that does not read, before it drops lines.
_MAX_MODULE_BACKLOG_BYTES: Final = 1 << 20
_AT_SEND: Final = re.compile(rb"AT\+SEND=([0-9]{1,5}),([0-9]{1,3}),([0-9A-Fa-f]*)")


class TransportDown(ConnectionError):
    """The link cannot take a frame right now (broker down, not yet connected)."""


def _broker(url: str) -> tuple[str, int, str | None, str | None]:
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "tcp") or not parts.hostname:
        raise ValueError(f"not an MQTT URL: {url!r} (expected mqtt://[user:pass@]host:port)")
    return (
        parts.hostname,
        parts.port or 1883,
        unquote(parts.username) if parts.username else None,
        unquote(parts.password) if parts.password else None,
    )


def _decode_ack(payload: bytes, eui: str, wire_format: WireFormat) -> Downlink:
    if wire_format is WireFormat.JSON:
        return decode_downlink_json(payload, eui)
    return decode_downlink(payload)


# -- MQTT ------------------------------------------------------------------------------------


class MqttLink:
    """Publishers for the fleet plus one downlink subscriber; see the module docstring."""

    def __init__(
        self,
        url: str,
        devices: Mapping[str, SimDevice],
        recorder: Recorder,
        *,
        connections: int = 2,
        client_prefix: str = "firmware-sim",
        max_inflight: int = 1000,
    ) -> None:
        self._host, self._port, self._username, self._password = _broker(url)
        self._devices = devices
        self._recorder = recorder
        self._prefix = client_prefix
        self._max_inflight = max_inflight
        self._publishers: list[aiomqtt.Client | None] = [None] * max(1, connections)
        self._subscribed = asyncio.Event()
        self._per_device = self._username is not None
        self._device_clients: dict[str, aiomqtt.Client] = {}
        self.reconnects = 0

    @property
    def connected(self) -> bool:
        if self._per_device:
            return len(self._device_clients) == len(self._fleet())
        return self._subscribed.is_set() and all(c is not None for c in self._publishers)

    def _fleet(self) -> list[SimDevice]:
        return [device for device in self._devices.values() if device.link is self]

    async def wait_connected(self, timeout_s: float) -> None:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not self.connected:
            if asyncio.get_running_loop().time() > deadline:
                raise TransportDown(f"MQTT broker {self._host}:{self._port} not reachable")
            await asyncio.sleep(0.05)

    def _client(self, name: str, device: SimDevice | None) -> aiomqtt.Client:
        client = aiomqtt.Client(
            self._host,
            self._port,
            username=device.eui if device else self._username,
            password=device_mqtt_password(device.spec.key) if device else self._password,
            identifier=device.eui if device else f"{self._prefix}-{name}-{os.getpid()}",
            clean_session=True,
            keepalive=15,
            max_inflight_messages=self._max_inflight,
        )
        # The fleet keeps thousands of publishes in flight; that is the point, not a leak.
        client.pending_calls_threshold = 1_000_000
        return client

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tasks:
            if self._per_device:
                for device in self._fleet():
                    serve = functools.partial(self._device_session, device)
                    tasks.create_task(self._stay_connected(device.eui, serve, device))
                return
            tasks.create_task(self._stay_connected("down", self._subscriber))
            for index in range(len(self._publishers)):
                publisher = functools.partial(self._publisher, index)
                tasks.create_task(self._stay_connected(f"up{index}", publisher))

    async def _stay_connected(
        self,
        name: str,
        serve: Callable[[aiomqtt.Client], Awaitable[None]],
        device: SimDevice | None = None,
    ) -> None:
        backoff_s = _BACKOFF_FIRST_S
        while True:
            try:
                async with self._client(name, device) as client:
                    backoff_s = _BACKOFF_FIRST_S
                    await serve(client)
            except aiomqtt.MqttError as exc:
                log.info("MQTT %s connection lost: %s", name, exc)
            self.reconnects += 1
            await asyncio.sleep(backoff_s)
            backoff_s = min(backoff_s * 2, _BACKOFF_MAX_S)

    async def _publisher(self, index: int, client: aiomqtt.Client) -> None:
        self._publishers[index] = client
        try:
            # A publisher subscribes to nothing: the stream ends (raises) when the link drops.
            async for _message in client.messages:
                pass
        finally:
            self._publishers[index] = None

    async def _device_session(self, device: SimDevice, client: aiomqtt.Client) -> None:
        await client.subscribe(down_topic(device.eui), qos=1)
        self._device_clients[device.eui] = client
        try:
            async for message in client.messages:
                self._downlink(str(message.topic), message.payload)
        finally:
            self._device_clients.pop(device.eui, None)

    async def _subscriber(self, client: aiomqtt.Client) -> None:
        await client.subscribe(DOWN_SUBSCRIPTION, qos=1)
        self._subscribed.set()
        try:
            async for message in client.messages:
                self._downlink(str(message.topic), message.payload)
        finally:
            self._subscribed.clear()

    def _downlink(self, topic: str, payload: object) -> None:
        try:
            eui = parse_topic(topic).ident
        except DecodeError:
            self._recorder.downlinks["bad_topic"] += 1
            return
        device = self._devices.get(eui)
        if device is None or not isinstance(payload, bytes):
            self._recorder.downlinks["not_ours"] += 1
            return
        try:
            downlink = _decode_ack(payload, eui, device.spec.transport.wire_format)
        except DecodeError:
            self._recorder.downlinks["malformed"] += 1
            return
        device.receive_downlink(downlink)

    async def send(self, device: SimDevice, uplink: Uplink) -> bool:
        if self._per_device:
            client = self._device_clients.get(device.eui)
        else:
            client = self._publishers[hash(device.eui) % len(self._publishers)]
        if client is None:
            return False
        payload = uplink.encode(device.spec.transport.wire_format)
        try:
            await client.publish(up_topic(device.eui), payload, qos=1, timeout=_PUBLISH_TIMEOUT_S)
        except aiomqtt.MqttError:
            return False
        return True


# -- HTTP ------------------------------------------------------------------------------------


class HttpLink:
    """``POST /api/v1/uplinks``, binary or JSON; the response body is the ack."""

    def __init__(self, base_url: str, *, max_connections: int = 32) -> None:
        self._base_url = base_url.rstrip("/")
        self._limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        self._client: httpx.AsyncClient | None = None
        self.errors = 0

    async def run(self) -> None:
        async with httpx.AsyncClient(
            base_url=self._base_url, limits=self._limits, timeout=10.0
        ) as client:
            self._client = client
            try:
                await asyncio.Event().wait()
            finally:
                self._client = None

    async def send(self, device: SimDevice, uplink: Uplink) -> bool:
        client = self._client
        if client is None:
            return False
        wire_format = device.spec.transport.wire_format
        content_type = (
            "application/json" if wire_format is WireFormat.JSON else "application/octet-stream"
        )
        try:
            response = await client.post(
                "/api/v1/uplinks",
                content=uplink.encode(wire_format),
                headers={"content-type": content_type},
            )
        except httpx.HTTPError:
            self.errors += 1
            return False
        if response.status_code != 200:
            self.errors += 1
            return False
        if uplink.event is not EventCode.HEARTBEAT and response.content:
            try:
                device.receive_downlink(_decode_ack(response.content, device.eui, wire_format))
            except DecodeError:
                device.recorder.downlinks["malformed"] += 1
        return True


# -- LoRa ------------------------------------------------------------------------------------


class SimulatedModule:
    """A REYAX RYLR-style module on the master side of a pty; alertnet opens ``path``.

    It prints ``+READY`` when plugged, ``+RCV=...`` for every packet the radio model lets it
    hear, ``+OK`` to each command, and hands each ``AT+SEND`` payload to ``on_transmit``.
    What the host does not read is buffered up to 1 MiB and then dropped (``overruns``).
    """

    def __init__(
        self,
        gateway_id: str,
        path: Path,
        location: Geo,
        on_transmit: Callable[[SimulatedModule, bytes], None],
    ) -> None:
        self.gateway_id = gateway_id
        self.path = path
        self.location = location
        self._on_transmit = on_transmit
        self._master = -1
        self._slave = -1
        self._splitter = LineSplitter()
        self._outgoing = bytearray()
        self._writing = False
        self.heard = 0
        self.transmitted = 0
        self.bad_commands = 0
        self.overruns = 0

    def open(self) -> None:
        """Create the pty and point ``path`` at its slave (atomically, as udev would)."""
        master, slave = os.openpty()
        # A UART has no line discipline; holding the slave open keeps the master readable
        # (no EIO) while alertnet has not opened it yet or is re-opening it.
        tty.setraw(slave)
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(self.path.name + ".new")
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        os.symlink(os.ttyname(slave), temporary)
        os.replace(temporary, self.path)
        loop = asyncio.get_running_loop()
        loop.add_reader(master, self._readable)
        self._write(b"+READY\r\n")

    def host_listening(self) -> bool:
        """True once the host has opened the port and read what the module printed: the
        slave's input queue is empty (the module writes ``+READY`` when plugged)."""
        if self._slave < 0:
            return False
        waiting = fcntl.ioctl(self._slave, termios.FIONREAD, b"\0\0\0\0")
        return bool(struct.unpack("i", waiting)[0] == 0)

    def close(self) -> None:
        if self._master < 0:
            return
        loop = asyncio.get_running_loop()
        loop.remove_reader(self._master)
        if self._writing:
            loop.remove_writer(self._master)
            self._writing = False
        os.close(self._master)
        os.close(self._slave)
        self._master = self._slave = -1
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def receive(self, address: int, frame: bytes, rssi: int, snr: float) -> None:
        """The radio delivered a packet: print it to the host."""
        self.heard += 1
        self._write(format_rcv(address, frame, rssi, snr))

    def _write(self, data: bytes) -> None:
        if self._master < 0:
            return
        if len(self._outgoing) + len(data) > _MAX_MODULE_BACKLOG_BYTES:
            self.overruns += 1
            return
        self._outgoing += data
        self._flush()

    def _flush(self) -> None:
        try:
            written = os.write(self._master, self._outgoing)
        except (BlockingIOError, InterruptedError):
            written = 0
        del self._outgoing[:written]
        loop = asyncio.get_running_loop()
        if self._outgoing and not self._writing:
            loop.add_writer(self._master, self._flush)
            self._writing = True
        elif not self._outgoing and self._writing:
            loop.remove_writer(self._master)
            self._writing = False

    def _readable(self) -> None:
        try:
            chunk = os.read(self._master, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # the host side hung up; it will open the slave again
            return
        for line in self._splitter.feed(chunk):
            self._command(line)

    def _command(self, line: bytes) -> None:
        command = line.strip()
        send = _AT_SEND.fullmatch(command)
        if send is not None:
            hex_data = send[3]
            if int(send[2]) != len(hex_data) or len(hex_data) % 2:
                self.bad_commands += 1
                self._write(b"+ERR=4\r\n")  # REYAX: length mismatch
                return
            self._write(b"+OK\r\n")
            self.transmitted += 1
            self._on_transmit(self, bytes.fromhex(hex_data.decode("ascii")))
        elif command == b"AT" or command.startswith(b"AT+"):
            self._write(b"+OK\r\n")  # configuration commands (ADDRESS, BAND, ...): accepted
        else:
            self.bad_commands += 1
            self._write(b"+ERR=1\r\n")  # REYAX: no "AT" at the start


def gateway_sites(centre: Geo, radius_m: float, count: int) -> list[Geo]:
    """``count`` gateway sites: one in the centre, the rest on a ring at ``radius_m / 2``."""
    sites = [centre]
    ring = count - 1
    for index in range(ring):
        angle = 2 * math.pi * index / ring
        sites.append(offset(centre, radius_m / 2 * math.cos(angle), radius_m / 2 * math.sin(angle)))
    return sites[:count]


class LoraLink:
    """The radio between LoRa devices and the simulated modules (both directions)."""

    def __init__(
        self,
        pty_dir: Path,
        sites: Sequence[Geo],
        radio: RadioModel,
        devices: Mapping[str, SimDevice],
        recorder: Recorder,
        *,
        rng: random.Random,
        prefix: str = "gw-",
    ) -> None:
        self.radio = radio
        self._devices = devices
        self._recorder = recorder
        self._rng = rng
        names = [f"{prefix}{index + 1}" for index in range(len(sites))]
        self.modules = [
            SimulatedModule(name, pty_dir / name, site, self._air)
            for name, site in zip(names, sites, strict=True)
        ]
        self.not_heard = 0
        self.transmissions = 0

    @property
    def serial_setting(self) -> str:
        """The ``ALERTNET_SERIAL`` value that makes alertnet open these modules."""
        return ",".join(f"{module.gateway_id}={module.path}" for module in self.modules)

    def open(self) -> None:
        """Create the ptys now (before alertnet starts, so it finds the paths at once)."""
        for module in self.modules:
            if module._master < 0:
                module.open()

    async def run(self) -> None:
        self.open()
        try:
            await asyncio.Event().wait()
        finally:
            for module in self.modules:
                module.close()

    async def send(self, device: SimDevice, uplink: Uplink) -> bool:
        frame = uplink.to_bytes()
        self.transmissions += 1
        address = int(device.eui[-4:], 16)
        heard = False
        for module in self.modules:
            reception = self.radio.transmit(device.spec.location, module.location, self._rng)
            if reception is not None:
                module.receive(address, frame, reception.rssi, reception.snr)
                heard = True
        if not heard:
            self.not_heard += 1
        return True  # the radio sent it; whether anyone heard is the air's business

    def _air(self, module: SimulatedModule, frame: bytes) -> None:
        """A module transmitted a downlink: the addressed device may hear it."""
        try:
            downlink = decode_downlink(frame)
        except DecodeError:
            self._recorder.downlinks["malformed"] += 1
            return
        device = self._devices.get(downlink.eui)
        if device is None:
            self._recorder.downlinks["not_ours"] += 1
            return
        if self.radio.transmit(module.location, device.spec.location, self._rng) is None:
            self._recorder.downlinks["radio_lost"] += 1
            return
        device.receive_downlink(downlink)

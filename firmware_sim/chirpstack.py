"""A simulated ChirpStack v4 network server, for the simulator's LoRaWAN devices (DESIGN §9.2).

Devices on the ``chirpstack`` transport transmit over the radio model to LoRaWAN gateways; this
link plays the network server in between. Each transmission that some gateway heard becomes
ONE uplink event listing every gateway that heard it in ``rxInfo`` (as ChirpStack publishes
after its 200 ms deduplication), with the device's LoRaWAN frame counter (``fCnt``, left out
while it is 0, as protobuf JSON does) and alertnet's v1 frame as base64 ``data``. It is
published with QoS 1 on ``application/<app>/device/<devEui>/event/up``, the way ChirpStack's
MQTT integration does with ``json=true, qos=1``.

It reads ``application/<app>/device/+/command/down`` and delivers each downlink, Class A
style, through the gateway that heard the device best in its last uplink; the radio may lose
it, and then the device retransmits (§2.2). A command on another fPort than the uplink's, or
one for an unknown device, is counted and dropped, so that alertnet's mistakes show as
unacknowledged presses.

The login: the URL's user (the broker's ``chirpstack`` account, see ``alertnet broker
config --chirpstack-password-file``), or anonymous with a fixed client id.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final
from urllib.parse import unquote, urlsplit

import aiomqtt

from alertnet.protocol import DecodeError, Uplink, decode_downlink
from alertnet.protocol.chirpstack import (
    ChirpStackUplink,
    RxInfo,
    decode_down_command,
    encode_up_event,
    up_event_topic,
)
from firmware_sim.device import SimDevice
from firmware_sim.fleet import Geo
from firmware_sim.radio import RadioModel
from firmware_sim.stats import Recorder

__all__ = ["DEFAULT_APPLICATION_ID", "DEFAULT_F_PORT", "ChirpStackLink", "gateway_eui"]

log = logging.getLogger(__name__)

#: The ChirpStack application the simulated devices belong to (a UUID, as ChirpStack's are).
DEFAULT_APPLICATION_ID: Final = "5e1f0c2a-9d3b-4c77-8a10-a1e27e0d5e1f"
#: The application port the buttons send on.
DEFAULT_F_PORT: Final = 10
_BACKOFF_FIRST_S: Final = 0.2
_BACKOFF_MAX_S: Final = 5.0
_PUBLISH_TIMEOUT_S: Final = 10.0
_TENANT: Final = {
    "tenantId": "52f14cd4-c6f1-4fbd-8f87-4025e1d49242",
    "tenantName": "alertnet simulator",
    "applicationName": "panic buttons",
    "deviceProfileId": "14855bf7-d10d-4aee-b618-ebfcb64dc7ad",
    "deviceProfileName": "alertnet button, Class A",
}


def gateway_eui(index: int) -> str:
    """The gateway id (an EUI-64, as ChirpStack's) of simulated gateway ``index`` (0-based)."""
    return f"0016c001f15e{index + 1:04x}"


@dataclass(frozen=True, slots=True)
class _Gateway:
    gateway_id: str
    location: Geo


class ChirpStackLink:
    """Network server and LoRaWAN gateways for the fleet's ``chirpstack`` devices.

    Counters: ``transmissions`` (device sends), ``events`` (events published), ``heard``
    (rxInfo entries published), ``not_heard`` (no gateway heard the packet),
    ``publish_failures``, ``reconnects``, and ``downlinks`` by what became of them.
    """

    def __init__(
        self,
        url: str,
        devices: Mapping[str, SimDevice],
        recorder: Recorder,
        *,
        sites: Sequence[Geo],
        radio: RadioModel,
        rng: random.Random,
        application_id: str = DEFAULT_APPLICATION_ID,
        f_port: int = DEFAULT_F_PORT,
        client_id: str = "firmware-sim-chirpstack",
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "tcp") or not parts.hostname:
            raise ValueError(f"not an MQTT URL: {url!r} (expected mqtt://[user:pass@]host:port)")
        self._host = parts.hostname
        self._port = parts.port or 1883
        self._username = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password) if parts.password else None
        self._client_id = self._username or client_id
        self._devices = devices
        self._recorder = recorder
        self.radio = radio
        self._rng = rng
        self.application_id = application_id
        self.f_port = f_port
        self.gateways = [_Gateway(gateway_eui(i), site) for i, site in enumerate(sites)]
        self._client: aiomqtt.Client | None = None
        self._f_cnt: Counter[str] = Counter()
        self._best_gateway: dict[str, _Gateway] = {}
        self.transmissions = 0
        self.events = 0
        self.heard = 0
        self.not_heard = 0
        self.publish_failures = 0
        self.reconnects = 0
        self.downlinks: Counter[str] = Counter()

    @property
    def connected(self) -> bool:
        return self._client is not None

    async def wait_connected(self, timeout_s: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not self.connected:
            if loop.time() > deadline:
                raise TimeoutError(f"ChirpStack's broker {self._host}:{self._port} not reachable")
            await asyncio.sleep(0.05)

    async def run(self) -> None:
        """Stay connected to the broker, reading downlink commands, until cancelled."""
        backoff_s = _BACKOFF_FIRST_S
        while True:
            try:
                async with aiomqtt.Client(
                    self._host,
                    self._port,
                    username=self._username,
                    password=self._password,
                    identifier=self._client_id,
                    clean_session=True,
                    keepalive=15,
                ) as client:
                    backoff_s = _BACKOFF_FIRST_S
                    await client.subscribe(
                        f"application/{self.application_id}/device/+/command/down", qos=1
                    )
                    self._client = client
                    try:
                        async for message in client.messages:
                            self._command(message.payload)
                    finally:
                        self._client = None
            except aiomqtt.MqttError as exc:
                log.info("ChirpStack link lost: %s", exc)
            self.reconnects += 1
            await asyncio.sleep(backoff_s)
            backoff_s = min(backoff_s * 2, _BACKOFF_MAX_S)

    async def send(self, device: SimDevice, uplink: Uplink) -> bool:
        """The device transmits: the gateways that hear it make one event, published QoS 1."""
        self.transmissions += 1
        f_cnt = self._f_cnt[device.eui]
        self._f_cnt[device.eui] = (f_cnt + 1) & 0xFFFF_FFFF  # a LoRaWAN counter per send
        copies: list[tuple[RxInfo, _Gateway]] = []
        for gateway in self.gateways:
            reception = self.radio.transmit(device.spec.location, gateway.location, self._rng)
            if reception is not None:
                rx = RxInfo(gateway.gateway_id, reception.rssi, reception.snr)
                copies.append((rx, gateway))
        if not copies:
            self.not_heard += 1
            return True  # the radio sent it; nobody heard it
        best = max(copies, key=lambda copy: (copy[0].rssi, copy[0].snr))
        self._best_gateway[device.eui] = best[1]
        event = ChirpStackUplink(
            application_id=self.application_id,
            dev_eui=device.eui,
            f_cnt=f_cnt,
            f_port=self.f_port,
            data=uplink.to_bytes(),
            rx_info=tuple(rx for rx, _ in copies),
        )
        payload = encode_up_event(
            event,
            deduplication_id=str(uuid.UUID(int=self._rng.getrandbits(128), version=4)),
            time=datetime.now(UTC).isoformat(),
            device_info={**_TENANT, "deviceName": f"sim {device.spec.kind} {device.eui[-4:]}"},
            extra={
                "devAddr": device.eui[-8:],
                "adr": True,
                "dr": 5,
                "txInfo": {
                    "frequency": 868_100_000,
                    "modulation": {
                        "lora": {"bandwidth": 125_000, "spreadingFactor": 7, "codeRate": "CR_4_5"}
                    },
                },
            },
        )
        client = self._client
        if client is None:
            self.publish_failures += 1
            return False
        try:
            await client.publish(
                up_event_topic(self.application_id, device.eui),
                payload,
                qos=1,
                timeout=_PUBLISH_TIMEOUT_S,
            )
        except aiomqtt.MqttError:
            self.publish_failures += 1
            return False
        self.events += 1
        self.heard += len(copies)
        return True

    def _command(self, payload: object) -> None:
        """A downlink command from alertnet: to the device, over the air, if it hears it."""
        if not isinstance(payload, bytes):
            self.downlinks["malformed"] += 1
            return
        try:
            command = decode_down_command(payload)
            downlink = decode_downlink(command.data)
        except DecodeError:
            self.downlinks["malformed"] += 1
            return
        device = self._devices.get(command.dev_eui)
        gateway = self._best_gateway.get(command.dev_eui)
        if device is None or gateway is None:
            self.downlinks["not_ours"] += 1
            return
        if command.f_port != self.f_port or command.confirmed:
            self.downlinks["wrong_port_or_confirmed"] += 1
            return
        if self.radio.transmit(gateway.location, device.spec.location, self._rng) is None:
            self.downlinks["radio_lost"] += 1
            self._recorder.downlinks["radio_lost"] += 1
            return
        self.downlinks["delivered"] += 1
        device.receive_downlink(downlink)

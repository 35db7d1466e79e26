"""Where downlinks go: per copy for MQTT devices, once per press through the best gateway."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.db import unit_of_work
from alertnet.dispatch.notifier import StateNotice
from alertnet.ingest.downlinks import DownlinkRouter
from alertnet.ingest.pipeline import Disposition, Outcome, Pipeline, RawUplink
from alertnet.metrics import Metrics
from alertnet.models import Transport
from alertnet.protocol import (
    AckState,
    EventCode,
    Reason,
    Uplink,
    WireFormat,
    decode_downlink,
    decode_downlink_json,
    parse_gateway_tx,
)
from tests.support.factories import create_device
from tests.support.polling import eventually

from .helpers import EUI, KEY

SessionFactory = async_sessionmaker[AsyncSession]
WINDOW_S = 0.05
HOLDOFF_S = 0.3


class Sink:
    """A local serial gateway that takes downlinks, or refuses them (port down)."""

    def __init__(self, *, accepts: bool = True) -> None:
        self.accepts = accepts
        self.frames: list[bytes] = []

    def queue_downlink(self, frame: bytes) -> bool:
        if self.accepts:
            self.frames.append(frame)
        return self.accepts


def _accepted(uplink: Uplink, fmt: WireFormat = WireFormat.BINARY) -> Outcome:
    return Outcome(Disposition.NEW, fmt, uplink, device_key=KEY)


def _copy(
    transport: Transport, gateway_id: str | None = None, rssi: int | None = None, snr: float = 0
) -> RawUplink:
    return RawUplink(b"", transport, gateway_id=gateway_id, rssi=rssi, snr=snr)


@contextlib.asynccontextmanager
async def _running(router: DownlinkRouter) -> AsyncIterator[list[tuple[str, bytes]]]:
    published: list[tuple[str, bytes]] = []
    router.publish_via(lambda topic, payload: published.append((topic, payload)))
    task = asyncio.create_task(router.run())
    try:
        yield published
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_mqtt_devices_get_every_ack_at_once_in_their_own_format() -> None:
    router = DownlinkRouter(window_s=WINDOW_S)
    press = Uplink.build(KEY, EUI, 42, EventCode.PANIC)
    heartbeat = Uplink.build(KEY, EUI, 43, EventCode.HEARTBEAT)
    async with _running(router) as published:
        router.uplink_committed(_accepted(press), _copy(Transport.MQTT))
        router.uplink_committed(_accepted(press, WireFormat.JSON), _copy(Transport.MQTT))
        router.uplink_committed(_accepted(heartbeat), _copy(Transport.MQTT))
        router.uplink_committed(_accepted(press), _copy(Transport.HTTP))
        router.uplink_committed(
            Outcome(Disposition.QUARANTINED, reason=Reason.BAD_MIC), _copy(Transport.MQTT)
        )
        assert [topic for topic, _ in published] == [f"alertnet/v1/down/{EUI}"] * 2
    binary, json_ack = (payload for _, payload in published)
    assert decode_downlink(binary).verify(KEY)
    assert decode_downlink_json(json_ack, EUI).verify(KEY)
    assert router.sent == {"device": 2}


async def test_gateway_copies_get_one_downlink_through_the_best_that_can_take_it() -> None:
    router = DownlinkRouter(window_s=WINDOW_S, holdoff_s=HOLDOFF_S)
    weak, unplugged, medium = Sink(), Sink(accepts=False), Sink()
    for gateway_id, sink in [("weak", weak), ("unplugged", unplugged), ("medium", medium)]:
        router.add_serial_gateway(gateway_id, sink)
    press = Uplink.build(KEY, EUI, 7, EventCode.PANIC)
    async with _running(router) as published:
        router.uplink_committed(_accepted(press), _copy(Transport.SERIAL, "weak", -120, 3))
        router.uplink_committed(_accepted(press), _copy(Transport.MQTT, "net-1", -95, 1))
        router.uplink_committed(_accepted(press), _copy(Transport.SERIAL, "medium", -95, 2))
        router.uplink_committed(_accepted(press), _copy(Transport.SERIAL, "unplugged", -60))
        assert router.gathering == 1 and not medium.frames and not published
        await eventually(lambda: router.gathering == 0, awaiting="the window to close")
        # A slow gateway's copy after the answer: not answered twice. The router decides when
        # the copy is committed, so there is nothing to wait for: suppressed, no new window.
        router.uplink_committed(_accepted(press), _copy(Transport.MQTT, "net-2", -50))
        assert router.suppressed == 1 and router.gathering == 0 and not published
        # The device did not hear the ack and retransmits after the hold-off: answered again.
        await asyncio.sleep(WINDOW_S * 2 + HOLDOFF_S)
        router.uplink_committed(_accepted(press), _copy(Transport.MQTT, "net-2", -50))
        await eventually(lambda: len(published) == 1, awaiting="the retransmission answered")
    assert [decode_downlink(f).counter for f in medium.frames] == [7]
    assert weak.frames == [] and unplugged.frames == []
    topic, payload = published[0]
    assert topic == "alertnet/v1/gw/net-2/tx"
    assert decode_downlink(parse_gateway_tx(payload)).verify(KEY)
    assert router.sent == {"serial": 1, "gateway": 1}


async def test_a_press_no_gateway_can_answer_is_counted() -> None:
    router = DownlinkRouter(window_s=WINDOW_S)
    router.add_serial_gateway("down", Sink(accepts=False))
    async with _running(router):
        router.uplink_committed(
            _accepted(Uplink.build(KEY, EUI, 1, EventCode.FIRE)),
            _copy(Transport.SERIAL, "down", -70),
        )
        await eventually(lambda: router.unroutable == 1, awaiting="the press counted unroutable")
    assert router.sent == {}


async def test_alert_progress_goes_where_each_device_was_last_heard(
    session_factory: SessionFactory,
) -> None:
    lora_key, mqtt_key, http_key = (bytes([n]) * 16 for n in (1, 2, 3))
    lora, mqtt, http = "00000000000000a1", "00000000000000a2", "00000000000000a3"
    async with unit_of_work(session_factory) as session:
        devices = {
            eui: (await create_device(session, eui=eui, key=key)).id
            for eui, key in [(lora, lora_key), (mqtt, mqtt_key), (http, http_key)]
        }
    lora_press = Uplink.build(lora_key, lora, 5, EventCode.PANIC)
    mqtt_press = Uplink.build(mqtt_key, mqtt, 9, EventCode.INTRUSION)
    http_press = Uplink.build(http_key, http, 2, EventCode.PANIC)
    pipeline = Pipeline(session_factory, metrics=Metrics())
    await pipeline.process(
        [
            RawUplink(lora_press.to_bytes(), Transport.SERIAL, gateway_id="gw-s", rssi=-110),
            RawUplink(lora_press.to_bytes(), Transport.MQTT, gateway_id="gw-n", rssi=-80),
            RawUplink(mqtt_press.to_json(), Transport.MQTT, topic_eui=mqtt),
            RawUplink(http_press.to_bytes(), Transport.HTTP),
        ]
    )
    router = DownlinkRouter(session_factory)
    serial_gateway = Sink()
    router.add_serial_gateway("gw-s", serial_gateway)
    async with _running(router) as published:
        await router.notify(
            [
                StateNotice(devices[lora], 5, AckState.DISPATCHED),
                StateNotice(devices[mqtt], 9, AckState.ACCEPTED),
                StateNotice(devices[http], 2, AckState.ACCEPTED),
                StateNotice(10_000, 1, AckState.CLOSED),  # a device deleted meanwhile
            ]
        )
    assert [topic for topic, _ in published] == [
        "alertnet/v1/gw/gw-n/tx",
        f"alertnet/v1/down/{mqtt}",
    ]
    via_gateway = decode_downlink(parse_gateway_tx(published[0][1]))
    assert (via_gateway.counter, via_gateway.state) == (5, AckState.DISPATCHED)
    assert via_gateway.verify(lora_key)
    assert json.loads(published[1][1])["state"] == "accepted"
    assert decode_downlink_json(published[1][1], mqtt).verify(mqtt_key)
    assert serial_gateway.frames == []
    # The HTTP device cannot hear progress; the deleted one has no route at all.
    assert (router.not_listening, router.unroutable) == (1, 1)


async def test_progress_to_a_device_that_cannot_hear_it_is_not_sent_nor_unroutable(
    session_factory: SessionFactory,
) -> None:
    # An alarm panel's ACK is its whole answer (DESIGN §9.1); a camera and a drill hear nothing.
    async with unit_of_work(session_factory) as session:
        ids = []
        for n, transport in enumerate((Transport.DC09, Transport.FRIGATE, Transport.DRILL)):
            device = await create_device(session, eui=f"00000000000000b{n}", key=KEY)
            device.last_transport = transport.value
            ids.append(device.id)
    router = DownlinkRouter(session_factory)
    async with _running(router) as published:
        await router.notify([StateNotice(device_id, 1, AckState.ACCEPTED) for device_id in ids])
    assert published == []
    assert (router.not_listening, router.unroutable) == (3, 0)

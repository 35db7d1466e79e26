"""One LoRa press heard by three serial gateways and a networked one: one event, one downlink."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiomqtt
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.db import unit_of_work
from alertnet.ingest.serial import SendResult
from alertnet.models import Alert, Event, Gateway, Reception
from alertnet.protocol import (
    GW_TX_SUBSCRIPTION,
    AckState,
    EventCode,
    GatewayRx,
    Uplink,
    decode_downlink,
    format_gateway_rx,
    format_rcv,
    gw_rx_topic,
    parse_gateway_tx,
)
from tests.support.factories import create_device
from tests.support.mosquitto import MosquittoServer
from tests.support.polling import eventually

from .helpers import EUI, KEY, FakeModule, running_alertnet

SessionFactory = async_sessionmaker[AsyncSession]
WINDOW_S = 0.3


async def _event(session_factory: SessionFactory) -> Event | None:
    async with session_factory() as session:
        return await session.scalar(select(Event))


async def _collect(client: aiomqtt.Client, into: list[aiomqtt.Message]) -> None:
    async for message in client.messages:
        into.append(message)


async def test_four_gateways_one_event_one_downlink_through_the_best(
    session_factory: SessionFactory, mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    async with unit_of_work(session_factory) as session:
        await create_device(session, eui=EUI, key=KEY)
    modules = {name: FakeModule(tmp_path, name) for name in ("gw-a", "gw-b", "gw-c")}
    press = Uplink.build(KEY, EUI, 42, EventCode.PANIC, battery=87)
    tx_seen: list[aiomqtt.Message] = []
    try:
        async with (
            running_alertnet(
                session_factory,
                mqtt_url=mosquitto.url,
                serial={name: module.path for name, module in modules.items()},
                window_s=WINDOW_S,
            ) as net,
            mosquitto.harness_client("lora-gw-m") as lora_gateway,
        ):
            await net.wait_ports_open()
            await lora_gateway.subscribe(GW_TX_SUBSCRIPTION, qos=1)
            watcher = asyncio.create_task(_collect(lora_gateway, tx_seen))
            # The weakest copy commits first; the best one arrives while the ack waits.
            await modules["gw-a"].write(format_rcv(7, press.to_bytes(), -110, -3))
            await eventually(lambda: _event(session_factory), awaiting="gw-a's copy stored")
            await lora_gateway.publish(
                gw_rx_topic("gw-m"),
                format_gateway_rx(GatewayRx(press.to_bytes(), -90, 4.5)),
                qos=1,
            )
            await modules["gw-c"].write(format_rcv(7, press.to_bytes(), -101, 1))
            await modules["gw-b"].write(format_rcv(7, press.to_bytes(), -71, 9.25))

            event = await eventually(
                lambda: _event(session_factory),
                lambda e: e is not None and e.reception_count == 4,
                awaiting="the event with all four receptions",
            )
            frames = await modules["gw-b"].wait_sends(1)
            # Well past the window and the hold-off: still exactly one downlink, anywhere.
            await asyncio.sleep(WINDOW_S + 0.5)
            watcher.cancel()
            bridge_b = net.bridges["gw-b"]
            await eventually(
                lambda: dict(bridge_b.module.downlinks),
                lambda d: d == {SendResult.OK: 1},
                awaiting="gw-b's module to confirm the one downlink",
            )
            assert net.router.sent == {"serial": 1}
            assert net.router.suppressed == 0
            assert [bridge.outcomes.total() for bridge in net.bridges.values()] == [1, 1, 1]
    finally:
        for module in modules.values():
            module.close()

    assert event is not None
    assert (event.counter, event.best_rssi, event.best_snr) == (42, -71, 9.25)
    assert sorted(event.gateway_ids.split(",")) == ["gw-a", "gw-b", "gw-c", "gw-m"]
    assert modules["gw-b"].sends() == frames and len(frames) == 1
    assert modules["gw-a"].sends() == [] and modules["gw-c"].sends() == []
    assert tx_seen == []
    ack = decode_downlink(frames[0])
    assert (ack.eui, ack.counter, ack.state, ack.verify(KEY)) == (
        EUI,
        42,
        AckState.RECEIVED,
        True,
    )
    async with session_factory() as session:
        receptions = (
            await session.execute(
                select(Reception.gateway_id, Reception.transport, Reception.rssi, Reception.snr)
            )
        ).all()
        assert sorted(receptions) == [
            ("gw-a", "serial", -110, -3.0),
            ("gw-b", "serial", -71, 9.25),
            ("gw-c", "serial", -101, 1.0),
            ("gw-m", "mqtt", -90, 4.5),
        ]
        assert await session.scalar(select(func.count()).select_from(Alert)) == 1
        gateways = (await session.execute(select(Gateway.id, Gateway.transport))).all()
        assert sorted(gateways) == [
            ("gw-a", "serial"),
            ("gw-b", "serial"),
            ("gw-c", "serial"),
            ("gw-m", "mqtt"),
        ]


async def test_a_networked_gateway_that_heard_best_gets_the_downlink_on_its_tx_topic(
    session_factory: SessionFactory, mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    async with unit_of_work(session_factory) as session:
        await create_device(session, eui=EUI, key=KEY)
    module = FakeModule(tmp_path, "gw-s")
    press = Uplink.build(KEY, EUI, 7, EventCode.FIRE)
    try:
        async with (
            running_alertnet(
                session_factory, mqtt_url=mosquitto.url, serial={"gw-s": module.path}
            ) as net,
            mosquitto.harness_client("lora-gw-n") as lora_gateway,
        ):
            await net.wait_ports_open()
            await lora_gateway.subscribe(GW_TX_SUBSCRIPTION, qos=1)
            await module.write(format_rcv(3, press.to_bytes(), -118, -9))
            await lora_gateway.publish(
                gw_rx_topic("gw-n"), format_gateway_rx(GatewayRx(press.to_bytes(), -64, 11)), qos=1
            )
            async with asyncio.timeout(10):
                message = await anext(aiter(lora_gateway.messages))
            # The router chose when the window closed and counts each send as it makes it:
            # with no window left open, nothing more can go out.
            assert net.router.gathering == 0
            assert net.router.sent == {"gateway": 1}
    finally:
        module.close()
    assert str(message.topic) == "alertnet/v1/gw/gw-n/tx"
    assert isinstance(message.payload, bytes)
    ack = decode_downlink(parse_gateway_tx(message.payload))
    assert (ack.counter, ack.state, ack.verify(KEY)) == (7, AckState.RECEIVED, True)
    assert module.sends() == []

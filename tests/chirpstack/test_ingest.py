"""ChirpStack ingest end to end (DESIGN §9.2): a real Mosquitto, a running alertnet runtime
with ALERTNET_CHIRPSTACK_MQTT_URL set, and a test client publishing as ChirpStack does."""

from __future__ import annotations

import base64

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.db import unit_of_work
from alertnet.models import Alert, Device, Event, Offer, Quarantine, Reception
from alertnet.protocol import FLAG_RETRANSMISSION, AckState, EventCode
from alertnet.protocol.chirpstack import RxInfo
from tests.chirpstack.support import (
    APP,
    F_PORT,
    GATEWAYS,
    chirpstack_runtime,
    event_payload,
    fake_chirpstack,
)
from tests.ingest.helpers import EUI, KEY
from tests.support.asgi import NO_BROKER, AppClient, alertnet_api
from tests.support.factories import create_device, create_post
from tests.support.mosquitto import MosquittoServer
from tests.support.polling import eventually

pytestmark = pytest.mark.mosquitto

DOWN_TOPIC = f"application/{APP}/device/{EUI}/command/down"


async def _count(session_factory: async_sessionmaker[AsyncSession], model: type) -> int:
    async with session_factory() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_every_gateway_is_a_reception_and_the_device_gets_one_received_command(
    db_url: str, session_factory: async_sessionmaker[AsyncSession], mosquitto: MosquittoServer
) -> None:
    async with unit_of_work(session_factory) as session:
        await create_device(session, eui=EUI, key=KEY)
    async with chirpstack_runtime(db_url, mosquitto), fake_chirpstack(mosquitto) as chirpstack:
        await chirpstack.publish(EUI, event_payload(KEY, EUI, 42))
        await chirpstack.commands_for([42])

    [command] = chirpstack.commands
    assert command.topic == DOWN_TOPIC
    assert command.body == {
        "devEui": EUI,
        "confirmed": False,
        "fPort": F_PORT,
        "data": command.body["data"],
    }
    ack = command.ack
    assert (ack.eui, ack.counter, ack.state, ack.verify(KEY)) == (EUI, 42, AckState.RECEIVED, True)
    assert base64.b64decode(command.body["data"]) == ack.to_bytes()
    async with session_factory() as session:
        event = (await session.scalars(select(Event))).one()
        assert (event.counter, event.reception_count, event.first_transport) == (42, 3, "lorawan")
        assert (event.best_rssi, event.best_snr) == (-85, 9.25)
        receptions = (
            await session.execute(
                select(Reception.gateway_id, Reception.rssi, Reception.snr, Reception.transport)
            )
        ).all()
        assert sorted(receptions) == sorted(
            (rx.alertnet_gateway_id, rx.rssi, rx.snr, "lorawan") for rx in GATEWAYS
        )
        device = (await session.scalars(select(Device))).one()
        assert device.last_transport == "lorawan"
        assert await session.scalar(select(func.count()).select_from(Alert)) == 1


async def test_a_redelivered_event_is_a_duplicate_acked_again_never_a_second_alert(
    db_url: str, session_factory: async_sessionmaker[AsyncSession], mosquitto: MosquittoServer
) -> None:
    async with unit_of_work(session_factory) as session:
        await create_device(session, eui=EUI, key=KEY)
    first = event_payload(KEY, EUI, 42, rx_info=GATEWAYS[:1])
    retry = event_payload(
        KEY, EUI, 42, f_cnt=1, flags=FLAG_RETRANSMISSION, rx_info=[RxInfo("0016c001f1500099")]
    )
    async with chirpstack_runtime(db_url, mosquitto), fake_chirpstack(mosquitto) as chirpstack:
        # The same event twice (a redelivery), then the device's retransmission.
        for body in (first, first, retry):
            await chirpstack.publish(EUI, body)
        await eventually(
            lambda: len(chirpstack.commands) == 3, awaiting="a command for each of 3 events"
        )
    assert [(c.ack.counter, c.ack.state) for c in chirpstack.commands] == [
        (42, AckState.RECEIVED)
    ] * 3
    async with session_factory() as session:
        assert (await session.execute(select(Event.counter, Event.reception_count))).all() == [
            (42, 3)
        ]
        alert = (await session.scalars(select(Alert))).one()
        assert alert.press_count == 1


async def test_events_published_while_alertnet_is_away_wait_in_its_session(
    db_url: str, session_factory: async_sessionmaker[AsyncSession], mosquitto: MosquittoServer
) -> None:
    """QoS 1 and a persistent session: nothing ChirpStack published meanwhile is lost."""
    async with unit_of_work(session_factory) as session:
        await create_device(session, eui=EUI, key=KEY)
    async with fake_chirpstack(mosquitto) as chirpstack:
        async with chirpstack_runtime(db_url, mosquitto):
            await chirpstack.publish(EUI, event_payload(KEY, EUI, 1))
            await chirpstack.commands_for([1])
        for counter in (2, 3, 4):  # alertnet is stopped: the broker keeps them
            await chirpstack.publish(EUI, event_payload(KEY, EUI, counter))
        async with chirpstack_runtime(db_url, mosquitto):
            await chirpstack.commands_for([2, 3, 4])
    async with session_factory() as session:
        counters = (await session.scalars(select(Event.counter).order_by(Event.counter))).all()
        assert counters == [1, 2, 3, 4]


async def test_bad_events_are_quarantined_with_reasons_and_get_no_command(
    db_url: str, session_factory: async_sessionmaker[AsyncSession], mosquitto: MosquittoServer
) -> None:
    async with unit_of_work(session_factory) as session:
        await create_device(session, eui=EUI, key=KEY)
    stranger = "70b3d57ed0009999"
    good = event_payload(KEY, EUI, 7)
    bad_base64 = good.replace(b'"data":"', b'"data":"!!')
    wrong_type = good.replace(f'"fPort":{F_PORT}'.encode(), b'"fPort":"10"')
    no_device_info = good.replace(b'"deviceInfo"', b'"somethingElse"')
    mismatch = event_payload(KEY, stranger, 5).replace(stranger.encode(), EUI.encode(), 1)
    async with (
        chirpstack_runtime(db_url, mosquitto) as runtime,
        fake_chirpstack(mosquitto) as chirpstack,
    ):
        await chirpstack.publish(EUI, b"{not json")
        await chirpstack.publish(EUI, bad_base64)
        await chirpstack.publish(EUI, wrong_type)
        await chirpstack.publish(EUI, no_device_info)
        await chirpstack.publish(EUI, mismatch)
        await chirpstack.publish(
            EUI, event_payload(KEY, EUI, 8, rx_info=[]).replace(b'"data":"', b'"data":"AAAA')
        )
        # A frame signed with another key, and one from a device alertnet does not know.
        await chirpstack.publish(EUI, event_payload(bytes(16), EUI, 9, rx_info=GATEWAYS[:1]))
        await chirpstack.publish(stranger, event_payload(KEY, stranger, 1, rx_info=GATEWAYS[:1]))
        await chirpstack.publish(EUI, good)
        # Commands go out in the order the events were committed: once the good one's is
        # here, any for the bad ones would have come first.
        await chirpstack.commands_for([7])
        assert runtime.chirpstack is not None and runtime.chirpstack.connected.is_set()
    assert [c.ack.counter for c in chirpstack.commands] == [7]
    async with session_factory() as session:
        rows = (
            await session.execute(
                select(Quarantine.reason, Quarantine.transport, Quarantine.detail).order_by(
                    Quarantine.id
                )
            )
        ).all()
    # Alarms jump the pipeline's queue, so rows are not in publish order.
    assert sorted(reason for reason, _, _ in rows) == sorted(
        [
            "malformed_json",  # not JSON
            "bad_field",  # bad base64
            "bad_field",  # fPort a string
            "malformed_json",  # no deviceInfo
            "eui_mismatch",
            "bad_length",  # a frame 3 bytes long
            "bad_mic",
            "unknown_device",
        ]
    )
    assert {transport for _, transport, _ in rows} == {"lorawan"}
    details = " | ".join(detail for _, _, detail in rows)
    for words in ("base64", "fPort", "lacks deviceInfo", "the frame carries 70b3d57ed0009999"):
        assert words in details
    assert await _count(session_factory, Event) == 1


async def test_heartbeats_get_no_command_and_alert_progress_never_reaches_the_device(
    db_url: str, session_factory: async_sessionmaker[AsyncSession], mosquitto: MosquittoServer
) -> None:
    """Class A: state 1 only. The dispatcher's "dispatched" (state 2) is not sent."""
    async with unit_of_work(session_factory) as session:
        await create_device(session, eui=EUI, key=KEY)
        await create_post(session)
    async with (
        chirpstack_runtime(db_url, mosquitto) as runtime,
        fake_chirpstack(mosquitto) as chirpstack,
    ):
        await chirpstack.publish(EUI, event_payload(KEY, EUI, 41, EventCode.HEARTBEAT))
        await chirpstack.publish(EUI, event_payload(KEY, EUI, 42))
        await chirpstack.commands_for([42])
        await eventually(
            lambda: _count(session_factory, Offer), awaiting="the alert offered to the post"
        )
        await eventually(
            lambda: runtime.downlinks.not_listening,
            awaiting="the dispatcher's progress notice skipped for the LoRaWAN device",
        )
        await chirpstack.publish(EUI, event_payload(KEY, EUI, 43, EventCode.TEST))
        await chirpstack.commands_for([43])
    assert [(c.ack.counter, c.ack.state) for c in chirpstack.commands] == [
        (42, AckState.RECEIVED),
        (43, AckState.RECEIVED),
    ]
    assert runtime.downlinks.unroutable == 0


async def test_readyz_names_the_chirpstack_connection_only_when_it_is_configured(
    db_url: str, mosquitto: MosquittoServer
) -> None:
    async def ready(client: AppClient) -> bool:
        return (await client.get("/readyz")).status_code == 200

    async with alertnet_api(db_url, mqtt_url=mosquitto.url) as client:
        await eventually(lambda: ready(client), awaiting="ready without ChirpStack")
        assert client.runtime.chirpstack is None
        assert "chirpstack" not in (await client.get("/readyz")).json()
    async with alertnet_api(
        db_url, mqtt_url=mosquitto.url, chirpstack_mqtt_url=mosquitto.url
    ) as client:
        await eventually(lambda: ready(client), awaiting="ready with ChirpStack connected")
        assert (await client.get("/readyz")).json()["chirpstack"] == "ok"
    async with alertnet_api(
        db_url, mqtt_url=mosquitto.url, chirpstack_mqtt_url=NO_BROKER
    ) as client:
        await eventually(lambda: client.runtime.mqtt.connected.is_set(), awaiting="MQTT ingest")
        answer = await client.get("/readyz")
        assert answer.status_code == 503
        assert answer.json()["chirpstack"] == "disconnected"
        assert "chirpstack" in answer.json()["failing"]

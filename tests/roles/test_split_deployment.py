"""A split deployment on PostgreSQL and a real Mosquitto: process A runs ``--role ingest``,
process B ``--role api --role dispatch``.

A device presses over MQTT: A commits the alert and acks it ("received"); B's dispatcher offers
it to the post nearby and the device hears "dispatched" from B (A has no dispatcher); the post
accepts through B's API and the device hears "accepted". B's tick is an hour long, so only
A's ``NOTIFY`` can explain the offer: the new alert is dispatched from its commit, across
processes. Both processes log in to the broker as their own ``ALERTNET_MQTT_PROCESS``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiomqtt
import httpx
import pytest
from sqlalchemy import select

from alertnet.db import create_engine, create_session_factory, unit_of_work
from alertnet.models import Alert, AlertState, Offer, OfferState
from alertnet.protocol import AckState, EventCode, Uplink, decode_downlink, down_topic, up_topic
from tests.auth.helpers import create_account
from tests.faults.harness import AlertnetProcess
from tests.support.factories import create_device, create_post
from tests.support.mosquitto import MosquittoServer
from tests.support.polling import eventually

pytestmark = [pytest.mark.postgres, pytest.mark.mosquitto]

#: Long enough that no dispatch pass comes from the tick during the test.
TICK_S = "3600"


async def _city(database_url: str) -> tuple[str, bytes, int, str]:
    """A device and an available post beside it with a logged-in crew: eui, key, post, token."""
    engine = create_engine(database_url)
    try:
        async with unit_of_work(create_session_factory(engine)) as session:
            device = await create_device(session)
            post = await create_post(session)
            crew = await create_account(session, "crew-a", "post", post_callsign=post.callsign)
            return device.eui, device.key, post.id, crew.token
    finally:
        await engine.dispose()


async def _alert_and_offer(database_url: str) -> tuple[Alert, list[Offer]]:
    engine = create_engine(database_url)
    try:
        async with create_session_factory(engine)() as session:
            alert = (await session.scalars(select(Alert))).one()
            offers = list(await session.scalars(select(Offer).where(Offer.alert_id == alert.id)))
            return alert, offers
    finally:
        await engine.dispose()


async def test_ingest_and_api_dispatch_processes_serve_a_press_together(
    roles_pg: str, mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    eui, key, post_id, crew_token = await _city(roles_pg)
    ingest = AlertnetProcess(
        roles_pg,
        mosquitto.url,
        tmp_path / "ingest.log",
        serve_args=["--role", "ingest"],
        env={"ALERTNET_MQTT_PROCESS": "1"},
    )
    api_dispatch = AlertnetProcess(
        roles_pg,
        mosquitto.url,
        tmp_path / "api-dispatch.log",
        serve_args=["--role", "api", "--role", "dispatch"],
        env={"ALERTNET_MQTT_PROCESS": "2", "ALERTNET_DISPATCH_TICK_S": TICK_S},
    )
    heard: list[AckState] = []

    def logs() -> str:
        return f"heard {heard}\n--- A:\n{ingest.log()}\n--- B:\n{api_dispatch.log()}"

    try:
        await asyncio.gather(ingest.start(), api_dispatch.start())
        async with mosquitto.device_client(eui, key) as device:
            await device.subscribe(down_topic(eui), qos=1)

            async def listen() -> None:
                async for message in device.messages:
                    assert isinstance(message.payload, bytes)
                    downlink = decode_downlink(message.payload)
                    assert downlink.verify(key) and downlink.counter == 1
                    heard.append(AckState(downlink.state))

            listening = asyncio.create_task(listen())
            try:
                press = Uplink.build(key, eui, 1, EventCode.PANIC)
                await device.publish(up_topic(eui), press.to_bytes(), qos=1)
                await eventually(
                    lambda: AckState.DISPATCHED in heard,
                    awaiting="the device to hear 'dispatched' from process B",
                    timeout_s=30,
                    details=logs,
                )
                alert, offers = await _alert_and_offer(roles_pg)
                assert alert.state == AlertState.OFFERED
                [offer] = offers
                assert (offer.post_id, offer.state) == (post_id, OfferState.PENDING)

                async with httpx.AsyncClient(base_url=api_dispatch.base_url) as tablet:
                    accepted = await tablet.post(
                        f"/api/v1/offers/{offer.id}/accept",
                        headers={"authorization": f"Bearer {crew_token}"},
                    )
                assert accepted.status_code == 200, accepted.text
                await eventually(
                    lambda: AckState.ACCEPTED in heard,
                    awaiting="the device to hear 'accepted' after the crew accepted on B",
                    timeout_s=30,
                    details=logs,
                )
            finally:
                listening.cancel()
                await asyncio.gather(listening, return_exceptions=True)
        async with httpx.AsyncClient(base_url=ingest.base_url) as client:
            assert (await client.get(f"/api/v1/alerts/{alert.id}")).status_code == 404
    except aiomqtt.MqttError as exc:
        raise AssertionError(f"the device lost the broker: {exc}\n{logs()}") from exc
    finally:
        ingest.stop()
        api_dispatch.stop()

    assert heard[:3] == [AckState.RECEIVED, AckState.DISPATCHED, AckState.ACCEPTED], logs()

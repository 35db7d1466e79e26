"""The broker restarts while LoRaWAN buttons press through ChirpStack: 0 lost, 0 doubled.

The buttons are the simulator's (``firmware_sim``): each press is retransmitted until its
"received" comes back through ChirpStack; the simulated network server (``ChirpStackLink``)
turns every transmission into one uplink event heard by three gateways. A burst of presses is
in flight when Mosquitto stops (SIGTERM: it saves its persistence file); more presses happen
while it is away; it starts again on the same port. alertnet's ChirpStack adapter comes back
to its persistent session, the broker redelivers what alertnet had not acknowledged, and
every press must end as exactly one event, every button as one alert counting its presses.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import secrets

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.db import unit_of_work
from alertnet.models import Alert, Device, Event
from firmware_sim.chirpstack import ChirpStackLink
from firmware_sim.device import RetryPolicy, SimDevice
from firmware_sim.fleet import DeviceSpec, Geo, TransportKind, offset
from firmware_sim.radio import RadioModel
from firmware_sim.state import CounterStore, DeviceCounter
from firmware_sim.stats import Recorder
from tests.chirpstack.support import chirpstack_runtime, harness_url
from tests.support.factories import DEFAULT_LAT, DEFAULT_LON, create_device
from tests.support.mosquitto import MosquittoServer
from tests.support.polling import eventually

pytestmark = pytest.mark.mosquitto

BUTTONS = 6
PRESSES_BEFORE = 2  # per button, acknowledged before the outage
BURST = 2  # per button, in flight when the broker stops
DURING = 1  # per button, pressed while the broker is away
AFTER = 1  # per button, once it is back
OUTAGE_S = 2.0
ALL_ACKED_S = 60.0
#: Short waits between retransmissions, so the test does not sit out the protocol's 15 s.
FAST_RETRY = RetryPolicy.doubling(0.3, 1.0, jitter=0.2)


async def test_broker_restart_with_events_in_flight_loses_and_doubles_nothing(
    db_url: str, session_factory: async_sessionmaker[AsyncSession], mosquitto: MosquittoServer
) -> None:
    centre = Geo(DEFAULT_LAT, DEFAULT_LON)
    specs = [
        DeviceSpec(
            eui=secrets.token_hex(8),
            key=secrets.token_bytes(16),
            kind="panic_button",
            site="public",
            location=offset(centre, 100.0 * index, -50.0 * index),
            transport=TransportKind.CHIRPSTACK,
            supervision_interval_s=900,
        )
        for index in range(BUTTONS)
    ]
    async with unit_of_work(session_factory) as session:
        for spec in specs:
            await create_device(session, eui=spec.eui, key=spec.key)

    recorder = Recorder()
    by_eui: dict[str, SimDevice] = {}
    link = ChirpStackLink(
        harness_url(mosquitto, "chirpstack-sim"),
        by_eui,
        recorder,
        sites=[offset(centre, 400.0, 0.0), offset(centre, -300.0, 300.0), centre],
        radio=RadioModel.perfect(),
        rng=random.Random(7),
    )
    store = CounterStore(None)
    await store.load()
    for spec in specs:
        by_eui[spec.eui] = SimDevice(
            spec,
            DeviceCounter(store, spec.eui),
            link,
            recorder,
            rng=random.Random(spec.eui),
            retry=FAST_RETRY,
        )
    buttons = list(by_eui.values())
    presses: list[asyncio.Task[bool]] = []

    def press_all(times: int) -> list[asyncio.Task[bool]]:
        started = [asyncio.create_task(button.press()) for button in buttons for _ in range(times)]
        presses.extend(started)
        return started

    background = [asyncio.create_task(store.run()), asyncio.create_task(link.run())]
    try:
        async with chirpstack_runtime(db_url, mosquitto) as runtime:
            adapter = runtime.chirpstack
            assert adapter is not None
            await link.wait_connected(10)
            await asyncio.wait_for(asyncio.gather(*press_all(PRESSES_BEFORE)), ALL_ACKED_S)
            connections = adapter.connections

            press_all(BURST)  # not awaited: in flight when the broker goes
            await asyncio.to_thread(mosquitto.stop)
            press_all(DURING)
            await asyncio.sleep(OUTAGE_S)  # the outage; the buttons keep retrying
            await asyncio.to_thread(mosquitto.restart)
            await eventually(
                lambda: adapter.connections > connections and link.connected,
                awaiting="the adapter and ChirpStack back on the broker",
                timeout_s=20,
            )
            press_all(AFTER)
            acked = await asyncio.wait_for(asyncio.gather(*presses), ALL_ACKED_S)
    finally:
        for task in background + presses:
            task.cancel()
        for task in background + presses:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    per_button = PRESSES_BEFORE + BURST + DURING + AFTER
    assert acked == [True] * (BUTTONS * per_button), "every press acknowledged: none lost"
    assert recorder.send_failures["alarm"] + recorder.sent["retransmission"] > 0, (
        "the outage must have cost some transmissions, or nothing was in flight"
    )
    pressed = {(eui, counter) for eui, counter in recorder.presses}
    async with session_factory() as session:
        stored = {
            (eui, counter)
            for eui, counter in await session.execute(
                select(Device.eui, Event.counter).join(Device, Device.id == Event.device_id)
            )
        }
        alerts = (
            await session.execute(
                select(Device.eui, Alert.press_count).join(Device, Device.id == Alert.device_id)
            )
        ).all()
    assert stored == pressed, "exactly the pressed counters are events"
    assert sorted(alerts) == sorted((spec.eui, per_button) for spec in specs), (
        "one alert per button, each press counted once"
    )
    print(
        f"\n{len(pressed)} presses, {link.transmissions} transmissions "
        f"({recorder.sent['retransmission']} retransmissions, "
        f"{link.publish_failures} publish failures), {link.events} events, "
        f"commands {dict(link.downlinks)}"
    )

"""The broker restarts while Frigate publishes: 0 events lost, 0 doubled (DESIGN §6, §9.3).

The simulator's Frigate (``firmware_sim.frigate``) plays a street on two cameras: people who
walk into the watched yard only in an update, people passing by, cars, dogs and false
positives, every track as ``new``/``update``/``end`` messages with QoS 1. A burst is in flight
when Mosquitto stops (SIGTERM: it saves its persistence file); the simulator keeps retrying
while the broker is away; it starts again on the same port. alertnet's adapter comes back to
its persistent session and the broker redelivers what it had not acknowledged. Every
qualifying track must end as exactly one event with its end time, no other track as any, and
each camera as one verify alert counting its events.
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from firmware_sim.frigate import FrigateLink, SimCamera, scenario
from tests.chirpstack.support import harness_url
from tests.frigate.support import NIGHT, alerts, camera_events, create_camera, frigate_runtime
from tests.support.mosquitto import MosquittoServer
from tests.support.polling import eventually

pytestmark = pytest.mark.mosquitto

CAMERAS = (SimCamera("gate", ("yard", "street")), SimCamera("back", ("yard",)))
TRACKS = 40
OUTAGE_S = 1.5


async def test_broker_restart_with_events_in_flight_loses_and_doubles_nothing(
    db_url: str, session_factory: async_sessionmaker[AsyncSession], mosquitto: MosquittoServer
) -> None:
    ids = {
        camera.name: await create_camera(session_factory, camera.name, zones="yard")
        for camera in CAMERAS
    }
    tracks = scenario(CAMERAS, TRACKS, seed=5, start_time=NIGHT)
    expected = {track.id: track for track in tracks if track.qualifies(["person"], ["yard"])}
    assert 5 < len(expected) < TRACKS, "the scenario must mix qualifying and other tracks"
    payloads = [payload for track in tracks for payload in track.messages()]
    half = len(payloads) // 2
    link = FrigateLink(harness_url(mosquitto, "frigate-sim"), client_id="frigate-sim")

    async with frigate_runtime(db_url, mosquitto) as runtime:
        adapter = runtime.frigate
        assert adapter is not None
        await asyncio.wait_for(link.publish_all(payloads[:half]), 30)
        connections = adapter.connections
        # Paced, so the broker stops with part of the rest out and part still to come, however
        # fast the machine publishes.
        rest = asyncio.create_task(link.publish_all(payloads[half:], interval_s=0.02))
        try:
            await eventually(lambda: link.published >= half + 3, awaiting="the rest under way")
            await asyncio.to_thread(mosquitto.stop)
            await asyncio.sleep(OUTAGE_S)
            await asyncio.to_thread(mosquitto.restart)
            await asyncio.wait_for(rest, 60)
        finally:
            if not rest.done():
                rest.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await rest
        await eventually(
            lambda: adapter.connections > connections,
            awaiting="the adapter back on the broker",
            timeout_s=30,
        )

        async def all_ended() -> bool:
            events = await camera_events(session_factory)
            ended = {
                e.dedup_key for e in events if e.details and e.details.get("end_time") is not None
            }
            return ended >= {f"frigate:{frigate_id}" for frigate_id in expected}

        await eventually(
            all_ended, awaiting="every qualifying track stored with its end", timeout_s=60
        )

    assert link.publish_failures > 0, "the outage must have hit the publisher"
    events = await camera_events(session_factory)
    keys = [event.dedup_key for event in events]
    assert sorted(keys) == sorted(f"frigate:{frigate_id}" for frigate_id in expected), (
        "exactly the qualifying tracks, once each"
    )
    for event in events:
        assert event.details is not None
        track = expected[event.details["frigate_id"]]
        assert event.details["end_time"] == track.end_time
        assert event.device_id == ids[track.camera]
    per_camera = {camera.name: 0 for camera in CAMERAS}
    for track in expected.values():
        per_camera[track.camera] += 1
    found = sorted((a.device_id, a.state, a.press_count) for a in await alerts(session_factory))
    assert found == sorted(
        (ids[name], "verify", count) for name, count in per_camera.items() if count
    )

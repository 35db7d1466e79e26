"""The simulator's ChirpStack transport against a real ``alertnet serve``: a steady run of
LoRaWAN buttons, every transmission one ChirpStack event heard by three gateways; nothing
lost, nothing duplicated, every copy counted by alertnet as an uplink."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from bench.harness import AlertnetServer, count_alerts, missing_events, register_fleet
from firmware_sim.device import RetryPolicy
from firmware_sim.fleet import TransportKind, make_fleet
from firmware_sim.radio import RadioModel
from firmware_sim.runner import run_scenario
from firmware_sim.scenario import RunConfig
from tests.chirpstack.support import harness_url
from tests.support import services
from tests.support.database import migrate
from tests.support.mosquitto import MosquittoServer
from tests.support.postgres import temporary_database

pytestmark = [pytest.mark.postgres, pytest.mark.mosquitto]


@pytest_asyncio.fixture
async def sim_db() -> AsyncIterator[str]:
    services.require_postgres()
    async with temporary_database(prefix="alertnet_cs_sim") as url:
        await migrate(url)
        yield url


async def test_steady_run_of_lorawan_buttons_through_chirpstack(
    sim_db: str, mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    config = RunConfig(
        scenario="steady",
        devices=60,
        transports=((TransportKind.CHIRPSTACK, 1.0),),
        rate=20.0,
        duration_s=4.0,
        drain_s=40.0,
        presses=12,
        radio=RadioModel.perfect(),
        mqtt_url=mosquitto.url,
        chirpstack_url=harness_url(mosquitto, "chirpstack-sim"),
        state_path=tmp_path / "counters.json",
        retry=RetryPolicy.doubling(first_s=1.0, max_s=4.0),
        progress=False,
    )
    await register_fleet(sim_db, make_fleet(config.fleet_plan()))
    server = AlertnetServer(
        sim_db,
        mosquitto.url,
        tmp_path / "alertnet.log",
        extra_env={"ALERTNET_CHIRPSTACK_MQTT_URL": mosquitto.url},
    )
    await server.start()
    try:
        report = await asyncio.wait_for(
            run_scenario(dataclasses.replace(config, base_url=server.base_url)), 90
        )
    finally:
        server.stop()
    context = f"{report.table()}\n{server.log_tail()}"
    presses = [(eui, int(n)) for eui, _, n in (p.partition(":") for p in report.presses)]
    assert report.summary["presses"] > 0, context
    assert report.lost == 0 and report.duplicated == 0, context
    assert await missing_events(sim_db, presses) == [], context
    assert (await count_alerts(sim_db))["duplicated"] == 0, context
    link = report.links["chirpstack"]
    # Three gateways heard every transmission; alertnet committed each copy as an uplink.
    assert link["receptions"] == 3 * link["events"] == 3 * link["transmissions"], context
    assert report.server_uplinks == report.expected_server_uplinks, context
    assert link["downlinks"].get("wrong_port_or_confirmed", 0) == 0, context

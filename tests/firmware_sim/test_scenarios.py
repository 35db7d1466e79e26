"""Smoke runs of the simulator against a real ``alertnet serve`` (PostgreSQL, the project's
Mosquitto, serial gateways on ptys): nothing lost, nothing duplicated. Correctness only —
these tests never assert a timing.

``steady`` mixes every transport (MQTT binary and JSON, HTTP, LoRa through three simulated
REYAX gateways); ``flood`` has every packet heard by five gateways; ``chaos`` restarts the
broker mid-run while devices reboot. When this alertnet serves the tablet API and the stream,
simulated tablets and a dispatcher's stream watcher join in.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from bench.harness import (
    DISPATCHER,
    AlertnetServer,
    count_alerts,
    create_tablet_users,
    missing_events,
    register_fleet,
    tablet_endpoints_exist,
)
from firmware_sim.device import RetryPolicy
from firmware_sim.fleet import TransportKind, make_fleet
from firmware_sim.runner import run_scenario
from firmware_sim.scenario import RunConfig, RunReport
from firmware_sim.tablet import TabletBehaviour
from tests.support import services
from tests.support.database import migrate
from tests.support.mosquitto import MosquittoServer
from tests.support.postgres import temporary_database

pytestmark = [pytest.mark.postgres, pytest.mark.mosquitto]

ALL_TRANSPORTS = (
    (TransportKind.MQTT, 2.0),
    (TransportKind.MQTT_JSON, 1.0),
    (TransportKind.HTTP, 1.0),
    (TransportKind.LORA, 2.0),
)


@pytest_asyncio.fixture
async def sim_db() -> AsyncIterator[str]:
    services.require_postgres()
    async with temporary_database(prefix="alertnet_sim") as url:
        await migrate(url)
        yield url


class RestartMosquitto:
    def __init__(self, server: MosquittoServer) -> None:
        self.server = server

    async def restart(self) -> None:
        await asyncio.to_thread(self.server.restart)


async def run_against_alertnet(
    db_url: str,
    mosquitto: MosquittoServer,
    tmp_path: Path,
    config: RunConfig,
    *,
    broker: RestartMosquitto | None = None,
) -> RunReport:
    config = dataclasses.replace(
        config,
        mqtt_url=mosquitto.url,
        pty_dir=tmp_path / "pty",
        state_path=tmp_path / "counters.json",
        retry=RetryPolicy.doubling(first_s=1.0, max_s=4.0),
        progress=False,
    )
    plan = config.fleet_plan()
    await register_fleet(db_url, make_fleet(plan))
    await mosquitto.allow_registry(db_url)  # as `alertnet broker config` + SIGHUP would
    if tablet_endpoints_exist():
        tablets = await create_tablet_users(db_url, 5)
        config = dataclasses.replace(
            config,
            tablets=tuple(tablets),
            watcher=DISPATCHER,
            # Quick crews (time compressed): they are free again within seconds.
            tablet_behaviour=TabletBehaviour(
                reaction_median_s=0.2, speed_mps=2000, scene_s=0.2, location_interval_s=1.0
            ),
        )
    uses_lora = any(kind is TransportKind.LORA for kind, _ in plan.transports)
    gateways = max(config.gateways, 5) if config.scenario == "flood" else config.gateways
    serial = ",".join(
        f"gw-{index + 1}={config.pty_dir / f'gw-{index + 1}'}" for index in range(gateways)
    )
    server = AlertnetServer(
        db_url, mosquitto.url, tmp_path / "alertnet.log", serial=serial if uses_lora else ""
    )
    await server.start()
    try:
        report = await asyncio.wait_for(
            run_scenario(dataclasses.replace(config, base_url=server.base_url), broker), 90
        )
    finally:
        server.stop()
    presses = [
        (eui, int(counter)) for eui, _, counter in (p.partition(":") for p in report.presses)
    ]
    missing = await missing_events(db_url, presses)
    alerts = await count_alerts(db_url)
    context = f"{report.table()}\n{server.log_tail()}"
    assert report.summary["presses"] > 0, context
    assert report.lost == 0, context
    assert missing == [], context
    assert report.duplicated == 0, context
    assert alerts["duplicated"] == 0, context
    assert report.summary["downlinks"].get("bad", 0) == 0, context
    return report


async def test_steady_over_every_transport(
    sim_db: str, mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    config = RunConfig(
        scenario="steady",
        devices=240,
        transports=ALL_TRANSPORTS,
        rate=60.0,
        duration_s=5.0,
        drain_s=40.0,
        presses=24,
    )
    report = await run_against_alertnet(sim_db, mosquitto, tmp_path, config)
    by_transport = report.summary["press_to_ack_by_transport"]
    assert set(by_transport) <= {kind.value for kind, _ in ALL_TRANSPORTS}
    assert report.server_uplinks is not None and report.server_uplinks > 0


async def test_flood_five_gateways_hear_every_packet(
    sim_db: str, mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    config = RunConfig(
        scenario="flood", devices=120, rate=30.0, duration_s=5.0, drain_s=40.0, presses=15
    )
    report = await run_against_alertnet(sim_db, mosquitto, tmp_path, config)
    gateways = report.links["lora"]["gateways"]
    assert len(gateways) == 5
    transmissions = report.links["lora"]["transmissions"]
    assert all(gateway["heard"] == transmissions for gateway in gateways.values())
    # One downlink per acknowledged transmission, not one per gateway that heard it.
    downlinks = sum(gateway["downlinks"] for gateway in gateways.values())
    assert report.summary["presses"] <= downlinks < 5 * report.summary["presses"]


@pytest.mark.slow
async def test_chaos_broker_restart_loses_and_duplicates_nothing(
    sim_db: str, mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    config = RunConfig(
        scenario="chaos",
        devices=200,
        transports=((TransportKind.MQTT, 1.0), (TransportKind.MQTT_JSON, 1.0)),
        rate=80.0,
        duration_s=8.0,
        drain_s=40.0,
        presses=30,
        reboot_share=0.2,
    )
    report = await run_against_alertnet(
        sim_db, mosquitto, tmp_path, config, broker=RestartMosquitto(mosquitto)
    )
    assert any("broker restarted" in note for note in report.summary["notes"])
    assert report.summary["reboots"] == 40

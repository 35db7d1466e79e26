"""``/readyz`` is honest (DESIGN §14): 503 naming the part while anything cannot work.

Issue 12: with the ingest pipeline task dead, ``/readyz`` still answered 200. Now every runtime
task runs under the supervisor, and ``/readyz`` lists each task's state, names a task while it
is down or restarting too often, and names the pipeline while an uplink waits too long. The
first fields of the body (``ready``, ``database``, ``broker``) keep their meaning.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from alertnet import health
from alertnet.db import create_engine, create_session_factory, unit_of_work
from alertnet.ingest.pipeline import RawUplink
from alertnet.models import Transport
from alertnet.protocol import EventCode, Uplink
from tests.ingest.helpers import EUI, KEY
from tests.support import services
from tests.support.asgi import alertnet_api
from tests.support.database import migrate
from tests.support.factories import create_device
from tests.support.mosquitto import MosquittoServer
from tests.support.polling import eventually
from tests.support.postgres import temporary_database

RUNTIME_TASKS = {
    "ingest-pipeline",
    "gateway-registry",
    "downlink-router",
    "mqtt-ingest",
    "supervision",
    "realtime-hub",
    "dispatcher",
    "retention",
    "drills",
}


@pytest.mark.mosquitto
async def test_readyz_names_a_task_that_keeps_crashing_and_metrics_count_it(
    db_url: str, mosquitto: MosquittoServer
) -> None:
    async with alertnet_api(db_url, mqtt_url=mosquitto.url) as client:
        ready = await eventually(
            lambda: client.get("/readyz"),
            lambda r: r.status_code == 200,
            awaiting="readiness",
        )
        body = ready.json()
        assert (body["ready"], body["database"], body["broker"]) == (True, "ok", "ok")
        assert (body["pipeline"], body["failing"]) == ("ok", [])
        # On PostgreSQL the dispatcher also LISTENs for other processes' new alerts.
        listen = {"dispatch-listen"} if db_url.startswith("postgresql") else set()
        assert set(body["tasks"]) == RUNTIME_TASKS | listen
        assert set(body["tasks"].values()) == {"ok"}

        async def broken() -> None:
            raise RuntimeError("a bug in a loop")

        runtime = client.runtime
        runtime.tasks.add("probe", broken)
        await eventually(
            lambda: runtime.metrics.registry.get_sample_value(
                "alertnet_task_restarts_total", {"task": "probe"}
            ),
            lambda restarts: restarts > 5,
            awaiting="six restarts of the probe task",
        )
        answer = await client.get("/readyz")
        assert answer.status_code == 503
        body = answer.json()
        assert body["ready"] is False and body["failing"] == ["task:probe"]
        assert (body["error"], body["code"]) == ("not_ready", "not_ready")
        assert "task:probe" in body["detail"]
        assert "restart" in body["tasks"]["probe"]
        assert "RuntimeError: a bug in a loop" in body["tasks"]["probe"]
        assert body["tasks"]["ingest-pipeline"] == "ok"
        assert b'alertnet_task_restarts_total{task="ingest-pipeline"} 0.0' in (
            runtime.metrics.render()
        )


@pytest_asyncio.fixture
async def scratch_pg() -> AsyncIterator[tuple[str, AsyncEngine]]:
    services.require_postgres()
    async with temporary_database(prefix="alertnet_ready") as url:
        await migrate(url)
        engine = create_engine(url)
        try:
            yield url, engine
        finally:
            await engine.dispose()


@pytest.mark.postgres
async def test_readyz_names_the_pipeline_while_an_uplink_waits_on_a_stuck_batch(
    scratch_pg: tuple[str, AsyncEngine], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, engine = scratch_pg
    async with unit_of_work(create_session_factory(engine)) as session:
        await create_device(session, eui=EUI, key=KEY)
    monkeypatch.setattr(health, "PIPELINE_STALLED_AFTER_S", 0.5)
    async with alertnet_api(url) as client:
        lock = await engine.connect()
        transaction = await lock.begin()
        await lock.execute(text("SELECT id FROM devices FOR UPDATE"))
        press = Uplink.build(KEY, EUI, 1, EventCode.PANIC).to_bytes()
        outcome = client.runtime.pipeline.submit(RawUplink(press, Transport.HTTP))
        stalled = await eventually(
            lambda: client.get("/readyz"),
            lambda r: r.json()["pipeline"].startswith("stalled"),
            awaiting="the pipeline to be reported stalled",
        )
        assert stalled.status_code == 503 and "pipeline" in stalled.json()["failing"]
        assert stalled.json()["tasks"]["ingest-pipeline"] == "ok"  # running, only stuck
        await transaction.rollback()
        await lock.close()
        assert (await outcome).accepted
        recovered = await client.get("/readyz")
        assert recovered.json()["pipeline"] == "ok"

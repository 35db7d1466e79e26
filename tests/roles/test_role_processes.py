"""Each role, as a real ``alertnet serve --role …`` process, runs only its parts.

What the operator sees is the contract: ``/readyz`` lists the roles and only the tasks that
run in the process (an API-only process does not report the MQTT broker), every process
answers ``/healthz`` and ``/metrics``, and the API's routes are 404 without the ``api`` role.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.faults.harness import AlertnetProcess
from tests.support.mosquitto import MosquittoServer

pytestmark = [pytest.mark.mosquitto]

#: The tasks of each single-role process on PostgreSQL (on SQLite: no ``dispatch-notify``
#: and no ``dispatch-listen``, which carry wake-ups between processes).
TASKS_ON_POSTGRES = {
    "ingest": {
        "ingest-pipeline",
        "gateway-registry",
        "downlink-router",
        "mqtt-ingest",
        "dispatch-notify",
    },
    "api": {"ingest-pipeline", "downlink-publisher", "dispatch-notify", "realtime-hub"},
    "dispatch": {
        "ingest-pipeline",
        "downlink-publisher",
        "dispatcher",
        "dispatch-listen",
        "supervision",
        "retention",
        "drills",
    },
}
#: A route of the API (its answer without a login is 401, never 404, where it is served).
API_ROUTE = "/api/v1/alerts"


@asynccontextmanager
async def serving(
    database_url: str, broker: MosquittoServer, log: Path, roles: Sequence[str]
) -> AsyncIterator[AlertnetProcess]:
    server = AlertnetProcess(
        database_url,
        broker.url,
        log,
        serve_args=[arg for role in roles for arg in ("--role", role)],
    )
    try:
        await server.start()
        yield server
    finally:
        server.stop()


async def observe(server: AlertnetProcess) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10.0) as client:
        ready = await client.get("/readyz")
        health = await client.get("/healthz")
        api = await client.get(API_ROUTE)
    return {
        "ready": ready.status_code,
        "body": ready.json(),
        "health": health.status_code,
        "api": api.status_code,
        "metrics": await server.metrics(),
    }


@pytest.mark.postgres
@pytest.mark.parametrize("role", ["ingest", "api", "dispatch"])
async def test_a_single_role_process_runs_only_its_parts(
    role: str, roles_pg: str, mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    async with serving(roles_pg, mosquitto, tmp_path / "alertnet.log", [role]) as server:
        seen = await observe(server)
        startup = server.log()

    body = seen["body"]
    assert seen["ready"] == 200 and body["ready"] is True, body
    assert body["roles"] == [role]
    assert set(body["tasks"]) == TASKS_ON_POSTGRES[role], body
    assert ("broker" in body) == (role == "ingest"), body
    assert seen["health"] == 200
    assert seen["api"] == (401 if role == "api" else 404)
    # Metrics are served everywhere, with the process's own tasks in them.
    assert 'alertnet_task_up{task="ingest-pipeline"} 1.0' in seen["metrics"]
    assert f"alertnet 0.1.0: roles {role} — " in startup
    assert "(event loop: uvloop)" in startup


async def test_an_ingest_process_on_sqlite_runs_without_cross_process_wakeups(
    roles_sqlite: str, mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    async with serving(roles_sqlite, mosquitto, tmp_path / "alertnet.log", ["ingest"]) as server:
        seen = await observe(server)

    body = seen["body"]
    assert seen["ready"] == 200 and body["broker"] == "ok", body
    assert set(body["tasks"]) == TASKS_ON_POSTGRES["ingest"] - {"dispatch-notify"}
    assert seen["api"] == 404


@pytest.mark.postgres
async def test_all_roles_by_default(
    roles_pg: str, mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    async with serving(roles_pg, mosquitto, tmp_path / "alertnet.log", []) as server:
        seen = await observe(server)
        startup = server.log()

    body = seen["body"]
    assert body["roles"] == ["api", "dispatch", "ingest"]
    expected = (TASKS_ON_POSTGRES["ingest"] | TASKS_ON_POSTGRES["api"]) | TASKS_ON_POSTGRES[
        "dispatch"
    ]
    # One process: the dispatcher is woken in-process and downlinks use the MQTT ingest.
    assert set(body["tasks"]) == expected - {"dispatch-notify", "downlink-publisher"}
    assert seen["api"] == 401
    assert "roles api, ingest, dispatch — " in startup
    assert "console at http://127.0.0.1:" in startup

"""What each role runs (``alertnet.roles.ProcessPlan``) and how ``serve --role`` is validated."""

from __future__ import annotations

import subprocess
import sys

import pytest

from alertnet.config import Settings
from alertnet.roles import ALL_ROLES, ProcessPlan, ProcessRole
from tests.faults.harness import PROJECT_ROOT

PG = "postgresql://alertnet@db.local/alertnet"
SQLITE = "sqlite:///./alertnet.db"
BROKER = "mqtt://alertnet:secret@127.0.0.1:1883"


def plan(*roles: ProcessRole, database_url: str = PG, **settings: object) -> ProcessPlan:
    return ProcessPlan(
        frozenset(roles), Settings(database_url=database_url, mqtt_url=BROKER, **settings)
    )


def test_ingest_runs_the_transports_and_wakes_other_dispatchers_on_postgres() -> None:
    ingest = plan(ProcessRole.INGEST, dc09_listen=":7000", serial="gw-1=/dev/ttyUSB0")
    assert (ingest.serves_api, ingest.runs_ingest, ingest.runs_dispatch) == (False, True, False)
    assert not ingest.publishes_downlinks_alone  # through the MQTT ingest's connection
    assert ingest.wakes_dispatch_by_notify and not ingest.listens_for_dispatch
    assert ingest.describe() == (
        "roles ingest — MQTT ingest, DC-09 receiver, serial bridge gw-1, gateway registry, "
        "ingest pipeline"
    )


def test_api_and_dispatch_publish_their_own_downlinks_and_listen() -> None:
    api_dispatch = plan(ProcessRole.DISPATCH, ProcessRole.API)
    assert api_dispatch.publishes_downlinks_alone
    assert api_dispatch.listens_for_dispatch and not api_dispatch.wakes_dispatch_by_notify
    assert api_dispatch.describe() == (
        "roles api, dispatch — HTTP API and pages, realtime hub, ingest pipeline, downlink "
        "publisher, dispatcher, device supervision, retention, drills"
    )
    assert plan(ProcessRole.API).wakes_dispatch_by_notify  # tablet answers, HTTP uplinks


def test_sqlite_has_no_cross_process_wakeups() -> None:
    for roles in ([ProcessRole.INGEST], [ProcessRole.DISPATCH], list(ALL_ROLES)):
        sqlite = plan(*roles, database_url=SQLITE)
        assert not sqlite.wakes_dispatch_by_notify and not sqlite.listens_for_dispatch


def test_all_roles_is_one_process_as_before() -> None:
    everything = plan(*ALL_ROLES)
    assert not everything.publishes_downlinks_alone
    assert not everything.wakes_dispatch_by_notify  # the dispatcher is woken in-process
    assert everything.listens_for_dispatch  # another process's ingest may wake it


def test_the_embedded_broker_lives_with_ingest() -> None:
    settings = Settings(database_url=PG, mqtt_url="embedded", embedded_mqtt_port=1999)
    with_ingest = ProcessPlan(frozenset({ProcessRole.INGEST}), settings)
    without = ProcessPlan(frozenset({ProcessRole.DISPATCH}), settings)
    assert with_ingest.runs_embedded_broker and not without.runs_embedded_broker
    assert without.mqtt_url == "mqtt://127.0.0.1:1999"


def test_a_process_needs_a_role() -> None:
    with pytest.raises(ValueError, match="at least one role"):
        plan()


@pytest.mark.parametrize("role", ["web", "API", ""])
def test_serve_refuses_an_unknown_role_with_a_usage_error(role: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "alertnet", "serve", "--role", "ingest", "--role", role],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result
    assert f"argument --role: invalid choice: '{role}'" in result.stderr
    assert "'api', 'ingest', 'dispatch'" in result.stderr

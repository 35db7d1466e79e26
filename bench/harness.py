"""The stack a bench (or a smoke test) runs the firmware simulator against, on loopback only.

- ``Broker``: the project's own Mosquitto (``alertnet.broker.mosquitto.write_config``) on a
  free port, restartable on the same port with its persistence (the chaos scenario's hook).
- ``scratch_database``: a fresh PostgreSQL database, migrated, dropped afterwards.
- ``register_fleet`` / ``create_tablet_users``: the simulator's devices (bulk Core insert,
  keys known), posts with their tablet logins, and a dispatcher for the stream watcher.
- ``AlertnetServer``: ``python -m alertnet serve`` as a subprocess (all roles, or the
  ``--role``s given; every role serves ``/readyz`` and ``/metrics``), awaited on ``/readyz``;
  ``memory()`` reads its VmRSS and VmHWM.
- ``count_alerts`` / ``missing_events``: the database's own verdict after a run.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from pathlib import Path
from typing import Any

import aiomqtt
import asyncpg
import httpx
from sqlalchemy import func, insert, select, tuple_
from sqlalchemy.engine import make_url

from alertnet.broker.mosquitto import Listener, write_config
from alertnet.db import create_engine, create_session_factory, migrate, unit_of_work
from alertnet.models import Alert, Device, Event
from firmware_sim.fleet import DeviceSpec
from firmware_sim.tablet import TabletSpec

HOST = "127.0.0.1"
DEFAULT_PG_ADMIN_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
TABLET_PASSWORD = "bench-tablet-pass"
DISPATCHER = ("bench-dispatcher", "load-run watch 7319 quiet")
_INSERT_CHUNK = 2000


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_listening(port: int, timeout_s: float, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode}")
        try:
            with socket.create_connection((HOST, port), timeout=0.2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {port} after {timeout_s} s") from None
            time.sleep(0.05)


class Broker:
    """Mosquitto with alertnet's configuration, in ``directory``; ``restart()`` keeps the port."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.restarts = 0

    @property
    def url(self) -> str:
        return f"mqtt://{HOST}:{self.port}"

    def start(self) -> None:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        # Anonymous (loopback only): the simulator's fleet shares a few connections here.
        conf = write_config(
            self.directory,
            listeners=[Listener(HOST, self.port)],
            accounts=None,
            run_as=getpass.getuser(),
        )
        with (self.directory / "mosquitto.stderr").open("ab") as log:
            self.process = subprocess.Popen(
                [binary, "-c", str(conf)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        _wait_listening(self.port, 10.0, self.process)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None

    async def restart(self) -> None:
        """SIGTERM (Mosquitto saves its persistence) and start again on the same port."""
        await asyncio.to_thread(self.stop)
        await asyncio.to_thread(self.start)
        self.restarts += 1

    async def forget_session(self, client_id: str) -> None:
        """Drop the persistent session of ``client_id``: a subscriber that is gone for good
        must not have every later message queued for it (the broker's work, and a stale
        backlog for whoever takes that id next)."""
        async with aiomqtt.Client(HOST, self.port, identifier=client_id, clean_session=True):
            pass


def pg_admin_url() -> str:
    return os.environ.get("ALERTNET_TEST_PG_URL", DEFAULT_PG_ADMIN_URL)


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextlib.asynccontextmanager
async def scratch_database(prefix: str = "alertnet_bench") -> AsyncIterator[str]:
    """A new, migrated PostgreSQL database for the block; dropped (forcibly) afterwards."""
    admin_url = pg_admin_url()
    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(3)}"
    admin = await asyncpg.connect(_dsn(admin_url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        await asyncio.to_thread(migrate, url)
        yield url
    finally:
        admin = await asyncpg.connect(_dsn(admin_url))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def register_fleet(db_url: str, fleet: Sequence[DeviceSpec]) -> None:
    """Insert the simulator's devices with their keys (Core, in chunks)."""
    engine = create_engine(db_url)
    try:
        async with unit_of_work(create_session_factory(engine)) as session:
            for start in range(0, len(fleet), _INSERT_CHUNK):
                rows: list[dict[str, Any]] = [
                    {
                        "eui": spec.eui,
                        "kind": spec.kind,
                        "site": spec.site,
                        "name": f"sim {spec.transport.value}",
                        "address": "",
                        "lat": spec.location.lat,
                        "lon": spec.location.lon,
                        "key": spec.key,
                        "supervision_interval_s": spec.supervision_interval_s,
                        "status": "active",
                        "window_highest": -1,
                        "window_seen": 0,
                        "last_format": spec.transport.wire_format.value,
                    }
                    for spec in fleet[start : start + _INSERT_CHUNK]
                ]
                await session.execute(insert(Device), rows)
    finally:
        await engine.dispose()


async def create_tablet_users(db_url: str, count: int) -> list[TabletSpec]:
    """``count`` posts, each with a tablet login, and the dispatcher ``DISPATCHER``."""
    from alertnet.auth.users import create_user
    from alertnet.posts.service import add_post

    engine = create_engine(db_url)
    specs = [
        TabletSpec(f"P-{index + 1:03d}", f"post{index + 1:03d}", TABLET_PASSWORD)
        for index in range(count)
    ]
    try:
        async with unit_of_work(create_session_factory(engine)) as session:
            for spec in specs:
                await add_post(session, spec.callsign)
                await create_user(
                    session,
                    spec.username,
                    "post",
                    password=spec.password,
                    post_callsign=spec.callsign,
                )
            await create_user(session, DISPATCHER[0], "dispatcher", password=DISPATCHER[1])
    finally:
        await engine.dispose()
    return specs


def _route_paths(routes: Iterable[Any]) -> set[str]:
    paths: set[str] = set()
    for route in routes:
        path = getattr(route, "path", None)
        if isinstance(path, str):
            paths.add(path)
        inner = getattr(route, "original_router", None)  # FastAPI's included routers
        if inner is not None:
            paths |= _route_paths(inner.routes)  # their paths carry the prefix already
    return paths


def tablet_endpoints_exist() -> bool:
    """Whether this alertnet serves the tablet API and the stream yet (DESIGN §5)."""
    from alertnet.app import create_app
    from alertnet.config import Settings

    app = create_app(Settings(database_url="sqlite+aiosqlite:///:memory:"))
    paths = _route_paths(app.routes) | set(app.openapi().get("paths", {}))
    return {
        "/api/v1/auth/login",
        "/api/v1/posts/me/location",
        "/api/v1/posts/me/status",
        "/api/v1/offers/{offer_id}/accept",
        "/api/v1/stream",
    } <= paths


class AlertnetServer:
    """``python -m alertnet serve`` on a free port; its output goes to ``log_path``."""

    def __init__(
        self,
        db_url: str,
        mqtt_url: str,
        log_path: Path,
        *,
        serial: str = "",
        client_id: str = "alertnet-bench",
        extra_env: dict[str, str] | None = None,
        profile_to: Path | None = None,
        roles: Sequence[str] = (),
    ) -> None:
        self.roles = tuple(roles)
        self.port = free_port()
        self.base_url = f"http://{HOST}:{self.port}"
        self.log_path = log_path
        self.env = {
            **os.environ,
            "ALERTNET_DATABASE_URL": db_url,
            "ALERTNET_MQTT_URL": mqtt_url,
            # Fixed: a restarted server resumes its persistent session (and its backlog).
            "ALERTNET_MQTT_CLIENT_ID": client_id,
            "ALERTNET_SERIAL": serial,
            "ALERTNET_LOG_LEVEL": "WARNING",
            # The bench and the simulator read /metrics from this host without a token.
            "ALERTNET_METRICS_ALLOW": HOST,
            **(extra_env or {}),
        }
        self.profile_to = profile_to
        self.process: subprocess.Popen[bytes] | None = None

    async def start(self, timeout_s: float = 60.0) -> None:
        serve = ["-m", "alertnet", "serve", "--port", str(self.port)]
        for role in self.roles:
            serve += ["--role", role]
        command = [sys.executable, *serve]
        if self.profile_to is not None:
            profiler = ["-m", "pyinstrument", "--renderer", "text", "--outfile"]
            command = [sys.executable, *profiler, str(self.profile_to), *serve]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout_s
        async with httpx.AsyncClient() as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError("alertnet exited:\n" + self.log_tail())
                with contextlib.suppress(httpx.HTTPError):
                    response = await client.get(f"{self.base_url}/readyz")
                    if response.status_code == 200:
                        return
                await asyncio.sleep(0.1)
        raise TimeoutError("alertnet did not become ready:\n" + self.log_tail())

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def memory(self) -> dict[str, float]:
        """This process's VmRSS and peak VmHWM now, in MB (empty once it has exited)."""
        return process_memory(self.pid) if self.pid is not None else {}

    async def uplinks_committed(self) -> float | None:
        """alertnet's ``alertnet_uplinks_total`` (all outcomes), from ``/metrics``."""
        async with httpx.AsyncClient() as client:
            try:
                response = await client.get(f"{self.base_url}/metrics")
            except httpx.HTTPError:
                return None
        total = 0.0
        for line in response.text.splitlines():
            if line.startswith("alertnet_uplinks_total{"):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def kill(self) -> None:
        """SIGKILL: the process dies at once, mid-batch, as in a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGCONT)  # a paused process could not stop
        self.process.send_signal(signal.SIGINT)  # uvicorn (and pyinstrument) finish cleanly
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


def process_memory(pid: int) -> dict[str, float]:
    """``VmRSS`` (now) and ``VmHWM`` (the peak so far) of ``pid`` from /proc, in MB."""
    memory: dict[str, float] = {}
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return memory
    for line in status.splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            memory["rss_mb" if name == "VmRSS" else "hwm_mb"] = round(
                int(value.split()[0]) / 1024, 1
            )
    return memory


async def count_alerts(db_url: str) -> dict[str, int]:
    """Alerts per kind of problem: ``duplicated`` counts a second alert of one
    (device, category, trouble, drill) opened while another was open — what must never
    happen (a drill alert beside a real one of the same device is allowed: DESIGN §2.3)."""
    engine = create_engine(db_url)
    try:
        async with create_session_factory(engine)() as session:
            total = await session.scalar(select(func.count()).select_from(Alert))
            rows = (
                await session.execute(
                    select(
                        Alert.device_id,
                        Alert.category,
                        Alert.trouble,
                        Alert.drill,
                        Alert.opened_at,
                        Alert.closed_at,
                    ).order_by(Alert.device_id, Alert.category, Alert.drill, Alert.opened_at)
                )
            ).all()
    finally:
        await engine.dispose()
    duplicated = 0
    previous: tuple[Any, ...] | None = None
    for device_id, category, trouble, drill, opened_at, closed_at in rows:
        key = (device_id, category, trouble, drill)
        if previous is not None and previous[0] == key:
            earlier_closed_at = previous[1]
            if earlier_closed_at is None or earlier_closed_at > opened_at:
                duplicated += 1
        previous = (key, closed_at)
    return {"alerts": int(total or 0), "duplicated": duplicated}


async def missing_events(db_url: str, presses: Iterable[tuple[str, int]]) -> list[tuple[str, int]]:
    """The (eui, counter) presses that have no event row in the database."""
    wanted = list(presses)
    if not wanted:
        return []
    engine = create_engine(db_url)
    found: set[tuple[str, int]] = set()
    try:
        async with create_session_factory(engine)() as session:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                rows = await session.execute(
                    select(Device.eui, Event.counter)
                    .join(Device, Device.id == Event.device_id)
                    .where(tuple_(Device.eui, Event.counter).in_(chunk))
                )
                found.update((eui, int(counter)) for eui, counter in rows if counter is not None)
    finally:
        await engine.dispose()
    return [press for press in wanted if press not in found]

"""The ``alertnet`` command end to end: real processes against a temporary SQLite database."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from alertnet.auth.tokens import user_for_token
from alertnet.cli import display_url
from alertnet.db import create_engine, create_session_factory, unit_of_work

ALERTNET = Path(sys.executable).with_name("alertnet")
KEY_HEX = "000102030405060708090a0b0c0d0e0f"
HEX32 = re.compile(r"\b[0-9a-f]{32}\b")


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str


@dataclass(frozen=True)
class Cli:
    db_path: Path
    env: dict[str, str]

    def __call__(self, *args: str, timeout_s: float = 60) -> Ran:
        done = subprocess.run(
            [str(ALERTNET), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        assert "Traceback" not in done.stderr, done.stderr
        return Ran(done.returncode, done.stdout, done.stderr)

    def ok(self, *args: str) -> str:
        ran = self(*args)
        assert ran.code == 0, ran.err
        return ran.out

    def query(self, sql: str, *params: object) -> list[tuple[object, ...]]:
        with sqlite3.connect(self.db_path) as connection:
            return connection.execute(sql, params).fetchall()

    @property
    def database_url(self) -> str:
        return self.env["ALERTNET_DATABASE_URL"]


def _env(db_path: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("ALERTNET_")}
    env["ALERTNET_DATABASE_URL"] = f"sqlite:///{db_path}"
    env["ALERTNET_LOG_LEVEL"] = "WARNING"
    return env


@pytest.fixture(scope="module")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One database migrated by `alertnet migrate`, copied for each test."""
    path = tmp_path_factory.mktemp("cli") / "template.db"
    out = Cli(path, _env(path)).ok("migrate")
    assert "migrated" in out and str(path) in out
    return path


@pytest.fixture
def cli(migrated_template: Path, tmp_path: Path) -> Cli:
    path = tmp_path / "alertnet.db"
    shutil.copyfile(migrated_template, path)
    return Cli(path, _env(path))


@pytest.fixture
def fresh_cli(tmp_path: Path) -> Cli:
    path = tmp_path / "fresh.db"
    return Cli(path, _env(path))


def test_python_dash_m_runs_the_same_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "alertnet", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.startswith("alertnet ")


def test_display_url_hides_the_password() -> None:
    shown = display_url("postgresql+asyncpg://alertnet:s3cret@db.local:5432/alertnet")
    assert "s3cret" not in shown and "db.local" in shown and "alertnet" in shown


def test_migrate_is_repeatable_and_commands_before_it_get_a_hint(fresh_cli: Cli) -> None:
    ran = fresh_cli("mahalla", "add", "Chorsu", "--risk", "red")
    assert ran.code == 1 and "alertnet migrate" in ran.err
    assert "migrated" in fresh_cli.ok("migrate")
    assert "migrated" in fresh_cli.ok("migrate")
    fresh_cli.ok("mahalla", "add", "Chorsu", "--risk", "red")


def test_device_add_prints_a_generated_key_once(cli: Cli) -> None:
    cli.ok("mahalla", "add", "Chorsu", "--risk", "red", "--lat", "41.3262", "--lon", "69.2362")
    out = cli.ok(
        "device", "add", "70b3d57ed0001234", "--kind", "panic_button",
        "--lat", "41.3111", "--lon", "69.2797", "--mahalla", "Chorsu",
    )  # fmt: skip
    keys = HEX32.findall(out)
    assert len(keys) == 1
    assert cli.query("SELECT hex(key), site, supervision_interval_s FROM devices") == [
        (keys[0].upper(), "public", 900)
    ]

    out = cli.ok(
        "device", "add", "70b3d57ed0001235", "--kind", "intrusion_alarm",
        "--lat", "41.3", "--lon", "69.2", "--key", KEY_HEX, "--site", "household",
        "--name", "Flat 12", "--address", "Nukus St 71",
    )  # fmt: skip
    assert not HEX32.search(out)
    assert cli.query("SELECT name, address FROM devices WHERE eui = '70b3d57ed0001235'") == [
        ("Flat 12", "Nukus St 71")
    ]


def test_device_add_errors_are_one_line_and_exit_1(cli: Cli) -> None:
    args = ("device", "add", "70b3d57ed0001234", "--kind", "panic_button")
    cli.ok(*args, "--lat", "41.3", "--lon", "69.2")
    duplicate = cli(*args, "--lat", "41.3", "--lon", "69.2")
    assert duplicate.code == 1
    assert duplicate.err.strip() == "error: a device with EUI 70b3d57ed0001234 already exists"
    bad_key = cli("device", "add", "70b3d57ed0009999", "--kind", "panic_button",
                  "--lat", "41.3", "--lon", "69.2", "--key", "abc")  # fmt: skip
    assert bad_key.code == 1 and "32 hex characters" in bad_key.err
    unknown = cli(*args[:2], "70b3d57ed0009999", "--kind", "panic_button",
                  "--lat", "41.3", "--lon", "69.2", "--mahalla", "Atlantis")  # fmt: skip
    assert unknown.code == 1 and "no mahalla named 'Atlantis'" in unknown.err
    assert cli.query("SELECT count(*) FROM devices") == [(1,)]


def test_device_import_good_file(cli: Cli, tmp_path: Path) -> None:
    cli.ok("mahalla", "add", "Chorsu", "--risk", "red")
    csv_path = tmp_path / "devices.csv"
    csv_path.write_text(
        "eui,kind,lat,lon,key,mahalla,site,name,address,supervision_interval_s\n"
        "70b3d57ed0000001,panic_button,41.3262,69.2362,,Chorsu,,Gate,,\n"
        f"70b3d57ed0000002,intrusion_alarm,41.327,69.237,{KEY_HEX},Chorsu,business,Shop,,\n"
        "70b3d57ed0000003,panic_button,41.328,69.238,,,,,,600\n"
    )
    out = cli.ok("device", "import", str(csv_path))
    assert "imported 3 devices" in out
    generated = dict(re.findall(r"^([0-9a-f]{16}),([0-9a-f]{32})$", out, re.MULTILINE))
    assert set(generated) == {"70b3d57ed0000001", "70b3d57ed0000003"}
    rows = dict(cli.query("SELECT eui, lower(hex(key)) FROM devices"))
    assert rows == {**generated, "70b3d57ed0000002": KEY_HEX}


def test_device_import_with_two_bad_rows_imports_nothing(cli: Cli, tmp_path: Path) -> None:
    csv_path = tmp_path / "devices.csv"
    csv_path.write_text(
        "eui,kind,lat,lon\n"
        "70b3d57ed0000001,panic_button,41.3262,69.2362\n"
        "70b3d57ed000000X,panic_button,41.3262,69.2362\n"
        "70b3d57ed0000003,panic_button,141.3,69.2\n"
        "70b3d57ed0000004,panic_button,41.3,69.2\n"
    )
    ran = cli("device", "import", str(csv_path))
    assert ran.code == 1
    assert "2 bad rows, nothing imported" in ran.err
    assert "line 3 (row 2): EUI '70b3d57ed000000X' is not 16 hex characters" in ran.err
    assert "line 4 (row 3): lat 141.3 is outside -90..90" in ran.err
    assert ran.out == ""
    assert cli.query("SELECT count(*) FROM devices") == [(0,)]

    missing = cli("device", "import", str(tmp_path / "nope.csv"))
    assert missing.code == 1 and "cannot read" in missing.err


def test_user_add_for_each_role_and_wrong_bindings(cli: Cli) -> None:
    cli.ok("mahalla", "add", "Chorsu", "--risk", "red")
    cli.ok("post", "add", "P-101", "--lat", "41.32", "--lon", "69.24", "--mahalla", "Chorsu")

    admin = cli.ok("user", "add", "root", "--role", "admin")
    assert re.search(r"generated password: \S{16}", admin)
    dispatcher = cli.ok("user", "add", "dina", "--role", "dispatcher", "--password", "dispatch-1")
    assert "password" not in dispatcher
    cli.ok("user", "add", "post101", "--role", "post", "--post", "P-101")
    cli.ok("user", "add", "team", "--role", "observer", "--mahalla", "Chorsu")

    wrong = {
        ("nopost", "--role", "post"): "must be bound to a post",
        ("noteam", "--role", "observer"): "must be bound to a mahalla",
        ("boss", "--role", "admin", "--mahalla", "Chorsu"): "only a user with role observer",
        ("disp", "--role", "dispatcher", "--post", "P-101"): "only a user with role post",
        ("ghost", "--role", "post", "--post", "P-999"): "no post with callsign 'P-999'",
        ("root", "--role", "admin"): "user 'root' already exists",
        ("cook", "--role", "chef"): "unknown role",
    }
    for args, message in wrong.items():
        ran = cli("user", "add", *args)
        assert ran.code == 1 and message in ran.err, (args, ran.err)
    assert cli.query("SELECT username, role FROM users ORDER BY id") == [
        ("root", "admin"),
        ("dina", "dispatcher"),
        ("post101", "post"),
        ("team", "observer"),
    ]


def test_token_create_prints_a_token_that_finds_its_user(cli: Cli) -> None:
    cli.ok("user", "add", "dina", "--role", "dispatcher")
    token = cli.ok("token", "create", "dina", "--label", "console").strip()
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token)
    stored = cli.query("SELECT token_sha256 FROM api_tokens")
    assert len(stored) == 1 and token not in str(stored)

    async def lookup() -> str | None:
        engine = create_engine(cli.database_url.replace("sqlite://", "sqlite+aiosqlite://"))
        try:
            async with unit_of_work(create_session_factory(engine)) as session:
                user = await user_for_token(session, token)
                return user.username if user else None
        finally:
            await engine.dispose()

    assert asyncio.run(lookup()) == "dina"
    unknown = cli("token", "create", "nobody")
    assert unknown.code == 1 and "no user named 'nobody'" in unknown.err


def test_gateway_subcommand_needs_a_port(cli: Cli) -> None:
    """The relay itself is tested end to end in tests/gateways/."""
    usage = cli("gateway")
    assert usage.code == 2 and "--serial" in usage.err


# --- serve --demo -----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_for(check: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


def test_serve_demo_answers_healthz_and_prints_logins(fresh_cli: Cli, tmp_path: Path) -> None:
    port = _free_port()
    env = {**fresh_cli.env, "ALERTNET_EMBEDDED_MQTT_PORT": str(_free_port())}
    out_path, err_path = tmp_path / "serve.out", tmp_path / "serve.err"
    with out_path.open("w") as out, err_path.open("w") as err:
        server = subprocess.Popen(
            [str(ALERTNET), "serve", "--demo", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=err,
        )

    def healthy() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as reply:
                return reply.status == 200
        except (urllib.error.URLError, OSError):
            return server.poll() is not None  # stop waiting if it died

    try:
        assert _wait_for(healthy, timeout_s=60), "server never answered /healthz"
        assert server.poll() is None, err_path.read_text()
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    printed = out_path.read_text()
    assert f"http://127.0.0.1:{port}/console" in printed
    for username, password in [
        ("admin", "admin-demo"),
        ("dispatcher", "dispatch-demo"),
        ("observer", "observer-demo"),
        ("post101", "post101-demo"),
    ]:
        assert re.search(rf"^\s+{username}\s+{password}\s", printed, re.MULTILINE), printed
    with sqlite3.connect(fresh_cli.db_path) as connection:
        assert connection.execute("SELECT count(*) FROM devices").fetchone() == (15,)

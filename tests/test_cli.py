"""The ``alertnet`` command end to end: real processes against a temporary SQLite database."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from alertnet import demo
from alertnet.auth.passwords import verify_password
from alertnet.auth.tokens import user_for_token
from alertnet.cli import display_url
from alertnet.db import create_engine, create_session_factory, unit_of_work
from tests.support.polling import eventually

ALERTNET = Path(sys.executable).with_name("alertnet")
KEY_HEX = "000102030405060708090a0b0c0d0e0f"
HEX32 = re.compile(r"\b[0-9a-f]{32}\b")
DEMO_DEVICES = len(demo.DEVICES) + len(demo.PROGRAMME_ALARMS)


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
    dispatcher = cli.ok(
        "user", "add", "dina", "--role", "dispatcher", "--password", "saffron-kettle-9"
    )
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
        ("boss", "--role", "admin", "--password", "short-pw-11"): "at least 12 characters",
        ("boss", "--role", "dispatcher", "--password", "Password1234!"): "too common",
        ("crew", "--role", "post", "--post", "P-101", "--password", "seven77"): "at least 8",
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


def _token_user(cli: Cli, token: str) -> str | None:
    """Who the token authenticates now, as the server would decide, or None."""

    async def lookup() -> str | None:
        engine = create_engine(cli.database_url.replace("sqlite://", "sqlite+aiosqlite://"))
        try:
            async with unit_of_work(create_session_factory(engine)) as session:
                user = await user_for_token(session, token)
                return user.username if user else None
        finally:
            await engine.dispose()

    return asyncio.run(lookup())


def _days_until(cli: Cli, token_id: int) -> float:
    (row,) = cli.query(
        "SELECT julianday(expires_at) - julianday(created_at) FROM api_tokens WHERE id = ?",
        token_id,
    )
    return float(str(row[0]))


def test_tokens_expire_and_are_listed_and_revoked(cli: Cli) -> None:
    cli.ok("user", "add", "dina", "--role", "dispatcher")
    cli.ok("user", "add", "ops", "--role", "admin")
    default = cli.ok("token", "create", "dina", "--label", "console").strip()
    short = cli.ok("token", "create", "dina", "--ttl-days", "1.5").strip()
    cli.ok("token", "create", "ops", "--label", "backup")
    assert round(_days_until(cli, 1), 3) == 90 and round(_days_until(cli, 2), 3) == 1.5
    for bad, message in (("0", "positive"), ("-1", "positive"), ("400", "at most 366"),
                         ("nan", "positive"), ("inf", "at most 366")):  # fmt: skip
        ran = cli("token", "create", "dina", "--ttl-days", bad)
        assert ran.code == 1 and message in ran.err, (bad, ran.err)

    listing = cli.ok("token", "list")
    lines = listing.strip().splitlines()
    assert lines[0].split()[:3] == ["ID", "USER", "LABEL"] and len(lines) == 4
    assert re.search(r"^\s+1\s+dina\s+console\s+\d{4}-\d\d-\d\d .*active$", listing, re.M)
    (hashed,) = cli.query("SELECT token_sha256 FROM api_tokens WHERE id = 1")
    assert default not in listing and str(hashed[0]) not in listing
    assert len(cli.ok("token", "list", "dina").strip().splitlines()) == 3
    missing = cli("token", "list", "nobody")
    assert missing.code == 1 and "no user named 'nobody'" in missing.err

    assert "revoked token 2 of dina" in cli.ok("token", "revoke", "2")
    assert _token_user(cli, short) is None and _token_user(cli, default) == "dina"
    assert "already revoked" in cli.ok("token", "revoke", "2")
    assert re.search(r"^\s+2\s+dina\s.*revoked$", cli.ok("token", "list"), re.M)
    unknown = cli("token", "revoke", "99")
    assert unknown.code == 1 and "no token with id 99" in unknown.err


def test_user_disable_enable_and_passwd(cli: Cli) -> None:
    cli.ok("user", "add", "root", "--role", "admin")
    cli.ok("user", "add", "dina", "--role", "dispatcher")
    token = cli.ok("token", "create", "dina").strip()

    assert "disabled dina; revoked 1 tokens" in cli.ok("user", "disable", "dina")
    assert _token_user(cli, token) is None
    refused = cli("token", "create", "dina")
    assert refused.code == 1 and "disabled" in refused.err
    assert "enabled dina" in cli.ok("user", "enable", "dina")
    assert _token_user(cli, token) is None  # a re-enabled user's old tokens stay dead
    token = cli.ok("token", "create", "dina").strip()

    last = cli("user", "disable", "root")
    assert last.code == 1 and "root is the last active admin" in last.err
    assert cli.query("SELECT active FROM users WHERE username = 'root'") == [(1,)]

    generated = cli.ok("user", "passwd", "dina")
    assert "revoked 1 tokens" in generated and _token_user(cli, token) is None
    assert re.search(r"generated password: \S{16}", generated)
    weak = cli("user", "passwd", "dina", "--password", "letmein-1234")
    assert weak.code == 1 and "too common" in weak.err
    given = cli.ok("user", "passwd", "dina", "--password", "marigold-ferry-31")
    assert "password" not in given.split(";")[1]
    done = subprocess.run(
        [str(ALERTNET), "user", "passwd", "root", "--password", "-"],
        input="copper-willow-58\n",
        env=cli.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0 and "generated" not in done.stdout, done.stderr
    (stored,) = cli.query("SELECT password_hash FROM users WHERE username = 'root'")
    assert verify_password(str(stored[0]), "copper-willow-58")


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


@dataclass
class Served:
    port: int
    printed: str = ""

    def login(self, username: str, password: str) -> int:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/api/v1/auth/login",
            data=json.dumps({"username": username, "password": password}).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as reply:
                return int(reply.status)
        except urllib.error.HTTPError as refused:
            return refused.code


@contextmanager
def _serving(cli: Cli, tmp_path: Path, *args: str) -> Iterator[Served]:
    """``alertnet serve ARGS`` until the block ends; ``printed`` is its stdout, read at the end."""
    served = Served(_free_port())
    env = {**cli.env, "ALERTNET_EMBEDDED_MQTT_PORT": str(_free_port())}
    out_path, err_path = tmp_path / "serve.out", tmp_path / "serve.err"
    with out_path.open("w") as out, err_path.open("w") as err:
        server = subprocess.Popen(
            [str(ALERTNET), "serve", *args, "--port", str(served.port)],
            env=env,
            stdout=out,
            stderr=err,
        )

    def healthy() -> bool:
        try:
            url = f"http://127.0.0.1:{served.port}/healthz"
            with urllib.request.urlopen(url, timeout=1) as reply:
                return bool(reply.status == 200)
        except (urllib.error.URLError, OSError):
            return server.poll() is not None  # stop waiting if it died

    try:
        asyncio.run(
            eventually(
                healthy,
                awaiting="alertnet serve to answer /healthz",
                timeout_s=60,
                interval_s=0.2,
                details=err_path.read_text,
            )
        )
        assert server.poll() is None, err_path.read_text()
        yield served
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        served.printed = out_path.read_text()


DEMO_LOGINS = [
    ("admin", "admin-demo"),
    ("dispatcher", "dispatch-demo"),
    ("observer", "observer-demo"),
    ("post101", "post101-demo"),
]


def test_serve_demo_answers_healthz_and_prints_logins(fresh_cli: Cli, tmp_path: Path) -> None:
    with _serving(fresh_cli, tmp_path, "--demo") as served:
        assert served.login("admin", "admin-demo") == 200
    assert f"http://127.0.0.1:{served.port}/console" in served.printed
    for username, password in DEMO_LOGINS:
        assert re.search(rf"^\s+{username}\s+{password}\s", served.printed, re.M), served.printed
    assert fresh_cli.query("SELECT count(*), min(demo) FROM devices") == [(DEMO_DEVICES, 1)]

    # `make run` twice: the demo is there already, the console still works.
    with _serving(fresh_cli, tmp_path, "--demo") as again:
        assert again.login("dispatcher", "dispatch-demo") == 200
    assert "already holds the demo city" in again.printed
    assert re.search(r"^\s+admin\s+admin-demo\s", again.printed, re.M), again.printed
    assert fresh_cli.query("SELECT count(*) FROM devices") == [(DEMO_DEVICES,)]


def test_serve_without_demo_turns_the_demo_off(fresh_cli: Cli, tmp_path: Path) -> None:
    with _serving(fresh_cli, tmp_path, "--demo"):
        pass
    fresh_cli.ok("token", "create", "admin")
    with _serving(fresh_cli, tmp_path) as served:
        for username, password in DEMO_LOGINS:
            assert served.login(username, password) == 401
    disabled = f"disabled {DEMO_DEVICES} demo devices and 6 demo accounts (1 tokens revoked)"
    assert disabled in served.printed
    assert fresh_cli.query("SELECT DISTINCT status FROM devices") == [("disabled",)]
    assert fresh_cli.query("SELECT DISTINCT active FROM users") == [(0,)]
    enable = fresh_cli("user", "enable", "admin")
    assert enable.code == 1 and "only `alertnet serve --demo` enables it" in enable.err


def test_serve_demo_refuses_a_database_with_data_of_its_own(cli: Cli) -> None:
    cli.ok("user", "add", "chief", "--role", "admin")
    cli.ok("mahalla", "add", "Chorsu", "--risk", "red")
    ran = cli("serve", "--demo", "--port", str(_free_port()))
    assert ran.code == 1
    assert "--demo seeds only an empty database" in ran.err
    assert "1 users" in ran.err and "1 mahallas" in ran.err
    assert cli.query("SELECT count(*) FROM devices") == [(0,)]
    assert cli.query("SELECT username FROM users") == [("chief",)]

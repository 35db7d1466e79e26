"""A PostgreSQL cluster of a test's own, on a free loopback port, that the test may stop and start.

The shared test server (``ALERTNET_TEST_PG_URL``) must never be taken away by a test: other
tests, and other people's runs, use it. A fault test that stops PostgreSQL under load runs
``initdb`` into a temporary directory instead, and ``pg_ctl start``/``stop`` on that cluster
alone. The binaries come from ``ALERTNET_TEST_PG_BIN`` or the newest
``/usr/lib/postgresql/*/bin`` (Debian); when the tests run as root they run as the
``postgres`` account (PostgreSQL refuses to run as root), in a directory that account owns.

``fsync`` is off to keep ``initdb`` and the run quick on a loaded machine: only an operating
system crash could tell the difference, and no test crashes the operating system. Commits stay
synchronous, so a stop (even ``immediate``, a crash of PostgreSQL) never loses a commit that
was reported.
"""

from __future__ import annotations

import getpass
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Final, Literal, Self

import pytest

from tests.support import services
from tests.support.mosquitto import free_port

PG_BIN_ENV: Final = "ALERTNET_TEST_PG_BIN"
_DEBIAN_BIN_GLOB: Final = "/usr/lib/postgresql/*/bin"
_SERVER_ACCOUNT: Final = "postgres"
_HOST: Final = "127.0.0.1"
_LOG_FILE: Final = "postgres.log"

StopMode = Literal["smart", "fast", "immediate"]


def pg_bin_dir() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``, or None when there is none."""
    configured = os.environ.get(PG_BIN_ENV)
    if configured:
        candidates = [Path(configured)]
    else:

        def version(path: str) -> tuple[int, ...]:
            number = Path(path).parent.name
            return tuple(int(part) for part in number.split(".") if part.isdigit())

        candidates = [Path(path) for path in sorted(glob.glob(_DEBIAN_BIN_GLOB), key=version)]
        candidates.reverse()
    for candidate in candidates:
        if all(os.access(candidate / tool, os.X_OK) for tool in ("initdb", "pg_ctl")):
            return candidate
    return None


def _runs_as_root() -> bool:
    return os.geteuid() == 0


def cluster_unavailable() -> str | None:
    """Why a test cannot run a PostgreSQL cluster of its own (None when it can)."""
    if pg_bin_dir() is None:
        return (
            f"no initdb/pg_ctl in {PG_BIN_ENV} or {_DEBIAN_BIN_GLOB} "
            "(apt-get install postgresql, or set ALERTNET_TEST_PG_BIN)"
        )
    if _runs_as_root():
        try:
            pwd.getpwnam(_SERVER_ACCOUNT)
        except KeyError:
            return f"running as root and there is no {_SERVER_ACCOUNT!r} account to run PostgreSQL"
    return None


def require_cluster() -> None:
    """Return if a cluster can be run; otherwise skip the test, or fail it when ``CI=true``."""
    reason = cluster_unavailable()
    if reason is None:
        return
    if services.in_ci():
        pytest.fail(f"an own PostgreSQL cluster is required when CI=true: {reason}", pytrace=False)
    pytest.skip(f"an own PostgreSQL cluster cannot run: {reason}")


class ClusterError(RuntimeError):
    """initdb or pg_ctl failed; the message carries their output and the server log's tail."""


class PostgresCluster:
    """``initdb`` + ``pg_ctl`` on ``127.0.0.1:<free port>``, trust authentication, user postgres.

    Use it as a context manager (initdb and start, then stop and delete), or call ``start``,
    ``stop`` and ``close``. Every method blocks (at most ``timeout_s`` per pg_ctl call): from
    async code that must keep serving, call them through ``asyncio.to_thread``.
    """

    def __init__(self, *, port: int | None = None, timeout_s: float = 30.0) -> None:
        self.port = port or free_port(_HOST)
        self.timeout_s = timeout_s
        self._bin = pg_bin_dir()
        self._directory: Path | None = None

    @property
    def directory(self) -> Path:
        if self._directory is None:
            raise ClusterError("the cluster has not been created yet")
        return self._directory

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def log_path(self) -> Path:
        return self.directory / _LOG_FILE

    def url(self, database: str = "postgres") -> str:
        """A SQLAlchemy URL (asyncpg) for ``database`` on this cluster."""
        return f"postgresql+asyncpg://postgres@{_HOST}:{self.port}/{database}"

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    @property
    def running(self) -> bool:
        if self._directory is None or not self.data_dir.exists():
            return False
        status = self._pg_ctl("status", check=False)
        return status.returncode == 0

    def create(self) -> Self:
        """``initdb`` into a fresh temporary directory owned by the account that runs it."""
        if self._directory is not None:
            return self
        # Not under pytest's tmp_path: as root that tree is private to root, and the
        # ``postgres`` account could not enter it.
        self._directory = Path(tempfile.mkdtemp(prefix="alertnet-pgcluster-"))
        if _runs_as_root():
            account = pwd.getpwnam(_SERVER_ACCOUNT)
            os.chown(self._directory, account.pw_uid, account.pw_gid)
        self._run(
            "initdb",
            "--pgdata",
            str(self.data_dir),
            "--username",
            "postgres",
            "--auth",
            "trust",
            "--encoding",
            "UTF8",
            "--locale",
            "C",
            "--no-sync",
        )
        return self

    def start(self) -> Self:
        """Start the cluster (creating it first if needed); returns once it accepts logins."""
        self.create()
        options = " ".join(
            [
                f"-c port={self.port}",
                f"-c listen_addresses={_HOST}",
                f"-c unix_socket_directories={self.directory}",
                "-c fsync=off",
                "-c full_page_writes=off",
                "-c max_connections=60",
                "-c shared_buffers=16MB",
            ]
        )
        self._pg_ctl("start", "--log", str(self.log_path), "--options", options)
        return self

    def stop(self, mode: StopMode = "fast") -> None:
        """``pg_ctl stop``: ``fast`` ends every session (a restart), ``immediate`` is a crash."""
        if self.running:
            self._pg_ctl("stop", "--mode", mode)

    def close(self) -> None:
        """Stop the cluster and delete its directory."""
        if self._directory is None:
            return
        try:
            self.stop("immediate")
        finally:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<PostgresCluster {_HOST}:{self.port} in {self._directory}>"

    def _pg_ctl(
        self, action: str, *arguments: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return self._run(
            "pg_ctl",
            action,
            "--pgdata",
            str(self.data_dir),
            "--wait",
            "--timeout",
            str(int(self.timeout_s)),
            *arguments,
            check=check,
        )

    def _run(
        self, tool: str, *arguments: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        if self._bin is None:
            raise ClusterError(cluster_unavailable() or "no PostgreSQL binaries")
        command = [str(self._bin / tool), *arguments]
        if _runs_as_root() and getpass.getuser() != _SERVER_ACCOUNT:
            command = ["runuser", "-u", _SERVER_ACCOUNT, "--", *command]
        completed = subprocess.run(
            command,
            cwd=self.directory,  # the account must be able to enter its working directory
            capture_output=True,
            text=True,
            timeout=self.timeout_s + 10,
            check=False,
        )
        if check and completed.returncode != 0:
            raise ClusterError(
                f"{tool} {' '.join(arguments[:1])} failed ({completed.returncode}):\n"
                f"{completed.stdout}{completed.stderr}\n{self.log_text()[-3000:]}"
            )
        return completed

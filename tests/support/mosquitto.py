"""A real Mosquitto broker for tests, started from the project's own configuration.

Reliability tests must run against the broker production runs, with the settings production
uses (``alertnet.broker.mosquitto.write_config``), not against a mock or the system broker
on 1883. ``MosquittoServer`` runs one on a free loopback port in its own directory, so its
persistence and log belong to the test, and can stop, SIGKILL and restart it on the same
port with the same persistence.
"""

from __future__ import annotations

import getpass
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Final, Self
from urllib.parse import quote

from alertnet.broker.mosquitto import LOG_FILE, write_config
from tests.support.services import DEFAULT_MOSQUITTO, mosquitto_binary

HOST: Final = "127.0.0.1"
_STDERR_FILE: Final = "mosquitto.stderr"
_PORT_ATTEMPTS: Final = 5


def free_port(host: str = HOST) -> int:
    """A TCP port nobody listens on right now (the OS's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


class MosquittoError(RuntimeError):
    """The broker would not start or stop; the message carries the tail of its log."""


class MosquittoServer:
    """A Mosquitto process on ``127.0.0.1:<free port>`` configured by ``write_config``.

    Use it as a context manager (starts, then stops), or call ``start``/``stop``. Methods
    block for at most ``timeout_s``; from async code call ``restart`` and friends through
    ``asyncio.to_thread`` when live clients must keep being served.
    """

    host: Final = HOST

    def __init__(
        self,
        directory: Path,
        *,
        users: Mapping[str, str] | None = None,
        persistence: bool = True,
        autosave_interval_s: int = 1,
        port: int | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self.directory = directory
        self.users = dict(users or {})
        self.persistence = persistence
        self.autosave_interval_s = autosave_interval_s
        self.timeout_s = timeout_s
        self._port = port
        self._fixed_port = port is not None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise MosquittoError("the broker has not been started yet")
        return self._port

    @property
    def url(self) -> str:
        """``mqtt://127.0.0.1:PORT``, the form of ``ALERTNET_MQTT_URL``."""
        return f"mqtt://{self.host}:{self.port}"

    def url_for(self, username: str) -> str:
        """``mqtt://user:password@127.0.0.1:PORT`` for one of ``users``."""
        password = self.users[username]
        return (
            f"mqtt://{quote(username, safe='')}:{quote(password, safe='')}@{self.host}:{self.port}"
        )

    @property
    def log_path(self) -> Path:
        return self.directory / LOG_FILE

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def log_text(self) -> str:
        parts = [
            path.read_text(encoding="utf-8", errors="replace")
            for path in (self.directory / _STDERR_FILE, self.log_path)
            if path.exists()
        ]
        return "".join(parts)

    def start(self) -> Self:
        """Start the broker and return once its port accepts connections."""
        if self.running:
            return self
        attempts = 1 if self._fixed_port else _PORT_ATTEMPTS
        for attempt in range(attempts):
            if not self._fixed_port:
                self._port = free_port()
            try:
                self._launch()
                return self
            except MosquittoError as exc:
                # Another process may take the chosen port between probe and bind.
                if attempt + 1 == attempts or "Address already in use" not in str(exc):
                    raise
        raise AssertionError("unreachable")

    def stop(self) -> None:
        """SIGTERM and wait: Mosquitto saves its persistence file on the way out."""
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL: a crash. Only what the last autosave wrote survives."""
        self._end(signal.SIGKILL)

    def restart(self, *, kill: bool = False) -> None:
        """Stop (or kill) and start again on the same port with the same persistence."""
        if kill:
            self.kill()
        else:
            self.stop()
        self._fixed_port = True
        self._launch()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"pid {self.pid}" if self.running else "stopped"
        return f"<MosquittoServer {self.host}:{self._port} {state} in {self.directory}>"

    def _launch(self) -> None:
        binary = mosquitto_binary() or DEFAULT_MOSQUITTO
        conf_path = write_config(
            self.directory,
            port=self.port,
            bind=self.host,
            persistence=self.persistence,
            autosave_interval_s=self.autosave_interval_s,
            users=self.users or None,
            # Started as root, Mosquitto would switch to its own account, which cannot
            # write the test's directory: keep the account that runs the tests.
            run_as=getpass.getuser(),
        )
        # Append, like Mosquitto's own log: a restart keeps what happened before it.
        with open(self.directory / _STDERR_FILE, "ab") as stderr:
            self._process = subprocess.Popen(
                [binary, "-c", str(conf_path)],
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
                # Its own process group: a Ctrl-C aimed at pytest does not reach it first.
                start_new_session=True,
            )
        self._wait_until_listening()

    def _wait_until_listening(self) -> None:
        deadline = time.monotonic() + self.timeout_s
        while True:
            assert self._process is not None
            if self._process.poll() is not None:
                code = self._process.returncode
                self._process = None
                raise MosquittoError(f"mosquitto exited with {code}:\n{self.log_text()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    self._end(signal.SIGKILL)
                    raise MosquittoError(
                        f"mosquitto did not listen on {self.port} within {self.timeout_s} s:\n"
                        f"{self.log_text()}"
                    ) from None
                time.sleep(0.02)

    def _end(self, how: signal.Signals) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        os.kill(process.pid, how)
        try:
            process.wait(timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=self.timeout_s)
            raise MosquittoError(
                f"mosquitto ignored {how.name} for {self.timeout_s} s:\n{self.log_text()}"
            ) from None

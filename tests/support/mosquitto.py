"""A real Mosquitto broker for tests, configured exactly as ``alertnet broker config`` does.

Reliability and security tests must run against the broker production runs, with the files
production uses (``alertnet.broker``: authentication on, client id = username, the ACL, the
packet and queue limits), not against a mock or the system broker on 1883.
``MosquittoServer`` runs one on a free loopback port in its own directory, so its persistence
and log belong to the test, and can stop, SIGKILL and restart it on the same port.

Logins, as in production: ``url`` is alertnet's own (user ``alertnet``), from which each
alertnet connection derives ``alertnet-<purpose>-<n>``; a device logs in as its EUI with the
password derived from its key (``device_client``), a gateway as its id (``gateway_client``).
Adding one rewrites ``passwd`` and ``acl`` and sends SIGHUP, as an operator re-running
``alertnet broker config`` would. ``harness_client`` is the tests' own login, allowed every
topic, for test code that plays several parties at once or publishes junk no device could.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import os
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self
from urllib.parse import quote

import aiomqtt

from alertnet.broker.accounts import BrokerAccounts, Registry, broker_accounts, load_registry
from alertnet.broker.mosquitto import LOG_FILE, Access, Account, Grant, Listener, write_config
from alertnet.config import Settings
from alertnet.db import create_engine, create_session_factory
from alertnet.ingest.mqtt_client import MqttLogin, MqttPurpose, gateway_mqtt_password, mqtt_login
from alertnet.protocol import device_mqtt_password
from tests.support.services import DEFAULT_MOSQUITTO, mosquitto_binary

HOST: Final = "127.0.0.1"
ALERTNET_USER: Final = "alertnet"
#: alertnet processes the tests' broker has logins for (ALERTNET_MQTT_PROCESS 1..this).
PROCESSES: Final = 4
_STDERR_FILE: Final = "mosquitto.stderr"
_PORT_ATTEMPTS: Final = 5
_CONNACK_ACCEPTED: Final = 0


def free_port(host: str = HOST) -> int:
    """A TCP port nobody listens on right now (the OS's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


class MosquittoError(RuntimeError):
    """The broker would not start, stop or reload; the message carries the tail of its log."""


class MosquittoServer:
    """A Mosquitto process on ``127.0.0.1:<free port>`` with alertnet's production config.

    Use it as a context manager (starts, then stops), or call ``start``/``stop``. Methods
    block for at most ``timeout_s``; from async code call ``restart`` and friends through
    ``asyncio.to_thread`` when live clients must keep being served.
    """

    host: Final = HOST

    def __init__(
        self,
        directory: Path,
        *,
        persistence: bool = True,
        autosave_interval_s: int = 1,
        port: int | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self.directory = directory
        self.persistence = persistence
        self.autosave_interval_s = autosave_interval_s
        self.timeout_s = timeout_s
        self.alertnet_password = secrets.token_hex(16)
        self._devices: dict[str, bytes] = {}
        self._gateways: set[str] = set()
        self._harness: dict[str, Account] = {}
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
        """alertnet's ``ALERTNET_MQTT_URL``: ``mqtt://alertnet:PASSWORD@127.0.0.1:PORT``."""
        password = quote(self.alertnet_password, safe="")
        return f"mqtt://{ALERTNET_USER}:{password}@{self.host}:{self.port}"

    def alertnet_login(
        self, purpose: MqttPurpose = MqttPurpose.INGEST, process: int = 1
    ) -> MqttLogin:
        """The login alertnet process ``process`` uses for ``purpose`` (as ``Runtime`` does)."""
        settings = Settings(mqtt_url=self.url, mqtt_process=process)
        return mqtt_login(settings, purpose, self.url)

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

    # --- logins -------------------------------------------------------------------------

    def accounts(self) -> BrokerAccounts:
        """Every login, built as ``alertnet broker config`` builds them, plus the harness."""
        registry = Registry(tuple(sorted(self._devices.items())), tuple(sorted(self._gateways)))
        built = broker_accounts(
            registry,
            alertnet_user=ALERTNET_USER,
            alertnet_password=self.alertnet_password,
            processes=PROCESSES,
        )
        return BrokerAccounts(
            accounts=(*built.accounts, *self._harness.values()),
            devices=built.devices,
            gateways=built.gateways,
            alertnet_logins=built.alertnet_logins,
            adapters=built.adapters,
            skipped_gateways=built.skipped_gateways,
        )

    def allow_device(self, eui: str, key: bytes) -> None:
        """Let a device log in (as the registry would after ``device add``)."""
        if self._devices.get(eui) != key:
            self._devices[eui] = bytes(key)
            self._reload(eui, device_mqtt_password(key))

    def allow_gateway(self, gateway_id: str) -> str:
        """Let an MQTT gateway log in; returns its password."""
        password = gateway_mqtt_password(self.alertnet_password, gateway_id)
        if gateway_id not in self._gateways:
            self._gateways.add(gateway_id)
            self._reload(gateway_id, password)
        return password

    async def allow_registry(self, database_url: str) -> None:
        """Let in every device and MQTT gateway registered in ``database_url``."""
        engine = create_engine(database_url)
        try:
            async with create_session_factory(engine)() as session:
                registry = await load_registry(session)
        finally:
            await engine.dispose()
        probes = [
            (eui, device_mqtt_password(key))
            for eui, key in registry.devices
            if self._devices.get(eui) != key
        ] + [
            (gateway_id, gateway_mqtt_password(self.alertnet_password, gateway_id))
            for gateway_id in registry.gateways
            if gateway_id not in self._gateways
        ]
        self._devices.update(registry.devices)
        self._gateways.update(registry.gateways)
        if probes:
            self._reload(*probes[0])

    def device_client(self, eui: str, key: bytes, **options: Any) -> aiomqtt.Client:
        """A client logged in as the device (its EUI, the password derived from its key)."""
        self.allow_device(eui, key)
        return self._client(eui, device_mqtt_password(key), options)

    def gateway_url(self, gateway_id: str) -> str:
        """``mqtt://<id>:<password>@…``: the URL a remote gateway relay is given."""
        password = quote(self.allow_gateway(gateway_id), safe="")
        return f"mqtt://{quote(gateway_id, safe='')}:{password}@{self.host}:{self.port}"

    def gateway_client(self, gateway_id: str, **options: Any) -> aiomqtt.Client:
        """A client logged in as the MQTT LoRa gateway ``gateway_id``."""
        return self._client(gateway_id, self.allow_gateway(gateway_id), options)

    def harness_client(self, name: str, **options: Any) -> aiomqtt.Client:
        """A test-only login allowed every topic; one username per ``name``."""
        username = f"harness-{name}"
        account = self._harness.get(username)
        if account is None:
            account = Account(
                username,
                secrets.token_hex(16),
                grants=(Grant(Access.READWRITE, "#"),),
                note="the tests' harness: every topic",
            )
            self._harness[username] = account
            self._reload(username, account.password)
        return self._client(username, account.password, options)

    def _client(self, username: str, password: str, options: Mapping[str, Any]) -> aiomqtt.Client:
        options = {"identifier": username, **options}
        return aiomqtt.Client(self.host, self.port, username=username, password=password, **options)

    def _reload(self, probe_user: str, probe_password: str) -> None:
        """Rewrite the files; a running broker re-reads them on SIGHUP (as in production).

        Returns once ``probe_user`` can log in: SIGHUP is asynchronous.
        """
        self._write_config()
        if not self.running:
            return
        assert self._process is not None
        os.kill(self._process.pid, signal.SIGHUP)
        deadline = time.monotonic() + self.timeout_s
        while connack_code(self.host, self.port, probe_user, probe_password) != _CONNACK_ACCEPTED:
            if time.monotonic() > deadline:
                raise MosquittoError(
                    f"{probe_user!r} cannot log in {self.timeout_s} s after SIGHUP:\n"
                    f"{self.log_text()[-3000:]}"
                )
            time.sleep(0.02)

    # --- the process --------------------------------------------------------------------

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

    def _write_config(self) -> Path:
        return write_config(
            self.directory,
            listeners=[Listener(self.host, self.port)],
            accounts=self.accounts().accounts,
            persistence=self.persistence,
            autosave_interval_s=self.autosave_interval_s,
            # Started as root, Mosquitto would switch to its own account, which cannot
            # write the test's directory: keep the account that runs the tests.
            run_as=getpass.getuser(),
        )

    def _launch(self) -> None:
        binary = mosquitto_binary() or DEFAULT_MOSQUITTO
        conf_path = self._write_config()
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


@contextlib.contextmanager
def configured_mosquitto(
    conf_path: Path, host: str, port: int, *, timeout_s: float = 10.0
) -> Iterator[subprocess.Popen[bytes]]:
    """Run Mosquitto on a configuration written elsewhere (``alertnet broker config``).

    Yields once ``host:port`` accepts connections; SIGTERM and wait on the way out.
    """
    binary = mosquitto_binary() or DEFAULT_MOSQUITTO
    with open(conf_path.parent / _STDERR_FILE, "ab") as stderr:
        process = subprocess.Popen(
            [binary, "-c", str(conf_path)],
            stdin=subprocess.DEVNULL,
            stdout=stderr,
            stderr=stderr,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if process.poll() is not None:
                raise MosquittoError(
                    f"mosquitto exited with {process.returncode}:\n"
                    + (conf_path.parent / _STDERR_FILE).read_text(errors="replace")
                )
            try:
                with socket.create_connection((host, port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise MosquittoError(f"mosquitto did not listen on {port}") from None
                time.sleep(0.02)
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=timeout_s)


def connack_code(
    host: str, port: int, username: str, password: str, timeout_s: float = 2.0
) -> int | None:
    """Log in once with MQTT 3.1.1 and leave; the CONNACK return code (0 = accepted).

    ``None`` when the broker closed the connection without answering. Blocking, and without
    aiomqtt, so a reload can be checked from any thread.
    """

    def field(data: bytes) -> bytes:
        return len(data).to_bytes(2, "big") + data

    flags = 0b1100_0010  # username, password, clean session
    body = (
        field(b"MQTT")
        + bytes([4, flags])
        + (10).to_bytes(2, "big")  # keepalive
        + field(b"probe")
        + field(username.encode())
        + field(password.encode())
    )
    length = len(body)
    assert length < 128 * 128
    encoded_length = bytes([length | 0x80, length >> 7]) if length >= 128 else bytes([length])
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as sock:
            sock.sendall(b"\x10" + encoded_length + body)
            reply = b""
            while len(reply) < 4:
                chunk = sock.recv(4 - len(reply))
                if not chunk:
                    return None
                reply += chunk
            if reply[3] == _CONNACK_ACCEPTED:
                sock.sendall(b"\xe0\x00")  # DISCONNECT
    except OSError:
        return None
    return reply[3] if reply[0] == 0x20 else None


async def receive(
    client: aiomqtt.Client, count: int, timeout_s: float = 10.0
) -> list[aiomqtt.Message]:
    """The next ``count`` messages ``client`` receives; TimeoutError after ``timeout_s``."""
    received: list[aiomqtt.Message] = []

    async def collect() -> None:
        async for message in client.messages:
            received.append(message)
            if len(received) == count:
                return

    await asyncio.wait_for(collect(), timeout_s)
    return received

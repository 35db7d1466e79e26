"""The Mosquitto configuration alertnet relies on, written as files (DESIGN §6 "Broker", §14).

Part of alertnet's reliability and security lives in the broker: QoS 1 messages must survive a
broker restart and never be dropped for a slow or offline persistent subscriber; no client may
take over another's session (``use_username_as_clientid``); a device may speak only for
itself; one oversized packet must cost only its sender its connection. ``write_config``
writes ``mosquitto.conf``, ``passwd`` and ``acl`` so that production (``alertnet broker
config``), the tests and the benchmark all run the same broker settings. Who the accounts are
is ``alertnet.broker.accounts``'s business; this module only renders them.

It does blocking file I/O: call it from a CLI command or a test, never from the event loop.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import os
import pwd
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Final

from alertnet.errors import InvalidInput

__all__ = [
    "ACL_FILE",
    "AUTOSAVE_INTERVAL_S",
    "CONF_FILE",
    "DEVICE_DOWN_PATTERN",
    "DEVICE_UP_PATTERN",
    "LOG_FILE",
    "MAX_INFLIGHT_MESSAGES",
    "MAX_PACKET_BYTES",
    "MAX_QUEUED_BYTES",
    "MAX_QUEUED_MESSAGES",
    "PASSWORD_FILE",
    "Access",
    "Account",
    "Grant",
    "Listener",
    "hash_password",
    "write_config",
]

CONF_FILE: Final = "mosquitto.conf"
PASSWORD_FILE: Final = "passwd"
ACL_FILE: Final = "acl"
LOG_FILE: Final = "mosquitto.log"
PERSISTENCE_FILE: Final = "mosquitto.db"

# A frame is at most a few hundred bytes; a larger packet disconnects its sender (logged by
# the broker) instead of being stored, queued and handed to alertnet. Never
# `message_size_limit`: that one drops the message silently and keeps the sender.
MAX_PACKET_BYTES: Final = 65_536
# Mosquitto's default of 1000 silently drops QoS 1 messages for a slow or offline subscriber;
# alertnet's persistent session must be able to hold a city's alarms during an outage.
MAX_QUEUED_MESSAGES: Final = 1_000_000
# ... and the bytes bound keeps a client that queues large junk from exhausting memory:
# 1,000,000 real frames (JSON ones are ~110 bytes) fit well inside it.
MAX_QUEUED_BYTES: Final = 256 * 1024 * 1024
# alertnet acknowledges QoS 1 only after a database commit, so every message on its way to a
# commit counts against this window; past it Mosquitto holds the rest in its FIFO queue, where
# an alarm waits behind every heartbeat before it. The MQTT maximum (16-bit packet ids), the
# same as alertnet's MQTT 5 Receive Maximum (``alertnet.ingest.mqtt_client``): a backlog sits in
# alertnet's lanes, where alarms overtake it. Mosquitto's default of 20 would also throttle
# the micro-batches to 20 messages.
MAX_INFLIGHT_MESSAGES: Final = 65_535
# A broker killed with SIGKILL loses at most this many seconds of queued messages.
AUTOSAVE_INTERVAL_S: Final = 2

# Every login matches these patterns; for a device (username = its EUI) they are its topics.
DEVICE_UP_PATTERN: Final = "alertnet/v1/up/%u"
DEVICE_DOWN_PATTERN: Final = "alertnet/v1/down/%u"

# A username is one password-file field, one ACL word and (through %u) one topic level: no
# colon, whitespace, MQTT wildcard or separator.
_USERNAME = re.compile(r"[A-Za-z0-9._-]{1,64}")

# mosquitto_passwd's default scheme since Mosquitto 2.0: PBKDF2-HMAC-SHA512, 101 rounds.
_PBKDF2_ROUNDS: Final = 101
_SALT_BYTES: Final = 12


class Access(StrEnum):
    READ = "read"
    WRITE = "write"
    READWRITE = "readwrite"


@dataclass(frozen=True, slots=True)
class Grant:
    """One ``topic <access> <filter>`` line of the ACL."""

    access: Access
    topic: str

    def __post_init__(self) -> None:
        if not self.topic or any(char in self.topic for char in "\r\n\0"):
            raise InvalidInput(f"ACL topic must be one non-empty line, got {self.topic!r}")


@dataclass(frozen=True, slots=True)
class Account:
    """One broker login and the topics the ACL grants it (besides the device patterns).

    ``note`` says who this is, as a comment in the ACL.
    """

    username: str
    password: str = field(repr=False)
    grants: tuple[Grant, ...] = ()
    note: str = ""

    def __post_init__(self) -> None:
        if _USERNAME.fullmatch(self.username) is None:
            raise InvalidInput(
                f"MQTT username {self.username!r} must be 1-64 of letters, digits, '.', '_', '-'"
            )
        if not self.password or any(char in self.password for char in "\r\n\0"):
            raise InvalidInput(f"password of {self.username!r} must be one non-empty line")


@dataclass(frozen=True, slots=True)
class Listener:
    """Where the broker listens; with ``certfile`` and ``keyfile`` it speaks TLS there."""

    host: str
    port: int
    certfile: Path | None = None
    keyfile: Path | None = None

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise InvalidInput(f"broker port must be 1..65535, got {self.port}")
        if (self.certfile is None) != (self.keyfile is None):
            raise InvalidInput("a TLS listener needs both a certificate and a key")

    @classmethod
    def parse(
        cls, text: str, *, certfile: Path | None = None, keyfile: Path | None = None
    ) -> Listener:
        """``HOST:PORT`` (``[::1]:1883`` for IPv6)."""
        host, sep, port = text.rpartition(":")
        host = host.removeprefix("[").removesuffix("]")
        if not sep or not host or not port.isdigit():
            raise InvalidInput(f"listen address must be HOST:PORT, got {text!r}")
        return cls(host, int(port), certfile, keyfile)

    @property
    def tls(self) -> bool:
        return self.certfile is not None

    @property
    def loopback_only(self) -> bool:
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return self.host == "localhost"


def write_config(
    directory: Path,
    *,
    listeners: Sequence[Listener],
    accounts: Sequence[Account] | None,
    persistence: bool = True,
    autosave_interval_s: int = AUTOSAVE_INTERVAL_S,
    run_as: str | None = None,
) -> Path:
    """Write alertnet's Mosquitto configuration into ``directory``; return the conf path.

    With ``accounts`` (production, tests): anonymous clients are refused, the client id is
    always the username, and ``passwd`` and ``acl`` are written next to the conf. Without
    (``None``, the benchmark): anonymous clients are accepted, which is refused unless every
    listener is on loopback. ``run_as`` is the account a broker started as root switches to
    (Mosquitto's ``user``); when this runs as root, the files are handed to that account so
    it can re-read them on SIGHUP. Persistence, log and credential files live in
    ``directory``.
    """
    if not listeners:
        raise InvalidInput("the broker needs at least one listener")
    if autosave_interval_s < 1:
        raise InvalidInput(f"autosave interval must be at least 1 s, got {autosave_interval_s}")
    if accounts is None and not all(listener.loopback_only for listener in listeners):
        raise InvalidInput("a broker without accounts may listen on loopback only")
    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True)

    written = [directory / CONF_FILE]
    if accounts is not None:
        _check_unique(accounts)
        _write_atomically(directory / PASSWORD_FILE, _password_file(accounts), mode=0o600)
        _write_atomically(directory / ACL_FILE, _acl(accounts), mode=0o644)
        written += [directory / PASSWORD_FILE, directory / ACL_FILE]
    lines = [
        "# Mosquitto configuration for alertnet, written by `alertnet broker config`.",
        "# Regenerate it instead of editing it: every setting here is relied on (DESIGN §14).",
        "",
        *_auth_lines(directory, accounts),
        "",
        "# A frame is a few hundred bytes: a larger packet disconnects its sender (and the",
        "# broker logs it). No message_size_limit: it would drop messages silently.",
        f"max_packet_size {MAX_PACKET_BYTES}",
        "# alertnet acks QoS 1 only after a database commit: past this window of",
        "# unacknowledged messages per client, an alarm would wait in the broker's queue",
        "# behind every heartbeat before it (the default of 20 would also throttle batches).",
        f"max_inflight_messages {MAX_INFLIGHT_MESSAGES}",
        "# The default (1000) silently drops QoS 1 messages for a slow or offline persistent",
        "# subscriber: alertnet's session must hold every alarm raised while it is down.",
        f"max_queued_messages {MAX_QUEUED_MESSAGES}",
        "# ... while a client queueing large junk is stopped by bytes long before memory is.",
        f"max_queued_bytes {MAX_QUEUED_BYTES}",
        "# Frames are tiny and latency matters (press -> ack -> LED): do not wait to coalesce.",
        "set_tcp_nodelay true",
        "",
        *_persistence_lines(directory, persistence, autosave_interval_s),
        "",
        *_run_as_lines(run_as),
        "# The log goes next to the data so an operator (or a failing test) finds it.",
        f"log_dest file {directory / LOG_FILE}",
        "# Errors up to connection events: enough to see why a client was refused or",
        "# disconnected; 'debug' and 'subscribe' would log per message and drown a city.",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "log_type information",
        "# Every connect and disconnect is logged: devices that flap are a field problem.",
        "connection_messages true",
        "# ISO timestamps, to line the broker log up with alertnet's own logs.",
        "log_timestamp_format %Y-%m-%dT%H:%M:%S",
        "",
        *(line for listener in listeners for line in _listener_lines(listener, accounts)),
    ]
    _write_atomically(directory / CONF_FILE, "\n".join(lines), mode=0o644)
    if run_as is not None:
        _hand_over(run_as, [directory, *written])
    return directory / CONF_FILE


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """The password-file hash Mosquitto >= 2.0 checks: ``$7$`` (PBKDF2-HMAC-SHA512, 101
    rounds, 12-byte salt), exactly what ``mosquitto_passwd`` writes by default.
    """
    salt = secrets.token_bytes(_SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, _PBKDF2_ROUNDS)
    return "$7${}${}${}".format(
        _PBKDF2_ROUNDS,
        base64.b64encode(salt).decode("ascii"),
        base64.b64encode(digest).decode("ascii"),
    )


def _auth_lines(directory: Path, accounts: Sequence[Account] | None) -> list[str]:
    common = [
        "# One set of authentication and access rules for every listener.",
        "per_listener_settings false",
    ]
    if accounts is None:
        return [
            *common,
            "# No accounts: anonymous clients are accepted (a benchmark on loopback only).",
            "allow_anonymous true",
        ]
    return [
        *common,
        "# Every client logs in: a device as its EUI, a gateway as its id, each of alertnet's",
        "# connections as <user>-<purpose>-<n>.",
        "allow_anonymous false",
        "# Salted PBKDF2 hashes, never plain passwords. Re-read on SIGHUP.",
        f"password_file {directory / PASSWORD_FILE}",
        "# Each login may use only its own topics; see the comments in the ACL. Re-read on SIGHUP.",
        f"acl_file {directory / ACL_FILE}",
    ]


def _listener_lines(listener: Listener, accounts: Sequence[Account] | None) -> list[str]:
    host = listener.host
    lines = ["", f"listener {listener.port} {host}"]
    if listener.certfile is not None and listener.keyfile is not None:
        lines = [
            "",
            "# TLS, for devices and gateways that reach the broker across a network.",
            f"listener {listener.port} {host}",
            f"certfile {listener.certfile.resolve()}",
            f"keyfile {listener.keyfile.resolve()}",
        ]
    if accounts is None:
        return [*lines, "allow_anonymous true"]
    return [
        *lines,
        "allow_anonymous false",
        "# The client id is the username: no client can take over another's session",
        "# (alertnet's persistent one included). Not re-read on SIGHUP: restart to change.",
        "use_username_as_clientid true",
    ]


def _persistence_lines(directory: Path, persistence: bool, autosave_interval_s: int) -> list[str]:
    if not persistence:
        return [
            "# Persistence off: queued messages and sessions are lost on restart (tests only).",
            "persistence false",
        ]
    return [
        "# Queued QoS 1 messages and persistent sessions (alertnet's clean_session=False",
        "# subscription) must survive a broker restart.",
        "persistence true",
        "# Mosquitto requires the trailing slash on the directory.",
        f"persistence_location {directory}/",
        f"persistence_file {PERSISTENCE_FILE}",
        "# Save often: a broker killed with SIGKILL loses at most this many seconds of queue.",
        f"autosave_interval {autosave_interval_s}",
    ]


def _run_as_lines(run_as: str | None) -> list[str]:
    if run_as is None:
        return [
            "# Started as root, Mosquitto switches to its own 'mosquitto' account: that account",
            "# must be able to read and write this directory.",
        ]
    return [
        "# Started as root, switch to this account (it owns this directory); 'root' stays root.",
        f"user {run_as}",
    ]


def _check_unique(accounts: Sequence[Account]) -> None:
    seen: set[str] = set()
    for account in accounts:
        if account.username in seen:
            raise InvalidInput(f"MQTT username {account.username!r} is given twice")
        seen.add(account.username)


def _password_file(accounts: Sequence[Account]) -> str:
    """``user:hash`` lines.

    The hashes are computed here rather than by ``mosquitto_passwd``: ``-b`` would put every
    password on a command line (visible in the process list), and ``-U`` cuts a password at
    its first ``:`` (Mosquitto 2.0.11), silently changing it.
    """
    return "".join(
        f"{account.username}:{hash_password(account.password)}\n" for account in accounts
    )


def _acl(accounts: Sequence[Account]) -> str:
    lines = [
        "# Mosquitto ACL for alertnet, written by `alertnet broker config`. Regenerate, do not",
        "# edit. Anything not granted here is denied; a denied publish is dropped silently.",
        "",
        "# Devices log in with their EUI as username. A device may publish its uplinks only",
        "# under its own EUI, so a stolen button credential cannot raise another device's",
        "# alarm or fill another device's replay window ...",
        f"pattern write {DEVICE_UP_PATTERN}",
        "# ... and may read only its own downlink acks (they reveal alert progress).",
        f"pattern read {DEVICE_DOWN_PATTERN}",
    ]
    for account in accounts:
        if not account.grants:
            continue
        lines += ["", f"# {account.note or account.username}", f"user {account.username}"]
        lines += [f"topic {grant.access.value} {grant.topic}" for grant in account.grants]
    lines.append("")
    return "\n".join(lines)


def _write_atomically(path: Path, content: str, *, mode: int) -> None:
    """Replace ``path`` in one step: a broker re-reading it on SIGHUP never sees half a file."""
    staging = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as staging_file:
            staging_file.write(content)
        os.chmod(staging, mode)  # whatever the umask
        os.replace(staging, path)
    finally:
        staging.unlink(missing_ok=True)


def _hand_over(run_as: str, paths: Sequence[Path]) -> None:
    """Written as root for another account: give it the files, or it cannot read ``passwd``."""
    if os.geteuid() != 0 or run_as == "root":
        return
    try:
        account = pwd.getpwnam(run_as)
    except KeyError:
        raise InvalidInput(f"no such system account {run_as!r} to run the broker as") from None
    for path in paths:
        os.chown(path, account.pw_uid, account.pw_gid)

"""The Mosquitto configuration alertnet relies on, written as files (DESIGN §6 "Broker").

Part of alertnet's reliability lives in the broker: QoS 1 messages must survive a broker
restart, must never be dropped for a slow or offline persistent subscriber, and a device must
only be able to speak for itself. ``write_config`` writes ``mosquitto.conf`` (plus a password
file and an ACL when users are given) so that production, the CLI and the tests all run the
same broker settings. It does blocking file I/O: call it from a CLI command or a test, never
from the event loop.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from alertnet.errors import InvalidInput

__all__ = [
    "ACL_FILE",
    "CONF_FILE",
    "GATEWAY_USER_PREFIX",
    "LOG_FILE",
    "MAX_INFLIGHT_MESSAGES",
    "MAX_QUEUED_MESSAGES",
    "PASSWORD_FILE",
    "SERVICE_USER",
    "hash_password",
    "write_config",
]

CONF_FILE: Final = "mosquitto.conf"
PASSWORD_FILE: Final = "passwords"
ACL_FILE: Final = "acl"
LOG_FILE: Final = "mosquitto.log"
PERSISTENCE_FILE: Final = "mosquitto.db"

SERVICE_USER: Final = "alertnet"
GATEWAY_USER_PREFIX: Final = "gw-"

# Mosquitto's default of 1000 silently drops QoS 1 messages for a slow or offline subscriber;
# alertnet's persistent session must be able to hold a city's alarms during an outage.
MAX_QUEUED_MESSAGES: Final = 1_000_000
# alertnet acknowledges QoS 1 only after a database commit; Mosquitto's default window of 20
# unacknowledged messages per client would throttle its micro-batches to 20 messages.
MAX_INFLIGHT_MESSAGES: Final = 1_000

_DEVICE_USER = re.compile(r"[0-9a-f]{16}")
# A gateway id becomes one topic level and a password-file entry: no MQTT wildcards,
# separators, colons or whitespace.
_GATEWAY_USER = re.compile(r"gw-[A-Za-z0-9._-]{1,64}")
_SERVICE_USER = re.compile(r"[A-Za-z0-9._-]{1,64}")

# mosquitto_passwd's default scheme since Mosquitto 2.0: PBKDF2-HMAC-SHA512, 101 rounds.
_PBKDF2_ROUNDS: Final = 101
_SALT_BYTES: Final = 12


def write_config(
    directory: Path,
    *,
    port: int,
    bind: str = "127.0.0.1",
    persistence: bool = True,
    autosave_interval_s: int = 2,
    users: Mapping[str, str] | None = None,
    service_user: str = SERVICE_USER,
    run_as: str | None = None,
) -> Path:
    """Write alertnet's Mosquitto configuration into ``directory``; return the conf path.

    Without ``users`` the broker accepts anonymous clients (tests, a trial on loopback).
    With ``users`` ({username: password}) anonymous clients are refused and an ACL confines
    each user: ``service_user`` (alertnet itself) may read and write ``alertnet/#``; a device
    (username = its EUI, 16 lowercase hex) may only publish to ``alertnet/v1/up/<eui>`` and
    read ``alertnet/v1/down/<eui>``; a gateway (username ``gw-…``) only ``alertnet/v1/gw/<id>/#``.
    ``run_as`` is the account a broker started as root switches to (Mosquitto's ``user``).
    Persistence, log and credential files all live in ``directory``.
    """
    if not 0 < port < 65536:
        raise InvalidInput(f"broker port must be 1..65535, got {port}")
    if autosave_interval_s < 1:
        raise InvalidInput(f"autosave interval must be at least 1 s, got {autosave_interval_s}")
    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True)

    lines = [
        "# Mosquitto configuration for alertnet, written by alertnet.broker.mosquitto.",
        "# Regenerate it instead of editing it: every setting here is relied on (DESIGN §6).",
        "",
        "# One listener, on the given address only (loopback unless told otherwise); devices",
        "# reaching it across a network need TLS in front of it, which is not configured here.",
        f"listener {port} {bind}",
        "",
        *_persistence_lines(directory, persistence, autosave_interval_s),
        "",
        "# The default (1000) silently drops QoS 1 messages for a slow or offline persistent",
        "# subscriber: alertnet's session must hold every alarm raised while it is down.",
        f"max_queued_messages {MAX_QUEUED_MESSAGES}",
        "# No byte limit either: the message count above is the only bound on the queue.",
        "max_queued_bytes 0",
        "# alertnet acks QoS 1 only after a database commit; the default window of 20",
        "# unacknowledged messages per client would throttle its micro-batches.",
        f"max_inflight_messages {MAX_INFLIGHT_MESSAGES}",
        "# Frames are tiny and latency matters (press -> ack -> LED): do not wait to coalesce.",
        "set_tcp_nodelay true",
        "",
        *_auth_lines(directory, users, service_user),
        "",
        *_run_as_lines(run_as),
        "# The log goes next to the data so an operator (or a failing test) finds it.",
        f"log_dest file {directory / LOG_FILE}",
        "# Errors up to connection events: enough to see why a client was refused; 'debug' and",
        "# 'subscribe' would log per message and drown a city's traffic.",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "log_type information",
        "# Every connect and disconnect is logged: devices that flap are a field problem.",
        "connection_messages true",
        "# ISO timestamps, to line the broker log up with alertnet's own logs.",
        "log_timestamp_format %Y-%m-%dT%H:%M:%S",
        "",
    ]
    conf_path = directory / CONF_FILE
    conf_path.write_text("\n".join(lines), encoding="utf-8")
    return conf_path


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


def _auth_lines(directory: Path, users: Mapping[str, str] | None, service_user: str) -> list[str]:
    if not users:
        return [
            "# No users given: anonymous clients are accepted. Safe only on loopback.",
            "allow_anonymous true",
        ]
    gateways = _check_users(users, service_user)
    password_path = directory / PASSWORD_FILE
    acl_path = directory / ACL_FILE
    _write_password_file(password_path, users)
    _write_acl(acl_path, service_user, gateways)
    return [
        "# Every client must log in: a device as its EUI, a gateway as gw-<id>, and alertnet",
        f"# itself as '{service_user}'.",
        "allow_anonymous false",
        "# Salted PBKDF2 hashes, never plain passwords.",
        f"password_file {password_path}",
        "# Each device may speak only for itself; see the comments in the ACL file.",
        f"acl_file {acl_path}",
    ]


def _run_as_lines(run_as: str | None) -> list[str]:
    if run_as is None:
        return [
            "# Started as root, Mosquitto switches to its own 'mosquitto' account: that account",
            "# must be able to write this directory.",
        ]
    return [
        "# Started as root, switch to this account (it owns this directory); 'root' stays root.",
        f"user {run_as}",
    ]


def _check_users(users: Mapping[str, str], service_user: str) -> list[str]:
    """Reject usernames the ACL could not confine; return the gateway users, sorted."""
    if _SERVICE_USER.fullmatch(service_user) is None:
        raise InvalidInput(f"service user name {service_user!r} is not a valid MQTT username")
    if service_user not in users:
        raise InvalidInput(f"users must include the alertnet service user {service_user!r}")
    gateways: list[str] = []
    for username, password in users.items():
        if not password or "\n" in password or "\r" in password:
            raise InvalidInput(f"password of {username!r} must be one non-empty line")
        if username == service_user or _DEVICE_USER.fullmatch(username):
            continue
        if _GATEWAY_USER.fullmatch(username) is None:
            raise InvalidInput(
                f"MQTT user {username!r} is neither a device EUI (16 lowercase hex) nor a "
                f"gateway ({GATEWAY_USER_PREFIX}<id>)"
            )
        gateways.append(username)
    return sorted(gateways)


def _write_password_file(path: Path, users: Mapping[str, str]) -> None:
    """Write ``user:hash`` lines, readable by the owner only, replacing the file atomically.

    The hashes are computed here rather than by ``mosquitto_passwd``: ``-b`` would put every
    password on a command line (visible in the process list), and ``-U`` cuts a password
    at its first ``:`` (Mosquitto 2.0.11), silently changing it.
    """
    content = "".join(f"{name}:{hash_password(password)}\n" for name, password in users.items())
    staging = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as staging_file:
            staging_file.write(content)
        os.replace(staging, path)
    finally:
        staging.unlink(missing_ok=True)


def _write_acl(path: Path, service_user: str, gateways: list[str]) -> None:
    lines = [
        "# Mosquitto ACL for alertnet, written by alertnet.broker.mosquitto. Regenerate, do not",
        "# edit. Anything not granted here is denied; a denied publish is dropped silently.",
        "",
        "# Devices log in with their EUI as username. A device may publish its uplinks only",
        "# under its own EUI, so a stolen button credential cannot raise another device's",
        "# alarm or fill another device's replay window.",
        "pattern write alertnet/v1/up/%u",
        "# ... and may read only its own downlink acks (they reveal alert progress).",
        "pattern read alertnet/v1/down/%u",
        "",
        "# alertnet itself subscribes to all uplinks and publishes every downlink.",
        f"user {service_user}",
        "topic readwrite alertnet/#",
    ]
    for gateway in gateways:
        # Granted per gateway, not as a pattern: a pattern would also give every device
        # user a gw/<its eui>/ topic tree, letting a button pose as a gateway.
        lines += [
            "",
            f"# Gateway {gateway}: its received frames, its downlinks, its online state.",
            f"user {gateway}",
            f"topic readwrite alertnet/v1/gw/{gateway}/#",
        ]
    lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")

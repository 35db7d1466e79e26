"""``alertnet broker config DIR``: the production broker's files, from the registry (DESIGN §14).

The CLI reads the registry in one transaction (``alertnet.broker.accounts.load_registry``)
and hands it here with the options of ``alertnet.broker.options``; this module turns them and
``ALERTNET_MQTT_URL`` into ``mosquitto.conf``, ``passwd`` and ``acl``, and returns what it
tells the operator.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from alertnet.broker.accounts import Registry, broker_accounts
from alertnet.broker.mosquitto import ACL_FILE, PASSWORD_FILE, Listener, write_config
from alertnet.config import Settings
from alertnet.errors import InvalidInput
from alertnet.ingest.mqtt_client import BrokerAddress, MqttPurpose, gateway_mqtt_password

__all__ = ["write_broker_config"]


def write_broker_config(args: argparse.Namespace, settings: Settings, registry: Registry) -> str:
    """Write the three files into ``args.directory``; return the report for the operator."""
    address = _alertnet_login(settings)
    assert address.username is not None and address.password is not None
    listeners = [Listener.parse(args.listen)]
    if args.tls_cert is not None or args.tls_key is not None:
        for path in (args.tls_cert, args.tls_key):
            if path is None or not path.is_file():
                raise InvalidInput("--tls-cert and --tls-key must both name readable files")
        listeners.append(
            Listener.parse(args.tls_listen, certfile=args.tls_cert, keyfile=args.tls_key)
        )
    result = broker_accounts(
        registry,
        alertnet_user=address.username,
        alertnet_password=address.password,
        processes=args.processes,
        extra_gateways=args.gateway,
        chirpstack_password=_password_from(args.chirpstack_password_file),
        frigate_password=_password_from(args.frigate_password_file),
        frigate_prefix=args.frigate_topic_prefix,
    )
    conf = write_config(
        args.directory,
        listeners=listeners,
        accounts=result.accounts,
        run_as=args.run_as or _default_run_as(),
    )
    directory = conf.parent
    purposes = ", ".join(purpose.value for purpose in MqttPurpose)
    lines = [
        f"wrote {conf}, {directory / PASSWORD_FILE} and {directory / ACL_FILE}",
        f"  {result.devices} devices, {len(result.gateways)} gateways, "
        f"{len(result.alertnet_logins)} alertnet logins ({args.processes} process(es) x "
        f"{purposes})" + "".join(f", {adapter}" for adapter in result.adapters),
        "  listening on "
        + ", ".join(f"{lst.host}:{lst.port}{' (TLS)' if lst.tls else ''}" for lst in listeners),
        f"  alertnet process n connects as {address.username}-<purpose>-n: "
        "give each process ALERTNET_MQTT_PROCESS=n (1..--processes)",
        *(f"  {line}" for line in result.skipped_lines()),
        f"start it:  mosquitto -c {conf}",
        "after devices or gateways change: run this again, then `kill -HUP <mosquitto pid>`",
    ]
    if args.print_gateway_passwords:
        lines += ["gateway logins (username password):"] + [
            f"  {gateway} {gateway_mqtt_password(address.password, gateway)}"
            for gateway in result.gateways
        ]
    return "\n".join(lines)


def _default_run_as() -> str | None:
    """Started as root, Mosquitto switches to its 'mosquitto' account: the files must be its."""
    return "mosquitto" if os.geteuid() == 0 else None


def _alertnet_login(settings: Settings) -> BrokerAddress:
    example = "mqtt://alertnet:PASSWORD@127.0.0.1:1883"
    if settings.mqtt_embedded:
        raise InvalidInput(f"set ALERTNET_MQTT_URL to the production broker, e.g. {example}")
    address = BrokerAddress.parse(settings.mqtt_url)
    if address.username is None or address.password is None:
        raise InvalidInput(
            f"ALERTNET_MQTT_URL must carry alertnet's broker user and password, e.g. {example}"
        )
    return address


def _password_from(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        first_line = path.read_text(encoding="utf-8").splitlines()[:1]
    except OSError as exc:
        raise InvalidInput(f"cannot read the password file {path}: {exc.strerror}") from exc
    if not first_line or not first_line[0]:
        raise InvalidInput(f"the password file {path} is empty")
    return first_line[0]

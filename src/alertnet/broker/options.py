"""The options of ``alertnet broker config`` and its help text, kept light for the CLI parser.

The parser is built on every ``alertnet`` invocation; the work itself
(``alertnet.broker.command``) imports the ORM and the MQTT client, so it lives apart.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Final

__all__ = [
    "DEFAULT_FRIGATE_PREFIX",
    "DEFAULT_LISTEN",
    "DEFAULT_TLS_LISTEN",
    "DESCRIPTION",
    "add_config_arguments",
]

DEFAULT_FRIGATE_PREFIX: Final = "frigate"
DEFAULT_LISTEN: Final = "127.0.0.1:1883"
DEFAULT_TLS_LISTEN: Final = "0.0.0.0:8883"

DESCRIPTION: Final = """\
Write DIR/mosquitto.conf, DIR/passwd and DIR/acl for the production Mosquitto from the
registry in ALERTNET_DATABASE_URL: anonymous clients refused, every client id replaced by its
username (no client can take over another's session), a device may publish only to its own
up topic and read only its own down topic, packets over 64 KiB disconnect their sender,
bounded queues, persistence saved every 2 s.

Logins: each device (username its EUI, password from its key), each MQTT LoRa gateway
(username its id, password derived from alertnet's; --print-gateway-passwords shows them),
alertnet's own connections (<user>-<purpose>-<n> for the user and password in
ALERTNET_MQTT_URL; start alertnet process n of --processes with ALERTNET_MQTT_PROCESS=n),
and optionally ChirpStack and Frigate.

Run it again after devices or gateways change, then send Mosquitto SIGHUP: it re-reads
passwd, acl and the TLS certificate and key. It does not re-read listeners or
use_username_as_clientid: restart Mosquitto after changing those.
"""


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", metavar="DIR", type=Path, help="where the files go")
    parser.add_argument(
        "--listen",
        default=DEFAULT_LISTEN,
        metavar="HOST:PORT",
        help=f"the plain MQTT listener (default {DEFAULT_LISTEN})",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        metavar="N",
        help="alertnet processes that connect to this broker (default 1)",
    )
    parser.add_argument("--tls-cert", type=Path, metavar="FILE", help="PEM server certificate")
    parser.add_argument("--tls-key", type=Path, metavar="FILE", help="PEM private key")
    parser.add_argument(
        "--tls-listen",
        default=DEFAULT_TLS_LISTEN,
        metavar="HOST:PORT",
        help=f"the TLS listener, with --tls-cert and --tls-key (default {DEFAULT_TLS_LISTEN})",
    )
    parser.add_argument(
        "--gateway",
        action="append",
        default=[],
        metavar="ID",
        help="an MQTT LoRa gateway that is not registered yet (repeatable)",
    )
    parser.add_argument(
        "--chirpstack-password-file",
        type=Path,
        metavar="FILE",
        help="add the 'chirpstack' login with the password on the first line of FILE",
    )
    parser.add_argument(
        "--frigate-password-file",
        type=Path,
        metavar="FILE",
        help="add the 'frigate' login with the password on the first line of FILE",
    )
    parser.add_argument(
        "--frigate-topic-prefix",
        default=DEFAULT_FRIGATE_PREFIX,
        metavar="PREFIX",
        help=f"Frigate's MQTT topic prefix (default {DEFAULT_FRIGATE_PREFIX})",
    )
    parser.add_argument(
        "--run-as",
        metavar="ACCOUNT",
        help="the account Mosquitto runs as and the files belong to (default: 'mosquitto' "
        "when run as root, else whoever runs this command)",
    )
    parser.add_argument(
        "--print-gateway-passwords",
        action="store_true",
        help="print each gateway's MQTT password (to configure the gateway)",
    )

"""The ``alertnet`` command (DESIGN §5): migrate, serve, and what an installer or admin does
from a shell. Each database command is one transaction; an error prints one line, exit code 1.

``main`` parses the command line, reads the ``ALERTNET_*`` settings and runs the subcommand's
handler; the subcommands live by topic: ``server`` (migrate, serve), ``network`` (device,
mahalla, post, gateway, broker), ``accounts`` (user, token) and ``press`` (try a device), on
``common``'s helpers.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from alertnet import __version__
from alertnet.cli import accounts, network, press, server
from alertnet.cli.common import EXIT_ERROR, EXIT_USAGE, Handler, display_url
from alertnet.config import Settings
from alertnet.errors import AlertnetError

__all__ = ["build_parser", "display_url", "main"]

# Third-party loggers that say at INFO what an operator does not need to read.
CHATTY_LOGGERS = ("transitions", "amqtt", "alembic.runtime.plugins")

log = logging.getLogger("alertnet.cli")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="alertnet",
        description="alertnet: panic buttons and alarms to the nearest mobile police post.",
        epilog="Configuration comes from ALERTNET_* environment variables; see docs/cli.md.",
    )
    parser.add_argument("--version", action="version", version=f"alertnet {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    server.add_commands(commands)
    network.add_registry_commands(commands)
    accounts.add_commands(commands)
    network.add_transport_commands(commands)
    press.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:
        print(f"error: invalid ALERTNET_* configuration:\n{exc}", file=sys.stderr)
        return EXIT_USAGE
    _configure_logging(settings.log_level)
    handler: Handler = args.handler
    try:
        return handler(args, settings)
    except AlertnetError as exc:
        print(f"error: {exc.detail}", file=sys.stderr)
    except SQLAlchemyError as exc:
        log.debug("database error", exc_info=True)
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        print(f"error: database {display_url(settings.database_url)}: {reason}", file=sys.stderr)
        if "no such table" in reason or "does not exist" in reason:
            print("hint: run `alertnet migrate` first", file=sys.stderr)
    except KeyboardInterrupt:
        return 130
    return EXIT_ERROR


def _configure_logging(level_name: str) -> None:
    level = logging.getLevelNamesMapping().get(level_name.strip().upper())
    logging.basicConfig(
        level=level if level is not None else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if level is None:
        log.warning("unknown ALERTNET_LOG_LEVEL %r, using INFO", level_name)
    if level is None or level > logging.DEBUG:
        for chatty in CHATTY_LOGGERS:
            logging.getLogger(chatty).setLevel(logging.WARNING)

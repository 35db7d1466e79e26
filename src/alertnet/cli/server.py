"""``alertnet migrate`` and ``alertnet serve``: the schema brought up to date, and the server
(API, ingest, dispatcher) run in the foreground, optionally on a seeded demo city.

``serve --role api|ingest|dispatch`` (repeatable; default all three) runs a part of alertnet,
so several processes can share one PostgreSQL (``alertnet.roles``); an unknown role is a usage
error (exit 2). ``serve`` takes its listening socket before anything else: a port that is
already taken is one clear line and exit code 1 at once, not a traceback after the database
was touched. The server runs on uvloop when it is installed (it is, with ``uvicorn[standard]``
on Linux), else on asyncio's own loop; the start-up lines name the roles, what runs and the
loop.
"""

from __future__ import annotations

import argparse
import errno
import importlib.util
import socket
import sys
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from alertnet import __version__
from alertnet.cli.common import (
    EXIT_ERROR,
    EXIT_OK,
    display_url,
    in_transaction,
    migrate_database,
)
from alertnet.config import Settings
from alertnet.roles import ALL_ROLES, ProcessPlan, ProcessRole

if TYPE_CHECKING:
    from alertnet.cli.common import Commands


def add_commands(commands: Commands) -> None:
    """``migrate`` and ``serve``."""
    command = commands.add_parser("migrate", help="bring the database schema up to date")
    command.set_defaults(handler=_migrate)

    command = commands.add_parser("serve", help="run the API, ingest and dispatcher")
    command.add_argument("--host", default="127.0.0.1")
    command.add_argument("--port", type=int, default=8000)
    command.add_argument(
        "--role",
        dest="roles",
        action="append",
        choices=[role.value for role in ProcessRole],
        help="run only this part (repeatable; default: all three). api: HTTP API, pages and "
        "WebSockets; ingest: MQTT, ChirpStack, Frigate, DC-09 and serial ingest; dispatch: "
        "the dispatcher, device supervision, retention and drills",
    )
    command.add_argument(
        "--demo",
        action="store_true",
        help="migrate and seed a demo city with logins (DEMO ONLY)",
    )
    command.set_defaults(handler=_serve)


def _migrate(_args: argparse.Namespace, settings: Settings) -> int:
    migrate_database(settings)
    print(f"migrated {display_url(settings.database_url)} to the latest schema")
    return EXIT_OK


def _base_url(host: str, port: int) -> str:
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def _event_loop() -> str:
    """uvicorn's loop: uvloop when installed (faster I/O for every connection), else asyncio."""
    return "uvloop" if importlib.util.find_spec("uvloop") is not None else "asyncio"


class PortTaken(Exception):
    """Another process listens on the address ``serve`` was asked to use."""


def _listen(host: str, port: int) -> socket.socket:
    """The server's listening socket, bound now; ``PortTaken`` when the port is in use."""
    try:
        family, kind, proto, _name, address = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise OSError(f"unknown host {host!r}: {exc.strerror}") from exc
    listener = socket.socket(family, kind, proto)
    try:
        # As uvicorn does: a restart may reuse a port whose old connections linger in
        # TIME_WAIT; a port another process listens on stays refused.
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(address)
    except OSError as exc:
        listener.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortTaken from exc
        raise
    listener.set_inheritable(True)
    return listener


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    try:
        listener = _listen(args.host, args.port)
    except PortTaken:
        print(
            f"error: cannot serve on {args.host}:{args.port}: the port is already in use "
            "(is alertnet already running?)",
            file=sys.stderr,
        )
        print(
            f"hint: stop the other server, or pick a free port: alertnet serve --port "
            f"{args.port + 1} (or make run PORT={args.port + 1})",
            file=sys.stderr,
        )
        return EXIT_ERROR
    except OSError as exc:
        print(f"error: cannot serve on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    with listener:
        return _serve_on(listener, args, settings)


def _serve_on(listener: socket.socket, args: argparse.Namespace, settings: Settings) -> int:
    from alertnet.demo import DemoLogins, DemoMode, apply_demo_mode, seed_demo

    # Only the flag turns the demo on: demo logins and keys work only while it is given.
    settings = settings.model_copy(update={"demo": args.demo})
    if args.demo:
        # A demo must work on an empty database, so it brings the schema up to date first.
        migrate_database(settings)

    async def prepare(session: AsyncSession) -> tuple[DemoLogins | None, DemoMode]:
        logins = await seed_demo(session) if args.demo else None
        return logins, await apply_demo_mode(session, enabled=args.demo)

    logins, mode = in_transaction(settings, prepare)

    import uvicorn

    from alertnet.app import HTTP_DRAIN_S, SHUTDOWN_DEADLINE_S, create_app

    roles = frozenset(ProcessRole(role) for role in args.roles) if args.roles else ALL_ROLES
    plan = ProcessPlan(roles, settings)
    app = create_app(settings, roles=roles, shutdown_deadline_s=SHUTDOWN_DEADLINE_S)
    loop = _event_loop()
    base_url = _base_url(args.host, args.port)
    print(f"alertnet {__version__}: {plan.describe()}")
    if roles != ALL_ROLES and not plan.on_postgres:
        print(
            "note: on SQLite processes do not wake each other; a new alert waits for the "
            f"dispatcher's tick ({settings.dispatch_tick_s:g} s): use PostgreSQL for several "
            "processes"
        )
    if plan.serves_api:
        print(f"console at {base_url}/console (event loop: {loop})")
    else:
        print(f"probes at {base_url}/readyz and {base_url}/metrics (event loop: {loop})")
    if logins is not None:
        if not logins.created:
            print("the database already holds the demo city; seeding skipped")
        print("demo logins (DEMO ONLY, never on a real network):")
        for login in logins.logins:
            bound = f" ({login.bound_to})" if login.bound_to else ""
            print(f"  {login.username:<12} {login.password:<16} {login.role}{bound}")
    elif mode.devices or mode.users:
        print(
            f"serving without --demo: disabled {mode.devices} demo devices and {mode.users} "
            f"demo accounts ({mode.revoked_tokens} tokens revoked)"
        )
    sys.stdout.flush()
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=HTTP_DRAIN_S,
        loop=loop,
    )
    uvicorn.Server(config).run(sockets=[listener])
    return EXIT_OK

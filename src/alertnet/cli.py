"""The ``alertnet`` command (DESIGN §5): migrate, serve, and what an installer or admin does
from a shell. Each database command is one transaction; an error prints one line, exit code 1.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from pydantic import ValidationError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from alertnet import __version__
from alertnet.broker import options as broker_options
from alertnet.config import Settings
from alertnet.db import create_engine, create_session_factory, migrate, unit_of_work
from alertnet.errors import AlertnetError, InvalidInput, Unavailable

T = TypeVar("T")
Handler = Callable[[argparse.Namespace, Settings], int]

EXIT_OK = 0
EXIT_ERROR = 1
DEFAULT_TOKEN_TTL_DAYS = 90
EXIT_USAGE = 2
# Third-party loggers that say at INFO what an operator does not need to read.
CHATTY_LOGGERS = ("transitions", "amqtt", "alembic.runtime.plugins")

log = logging.getLogger("alertnet.cli")


def display_url(database_url: str) -> str:
    """The database URL with its password masked, fit for a terminal or a log."""
    try:
        return make_url(database_url).render_as_string(hide_password=True)
    except ArgumentError:
        return database_url.split("@", 1)[-1]


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


def _in_transaction(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run ``work`` in one unit of work on a fresh engine: it commits only if nothing raised."""

    async def run() -> T:
        engine = create_engine(settings.database_url)
        try:
            async with unit_of_work(create_session_factory(engine)) as session:
                return await work(session)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(run())
    except OSError as exc:  # asyncpg reports an unreachable server as a plain OSError
        raise _unreachable(settings, exc) from exc


def _migrate_database(settings: Settings) -> None:
    try:
        migrate(settings.database_url)
    except OSError as exc:
        raise _unreachable(settings, exc) from exc


def _unreachable(settings: Settings, exc: OSError) -> Unavailable:
    return Unavailable(f"cannot reach the database {display_url(settings.database_url)}: {exc}")


# --- commands ---------------------------------------------------------------------------------


def _migrate(_args: argparse.Namespace, settings: Settings) -> int:
    _migrate_database(settings)
    print(f"migrated {display_url(settings.database_url)} to the latest schema")
    return EXIT_OK


def _console_url(host: str, port: int) -> str:
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/console"


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from alertnet.demo import DemoLogins, DemoMode, apply_demo_mode, seed_demo

    # Only the flag turns the demo on: demo logins and keys work only while it is given.
    settings = settings.model_copy(update={"demo": args.demo})
    if args.demo:
        # A demo must work on an empty database, so it brings the schema up to date first.
        _migrate_database(settings)

    async def prepare(session: AsyncSession) -> tuple[DemoLogins | None, DemoMode]:
        logins = await seed_demo(session) if args.demo else None
        return logins, await apply_demo_mode(session, enabled=args.demo)

    logins, mode = _in_transaction(settings, prepare)

    import uvicorn

    from alertnet.app import HTTP_DRAIN_S, SHUTDOWN_DEADLINE_S, create_app

    app = create_app(settings, shutdown_deadline_s=SHUTDOWN_DEADLINE_S)
    print(f"alertnet {__version__}: console at {_console_url(args.host, args.port)}")
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
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=HTTP_DRAIN_S,
    )
    return EXIT_OK


def _device_add(args: argparse.Namespace, settings: Settings) -> int:
    from alertnet.devices.service import add_device, parse_key_hex

    key = parse_key_hex(args.key) if args.key is not None else None

    async def work(session: AsyncSession) -> tuple[str, str, str, int, bytes]:
        device, device_key = await add_device(
            session,
            args.eui,
            kind=args.kind,
            lat=args.lat,
            lon=args.lon,
            key=key,
            mahalla_name=args.mahalla,
            site=args.site,
            name=args.name,
            address=args.address,
            supervision_interval_s=args.supervision_s,
        )
        return device.eui, device.kind, device.site, device.supervision_interval_s, device_key

    eui, kind, site, supervision_s, device_key = _in_transaction(settings, work)
    print(f"added device {eui}: {kind}, {site} site, supervision every {supervision_s} s")
    if key is None:
        print(f"generated key: {device_key.hex()}")
        print("flash this key into the device; anyone holding it can send alarms as the device")
    return EXIT_OK


def _device_import(args: argparse.Namespace, settings: Settings) -> int:
    from alertnet.devices.importer import ImportResult, import_devices

    path = Path(args.file)

    async def work(session: AsyncSession) -> ImportResult:
        return await import_devices(session, path)

    result = _in_transaction(settings, work)
    noun = "device" if result.count == 1 else "devices"
    print(f"imported {result.count} {noun} from {path}")
    if result.generated_keys:
        print("generated keys (flash each into its device):")
        print("eui,key")
        for eui, key in result.generated_keys:
            print(f"{eui},{key.hex()}")
    return EXIT_OK


def _mahalla_add(args: argparse.Namespace, settings: Settings) -> int:
    from alertnet.mahallas import add_mahalla

    async def work(session: AsyncSession) -> tuple[str, str]:
        mahalla = await add_mahalla(
            session,
            args.name,
            risk=args.risk,
            district=args.district,
            region=args.region,
            lat=args.lat,
            lon=args.lon,
            households=args.households,
            businesses=args.businesses,
        )
        return mahalla.name, mahalla.risk

    name, risk = _in_transaction(settings, work)
    print(f"added mahalla {name!r} ({risk})")
    return EXIT_OK


def _post_add(args: argparse.Namespace, settings: Settings) -> int:
    from alertnet.posts.service import add_post

    async def work(session: AsyncSession) -> tuple[str, str]:
        post = await add_post(
            session, args.callsign, lat=args.lat, lon=args.lon, home_mahalla_name=args.mahalla
        )
        return post.callsign, post.status

    callsign, status = _in_transaction(settings, work)
    print(f"added post {callsign} ({status}; the crew goes on duty from its tablet)")
    return EXIT_OK


def _user_add(args: argparse.Namespace, settings: Settings) -> int:
    from alertnet.auth.users import create_user

    password = _read_password(args.password)

    async def work(session: AsyncSession) -> tuple[str, str, str | None]:
        user, generated = await create_user(
            session,
            args.username,
            args.role,
            password=password,
            post_callsign=args.post,
            mahalla_name=args.mahalla,
        )
        return user.username, user.role, generated

    username, role, generated = _in_transaction(settings, work)
    print(f"added user {username} ({role})")
    if generated is not None:
        print(f"generated password: {generated}")
    return EXIT_OK


def _token_create(args: argparse.Namespace, settings: Settings) -> int:
    from alertnet.auth.tokens import create_token
    from alertnet.auth.users import get_user_by_username

    async def work(session: AsyncSession) -> str:
        user = await get_user_by_username(session, args.username)
        return await create_token(session, user.id, label=args.label, ttl_s=args.ttl_days * 86400)

    token = _in_transaction(settings, work)
    print(token)
    # Scripts read the token from stdout; the reminder goes to stderr.
    print(f"expires in {args.ttl_days:g} days; it is not shown again", file=sys.stderr)
    return EXIT_OK


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.strftime("%Y-%m-%d %H:%M UTC")


def _token_list(args: argparse.Namespace, settings: Settings) -> int:
    from alertnet.auth.tokens import TokenInfo, list_tokens
    from alertnet.auth.users import get_user_by_username

    async def work(session: AsyncSession) -> list[TokenInfo]:
        if args.username is not None:
            await get_user_by_username(session, args.username)
        return await list_tokens(session, args.username)

    tokens = _in_transaction(settings, work)
    if not tokens:
        print("no tokens")
        return EXIT_OK
    print(f"{'ID':>5}  {'USER':<16} {'LABEL':<16} {'CREATED':<20} {'EXPIRES':<20} "
          f"{'LAST USED':<20} STATE")  # fmt: skip
    for info in tokens:
        print(
            f"{info.id:>5}  {info.username:<16} {info.label or '-':<16} "
            f"{_when(info.created_at):<20} {_when(info.expires_at):<20} "
            f"{_when(info.last_used_at):<20} {info.state}"
        )
    return EXIT_OK


def _token_revoke(args: argparse.Namespace, settings: Settings) -> int:
    from alertnet.auth.tokens import TokenInfo, revoke_token

    async def work(session: AsyncSession) -> tuple[TokenInfo, bool]:
        return await revoke_token(session, args.id)

    info, ended = _in_transaction(settings, work)
    if ended:
        print(f"revoked token {info.id} of {info.username}")
    else:
        print(f"token {info.id} of {info.username} was already {info.state}")
    return EXIT_OK


def _read_password(given: str | None) -> str | None:
    """``--password``: the value, or with ``-`` read from the terminal (asked twice) or stdin."""
    if given != "-":
        return given
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    import getpass

    password = getpass.getpass("new password: ")
    if getpass.getpass("again: ") != password:
        raise InvalidInput("the two passwords differ")
    return password


def _user_passwd(args: argparse.Namespace, settings: Settings) -> int:
    from alertnet.auth.users import AccountChange, get_user_by_username, set_password

    password = _read_password(args.password)

    async def work(session: AsyncSession) -> AccountChange:
        user = await get_user_by_username(session, args.username)
        return await set_password(session, user, password)

    change = _in_transaction(settings, work)
    print(f"changed the password of {args.username}; revoked {change.revoked_tokens} tokens")
    if change.generated_password is not None:
        print(f"generated password: {change.generated_password}")
    return EXIT_OK


def _user_set_active(args: argparse.Namespace, settings: Settings) -> int:
    from alertnet.auth.users import AccountChange, get_user_by_username, set_active

    active: bool = args.action == "enable"

    async def work(session: AsyncSession) -> AccountChange:
        user = await get_user_by_username(session, args.username)
        return await set_active(session, user, active)

    change = _in_transaction(settings, work)
    if active:
        print(f"enabled {args.username} (tokens revoked earlier stay revoked)")
    else:
        print(f"disabled {args.username}; revoked {change.revoked_tokens} tokens")
    return EXIT_OK


def _gateway(args: argparse.Namespace, settings: Settings) -> int:
    from alertnet.ingest.gateway_bridge import main as run_gateway

    return run_gateway(args.serial, args.id or args.serial, settings)


def _broker_config(args: argparse.Namespace, settings: Settings) -> int:
    from alertnet.broker.accounts import load_registry
    from alertnet.broker.command import write_broker_config

    print(write_broker_config(args, settings, _in_transaction(settings, load_registry)))
    return EXIT_OK


# --- parser -----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="alertnet",
        description="alertnet: panic buttons and alarms to the nearest mobile police post.",
        epilog="Configuration comes from ALERTNET_* environment variables; see docs/cli.md.",
    )
    parser.add_argument("--version", action="version", version=f"alertnet {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    command = commands.add_parser("migrate", help="bring the database schema up to date")
    command.set_defaults(handler=_migrate)

    command = commands.add_parser("serve", help="run the API, ingest and dispatcher")
    command.add_argument("--host", default="127.0.0.1")
    command.add_argument("--port", type=int, default=8000)
    command.add_argument(
        "--demo",
        action="store_true",
        help="migrate and seed a demo city with logins (DEMO ONLY)",
    )
    command.set_defaults(handler=_serve)

    device = commands.add_parser("device", help="register devices").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    command = device.add_parser("add", help="register one device")
    command.add_argument("eui", metavar="EUI", help="16 hex characters")
    command.add_argument("--kind", required=True, help="panic_button, intrusion_alarm, …")
    command.add_argument("--lat", type=float, required=True)
    command.add_argument("--lon", type=float, required=True)
    command.add_argument("--key", metavar="HEX", help="32 hex characters; generated if omitted")
    command.add_argument("--mahalla", metavar="NAME")
    command.add_argument("--site", help="public, household or business (default by kind)")
    command.add_argument("--name", default="")
    command.add_argument("--address", default="")
    command.add_argument(
        "--supervision-s",
        type=int,
        metavar="SECONDS",
        help="heartbeat supervision interval (default 900 public panic buttons, else 3600)",
    )
    command.set_defaults(handler=_device_add)
    command = device.add_parser("import", help="register the devices of a CSV file")
    command.add_argument("file", metavar="FILE.csv")
    command.set_defaults(handler=_device_import)

    mahalla = commands.add_parser("mahalla", help="register mahallas").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    command = mahalla.add_parser("add", help="register one mahalla")
    command.add_argument("name", metavar="NAME")
    command.add_argument("--risk", required=True, help="red, yellow or green")
    command.add_argument("--district", default="")
    command.add_argument("--region", default="")
    command.add_argument("--lat", type=float, help="centroid latitude")
    command.add_argument("--lon", type=float, help="centroid longitude")
    command.add_argument("--households", type=int, default=0)
    command.add_argument("--businesses", type=int, default=0)
    command.set_defaults(handler=_mahalla_add)

    post = commands.add_parser("post", help="register mobile police posts").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    command = post.add_parser("add", help="register one post (it starts off duty)")
    command.add_argument("callsign", metavar="CALLSIGN")
    command.add_argument("--lat", type=float)
    command.add_argument("--lon", type=float)
    command.add_argument("--mahalla", metavar="NAME", help="home mahalla")
    command.set_defaults(handler=_post_add)

    user = commands.add_parser("user", help="manage users").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    command = user.add_parser("add", help="create a user (prints a generated password)")
    command.add_argument("username", metavar="USERNAME")
    command.add_argument("--role", required=True, help="admin, dispatcher, post or observer")
    command.add_argument("--post", metavar="CALLSIGN", help="the post a post user acts for")
    command.add_argument("--mahalla", metavar="NAME", help="the mahalla an observer sees")
    command.add_argument(
        "--password",
        help="generated when omitted; '-' reads it from the terminal or stdin. At least "
        "12 characters for admin and dispatcher, 8 otherwise, and not a common one",
    )
    command.set_defaults(handler=_user_add)
    command = user.add_parser("passwd", help="set a new password (revokes the user's tokens)")
    command.add_argument("username", metavar="USERNAME")
    command.add_argument(
        "--password", help="generated when omitted; '-' reads it from the terminal or stdin"
    )
    command.set_defaults(handler=_user_passwd)
    command = user.add_parser("disable", help="disable a user and revoke all its tokens")
    command.add_argument("username", metavar="USERNAME")
    command.set_defaults(handler=_user_set_active)
    command = user.add_parser("enable", help="enable a user again (its old tokens stay dead)")
    command.add_argument("username", metavar="USERNAME")
    command.set_defaults(handler=_user_set_active)

    token = commands.add_parser("token", help="manage API tokens").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    command = token.add_parser("create", help="print a new bearer token (shown once)")
    command.add_argument("username", metavar="USERNAME")
    command.add_argument("--label", default="", help="what the token is for")
    command.add_argument(
        "--ttl-days",
        type=float,
        default=DEFAULT_TOKEN_TTL_DAYS,
        metavar="DAYS",
        help=f"expire after DAYS (default {DEFAULT_TOKEN_TTL_DAYS}, at most 366)",
    )
    command.set_defaults(handler=_token_create)
    command = token.add_parser("list", help="list tokens (never their secrets)")
    command.add_argument("username", metavar="USERNAME", nargs="?", help="only this user's")
    command.set_defaults(handler=_token_list)
    command = token.add_parser("revoke", help="end a token now")
    command.add_argument("id", metavar="ID", type=int, help="as shown by `token list`")
    command.set_defaults(handler=_token_revoke)

    command = commands.add_parser("gateway", help="run a serial LoRa gateway bridge")
    command.add_argument("--serial", required=True, metavar="PORT", help="e.g. /dev/ttyUSB0")
    command.add_argument("--id", metavar="ID", help="gateway id (default: the port path)")
    command.set_defaults(handler=_gateway)

    broker = commands.add_parser("broker", help="the production MQTT broker").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    command = broker.add_parser(
        "config",
        help="write Mosquitto's config, passwd and acl from the registry",
        description=broker_options.DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    broker_options.add_config_arguments(command)
    command.set_defaults(handler=_broker_config)
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

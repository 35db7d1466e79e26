"""Accounts from a shell: ``user add|passwd|disable|enable`` and ``token create|list|revoke``
(bearer tokens for scripts and tablets; their secrets are shown once, never listed)."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from alertnet.cli.common import EXIT_OK, in_transaction, read_password
from alertnet.config import Settings

if TYPE_CHECKING:
    from alertnet.cli.common import Commands

DEFAULT_TOKEN_TTL_DAYS = 90


def add_commands(commands: Commands) -> None:
    """``user`` and ``token``."""
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


# --- users ------------------------------------------------------------------------------------


def _user_add(args: argparse.Namespace, settings: Settings) -> int:
    from alertnet.auth.users import create_user

    password = read_password(args.password)

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

    username, role, generated = in_transaction(settings, work)
    print(f"added user {username} ({role})")
    if generated is not None:
        print(f"generated password: {generated}")
    return EXIT_OK


def _user_passwd(args: argparse.Namespace, settings: Settings) -> int:
    from alertnet.auth.users import AccountChange, get_user_by_username, set_password

    password = read_password(args.password)

    async def work(session: AsyncSession) -> AccountChange:
        user = await get_user_by_username(session, args.username)
        return await set_password(session, user, password)

    change = in_transaction(settings, work)
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

    change = in_transaction(settings, work)
    if active:
        print(f"enabled {args.username} (tokens revoked earlier stay revoked)")
    else:
        print(f"disabled {args.username}; revoked {change.revoked_tokens} tokens")
    return EXIT_OK


# --- tokens -----------------------------------------------------------------------------------


def _token_create(args: argparse.Namespace, settings: Settings) -> int:
    from alertnet.auth.tokens import create_token
    from alertnet.auth.users import get_user_by_username

    async def work(session: AsyncSession) -> str:
        user = await get_user_by_username(session, args.username)
        return await create_token(session, user.id, label=args.label, ttl_s=args.ttl_days * 86400)

    token = in_transaction(settings, work)
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

    tokens = in_transaction(settings, work)
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

    info, ended = in_transaction(settings, work)
    if ended:
        print(f"revoked token {info.id} of {info.username}")
    else:
        print(f"token {info.id} of {info.username} was already {info.state}")
    return EXIT_OK

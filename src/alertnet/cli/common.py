"""What every ``alertnet`` subcommand shares: exit codes, one transaction per command, the
database reached (or an error naming it without its password) and passwords typed at a prompt.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeAlias, TypeVar

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncSession

from alertnet.config import Settings
from alertnet.db import create_engine, create_session_factory, migrate, unit_of_work
from alertnet.errors import InvalidInput, Unavailable

if TYPE_CHECKING:
    # What ``ArgumentParser.add_subparsers`` returns; subcommand modules add theirs to it.
    Commands: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]

T = TypeVar("T")
Handler = Callable[[argparse.Namespace, Settings], int]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2


def display_url(database_url: str) -> str:
    """The database URL with its password masked, fit for a terminal or a log."""
    try:
        return make_url(database_url).render_as_string(hide_password=True)
    except ArgumentError:
        return database_url.split("@", 1)[-1]


def in_transaction(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
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


def migrate_database(settings: Settings) -> None:
    """Bring the schema up to date; an unreachable server is one ``Unavailable`` line."""
    try:
        migrate(settings.database_url)
    except OSError as exc:
        raise _unreachable(settings, exc) from exc


def _unreachable(settings: Settings, exc: OSError) -> Unavailable:
    return Unavailable(f"cannot reach the database {display_url(settings.database_url)}: {exc}")


def read_password(given: str | None) -> str | None:
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

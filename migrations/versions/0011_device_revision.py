"""device revision for the ingest processes' device cache (DESIGN §13)

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 09:40:00.000000

``devices.revision`` counts the changes to what ingest knows about a device (its key, status,
mahalla, place, DC-09 account and key, camera, silence) and to its mahalla's risk. Triggers bump
it, so every writer — the admin API, the CLI, another process, a hand-typed UPDATE — tells the
ingest caches (``alertnet.ingest.device_cache``) without any code discipline. The columns ingest
itself writes on every uplink (replay window, last seen, battery, last format, transport and
gateway) leave it alone.

On PostgreSQL ``devices`` also gets ``fillfactor = 80``: ingest rewrites every device row it
hears from in each batch, and room left on the page lets PostgreSQL make those updates HOT (no
new entry in any of the table's six indexes). Measured on the pipeline bench: 31 % of the
updates were HOT at the default 100, 86 % at 80. Pages already full get the room as they are
rewritten (``VACUUM FULL`` or ``pg_repack`` to have it at once).

A later migration that rebuilds ``devices`` on SQLite (alembic's batch mode copies the table)
drops these triggers with the old table and must create them again (``create_triggers``).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The device columns the ingest cache holds (a change to any of them bumps the revision).
WATCHED_COLUMNS = (
    "eui",
    "kind",
    "key",
    "status",
    "mahalla_id",
    "lat",
    "lon",
    "dc09_account",
    "dc09_key",
    "silent",
    "camera_name",
    "camera_labels",
    "camera_zones",
    "camera_hours",
)
DEVICE_TRIGGER = "devices_bump_revision"
MAHALLA_TRIGGER = "mahallas_bump_device_revision"


def _changed(separator: str, differ: str) -> str:
    return separator.join(f"OLD.{c} {differ} NEW.{c}" for c in WATCHED_COLUMNS)


def create_triggers() -> None:
    """The two triggers of this revision, in the database's own dialect."""
    columns = ", ".join(WATCHED_COLUMNS)
    if op.get_bind().dialect.name == "postgresql":
        # BEFORE … OF: the trigger is not even called by an UPDATE that sets none of the
        # watched columns (ingest's window writes); WHEN skips a no-op set of one.
        op.execute(
            f"""
            CREATE FUNCTION {DEVICE_TRIGGER}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                NEW.revision := OLD.revision + 1;
                RETURN NEW;
            END $$
            """
        )
        op.execute(
            f"CREATE TRIGGER {DEVICE_TRIGGER} BEFORE UPDATE OF {columns} ON devices "
            f"FOR EACH ROW WHEN ({_changed(' OR ', 'IS DISTINCT FROM')}) "
            f"EXECUTE FUNCTION {DEVICE_TRIGGER}()"
        )
        op.execute(
            f"""
            CREATE FUNCTION {MAHALLA_TRIGGER}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                UPDATE devices SET revision = revision + 1 WHERE mahalla_id = NEW.id;
                RETURN NULL;
            END $$
            """
        )
        op.execute(
            f"CREATE TRIGGER {MAHALLA_TRIGGER} AFTER UPDATE OF risk ON mahallas "
            "FOR EACH ROW WHEN (OLD.risk IS DISTINCT FROM NEW.risk) "
            f"EXECUTE FUNCTION {MAHALLA_TRIGGER}()"
        )
        return
    # SQLite cannot change NEW: an AFTER trigger updates the row again (only ``revision``,
    # which is not watched, so it does not fire itself).
    op.execute(
        f"CREATE TRIGGER {DEVICE_TRIGGER} AFTER UPDATE OF {columns} ON devices "
        f"FOR EACH ROW WHEN {_changed(' OR ', 'IS NOT')} "
        "BEGIN UPDATE devices SET revision = OLD.revision + 1 WHERE id = NEW.id; END"
    )
    op.execute(
        f"CREATE TRIGGER {MAHALLA_TRIGGER} AFTER UPDATE OF risk ON mahallas "
        "FOR EACH ROW WHEN OLD.risk IS NOT NEW.risk "
        "BEGIN UPDATE devices SET revision = revision + 1 WHERE mahalla_id = NEW.id; END"
    )


def drop_triggers() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER IF EXISTS {MAHALLA_TRIGGER} ON mahallas")
        op.execute(f"DROP TRIGGER IF EXISTS {DEVICE_TRIGGER} ON devices")
        op.execute(f"DROP FUNCTION IF EXISTS {MAHALLA_TRIGGER}()")
        op.execute(f"DROP FUNCTION IF EXISTS {DEVICE_TRIGGER}()")
        return
    op.execute(f"DROP TRIGGER IF EXISTS {MAHALLA_TRIGGER}")
    op.execute(f"DROP TRIGGER IF EXISTS {DEVICE_TRIGGER}")


def upgrade() -> None:
    op.add_column(
        "devices",
        sa.Column("revision", sa.Integer(), nullable=False, server_default=sa.text("0")),
    )
    create_triggers()
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE devices SET (fillfactor = 80)")


def downgrade() -> None:
    drop_triggers()
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE devices RESET (fillfactor)")
        op.drop_column("devices", "revision")
    else:  # SQLite 3.35+ drops a plain column in place (a batch copy would trip foreign keys)
        op.execute("ALTER TABLE devices DROP COLUMN revision")

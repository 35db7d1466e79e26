"""events keyed by (device, dedup_key); DC-09 panel accounts (DESIGN §2.3, §9.1)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 06:20:00.000000

Events move from ``(device_id, counter)`` to ``(device_id, dedup_key)`` for every source:
existing rows (all v1 frames) get ``c:<counter>``, ``counter`` becomes nullable (an alarm
panel's message has none) and ``details`` (JSON) keeps what a source says beyond the code
(a DC-09 panel's zone, partition, raw code, clock skew). Devices get their DC-09 account
(unique) and optional AES key (16, 24 or 32 bytes). ``device_test_months`` marks each month in
which a device reported a test (§12: a test in every calendar month).

The downgrade deletes the events that have no counter (and their receptions): the old schema
cannot hold them.

SQLite can change a column or drop a table constraint only by copying the table, and it refuses
to drop the old ``events`` (or ``devices``) while rows of other tables point at it with foreign
keys on; so on SQLite foreign keys are off while the tables are copied (outside the
transaction, the only place SQLite lets that change), and every reference is checked before
they are on again.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import alertnet.models.base

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _sqlite_foreign_keys(enabled: bool) -> None:
    """Switch SQLite's foreign-key enforcement; checks every reference before it is back on."""
    if op.get_bind().dialect.name != "sqlite":
        return
    if enabled:
        broken = op.get_bind().execute(sa.text("PRAGMA foreign_key_check")).first()
        if broken is not None:
            raise RuntimeError(f"a foreign key is broken after copying tables: {tuple(broken)}")
    with op.get_context().autocommit_block():
        op.execute(f"PRAGMA foreign_keys={'ON' if enabled else 'OFF'}")


def upgrade() -> None:
    _sqlite_foreign_keys(False)
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("dedup_key", sa.String(length=96), nullable=True))
        batch_op.add_column(sa.Column("details", sa.JSON(), nullable=True))
    op.execute("UPDATE events SET dedup_key = 'c:' || CAST(counter AS VARCHAR(20))")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.alter_column("dedup_key", existing_type=sa.String(length=96), nullable=False)
        batch_op.alter_column("counter", existing_type=sa.BigInteger(), nullable=True)
        batch_op.drop_constraint("uq_events_device_counter", type_="unique")
        batch_op.create_unique_constraint("uq_events_device_dedup_key", ["device_id", "dedup_key"])

    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("dc09_account", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("dc09_key", sa.LargeBinary(length=32), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_devices_dc09_account"), ["dc09_account"])
        batch_op.create_check_constraint(
            op.f("ck_devices_dc09_key_length"), "length(dc09_key) IN (16, 24, 32)"
        )
    # A trouble alert lists its kinds (``mains_lost,low_battery,unknown_code``): 24 is too short.
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.alter_column(
            "trouble", existing_type=sa.String(length=24), type_=sa.String(length=200)
        )
    _sqlite_foreign_keys(True)

    op.create_table(
        "device_test_months",
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("first_at", alertnet.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name=op.f("fk_device_test_months_device_id_devices"),
        ),
        sa.PrimaryKeyConstraint("device_id", "month", name=op.f("pk_device_test_months")),
    )


def downgrade() -> None:
    op.drop_table("device_test_months")
    _sqlite_foreign_keys(False)
    op.execute("UPDATE alerts SET trouble = substr(trouble, 1, 24) WHERE length(trouble) > 24")
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.alter_column(
            "trouble", existing_type=sa.String(length=200), type_=sa.String(length=24)
        )
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_devices_dc09_key_length"), type_="check")
        batch_op.drop_constraint(batch_op.f("uq_devices_dc09_account"), type_="unique")
        batch_op.drop_column("dc09_key")
        batch_op.drop_column("dc09_account")

    op.execute(
        "DELETE FROM receptions WHERE event_id IN (SELECT id FROM events WHERE counter IS NULL)"
    )
    op.execute("DELETE FROM events WHERE counter IS NULL")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_constraint("uq_events_device_dedup_key", type_="unique")
        batch_op.create_unique_constraint("uq_events_device_counter", ["device_id", "counter"])
        batch_op.alter_column("counter", existing_type=sa.BigInteger(), nullable=False)
        batch_op.drop_column("details")
        batch_op.drop_column("dedup_key")
    _sqlite_foreign_keys(True)

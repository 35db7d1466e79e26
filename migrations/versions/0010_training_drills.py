"""training drills started by a dispatcher (DESIGN §12)

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 06:20:00.000000

``drills`` (mahalla, who started it and when, how many devices, spread, state) and
``drill_events``, its schedule: one row per device with its due time, what became of it
(pending, created, skipped with a note) and the event it created. Alerts point at the drill
that opened them (``alerts.drill_id``).

The partial unique index of open alerts gains ``drill`` (DESIGN §2.3, §3: a drill alert and a
real alert of the same device and category are separate). The index keeps the predicate it has
(read back from the database, so whatever the open states are when this runs); only its
columns change. The downgrade first cancels the open drill alerts that share a device and
category with an open real alert (the old index could not hold both), then restores the
two-column index.
"""

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import alertnet.models.base

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN_ALERT_INDEX = "uq_alerts_open_device_category"


def _open_alert_predicate() -> str:
    """The WHERE clause of the open-alert index, as the database holds it now."""
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        predicate = bind.execute(
            sa.text(
                "SELECT pg_get_expr(i.indpred, i.indrelid) FROM pg_index i "
                "JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = :name"
            ),
            {"name": OPEN_ALERT_INDEX},
        ).scalar_one()
        return str(predicate)
    sql = bind.execute(
        sa.text("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = :name"),
        {"name": OPEN_ALERT_INDEX},
    ).scalar_one()
    match = re.search(r"\bWHERE\b(.*)$", str(sql), re.IGNORECASE | re.DOTALL)
    if match is None:
        raise RuntimeError(f"{OPEN_ALERT_INDEX} has no WHERE clause: {sql}")
    return match.group(1).strip()


def _sqlite_foreign_keys(enabled: bool) -> None:
    """Switch SQLite's foreign-key enforcement (as 0008 does): ``alerts`` is copied to add its
    foreign key, and SQLite will not drop the old table while other rows point at it."""
    if op.get_bind().dialect.name != "sqlite":
        return
    if enabled:
        broken = op.get_bind().execute(sa.text("PRAGMA foreign_key_check")).first()
        if broken is not None:
            raise RuntimeError(f"a foreign key is broken after copying tables: {tuple(broken)}")
    with op.get_context().autocommit_block():
        op.execute(f"PRAGMA foreign_keys={'ON' if enabled else 'OFF'}")


def _create_open_alert_index(columns: list[str], predicate: str) -> None:
    op.create_index(
        OPEN_ALERT_INDEX,
        "alerts",
        columns,
        unique=True,
        postgresql_where=sa.text(predicate),
        sqlite_where=sa.text(predicate),
    )


def upgrade() -> None:
    op.create_table(
        "drills",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mahalla_id", sa.Integer(), nullable=False),
        sa.Column("started_by", sa.String(length=120), nullable=False),
        sa.Column("started_at", alertnet.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("device_count", sa.Integer(), nullable=False),
        sa.Column("spread_s", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("ended_at", alertnet.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint("device_count > 0", name=op.f("ck_drills_device_count")),
        sa.CheckConstraint("spread_s >= 0", name=op.f("ck_drills_spread_s")),
        sa.CheckConstraint(
            "state IN ('running', 'complete', 'stopped')", name=op.f("ck_drills_state")
        ),
        sa.ForeignKeyConstraint(
            ["mahalla_id"], ["mahallas.id"], name=op.f("fk_drills_mahalla_id_mahallas")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_drills")),
    )
    with op.batch_alter_table("drills", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_drills_mahalla_id"), ["mahalla_id"], unique=False)
        batch_op.create_index("ix_drills_started_at", ["started_at"], unique=False)

    op.create_table(
        "drill_events",
        sa.Column("drill_id", sa.Integer(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("due_at", alertnet.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("event_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("done_at", alertnet.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("note", sa.String(length=200), server_default="", nullable=False),
        sa.CheckConstraint("n > 0", name=op.f("ck_drill_events_n")),
        sa.CheckConstraint(
            "state IN ('pending', 'created', 'skipped')", name=op.f("ck_drill_events_state")
        ),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name=op.f("fk_drill_events_device_id_devices")
        ),
        sa.ForeignKeyConstraint(
            ["drill_id"], ["drills.id"], name=op.f("fk_drill_events_drill_id_drills")
        ),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_drill_events_event_id_events")
        ),
        sa.PrimaryKeyConstraint("drill_id", "n", name=op.f("pk_drill_events")),
    )
    with op.batch_alter_table("drill_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_drill_events_device_id"), ["device_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_drill_events_event_id"), ["event_id"], unique=False)
        batch_op.create_index("ix_drill_events_state_due_at", ["state", "due_at"], unique=False)

    predicate = _open_alert_predicate()
    op.drop_index(OPEN_ALERT_INDEX, table_name="alerts")
    _sqlite_foreign_keys(False)
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("drill_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_alerts_drill_id"), ["drill_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_alerts_drill_id_drills"), "drills", ["drill_id"], ["id"]
        )
    _sqlite_foreign_keys(True)
    _create_open_alert_index(["device_id", "category", "drill"], predicate)


def downgrade() -> None:
    drill = sa.table(
        "alerts",
        sa.column("id", sa.Integer()),
        sa.column("device_id", sa.Integer()),
        sa.column("category", sa.String()),
        sa.column("drill", sa.Boolean()),
        sa.column("state", sa.String()),
        sa.column("closed_at", alertnet.models.base.UTCDateTime(timezone=True)),
        sa.column("last_event_at", alertnet.models.base.UTCDateTime(timezone=True)),
    )
    real = drill.alias("real")
    open_states = ("new", "offered", "accepted", "on_scene", "escalated", "verify")
    op.execute(
        drill.update()
        .where(
            drill.c.drill.is_(True),
            drill.c.state.in_(open_states),
            sa.exists().where(
                real.c.device_id == drill.c.device_id,
                real.c.category == drill.c.category,
                real.c.drill.is_(False),
                real.c.state.in_(open_states),
            ),
        )
        .values(state="cancelled", closed_at=drill.c.last_event_at)
    )
    predicate = _open_alert_predicate()
    op.drop_index(OPEN_ALERT_INDEX, table_name="alerts")
    _sqlite_foreign_keys(False)
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_alerts_drill_id_drills"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_alerts_drill_id"))
        batch_op.drop_column("drill_id")
    _sqlite_foreign_keys(True)
    _create_open_alert_index(["device_id", "category"], predicate)

    with op.batch_alter_table("drill_events", schema=None) as batch_op:
        batch_op.drop_index("ix_drill_events_state_due_at")
        batch_op.drop_index(batch_op.f("ix_drill_events_event_id"))
        batch_op.drop_index(batch_op.f("ix_drill_events_device_id"))
    op.drop_table("drill_events")

    with op.batch_alter_table("drills", schema=None) as batch_op:
        batch_op.drop_index("ix_drills_started_at")
        batch_op.drop_index(batch_op.f("ix_drills_mahalla_id"))
    op.drop_table("drills")

"""camera devices and the verify state (DESIGN §9.3)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 06:20:00.000000

A device can be a Frigate camera: ``camera_name`` (its Frigate name, unique), the labels and
zones it watches (comma-separated text, empty: the defaults) and its hours (``HH-HH``). An
alert may be in ``verify`` (a camera alert a dispatcher must confirm first): the state CHECK
allows it and ``verify`` is an open state, so the partial unique index of open alerts is
recreated with the new predicate (``models.alerts.OPEN_ALERT_PREDICATE``). ``verify_due_at``
is when an unanswered verify alert starts ringing on the console (restart-safe: §6.4).

The downgrade cancels alerts still in ``verify`` (the old schema cannot hold them).

SQLite changes a CHECK constraint only by copying the table, and refuses to drop the old
``alerts`` while other tables point at it with foreign keys on: they are off while it is copied
(outside the transaction) and every reference is checked before they are on again.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import alertnet.models.base

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD_STATES = "'new', 'offered', 'accepted', 'on_scene', 'escalated'"
_NEW_STATES = "'verify', " + _OLD_STATES
_ENDED = "'closed', 'cancelled'"


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


def _alert_states(open_states: str) -> None:
    """The alerts' state CHECK and open-alert index for this list of open states."""
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index("uq_alerts_open_device_category")
        batch_op.drop_constraint(op.f("ck_alerts_state"), type_="check")
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.create_check_constraint(
            op.f("ck_alerts_state"), f"state IN ({open_states}, {_ENDED})"
        )
        batch_op.create_index(
            "uq_alerts_open_device_category",
            ["device_id", "category"],
            unique=True,
            postgresql_where=sa.text(f"state IN ({open_states})"),
            sqlite_where=sa.text(f"state IN ({open_states})"),
        )


def upgrade() -> None:
    _sqlite_foreign_keys(False)
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("camera_name", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("camera_labels", sa.String(length=200), server_default="", nullable=False)
        )
        batch_op.add_column(
            sa.Column("camera_zones", sa.String(length=500), server_default="", nullable=False)
        )
        batch_op.add_column(sa.Column("camera_hours", sa.String(length=5), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_devices_camera_name"), ["camera_name"])
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "verify_due_at", alertnet.models.base.UTCDateTime(timezone=True), nullable=True
            )
        )
    _alert_states(_NEW_STATES)
    _sqlite_foreign_keys(True)


def downgrade() -> None:
    op.execute(
        "UPDATE alerts SET state = 'cancelled', outcome = 'false_alarm' WHERE state = 'verify'"
    )
    _sqlite_foreign_keys(False)
    _alert_states(_OLD_STATES)
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_column("verify_due_at")
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_devices_camera_name"), type_="unique")
        batch_op.drop_column("camera_hours")
        batch_op.drop_column("camera_zones")
        batch_op.drop_column("camera_labels")
        batch_op.drop_column("camera_name")
    _sqlite_foreign_keys(True)

"""shared notes, acknowledgement and action plans on alerts (DESIGN §10)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 06:20:00.000000

The dispatchers' shared work on an alert (``alertnet.models.workflow``): ``alert_notes`` (a
note per row, append-only), ``alert_acknowledgements`` (each acknowledgement; the alert keeps
the latest in ``acknowledged_by`` / ``acknowledged_at``), ``alert_step_ticks`` (action-plan
steps done, with the step's wording at the time) and ``action_plans`` (an admin's checklist
for a category; a category without a row uses the default shipped in ``alertnet.alerts.plans``,
so no data is seeded here). Existing alerts start unacknowledged.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from alertnet.models.base import UTCDateTime

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# alembic_check compares types: the ids are BIGINT on PostgreSQL, INTEGER (rowid) on SQLite.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("acknowledged_by", sa.String(length=120), nullable=True))
        batch_op.add_column(sa.Column("acknowledged_at", UTCDateTime(timezone=True), nullable=True))

    op.create_table(
        "alert_notes",
        sa.Column("id", BigId, nullable=False),
        sa.Column("alert_id", BigId, nullable=False),
        sa.Column("at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("author", sa.String(length=120), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alerts.id"], name=op.f("fk_alert_notes_alert_id_alerts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_notes")),
    )
    op.create_index(op.f("ix_alert_notes_alert_id"), "alert_notes", ["alert_id"], unique=False)

    op.create_table(
        "alert_acknowledgements",
        sa.Column("id", BigId, nullable=False),
        sa.Column("alert_id", BigId, nullable=False),
        sa.Column("at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=120), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alerts.id"], name=op.f("fk_alert_acknowledgements_alert_id_alerts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_acknowledgements")),
    )
    op.create_index(
        op.f("ix_alert_acknowledgements_alert_id"),
        "alert_acknowledgements",
        ["alert_id"],
        unique=False,
    )

    op.create_table(
        "alert_step_ticks",
        sa.Column("id", BigId, nullable=False),
        sa.Column("alert_id", BigId, nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("step", sa.JSON(), nullable=False),
        sa.Column("at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=120), nullable=False),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alerts.id"], name=op.f("fk_alert_step_ticks_alert_id_alerts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_step_ticks")),
    )
    op.create_index(
        "ix_alert_step_ticks_alert_id_n", "alert_step_ticks", ["alert_id", "n"], unique=False
    )

    op.create_table(
        "action_plans",
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=120), nullable=False),
        sa.PrimaryKeyConstraint("category", name=op.f("pk_action_plans")),
    )


def downgrade() -> None:
    op.drop_table("action_plans")
    op.drop_index("ix_alert_step_ticks_alert_id_n", table_name="alert_step_ticks")
    op.drop_table("alert_step_ticks")
    op.drop_index(op.f("ix_alert_acknowledgements_alert_id"), table_name="alert_acknowledgements")
    op.drop_table("alert_acknowledgements")
    op.drop_index(op.f("ix_alert_notes_alert_id"), table_name="alert_notes")
    op.drop_table("alert_notes")
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_column("acknowledged_at")
        batch_op.drop_column("acknowledged_by")

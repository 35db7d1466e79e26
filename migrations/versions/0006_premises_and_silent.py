"""premises (DESIGN §10) and silent alarms (§3) on devices and alerts

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 06:20:00.000000

A device gets its premises next to the ``address`` it already had: ``premises_ref`` (devices
sharing a ref are one site, indexed), ``owner``, ``street``, ``notes`` and the ordered call list
``contacts`` (a JSON array of ``{name, phone, relation}``), and ``silent`` (a hold-up device).
An alert gets ``silent`` and who overrode its call lock, and when (``call_override_by/_at``).
Existing rows get empty premises and are not silent.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import alertnet.models.base

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("silent", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(sa.Column("premises_ref", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("owner", sa.String(length=200), server_default="", nullable=False)
        )
        batch_op.add_column(
            sa.Column("street", sa.String(length=200), server_default="", nullable=False)
        )
        batch_op.add_column(sa.Column("notes", sa.Text(), server_default="", nullable=False))
        batch_op.add_column(
            sa.Column("contacts", sa.JSON(), server_default=sa.text("'[]'"), nullable=False)
        )
        batch_op.create_index(batch_op.f("ix_devices_premises_ref"), ["premises_ref"], unique=False)

    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("silent", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(sa.Column("call_override_by", sa.String(length=120), nullable=True))
        batch_op.add_column(
            sa.Column(
                "call_override_at",
                alertnet.models.base.UTCDateTime(timezone=True),
                nullable=True,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_column("call_override_at")
        batch_op.drop_column("call_override_by")
        batch_op.drop_column("silent")

    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_devices_premises_ref"))
        batch_op.drop_column("contacts")
        batch_op.drop_column("notes")
        batch_op.drop_column("street")
        batch_op.drop_column("owner")
        batch_op.drop_column("premises_ref")
        batch_op.drop_column("silent")

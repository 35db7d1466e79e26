"""request audit table; feed NOTIFY trigger (PostgreSQL), feed AUTOINCREMENT (SQLite)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 10:00:00.000000

``request_audit`` records every state-changing HTTP request (``alertnet.auth.audit``).

On PostgreSQL, a statement-level trigger on ``feed`` sends ``NOTIFY alertnet_feed`` (empty
payload) for every INSERT: every alertnet process LISTENs on that channel and re-reads the
feed when woken (``alertnet.realtime.hub``). NOTIFY is transactional, so the wake-up arrives
after the commit that made the rows visible, and a feed writer cannot forget to send it.
SQLite has no cross-connection notification; each process wakes its own hub instead.

On SQLite, ``feed`` is rebuilt with AUTOINCREMENT: a plain rowid key hands out max(seq)+1,
so once the 24 h retention had emptied a quiet feed, ``seq`` would start again at 1 and every
stream client's ``after`` cursor would skip the new rows. PostgreSQL's sequence never goes back.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import alertnet.models.base


revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Must match alertnet.realtime.hub.FEED_CHANNEL.
FEED_CHANNEL = "alertnet_feed"


def upgrade() -> None:
    op.create_table(
        "request_audit",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", alertnet.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("username", sa.String(length=80), nullable=True),
        sa.Column("role", sa.String(length=16), nullable=True),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("path", sa.String(length=400), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("client_addr", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_request_audit_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_request_audit")),
    )
    with op.batch_alter_table("request_audit", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_request_audit_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_request_audit_user_id"), ["user_id"], unique=False)

    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        with op.batch_alter_table(
            "feed", recreate="always", table_kwargs={"sqlite_autoincrement": True}
        ):
            pass
    if dialect == "postgresql":
        op.execute(
            f"""
            CREATE FUNCTION alertnet_feed_notify() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                PERFORM pg_notify('{FEED_CHANNEL}', '');
                RETURN NULL;
            END
            $$
            """
        )
        op.execute(
            "CREATE TRIGGER feed_notify AFTER INSERT ON feed "
            "FOR EACH STATEMENT EXECUTE FUNCTION alertnet_feed_notify()"
        )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS feed_notify ON feed")
        op.execute("DROP FUNCTION IF EXISTS alertnet_feed_notify()")
    if dialect == "sqlite":
        with op.batch_alter_table(
            "feed", recreate="always", table_kwargs={"sqlite_autoincrement": False}
        ):
            pass

    with op.batch_alter_table("request_audit", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_request_audit_user_id"))
        batch_op.drop_index(batch_op.f("ix_request_audit_at"))

    op.drop_table("request_audit")

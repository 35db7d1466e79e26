"""accounts hardening: every token expires and can be revoked; demo rows are marked

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06 10:00:00.000000

``api_tokens.expires_at`` becomes NOT NULL: a token made before this revision without an
expiry gets one 90 days after its creation (``alertnet.auth.tokens.DEFAULT_TOKEN_TTL``), so
a token that is already older than that stops working at once. ``api_tokens.revoked_at`` is
set by ``alertnet token revoke``, by disabling the user and by a password change.

``demo`` on users, devices, posts and mahallas marks what ``alertnet serve --demo`` created
(``alertnet.demo``): a server started without ``--demo`` refuses those logins and keys.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import alertnet.models.base

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DEMO_TABLES = ("users", "devices", "posts", "mahallas")


def upgrade() -> None:
    for table in DEMO_TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column("demo", sa.Boolean(), server_default=sa.false(), nullable=False)
            )

    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "UPDATE api_tokens SET expires_at = strftime('%Y-%m-%d %H:%M:%f', created_at, "
            "'+90 days') WHERE expires_at IS NULL"
        )
    else:
        op.execute(
            "UPDATE api_tokens SET expires_at = created_at + interval '90 days' "
            "WHERE expires_at IS NULL"
        )
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("revoked_at", alertnet.models.base.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.alter_column(
            "expires_at",
            existing_type=alertnet.models.base.UTCDateTime(timezone=True),
            nullable=False,
        )


def downgrade() -> None:
    # Without revoked_at, a revoked token would work again: end it at its revocation instead.
    op.execute(
        "UPDATE api_tokens SET expires_at = revoked_at "
        "WHERE revoked_at IS NOT NULL AND revoked_at < expires_at"
    )
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.alter_column(
            "expires_at",
            existing_type=alertnet.models.base.UTCDateTime(timezone=True),
            nullable=True,
        )
        batch_op.drop_column("revoked_at")

    for table in reversed(DEMO_TABLES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("demo")

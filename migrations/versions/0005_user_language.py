"""users.language: the language each user chose for the pages

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-08 10:00:00.000000

DESIGN §11: a user's language is stored on the user (``PATCH /api/v1/users/me``). Existing
users have chosen none (NULL): their pages follow the browser's Accept-Language, then
ALERTNET_DEFAULT_LANGUAGE, until they pick one.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("language", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("language")

"""quarantine keeps 1 KiB of raw bytes with the input's length and SHA-256; retention index

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 10:00:00.000000

DESIGN §14: no input can stop ingest, and quarantine keeps at most 1 KiB of raw bytes per row
(a 16 MiB MQTT payload used to be stored whole). ``raw_length`` and ``raw_sha256`` describe the
whole input, so a cut row still identifies what was sent. Existing rows are described from the
bytes they hold, then cut to 1 KiB. ``ix_quarantine_received_at`` serves the 30-day retention
(``alertnet.retention``), which the runtime's task supervisor (``alertnet.supervisor``) runs.
"""

import hashlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Must match alertnet.ingest.outcomes.QUARANTINE_RAW_BYTES.
RAW_BYTES = 1024


def upgrade() -> None:
    with op.batch_alter_table("quarantine", schema=None) as batch_op:
        batch_op.add_column(sa.Column("raw_length", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("raw_sha256", sa.String(length=64), nullable=True))

    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute(
            "UPDATE quarantine SET raw_length = length(raw), "
            "raw_sha256 = encode(sha256(raw), 'hex'), "
            f"raw = substring(raw from 1 for {RAW_BYTES})"
        )
    else:  # SQLite has no SHA-256 function: hash in chunks of rows
        after = 0
        while True:
            rows = bind.execute(
                sa.text("SELECT id, raw FROM quarantine WHERE id > :after ORDER BY id LIMIT 500"),
                {"after": after},
            ).all()
            if not rows:
                break
            bind.execute(
                sa.text(
                    "UPDATE quarantine SET raw_length = :length, raw_sha256 = :sha256, "
                    "raw = :kept WHERE id = :id"
                ),
                [
                    {
                        "id": row.id,
                        "length": len(row.raw),
                        "sha256": hashlib.sha256(row.raw).hexdigest(),
                        "kept": bytes(row.raw[:RAW_BYTES]),
                    }
                    for row in rows
                ],
            )
            after = rows[-1].id

    with op.batch_alter_table("quarantine", schema=None) as batch_op:
        batch_op.alter_column("raw_length", existing_type=sa.BigInteger(), nullable=False)
        batch_op.alter_column("raw_sha256", existing_type=sa.String(length=64), nullable=False)
        batch_op.create_index("ix_quarantine_received_at", ["received_at"], unique=False)


def downgrade() -> None:
    # The bytes cut away by the upgrade are gone; the rows keep the first KiB.
    with op.batch_alter_table("quarantine", schema=None) as batch_op:
        batch_op.drop_index("ix_quarantine_received_at")
        batch_op.drop_column("raw_sha256")
        batch_op.drop_column("raw_length")

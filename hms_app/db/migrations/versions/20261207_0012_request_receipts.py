"""request receipts: a write request is done once, however often its form is submitted

One table for every write that a double click or a retry may repeat (booking, dispensing,
recording a payment or a refund, ordering a test, prescribing): the key the server issued when
the form opened, who sent it, the action, what it made or changed, and its short answer.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import hms_app.db.types

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('request_receipt',
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=False),
    sa.Column('action', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('object_id', sa.Integer(), nullable=True),
    sa.Column('result', sa.Text(), nullable=False),
    sa.Column('created_at', hms_app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['user.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('key')
    )
    with op.batch_alter_table('request_receipt', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_request_receipt_actor_id'), ['actor_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('request_receipt', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_request_receipt_actor_id'))
    op.drop_table('request_receipt')

"""lab results: result values with computed flags, report files, order progress times

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 08:12:01.859702
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import hms_app.db.types

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('lab_report_file',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('storage_name', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('file_name', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.Column('content_type', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('size_bytes', sa.Integer(), nullable=False),
    sa.Column('uploaded_by', sa.Integer(), nullable=False),
    sa.Column('uploaded_at', hms_app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['lab_order.id'], ),
    sa.ForeignKeyConstraint(['uploaded_by'], ['user.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('order_id'),
    sa.UniqueConstraint('storage_name')
    )
    # value_text and comment are encrypted (hms_app.db.crypto.EncryptedText): Text in the database.
    op.create_table('lab_result',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('value_numeric', sa.Float(), nullable=True),
    sa.Column('value_text', sa.Text(), nullable=False),
    sa.Column('unit', sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
    sa.Column('flag', sqlmodel.sql.sqltypes.AutoString(length=15), nullable=False),
    sa.Column('range_low', sa.Float(), nullable=True),
    sa.Column('range_high', sa.Float(), nullable=True),
    sa.Column('comment', sa.Text(), nullable=False),
    sa.Column('verified_by', sa.Integer(), nullable=False),
    sa.Column('resulted_at', hms_app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('turnaround_seconds', sa.Integer(), nullable=False),
    sa.Column('critical_acknowledged_at', hms_app.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('critical_acknowledged_by', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['critical_acknowledged_by'], ['user.id'], ),
    sa.ForeignKeyConstraint(['order_id'], ['lab_order.id'], ),
    sa.ForeignKeyConstraint(['verified_by'], ['user.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('order_id')
    )
    with op.batch_alter_table('lab_result', schema=None) as batch_op:
        batch_op.create_index('ix_lab_result_resulted_at', ['resulted_at'], unique=False)

    with op.batch_alter_table('lab_order', schema=None) as batch_op:
        batch_op.add_column(sa.Column('collected_at', hms_app.db.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('started_at', hms_app.db.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('cancelled_at', hms_app.db.types.UTCDateTime(timezone=True), nullable=True))
        # Existing orders get an empty reason; the model supplies "" for new rows.
        batch_op.add_column(sa.Column('cancel_reason', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False,
                                      server_default=''))
        batch_op.create_index('ix_lab_order_doctor_ordered', ['doctor_id', 'ordered_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('lab_order', schema=None) as batch_op:
        batch_op.drop_index('ix_lab_order_doctor_ordered')
        batch_op.drop_column('cancel_reason')
        batch_op.drop_column('cancelled_at')
        batch_op.drop_column('started_at')
        batch_op.drop_column('collected_at')

    with op.batch_alter_table('lab_result', schema=None) as batch_op:
        batch_op.drop_index('ix_lab_result_resulted_at')

    op.drop_table('lab_result')
    op.drop_table('lab_report_file')

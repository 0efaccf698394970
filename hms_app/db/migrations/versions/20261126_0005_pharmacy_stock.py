"""pharmacy stock: batches, dispensations, the stock ledger

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 09:57:48.695863
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import hms_app.db.types

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('stock_batch',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('medicine_id', sa.Integer(), nullable=False),
    sa.Column('lot', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('expiry_date', sa.Date(), nullable=False),
    sa.Column('quantity_on_hand', sa.Integer(), nullable=False),
    sa.Column('unit_cost_cents', sa.Integer(), nullable=False),
    sa.Column('supplier', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.Column('received_at', hms_app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('quantity_on_hand >= 0', name='ck_stock_batch_on_hand_not_negative'),
    sa.ForeignKeyConstraint(['medicine_id'], ['medicine.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('medicine_id', 'lot', name='uq_stock_batch_medicine_lot')
    )
    with op.batch_alter_table('stock_batch', schema=None) as batch_op:
        batch_op.create_index('ix_stock_batch_medicine_expiry', ['medicine_id', 'expiry_date'], unique=False)

    op.create_table('dispensation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('prescription_id', sa.Integer(), nullable=False),
    sa.Column('prescription_item_id', sa.Integer(), nullable=False),
    sa.Column('batch_id', sa.Integer(), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('unit_price_cents', sa.Integer(), nullable=False),
    sa.Column('dispensed_by', sa.Integer(), nullable=False),
    sa.Column('dispensed_at', hms_app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['batch_id'], ['stock_batch.id'], ),
    sa.ForeignKeyConstraint(['dispensed_by'], ['user.id'], ),
    sa.ForeignKeyConstraint(['prescription_id'], ['prescription.id'], ),
    sa.ForeignKeyConstraint(['prescription_item_id'], ['prescription_item.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('dispensation', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dispensation_batch_id'), ['batch_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_dispensation_prescription_id'), ['prescription_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_dispensation_prescription_item_id'), ['prescription_item_id'], unique=False)

    op.create_table('stock_movement',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('batch_id', sa.Integer(), nullable=False),
    sa.Column('medicine_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('note', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('dispensation_id', sa.Integer(), nullable=True),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('created_at', hms_app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['user.id'], ),
    sa.ForeignKeyConstraint(['batch_id'], ['stock_batch.id'], ),
    sa.ForeignKeyConstraint(['dispensation_id'], ['dispensation.id'], ),
    sa.ForeignKeyConstraint(['medicine_id'], ['medicine.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('stock_movement', schema=None) as batch_op:
        batch_op.create_index('ix_stock_movement_batch', ['batch_id', 'id'], unique=False)
        batch_op.create_index('ix_stock_movement_medicine_at', ['medicine_id', 'created_at'], unique=False)

    # Plain ADD COLUMN, never a batch copy of ``prescription``: on SQLite the copy drops the old
    # table, and with foreign keys on that drop cascades to every prescription item.
    if op.get_bind().dialect.name == "sqlite":
        op.execute('ALTER TABLE prescription ADD COLUMN checked_by INTEGER REFERENCES "user" (id)')
    else:
        op.add_column('prescription', sa.Column('checked_by', sa.Integer(), nullable=True))
        op.create_foreign_key('fk_prescription_checked_by_user', 'prescription', 'user', ['checked_by'], ['id'])
    op.add_column('prescription', sa.Column('checked_at', hms_app.db.types.UTCDateTime(timezone=True), nullable=True))



def downgrade() -> None:
    op.drop_column('prescription', 'checked_at')
    if op.get_bind().dialect.name == "sqlite":
        op.drop_column('prescription', 'checked_by')  # SQLite 3.35+ drops a column in place
    else:
        op.drop_constraint('fk_prescription_checked_by_user', 'prescription', type_='foreignkey')
        op.drop_column('prescription', 'checked_by')

    with op.batch_alter_table('stock_movement', schema=None) as batch_op:
        batch_op.drop_index('ix_stock_movement_medicine_at')
        batch_op.drop_index('ix_stock_movement_batch')

    op.drop_table('stock_movement')
    with op.batch_alter_table('dispensation', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dispensation_prescription_item_id'))
        batch_op.drop_index(batch_op.f('ix_dispensation_prescription_id'))
        batch_op.drop_index(batch_op.f('ix_dispensation_batch_id'))

    op.drop_table('dispensation')
    with op.batch_alter_table('stock_batch', schema=None) as batch_op:
        batch_op.drop_index('ix_stock_batch_medicine_expiry')

    op.drop_table('stock_batch')

"""go-live: the hospital's own settings, import jobs and their reports, records from other systems

``hospital`` holds what ``hms init`` asked for (name, time zone, locale, currency), at most one
row. ``import_job`` and ``import_line`` are an import's progress and its line-by-line report.
``source_record`` maps another system's ids to ours, so importing the same file or bundle
again updates or leaves alone instead of duplicating.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 19:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import hms_app.db.types

revision: str = '0017'
down_revision: str | None = '0016'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('hospital',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.Column('timezone', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('locale', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('currency', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
    sa.Column('initialised_at', hms_app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('id = 1', name='ck_hospital_one_row'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('source_record',
    sa.Column('system', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('source_type', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('source_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('entity_type', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('entity_id', sa.Integer(), nullable=False),
    sa.Column('content_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=True),
    sa.Column('imported_at', hms_app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('system', 'source_type', 'source_id')
    )
    with op.batch_alter_table('source_record', schema=None) as batch_op:
        batch_op.create_index('ix_source_record_entity', ['entity_type', 'entity_id'], unique=False)

    op.create_table('import_job',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('file_name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('storage_name', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('dry_run', sa.Boolean(), nullable=False),
    sa.Column('good_rows_only', sa.Boolean(), nullable=False),
    sa.Column('mapping', sa.Text(), nullable=False),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('processed', sa.Integer(), nullable=False),
    sa.Column('created', sa.Integer(), nullable=False),
    sa.Column('updated', sa.Integer(), nullable=False),
    sa.Column('unchanged', sa.Integer(), nullable=False),
    sa.Column('skipped', sa.Integer(), nullable=False),
    sa.Column('failed', sa.Integer(), nullable=False),
    sa.Column('skipped_by_type', sa.Text(), nullable=False),
    sa.Column('committed', sa.Boolean(), nullable=False),
    sa.Column('message', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('cancel_requested', sa.Boolean(), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', hms_app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('started_at', hms_app.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('finished_at', hms_app.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['created_by'], ['user.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('import_job', schema=None) as batch_op:
        batch_op.create_index('ix_import_job_created', ['created_at'], unique=False)

    op.create_table('import_line',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=False),
    sa.Column('line', sa.Integer(), nullable=False),
    sa.Column('outcome', sa.String(length=10), nullable=False),
    sa.Column('record', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('message', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['import_job.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('import_line', schema=None) as batch_op:
        batch_op.create_index('ix_import_line_job_line', ['job_id', 'line'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('import_line', schema=None) as batch_op:
        batch_op.drop_index('ix_import_line_job_line')

    op.drop_table('import_line')
    with op.batch_alter_table('import_job', schema=None) as batch_op:
        batch_op.drop_index('ix_import_job_created')

    op.drop_table('import_job')
    with op.batch_alter_table('source_record', schema=None) as batch_op:
        batch_op.drop_index('ix_source_record_entity')

    op.drop_table('source_record')
    op.drop_table('hospital')

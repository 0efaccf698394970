"""records imported from FHIR (issue 19): immunizations and procedures

Another system's vaccines given and procedures done, which HMS keeps only as it received
them: each is shown in the chart's timeline and the patient's history and exported by the
FHIR API. Clinical text (the vaccine, the procedure) is encrypted like every other.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 19:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import hms_app.db.types

revision: str = '0019'
down_revision: str | None = '0018'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('immunization',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('encounter_id', sa.Integer(), nullable=True),
    sa.Column('vaccine', sa.Text(), nullable=False),  # encrypted (hms_app.db.crypto.EncryptedText)
    sa.Column('code_system', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('code', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('given_at', hms_app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('recorded_by', sa.Integer(), nullable=False),
    sa.Column('created_at', hms_app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['encounter_id'], ['encounter.id'], ),
    sa.ForeignKeyConstraint(['patient_id'], ['user.id'], ),
    sa.ForeignKeyConstraint(['recorded_by'], ['user.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('immunization', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_immunization_encounter_id'), ['encounter_id'], unique=False)
        batch_op.create_index('ix_immunization_patient_given', ['patient_id', 'given_at'], unique=False)

    op.create_table('procedure',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('encounter_id', sa.Integer(), nullable=True),
    sa.Column('description', sa.Text(), nullable=False),  # encrypted
    sa.Column('code_system', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('code', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('performed_at', hms_app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ended_at', hms_app.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('recorded_by', sa.Integer(), nullable=False),
    sa.Column('created_at', hms_app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['encounter_id'], ['encounter.id'], ),
    sa.ForeignKeyConstraint(['patient_id'], ['user.id'], ),
    sa.ForeignKeyConstraint(['recorded_by'], ['user.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('procedure', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_procedure_encounter_id'), ['encounter_id'], unique=False)
        batch_op.create_index('ix_procedure_patient_performed', ['patient_id', 'performed_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('procedure', schema=None) as batch_op:
        batch_op.drop_index('ix_procedure_patient_performed')
        batch_op.drop_index(batch_op.f('ix_procedure_encounter_id'))
    op.drop_table('procedure')
    with op.batch_alter_table('immunization', schema=None) as batch_op:
        batch_op.drop_index('ix_immunization_patient_given')
        batch_op.drop_index(batch_op.f('ix_immunization_encounter_id'))
    op.drop_table('immunization')

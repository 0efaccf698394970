"""lab results released to the patient by rule, or after the ordering doctor's review

Each catalog test gets a release rule (at once; normal at once and the rest after review, the
default; always after review), and each result the time it was released and who reviewed it
with what note to the patient. Results entered before this revision were visible to their
patients already, so they count as released when they were entered.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 09:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import hms_app.db.types

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('lab_test', schema=None) as batch_op:
        batch_op.add_column(sa.Column('release_rule', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False,
                                      server_default='normal_at_once'))
    with op.batch_alter_table('lab_result', schema=None) as batch_op:
        batch_op.add_column(sa.Column('released_at', hms_app.db.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('reviewed_at', hms_app.db.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('reviewed_by', sa.Integer(), nullable=True))
        # Encrypted (hms_app.db.crypto.EncryptedText): Text in the database. NULL until a review,
        # since an empty string is not a valid token to decrypt.
        batch_op.add_column(sa.Column('review_note', sa.Text(), nullable=True))
        batch_op.create_foreign_key('fk_lab_result_reviewed_by_user', 'user', ['reviewed_by'], ['id'])
    op.execute(sa.text("UPDATE lab_result SET released_at = resulted_at"))


def downgrade() -> None:
    with op.batch_alter_table('lab_result', schema=None) as batch_op:
        batch_op.drop_constraint('fk_lab_result_reviewed_by_user', type_='foreignkey')
        batch_op.drop_column('review_note')
        batch_op.drop_column('reviewed_by')
        batch_op.drop_column('reviewed_at')
        batch_op.drop_column('released_at')
    with op.batch_alter_table('lab_test', schema=None) as batch_op:
        batch_op.drop_column('release_rule')

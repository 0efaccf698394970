"""second factor: authenticators, recovery codes, login challenges, per-role requirement

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26 14:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import hms_app.db.types

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Staff who reach every patient's data, or the hospital's money, must enrol by default.
REQUIRED_BY_DEFAULT = {"admin": True, "accounts": True, "doctor": True,
                       "lab": False, "pharmacy": False, "patient": False}


def upgrade() -> None:
    op.create_table('second_factor',
    sa.Column('user_id', sa.Integer(), nullable=False),
    # Encrypted (hms_app.db.crypto.EncryptedText): a Fernet token, Text in the database.
    sa.Column('secret', sa.Text(), nullable=False),
    sa.Column('enrolled_at', hms_app.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_used_step', sa.Integer(), nullable=False),
    sa.Column('created_at', hms_app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id')
    )
    op.create_table('recovery_code',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('code_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('used_at', hms_app.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('code_hash')
    )
    with op.batch_alter_table('recovery_code', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recovery_code_user_id'), ['user_id'], unique=False)

    op.create_table('login_challenge',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_at', hms_app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', hms_app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('used_at', hms_app.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('ip_address', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_hash')
    )
    with op.batch_alter_table('login_challenge', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_login_challenge_user_id'), ['user_id'], unique=False)

    policy = op.create_table('role_login_policy',
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('second_factor_required', sa.Boolean(), nullable=False),
    sa.Column('updated_at', hms_app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('role')
    )
    now = hms_app.db.types.utcnow()
    op.bulk_insert(policy, [{"role": role, "second_factor_required": required, "updated_at": now}
                            for role, required in REQUIRED_BY_DEFAULT.items()])


def downgrade() -> None:
    op.drop_table('role_login_policy')
    with op.batch_alter_table('login_challenge', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_login_challenge_user_id'))
    op.drop_table('login_challenge')
    with op.batch_alter_table('recovery_code', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recovery_code_user_id'))
    op.drop_table('recovery_code')
    op.drop_table('second_factor')

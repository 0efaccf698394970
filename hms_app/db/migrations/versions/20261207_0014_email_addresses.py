"""email addresses: one written form, a look-alike skeleton, confirmation by link

Each account gets its address's confusable skeleton (unique: one account per look-alike group)
and the state of its confirmation link (the token's SHA-256 and expiry; when it was confirmed).
Existing addresses are rewritten in their normal form (NFKC, lower case, no final dot) and
their skeletons filled in; accounts that existed before are counted as confirmed.

An address that cannot be normalised (it holds an invisible character, say), one whose normal
form is another account's address, or one that looks like an older account's is left as it is,
with no skeleton, and reported on the console for the admin to settle: the upgrade goes on.
The normalisation is the application's own (``hms_app/services/core/emails.py``), so stored
skeletons match the ones later registrations are compared against.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import hms_app.db.types
from hms_app.db.types import utcnow
from hms_app.services.core import emails
from hms_app.services.core.errors import ValidationError

revision: str = '0014'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('email_skeleton', sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.add_column(sa.Column('email_confirmed_at', hms_app.db.types.UTCDateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column('email_confirm_token_hash', sqlmodel.sql.sqltypes.AutoString(length=64),
                                      nullable=True))
        batch_op.add_column(sa.Column('email_confirm_expires_at', hms_app.db.types.UTCDateTime(timezone=True),
                                      nullable=True))
    for line in backfill(op.get_bind()):
        print(f"migration 0014: {line}")
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_user_email_skeleton'), ['email_skeleton'], unique=True)
        batch_op.create_index(batch_op.f('ix_user_email_confirm_token_hash'), ['email_confirm_token_hash'],
                              unique=True)


def backfill(connection: sa.Connection) -> list[str]:
    """Normalise every address, fill in the skeletons, confirm every account; the problems found."""
    user = sa.table('user', sa.column('id', sa.Integer), sa.column('email', sa.String),
                    sa.column('email_skeleton', sa.String), sa.column('email_confirmed_at', hms_app.db.types.UTCDateTime(timezone=True)))
    connection.execute(sa.update(user).values(email_confirmed_at=utcnow()))
    rows = connection.execute(sa.select(user.c.id, user.c.email).order_by(user.c.id)).all()
    stored = {email for _id, email in rows}
    skeletons: dict[str, int] = {}
    problems = []
    for user_id, email in rows:
        try:
            normal = emails.normalise(email)
        except ValidationError as error:
            problems.append(f"account {user_id}: its address {email!r} is refused now ({error.message}); "
                            "left as it is, without a skeleton")
            continue
        if normal != email and normal in stored:
            problems.append(f"account {user_id}: its address {email!r} is written as another account's "
                            f"{normal!r}; left as it is, without a skeleton")
            continue
        skeleton = emails.skeleton(normal)
        if skeleton in skeletons:
            problems.append(f"account {user_id}: its address {email!r} looks like account {skeletons[skeleton]}'s; "
                            "left without a skeleton")
            continue
        skeletons[skeleton] = user_id
        if normal != email:
            stored.add(normal)
        connection.execute(sa.update(user).where(user.c.id == user_id).values(email=normal, email_skeleton=skeleton))
    return problems


def downgrade() -> None:
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_user_email_confirm_token_hash'))
        batch_op.drop_index(batch_op.f('ix_user_email_skeleton'))
        batch_op.drop_column('email_confirm_expires_at')
        batch_op.drop_column('email_confirm_token_hash')
        batch_op.drop_column('email_confirmed_at')
        batch_op.drop_column('email_skeleton')

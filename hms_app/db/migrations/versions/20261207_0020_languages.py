"""languages (issue 20): each user's chosen language

Each user may choose the language HMS speaks to them in (``en``, ``es``, ``ar``); null means
not chosen yet, and the pages follow the browser's preference, then the hospital's default.
Notifications and e-mails are written in the recipient's language.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07 23:15:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0020'
down_revision: str | None = '0019'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # In place on both databases: a batch copy of "user" would have to drop the table every other
    # table refers to.
    op.add_column('user', sa.Column('language', sa.String(length=8), nullable=True))


def downgrade() -> None:
    op.drop_column('user', 'language')  # SQLite 3.35+ drops a column in place

"""the audit append without one global lock (issue 18, target 6): audit rows in lanes

Each audit row belongs to one of several independent hash chains ("lanes"), each appended to
behind its own advisory lock (``services/core/audit.py``). Rows written before this revision
are lane 0: they already form one chain, so it stays valid as it is. The index answers "the
last row of this lane", which every append reads.

Adding a column with a constant default rewrites no row on either database (PostgreSQL 11+
stores the default; SQLite's ADD COLUMN never rewrites), so the append-only triggers are not
involved and a trail of millions of rows migrates at once.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 16:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0016'
down_revision: str | None = '0015'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('audit_event', sa.Column('lane', sa.SmallInteger(), nullable=False, server_default='0'))
    op.create_index('ix_audit_event_lane', 'audit_event', ['lane', 'id'], unique=False)


def downgrade() -> None:
    # Before this revision the trail was one chain: rows of other lanes would read as broken links.
    others = op.get_bind().execute(sa.text("SELECT count(*) FROM audit_event WHERE lane <> 0")).scalar_one()
    if others:
        raise RuntimeError(f"{others} audit rows are in lanes other than 0; the single chain of revision 0015 "
                           "cannot verify them. Restore a backup taken before 0016 instead.")
    op.drop_index('ix_audit_event_lane', table_name='audit_event')
    op.drop_column('audit_event', 'lane')  # SQLite 3.35+ drops a column in place

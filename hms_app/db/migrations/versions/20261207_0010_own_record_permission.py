"""a permission of its own for reading one's own record, granted to patients

Until now a patient's history, results, documents, prescriptions and record export were
guarded by ``appointments.book``: an admin who stopped patients from booking also locked them
out of their own records. ``record.read_own`` guards those reads from here on; booking keeps
``appointments.book``.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 07:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PERMISSION = "record.read_own"


def upgrade() -> None:
    # The grant and the catalogue row together: the catalogue tells the seeding of default
    # permissions that this one has had its defaults, so an admin's later removal stands.
    bind = op.get_bind()
    parameters = {"role": "patient", "permission": PERMISSION}
    bind.execute(sa.text(
        # The casts give each parameter one type: PostgreSQL otherwise deduces text in the
        # select list and varchar in the comparison, and refuses the statement.
        "INSERT INTO role_permission (role, permission) SELECT CAST(:role AS VARCHAR), CAST(:permission AS VARCHAR) "
        "WHERE NOT EXISTS (SELECT 1 FROM role_permission WHERE role = :role AND permission = :permission)"
    ), parameters)
    bind.execute(sa.text(
        "INSERT INTO permission_catalog (permission, added_at) SELECT CAST(:permission AS VARCHAR), CURRENT_TIMESTAMP "
        "WHERE NOT EXISTS (SELECT 1 FROM permission_catalog WHERE permission = :permission)"
    ), {"permission": PERMISSION})


def downgrade() -> None:
    bind = op.get_bind()
    bind.execute(sa.text("DELETE FROM role_permission WHERE permission = :permission"), {"permission": PERMISSION})
    bind.execute(sa.text("DELETE FROM permission_catalog WHERE permission = :permission"), {"permission": PERMISSION})

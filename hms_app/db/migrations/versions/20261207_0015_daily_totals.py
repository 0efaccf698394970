"""daily totals of charges, payments and refunds (issue 18, target 4)

Two tables hold the accounts dashboard's sums per hospital-local day: ``daily_billed`` (the
charges of invoices not void, by department and kind) and ``daily_collected`` (payments and
refunds, by method). The services keep them from now on, in the transaction of each charge,
payment, refund and void; the upgrade fills them from the lines and payments already there,
with the same recount ``hms verify-totals`` compares them against
(``hms_app/services/accounting/totals.py``), two INSERT … SELECT statements.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 16:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from hms_app.services.accounting import totals

revision: str = '0015'
down_revision: str | None = '0014'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('daily_billed',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('department_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=15), nullable=False),
    sa.Column('charges', sa.Integer(), nullable=False),
    sa.Column('billed_cents', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('day', 'department_id', 'kind')
    )
    op.create_table('daily_collected',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('method', sa.String(length=15), nullable=False),
    sa.Column('payments', sa.Integer(), nullable=False),
    sa.Column('received_cents', sa.BigInteger(), nullable=False),
    sa.Column('refunded_cents', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('day', 'method')
    )
    totals.rebuild_daily_totals(op.get_bind())


def downgrade() -> None:
    op.drop_table('daily_collected')
    op.drop_table('daily_billed')

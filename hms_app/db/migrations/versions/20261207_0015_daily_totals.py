"""daily totals of charges, payments and refunds (issue 18, target 4)

Three tables hold the accounts dashboard's sums: ``daily_billed`` (per hospital-local day, the
charges of invoices not void, by department and kind), ``daily_collected`` (per day, payments
and refunds, by method) and ``open_balance`` (the open invoices' balances per local issue day,
due date and insurer, split between insurer and patients: receivables by age and by payer).
The services keep them from now on, in the transaction of each charge, payment, refund, void,
issue, discount, insurer's share and claim; the upgrade fills them from the lines, payments
and invoices already there, with the same recount ``hms verify-totals`` compares them against
(``hms_app/services/accounting/totals.py``), one INSERT … SELECT statement per table.

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
    op.create_table('open_balance',
    sa.Column('issued_day', sa.Date(), nullable=False),
    sa.Column('due_date', sa.Date(), nullable=False),
    sa.Column('insurer', sa.String(length=120), nullable=False),
    sa.Column('invoices', sa.Integer(), nullable=False),
    sa.Column('balance_cents', sa.BigInteger(), nullable=False),
    sa.Column('insurer_owing', sa.Integer(), nullable=False),
    sa.Column('insurer_cents', sa.BigInteger(), nullable=False),
    sa.Column('patients_owing', sa.Integer(), nullable=False),
    sa.Column('patients_cents', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('issued_day', 'due_date', 'insurer')
    )
    totals.rebuild_daily_totals(op.get_bind())  # the open balances too


def downgrade() -> None:
    op.drop_table('open_balance')
    op.drop_table('daily_collected')
    op.drop_table('daily_billed')

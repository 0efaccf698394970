"""Daily totals of the money billed and collected, kept as the money moves.

The accounts dashboard shows, per hospital-local day, the charges of invoices not void (by
department and kind) and the payments less refunds (by method). Summing every line and
payment of a year on each request costs seconds at scale, so two small tables hold those
sums per day (``DailyBilled``, ``DailyCollected``) and the dashboard reads a year of them.

They change in the transaction of what changes the money, and only there:

- a charge (``billing._add_line``) adds its line to its day, department and kind;
- a payment or a refund (``billing._pay``) adds itself to its day and method;
- voiding an invoice takes its lines off again (billed counts only invoices not void; a void
  is final, so nothing ever adds them back).

Each change is one ``INSERT … ON CONFLICT DO UPDATE SET x = x + excluded.x``: the first
change of a day creates its row, later ones add to it, and two writers at once cannot lose
an update (PostgreSQL locks the row; SQLite's writers queue). Days are cut as the reports
cut them (``periods.local_period``: the hospital's calendar in ``settings.TIMEZONE``).

A third table, ``OpenBalance``, holds what the open invoices still owe per (local issue day,
due date, insurer), split between the insurer and the patients as the dashboard splits it:
every service that changes an open invoice's balance or its insurer's part (issue, discount,
void, payment, refund, insurer's share, claim) takes the invoice's part before
(``open_part``) and hands it back after (``open_part_changed``), which adds the difference.
Ages and overdue are counted from the day keys at read time, so no job moves rows as days pass.

``rebuild_daily_totals`` recounts the tables from the lines and payments (the migration's
backfill and the end of the scale seed, which writes rows without the services);
``totals_mismatches`` compares them with a recount (``hms verify-totals``). The recount is
the dashboard's former query, kept as ``recount_billed`` / ``recount_collected``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import aliased
from sqlmodel import Session

from hms_app.db.enums import ClaimStatus, InvoiceStatus, PaymentMethod
from hms_app.db.models import (
    DailyBilled,
    DailyCollected,
    Invoice,
    InvoiceLine,
    OpenBalance,
    Payment,
)
from hms_app.services.core.localtime import local_date
from hms_app.services.core.periods import local_period_between

OPEN_STATUSES = (InvoiceStatus.ISSUED.value, InvoiceStatus.PARTLY_PAID.value)
"""An invoice is open (owed, with an age) from its issue until paid in full or void."""
NO_DEPARTMENT_ID = 0
"""``DailyBilled.department_id`` of charges with no department."""

_Database = Session | sa.Connection


@dataclass(frozen=True)
class BilledSum:
    """Charges on invoices not void, summed per local day (ISO), department (0: none) and kind."""

    day: str
    department_id: int
    kind: str
    charges: int
    cents: int


@dataclass(frozen=True)
class CollectedSum:
    """Payments summed per local day (ISO) and method; refunds are negative payments."""

    day: str
    method: str
    payments: int
    received_cents: int
    refunded_cents: int
    cents: int


def _dialect(db: _Database) -> str:
    return db.get_bind().dialect.name if isinstance(db, Session) else db.dialect.name


# --- kept as the money moves ---------------------------------------------------------------------


def _add_to(db: _Database, table: sa.Table, key: dict[str, Any], amounts: dict[str, int]) -> None:
    """Add ``amounts`` to the row of ``key``, creating it: race-free on both databases."""
    insert = postgresql.insert if _dialect(db) == "postgresql" else sqlite.insert
    statement = insert(table).values(**key, **amounts)
    db.execute(statement.on_conflict_do_update(
        index_elements=list(key), set_={name: table.c[name] + statement.excluded[name] for name in amounts}))


def _add_billed(db: _Database, day: date, department_id: int | None, kind: str, charges: int, cents: int) -> None:
    _add_to(db, DailyBilled.__table__, {"day": day, "department_id": department_id or NO_DEPARTMENT_ID,
                                        "kind": str(kind)}, {"charges": charges, "billed_cents": cents})


def charge_added(session: Session, line: InvoiceLine) -> None:
    """Count a new charge (a line on a draft invoice) on its day, department and kind."""
    _add_billed(session, local_date(line.service_at), line.department_id, line.kind, 1, line.amount_cents)


def invoice_voided(session: Session, invoice_id: int) -> None:
    """Take a voided invoice's charges off the days they were counted on."""
    sums: dict[tuple[date, int, str], tuple[int, int]] = defaultdict(lambda: (0, 0))
    for service_at, department_id, kind, cents in session.execute(
            sa.select(InvoiceLine.service_at, InvoiceLine.department_id, InvoiceLine.kind, InvoiceLine.amount_cents)
            .where(InvoiceLine.invoice_id == invoice_id)):
        key = (local_date(service_at), department_id or NO_DEPARTMENT_ID, str(kind))
        n, total = sums[key]
        sums[key] = (n + 1, total + cents)
    for (day, department_id, kind), (n, cents) in sorted(sums.items()):  # one order: no deadlock between voids
        _add_billed(session, day, department_id, kind, -n, -cents)


def payment_added(session: Session, payment: Payment) -> None:
    """Count a payment (or a refund, negative) on its day and method."""
    cents = payment.amount_cents
    _add_to(session, DailyCollected.__table__,
            {"day": local_date(payment.received_at), "method": str(payment.method)},
            {"payments": 1, "received_cents": max(cents, 0), "refunded_cents": max(-cents, 0)})


@dataclass(frozen=True)
class OpenPart:
    """One open invoice's row key in ``OpenBalance`` and what it adds to that row."""

    key: tuple[date, date, str]
    amounts: tuple[int, int, int, int, int, int]
    """invoices, balance, insurer owing (0/1), insurer's part, patients owing (0/1), patients' part."""


_OPEN_KEY = ("issued_day", "due_date", "insurer")
_OPEN_AMOUNTS = ("invoices", "balance_cents", "insurer_owing", "insurer_cents", "patients_owing", "patients_cents")


def open_part(session: Session, invoice: Invoice) -> OpenPart | None:
    """What ``invoice`` adds to the open balances now; None unless it is open."""
    if str(invoice.status) not in OPEN_STATUSES:
        return None
    balance = invoice.total_cents - invoice.paid_cents
    insurance_paid = int(session.execute(
        sa.select(sa.func.coalesce(sa.func.sum(Payment.amount_cents), 0))
        .where(Payment.invoice_id == invoice.id, Payment.method == PaymentMethod.INSURANCE.value)).scalar_one())
    # The insurer is expected to pay its share less what it paid, never more than the balance; nothing once rejected.
    expected = 0 if str(invoice.claim_status) == ClaimStatus.REJECTED else invoice.insurer_share_cents - insurance_paid
    insurer = 0 if expected <= 0 else min(expected, balance)
    patients = balance - insurer
    return OpenPart((local_date(invoice.issued_at), invoice.due_date, invoice.insurer),
                    (1, balance, int(insurer > 0), max(insurer, 0), int(patients > 0), max(patients, 0)))


def open_part_changed(session: Session, invoice: Invoice, before: OpenPart | None) -> None:
    """Add to the open balances the difference between ``invoice``'s part now and ``before``."""
    changes: dict[tuple[date, date, str], list[int]] = defaultdict(lambda: [0] * len(_OPEN_AMOUNTS))
    if before is not None:
        changes[before.key] = [-a for a in before.amounts]
    if (after := open_part(session, invoice)) is not None:
        changes[after.key] = [c + a for c, a in zip(changes[after.key], after.amounts, strict=True)]
    for key, amounts in sorted(changes.items()):  # one order: no deadlock between two invoices' changes
        if any(amounts):
            _add_to(session, OpenBalance.__table__, dict(zip(_OPEN_KEY, key, strict=True)),
                    dict(zip(_OPEN_AMOUNTS, amounts, strict=True)))


# --- recounted from the lines and payments -------------------------------------------------------


def _billed_query(dialect: str, starts_at: datetime, ends_at: datetime) -> sa.Select:
    # The local day is computed in a subquery so that GROUP BY names a column, not a repeated expression.
    lines = (sa.select(local_period_between(dialect, InvoiceLine.service_at, starts_at, ends_at, "day").label("day"),
                       sa.func.coalesce(InvoiceLine.department_id, NO_DEPARTMENT_ID).label("department_id"),
                       InvoiceLine.kind.label("kind"), InvoiceLine.amount_cents)
             .join(Invoice, Invoice.id == InvoiceLine.invoice_id)
             .where(Invoice.status != InvoiceStatus.VOID.value, InvoiceLine.service_at >= starts_at,
                    InvoiceLine.service_at < ends_at)
             .subquery())
    return (sa.select(lines.c.day, lines.c.department_id, lines.c.kind, sa.func.count().label("charges"),
                      sa.func.sum(lines.c.amount_cents).label("billed_cents"))
            .group_by(lines.c.day, lines.c.department_id, lines.c.kind))


def _collected_query(dialect: str, starts_at: datetime, ends_at: datetime) -> sa.Select:
    paid = (sa.select(local_period_between(dialect, Payment.received_at, starts_at, ends_at, "day").label("day"),
                      Payment.method.label("method"), Payment.amount_cents)
            .where(Payment.received_at >= starts_at, Payment.received_at < ends_at).subquery())
    amount = paid.c.amount_cents
    return (sa.select(paid.c.day, paid.c.method, sa.func.count().label("payments"),
                      sa.func.sum(sa.case((amount > 0, amount), else_=0)).label("received_cents"),
                      sa.func.sum(sa.case((amount < 0, -amount), else_=0)).label("refunded_cents"))
            .group_by(paid.c.day, paid.c.method))


def recount_billed(db: _Database, starts_at: datetime, ends_at: datetime) -> list[BilledSum]:
    """The charges in ``[starts_at, ends_at)`` summed from the lines themselves."""
    return [BilledSum(day, int(department), str(kind), int(n), int(cents or 0))
            for day, department, kind, n, cents in db.execute(_billed_query(_dialect(db), starts_at, ends_at))]


def recount_collected(db: _Database, starts_at: datetime, ends_at: datetime) -> list[CollectedSum]:
    """The payments in ``[starts_at, ends_at)`` summed from the payments themselves."""
    return [CollectedSum(day, str(method), int(n), int(received or 0), int(refunded or 0),
                         int(received or 0) - int(refunded or 0))
            for day, method, n, received, refunded in db.execute(_collected_query(_dialect(db), starts_at, ends_at))]


@dataclass(frozen=True)
class OpenSum:
    """The open invoices issued on a local day (ISO), due on a day (ISO), of one insurer, summed."""

    issued_day: str
    due_date: str
    insurer: str
    invoices: int
    balance_cents: int
    insurer_owing: int
    insurer_cents: int
    patients_owing: int
    patients_cents: int


def _open_query(dialect: str, starts_at: datetime, ends_at: datetime) -> sa.Select:
    # The insurance payments of the open invoices only (found by their index), not every payment on record.
    open_invoice = aliased(Invoice)
    insurance_paid = (sa.select(Payment.invoice_id, sa.func.sum(Payment.amount_cents).label("paid"))
                      .join(open_invoice, open_invoice.id == Payment.invoice_id)
                      .where(open_invoice.status.in_(OPEN_STATUSES), Payment.method == PaymentMethod.INSURANCE.value)
                      .group_by(Payment.invoice_id).subquery())
    balance = Invoice.total_cents - Invoice.paid_cents
    expected = sa.case((Invoice.claim_status == ClaimStatus.REJECTED.value, 0),
                       else_=Invoice.insurer_share_cents - sa.func.coalesce(insurance_paid.c.paid, 0))
    insurer_part = sa.case((expected <= 0, 0), (expected > balance, balance), else_=expected)
    parts = (sa.select(local_period_between(dialect, Invoice.issued_at, starts_at, ends_at, "day").label("issued_day"),
                       Invoice.due_date.label("due_date"), Invoice.insurer.label("insurer"),
                       balance.label("balance"), insurer_part.label("insurer_part"),
                       (balance - insurer_part).label("patient_part"))
             .outerjoin(insurance_paid, insurance_paid.c.invoice_id == Invoice.id)
             .where(Invoice.status.in_(OPEN_STATUSES)).subquery())

    def owing(part: sa.ColumnElement[int], side: str) -> tuple[sa.ColumnElement[int], sa.ColumnElement[int]]:
        return (sa.func.sum(sa.case((part > 0, 1), else_=0)).label(f"{side}_owing"),
                sa.func.sum(sa.case((part > 0, part), else_=0)).label(f"{side}_cents"))

    return (sa.select(parts.c.issued_day, parts.c.due_date, parts.c.insurer, sa.func.count().label("invoices"),
                      sa.func.sum(parts.c.balance).label("balance_cents"), *owing(parts.c.insurer_part, "insurer"),
                      *owing(parts.c.patient_part, "patients"))
            .group_by(parts.c.issued_day, parts.c.due_date, parts.c.insurer))


def recount_open_balances(db: _Database) -> list[OpenSum]:
    """The open invoices' balances summed from the invoices and their insurance payments."""
    open_issued = sa.and_(Invoice.status.in_(OPEN_STATUSES), Invoice.issued_at.is_not(None))
    span = _span(db, Invoice.issued_at, open_issued)
    if span is None:
        return []
    return [OpenSum(str(issued), _day_text(due), str(insurer), *(int(v or 0) for v in amounts))
            for issued, due, insurer, *amounts in db.execute(_open_query(_dialect(db), *span))]


def _span(db: _Database, column: Any, *where: sa.ColumnElement[bool]) -> tuple[datetime, datetime] | None:
    """From the first instant of ``column`` on record to just after its last; None when empty."""
    first, last = db.execute(sa.select(sa.func.min(column), sa.func.max(column)).where(*where)).one()
    return None if first is None else (first, last + timedelta(seconds=1))


def _as_day(dialect: str, day: sa.ColumnElement[str]) -> sa.ColumnElement[Any]:
    # PostgreSQL stores the ISO text into a date column only when told; SQLite stores dates as that text.
    return sa.cast(day, sa.Date) if dialect == "postgresql" else day


def rebuild_daily_totals(db: _Database) -> None:
    """Replace both tables with a recount of every line and payment, in one statement each.

    Used where rows were written without the services (the migration's backfill, the scale
    seed) and to repair what ``totals_mismatches`` finds. The caller commits.
    """
    dialect = _dialect(db)
    db.execute(sa.delete(DailyBilled))
    db.execute(sa.delete(DailyCollected))
    rebuild_open_balances(db)
    if span := _span(db, InvoiceLine.service_at):
        billed = _billed_query(dialect, *span).subquery()
        db.execute(sa.insert(DailyBilled).from_select(
            ["day", "department_id", "kind", "charges", "billed_cents"],
            sa.select(_as_day(dialect, billed.c.day), billed.c.department_id, billed.c.kind, billed.c.charges,
                      billed.c.billed_cents)))
    if span := _span(db, Payment.received_at):
        collected = _collected_query(dialect, *span).subquery()
        db.execute(sa.insert(DailyCollected).from_select(
            ["day", "method", "payments", "received_cents", "refunded_cents"],
            sa.select(_as_day(dialect, collected.c.day), collected.c.method, collected.c.payments,
                      collected.c.received_cents, collected.c.refunded_cents)))


def rebuild_open_balances(db: _Database) -> None:
    """Replace ``OpenBalance`` with a recount of the open invoices, in one statement. The caller commits."""
    db.execute(sa.delete(OpenBalance))
    open_issued = sa.and_(Invoice.status.in_(OPEN_STATUSES), Invoice.issued_at.is_not(None))
    if span := _span(db, Invoice.issued_at, open_issued):
        dialect = _dialect(db)
        counted = _open_query(dialect, *span).subquery()
        db.execute(sa.insert(OpenBalance).from_select(
            [*_OPEN_KEY, *_OPEN_AMOUNTS],
            sa.select(_as_day(dialect, counted.c.issued_day), *[counted.c[name] for name in _OPEN_KEY[1:]],
                      *[counted.c[name] for name in _OPEN_AMOUNTS])))


def _day_text(day: date | str) -> str:
    return day.isoformat() if isinstance(day, date) else str(day)


def totals_mismatches(db: _Database) -> list[str]:
    """Every day whose kept totals differ from a recount of the lines, payments and open
    invoices, described for a person; empty when they agree."""
    kept_billed = {(_day_text(day), int(department), str(kind)): (int(n), int(cents))
                   for day, department, kind, n, cents in db.execute(
                       sa.select(DailyBilled.day, DailyBilled.department_id, DailyBilled.kind, DailyBilled.charges,
                                 DailyBilled.billed_cents))
                   if n or cents}  # a voided day's row stays behind at zero
    counted_billed = {}
    if span := _span(db, InvoiceLine.service_at):
        counted_billed = {(b.day, b.department_id, b.kind): (b.charges, b.cents) for b in recount_billed(db, *span)}
    kept_collected = {(_day_text(day), str(method)): (int(n), int(received), int(refunded))
                      for day, method, n, received, refunded in db.execute(
                          sa.select(DailyCollected.day, DailyCollected.method, DailyCollected.payments,
                                    DailyCollected.received_cents, DailyCollected.refunded_cents))}
    counted_collected = {}
    if span := _span(db, Payment.received_at):
        counted_collected = {(c.day, c.method): (c.payments, c.received_cents, c.refunded_cents)
                             for c in recount_collected(db, *span)}
    kept_open = {(_day_text(issued), _day_text(due), str(insurer)): tuple(int(a) for a in amounts)
                 for issued, due, insurer, *amounts in db.execute(
                     sa.select(*[OpenBalance.__table__.c[name] for name in (*_OPEN_KEY, *_OPEN_AMOUNTS)]))
                 if any(amounts)}  # a row whose invoices were all paid stays behind at zero
    counted_open = {(o.issued_day, o.due_date, o.insurer): (o.invoices, o.balance_cents, o.insurer_owing,
                                                            o.insurer_cents, o.patients_owing, o.patients_cents)
                    for o in recount_open_balances(db)}
    problems = []
    for key in sorted(kept_open.keys() | counted_open.keys()):
        zero = (0,) * len(_OPEN_AMOUNTS)
        kept, counted = kept_open.get(key, zero), counted_open.get(key, zero)
        if kept != counted:
            issued, due, insurer = key
            problems.append(f"open balances issued {issued}, due {due}, {insurer or 'no insurer'}: kept "  # i18n: not shown (hms verify-totals)
                            f"{kept[0]} invoices {kept[1]} cents (insurer {kept[3]}, patients {kept[5]}), the open "
                            f"invoices sum to {counted[0]} invoices {counted[1]} cents (insurer {counted[3]}, "
                            f"patients {counted[5]})")
    for key in sorted(kept_billed.keys() | counted_billed.keys()):
        kept, counted = kept_billed.get(key, (0, 0)), counted_billed.get(key, (0, 0))
        if kept != counted:
            day, department, kind = key
            problems.append(f"billed {day}, department {department or 'none'}, {kind}: kept {kept[0]} charges "  # i18n: not shown (hms verify-totals)
                            f"{kept[1]} cents, the lines sum to {counted[0]} charges {counted[1]} cents")
    for key in sorted(kept_collected.keys() | counted_collected.keys()):
        kept, counted = kept_collected.get(key, (0, 0, 0)), counted_collected.get(key, (0, 0, 0))
        if kept != counted:
            day, method = key
            problems.append(f"collected {day}, {method}: kept {kept[0]} payments {kept[1]} in {kept[2]} refunded "  # i18n: not shown (hms verify-totals)
                            f"(cents), the payments sum to {counted[0]} payments {counted[1]} in {counted[2]} refunded")
    return problems

"""The accounts dashboard: revenue, receivables and what is still owed, aggregated in SQL.

What each figure means:

- **Billed** is charges: the invoice lines of every invoice that is not void (drafts
  included: the service was given), counted on the line's service date, at the amount
  charged. It is gross of invoice discounts, which belong to an invoice, not to a day,
  a department or a kind of service. *By department* and *by kind* split the same lines.
- **Collected** is cash in: every payment less every refund (refunds are negative
  payments), counted on the day it was received, whatever became of the invoice since.
  *By payment method* splits it (insurers' payments are the method "Insurance").
- **Receivables by age** are the balances (total − paid) of the open invoices (issued or
  partly paid) today, by days since the invoice was issued: 0–30, 31–60, 61–90, over 90.
  By issue date rather than due date so that every open invoice has an age (the day it
  was issued, in the hospital's calendar) and the buckets are the usual ageing of
  accountants; with the hospital's 30 days' terms (``billing.PAYMENT_TERMS_DAYS``) the
  first bucket is what is not yet due and the others are 1–30, 31–60 and over 60 days
  overdue. *Overdue* on the headline is the balance of open invoices past their due date.
- **Outstanding by payer** splits the same balances between each insurer (the share it is
  still expected to pay: ``billing.insurer_outstanding``, capped at the balance, as the
  claim's payment is; nothing once the claim is rejected) and the patients (the rest:
  ``billing.patient_due_cents``), so the payers add up to the receivables.

Billed and collected are read from the daily totals (``totals``: kept per local day in the
transaction of every charge, payment, refund and void), a year being a few thousand rows
rather than every line and payment of it. Receivables by age and by payer are read likewise
from the open balances (``totals.OpenBalance``: per local issue day, due date and insurer,
kept in the transaction of every change of an open invoice), aged at read time from the day
keys. ``recounted_summary`` sums the rows themselves (every line, payment and open invoice), to
check the totals against.

Days and months are those of the hospital's calendar (``settings.TIMEZONE``), labelled in
SQL by ``core.periods.local_period``, so a payment at 00:30 local time on a summer
morning (23:30 UTC the evening before) counts on its local day, on SQLite and PostgreSQL
alike. A range is validated as the reports' ranges are (``core.periods``): ISO dates, start ≤ end, at most
366 days; months at its ends count only the days inside it.

Only accounts see it (``Permission.BILLING_MANAGE``). Admin holds ``REPORTS_VIEW`` for the
hospital's operational reports, not the money; a hospital that wants admin to see revenue
grants admin ``billing.manage`` on the permissions page. Looking at the dashboard is not
audited (it holds no patient's data and re-runs on every payment while open); each CSV
export is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import aliased
from sqlmodel import Session

from hms_app.db.enums import ChargeKind, ClaimStatus, PaymentMethod, Permission
from hms_app.db.models import DailyBilled, DailyCollected, Department, Invoice, OpenBalance, Payment
from hms_app.services.accounting import totals
from hms_app.services.accounting.billing import KIND_LABELS, METHOD_LABELS, OPEN_STATUSES
from hms_app.services.accounting.totals import BilledSum, CollectedSum
from hms_app.services.core import audit
from hms_app.services.core.access import require
from hms_app.services.core.actor import Actor
from hms_app.services.core.errors import ValidationError
from hms_app.services.core.language import N_, _
from hms_app.services.core.localtime import day_span_utc, local_today
from hms_app.services.core.periods import (
    ReportRange,
    parse_report_range,
    periods_of,
)
from hms_app.services.core.spreadsheet import rows_to_csv

DEFAULT_RANGE_DAYS = 30
NO_DEPARTMENT = N_("No department")
PATIENTS_PAYER = N_("Patients")
"""The payer of what patients owe, in English: a row's ``payer`` is ``_(PATIENTS_PAYER)``."""
AGE_BUCKETS = (N_("0–30 days"), N_("31–60 days"), N_("61–90 days"), N_("Over 90 days"))
"""The ages of receivables, in English: a row's ``age`` is the label translated."""
_AGE_LIMITS = (30, 60, 90)
"""The oldest age in days of each bucket but the last."""


def default_range(days: int = DEFAULT_RANGE_DAYS) -> tuple[str, str]:
    """The last ``days`` days, today included, as the form's two ISO dates."""
    today = local_today()
    return (today - timedelta(days=days - 1)).isoformat(), today.isoformat()


# --- the rows of each chart (and of its CSV) ---------------------------------------------------


@dataclass(frozen=True)
class RevenuePeriod:
    period: str
    """A local day (``2026-03-29``) or month (``2026-03``)."""
    billed_cents: int
    collected_cents: int


@dataclass(frozen=True)
class DepartmentBilled:
    department: str
    charges: int
    billed_cents: int


@dataclass(frozen=True)
class KindBilled:
    kind: str
    charges: int
    billed_cents: int


@dataclass(frozen=True)
class MethodCollected:
    method: str
    payments: int
    """Payments and refunds together."""
    received_cents: int
    refunded_cents: int
    collected_cents: int
    """Received less refunded."""


@dataclass(frozen=True)
class AgeBucket:
    age: str
    invoices: int
    outstanding_cents: int


@dataclass(frozen=True)
class PayerOutstanding:
    payer: str
    invoices: int
    """Open invoices on which this payer still owes something."""
    outstanding_cents: int


@dataclass(frozen=True)
class AccountsHeadline:
    billed_cents: int
    collected_cents: int
    outstanding_cents: int
    overdue_cents: int
    open_invoices: int


@dataclass(frozen=True)
class AccountsSummary:
    """Everything the accounts dashboard shows, for one range of days."""

    dates: ReportRange
    today: date
    headline: AccountsHeadline
    by_day: list[RevenuePeriod]
    by_month: list[RevenuePeriod]
    by_department: list[DepartmentBilled]
    by_kind: list[KindBilled]
    by_method: list[MethodCollected]
    by_age: list[AgeBucket]
    by_payer: list[PayerOutstanding]


# --- the queries -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Sums:
    """The range's money as the charts need it: per day, and per department and kind or method.

    Read from the daily totals, each split is its own small query. Recounted from the rows
    (``recounted_summary``), one list per side serves both splits, as every row has all fields.
    """

    billed_by_day: list[BilledSum]
    billed_by_group: list[BilledSum]
    collected_by_day: list[CollectedSum]
    collected_by_method: list[CollectedSum]


def _kept_sums(session: Session, window: ReportRange) -> _Sums:
    days = sa.and_(DailyBilled.day >= window.first_day, DailyBilled.day <= window.last_day)
    billed_by_day = [BilledSum(day.isoformat(), 0, "", 0, int(cents or 0)) for day, cents in session.execute(
        sa.select(DailyBilled.day, sa.func.sum(DailyBilled.billed_cents)).where(days).group_by(DailyBilled.day))]
    # A row whose charges were all voided stays at zero: it names no department that billed.
    billed_by_group = [BilledSum("", int(department), str(kind), int(n), int(cents or 0))
                       for department, kind, n, cents in session.execute(
                           sa.select(DailyBilled.department_id, DailyBilled.kind, sa.func.sum(DailyBilled.charges),
                                     sa.func.sum(DailyBilled.billed_cents))
                           .where(days, DailyBilled.charges != 0)
                           .group_by(DailyBilled.department_id, DailyBilled.kind))]
    paid_days = sa.and_(DailyCollected.day >= window.first_day, DailyCollected.day <= window.last_day)
    received, refunded = sa.func.sum(DailyCollected.received_cents), sa.func.sum(DailyCollected.refunded_cents)
    collected_by_day = [CollectedSum(day.isoformat(), "", 0, 0, 0, int(cents or 0)) for day, cents in session.execute(
        sa.select(DailyCollected.day, received - refunded).where(paid_days).group_by(DailyCollected.day))]
    collected_by_method = [CollectedSum("", str(method), int(n), int(r or 0), int(f or 0), int(r or 0) - int(f or 0))
                           for method, n, r, f in session.execute(
                               sa.select(DailyCollected.method, sa.func.sum(DailyCollected.payments), received, refunded)
                               .where(paid_days).group_by(DailyCollected.method))]
    return _Sums(billed_by_day, billed_by_group, collected_by_day, collected_by_method)


def _recounted_sums(session: Session, window: ReportRange) -> _Sums:
    billed = totals.recount_billed(session, window.starts_at, window.ends_at)
    collected = totals.recount_collected(session, window.starts_at, window.ends_at)
    return _Sums(billed, billed, collected, collected)


def _revenue(window: ReportRange, per: str, sums: _Sums) -> list[RevenuePeriod]:
    # A local month is its days' first seven characters (2026-03-29 -> 2026-03).
    width = 10 if per == "day" else 7
    billed_by: dict[str, int] = {}
    for b in sums.billed_by_day:
        billed_by[b.day[:width]] = billed_by.get(b.day[:width], 0) + b.cents
    collected_by: dict[str, int] = {}
    for c in sums.collected_by_day:
        collected_by[c.day[:width]] = collected_by.get(c.day[:width], 0) + c.cents
    return [RevenuePeriod(p, billed_by.get(p, 0), collected_by.get(p, 0)) for p in periods_of(window, per)]


def _by_department(session: Session, billed: list[BilledSum]) -> list[DepartmentBilled]:
    names = dict(session.execute(sa.select(Department.id, Department.name)).all())
    sums: dict[str, tuple[int, int]] = {}
    for b in billed:
        name = names.get(b.department_id) or _(NO_DEPARTMENT)
        n, cents = sums.get(name, (0, 0))
        sums[name] = (n + b.charges, cents + b.cents)
    result = [DepartmentBilled(name, n, cents) for name, (n, cents) in sums.items()]
    return sorted(result, key=lambda r: (-r.billed_cents, r.department))


def _by_kind(billed: list[BilledSum]) -> list[KindBilled]:
    counts: dict[str, tuple[int, int]] = {}
    for b in billed:
        n, cents = counts.get(b.kind, (0, 0))
        counts[b.kind] = (n + b.charges, cents + b.cents)
    return [KindBilled(_(KIND_LABELS[kind]), *counts.get(kind.value, (0, 0))) for kind in ChargeKind]


def _by_method(collected: list[CollectedSum]) -> list[MethodCollected]:
    sums: dict[str, tuple[int, int, int]] = {}
    for c in collected:
        n, received, refunded = sums.get(c.method, (0, 0, 0))
        sums[c.method] = (n + c.payments, received + c.received_cents, refunded + c.refunded_cents)
    rows = []
    for method in PaymentMethod:
        n, received, refunded = sums.get(method.value, (0, 0, 0))
        rows.append(MethodCollected(_(METHOD_LABELS[method]), n, received, refunded, received - refunded))
    return rows


def _balance() -> sa.ColumnElement[int]:
    return Invoice.total_cents - Invoice.paid_cents


@dataclass(frozen=True)
class _Receivables:
    by_age: list[AgeBucket]
    overdue_cents: int
    by_payer: list[PayerOutstanding]


def _kept_receivables(session: Session, today: date) -> _Receivables:
    """Receivables by age and by payer from the kept open balances (``totals.OpenBalance``)."""
    # Age ≤ N days ⇔ issued on or after local day (today - N): the same cut as the recount's.
    bucket = sa.case(*[(OpenBalance.issued_day >= today - timedelta(days=days), index)
                       for index, days in enumerate(_AGE_LIMITS)], else_=len(_AGE_LIMITS))
    overdue = sa.case((OpenBalance.due_date < today, OpenBalance.balance_cents), else_=0)
    rows = sa.select(bucket.label("bucket"), OpenBalance.invoices, OpenBalance.balance_cents,
                     overdue.label("overdue")).subquery()
    sums = {int(b): (int(n or 0), int(balance or 0), int(late or 0)) for b, n, balance, late in session.execute(
        sa.select(rows.c.bucket, sa.func.sum(rows.c.invoices), sa.func.sum(rows.c.balance_cents),
                  sa.func.sum(rows.c.overdue)).group_by(rows.c.bucket))}
    by_age = [AgeBucket(_(label), *sums.get(index, (0, 0, 0))[:2]) for index, label in enumerate(AGE_BUCKETS)]
    per_insurer = session.execute(
        sa.select(OpenBalance.insurer, sa.func.sum(OpenBalance.insurer_owing), sa.func.sum(OpenBalance.insurer_cents),
                  sa.func.sum(OpenBalance.patients_owing), sa.func.sum(OpenBalance.patients_cents))
        .group_by(OpenBalance.insurer)).all()
    return _Receivables(by_age, sum(late for *_counts, late in sums.values()), _payers(per_insurer))


def _recounted_receivables(session: Session, today: date) -> _Receivables:
    by_age, overdue = _by_age(session, today)
    return _Receivables(by_age, overdue, _by_payer(session))


def _by_age(session: Session, today: date) -> tuple[list[AgeBucket], int]:
    """The open balances by days since issue, and the overdue part of them, from the open invoices."""
    # Age ≤ N days ⇔ issued on or after local day (today - N) ⇔ at or after its local midnight.
    edges = [day_span_utc(today - timedelta(days=days))[0] for days in _AGE_LIMITS]
    bucket = sa.case(*[(Invoice.issued_at >= edge, index) for index, edge in enumerate(edges)], else_=len(edges))
    overdue = sa.case((Invoice.due_date < today, _balance()), else_=0)
    open_rows = (sa.select(bucket.label("bucket"), _balance().label("balance"), overdue.label("overdue"))
                 .where(Invoice.status.in_(OPEN_STATUSES)).subquery())
    sums = {int(b): (int(n), int(balance or 0), int(late or 0)) for b, n, balance, late in session.execute(
        sa.select(open_rows.c.bucket, sa.func.count(), sa.func.sum(open_rows.c.balance),
                  sa.func.sum(open_rows.c.overdue)).group_by(open_rows.c.bucket))}
    buckets = [AgeBucket(_(label), *sums.get(index, (0, 0, 0))[:2]) for index, label in enumerate(AGE_BUCKETS)]
    return buckets, sum(late for *_counts, late in sums.values())


def _by_payer(session: Session) -> list[PayerOutstanding]:
    # The insurance payments of the open invoices only (found by their index), not every payment on record.
    open_invoice = aliased(Invoice)
    insurance_paid = (sa.select(Payment.invoice_id, sa.func.sum(Payment.amount_cents).label("paid"))
                      .join(open_invoice, open_invoice.id == Payment.invoice_id)
                      .where(open_invoice.status.in_(OPEN_STATUSES), Payment.method == PaymentMethod.INSURANCE.value)
                      .group_by(Payment.invoice_id).subquery())
    expected = sa.case((Invoice.claim_status == ClaimStatus.REJECTED.value, 0),
                       else_=Invoice.insurer_share_cents - sa.func.coalesce(insurance_paid.c.paid, 0))
    insurer_part = sa.case((expected <= 0, 0), (expected > _balance(), _balance()), else_=expected)
    parts = (sa.select(Invoice.insurer.label("insurer"), insurer_part.label("insurer_part"),
                       (_balance() - insurer_part).label("patient_part"))
             .outerjoin(insurance_paid, insurance_paid.c.invoice_id == Invoice.id)
             .where(Invoice.status.in_(OPEN_STATUSES)).subquery())
    # One pass over the open invoices: per insurer, its own part and the patients' part of its invoices.
    owing = sa.func.sum(sa.case((parts.c.insurer_part > 0, 1), else_=0))
    patients_owing = sa.func.sum(sa.case((parts.c.patient_part > 0, 1), else_=0))
    patients_owe = sa.func.sum(sa.case((parts.c.patient_part > 0, parts.c.patient_part), else_=0))
    per_insurer = session.execute(
        sa.select(parts.c.insurer, owing, sa.func.sum(sa.case((parts.c.insurer_part > 0, parts.c.insurer_part),
                                                              else_=0)), patients_owing, patients_owe)
        .group_by(parts.c.insurer)
    ).all()
    return _payers(per_insurer)


def _payers(per_insurer: list) -> list[PayerOutstanding]:
    """Per insurer (insurer, invoices it owes on, its part, invoices the patients owe on, their part) as the payers."""
    rows = sorted((PayerOutstanding(name, int(count), int(owed)) for name, count, owed, *_patients in per_insurer
                   if count), key=lambda r: (-r.outstanding_cents, r.payer))
    n = sum(int(count or 0) for *_insurer, count, _owed in per_insurer)
    cents = sum(int(owed or 0) for *_insurer, owed in per_insurer)
    return [*rows, PayerOutstanding(_(PATIENTS_PAYER), n, cents)]


@dataclass(frozen=True)
class _Report:
    title: str
    """In English (``N_``): translated where shown."""
    row_type: type
    rows: Callable[[AccountsSummary], list]


REPORTS: dict[str, _Report] = {
    "revenue-by-day": _Report(N_("Revenue by day"), RevenuePeriod, lambda s: s.by_day),
    "revenue-by-month": _Report(N_("Revenue by month"), RevenuePeriod, lambda s: s.by_month),
    "billed-by-department": _Report(N_("Billed by department"), DepartmentBilled, lambda s: s.by_department),
    "billed-by-kind": _Report(N_("Billed by kind of service"), KindBilled, lambda s: s.by_kind),
    "collected-by-method": _Report(N_("Collected by payment method"), MethodCollected, lambda s: s.by_method),
    "receivables-by-age": _Report(N_("Receivables by age"), AgeBucket, lambda s: s.by_age),
    "outstanding-by-payer": _Report(N_("Outstanding by payer"), PayerOutstanding, lambda s: s.by_payer),
}
"""Each chart of the dashboard by the name its CSV export is asked for, in page order."""


def _summary(session: Session, window: ReportRange, sums: _Sums, receivables: _Receivables,
             today: date) -> AccountsSummary:
    by_day = _revenue(window, "day", sums)
    by_age = receivables.by_age
    headline = AccountsHeadline(
        billed_cents=sum(r.billed_cents for r in by_day),
        collected_cents=sum(r.collected_cents for r in by_day),
        outstanding_cents=sum(b.outstanding_cents for b in by_age),
        overdue_cents=receivables.overdue_cents,
        open_invoices=sum(b.invoices for b in by_age),
    )
    return AccountsSummary(
        dates=window, today=today, headline=headline, by_day=by_day, by_month=_revenue(window, "month", sums),
        by_department=_by_department(session, sums.billed_by_group), by_kind=_by_kind(sums.billed_by_group),
        by_method=_by_method(sums.collected_by_method), by_age=by_age, by_payer=receivables.by_payer,
    )


def recounted_summary(session: Session, start: object, end: object) -> AccountsSummary:
    """The dashboard's figures summed from every line and payment of the range, as the dashboard
    did before the daily totals: the yardstick of the totals' tests and benchmark. No check of
    who asks: not for the UI."""
    window = parse_report_range(start, end)
    today = local_today()
    return _summary(session, window, _recounted_sums(session, window), _recounted_receivables(session, today), today)


def _kept_summary(session: Session, window: ReportRange) -> AccountsSummary:
    today = local_today()
    return _summary(session, window, _kept_sums(session, window), _kept_receivables(session, today), today)


# --- the services ------------------------------------------------------------------------------


def accounts_summary(*, session: Session, actor: Actor, start: object, end: object) -> AccountsSummary:
    """Every figure of the accounts dashboard: revenue over the range, receivables as of today."""
    require(session, actor, Permission.BILLING_MANAGE, action="accounts.dashboard")
    window = parse_report_range(start, end)
    return _kept_summary(session, window)


def export_accounts_csv(*, session: Session, actor: Actor, report: str, start: object, end: object) -> str:
    """One chart's figures over the range as CSV text, money in integer cents; audited."""
    require(session, actor, Permission.BILLING_MANAGE, action="accounts.export")
    chosen = REPORTS.get(str(report))
    if chosen is None:
        raise ValidationError(_("Choose one of the charts on the page to export."))
    window = parse_report_range(start, end)
    rows = chosen.rows(_kept_summary(session, window))
    audit.record(session, actor, "accounts.export", entity_type="report", entity_id=str(report),
                 detail=f"{window.first_day}..{window.last_day}; {len(rows)} rows")
    session.commit()
    return rows_to_csv(chosen.row_type, rows)

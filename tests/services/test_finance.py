"""The accounts dashboard's figures: exact sums of invoices, lines and payments the tests
write, on the hospital's local calendar across London's daylight-saving changes; who may
see them; the date range; the CSV exports; and the demo hospital's billing history.

The ``seeded`` hospital has no invoices (its billing history is left out), so every figure
here is the test's own. Revenue tests use 2025; receivables are "as of today" and dated from
the real today.
"""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Sequence
from dataclasses import fields
from datetime import UTC, date, datetime, time, timedelta

import pytest
import sqlalchemy as sa

from hms_app import settings
from hms_app.db.engine import session_scope
from hms_app.db.enums import (
    AppointmentStatus,
    ChargeKind,
    ClaimStatus,
    InvoiceStatus,
    PaymentMethod,
    Role,
)
from hms_app.db.models import (
    Appointment,
    Department,
    Invoice,
    InvoiceLine,
    Payment,
    User,
)
from hms_app.operations import demo
from hms_app.services.accounting import billing, finance, totals
from hms_app.services.accounting.finance import (
    AgeBucket,
    DepartmentBilled,
    KindBilled,
    MethodCollected,
    PayerOutstanding,
    RevenuePeriod,
)
from hms_app.services.administration import permissions
from hms_app.services.core import spreadsheet
from hms_app.services.core.errors import SessionExpired, ValidationError
from hms_app.services.core.localtime import local_today
from tests.conftest import DEMO_EMAIL, login_as
from tests.services.appointment_helpers import call, insert_appointment, user_id
from tests.services.helpers import assert_refused, audit_events, last_audit_id, snapshot

pytestmark = pytest.mark.db

MARIA = "maria.garcia@patients.example"
JAMES = "james.smith@patients.example"
HART = "amelia.hart@hms.example"  # Cardiology, fee 150.00
_numbers = itertools.count(1)
_sources = itertools.count(1)


@pytest.fixture
def accounts(actors):
    return actors[Role.ACCOUNTS]


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def local(day: date, hour: int = 12, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=settings.TIMEZONE)


def department(engine, name: str) -> int:
    with engine.connect() as conn:
        found = conn.execute(sa.select(Department.id).where(Department.name == name)).scalar_one_or_none()
    if found is not None:
        return found
    with session_scope(engine=engine) as s:
        row = Department(name=name)
        s.add(row)
        s.commit()
        return row.id


def add_invoice(engine, *, patient: str = MARIA, status: InvoiceStatus = InvoiceStatus.ISSUED,
                issued_at: datetime | None = None, lines: Sequence[tuple] = (), payments: Sequence[tuple] = (),
                insurer: str = "", share: int = 0, claim: ClaimStatus = ClaimStatus.NONE, discount: int = 0) -> int:
    """An invoice written as the billing service leaves one: lines sum to the subtotal, payments to
    paid, and the daily totals and open balances count them.

    Args:
        lines: (kind, department name or None, service instant, cents) each.
        payments: (signed cents, method, received instant) each.
    """
    patient_id = user_id(engine, patient)
    departments = {name: department(engine, name) for _, name, _, _ in lines if name}
    subtotal = sum(cents for *_, cents in lines)
    paid = sum(cents for cents, _, _ in payments)
    issued_at = issued_at if status != InvoiceStatus.DRAFT else None
    if status != InvoiceStatus.DRAFT and issued_at is None:
        issued_at = lines[0][2] if lines else utc(2025, 1, 1, 12)
    with session_scope(engine=engine) as s:
        invoice = Invoice(
            patient_id=patient_id, status=status, subtotal_cents=subtotal, discount_cents=discount,
            total_cents=subtotal - discount, paid_cents=paid, insurer=insurer, insurer_share_cents=share,
            claim_status=claim, number=None if issued_at is None else f"TEST-{next(_numbers):06d}",
            issued_at=issued_at,
            due_date=None if issued_at is None else
            issued_at.astimezone(settings.TIMEZONE).date() + timedelta(days=billing.PAYMENT_TERMS_DAYS),
        )
        s.add(invoice)
        s.flush()
        for kind, name, at, cents in lines:
            line = InvoiceLine(invoice_id=invoice.id, kind=kind, source_type="test", source_id=next(_sources),
                               description=f"{kind} by the test", unit_price_cents=cents, amount_cents=cents,
                               department_id=departments.get(name), service_at=at)
            s.add(line)
            totals.charge_added(s, line)
        for cents, method, at in payments:
            payment = Payment(invoice_id=invoice.id, amount_cents=cents, method=method, received_at=at,
                              reason="refund by the test" if cents < 0 else "")
            s.add(payment)
            totals.payment_added(s, payment)
        s.flush()
        totals.open_part_changed(s, invoice, None)  # counted in the open balances when open
        if status == InvoiceStatus.VOID:  # billed, then voided
            totals.invoice_voided(s, invoice.id)
        s.commit()
        return invoice.id


def consult(at: datetime, cents: int, name: str | None = "Cardiology") -> tuple:
    return (ChargeKind.CONSULTATION, name, at, cents)


def summary(engine, actor, start, end) -> finance.AccountsSummary:
    with session_scope(write=False, engine=engine) as s:
        return finance.accounts_summary(session=s, actor=actor, start=start, end=end)


def export(engine, actor, report: str, start: str, end: str) -> list[list[str]]:
    with session_scope(engine=engine) as s:
        text = finance.export_accounts_csv(session=s, actor=actor, report=report, start=start, end=end)
    return list(csv.reader(io.StringIO(text)))


# --- revenue by day and by month, on the local calendar ------------------------------------------


def test_revenue_by_day_puts_charges_and_payments_on_their_local_day_across_the_spring_change(seeded, accounts):
    # London: 30 March 2025, 01:00 GMT became 02:00 BST, so that day has 23 hours.
    add_invoice(seeded, status=InvoiceStatus.PARTLY_PAID, lines=[
        consult(utc(2025, 3, 28, 23, 59), 1000),  # 28 Mar 23:59 GMT: before the range
        consult(utc(2025, 3, 29, 0, 0), 2000),  # 29 Mar 00:00 GMT
        consult(utc(2025, 3, 30, 0, 30), 300),  # 30 Mar 00:30 GMT, before the change
        consult(utc(2025, 3, 30, 22, 30), 400),  # 30 Mar 23:30 BST
        consult(utc(2025, 3, 30, 23, 30), 500),  # 31 Mar 00:30 BST, not the 30th as in UTC
        consult(utc(2025, 3, 31, 23, 0), 7000),  # 1 Apr 00:00 BST: after the range
    ], payments=[
        (1500, PaymentMethod.CASH, utc(2025, 3, 29, 23, 30)),  # 29 Mar 23:30 GMT
        (800, PaymentMethod.CARD, utc(2025, 3, 30, 23, 15)),  # 31 Mar 00:15 BST
        (-200, PaymentMethod.CASH, utc(2025, 3, 31, 22, 59)),  # 31 Mar 23:59 BST: a refund
    ])

    result = summary(seeded, accounts, "2025-03-29", "2025-03-31")

    assert result.by_day == [RevenuePeriod("2025-03-29", 2000, 1500), RevenuePeriod("2025-03-30", 700, 0),
                             RevenuePeriod("2025-03-31", 500, 600)]
    assert result.by_month == [RevenuePeriod("2025-03", 3200, 2100)]
    assert (result.headline.billed_cents, result.headline.collected_cents) == (3200, 2100)


def test_the_25_hour_day_of_the_autumn_change_holds_all_its_hours(seeded, accounts):
    # London: 26 October 2025, 02:00 BST became 01:00 GMT; the hour from 01:00 came twice.
    add_invoice(seeded, lines=[
        consult(utc(2025, 10, 24, 23, 30), 6400),  # 25 Oct 00:30 BST
        consult(utc(2025, 10, 25, 22, 59), 100),  # 25 Oct 23:59 BST
        consult(utc(2025, 10, 25, 23, 0), 200),  # 26 Oct 00:00 BST
        consult(utc(2025, 10, 26, 0, 30), 400),  # 26 Oct 01:30 BST, the first time
        consult(utc(2025, 10, 26, 1, 30), 800),  # 26 Oct 01:30 GMT, the second time
        consult(utc(2025, 10, 26, 23, 59), 1600),  # 26 Oct 23:59 GMT
        consult(utc(2025, 10, 27, 0, 0), 3200),  # 27 Oct 00:00 GMT
    ], payments=[(50, PaymentMethod.BANK_TRANSFER, utc(2025, 10, 25, 23, 30))])

    result = summary(seeded, accounts, "2025-10-25", "2025-10-27")

    assert result.by_day == [RevenuePeriod("2025-10-25", 6500, 0), RevenuePeriod("2025-10-26", 3000, 50),
                             RevenuePeriod("2025-10-27", 3200, 0)]


def test_revenue_by_month_counts_only_the_days_of_the_range_at_its_ends(seeded, accounts):
    add_invoice(seeded, lines=[
        consult(utc(2025, 3, 14, 23, 59), 50),  # 14 Mar GMT: before the range
        consult(utc(2025, 3, 15, 0, 0), 100),
        consult(utc(2025, 3, 31, 22, 59), 200),  # 31 Mar 23:59 BST
        consult(utc(2025, 3, 31, 23, 0), 400),  # 1 Apr 00:00 BST
        consult(utc(2025, 5, 10, 22, 59), 800),  # 10 May 23:59 BST
        consult(utc(2025, 5, 10, 23, 0), 1600),  # 11 May 00:00 BST: after the range
    ], payments=[(250, PaymentMethod.CARD, utc(2025, 4, 30, 23, 30))])  # 1 May 00:30 BST

    result = summary(seeded, accounts, "2025-03-15", "2025-05-10")

    assert result.by_month == [RevenuePeriod("2025-03", 300, 0), RevenuePeriod("2025-04", 400, 0),
                               RevenuePeriod("2025-05", 800, 250)]
    assert len(result.by_day) == 57
    assert result.by_day[0].period == "2025-03-15"
    assert result.by_day[-1].period == "2025-05-10"
    assert sum(r.billed_cents for r in result.by_day) == 1500
    assert result.dates.label == "15 Mar 2025 – 10 May 2025"


def test_every_day_and_month_of_the_range_is_listed_even_when_nothing_happened(seeded, accounts):
    result = summary(seeded, accounts, "2025-12-30", "2026-01-02")
    assert result.by_day == [RevenuePeriod(day, 0, 0) for day in
                             ("2025-12-30", "2025-12-31", "2026-01-01", "2026-01-02")]
    assert result.by_month == [RevenuePeriod("2025-12", 0, 0), RevenuePeriod("2026-01", 0, 0)]


# --- billed by department and kind; void invoices; collected by method -----------------------


def test_void_invoices_bill_nothing_drafts_do_and_every_payment_counts_where_it_was_received(seeded, accounts):
    day = date(2025, 6, 10)
    add_invoice(seeded, lines=[consult(local(day, 9), 15000),
                               (ChargeKind.LAB, None, local(day, 10), 2500)])
    add_invoice(seeded, patient=JAMES, status=InvoiceStatus.DRAFT,
                lines=[(ChargeKind.MEDICINE, "Orthopedics", local(day, 11), 900)])
    # Paid, refunded, then voided: billed nothing, and the money in and out both show.
    add_invoice(seeded, status=InvoiceStatus.VOID, lines=[consult(local(day, 12), 99900)], payments=[
        (5000, PaymentMethod.CARD, local(day, 13)), (-5000, PaymentMethod.CARD, local(day + timedelta(days=1), 9))])

    result = summary(seeded, accounts, "2025-06-01", "2025-06-30")

    assert result.headline.billed_cents == 18400
    assert result.by_department == [DepartmentBilled("Cardiology", 1, 15000),
                                    DepartmentBilled(finance.NO_DEPARTMENT, 1, 2500),
                                    DepartmentBilled("Orthopedics", 1, 900)]
    assert result.by_kind == [KindBilled("Consultation", 1, 15000), KindBilled("Lab test", 1, 2500),
                              KindBilled("Medicine", 1, 900)]
    by_day = {r.period: r for r in result.by_day}
    assert by_day["2025-06-10"] == RevenuePeriod("2025-06-10", 18400, 5000)
    assert by_day["2025-06-11"] == RevenuePeriod("2025-06-11", 0, -5000)
    assert result.headline.collected_cents == 0
    assert result.by_method[1] == MethodCollected("Card", 2, 5000, 5000, 0)


def test_every_kind_and_method_is_listed_even_with_nothing_in_the_range(seeded, accounts):
    result = summary(seeded, accounts, "2025-06-01", "2025-06-30")
    assert result.by_kind == [KindBilled("Consultation", 0, 0), KindBilled("Lab test", 0, 0),
                              KindBilled("Medicine", 0, 0)]
    assert result.by_method == [MethodCollected(m, 0, 0, 0, 0)
                                for m in ("Cash", "Card", "Bank transfer", "Insurance")]
    assert result.by_department == []


def _issued_consultation(engine, accounts, patient: str) -> int:
    """A consultation completed an hour ago, billed by the billing service and issued today."""
    starts = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    appointment_id = insert_appointment(engine, patient_id=user_id(engine, patient), doctor_id=user_id(engine, HART),
                                        starts_at=starts, status=AppointmentStatus.COMPLETED)
    with session_scope(engine=engine) as s:
        assert billing.charge_consultation(s, s.get(Appointment, appointment_id)) is not None
        s.commit()
        draft = s.execute(sa.select(Invoice.id).where(Invoice.status == InvoiceStatus.DRAFT.value)).scalar_one()
    call(engine, billing.issue_invoice, actor=accounts, invoice_id=draft)
    return draft


def test_payments_and_refunds_recorded_through_billing_show_today_net_of_refunds(seeded, accounts):
    invoice_id = _issued_consultation(seeded, accounts, MARIA)
    call(seeded, billing.record_payment, actor=accounts, invoice_id=invoice_id, amount="100", method="cash")
    call(seeded, billing.record_payment, actor=accounts, invoice_id=invoice_id, amount="50.00", method="card")
    call(seeded, billing.refund_payment, actor=accounts, invoice_id=invoice_id, amount="30", reason="Charged twice")
    today = local_today().isoformat()

    result = summary(seeded, accounts, today, today)

    assert result.headline.billed_cents == 15000
    assert result.headline.collected_cents == 12000
    assert result.by_day == [RevenuePeriod(today, 15000, 12000)]
    assert result.by_method == [MethodCollected("Cash", 2, 10000, 3000, 7000), MethodCollected("Card", 1, 5000, 0, 5000),
                                MethodCollected("Bank transfer", 0, 0, 0, 0), MethodCollected("Insurance", 0, 0, 0, 0)]
    assert result.by_department == [DepartmentBilled("Cardiology", 1, 15000)]
    assert result.by_age == [AgeBucket("0–30 days", 1, 3000), AgeBucket("31–60 days", 0, 0),
                             AgeBucket("61–90 days", 0, 0), AgeBucket("Over 90 days", 0, 0)]
    assert result.headline.outstanding_cents == 3000
    assert result.headline.overdue_cents == 0


# --- receivables by age and outstanding by payer, as of today ------------------------------------


def test_receivables_are_open_balances_by_days_since_issue_on_the_local_calendar(seeded, accounts):
    today = local_today()

    def issued(days_ago: int, hour: int, minute: int, balance: int, *, paid: int = 0,
               status: InvoiceStatus = InvoiceStatus.ISSUED) -> None:
        at = local(today - timedelta(days=days_ago), hour, minute)
        add_invoice(seeded, status=status, issued_at=at, lines=[consult(at, balance + paid)],
                    payments=[(paid, PaymentMethod.CASH, at)] if paid else [])

    issued(0, 8, 0, 1000)
    issued(30, 0, 10, 2000)  # 30 days old, just after local midnight: still the first bucket
    issued(31, 23, 50, 4000)  # 31 days old, just before local midnight
    issued(60, 12, 0, 8000, paid=3000, status=InvoiceStatus.PARTLY_PAID)
    issued(61, 0, 1, 16000)
    issued(90, 23, 59, 32000)
    issued(91, 12, 0, 64000)
    issued(100, 12, 0, 0, paid=5000, status=InvoiceStatus.PAID)
    add_invoice(seeded, patient=JAMES, status=InvoiceStatus.DRAFT, lines=[consult(local(today), 128000)])
    add_invoice(seeded, status=InvoiceStatus.VOID, issued_at=local(today - timedelta(days=200)),
                lines=[consult(local(today - timedelta(days=200)), 256000)])

    result = summary(seeded, accounts, today.isoformat(), today.isoformat())

    assert result.by_age == [AgeBucket("0–30 days", 2, 3000), AgeBucket("31–60 days", 2, 12000),
                             AgeBucket("61–90 days", 2, 48000), AgeBucket("Over 90 days", 1, 64000)]
    assert result.headline.outstanding_cents == 127000
    assert result.headline.open_invoices == 7
    assert result.headline.overdue_cents == 124000  # due 30 days after issue: everything older than 30 days


def test_outstanding_by_payer_splits_each_balance_between_the_insurer_and_the_patient(seeded, accounts):
    at = local(local_today() - timedelta(days=5))
    cash, insurance = PaymentMethod.CASH, PaymentMethod.INSURANCE
    ids = [
        add_invoice(seeded, insurer="Northwind Health", share=7000, claim=ClaimStatus.SUBMITTED,
                    lines=[consult(at, 10000)]),
        add_invoice(seeded, insurer="Northwind Health", share=14000, claim=ClaimStatus.APPROVED,
                    status=InvoiceStatus.PARTLY_PAID, lines=[consult(at, 20000)], payments=[(6000, cash, at)]),
        add_invoice(seeded, insurer="Contoso Mutual", share=3500, claim=ClaimStatus.REJECTED,
                    lines=[consult(at, 5000)]),
        add_invoice(seeded, insurer="Contoso Mutual", share=4000, claim=ClaimStatus.PAID,
                    status=InvoiceStatus.PARTLY_PAID, lines=[consult(at, 8000)],
                    payments=[(4000, insurance, at), (1000, cash, at)]),
        # The patient paid more than their part: the insurer is expected to pay at most the balance.
        add_invoice(seeded, insurer="Fabrikam Care", share=5000, claim=ClaimStatus.SUBMITTED,
                    status=InvoiceStatus.PARTLY_PAID, lines=[consult(at, 6000)], payments=[(3000, cash, at)]),
        add_invoice(seeded, lines=[consult(at, 2500)]),
    ]
    add_invoice(seeded, insurer="Northwind Health", share=700, claim=ClaimStatus.SUBMITTED,
                status=InvoiceStatus.PAID, lines=[consult(at, 1000)], payments=[(1000, cash, at)])

    result = summary(seeded, accounts, "2025-01-01", "2025-01-31")

    assert result.by_payer == [PayerOutstanding("Northwind Health", 2, 21000),
                               PayerOutstanding("Fabrikam Care", 1, 3000),
                               PayerOutstanding(finance.PATIENTS_PAYER, 4, 13500)]
    assert sum(p.outstanding_cents for p in result.by_payer) == result.headline.outstanding_cents == 37500
    # The patients' part is what the billing service says each patient owes.
    with session_scope(write=False, engine=seeded) as s:
        owed = 0
        for invoice_id in ids:
            invoice = s.get(Invoice, invoice_id)
            paid_by_insurer = s.execute(sa.select(sa.func.coalesce(sa.func.sum(Payment.amount_cents), 0)).where(
                Payment.invoice_id == invoice_id, Payment.method == insurance.value)).scalar_one()
            owed += billing.patient_due_cents(invoice, paid_by_insurer)
    assert owed == 13500


def test_with_nothing_open_the_payers_list_only_the_patients_owing_nothing(seeded, accounts):
    result = summary(seeded, accounts, "2025-01-01", "2025-01-31")
    assert result.by_payer == [PayerOutstanding(finance.PATIENTS_PAYER, 0, 0)]
    assert result.by_age == [AgeBucket(label, 0, 0) for label in finance.AGE_BUCKETS]


def test_looking_at_the_dashboard_writes_nothing_and_is_not_audited(seeded, accounts):
    add_invoice(seeded, lines=[consult(utc(2025, 2, 3, 12), 4200)])
    before, after_id = snapshot(seeded), last_audit_id(seeded)
    summary(seeded, accounts, "2025-02-01", "2025-02-28")
    assert snapshot(seeded) == before
    assert audit_events(seeded, after_id=after_id) == []


# --- who may see it ------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.DOCTOR, Role.LAB, Role.PHARMACY, Role.PATIENT, Role.ADMIN])
def test_only_accounts_may_see_the_figures_or_export_them(seeded, actors, role):
    actor = actors[role]
    assert_refused(seeded, actor, "accounts.dashboard", lambda s: finance.accounts_summary(
        session=s, actor=actor, start="2025-01-01", end="2025-01-31"))
    assert_refused(seeded, actor, "accounts.export", lambda s: finance.export_accounts_csv(
        session=s, actor=actor, report="revenue-by-day", start="2025-01-01", end="2025-01-31"))


def test_a_call_without_a_session_is_refused_and_audited(seeded):
    assert_refused(seeded, None, "accounts.dashboard", lambda s: finance.accounts_summary(
        session=s, actor=None, start="2025-01-01", end="2025-01-31"), error=SessionExpired)


def test_admin_sees_the_figures_once_granted_billing_manage(seeded, actors):
    call(seeded, permissions.grant_permission, actor=actors[Role.ADMIN], role="admin", permission="billing.manage")
    admin = login_as(seeded, DEMO_EMAIL[Role.ADMIN])
    assert summary(seeded, admin, "2025-01-01", "2025-01-31").headline.billed_cents == 0


def test_accounts_without_billing_manage_is_refused(seeded, actors):
    call(seeded, permissions.revoke_permission, actor=actors[Role.ADMIN], role="accounts",
         permission="billing.manage")
    accounts_now = login_as(seeded, DEMO_EMAIL[Role.ACCOUNTS])
    assert_refused(seeded, accounts_now, "accounts.dashboard", lambda s: finance.accounts_summary(
        session=s, actor=accounts_now, start="2025-01-01", end="2025-01-31"))


# --- the date range ------------------------------------------------------------------------------


@pytest.mark.parametrize(("start", "end", "message"), [
    ("", "2025-03-31", "Enter the start date, like 2026-01-31."),
    ("2025-03-01", None, "Enter the end date, like 2026-01-31."),
    ("31/03/2025", "2025-03-31", "The start date must look like 2026-01-31."),
    ("2025-02-29", "2025-03-31", "The start date must look like 2026-01-31."),
    ("2025-03-01", "2025-03-31' OR 1=1 --", "The end date must look like 2026-01-31."),
    (["2025-03-01"], "2025-03-31", "The start date must look like 2026-01-31."),
    ("2025-04-01", "2025-03-31", "The start date must not be after the end date."),
    ("2025-01-01", "2026-01-02", "A report covers at most 366 days; choose a shorter range."),
])
def test_bad_ranges_are_refused_with_a_clear_message(seeded, accounts, start, end, message):
    after_id = last_audit_id(seeded)
    with pytest.raises(ValidationError) as raised:
        summary(seeded, accounts, start, end)
    assert raised.value.message == message
    with session_scope(engine=seeded) as s, pytest.raises(ValidationError):
        finance.export_accounts_csv(session=s, actor=accounts, report="revenue-by-day", start=start, end=end)
    assert audit_events(seeded, after_id=after_id) == []


def test_a_range_of_366_days_and_one_of_a_single_day_are_accepted(seeded, accounts):
    assert len(summary(seeded, accounts, "2025-01-01", "2026-01-01").by_day) == 366
    assert len(summary(seeded, accounts, "2025-01-01", "2026-01-01").by_month) == 13
    assert summary(seeded, accounts, " 2025-07-04 ", "2025-07-04").by_day == [RevenuePeriod("2025-07-04", 0, 0)]


def test_the_default_range_is_the_last_30_days_up_to_today():
    start, end = finance.default_range()
    assert end == local_today().isoformat()
    assert (date.fromisoformat(end) - date.fromisoformat(start)).days == 29


# --- CSV -----------------------------------------------------------------------------------------


def test_each_chart_exports_its_figures_in_cents_and_the_export_is_audited(seeded, accounts):
    add_invoice(seeded, lines=[consult(utc(2025, 6, 2, 12), 15000), (ChargeKind.LAB, None, utc(2025, 6, 3, 12), 2500)],
                payments=[(10000, PaymentMethod.CARD, utc(2025, 6, 3, 15)), (-1000, PaymentMethod.CARD,
                                                                           utc(2025, 6, 4, 9))],
                status=InvoiceStatus.PARTLY_PAID)
    after_id = last_audit_id(seeded)

    by_day = export(seeded, accounts, "revenue-by-day", "2025-06-02", "2025-06-04")
    assert by_day == [["Period", "Billed (cents)", "Collected (cents)"], ["2025-06-02", "15000", "0"],
                      ["2025-06-03", "2500", "10000"], ["2025-06-04", "0", "-1000"]]
    assert export(seeded, accounts, "collected-by-method", "2025-06-02", "2025-06-04")[:3] == [
        ["Payment method", "Payments", "Received (cents)", "Refunded (cents)", "Collected (cents)"],
        ["Cash", "0", "0", "0", "0"], ["Card", "2", "10000", "1000", "9000"]]
    assert export(seeded, accounts, "receivables-by-age", "2025-06-02", "2025-06-04")[0] == [
        "Age", "Invoices", "Outstanding (cents)"]

    events = audit_events(seeded, after_id=after_id)
    assert [(e.action, e.entity_id, e.detail) for e in events] == [
        ("accounts.export", "revenue-by-day", "2025-06-02..2025-06-04; 3 rows"),
        ("accounts.export", "collected-by-method", "2025-06-02..2025-06-04; 4 rows"),
        ("accounts.export", "receivables-by-age", "2025-06-02..2025-06-04; 4 rows"),
    ]
    assert {e.actor_id for e in events} == {accounts.user_id}


@pytest.mark.parametrize("report", list(finance.REPORTS))
def test_every_chart_exports_its_header_even_when_empty(seeded, accounts, report):
    rows = export(seeded, accounts, report, "2025-01-01", "2025-01-31")
    assert rows[0] == [spreadsheet.COLUMN_NAMES[f.name] for f in fields(finance.REPORTS[report].row_type)]


def test_names_typed_like_formulas_are_defused_in_the_csv(seeded, accounts):
    at = utc(2025, 6, 2, 12)
    add_invoice(seeded, lines=[consult(at, 700, name='=HYPERLINK("http://evil.example","x")')])
    add_invoice(seeded, insurer="+Evil Insurance", share=500, claim=ClaimStatus.SUBMITTED,
                lines=[consult(at, 900, name="@SUM(A1)")])

    departments = export(seeded, accounts, "billed-by-department", "2025-06-01", "2025-06-30")
    payers = export(seeded, accounts, "outstanding-by-payer", "2025-06-01", "2025-06-30")

    assert departments[1:] == [["'@SUM(A1)", "1", "900"], ["'=HYPERLINK(\"http://evil.example\",\"x\")", "1", "700"]]
    assert payers[1:] == [["'+Evil Insurance", "1", "500"], [finance.PATIENTS_PAYER, "2", "1100"]]


def test_an_unknown_report_is_refused_and_nothing_is_audited(seeded, accounts):
    after_id = last_audit_id(seeded)
    with session_scope(engine=seeded) as s, pytest.raises(ValidationError) as raised:
        finance.export_accounts_csv(session=s, actor=accounts, report="../../etc/passwd", start="2025-01-01",
                                    end="2025-01-31")
    assert raised.value.message == "Choose one of the charts on the page to export."
    assert audit_events(seeded, after_id=after_id) == []


# --- the demo hospital's billing history ---------------------------------------------------------


def test_the_demo_history_is_consistent_and_fills_every_chart(empty_hospital):
    with session_scope(engine=empty_hospital) as s:  # the history alone: the day under way adds today's drafts
        assert demo.seed_demo(s, work_in_progress=False)
    with session_scope(write=False, engine=empty_hospital) as s:
        invoices = s.execute(sa.select(Invoice).order_by(Invoice.issued_at)).scalars().all()
        line_sums = dict(s.execute(sa.select(InvoiceLine.invoice_id, sa.func.sum(InvoiceLine.amount_cents))
                                   .group_by(InvoiceLine.invoice_id)).all())
        paid_sums = dict(s.execute(sa.select(Payment.invoice_id, sa.func.sum(Payment.amount_cents))
                                   .group_by(Payment.invoice_id)).all())
        maria = s.execute(sa.select(User.id).where(User.email == MARIA)).scalar_one()
        now = datetime.now(UTC)
        latest = max([*s.execute(sa.select(Payment.received_at)).scalars(),
                      *s.execute(sa.select(InvoiceLine.service_at)).scalars(), *(i.issued_at for i in invoices)])
    assert len(invoices) == demo.DEMO_VISITS
    assert latest < now
    assert all(i.patient_id != maria for i in invoices)
    statuses = {str(i.status) for i in invoices}
    assert statuses == {"issued", "partly_paid", "paid", "void"}
    for invoice in invoices:
        assert line_sums[invoice.id] == invoice.subtotal_cents
        assert invoice.total_cents == invoice.subtotal_cents - invoice.discount_cents
        assert int(paid_sums.get(invoice.id) or 0) == invoice.paid_cents
        expected = ("void" if str(invoice.status) == "void" else "paid" if invoice.paid_cents >= invoice.total_cents
                    else "partly_paid" if invoice.paid_cents else "issued")
        assert str(invoice.status) == expected
        assert invoice.due_date == (invoice.issued_at.astimezone(settings.TIMEZONE).date()
                                    + timedelta(days=billing.PAYMENT_TERMS_DAYS))
    by_year: dict[int, list[str]] = {}
    for invoice in invoices:
        by_year.setdefault(invoice.issued_at.astimezone(settings.TIMEZONE).year, []).append(invoice.number)
    for year, numbers in by_year.items():
        assert numbers == [f"INV-{year}-{n:06d}" for n in range(1, len(numbers) + 1)]

    accounts = login_as(empty_hospital, DEMO_EMAIL[Role.ACCOUNTS])
    today = local_today()
    result = summary(empty_hospital, accounts, (today - timedelta(days=89)).isoformat(), today.isoformat())
    assert result.headline.billed_cents > 0
    assert result.headline.collected_cents > 0
    assert all(bucket.invoices > 0 for bucket in result.by_age)
    assert all(kind.billed_cents > 0 for kind in result.by_kind)
    assert all(method.collected_cents > 0 for method in result.by_method)
    assert any(p.payer != finance.PATIENTS_PAYER for p in result.by_payer)
    assert result.by_payer[-1].outstanding_cents > 0
    assert any(m.refunded_cents for m in result.by_method)

"""The daily totals behind the accounts dashboard: kept by upsert in the transaction of each
charge, payment, refund and void, filled by migration 0015 and the seeds, equal to a recount of
the lines and payments (the dashboard's former query), and checked by ``hms verify-totals``."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
from alembic import command

from hms_app import cli
from hms_app.db.engine import session_scope
from hms_app.db.enums import ChargeKind, InvoiceStatus, PaymentMethod, Role
from hms_app.db.migrate import alembic_config, upgrade
from hms_app.db.models import (
    DailyBilled,
    DailyCollected,
    Invoice,
    InvoiceLine,
    OpenBalance,
    PatientProfile,
    Payment,
    User,
)
from hms_app.services.accounting import billing, finance, totals
from hms_app.services.core.errors import ValidationError
from hms_app.services.core.localtime import local_today
from tests.conftest import DEMO_EMAIL, login_as, seed_demo_into
from tests.services.appointment_helpers import call, department_id, user_id
from tests.services.billing_helpers import (
    CHEN,
    HART,
    JAMES,
    ORTEGA,
    charge,
    completed_appointment,
    expiry,
    fee,
    issued,
)

pytestmark = pytest.mark.db

MARIA = "maria.garcia@patients.example"


@pytest.fixture
def accounts(actors):
    return actors[Role.ACCOUNTS]


@pytest.fixture
def history(engine, _demo_templates):
    """The demo hospital with its four months of invoices, payments, a refund and a void."""
    return seed_demo_into(engine, _demo_templates, billing_history=True)


def _accounts(engine):
    return login_as(engine, DEMO_EMAIL[Role.ACCOUNTS])


def kept(engine) -> tuple[dict, dict]:
    """Both tables as {key: sums}, rows at zero (a voided day's) left out."""
    with engine.connect() as conn:
        billed = {(d, dep, str(k)): (n, c) for d, dep, k, n, c in conn.execute(sa.select(
            DailyBilled.day, DailyBilled.department_id, DailyBilled.kind, DailyBilled.charges,
            DailyBilled.billed_cents)) if n or c}
        collected = {(d, str(m)): (n, r, f) for d, m, n, r, f in conn.execute(sa.select(
            DailyCollected.day, DailyCollected.method, DailyCollected.payments, DailyCollected.received_cents,
            DailyCollected.refunded_cents))}
    return billed, collected


def both_ways(engine, actor, start: str, end: str) -> tuple[finance.AccountsSummary, finance.AccountsSummary]:
    """The dashboard from the totals, and the same figures summed from the rows."""
    with session_scope(write=False, engine=engine) as s:
        return (finance.accounts_summary(session=s, actor=actor, start=start, end=end),
                finance.recounted_summary(s, start, end))


def kept_open(engine) -> dict:
    """The open balances as {key: sums}, rows at zero (every invoice of theirs paid) left out."""
    columns = [OpenBalance.__table__.c[name] for name in (*totals._OPEN_KEY, *totals._OPEN_AMOUNTS)]
    with engine.connect() as conn:
        return {(issued, due, insurer): tuple(amounts)
                for issued, due, insurer, *amounts in conn.execute(sa.select(*columns)) if any(amounts)}


def receivables_agree(engine, actor) -> finance.AccountsSummary:
    """Receivables by age and by payer from the open balances equal the recount of the open invoices."""
    today = local_today().isoformat()
    from_totals, recounted = both_ways(engine, actor, today, today)
    assert (from_totals.by_age, from_totals.by_payer, from_totals.headline) == (
        recounted.by_age, recounted.by_payer, recounted.headline)
    assert mismatches(engine) == []
    return from_totals


def mismatches(engine) -> list[str]:
    with session_scope(write=False, engine=engine) as s:
        return totals.totals_mismatches(s)


# --- the upsert ----------------------------------------------------------------------------------


def test_charges_add_to_one_row_per_local_day_department_and_kind(seeded):
    cardiology = department_id(seeded, "Cardiology")
    summer_evening = datetime(2025, 7, 1, 23, 30, tzinfo=UTC)  # 2 July 00:30 BST
    with session_scope(engine=seeded) as s:
        invoice = Invoice(patient_id=user_id(seeded, MARIA))
        s.add(invoice)
        s.flush()
        for source_id, (at, cents, department) in enumerate([
            (summer_evening, 1000, cardiology), (summer_evening + timedelta(hours=5), 250, cardiology),
            (summer_evening - timedelta(hours=1), 40, cardiology),  # 1 July 23:30 BST
            (summer_evening, 7, None),
        ]):
            line = InvoiceLine(invoice_id=invoice.id, kind=ChargeKind.LAB, source_type="test", source_id=source_id,
                               description="test", amount_cents=cents, department_id=department, service_at=at)
            s.add(line)
            totals.charge_added(s, line)
        s.commit()
    assert kept(seeded)[0] == {
        (date(2025, 7, 1), cardiology, "lab"): (1, 40),
        (date(2025, 7, 2), cardiology, "lab"): (2, 1250),
        (date(2025, 7, 2), totals.NO_DEPARTMENT_ID, "lab"): (1, 7),
    }
    assert mismatches(seeded) == []


def test_payments_and_refunds_add_to_their_day_and_method(seeded, accounts):
    invoice_id = issued(seeded, accounts, user_id(seeded, MARIA), HART)
    call(seeded, billing.record_payment, actor=accounts, invoice_id=invoice_id, amount="100", method="cash")
    call(seeded, billing.record_payment, actor=accounts, invoice_id=invoice_id, amount="20", method="cash")
    call(seeded, billing.refund_payment, actor=accounts, invoice_id=invoice_id, amount="30", reason="Charged twice")
    call(seeded, billing.record_payment, actor=accounts, invoice_id=invoice_id, amount="5", method="card")
    assert kept(seeded)[1] == {(local_today(), "cash"): (3, 12000, 3000), (local_today(), "card"): (1, 500, 0)}


def test_a_refused_payment_changes_no_total(seeded, accounts):
    invoice_id = issued(seeded, accounts, user_id(seeded, MARIA), HART)
    before = kept(seeded)
    with pytest.raises(ValidationError):
        call(seeded, billing.record_payment, actor=accounts, invoice_id=invoice_id, amount="10000", method="cash")
    assert kept(seeded) == before


def test_voiding_takes_the_invoices_charges_off_and_leaves_its_payments(seeded, accounts):
    maria, james = user_id(seeded, MARIA), user_id(seeded, JAMES)
    issued(seeded, accounts, maria, HART)
    voided_id = issued(seeded, accounts, james, HART, ORTEGA)
    call(seeded, billing.record_payment, actor=accounts, invoice_id=voided_id, amount="10", method="card")
    call(seeded, billing.refund_payment, actor=accounts, invoice_id=voided_id, amount="10", reason="Wrong patient",
         method="card")
    call(seeded, billing.void_invoice, actor=accounts, invoice_id=voided_id, reason="Wrong patient")
    billed, collected = kept(seeded)
    today = local_today()
    assert billed == {(today, department_id(seeded, "Cardiology"), "consultation"): (1, fee(seeded, HART))}
    assert collected == {(today, "card"): (2, 1000, 1000)}
    assert mismatches(seeded) == []


def test_a_charge_rolled_back_leaves_no_total_behind(seeded):
    # A charge rolled back leaves no total behind: the upsert is part of the same transaction.
    appointment = completed_appointment(seeded, HART, user_id(seeded, MARIA))
    with session_scope(engine=seeded) as s:
        assert billing.charge_consultation(s, appointment) is not None
        s.rollback()
    assert kept(seeded) == ({}, {})


def test_charges_made_at_once_are_all_counted(seeded):
    # Eight patients' consultations billed at the same moment all land on one day's row.
    with seeded.connect() as conn:
        patients = list(conn.execute(sa.select(User.id).where(User.role == Role.PATIENT).order_by(User.id)
                                     .limit(8)).scalars())
    visits = [completed_appointment(seeded, HART, patient) for patient in patients]
    barrier = threading.Barrier(len(visits))

    def bill(visit) -> int | None:
        barrier.wait()
        with session_scope(engine=seeded) as s:
            line = billing.charge_consultation(s, visit)
            s.commit()
            return line

    with ThreadPoolExecutor(len(visits)) as pool:
        lines = list(pool.map(bill, visits))
    assert all(lines)
    assert kept(seeded)[0] == {(local_today(), department_id(seeded, "Cardiology"), "consultation"):
                               (len(visits), len(visits) * fee(seeded, HART))}
    assert mismatches(seeded) == []


def test_payments_made_at_once_are_all_counted(seeded, accounts):
    with seeded.connect() as conn:
        patients = list(conn.execute(sa.select(User.id).where(User.role == Role.PATIENT).order_by(User.id)
                                     .limit(6)).scalars())
    invoices = [issued(seeded, accounts, patient, CHEN) for patient in patients]
    barrier = threading.Barrier(len(invoices))

    def pay(invoice_id: int) -> str:
        barrier.wait()
        return call(seeded, billing.record_payment, actor=accounts, invoice_id=invoice_id, amount="1.25",
                    method="bank_transfer")

    with ThreadPoolExecutor(len(invoices)) as pool:
        assert all(pool.map(pay, invoices))
    assert kept(seeded)[1] == {(local_today(), "bank_transfer"): (len(invoices), 125 * len(invoices), 0)}
    # All issued today and due alike: the same few open balance rows, each payment taken off once.
    rows = kept_open(seeded).values()
    assert len(rows) < len(invoices)
    assert (sum(r[0] for r in rows), sum(r[1] for r in rows)) == (len(invoices), (fee(seeded, CHEN) - 125) * len(invoices))
    assert mismatches(seeded) == []


# --- the dashboard equals the recount ------------------------------------------------------------


def test_on_the_demo_history_the_dashboard_equals_the_recount(history):
    accounts = _accounts(history)
    today = local_today()
    for days in (1, 30, 120, 366):  # per day up to 92 days, per month beyond
        start = (today - timedelta(days=days - 1)).isoformat()
        from_totals, recounted = both_ways(history, accounts, start, today.isoformat())
        assert from_totals == recounted
    assert from_totals.headline.billed_cents > 0
    assert any(m.refunded_cents for m in from_totals.by_method)
    # Receivables in every age bucket, owed by insurers and patients, some overdue: all compared above.
    assert all(b.invoices for b in from_totals.by_age), from_totals.by_age
    assert len(from_totals.by_payer) > 1
    assert all(p.outstanding_cents for p in from_totals.by_payer)
    assert from_totals.headline.overdue_cents > 0
    with history.connect() as conn:  # the history holds a void invoice, whose lines the totals leave out
        assert conn.execute(sa.select(sa.func.count()).select_from(Invoice)
                            .where(Invoice.status == InvoiceStatus.VOID.value)).scalar_one() > 0
    assert mismatches(history) == []


def test_after_charges_payments_refunds_and_voids_the_dashboard_equals_the_recount(history):
    accounts = _accounts(history)
    maria, james = user_id(history, MARIA), user_id(history, JAMES)
    paid = issued(history, accounts, maria, HART, ORTEGA)
    call(history, billing.record_payment, actor=accounts, invoice_id=paid, amount="100", method="cash")
    call(history, billing.record_payment, actor=accounts, invoice_id=paid, amount="50.50", method="insurance")
    call(history, billing.refund_payment, actor=accounts, invoice_id=paid, amount="12.34", reason="Goodwill gesture")
    draft = charge(history, james, CHEN)  # the only General Medicine charge of the day, voided as a draft
    call(history, billing.void_invoice, actor=accounts, invoice_id=draft, reason="Billed in error")
    charge(history, james, HART)  # a new draft after the void
    today = local_today()

    for start in (today, today - timedelta(days=200)):
        from_totals, recounted = both_ways(history, accounts, start.isoformat(), today.isoformat())
        assert from_totals == recounted
    day, _ = both_ways(history, accounts, today.isoformat(), today.isoformat())
    assert "General Medicine" not in {d.department for d in day.by_department}
    assert day.headline.billed_cents == 2 * fee(history, HART) + fee(history, ORTEGA)
    assert day.headline.collected_cents == 10000 + 5050 - 1234
    assert mismatches(history) == []


def _patient_with_insurer(engine, insured: bool) -> tuple[int, str]:
    with engine.connect() as conn:
        return conn.execute(sa.select(User.id, User.email).join(PatientProfile, PatientProfile.user_id == User.id)
                            .where((PatientProfile.insurer != "") if insured else (PatientProfile.insurer == ""))
                            .order_by(User.id).limit(1)).one()


def test_every_change_of_an_open_invoice_keeps_the_receivables_equal_to_the_recount(history):
    accounts = _accounts(history)
    insured_id, insured_email = _patient_with_insurer(history, insured=True)
    uninsured_id, _ = _patient_with_insurer(history, insured=False)
    before = receivables_agree(history, accounts)

    claimed = issued(history, accounts, insured_id, HART, ORTEGA)
    total = fee(history, HART) + fee(history, ORTEGA)
    after = receivables_agree(history, accounts)
    assert after.by_age[0].outstanding_cents == before.by_age[0].outstanding_cents + total
    assert after.headline.open_invoices == before.headline.open_invoices + 1
    steps = [
        (billing.apply_discount, {"amount": "10", "reason": "Loyal patient"}),
        (billing.set_insurer_share, {"amount": "60"}),
        (billing.record_payment, {"amount": "25", "method": "cash"}),
        (billing.refund_payment, {"amount": "5", "reason": "Counted twice"}),
        (billing.move_claim, {"to_status": "submitted"}),
        (billing.move_claim, {"to_status": "approved"}),
        (billing.record_payment, {"amount": "20", "method": "insurance"}),  # part of the share, by hand
    ]
    for service, form in steps:
        call(history, service, actor=accounts, invoice_id=claimed, **form)
        receivables_agree(history, accounts)
    patient = login_as(history, insured_email)
    call(history, billing.pay_online, actor=patient, invoice_id=claimed, card_number="4242424242424242",
         expiry=expiry(), cvc="123", idempotency_key=billing.new_payment_key())  # what the patient owes
    receivables_agree(history, accounts)
    call(history, billing.move_claim, actor=accounts, invoice_id=claimed, to_status="paid")  # the rest of the share
    assert str(invoice_status(history, claimed)) == InvoiceStatus.PAID
    assert receivables_agree(history, accounts).by_age == before.by_age

    rejected = issued(history, accounts, insured_id, CHEN)
    for service, form in [(billing.set_insurer_share, {"amount": "40"}), (billing.move_claim, {"to_status": "submitted"}),
                          (billing.move_claim, {"to_status": "rejected", "note": "Not covered by the policy"})]:
        call(history, service, actor=accounts, invoice_id=rejected, **form)
        receivables_agree(history, accounts)
    voided = issued(history, accounts, uninsured_id, HART)
    receivables_agree(history, accounts)
    call(history, billing.void_invoice, actor=accounts, invoice_id=voided, reason="Billed in error")
    final = receivables_agree(history, accounts)
    assert final.headline.outstanding_cents == before.headline.outstanding_cents + fee(history, CHEN)


def invoice_status(engine, invoice_id: int) -> str:
    with engine.connect() as conn:
        return conn.execute(sa.select(Invoice.status).where(Invoice.id == invoice_id)).scalar_one()


# --- the migration's backfill --------------------------------------------------------------------


def test_the_migration_fills_the_totals_from_the_lines_and_payments(history):
    with session_scope(engine=history) as s:  # a payment near midnight in summer, on its local day
        invoice_id = s.execute(sa.select(Invoice.id).where(Invoice.status == InvoiceStatus.PAID.value)
                               .limit(1)).scalar_one()
        s.add(Payment(invoice_id=invoice_id, amount_cents=1, method=PaymentMethod.CASH,
                      received_at=datetime(2025, 7, 1, 23, 30, tzinfo=UTC)))
        s.add(Payment(invoice_id=invoice_id, amount_cents=-1, method=PaymentMethod.CASH,
                      received_at=datetime(2025, 7, 1, 22, 30, tzinfo=UTC)))
        s.commit()
    expected_billed, expected_collected = kept(history)
    expected_open = kept_open(history)
    expected_collected[(date(2025, 7, 2), "cash")] = (1, 1, 0)
    expected_collected[(date(2025, 7, 1), "cash")] = (1, 0, 1)
    url = history.url.render_as_string(hide_password=False)
    history.dispose()
    command.downgrade(alembic_config(url), "0014")
    with history.connect() as conn:
        assert not {"daily_billed", "daily_collected", "open_balance"} & set(sa.inspect(conn).get_table_names())
    history.dispose()
    upgrade(url)
    assert kept(history) == (expected_billed, expected_collected)
    assert len(expected_billed) > 20
    assert kept_open(history) == expected_open
    assert len(expected_open) > 5
    assert mismatches(history) == []


def test_the_migration_runs_on_a_database_without_money(engine):
    url = engine.url.render_as_string(hide_password=False)
    command.downgrade(alembic_config(url), "0014")
    upgrade(url)
    assert kept(engine) == ({}, {})
    assert kept_open(engine) == {}


# --- hms verify-totals ---------------------------------------------------------------------------


def test_verify_totals_finds_a_tampered_total(history, capsys):
    assert cli.main(["verify-totals"]) == 0
    assert "daily totals agree" in capsys.readouterr().out

    with history.begin() as conn:
        day, department, kind, cents = conn.execute(
            sa.select(DailyBilled.day, DailyBilled.department_id, DailyBilled.kind, DailyBilled.billed_cents)
            .order_by(DailyBilled.day.desc()).limit(1)).one()
        conn.execute(sa.update(DailyBilled).where(DailyBilled.day == day, DailyBilled.department_id == department,
                                                  DailyBilled.kind == kind)
                     .values(billed_cents=DailyBilled.billed_cents + 1))
    assert cli.main(["verify-totals"]) == 2
    err = capsys.readouterr().err
    assert f"billed {day.isoformat()}, department {department}, {kind}:" in err
    assert f"{cents + 1} cents, the lines sum to" in err
    assert len(err.strip().splitlines()) == 1


def test_verify_totals_finds_a_payment_written_behind_the_totals_and_the_rebuild_repairs_it(history, capsys):
    with session_scope(engine=history) as s:
        invoice_id = s.execute(sa.select(Invoice.id).limit(1)).scalar_one()
        s.add(Payment(invoice_id=invoice_id, amount_cents=-700, method=PaymentMethod.CARD,
                      received_at=datetime(2024, 2, 29, 12, tzinfo=UTC)))
        s.commit()
    assert cli.main(["verify-totals"]) == 2
    assert ("collected 2024-02-29, card: kept 0 payments 0 in 0 refunded (cents), the payments sum to "
            "1 payments 0 in 700 refunded") in capsys.readouterr().err

    with session_scope(engine=history) as s:
        totals.rebuild_daily_totals(s)
        s.commit()
    assert cli.main(["verify-totals"]) == 0


def test_verify_totals_finds_a_tampered_open_balance_and_the_rebuild_repairs_it(history, capsys):
    with history.begin() as conn:
        issued_day, due, insurer = conn.execute(
            sa.select(OpenBalance.issued_day, OpenBalance.due_date, OpenBalance.insurer)
            .where(OpenBalance.invoices > 0).order_by(OpenBalance.issued_day.desc()).limit(1)).one()
        conn.execute(sa.update(OpenBalance).where(OpenBalance.issued_day == issued_day, OpenBalance.due_date == due,
                                                  OpenBalance.insurer == insurer)
                     .values(patients_cents=OpenBalance.patients_cents + 1))
    assert cli.main(["verify-totals"]) == 2
    err = capsys.readouterr().err
    assert f"open balances issued {issued_day.isoformat()}, due {due.isoformat()}, {insurer or 'no insurer'}:" in err
    assert len(err.strip().splitlines()) == 1

    with session_scope(engine=history) as s:
        totals.rebuild_open_balances(s)
        s.commit()
    assert cli.main(["verify-totals"]) == 0

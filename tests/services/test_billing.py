"""Billing: every completed service billed once on the patient's one draft invoice, issuing with
gap-free yearly numbers, discounts, payments and refunds that keep the books whole, online card
payment with an idempotency key, insurance shares and claims, the invoice PDF, voiding, the
accounts' list and the patient's own, who may do any of it, and money moved at the same moment."""

from __future__ import annotations

import itertools
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hms_app.db.engine import session_scope
from hms_app.db.enums import Role
from hms_app.db.models import (
    Appointment,
    Department,
    Dispensation,
    Invoice,
    LabOrder,
    LabTest,
    PatientProfile,
    User,
)
from hms_app.services.accounting import billing
from hms_app.services.administration import permissions
from hms_app.services.booking import appointments
from hms_app.services.core import audit
from hms_app.services.core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from hms_app.services.core.localtime import format_date, local_today
from hms_app.services.laboratory import lab
from hms_app.services.medicines import inventory
from tests.conftest import login_as
from tests.services.appointment_helpers import (
    appointment,
    call,
    insert_appointment,
    last_notification_id,
    notifications_since,
    user_id,
)
from tests.services.billing_helpers import (
    AISHA,
    CHEN,
    CVC,
    HART,
    JAMES,
    MEHTA,
    ORTEGA,
    OTHER_VALID_CARD,
    VALID_CARD,
    all_at_once,
    all_lines,
    amounts_paid,
    charge,
    completed_appointment,
    counter_value,
    draft_of,
    expiry,
    fee,
    in_own_session,
    invoice,
    invoices_of,
    issued,
    lines,
    money,
    new_accounts_clerk,
    payments,
    year_prefix,
)
from tests.services.clinical_helpers import (
    care_appointment,
    open_visit,
    past_start,
    raw_database_text,
    use_private_data_dir,
)
from tests.services.helpers import assert_refused, audit_events, last_audit_id, snapshot
from tests.services.lab_helpers import order, pdf_text, running
from tests.services.pharmacy_helpers import (
    dispense,
    in_days,
    item_ids,
    new_medicine,
    prescribe,
    receive,
    verify,
)

pytestmark = pytest.mark.db

NOT_BILLING = [Role.DOCTOR, Role.LAB, Role.PHARMACY, Role.ADMIN, Role.PATIENT]
STAFF = [Role.ACCOUNTS, Role.ADMIN, Role.DOCTOR, Role.LAB, Role.PHARMACY]
_keys = itertools.count(1)


@pytest.fixture(autouse=True)
def _private_data(monkeypatch, tmp_path):
    yield from use_private_data_dir(monkeypatch, tmp_path)


@pytest.fixture
def accounts(actors):
    return actors[Role.ACCOUNTS]


@pytest.fixture
def doctor(actors):
    """Dr Amelia Hart, Cardiology, consultation fee 150.00."""
    return actors[Role.DOCTOR]


@pytest.fixture
def patient(actors):
    """Maria Garcia: no insurer on record."""
    return actors[Role.PATIENT]


@pytest.fixture
def insured(seeded):
    """James Smith: Northwind Health, policy POL-100001."""
    return login_as(seeded, JAMES)


def _key() -> str:
    """A fresh idempotency key of the length the payment form gets."""
    return f"test-payment-key-{next(_keys):08d}"


def _refused(engine, error, service, **kwargs) -> str:
    """A call that must fail with ``error`` and change no table; returns its message."""
    before = snapshot(engine)
    with session_scope(engine=engine) as s, pytest.raises(error) as raised:
        service(session=s, **kwargs)
    assert snapshot(engine) == before, "a refused call changed the database"
    return raised.value.message


def _books_balance(engine, invoice_id: int) -> None:
    """The invoice's arithmetic agrees with its lines and payments."""
    row = invoice(engine, invoice_id)
    assert row.subtotal_cents == sum(line.amount_cents for line in lines(engine, invoice_id))
    assert row.total_cents == row.subtotal_cents - row.discount_cents
    assert row.paid_cents == sum(p.amount_cents for p in payments(engine, invoice_id))
    assert 0 <= row.paid_cents <= row.total_cents


def _number(engine, invoice_id: int) -> str:
    return invoice(engine, invoice_id).number


def _department(engine, name: str) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(Department.id).where(Department.name == name)).scalar_one()


def _pay(engine, accounts, invoice_id: int, amount: str, method: str = "cash") -> str:
    return call(engine, billing.record_payment, actor=accounts, invoice_id=invoice_id, amount=amount, method=method)


def _mine(engine, actor) -> dict[int, billing.InvoiceRow]:
    return {row.id: row for row in call(engine, billing.my_invoices, actor=actor, page_size=100).rows}


# --- charges ---------------------------------------------------------------------------------------


def test_completing_an_appointment_bills_the_doctors_fee_with_its_department(seeded, doctor, patient):
    appointment_id = care_appointment(seeded, doctor, patient.user_id)
    missed_id = care_appointment(seeded, doctor, patient.user_id)

    call(seeded, appointments.mark_no_show, actor=doctor, appointment_id=missed_id)
    assert invoices_of(seeded, patient.user_id) == []  # a missed appointment is not billed

    call(seeded, appointments.complete_appointment, actor=doctor, appointment_id=appointment_id)

    draft = draft_of(seeded, patient.user_id)
    [line] = lines(seeded, draft.id)
    day = format_date(appointment(seeded, appointment_id).starts_at)
    assert fee(seeded, HART) == 15000
    assert (str(line.kind), line.source_type, line.source_id, line.description, line.quantity,
            line.unit_price_cents, line.amount_cents, line.department_id) == (
        "consultation", "appointment", appointment_id, f"Consultation with Dr. Amelia Hart, {day}", 1, 15000,
        15000, _department(seeded, "Cardiology"))
    assert money(seeded, draft.id) == (15000, 0, 15000, 0, "draft")
    assert (draft.number, draft.due_date, draft.issued_at) == (None, None, None)


def test_a_consultation_is_billed_to_the_appointments_department(seeded, patient):
    ortega = login_as(seeded, ORTEGA)
    appointment_id = insert_appointment(seeded, patient_id=patient.user_id, doctor_id=ortega.user_id,
                                        starts_at=past_start(), department="Orthopedics")

    call(seeded, appointments.complete_appointment, actor=ortega, appointment_id=appointment_id)

    [line] = lines(seeded, draft_of(seeded, patient.user_id).id)
    assert (line.unit_price_cents, line.department_id) == (12000, _department(seeded, "Orthopedics"))


def test_entering_a_lab_result_bills_the_catalog_price(seeded, doctor, patient, actors):
    encounter_id = open_visit(seeded, doctor, patient.user_id)
    order_id = running(seeded, actors[Role.LAB], order(seeded, doctor, encounter_id, "HBA1C"))
    assert invoices_of(seeded, patient.user_id) == []  # ordered, collected and started: not billed yet

    call(seeded, lab.enter_result, actor=actors[Role.LAB], order_id=order_id, value="38")

    with seeded.connect() as conn:
        price = conn.execute(sa.select(LabTest.price_cents).where(LabTest.code == "HBA1C")).scalar_one()
    assert price == 1200
    draft = draft_of(seeded, patient.user_id)
    [line] = lines(seeded, draft.id)
    assert (str(line.kind), line.source_type, line.source_id, line.description, line.quantity,
            line.unit_price_cents, line.amount_cents, line.department_id) == (
        "lab", "lab_order", order_id, "Lab test: HbA1c", 1, 1200, 1200, _department(seeded, "Cardiology"))
    assert money(seeded, draft.id) == (1200, 0, 1200, 0, "draft")


def test_dispensing_bills_each_lot_drawn_on_at_the_price_when_dispensed(seeded, doctor, patient, actors):
    pharmacist = actors[Role.PHARMACY]
    medicine = new_medicine(seeded, pharmacist, name="Billomycin", strength="250 mg", price="0.80")
    receive(seeded, pharmacist, medicine, "LATER", in_days(200), 30)
    receive(seeded, pharmacist, medicine, "FIRST", in_days(60), 5)
    prescription_id = verify(seeded, pharmacist, prescribe(seeded, doctor, open_visit(seeded, doctor, patient.user_id),
                                                           (medicine, 20)))
    [item_id] = item_ids(seeded, prescription_id)

    dispense(seeded, pharmacist, prescription_id, {item_id: 12})  # 5 from FIRST, 7 from LATER
    call(seeded, inventory.update_medicine, actor=pharmacist, medicine_id=medicine, unit_price="1.10",
         reorder_level=10)
    dispense(seeded, pharmacist, prescription_id, {item_id: 8})

    with seeded.connect() as conn:
        drawn = list(conn.execute(sa.select(Dispensation.id).where(Dispensation.prescription_id == prescription_id)
                                  .order_by(Dispensation.id)).scalars())
    draft = draft_of(seeded, patient.user_id)
    label = "Billomycin 250 mg tablet"
    assert [(str(x.kind), x.source_type, x.source_id, x.description, x.quantity, x.unit_price_cents, x.amount_cents)
            for x in lines(seeded, draft.id)] == [
        ("medicine", "dispensation", drawn[0], f"{label} × 5", 5, 80, 400),
        ("medicine", "dispensation", drawn[1], f"{label} × 7", 7, 80, 560),
        ("medicine", "dispensation", drawn[2], f"{label} × 8", 8, 110, 880),
    ]
    assert {x.department_id for x in lines(seeded, draft.id)} == {_department(seeded, "Cardiology")}
    assert money(seeded, draft.id) == (1840, 0, 1840, 0, "draft")


def test_every_kind_of_charge_lands_on_the_patients_one_draft(seeded, doctor, patient, actors):
    pharmacist = actors[Role.PHARMACY]
    encounter_id = open_visit(seeded, doctor, patient.user_id)
    order_id = running(seeded, actors[Role.LAB], order(seeded, doctor, encounter_id, "NA"))
    medicine = new_medicine(seeded, pharmacist, price="2.50")
    receive(seeded, pharmacist, medicine, "ONE", in_days(90), 10)
    prescription_id = verify(seeded, pharmacist, prescribe(seeded, doctor, encounter_id, (medicine, 4)))

    call(seeded, lab.enter_result, actor=actors[Role.LAB], order_id=order_id, value="140")
    dispense(seeded, pharmacist, prescription_id, {item_ids(seeded, prescription_id)[0]: 4})
    call(seeded, appointments.complete_appointment, actor=doctor,
         appointment_id=care_appointment(seeded, doctor, patient.user_id))
    charge(seeded, patient.user_id, ORTEGA)

    [draft] = invoices_of(seeded, patient.user_id)
    assert str(draft.status) == "draft"
    assert sorted((str(x.kind), x.amount_cents) for x in lines(seeded, draft.id)) == [
        ("consultation", 12000), ("consultation", 15000), ("lab", 500), ("medicine", 1000)]
    assert money(seeded, draft.id) == (28500, 0, 28500, 0, "draft")
    _books_balance(seeded, draft.id)
    # Another patient's charge never lands on it.
    charge(seeded, user_id(seeded, JAMES), CHEN)
    assert len(lines(seeded, draft.id)) == 4
    assert money(seeded, draft_of(seeded, user_id(seeded, JAMES)).id) == (6000, 0, 6000, 0, "draft")


# --- never billed twice --------------------------------------------------------------------------------


def test_charging_the_same_service_again_adds_nothing(seeded, doctor, patient, actors):
    pharmacist = actors[Role.PHARMACY]
    encounter_id = open_visit(seeded, doctor, patient.user_id)
    order_id = running(seeded, actors[Role.LAB], order(seeded, doctor, encounter_id, "HBA1C"))
    call(seeded, lab.enter_result, actor=actors[Role.LAB], order_id=order_id, value="38")
    medicine = new_medicine(seeded, pharmacist, price="3.00")
    receive(seeded, pharmacist, medicine, "ONE", in_days(90), 10)
    prescription_id = verify(seeded, pharmacist, prescribe(seeded, doctor, encounter_id, (medicine, 2)))
    dispense(seeded, pharmacist, prescription_id, {item_ids(seeded, prescription_id)[0]: 2})
    appointment = completed_appointment(seeded, HART, patient.user_id)

    with session_scope(engine=seeded) as s:
        first = billing.charge_consultation(s, appointment)
        s.commit()
    assert isinstance(first, int)
    before = all_lines(seeded)
    draft = draft_of(seeded, patient.user_id)
    totals = money(seeded, draft.id)
    assert totals == (15000 + 1200 + 600, 0, 16800, 0, "draft")

    with session_scope(engine=seeded) as s:
        dispensation = s.execute(sa.select(Dispensation).where(Dispensation.prescription_id == prescription_id)
                                 ).scalar_one()
        again = [
            billing.charge_consultation(s, appointment),
            billing.charge_consultation(s, appointment),
            billing.charge_lab_test(s, s.get(LabOrder, order_id)),
            billing.charge_dispensation(s, dispensation_id=dispensation.id, patient_id=patient.user_id,
                                        doctor_id=doctor.user_id, medicine="Anything", quantity=2,
                                        unit_price_cents=999),
        ]
        s.commit()

    assert again == [None, None, None, None]
    assert all_lines(seeded) == before
    assert money(seeded, draft.id) == totals


def test_a_charge_after_the_draft_was_issued_opens_a_new_draft(seeded, accounts, patient):
    first = charge(seeded, patient.user_id, HART)
    call(seeded, billing.issue_invoice, actor=accounts, invoice_id=first)
    appointment = completed_appointment(seeded, MEHTA, patient.user_id)

    with session_scope(engine=seeded) as s:
        billing.charge_consultation(s, appointment)
        s.commit()

    second = draft_of(seeded, patient.user_id)
    assert second.id != first
    assert [x.source_id for x in lines(seeded, second.id)] == [appointment.id]
    assert money(seeded, second.id) == (14000, 0, 14000, 0, "draft")
    assert money(seeded, first) == (15000, 0, 15000, 0, "issued")
    assert len(lines(seeded, first)) == 1
    # The service billed on the issued invoice is still billed: it does not move to the new draft.
    [billed] = lines(seeded, first)
    with session_scope(engine=seeded) as s:
        old = s.get(Appointment, billed.source_id)
        assert billing.charge_consultation(s, old) is None
        s.commit()
    assert len(lines(seeded, second.id)) == 1


# --- issuing -------------------------------------------------------------------------------------------


def test_issuing_numbers_invoices_in_sequence_and_sets_the_due_date(seeded, accounts, patient, insured):
    aisha = user_id(seeded, AISHA)
    drafts = [charge(seeded, patient.user_id, HART), charge(seeded, insured.user_id, CHEN, ORTEGA),
              charge(seeded, aisha, MEHTA)]
    after_note = last_notification_id(seeded)
    after_audit = last_audit_id(seeded)

    numbers = [call(seeded, billing.issue_invoice, actor=accounts, invoice_id=i) for i in drafts]

    prefix = year_prefix()
    assert prefix == f"INV-{local_today().year}-"
    assert numbers == [f"{prefix}000001", f"{prefix}000002", f"{prefix}000003"]
    due = local_today() + timedelta(days=30)
    for invoice_id, number in zip(drafts, numbers, strict=True):
        row = invoice(seeded, invoice_id)
        assert (row.number, str(row.status), row.due_date) == (number, "issued", due)
        assert row.issued_at is not None
    assert counter_value(seeded, f"invoice-{local_today().year}") == 3
    assert [(e.actor_id, e.entity_id, e.patient_id, e.detail)
            for e in audit_events(seeded, action="invoice.issue", after_id=after_audit)] == [
        (accounts.user_id, str(drafts[0]), patient.user_id, f"{numbers[0]} £150.00"),
        (accounts.user_id, str(drafts[1]), insured.user_id, f"{numbers[1]} £180.00"),
        (accounts.user_id, str(drafts[2]), aisha, f"{numbers[2]} £140.00"),
    ]
    assert notifications_since(seeded, after_note) == [
        (patient.user_id, "New invoice", f"Invoice {numbers[0]} for £150.00 is due by {format_date(due)}."),
        (insured.user_id, "New invoice", f"Invoice {numbers[1]} for £180.00 is due by {format_date(due)}."),
        (aisha, "New invoice", f"Invoice {numbers[2]} for £140.00 is due by {format_date(due)}."),
    ]


def test_issuing_takes_the_insurer_on_record_at_that_moment(seeded, accounts, insured):
    draft = charge(seeded, insured.user_id, HART)
    assert (invoice(seeded, draft).insurer, invoice(seeded, draft).policy_number) == ("Northwind Health",
                                                                                       "POL-100001")
    with session_scope(engine=seeded) as s:
        s.execute(sa.update(PatientProfile).where(PatientProfile.user_id == insured.user_id)
                  .values(insurer="Contoso Mutual", policy_number="CM-778"))
        s.commit()

    call(seeded, billing.issue_invoice, actor=accounts, invoice_id=draft)

    assert (invoice(seeded, draft).insurer, invoice(seeded, draft).policy_number) == ("Contoso Mutual", "CM-778")


def test_an_empty_draft_cannot_be_issued(seeded, accounts, patient):
    with session_scope(engine=seeded) as s:
        empty = Invoice(patient_id=patient.user_id)
        s.add(empty)
        s.commit()

    message = _refused(seeded, ValidationError, billing.issue_invoice, actor=accounts, invoice_id=empty.id)

    assert message == "This invoice has no charges yet; there is nothing to issue."
    assert counter_value(seeded, f"invoice-{local_today().year}") is None


def test_issuing_twice_is_refused_and_uses_no_number(seeded, accounts, patient, insured):
    first = charge(seeded, patient.user_id)
    number = call(seeded, billing.issue_invoice, actor=accounts, invoice_id=first)

    message = _refused(seeded, Conflict, billing.issue_invoice, actor=accounts, invoice_id=first)

    assert message == f"Invoice {number} is issued; it cannot be issued again."
    assert call(seeded, billing.issue_invoice, actor=accounts,
                invoice_id=charge(seeded, insured.user_id)) == f"{year_prefix()}000002"


@pytest.mark.parametrize("invoice_id", [999_999, "abc", None, -1])
def test_an_unknown_invoice_is_not_found_and_audited(seeded, accounts, invoice_id):
    error = assert_refused(seeded, accounts, "invoice.issue",
                           lambda s: billing.issue_invoice(session=s, actor=accounts, invoice_id=invoice_id),
                           error=NotFound)
    assert error.message == "That invoice does not exist."


def _accounts_only_calls(draft: int, open_invoice: int) -> dict[str, object]:
    """Every accounts-only billing service, each on an invoice where accounts would succeed."""
    return {
        "invoice.issue": lambda s, a: billing.issue_invoice(session=s, actor=a, invoice_id=draft),
        "invoice.discount": lambda s, a: billing.apply_discount(session=s, actor=a, invoice_id=open_invoice,
                                                                amount="10", reason="Goodwill gesture"),
        "payment.record": lambda s, a: billing.record_payment(session=s, actor=a, invoice_id=open_invoice,
                                                              amount="10", method="cash"),
        "payment.refund": lambda s, a: billing.refund_payment(session=s, actor=a, invoice_id=open_invoice,
                                                              amount="10", reason="Paid twice at the desk"),
        "invoice.insurer_share": lambda s, a: billing.set_insurer_share(session=s, actor=a, invoice_id=open_invoice,
                                                                        amount="10"),
        "invoice.claim": lambda s, a: billing.move_claim(session=s, actor=a, invoice_id=open_invoice,
                                                         to_status="submitted"),
        "invoice.void": lambda s, a: billing.void_invoice(session=s, actor=a, invoice_id=draft,
                                                          reason="Entered in error"),
        "invoice.list": lambda s, a: billing.list_invoices(session=s, actor=a),
    }


@pytest.mark.parametrize("role", NOT_BILLING)
def test_only_holders_of_billing_manage_issue_discount_void_and_move_money(seeded, actors, accounts, insured, role):
    # The patient is refused on their own invoices, everyone else on anyone's.
    actor = insured if role == Role.PATIENT else actors[role]
    open_invoice = issued(seeded, accounts, insured.user_id, HART)
    _pay(seeded, accounts, open_invoice, "20")
    call(seeded, billing.set_insurer_share, actor=accounts, invoice_id=open_invoice, amount="10")
    draft = charge(seeded, insured.user_id, CHEN)
    calls = _accounts_only_calls(draft, open_invoice)

    for action, service in calls.items():
        error = assert_refused(seeded, actor, action, lambda s, service=service: service(s, actor))
        assert error.message == "You do not have permission to do that.", action

    # Each of those calls was one accounts may make.
    for service in calls.values():
        with session_scope(engine=seeded) as s:
            service(s, accounts)
    assert money(seeded, open_invoice) == (15000, 1000, 14000, 2000, "partly_paid")
    assert (str(invoice(seeded, open_invoice).claim_status), str(invoice(seeded, draft).status)) == ("submitted", "void")


def test_a_role_granted_billing_manage_may_issue(seeded, actors, patient):
    draft = charge(seeded, patient.user_id)
    lab_staff = actors[Role.LAB]
    with pytest.raises(PermissionDenied):
        call(seeded, billing.issue_invoice, actor=lab_staff, invoice_id=draft)

    call(seeded, permissions.grant_permission, actor=actors[Role.ADMIN], role="lab", permission="billing.manage")
    lab_staff = login_as(seeded, "lab@hms.example")

    assert call(seeded, billing.issue_invoice, actor=lab_staff, invoice_id=draft) == f"{year_prefix()}000001"
    [event] = audit_events(seeded, action="invoice.issue", outcome="success")
    assert event.actor_id == lab_staff.user_id


def test_simultaneous_issues_get_distinct_gap_free_numbers(seeded, accounts, actors):
    clerk = new_accounts_clerk(seeded, actors[Role.ADMIN])
    with seeded.connect() as conn:
        patients = list(conn.execute(sa.select(User.id).where(User.role == Role.PATIENT.value).order_by(User.id)
                                     .limit(10)).scalars())
    drafts = [charge(seeded, p, CHEN) for p in patients]

    results = all_at_once(*(in_own_session(billing.issue_invoice, actor=(accounts, clerk)[i % 2], invoice_id=d)
                            for i, d in enumerate(drafts)))

    assert all(isinstance(r, str) for r in results), results
    prefix = year_prefix()
    assert sorted(results) == [f"{prefix}{n:06d}" for n in range(1, len(drafts) + 1)]
    assert [_number(seeded, d) for d in drafts] == results
    assert counter_value(seeded, f"invoice-{local_today().year}") == len(drafts)
    with session_scope(write=False, engine=seeded) as s:
        assert audit.verify_chain(s).ok


# --- discounts -------------------------------------------------------------------------------------


def test_a_discount_needs_a_reason_and_cannot_exceed_the_charges(seeded, accounts, patient):
    invoice_id = issued(seeded, accounts, patient.user_id, HART)

    for amount, reason, message in [
        ("20.50", "", "Give the reason for the discount (at least 5 characters)."),
        ("20.50", " ok  ", "Give the reason for the discount (at least 5 characters)."),
        ("20.50", "x" * 301, "Keep the reason for the discount under 300 characters."),
        ("150.01", "Hardship fund", "The discount cannot exceed the charges (£150.00)."),
        ("abc", "Hardship fund", "Enter the discount as an amount like 120 or 120.50."),
        ("-5", "Hardship fund", "Enter the discount as an amount like 120 or 120.50."),
    ]:
        assert _refused(seeded, ValidationError, billing.apply_discount, actor=accounts, invoice_id=invoice_id,
                        amount=amount, reason=reason) == message, (amount, reason)

    call(seeded, billing.apply_discount, actor=accounts, invoice_id=invoice_id, amount="20.50",
         reason="  Hardship   fund ")
    assert money(seeded, invoice_id) == (15000, 2050, 12950, 0, "issued")
    assert invoice(seeded, invoice_id).discount_reason == "Hardship fund"
    [event] = audit_events(seeded, action="invoice.discount")
    assert (event.actor_id, event.detail) == (accounts.user_id, "£20.50: Hardship fund")

    call(seeded, billing.apply_discount, actor=accounts, invoice_id=invoice_id, amount="150", reason="Staff member")
    assert money(seeded, invoice_id) == (15000, 15000, 0, 0, "paid")  # nothing left to pay


def test_a_discount_replaces_the_last_one_and_can_be_removed(seeded, accounts, patient):
    invoice_id = issued(seeded, accounts, patient.user_id, HART)
    call(seeded, billing.apply_discount, actor=accounts, invoice_id=invoice_id, amount="30", reason="Hardship fund")
    call(seeded, billing.apply_discount, actor=accounts, invoice_id=invoice_id, amount="10", reason="Loyal patient")
    assert money(seeded, invoice_id) == (15000, 1000, 14000, 0, "issued")
    assert invoice(seeded, invoice_id).discount_reason == "Loyal patient"

    call(seeded, billing.apply_discount, actor=accounts, invoice_id=invoice_id, amount="0", reason="")

    assert money(seeded, invoice_id) == (15000, 0, 15000, 0, "issued")
    assert invoice(seeded, invoice_id).discount_reason == ""


def test_a_discount_cannot_take_the_total_below_what_is_paid(seeded, accounts, patient):
    invoice_id = issued(seeded, accounts, patient.user_id, HART)
    assert _pay(seeded, accounts, invoice_id, "100") == "partly paid"

    message = _refused(seeded, ValidationError, billing.apply_discount, actor=accounts, invoice_id=invoice_id,
                       amount="50.01", reason="Hardship fund")

    assert message == "£100.00 is paid already; the total cannot go below that."
    call(seeded, billing.apply_discount, actor=accounts, invoice_id=invoice_id, amount="50", reason="Hardship fund")
    assert money(seeded, invoice_id) == (15000, 5000, 10000, 10000, "paid")
    _books_balance(seeded, invoice_id)


def test_a_discount_on_a_draft_holds_when_more_charges_arrive(seeded, accounts, patient):
    draft = charge(seeded, patient.user_id, HART)
    call(seeded, billing.apply_discount, actor=accounts, invoice_id=draft, amount="30", reason="Hardship fund")
    assert money(seeded, draft) == (15000, 3000, 12000, 0, "draft")

    assert charge(seeded, patient.user_id, CHEN) == draft

    assert money(seeded, draft) == (21000, 3000, 18000, 0, "draft")
    _books_balance(seeded, draft)


# --- payments and refunds -------------------------------------------------------------------------------


def test_a_part_payment_then_the_rest_settles_the_invoice(seeded, accounts, patient):
    invoice_id = issued(seeded, accounts, patient.user_id, HART)

    assert _pay(seeded, accounts, invoice_id, "50.25", "bank_transfer") == "partly paid"
    assert money(seeded, invoice_id) == (15000, 0, 15000, 5025, "partly_paid")
    assert call(seeded, billing.record_payment, actor=accounts, invoice_id=invoice_id, amount="99.75",
                method="card", reference="  POS   8812 ") == "paid"

    assert money(seeded, invoice_id) == (15000, 0, 15000, 15000, "paid")
    assert [(p.amount_cents, str(p.method), p.reference, p.recorded_by) for p in payments(seeded, invoice_id)] == [
        (5025, "bank_transfer", "", accounts.user_id), (9975, "card", "POS 8812", accounts.user_id)]
    assert [e.detail for e in audit_events(seeded, action="payment.record")] == [
        "bank_transfer £50.25", "card £99.75 POS 8812"]
    _books_balance(seeded, invoice_id)
    detail = call(seeded, billing.invoice_detail, actor=accounts, invoice_id=invoice_id)
    assert (detail.invoice.paid, detail.invoice.balance, detail.invoice.status) == ("£150.00", "£0.00", "paid")


def test_paying_more_than_the_balance_is_refused_and_nothing_is_written(seeded, accounts, patient):
    invoice_id = issued(seeded, accounts, patient.user_id, HART)
    _pay(seeded, accounts, invoice_id, "50")

    message = _refused(seeded, ValidationError, billing.record_payment, actor=accounts, invoice_id=invoice_id,
                       amount="100.01", method="cash")

    assert message == "That is more than the balance of £100.00; record at most the balance."
    assert money(seeded, invoice_id) == (15000, 0, 15000, 5000, "partly_paid")


@pytest.mark.parametrize(("amount", "method", "message"), [
    ("0", "cash", "Enter the amount paid, more than 0."),
    ("0.00", "cash", "Enter the amount paid, more than 0."),
    ("-5", "cash", "Enter the amount paid as an amount like 120 or 120.50."),
    ("ten pounds", "cash", "Enter the amount paid as an amount like 120 or 120.50."),
    ("", "cash", "Enter the amount paid as an amount like 120 or 120.50."),
    ("1.234", "cash", "Enter the amount paid as an amount like 120 or 120.50."),
    ("10", "cheque", "Choose how it was paid: cash, card, bank transfer or insurance."),
])
def test_bad_payments_are_refused_and_nothing_is_written(seeded, accounts, patient, amount, method, message):
    invoice_id = issued(seeded, accounts, patient.user_id, HART)

    assert _refused(seeded, ValidationError, billing.record_payment, actor=accounts, invoice_id=invoice_id,
                    amount=amount, method=method) == message
    assert payments(seeded, invoice_id) == []


def test_a_draft_a_void_or_a_paid_invoice_cannot_be_paid(seeded, accounts, patient, insured):
    draft = charge(seeded, patient.user_id, HART)
    voided = issued(seeded, accounts, insured.user_id, HART)
    call(seeded, billing.void_invoice, actor=accounts, invoice_id=voided, reason="Entered in error")
    settled = issued(seeded, accounts, user_id(seeded, AISHA), HART)
    _pay(seeded, accounts, settled, "150")

    for invoice_id, message in [
        (draft, f"Invoice Draft {draft} is being prepared; it cannot be paid."),
        (voided, f"Invoice {_number(seeded, voided)} is void; it cannot be paid."),
        (settled, f"Invoice {_number(seeded, settled)} is paid; it cannot be paid again."),
    ]:
        assert _refused(seeded, Conflict, billing.record_payment, actor=accounts, invoice_id=invoice_id,
                        amount="1", method="cash") == message


def test_a_refund_is_a_negative_payment_with_a_reason_of_at_most_what_was_paid(seeded, accounts, patient):
    invoice_id = issued(seeded, accounts, patient.user_id, HART)
    _pay(seeded, accounts, invoice_id, "150")
    refund = {"actor": accounts, "invoice_id": invoice_id}

    assert _refused(seeded, ValidationError, billing.refund_payment, **refund, amount="30", reason="") == (
        "Give the reason for the refund (at least 5 characters).")
    assert _refused(seeded, ValidationError, billing.refund_payment, **refund, amount="150.01",
                    reason="Overcharged") == "Only £150.00 has been paid; refund at most that."
    assert _refused(seeded, ValidationError, billing.refund_payment, **refund, amount="0",
                    reason="Overcharged") == "Enter the amount to refund, more than 0."
    assert _refused(seeded, ValidationError, billing.refund_payment, **refund, amount="30", reason="Overcharged",
                    method="voucher") == "Choose how the refund is paid back."

    assert call(seeded, billing.refund_payment, **refund, amount="30", reason="Overcharged for the visit") == (
        "partly paid")
    assert money(seeded, invoice_id) == (15000, 0, 15000, 12000, "partly_paid")
    assert [(p.amount_cents, str(p.method), p.reference, p.reason) for p in payments(seeded, invoice_id)] == [
        (15000, "cash", "", ""), (-3000, "cash", "refund", "Overcharged for the visit")]
    [event] = audit_events(seeded, action="payment.refund")
    assert (event.actor_id, event.detail) == (accounts.user_id, "£30.00: Overcharged for the visit")

    assert call(seeded, billing.refund_payment, **refund, amount="120", reason="Treatment cancelled",
                method="bank_transfer") == "issued"
    assert money(seeded, invoice_id) == (15000, 0, 15000, 0, "issued")
    assert _refused(seeded, ValidationError, billing.refund_payment, **refund, amount="0.01",
                    reason="Overcharged") == "Only £0.00 has been paid; refund at most that."
    _books_balance(seeded, invoice_id)
    detail = call(seeded, billing.invoice_detail, actor=accounts, invoice_id=invoice_id)
    assert [(p.amount, p.amount_cents, p.method) for p in detail.payments] == [
        ("£150.00", 15000, "Cash"), ("−£30.00", -3000, "Cash"), ("−£120.00", -12000, "Bank transfer")]


def test_a_draft_or_void_invoice_cannot_be_refunded(seeded, accounts, patient, insured):
    draft = charge(seeded, patient.user_id, HART)
    voided = issued(seeded, accounts, insured.user_id, HART)
    call(seeded, billing.void_invoice, actor=accounts, invoice_id=voided, reason="Entered in error")

    assert _refused(seeded, Conflict, billing.refund_payment, actor=accounts, invoice_id=draft, amount="1",
                    reason="Overcharged") == f"Invoice Draft {draft} is being prepared; it cannot be refunded."
    assert _refused(seeded, Conflict, billing.refund_payment, actor=accounts, invoice_id=voided, amount="1",
                    reason="Overcharged") == f"Invoice {_number(seeded, voided)} is void; it cannot be refunded."


# --- any sequence of money moves keeps the books whole ----------------------------------------------------


def _cents_text(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


_amounts = st.one_of(st.integers(0, 32000).map(_cents_text),
                     st.sampled_from(["0", "abc", "-5", "", "1.234", "290", "145", "0.01"]))
_operations = st.lists(st.one_of(
    st.tuples(st.just("discount"), _amounts, st.sampled_from(["", "abc", "Hardship fund"])),
    st.tuples(st.just("pay"), _amounts, st.sampled_from(["cash", "card", "bank_transfer", "cheque"])),
    st.tuples(st.just("refund"), _amounts, st.sampled_from(["", "Overcharged for the visit"])),
), min_size=1, max_size=12)


def _cents(text: str) -> int | None:
    """What parse_money makes of ``text``, or None if it refuses it."""
    whole, _, fraction = text.partition(".")
    if not whole.isdigit() or (fraction and (not fraction.isdigit() or len(fraction) > 2)):
        return None
    return int(whole) * 100 + int((fraction or "0").ljust(2, "0"))


class _Books:
    """What the invoice should hold: the rules of the module docstring, written out plainly."""

    def __init__(self, subtotal: int) -> None:
        self.subtotal, self.discount, self.paid, self.status = subtotal, 0, 0, "issued"

    @property
    def total(self) -> int:
        return self.subtotal - self.discount

    def settle(self) -> None:
        self.status = "paid" if self.paid >= self.total else "partly_paid" if self.paid else "issued"

    def accepts(self, kind: str, amount: str, extra: str) -> bool:
        cents = _cents(amount)
        if cents is None:
            return False
        if kind == "discount":
            return (self.status in ("issued", "partly_paid") and (cents == 0 or len(extra) >= 5)
                    and cents <= self.subtotal and self.subtotal - cents >= self.paid)
        if kind == "pay":
            return (self.status in ("issued", "partly_paid") and extra != "cheque"
                    and 0 < cents <= self.total - self.paid)
        return self.status in ("issued", "partly_paid", "paid") and 0 < cents <= self.paid and len(extra) >= 5

    def apply(self, kind: str, amount: str) -> None:
        cents = _cents(amount)
        if kind == "discount":
            self.discount = cents
        else:
            self.paid += cents if kind == "pay" else -cents
        self.settle()


def _attempt(engine, accounts, invoice_id: int, kind: str, amount: str, extra: str) -> bool:
    """One discount, payment or refund; True if it was accepted."""
    try:
        if kind == "discount":
            call(engine, billing.apply_discount, actor=accounts, invoice_id=invoice_id, amount=amount, reason=extra)
        elif kind == "pay":
            call(engine, billing.record_payment, actor=accounts, invoice_id=invoice_id, amount=amount, method=extra)
        else:
            call(engine, billing.refund_payment, actor=accounts, invoice_id=invoice_id, amount=amount, reason=extra)
    except (ValidationError, Conflict):
        return False
    return True


@settings(max_examples=25, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ops=_operations)
def test_any_sequence_of_discounts_payments_and_refunds_keeps_the_books_whole(seeded, accounts, patient, ops):
    invoice_id = issued(seeded, accounts, patient.user_id, HART, MEHTA)
    books = _Books(29000)

    for kind, amount, extra in ops:
        before = len(payments(seeded, invoice_id))
        accepted = _attempt(seeded, accounts, invoice_id, kind, amount, extra)
        assert accepted == books.accepts(kind, amount, extra), (kind, amount, extra, money(seeded, invoice_id))
        if accepted:
            books.apply(kind, amount)
        else:
            assert len(payments(seeded, invoice_id)) == before

        subtotal, discount, total, paid, status = money(seeded, invoice_id)
        assert (subtotal, discount, total, paid, status) == (
            books.subtotal, books.discount, books.total, books.paid, books.status)
        assert total == subtotal - discount == sum(x.amount_cents for x in lines(seeded, invoice_id)) - discount
        assert paid == sum(p.amount_cents for p in payments(seeded, invoice_id))
        assert 0 <= paid <= total
        assert status == ("paid" if paid >= total else "partly_paid" if paid > 0 else "issued")


# --- two payments at once ---------------------------------------------------------------------------------


def test_two_payments_of_the_whole_balance_at_once_only_one_is_recorded(seeded, accounts, actors, patient):
    clerk = new_accounts_clerk(seeded, actors[Role.ADMIN])
    for round_ in range(3):
        invoice_id = issued(seeded, accounts, patient.user_id, HART)
        payers = (accounts, clerk) if round_ != 1 else (accounts, accounts)

        outcomes = all_at_once(*(in_own_session(billing.record_payment, actor=payer, invoice_id=invoice_id,
                                                amount="150.00", method=method)
                                 for payer, method in zip(payers, ("cash", "card"), strict=True)))

        assert outcomes.count("paid") == 1, outcomes
        [refused] = [o for o in outcomes if o != "paid"]
        assert isinstance(refused, (ValidationError, Conflict)), outcomes
        assert refused.message == f"Invoice {_number(seeded, invoice_id)} is paid; it cannot be paid again."
        assert money(seeded, invoice_id) == (15000, 0, 15000, 15000, "paid")
        assert len(payments(seeded, invoice_id)) == 1
        _books_balance(seeded, invoice_id)
    assert len(audit_events(seeded, action="payment.record")) == 3


# --- the patient pays online ------------------------------------------------------------------------------


def _pay_online(engine, actor, invoice_id, *, card=VALID_CARD, card_expiry=None, cvc=CVC, key=None):
    return call(engine, billing.pay_online, actor=actor, invoice_id=invoice_id, card_number=card,
                expiry=card_expiry or expiry(), cvc=cvc, idempotency_key=key or _key())


def test_the_patient_pays_exactly_what_is_due_from_them(seeded, accounts, insured):
    invoice_id = issued(seeded, accounts, insured.user_id, HART)
    call(seeded, billing.set_insurer_share, actor=accounts, invoice_id=invoice_id, amount="100")
    assert _mine(seeded, insured)[invoice_id].patient_due_cents == 5000
    key = _key()

    paid = _pay_online(seeded, insured, invoice_id, key=key)

    assert (paid.amount, paid.status, paid.repeated) == ("£50.00", "partly paid", False)
    assert re.fullmatch(r"SIM-[0-9A-F]{10} card ending 4242", paid.reference), paid.reference
    [payment] = payments(seeded, invoice_id)
    assert (payment.amount_cents, str(payment.method), payment.reference, payment.idempotency_key,
            payment.recorded_by) == (5000, "card", paid.reference, key, insured.user_id)
    assert money(seeded, invoice_id) == (15000, 0, 15000, 5000, "partly_paid")
    [event] = audit_events(seeded, action="invoice.pay_online")
    assert (event.actor_id, event.patient_id, event.detail) == (insured.user_id, insured.user_id,
                                                                f"£50.00 {paid.reference}")
    row = _mine(seeded, insured)[invoice_id]
    assert (row.patient_due, row.balance, row.insurer_share) == ("£0.00", "£100.00", "£100.00")
    assert _refused(seeded, Conflict, billing.pay_online, actor=insured, invoice_id=invoice_id, card_number=VALID_CARD,
                    expiry=expiry(), cvc=CVC, idempotency_key=_key()) == (
        "Nothing is due from you on this invoice; the rest is expected from your insurer.")


def test_the_patient_pays_the_whole_balance_without_an_insurer_share(seeded, accounts, patient):
    invoice_id = issued(seeded, accounts, patient.user_id, HART, CHEN)
    _pay(seeded, accounts, invoice_id, "10")

    paid = _pay_online(seeded, patient, invoice_id, card=OTHER_VALID_CARD)

    assert (paid.amount, paid.status, paid.repeated) == ("£200.00", "paid", False)
    assert paid.reference.endswith(" card ending 4444")
    assert money(seeded, invoice_id) == (21000, 0, 21000, 21000, "paid")
    assert _refused(seeded, Conflict, billing.pay_online, actor=patient, invoice_id=invoice_id,
                    card_number=VALID_CARD, expiry=expiry(), cvc=CVC, idempotency_key=_key()) == (
        "This invoice is paid already.")


@pytest.mark.parametrize(("card", "card_expiry", "cvc", "message"), [
    ("4242 4242 4242 4241", None, CVC, "Check the card number: it is not a valid card number."),
    ("4242", None, CVC, "Check the card number: it is not a valid card number."),
    ("four two four two", None, CVC, "Check the card number: it is not a valid card number."),
    (VALID_CARD, "01/20", CVC, "The card has expired, or the expiry date is not a real month."),
    (VALID_CARD, "13/40", CVC, "The card has expired, or the expiry date is not a real month."),
    (VALID_CARD, "next year", CVC, "Enter the card's expiry as MM/YY."),
    (VALID_CARD, None, "12", "Enter the 3 or 4 digit security code from the back of the card."),
    (VALID_CARD, None, "12a", "Enter the 3 or 4 digit security code from the back of the card."),
    (billing.DECLINED_TEST_CARD, None, CVC,
     "The card was declined by the bank. Nothing was charged; try another card."),
])
def test_a_bad_or_declined_card_charges_nothing(seeded, accounts, patient, card, card_expiry, cvc, message):
    invoice_id = issued(seeded, accounts, patient.user_id, HART)
    key = _key()

    assert _refused(seeded, ValidationError, billing.pay_online, actor=patient, invoice_id=invoice_id,
                    card_number=card, expiry=card_expiry or expiry(), cvc=cvc, idempotency_key=key) == message

    assert payments(seeded, invoice_id) == []
    # The same form may then be sent again with a good card.
    assert _pay_online(seeded, patient, invoice_id, key=key).repeated is False
    assert amounts_paid(seeded, invoice_id) == [(15000, "card")]


@pytest.mark.parametrize("key", ["", "short-key", "k" * 65, None])
def test_a_payment_without_a_valid_form_key_is_refused(seeded, accounts, patient, key):
    invoice_id = issued(seeded, accounts, patient.user_id, HART)

    assert _refused(seeded, ValidationError, billing.pay_online, actor=patient, invoice_id=invoice_id,
                    card_number=VALID_CARD, expiry=expiry(), cvc=CVC, idempotency_key=key) == (
        "This payment form has expired; close it and open it again.")


def test_the_same_payment_sent_twice_charges_once(seeded, accounts, patient):
    invoice_id = issued(seeded, accounts, patient.user_id, HART)
    _pay(seeded, accounts, invoice_id, "50")
    key = _key()

    first = _pay_online(seeded, patient, invoice_id, key=key)
    second = _pay_online(seeded, patient, invoice_id, key=key, card=OTHER_VALID_CARD)

    assert (first.amount, first.status, first.repeated) == ("£100.00", "paid", False)
    assert (second.amount, second.reference, second.status, second.repeated) == (
        "£100.00", first.reference, "paid", True)
    assert amounts_paid(seeded, invoice_id) == [(5000, "cash"), (10000, "card")]
    assert len(audit_events(seeded, action="invoice.pay_online")) == 1


def test_a_form_key_used_on_one_invoice_is_refused_on_another(seeded, accounts, patient):
    first = issued(seeded, accounts, patient.user_id, HART)
    second = issued(seeded, accounts, patient.user_id, CHEN)
    key = _key()
    _pay_online(seeded, patient, first, key=key)

    assert _refused(seeded, ValidationError, billing.pay_online, actor=patient, invoice_id=second,
                    card_number=VALID_CARD, expiry=expiry(), cvc=CVC, idempotency_key=key) == (
        "This payment form has expired; close it and open it again.")


def test_the_same_payment_sent_from_two_tabs_at_once_charges_once(seeded, accounts, patient):
    for _ in range(3):
        invoice_id = issued(seeded, accounts, patient.user_id, HART)
        key = _key()

        outcomes = all_at_once(*(in_own_session(billing.pay_online, actor=patient, invoice_id=invoice_id,
                                                card_number=VALID_CARD, expiry=expiry(), cvc=CVC,
                                                idempotency_key=key) for _ in range(2)))

        assert all(isinstance(o, billing.OnlinePayment) for o in outcomes), outcomes
        assert sorted(o.repeated for o in outcomes) == [False, True]
        assert {(o.amount, o.reference) for o in outcomes} == {("£150.00", payments(seeded, invoice_id)[0].reference)}
        assert amounts_paid(seeded, invoice_id) == [(15000, "card")]
        assert money(seeded, invoice_id) == (15000, 0, 15000, 15000, "paid")


@pytest.mark.parametrize("which", ["another patient's", "unknown"])
def test_a_patient_cannot_pay_an_invoice_not_theirs(seeded, accounts, patient, insured, which):
    invoice_id = issued(seeded, accounts, insured.user_id, HART) if which != "unknown" else 999_999

    error = assert_refused(seeded, patient, "invoice.pay_online",
                           lambda s: billing.pay_online(session=s, actor=patient, invoice_id=invoice_id,
                                                        card_number=VALID_CARD, expiry=expiry(), cvc=CVC,
                                                        idempotency_key=_key()),
                           error=NotFound)
    assert error.message == "That invoice does not exist."


@pytest.mark.parametrize("role", STAFF)
def test_staff_cannot_pay_online(seeded, actors, accounts, patient, role):
    invoice_id = issued(seeded, accounts, patient.user_id, HART)
    actor = actors[role]

    assert_refused(seeded, actor, "invoice.pay_online",
                   lambda s: billing.pay_online(session=s, actor=actor, invoice_id=invoice_id, card_number=VALID_CARD,
                                                expiry=expiry(), cvc=CVC, idempotency_key=_key()))
    assert payments(seeded, invoice_id) == []


def test_only_the_last_four_digits_of_the_card_are_kept(seeded, accounts, patient):
    invoice_id = issued(seeded, accounts, patient.user_id, HART)
    card = "5105 1051 0510 5100"
    digits = card.replace(" ", "")

    paid = _pay_online(seeded, patient, invoice_id, card=card)

    assert paid.reference.endswith("card ending 5100")
    stored = [(p.reference, p.reason, p.idempotency_key) for p in payments(seeded, invoice_id)]
    details = [e.detail for e in audit_events(seeded)]
    everything = raw_database_text(seeded)
    for text in [" ".join(map(str, stored)), " ".join(details), everything]:
        assert digits not in text
        assert card not in text
        assert digits[:12] not in text
    assert "card ending 5100" in " ".join(details)


# --- insurance --------------------------------------------------------------------------------------------


def test_an_insurer_share_needs_an_insurer_and_fits_the_balance(seeded, accounts, patient, insured):
    uninsured = issued(seeded, accounts, patient.user_id, HART)
    covered = issued(seeded, accounts, insured.user_id, HART)
    _pay(seeded, accounts, covered, "20")

    assert _refused(seeded, ValidationError, billing.set_insurer_share, actor=accounts, invoice_id=uninsured,
                    amount="50") == "The patient has no insurer on record; add one to their profile first."
    assert _refused(seeded, ValidationError, billing.set_insurer_share, actor=accounts, invoice_id=covered,
                    amount="130.01") == "The share cannot exceed the balance of £130.00."
    assert _refused(seeded, ValidationError, billing.set_insurer_share, actor=accounts, invoice_id=covered,
                    amount="lots") == "Enter the insurer's share as an amount like 120 or 120.50."

    call(seeded, billing.set_insurer_share, actor=accounts, invoice_id=covered, amount="130")

    assert invoice(seeded, covered).insurer_share_cents == 13000
    [event] = audit_events(seeded, action="invoice.insurer_share")
    assert (event.actor_id, event.detail) == (accounts.user_id, "Northwind Health £130.00")
    assert _mine(seeded, insured)[covered].patient_due_cents == 0
    # The total cannot then be discounted below the share.
    assert _refused(seeded, ValidationError, billing.apply_discount, actor=accounts, invoice_id=covered,
                    amount="20.01", reason="Hardship fund") == (
        "The total cannot go below the insurer's share; lower the share first.")


def test_a_claim_submitted_approved_and_paid_records_the_insurers_payment(seeded, accounts, insured):
    invoice_id = issued(seeded, accounts, insured.user_id, HART)
    number = _number(seeded, invoice_id)
    call(seeded, billing.set_insurer_share, actor=accounts, invoice_id=invoice_id, amount="120")
    _pay_online(seeded, insured, invoice_id)  # the patient's 30.00

    call(seeded, billing.move_claim, actor=accounts, invoice_id=invoice_id, to_status="submitted",
         note="Sent by post")
    assert str(invoice(seeded, invoice_id).claim_status) == "submitted"
    assert _refused(seeded, Conflict, billing.set_insurer_share, actor=accounts, invoice_id=invoice_id,
                    amount="100") == "The claim is already submitted; the insurer's share can no longer change."
    call(seeded, billing.move_claim, actor=accounts, invoice_id=invoice_id, to_status="approved")
    assert money(seeded, invoice_id) == (15000, 0, 15000, 3000, "partly_paid")
    call(seeded, billing.move_claim, actor=accounts, invoice_id=invoice_id, to_status="paid")

    row = invoice(seeded, invoice_id)
    assert (str(row.claim_status), row.claim_note) == ("paid", "Sent by post")
    assert money(seeded, invoice_id) == (15000, 0, 15000, 15000, "paid")
    assert [(p.amount_cents, str(p.method), p.reference) for p in payments(seeded, invoice_id)][1:] == [
        (12000, "insurance", f"claim {number}")]
    assert [e.detail for e in audit_events(seeded, action="invoice.claim")] == [
        "none → submitted Sent by post", "submitted → approved", "approved → paid"]
    _books_balance(seeded, invoice_id)


def test_a_claim_paid_before_the_patient_pays_leaves_the_patients_part_due(seeded, accounts, insured):
    invoice_id = issued(seeded, accounts, insured.user_id, HART)
    call(seeded, billing.set_insurer_share, actor=accounts, invoice_id=invoice_id, amount="100")
    for status in ("submitted", "approved", "paid"):
        call(seeded, billing.move_claim, actor=accounts, invoice_id=invoice_id, to_status=status)

    assert money(seeded, invoice_id) == (15000, 0, 15000, 10000, "partly_paid")
    assert amounts_paid(seeded, invoice_id) == [(10000, "insurance")]
    assert _mine(seeded, insured)[invoice_id].patient_due_cents == 5000
    assert _pay_online(seeded, insured, invoice_id).amount == "£50.00"
    assert money(seeded, invoice_id) == (15000, 0, 15000, 15000, "paid")


def test_a_rejected_claim_needs_a_reason_and_the_patient_then_owes_everything(seeded, accounts, insured):
    invoice_id = issued(seeded, accounts, insured.user_id, HART)
    number = _number(seeded, invoice_id)
    call(seeded, billing.set_insurer_share, actor=accounts, invoice_id=invoice_id, amount="150")
    call(seeded, billing.move_claim, actor=accounts, invoice_id=invoice_id, to_status="submitted")
    assert _mine(seeded, insured)[invoice_id].patient_due_cents == 0
    after = last_notification_id(seeded)

    assert _refused(seeded, ValidationError, billing.move_claim, actor=accounts, invoice_id=invoice_id,
                    to_status="rejected", note="  no ") == "Give the reason for the rejection (at least 5 characters)."
    call(seeded, billing.move_claim, actor=accounts, invoice_id=invoice_id, to_status="rejected",
         note="Policy lapsed in December")

    row = invoice(seeded, invoice_id)
    assert (str(row.claim_status), row.claim_note) == ("rejected", "Policy lapsed in December")
    assert _mine(seeded, insured)[invoice_id].patient_due_cents == 15000
    assert notifications_since(seeded, after) == [(
        insured.user_id, "Insurance claim rejected",
        f"Your insurer rejected the claim on invoice {number}: Policy lapsed in December. "
        "The balance is now due from you.")]
    assert _pay_online(seeded, insured, invoice_id).amount == "£150.00"
    assert money(seeded, invoice_id) == (15000, 0, 15000, 15000, "paid")


def test_illegal_claim_moves_are_refused(seeded, accounts, insured):
    def claim_at(path: tuple[str, ...]) -> int:
        invoice_id = issued(seeded, accounts, insured.user_id, HART)
        call(seeded, billing.set_insurer_share, actor=accounts, invoice_id=invoice_id, amount="100")
        for status in path:
            call(seeded, billing.move_claim, actor=accounts, invoice_id=invoice_id, to_status=status,
                 note="Checked by the insurer")
        return invoice_id

    states = {"not submitted": (), "submitted": ("submitted",), "approved": ("submitted", "approved"),
              "rejected": ("submitted", "rejected"), "paid": ("submitted", "approved", "paid")}
    allowed = {("not submitted", "submitted"), ("submitted", "approved"), ("submitted", "rejected"),
               ("approved", "paid")}
    for state, path in states.items():
        invoice_id = claim_at(path)
        for target in ("submitted", "approved", "rejected", "paid"):
            if (state, target) in allowed:
                continue
            message = _refused(seeded, Conflict, billing.move_claim, actor=accounts, invoice_id=invoice_id,
                               to_status=target, note="Checked by the insurer")
            assert message == f"The claim is {state}; it cannot be marked {target} now.", (state, target)
        for target in ("none", "bogus", ""):
            assert _refused(seeded, ValidationError, billing.move_claim, actor=accounts, invoice_id=invoice_id,
                            to_status=target) == "Choose submitted, approved, rejected or paid."

    no_share = issued(seeded, accounts, insured.user_id, HART)
    assert _refused(seeded, ValidationError, billing.move_claim, actor=accounts, invoice_id=no_share,
                    to_status="submitted") == "Set the insurer's share before submitting the claim."
    draft = charge(seeded, insured.user_id, HART)
    call(seeded, billing.set_insurer_share, actor=accounts, invoice_id=draft, amount="100")
    assert _refused(seeded, Conflict, billing.move_claim, actor=accounts, invoice_id=draft,
                    to_status="submitted") == f"Invoice Draft {draft} is being prepared; it cannot be claimed."


# --- the invoice PDF ------------------------------------------------------------------------------------------


def test_the_invoice_pdf_for_the_patient_and_for_accounts(seeded, accounts, patient):
    invoice_id = issued(seeded, accounts, patient.user_id, HART, CHEN)
    number = _number(seeded, invoice_id)
    call(seeded, billing.apply_discount, actor=accounts, invoice_id=invoice_id, amount="10", reason="Hardship fund")
    _pay(seeded, accounts, invoice_id, "100")
    call(seeded, billing.refund_payment, actor=accounts, invoice_id=invoice_id, amount="30",
         reason="Overcharged for the visit")
    after = last_audit_id(seeded)

    for actor in (patient, accounts):
        document = call(seeded, billing.invoice_pdf, actor=actor, invoice_id=invoice_id)
        assert document.data.startswith(b"%PDF")
        assert (document.file_name, document.content_type) == (f"{number}.pdf", "application/pdf")
        text = pdf_text(document.data)
        for expected in (f"Invoice {number}", "Maria Garcia (MRN-000001)", "Consultation with Dr. Amelia Hart",
                         "Consultation with Dr. Olivia Chen", "£210.00", "Discount (Hardship fund)", "-£10.00",
                         "£200.00", "£100.00", "-£30.00", "£70.00", "£130.00"):
            assert expected in text, (expected, text)

    downloads = audit_events(seeded, action="invoice.download", after_id=after)
    assert [(e.actor_id, e.entity_id, e.patient_id, str(e.outcome)) for e in downloads] == [
        (patient.user_id, str(invoice_id), patient.user_id, "success"),
        (accounts.user_id, str(invoice_id), patient.user_id, "success")]


def test_the_invoice_pdf_is_not_found_for_another_patient_and_refused_to_other_staff(seeded, accounts, actors,
                                                                                      patient, insured):
    invoice_id = issued(seeded, accounts, patient.user_id, HART)

    error = assert_refused(seeded, insured, "invoice.view",
                           lambda s: billing.invoice_pdf(session=s, actor=insured, invoice_id=invoice_id),
                           error=NotFound)
    assert error.message == "That invoice does not exist."
    doctor = actors[Role.DOCTOR]
    assert_refused(seeded, doctor, "invoice.view",
                   lambda s: billing.invoice_pdf(session=s, actor=doctor, invoice_id=invoice_id))
    assert audit_events(seeded, action="invoice.download") == []


# --- void -----------------------------------------------------------------------------------------------------


def test_voiding_needs_a_reason_and_nothing_paid(seeded, accounts, patient):
    invoice_id = issued(seeded, accounts, patient.user_id, HART)
    number = _number(seeded, invoice_id)
    _pay(seeded, accounts, invoice_id, "40")

    assert _refused(seeded, Conflict, billing.void_invoice, actor=accounts, invoice_id=invoice_id,
                    reason="Entered in error") == "Money has been paid on this invoice; refund it before voiding."
    call(seeded, billing.refund_payment, actor=accounts, invoice_id=invoice_id, amount="40", reason="Entered in error")
    assert _refused(seeded, ValidationError, billing.void_invoice, actor=accounts, invoice_id=invoice_id,
                    reason=" ") == "Give the reason for the void (at least 5 characters)."

    call(seeded, billing.void_invoice, actor=accounts, invoice_id=invoice_id, reason="Entered in error")

    row = invoice(seeded, invoice_id)
    assert (str(row.status), row.void_reason, row.number) == ("void", "Entered in error", number)
    assert len(lines(seeded, invoice_id)) == 1  # the charges stay on record with it
    [event] = audit_events(seeded, action="invoice.void")
    assert (event.actor_id, event.detail) == (accounts.user_id, "Entered in error")
    assert _refused(seeded, Conflict, billing.void_invoice, actor=accounts, invoice_id=invoice_id,
                    reason="Entered in error") == f"Invoice {number} is void; it cannot be voided again."
    assert _refused(seeded, Conflict, billing.apply_discount, actor=accounts, invoice_id=invoice_id, amount="10",
                    reason="Hardship fund") == f"Invoice {number} is void; it cannot be discounted."


def test_void_invoices_are_hidden_from_the_patient(seeded, accounts, patient):
    kept = issued(seeded, accounts, patient.user_id, HART)
    voided = issued(seeded, accounts, patient.user_id, CHEN)
    voided_draft = charge(seeded, patient.user_id, ORTEGA)
    for invoice_id in (voided, voided_draft):
        call(seeded, billing.void_invoice, actor=accounts, invoice_id=invoice_id, reason="Entered in error")

    assert list(_mine(seeded, patient)) == [kept]
    listed = call(seeded, billing.list_invoices, actor=accounts, show="void")
    assert [row.id for row in listed.rows] == [voided_draft, voided]
    # With the draft voided, the next charge opens a new one.
    fresh = charge(seeded, patient.user_id, MEHTA)
    assert fresh not in (kept, voided, voided_draft)
    assert list(_mine(seeded, patient)) == [fresh, kept]


# --- lists ------------------------------------------------------------------------------------------------------


@pytest.fixture
def ledger(seeded, accounts):
    """Six patients' invoices, one in every state, created in this order:
    draft (Maria, 60), issued (James, 150), paid (Aisha, 120), void (Wei, 140),
    overdue (Kenji, 210) and partly paid (Zara, 290, 100 paid). None of them has a demo
    billing history."""
    ids = {}
    ids["draft"] = charge(seeded, user_id(seeded, "maria.garcia@patients.example"), CHEN)
    ids["issued"] = issued(seeded, accounts, user_id(seeded, JAMES), HART)
    ids["paid"] = issued(seeded, accounts, user_id(seeded, AISHA), ORTEGA)
    _pay(seeded, accounts, ids["paid"], "120")
    ids["void"] = issued(seeded, accounts, user_id(seeded, "wei.zhang@patients.example"), MEHTA)
    call(seeded, billing.void_invoice, actor=accounts, invoice_id=ids["void"], reason="Entered in error")
    ids["overdue"] = issued(seeded, accounts, user_id(seeded, "kenji.tanaka@patients.example"), HART, CHEN)
    with session_scope(engine=seeded) as s:
        s.execute(sa.update(Invoice).where(Invoice.id == ids["overdue"])
                  .values(due_date=local_today() - timedelta(days=1)))
        s.commit()
    ids["partly"] = issued(seeded, accounts, user_id(seeded, "zara.ahmed@patients.example"), HART, MEHTA)
    _pay(seeded, accounts, ids["partly"], "100")
    return ids


def _listed(engine, accounts, **kwargs) -> list[int]:
    return [row.id for row in call(engine, billing.list_invoices, actor=accounts, page_size=100, **kwargs).rows]


def test_the_invoice_list_filters_by_state(seeded, accounts, ledger):
    ids = ledger
    assert _listed(seeded, accounts) == [ids[k] for k in ("partly", "overdue", "void", "paid", "issued", "draft")]
    assert _listed(seeded, accounts, show="draft") == [ids["draft"]]
    assert _listed(seeded, accounts, show="open") == [ids["partly"], ids["overdue"], ids["issued"]]
    assert _listed(seeded, accounts, show="overdue") == [ids["overdue"]]
    assert _listed(seeded, accounts, show="paid") == [ids["paid"]]
    assert _listed(seeded, accounts, show="void") == [ids["void"]]

    rows = {row.id: row for row in call(seeded, billing.list_invoices, actor=accounts).rows}
    assert [(rows[i].status, rows[i].overdue) for i in ids.values()] == [
        ("being prepared", False), ("issued", False), ("paid", False), ("void", False), ("issued", True),
        ("partly paid", False)]
    partly = rows[ids["partly"]]
    assert (partly.patient, partly.mrn, partly.total, partly.paid, partly.balance, partly.patient_due) == (
        "Zara Ahmed", "MRN-000015", "£290.00", "£100.00", "£190.00", "£190.00")
    draft = rows[ids["draft"]]
    assert (draft.number, draft.issued, draft.due, draft.patient_due) == (f"Draft {ids['draft']}", "", "", "£0.00")


def test_the_invoice_list_searches_by_number_patient_and_mrn(seeded, accounts, ledger):
    ids = ledger
    assert _listed(seeded, accounts, search=_number(seeded, ids["overdue"])) == [ids["overdue"]]
    # "000004" is Kenji's invoice number and Wei's medical record number.
    assert _listed(seeded, accounts, search="000004") == [ids["overdue"], ids["void"]]
    assert _listed(seeded, accounts, search="  sMiTh ") == [ids["issued"]]
    assert _listed(seeded, accounts, search="mrn-000003") == [ids["paid"]]
    assert _listed(seeded, accounts, search="TANAKA") == [ids["overdue"]]
    assert _listed(seeded, accounts, search="%") == []
    assert _listed(seeded, accounts, search="_") == []
    assert _listed(seeded, accounts, search="nobody at all") == []


def test_the_invoice_list_sorts_and_pages(seeded, accounts, ledger):
    ids = ledger
    by_total = [ids[k] for k in ("draft", "paid", "void", "issued", "overdue", "partly")]
    assert _listed(seeded, accounts, sort="total", descending=False) == by_total
    assert _listed(seeded, accounts, sort="total", descending=True) == by_total[::-1]
    assert _listed(seeded, accounts, sort="balance", descending=False) == [
        ids[k] for k in ("paid", "draft", "void", "issued", "partly", "overdue")]
    assert _listed(seeded, accounts, sort="patient", descending=False) == [
        ids[k] for k in ("paid", "issued", "overdue", "draft", "void", "partly")]
    assert _listed(seeded, accounts, sort="no such column") == _listed(seeded, accounts)

    pages = [call(seeded, billing.list_invoices, actor=accounts, sort="total", descending=False, page=n, page_size=4)
             for n in (1, 2, 3)]
    assert [[row.id for row in p.rows] for p in pages] == [by_total[:4], by_total[4:], []]
    assert [(p.total, p.page_count) for p in pages] == [(6, 2)] * 3
    assert call(seeded, billing.list_invoices, actor=accounts, page="x", page_size="y").page_size == 20


def test_a_patient_lists_only_their_own_invoices(seeded, accounts, patient, insured, actors):
    own_issued = issued(seeded, accounts, patient.user_id, HART)
    own_draft = charge(seeded, patient.user_id, CHEN)
    theirs = issued(seeded, accounts, insured.user_id, HART)

    mine = _mine(seeded, patient)
    assert list(mine) == [own_draft, own_issued]
    assert (mine[own_draft].status, mine[own_draft].number) == ("being prepared", f"Draft {own_draft}")
    assert (mine[own_issued].status, mine[own_issued].patient_due) == ("issued", "£150.00")
    assert list(_mine(seeded, insured)) == [theirs]
    assert _mine(seeded, login_as(seeded, AISHA)) == {}

    for role in STAFF:
        with pytest.raises(PermissionDenied):
            call(seeded, billing.my_invoices, actor=actors[role])
    assert_refused(seeded, patient, "invoice.list", lambda s: billing.list_invoices(session=s, actor=patient))

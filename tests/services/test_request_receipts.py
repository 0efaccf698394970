"""A write request done once: booking, dispensing, payments and refunds carry the key their form
was given, and a repeat of the request (a double click, a retry) answers as the first did and
writes nothing, also when both arrive at the same moment on two connections. A key is its
user's, for one action; any other use of it is refused."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from hms_app.db.engine import session_scope
from hms_app.db.enums import Role
from hms_app.db.models import Appointment, RequestReceipt
from hms_app.services.accounting import billing
from hms_app.services.booking import appointments
from hms_app.services.core import receipts
from hms_app.services.core.errors import PermissionDenied, ValidationError
from hms_app.services.medicines import pharmacy
from tests.conftest import login_as
from tests.services.appointment_helpers import (
    DAY,
    OTHER_PATIENT_EMAIL,
    at,
    call,
    department_id,
    freeze,
    iso,
)
from tests.services.billing_helpers import (
    HART,
    all_at_once,
    in_own_session,
    issued,
    new_accounts_clerk,
    payments,
)
from tests.services.clinical_helpers import STRANGER_EMAIL, open_visit, use_private_data_dir
from tests.services.helpers import assert_refused, snapshot, table_count
from tests.services.pharmacy_helpers import (
    dispensations,
    dispensed_quantities,
    freeze_today,
    in_days,
    item_ids,
    new_medicine,
    prescribe,
    receive,
    verify,
)

pytestmark = pytest.mark.db


@pytest.fixture(autouse=True)
def _private_data(monkeypatch, tmp_path):
    yield from use_private_data_dir(monkeypatch, tmp_path)


@pytest.fixture
def key() -> str:
    return receipts.new_request_key()


def _refused(engine, error, service, **kwargs) -> str:
    """A call that must fail with ``error`` and change no table; its message."""
    before = snapshot(engine)
    with session_scope(engine=engine) as s, pytest.raises(error) as raised:
        service(session=s, **kwargs)
    assert snapshot(engine) == before, "a refused call changed the database"
    return raised.value.message


def _receipt(engine, key: str) -> tuple:
    with engine.connect() as conn:
        row = conn.execute(sa.select(RequestReceipt).where(RequestReceipt.key == key)).one()
    return row.actor_id, row.action, row.object_id


# --- the rule itself ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["", "short", "x" * 65, "has spaces in it here!", "../../etc/passwd-000000", 12345])
def test_a_key_the_server_never_issues_is_refused(seeded, actors, bad):
    invoice_id = issued(seeded, actors[Role.ACCOUNTS], actors[Role.PATIENT].user_id, HART)
    assert _refused(seeded, ValidationError, billing.record_payment, actor=actors[Role.ACCOUNTS],
                    invoice_id=invoice_id, amount="10.00", method="cash", request_key=bad) == receipts.EXPIRED


def test_without_a_key_nothing_is_claimed(seeded, actors):
    """Callers with no form (seeds, scripts) write as before, and leave no receipt."""
    invoice_id = issued(seeded, actors[Role.ACCOUNTS], actors[Role.PATIENT].user_id, HART)
    call(seeded, billing.record_payment, actor=actors[Role.ACCOUNTS], invoice_id=invoice_id, amount="10.00",
         method="cash")
    assert table_count(seeded, RequestReceipt) == 0


# --- payments and refunds ----------------------------------------------------------------------------------


def test_a_repeated_payment_answers_as_the_first_and_records_nothing(seeded, actors, key):
    accounts = actors[Role.ACCOUNTS]
    invoice_id = issued(seeded, accounts, actors[Role.PATIENT].user_id, HART)
    first = call(seeded, billing.record_payment, actor=accounts, invoice_id=invoice_id, amount="150.00",
                 method="cash", request_key=key)
    assert first == "paid"
    before = snapshot(seeded)

    # Without the key this is the reported false error: "more than the balance of 0.00".
    assert call(seeded, billing.record_payment, actor=accounts, invoice_id=invoice_id, amount="150.00",
                method="cash", request_key=key) == first

    assert snapshot(seeded) == before
    assert [p.amount_cents for p in payments(seeded, invoice_id)] == [15000]
    assert _receipt(seeded, key) == (accounts.user_id, "payment.record", invoice_id)


def test_a_repeated_part_payment_is_not_taken_twice(seeded, actors, key):
    accounts = actors[Role.ACCOUNTS]
    invoice_id = issued(seeded, accounts, actors[Role.PATIENT].user_id, HART)
    answers = [call(seeded, billing.record_payment, actor=accounts, invoice_id=invoice_id, amount="40.00",
                    method="card", request_key=key) for _ in range(3)]
    assert answers == ["partly paid"] * 3
    assert [p.amount_cents for p in payments(seeded, invoice_id)] == [4000]


def test_a_new_key_is_a_new_payment(seeded, actors, key):
    accounts = actors[Role.ACCOUNTS]
    invoice_id = issued(seeded, accounts, actors[Role.PATIENT].user_id, HART)
    for _ in range(2):
        call(seeded, billing.record_payment, actor=accounts, invoice_id=invoice_id, amount="40.00", method="cash",
             request_key=receipts.new_request_key())
    assert [p.amount_cents for p in payments(seeded, invoice_id)] == [4000, 4000]


def test_a_refused_payment_leaves_its_key_free_for_the_corrected_form(seeded, actors, key):
    accounts = actors[Role.ACCOUNTS]
    invoice_id = issued(seeded, accounts, actors[Role.PATIENT].user_id, HART)
    assert _refused(seeded, ValidationError, billing.record_payment, actor=accounts, invoice_id=invoice_id,
                    amount="999.00", method="cash", request_key=key).startswith("That is more than the balance")
    assert call(seeded, billing.record_payment, actor=accounts, invoice_id=invoice_id, amount="150.00",
                method="cash", request_key=key) == "paid"


def test_a_key_used_on_another_invoice_another_action_or_by_another_user_is_refused(seeded, actors, key):
    accounts, patient = actors[Role.ACCOUNTS], actors[Role.PATIENT]
    first = issued(seeded, accounts, patient.user_id, HART)
    second = issued(seeded, accounts, patient.user_id, HART)
    call(seeded, billing.record_payment, actor=accounts, invoice_id=first, amount="50.00", method="cash",
         request_key=key)

    assert _refused(seeded, ValidationError, billing.record_payment, actor=accounts, invoice_id=second,
                    amount="50.00", method="cash", request_key=key) == receipts.EXPIRED
    assert _refused(seeded, ValidationError, billing.refund_payment, actor=accounts, invoice_id=first,
                    amount="50.00", reason="Paid twice by mistake", request_key=key) == receipts.EXPIRED
    clerk = new_accounts_clerk(seeded, actors[Role.ADMIN])
    assert _refused(seeded, ValidationError, billing.record_payment, actor=clerk, invoice_id=first,
                    amount="50.00", method="cash", request_key=key) == receipts.EXPIRED
    assert [p.amount_cents for p in payments(seeded, first)] == [5000]
    assert payments(seeded, second) == []


@pytest.mark.parametrize("role", [Role.DOCTOR, Role.LAB, Role.PHARMACY, Role.PATIENT])
def test_a_key_opens_no_door_to_a_role_without_the_permission(seeded, actors, role, key):
    accounts = actors[Role.ACCOUNTS]
    invoice_id = issued(seeded, accounts, actors[Role.PATIENT].user_id, HART)
    call(seeded, billing.record_payment, actor=accounts, invoice_id=invoice_id, amount="50.00", method="cash",
         request_key=key)
    for service, action, extra in ((billing.record_payment, "payment.record", {"method": "cash"}),
                                   (billing.refund_payment, "payment.refund", {"reason": "Paid twice by mistake"})):
        assert_refused(seeded, actors[role], action, lambda s, service=service, extra=extra: service(
            session=s, actor=actors[role], invoice_id=invoice_id, amount="50.00", request_key=key, **extra))


def test_a_repeated_refund_gives_back_once(seeded, actors, key):
    accounts = actors[Role.ACCOUNTS]
    invoice_id = issued(seeded, accounts, actors[Role.PATIENT].user_id, HART)
    call(seeded, billing.record_payment, actor=accounts, invoice_id=invoice_id, amount="150.00", method="cash")
    answers = [call(seeded, billing.refund_payment, actor=accounts, invoice_id=invoice_id, amount="50.00",
                    reason="Discount agreed after payment", request_key=key) for _ in range(2)]
    assert answers == ["partly paid", "partly paid"]
    assert [p.amount_cents for p in payments(seeded, invoice_id)] == [15000, -5000]


def test_two_submissions_of_one_payment_form_at_once_record_one_payment(seeded, actors):
    """The same key on two connections at the same moment: one payment, and both are told it was made.
    A part payment, so that without the key both would succeed."""
    accounts = actors[Role.ACCOUNTS]
    for _ in range(3):
        invoice_id = issued(seeded, accounts, actors[Role.PATIENT].user_id, HART)
        key = receipts.new_request_key()
        outcomes = all_at_once(*(in_own_session(billing.record_payment, actor=accounts, invoice_id=invoice_id,
                                                amount="40.00", method="cash", request_key=key) for _ in range(2)))
        assert outcomes == ["partly paid", "partly paid"], outcomes
        assert [p.amount_cents for p in payments(seeded, invoice_id)] == [4000]


# --- booking -----------------------------------------------------------------------------------------------


@pytest.fixture
def clock(monkeypatch):
    return freeze(monkeypatch)


def _book(engine, actor, key, *, starts=None):
    return call(engine, appointments.book_appointment, actor=actor, department_id=department_id(engine, "Cardiology"),
                doctor_id="any", starts_at=iso(starts or at(DAY, 10, 0)), reason="Chest pain", request_key=key)


def _appointments_of(engine, patient_id: int) -> list[int]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(Appointment.id).where(Appointment.patient_id == patient_id)
                                 .where(Appointment.starts_at >= at(DAY, 0, 0))).scalars())


def test_a_repeated_booking_answers_with_the_first_appointment_and_books_nothing(seeded, actors, clock, key):
    patient = actors[Role.PATIENT]
    first = _book(seeded, patient, key)
    before = snapshot(seeded)

    # Without the key this is the reported false error: "That slot was just taken".
    assert _book(seeded, patient, key) == first

    assert snapshot(seeded) == before
    assert _appointments_of(seeded, patient.user_id) == [first]
    assert _receipt(seeded, key) == (patient.user_id, "appointment.book", first)


def test_another_patient_cannot_use_a_booking_key(seeded, actors, clock, key):
    _book(seeded, actors[Role.PATIENT], key)
    other = login_as(seeded, OTHER_PATIENT_EMAIL)
    assert _refused(seeded, ValidationError, appointments.book_appointment, actor=other,
                    department_id=department_id(seeded, "Cardiology"), doctor_id="any",
                    starts_at=iso(at(DAY, 11, 0)), reason="Chest pain", request_key=key) == receipts.EXPIRED


def test_staff_cannot_book_with_a_key(seeded, actors, clock, key):
    for role in (Role.DOCTOR, Role.ACCOUNTS, Role.ADMIN, Role.LAB, Role.PHARMACY):
        before = snapshot(seeded)
        with session_scope(engine=seeded) as s, pytest.raises(PermissionDenied):
            appointments.book_appointment(session=s, actor=actors[role], department_id=department_id(
                seeded, "Cardiology"), doctor_id="any", starts_at=iso(at(DAY, 10, 0)), reason="x", request_key=key)
        assert snapshot(seeded) == before


def test_two_submissions_of_one_booking_form_at_once_book_one_appointment(seeded, actors, clock):
    patient = actors[Role.PATIENT]
    for hour in (9, 10, 11):
        key = receipts.new_request_key()
        work = in_own_session(appointments.book_appointment, actor=patient,
                              department_id=department_id(seeded, "Cardiology"), doctor_id="any",
                              starts_at=iso(at(DAY, hour, 0)), reason="Chest pain", request_key=key)
        outcomes = all_at_once(work, work)
        assert isinstance(outcomes[0], int), outcomes
        assert outcomes == [outcomes[0]] * 2
    assert len(_appointments_of(seeded, patient.user_id)) == 3


# --- dispensing --------------------------------------------------------------------------------------------


@pytest.fixture
def ready(seeded, actors, monkeypatch):
    """A verified prescription of 10 tablets with 30 in stock: (pharmacist, prescription id, item id)."""
    today = freeze_today(monkeypatch)
    doctor, pharmacist = actors[Role.DOCTOR], actors[Role.PHARMACY]
    medicine = new_medicine(seeded, pharmacist, name="Oncemycin")
    receive(seeded, pharmacist, medicine, "ONCE-1", in_days(200, today), 30)
    visit = open_visit(seeded, doctor, login_as(seeded, STRANGER_EMAIL).user_id)
    prescription = verify(seeded, pharmacist, prescribe(seeded, doctor, visit, (medicine, 10)))
    return pharmacist, prescription, item_ids(seeded, prescription)[0]


def _dispense(engine, pharmacist, prescription, item, units, key):
    return call(engine, pharmacy.dispense, actor=pharmacist, prescription_id=prescription,
                quantities={str(item): str(units)}, request_key=key)


def test_a_repeated_dispensing_answers_as_the_first_and_hands_out_nothing(seeded, ready, key):
    pharmacist, prescription, item = ready
    first = _dispense(seeded, pharmacist, prescription, item, 10, key)
    assert first.status == "dispensed"
    before = snapshot(seeded)

    # Without the key: "This prescription is already fully dispensed."
    assert _dispense(seeded, pharmacist, prescription, item, 10, key) == first

    assert snapshot(seeded) == before
    assert dispensed_quantities(seeded, prescription) == [10]
    assert _receipt(seeded, key) == (pharmacist.user_id, "prescription.dispense", prescription)


def test_a_dispensing_key_is_for_its_prescription_and_its_pharmacist(seeded, actors, ready, key):
    pharmacist, prescription, item = ready
    _dispense(seeded, pharmacist, prescription, item, 4, key)
    assert _refused(seeded, ValidationError, pharmacy.dispense, actor=pharmacist, prescription_id=prescription + 1,
                    quantities={str(item): "1"}, request_key=key) == receipts.EXPIRED
    for role in (Role.DOCTOR, Role.PATIENT, Role.ACCOUNTS, Role.ADMIN, Role.LAB):
        assert_refused(seeded, actors[role], "prescription.dispense", lambda s, role=role: pharmacy.dispense(
            session=s, actor=actors[role], prescription_id=prescription, quantities={str(item): "1"},
            request_key=key))
    assert dispensed_quantities(seeded, prescription) == [4]


def test_two_submissions_of_one_dispensing_form_at_once_hand_out_once(seeded, ready):
    """Part of the prescription, so that without the key both would be handed out."""
    pharmacist, prescription, item = ready
    key = receipts.new_request_key()
    work = in_own_session(pharmacy.dispense, actor=pharmacist, prescription_id=prescription,
                          quantities={str(item): "4"}, request_key=key)
    outcomes = all_at_once(work, work)
    assert all(isinstance(o, pharmacy.DispenseResult) for o in outcomes), outcomes
    assert outcomes[0] == outcomes[1]
    assert dispensed_quantities(seeded, prescription) == [4]
    assert sum(units for _, _, units in dispensations(seeded, prescription)) == 4

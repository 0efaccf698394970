"""The pharmacy: the prescription queue, verify and reject, dispensing first-expiring stock
first (never an expired batch), partial dispensing, what the patient sees, who may do any of
it, and two pharmacists dispensing at the same moment."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from hms_app.db.engine import session_scope
from hms_app.db.enums import PrescriptionStatus, Role
from hms_app.db.models import Dispensation, Medicine, PatientProfile, Prescription, StockMovement
from hms_app.db.types import utcnow
from hms_app.operations import demo
from hms_app.services.core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from hms_app.services.core.localtime import format_date, local_today
from hms_app.services.medicines import inventory, pharmacy
from tests.conftest import login_as
from tests.services.appointment_helpers import call, last_notification_id, notifications_since
from tests.services.clinical_helpers import (
    STRANGER_EMAIL,
    medicine_id,
    open_visit,
    use_private_data_dir,
)
from tests.services.helpers import assert_refused, audit_events, snapshot
from tests.services.pharmacy_helpers import (
    all_at_once,
    batches,
    dispensations,
    dispense,
    dispensed_quantities,
    freeze_today,
    in_days,
    item_ids,
    mismatches,
    movements,
    negative_batches,
    new_medicine,
    new_pharmacist,
    on_hand,
    prescribe,
    receive,
    verify,
)

pytestmark = pytest.mark.db

NOT_PHARMACY = [Role.DOCTOR, Role.PATIENT, Role.LAB, Role.ACCOUNTS, Role.ADMIN]
OVERRIDE = "Benefit outweighs the risk; INR monitored weekly"
REASON = "Dose exceeds the maximum for her weight"


@pytest.fixture(autouse=True)
def _private_data(monkeypatch, tmp_path):
    yield from use_private_data_dir(monkeypatch, tmp_path)


@pytest.fixture
def today(monkeypatch):
    return freeze_today(monkeypatch)


@pytest.fixture
def doctor(actors):
    return actors[Role.DOCTOR]


@pytest.fixture
def pharmacist(actors):
    return actors[Role.PHARMACY]


@pytest.fixture
def patient(seeded):
    """Aisha Khan: no allergies or medicines in the demo data."""
    return login_as(seeded, STRANGER_EMAIL)


@pytest.fixture
def other_patient(actors):
    """Maria Garcia."""
    return actors[Role.PATIENT]


@pytest.fixture
def visit(seeded, doctor, patient):
    return open_visit(seeded, doctor, patient.user_id)


@pytest.fixture
def medicine(seeded, pharmacist):
    return new_medicine(seeded, pharmacist, name="Fefomycin", strength="250 mg", price="0.80")


LABEL = "Fefomycin 250 mg tablet"


def _status(engine, prescription_id: int) -> Prescription:
    with session_scope(write=False, engine=engine) as s:
        return s.get(Prescription, prescription_id)


def _refused(engine, error, call_service) -> str:
    """Run a call that must fail with ``error`` and change no table; returns its message."""
    before = snapshot(engine)
    with session_scope(engine=engine) as s, pytest.raises(error) as raised:
        call_service(s)
    assert snapshot(engine) == before, "a refused call changed the database"
    return raised.value.message


def _queue(engine, pharmacist, **kwargs) -> dict[int, pharmacy.QueueRow]:
    page = call(engine, pharmacy.prescription_queue, actor=pharmacist, page_size=100, **kwargs)
    return {row.id: row for row in page.rows}


def _mine(engine, patient) -> dict[int, pharmacy.PatientPrescription]:
    return {p.id: p for p in call(engine, pharmacy.my_prescriptions, actor=patient).rows}


# --- the queue, verify, reject ----------------------------------------------------------------------


def test_the_queue_shows_a_new_prescription_with_its_override_reason(seeded, doctor, pharmacist, patient, visit):
    lines = [(medicine_id(seeded, "warfarin"), 30), (medicine_id(seeded, "aspirin"), 30)]
    prescription_id = prescribe(seeded, doctor, visit, *lines, override_reason=OVERRIDE)
    with seeded.connect() as conn:
        mrn = conn.execute(sa.select(PatientProfile.mrn).where(PatientProfile.user_id == patient.user_id)).scalar_one()

    row = _queue(seeded, pharmacist)[prescription_id]
    assert (row.patient, row.mrn, row.prescriber, row.status, row.status_value, row.status_reason) == (
        "Aisha Khan", mrn, "Dr. Amelia Hart", "issued", "issued", "")
    assert [(i.quantity, i.dispensed, i.override_reason) for i in row.items] == [(30, 0, ""), (30, 0, OVERRIDE)]
    assert row.items[0].medicine.startswith("Warfarin")
    assert f"Override reason: {OVERRIDE}" in row.overrides_text
    assert row.items[1].warnings
    assert row.items[1].warnings in row.overrides_text
    assert row.items_text.splitlines()[0].endswith("· quantity 30")
    assert audit_events(seeded, action="pharmacy.queue")[-1].actor_id == pharmacist.user_id

    assert prescription_id in _queue(seeded, pharmacist, show="issued", search="aisha")
    assert prescription_id in _queue(seeded, pharmacist, search=mrn.lower())
    assert prescription_id not in _queue(seeded, pharmacist, search="nobody by this name")
    assert prescription_id not in _queue(seeded, pharmacist, show="verified")
    assert prescription_id not in _queue(seeded, pharmacist, show="done")


def test_the_open_queue_is_oldest_first_across_statuses_page_by_page(seeded, doctor, pharmacist, visit, medicine):
    ids = [prescribe(seeded, doctor, visit, (medicine, 5)) for _ in range(5)]
    for prescription_id in ids[1::2]:
        verify(seeded, pharmacist, prescription_id)
    newest = utcnow()
    with seeded.begin() as conn:  # issued and verified alternate by age; two share a moment (then by id)
        for age, prescription_id in enumerate(reversed(ids)):
            conn.execute(sa.update(Prescription).where(Prescription.id == prescription_id)
                         .values(created_at=newest - timedelta(days=age // 2)))
    with seeded.connect() as conn:
        expected = conn.execute(sa.select(Prescription.id).where(Prescription.status.in_(pharmacy.OPEN_STATUSES))
                                .order_by(Prescription.created_at, Prescription.id)).scalars().all()

    pages = [call(seeded, pharmacy.prescription_queue, actor=pharmacist, page=n, page_size=2) for n in range(1, 5)]

    assert set(ids) <= set(expected)
    assert [row.id for page in pages for row in page.rows] == expected
    assert {page.total for page in pages} == {len(expected)}


def test_verifying_records_who_checked_it_and_moves_it_along_the_queue(seeded, doctor, pharmacist, visit, medicine):
    prescription_id = prescribe(seeded, doctor, visit, (medicine, 10))
    verify(seeded, pharmacist, prescription_id)
    stored = _status(seeded, prescription_id)
    assert (stored.status, stored.checked_by) == (PrescriptionStatus.VERIFIED, pharmacist.user_id)
    assert stored.checked_at is not None
    [event] = audit_events(seeded, action="prescription.verify")
    assert (event.entity_id, event.patient_id, event.actor_id) == (
        str(prescription_id), stored.patient_id, pharmacist.user_id)
    assert _queue(seeded, pharmacist, show="verified")[prescription_id].status == "verified"
    assert prescription_id not in _queue(seeded, pharmacist, show="issued")

    assert _refused(seeded, Conflict, lambda s: pharmacy.verify_prescription(
        session=s, actor=pharmacist, prescription_id=prescription_id)) == "This prescription is already verified."


@pytest.mark.parametrize("prescription_id", [999_999, "abc", None, -1])
def test_an_unknown_prescription_is_not_found_and_audited(seeded, pharmacist, prescription_id):
    moves = [
        ("prescription.verify", lambda s: pharmacy.verify_prescription(
            session=s, actor=pharmacist, prescription_id=prescription_id)),
        ("prescription.reject", lambda s: pharmacy.reject_prescription(
            session=s, actor=pharmacist, prescription_id=prescription_id, reason=REASON)),
        ("prescription.dispense", lambda s: pharmacy.dispense(
            session=s, actor=pharmacist, prescription_id=prescription_id, quantities={1: 1})),
        ("prescription.view", lambda s: pharmacy.dispense_view(
            session=s, actor=pharmacist, prescription_id=prescription_id)),
    ]
    for action, move in moves:
        error = assert_refused(seeded, pharmacist, action, move, error=NotFound)
        assert error.message == "That prescription does not exist."


def test_a_rejection_needs_a_reason_and_tells_the_doctor_and_the_patient(seeded, doctor, pharmacist, patient, visit,
                                                                          medicine):
    prescription_id = prescribe(seeded, doctor, visit, (medicine, 10))
    for reason in ("", "   ", "no", "bad"):
        assert _refused(seeded, ValidationError, lambda s, r=reason: pharmacy.reject_prescription(
            session=s, actor=pharmacist, prescription_id=prescription_id, reason=r)) == (
            "Say why the prescription is rejected (for example: dose exceeds the maximum).")
    assert _refused(seeded, ValidationError, lambda s: pharmacy.reject_prescription(
        session=s, actor=pharmacist, prescription_id=prescription_id, reason="r" * 501)) == (
        "Keep the reason under 500 characters.")

    before = last_notification_id(seeded)
    call(seeded, pharmacy.reject_prescription, actor=pharmacist, prescription_id=prescription_id,
         reason=f"  {REASON}  ")
    stored = _status(seeded, prescription_id)
    assert (stored.status, stored.status_reason, stored.checked_by) == (
        PrescriptionStatus.REJECTED, REASON, pharmacist.user_id)
    assert notifications_since(seeded, before) == [
        (doctor.user_id, "Prescription rejected by the pharmacy", f"Prescription {prescription_id} for Aisha Khan: {REASON}"),
        (patient.user_id, "Your prescription was not dispensed",
         f"The pharmacy could not dispense prescription {prescription_id}: {REASON} Your doctor has been told."),
    ]
    [event] = audit_events(seeded, action="prescription.reject")
    assert (event.detail, event.patient_id) == (REASON, patient.user_id)
    mine = _mine(seeded, patient)[prescription_id]
    assert (mine.status, mine.status_reason, mine.charge) == ("rejected", REASON, "£0.00")
    done = _queue(seeded, pharmacist, show="done")[prescription_id]
    assert (done.status, done.status_reason) == ("rejected", REASON)
    assert prescription_id not in _queue(seeded, pharmacist)

    rejected = "This prescription was rejected; it can no longer change."
    [item_id] = item_ids(seeded, prescription_id)
    for move in (lambda s: pharmacy.verify_prescription(session=s, actor=pharmacist, prescription_id=prescription_id),
                 lambda s: pharmacy.reject_prescription(session=s, actor=pharmacist, prescription_id=prescription_id,
                                                        reason=REASON),
                 lambda s: pharmacy.dispense(session=s, actor=pharmacist, prescription_id=prescription_id,
                                             quantities={item_id: 1})):
        assert _refused(seeded, Conflict, move) == rejected


def test_a_verified_prescription_can_still_be_rejected(seeded, doctor, pharmacist, visit, medicine):
    prescription_id = verify(seeded, pharmacist, prescribe(seeded, doctor, visit, (medicine, 10)))
    call(seeded, pharmacy.reject_prescription, actor=pharmacist, prescription_id=prescription_id, reason=REASON)
    assert _status(seeded, prescription_id).status == PrescriptionStatus.REJECTED


def test_a_partly_dispensed_prescription_can_no_longer_be_rejected(seeded, doctor, pharmacist, visit, medicine, today):
    receive(seeded, pharmacist, medicine, "P-1", in_days(100, today), 50)
    prescription_id = verify(seeded, pharmacist, prescribe(seeded, doctor, visit, (medicine, 10)))
    [item_id] = item_ids(seeded, prescription_id)
    dispense(seeded, pharmacist, prescription_id, {item_id: 4})
    before = last_notification_id(seeded)
    assert _refused(seeded, Conflict, lambda s: pharmacy.reject_prescription(
        session=s, actor=pharmacist, prescription_id=prescription_id, reason=REASON)) == (
        "Part of this prescription is already dispensed, so it can no longer be rejected.")
    assert _status(seeded, prescription_id).status == PrescriptionStatus.PARTLY_DISPENSED
    assert notifications_since(seeded, before) == []


def test_nothing_is_dispensed_before_the_prescription_is_verified(seeded, doctor, pharmacist, visit, medicine, today):
    receive(seeded, pharmacist, medicine, "P-1", in_days(100, today), 50)
    prescription_id = prescribe(seeded, doctor, visit, (medicine, 10))
    [item_id] = item_ids(seeded, prescription_id)
    assert _refused(seeded, Conflict, lambda s: pharmacy.dispense(
        session=s, actor=pharmacist, prescription_id=prescription_id, quantities={item_id: 10})) == (
        "Verify the prescription before dispensing it.")
    assert on_hand(seeded, medicine) == {"P-1": 50}


# --- dispensing -------------------------------------------------------------------------------------


def test_dispensing_takes_the_first_expiring_batch_first_and_spans_batches(seeded, doctor, pharmacist, visit,
                                                                           medicine, today):
    # Received out of expiry order, so the batch ids do not give FEFO by accident.
    later = receive(seeded, pharmacist, medicine, "LATER", in_days(200, today), 30, unit_cost="0.30")
    receive(seeded, pharmacist, medicine, "LAST", in_days(400, today), 50, unit_cost="0.30")
    first = receive(seeded, pharmacist, medicine, "FIRST", in_days(60, today), 5, unit_cost="0.30")
    prescription_id = verify(seeded, pharmacist, prescribe(seeded, doctor, visit, (medicine, 20)))
    [item_id] = item_ids(seeded, prescription_id)

    [line] = call(seeded, pharmacy.dispense_view, actor=pharmacist, prescription_id=prescription_id).lines
    assert (line.item_id, line.medicine, line.quantity, line.dispensed, line.remaining, line.in_stock,
            line.next_lot) == (item_id, LABEL, 20, 0, 20, 85, f"lot FIRST, expires {format_date(date.fromisoformat(in_days(60, today)))}")

    result = dispense(seeded, pharmacist, prescription_id, {item_id: 12})
    assert result.status == "partly dispensed"
    assert result.summary == f"Dispensed 5 × {LABEL} (lot FIRST); 7 × {LABEL} (lot LATER)."
    assert dispensations(seeded, prescription_id) == [(item_id, "FIRST", 5), (item_id, "LATER", 7)]
    assert on_hand(seeded, medicine) == {"LATER": 23, "LAST": 50, "FIRST": 0}
    assert movements(seeded, medicine)[-2:] == [("FIRST", "dispense", -5), ("LATER", "dispense", -7)]
    with seeded.connect() as conn:
        rows = conn.execute(sa.select(Dispensation).where(Dispensation.prescription_id == prescription_id)
                            .order_by(Dispensation.id)).all()
        ledger = dict(conn.execute(sa.select(StockMovement.dispensation_id, StockMovement.batch_id)
                                   .where(StockMovement.dispensation_id.is_not(None))).all())
    assert [(r.batch_id, r.unit_price_cents, r.dispensed_by) for r in rows] == [
        (first, 80, pharmacist.user_id), (later, 80, pharmacist.user_id)]
    assert {r.id: r.batch_id for r in rows} == {k: v for k, v in ledger.items() if k in {r.id for r in rows}}
    [event] = audit_events(seeded, action="prescription.dispense")
    assert event.detail == f"5 × {LABEL} (lot FIRST); 7 × {LABEL} (lot LATER)"

    [line] = call(seeded, pharmacy.dispense_view, actor=pharmacist, prescription_id=prescription_id).lines
    assert (line.dispensed, line.remaining, line.in_stock, line.next_lot) == (
        12, 8, 73, f"lot LATER, expires {format_date(date.fromisoformat(in_days(200, today)))}")
    assert mismatches(seeded) == []


def test_an_expired_batch_is_never_dispensed_even_when_it_holds_the_stock(seeded, doctor, pharmacist, visit,
                                                                          medicine, today):
    receive(seeded, pharmacist, medicine, "OLD", in_days(1, today), 50)
    receive(seeded, pharmacist, medicine, "NEW", in_days(300, today), 10)
    prescription_id = verify(seeded, pharmacist, prescribe(seeded, doctor, visit, (medicine, 30)))
    [item_id] = item_ids(seeded, prescription_id)
    today.advance(1)  # OLD expires today: it is no longer usable

    [line] = call(seeded, pharmacy.dispense_view, actor=pharmacist, prescription_id=prescription_id).lines
    assert (line.in_stock, line.next_lot) == (10, f"lot NEW, expires {format_date(date.fromisoformat(in_days(299, today)))}")
    dispense(seeded, pharmacist, prescription_id, {item_id: 8})
    assert dispensations(seeded, prescription_id) == [(item_id, "NEW", 8)]
    assert on_hand(seeded, medicine) == {"OLD": 50, "NEW": 2}

    assert _refused(seeded, Conflict, lambda s: pharmacy.dispense(
        session=s, actor=pharmacist, prescription_id=prescription_id, quantities={item_id: 5})) == (
        f"Not enough {LABEL} in stock: 2 usable units on hand, 5 needed. Nothing was dispensed.")
    dispense(seeded, pharmacist, prescription_id, {item_id: 2})
    assert _refused(seeded, Conflict, lambda s: pharmacy.dispense(
        session=s, actor=pharmacist, prescription_id=prescription_id, quantities={item_id: 1})) == (
        f"{LABEL} has run out: no usable units on hand. Nothing was dispensed.")
    [line] = call(seeded, pharmacy.dispense_view, actor=pharmacist, prescription_id=prescription_id).lines
    assert (line.in_stock, line.next_lot, line.remaining) == (0, "none in stock", 20)
    assert on_hand(seeded, medicine) == {"OLD": 50, "NEW": 0}
    assert dispensed_quantities(seeded, prescription_id) == [10]
    assert mismatches(seeded) == []


def test_the_demo_expired_lot_is_passed_over(seeded, doctor, pharmacist, visit):
    """The demo's expired amoxicillin lot comes first by expiry but is never taken."""
    name, strength, units = demo.DEMO_EXPIRED_LOT
    with seeded.connect() as conn:
        amoxicillin = conn.execute(sa.select(Medicine.id).where(Medicine.name == name,
                                                                Medicine.strength == strength)).scalar_one()
    stock = batches(seeded, amoxicillin)
    expired = {b.lot: b.quantity_on_hand for b in stock if b.expiry_date <= local_today()}
    first_usable = min((b for b in stock if b.expiry_date > local_today()), key=lambda b: (b.expiry_date, b.id))
    assert list(expired.values()) == [units]
    assert first_usable.quantity_on_hand >= 6
    prescription_id = verify(seeded, pharmacist, prescribe(seeded, doctor, visit, (amoxicillin, 6)))
    [item_id] = item_ids(seeded, prescription_id)
    dispense(seeded, pharmacist, prescription_id, {item_id: 6})
    assert dispensations(seeded, prescription_id) == [(item_id, first_usable.lot, 6)]
    assert {lot: n for lot, n in on_hand(seeded, amoxicillin).items() if lot in expired} == expired


def test_dispensing_item_by_item_until_complete(seeded, doctor, pharmacist, patient, visit, medicine, today):
    other = new_medicine(seeded, pharmacist, name="Otherol", strength="5 mg", price="1.50")
    receive(seeded, pharmacist, medicine, "F-1", in_days(100, today), 100)
    receive(seeded, pharmacist, other, "O-1", in_days(100, today), 100)
    prescription_id = verify(seeded, pharmacist, prescribe(seeded, doctor, visit, (medicine, 10), (other, 6)))
    first, second = item_ids(seeded, prescription_id)

    assert dispense(seeded, pharmacist, prescription_id, {str(first): "4", second: ""}).status == "partly dispensed"
    assert dispensed_quantities(seeded, prescription_id) == [4, 0]
    mine = _mine(seeded, patient)[prescription_id]
    assert (mine.status, mine.status_value, mine.charge) == ("partly dispensed", "partly_dispensed", "£3.20")
    assert mine.items_text.splitlines()[0].endswith("· 4 of 10 dispensed")
    assert mine.items_text.splitlines()[1].endswith("· 0 of 6 dispensed")
    assert _queue(seeded, pharmacist, show="verified")[prescription_id].status == "partly dispensed"

    dispense(seeded, pharmacist, prescription_id, {second: 6})
    assert dispensed_quantities(seeded, prescription_id) == [4, 6]
    assert _status(seeded, prescription_id).status == PrescriptionStatus.PARTLY_DISPENSED

    before = last_notification_id(seeded)
    assert dispense(seeded, pharmacist, prescription_id, {first: 6}).status == "dispensed"
    assert dispensed_quantities(seeded, prescription_id) == [10, 6]
    assert notifications_since(seeded, before) == [
        (patient.user_id, "Your prescription is ready", f"Prescription {prescription_id} has been dispensed.")]
    mine = _mine(seeded, patient)[prescription_id]
    # 10 x 0.80 + 6 x 1.50, at the prices when dispensed
    assert (mine.status, mine.charge) == ("dispensed", "£17.00")
    assert prescription_id not in _queue(seeded, pharmacist)
    assert _queue(seeded, pharmacist, show="done")[prescription_id].status == "dispensed"
    assert on_hand(seeded, medicine) == {"F-1": 90}
    assert on_hand(seeded, other) == {"O-1": 94}

    assert _refused(seeded, Conflict, lambda s: pharmacy.dispense(
        session=s, actor=pharmacist, prescription_id=prescription_id, quantities={first: 1})) == (
        "This prescription is already fully dispensed.")
    assert mismatches(seeded) == []


def test_more_than_is_still_owed_is_refused(seeded, doctor, pharmacist, visit, medicine, today):
    receive(seeded, pharmacist, medicine, "F-1", in_days(100, today), 100)
    prescription_id = verify(seeded, pharmacist, prescribe(seeded, doctor, visit, (medicine, 10)))
    [item_id] = item_ids(seeded, prescription_id)
    assert _refused(seeded, ValidationError, lambda s: pharmacy.dispense(
        session=s, actor=pharmacist, prescription_id=prescription_id, quantities={item_id: 11})) == (
        f"Only 10 units of {LABEL} are still owed; 11 is more than that.")
    dispense(seeded, pharmacist, prescription_id, {item_id: 4})
    assert _refused(seeded, ValidationError, lambda s: pharmacy.dispense(
        session=s, actor=pharmacist, prescription_id=prescription_id, quantities={item_id: 7})) == (
        f"Only 6 units of {LABEL} are still owed; 7 is more than that.")
    assert dispensed_quantities(seeded, prescription_id) == [4]
    assert on_hand(seeded, medicine) == {"F-1": 96}


@pytest.mark.parametrize(("quantities", "message"), [
    ({"mine": -1}, "A quantity to dispense cannot be negative."),
    ({"mine": "-3"}, "A quantity to dispense cannot be negative."),
    ({"mine": "two"}, "Enter each quantity as a whole number of units."),
    ({"mine": "1.5"}, "Enter each quantity as a whole number of units."),
    ({"mine": 2.0}, "Enter each quantity as a whole number of units."),
    ({"foreign": 1}, "Dispense only the medicines on this prescription."),
    ({"mine": 1, "foreign": 1}, "Dispense only the medicines on this prescription."),
    ({"abc": 1}, "Dispense only the medicines on this prescription."),
    ({999_999: 1}, "Dispense only the medicines on this prescription."),
    ({}, "Enter how many units to dispense of at least one medicine."),
    ({"mine": ""}, "Enter how many units to dispense of at least one medicine."),
    ({"mine": 0}, "Enter how many units to dispense of at least one medicine."),
    ({"mine": None}, "Enter how many units to dispense of at least one medicine."),
    ([1, 2], "Enter a quantity for each medicine to dispense."),
    ("5", "Enter a quantity for each medicine to dispense."),
    (None, "Enter a quantity for each medicine to dispense."),
])
def test_bad_quantities_are_refused_and_nothing_is_written(seeded, doctor, pharmacist, visit, medicine, today,
                                                           quantities, message):
    receive(seeded, pharmacist, medicine, "F-1", in_days(100, today), 100)
    prescription_id = verify(seeded, pharmacist, prescribe(seeded, doctor, visit, (medicine, 10)))
    foreign = verify(seeded, pharmacist, prescribe(seeded, doctor, visit, (medicine, 10)))
    ids = {"mine": item_ids(seeded, prescription_id)[0], "foreign": item_ids(seeded, foreign)[0]}
    if isinstance(quantities, dict):
        quantities = {ids.get(k, k): v for k, v in quantities.items()}
    assert _refused(seeded, ValidationError, lambda s: pharmacy.dispense(
        session=s, actor=pharmacist, prescription_id=prescription_id, quantities=quantities)) == message
    assert dispensations(seeded, prescription_id) == []
    assert _status(seeded, prescription_id).status == PrescriptionStatus.VERIFIED


# --- what the patient sees, and who may do what -----------------------------------------------------------


def test_a_patient_sees_only_their_own_prescriptions(seeded, doctor, pharmacist, patient, other_patient, visit,
                                                    medicine):
    hers = prescribe(seeded, doctor, visit, (medicine, 10))
    theirs = prescribe(seeded, doctor, open_visit(seeded, doctor, other_patient.user_id), (medicine, 5))
    mine = _mine(seeded, patient)
    assert hers in mine
    assert theirs not in mine
    assert (mine[hers].status, mine[hers].prescriber, mine[hers].charge) == ("issued", "Dr. Amelia Hart", "£0.00")
    assert mine[hers].items_text == f"{LABEL} — 1 tablet oral twice daily for 5 days · 0 of 10 dispensed"
    assert set(_mine(seeded, other_patient)) & {hers, theirs} == {theirs}
    # The pharmacy's own view of a prescription is closed to patients, their own included.
    for prescription_id in (hers, theirs):
        assert_refused(seeded, patient, "prescription.view", lambda s, p=prescription_id: pharmacy.dispense_view(
            session=s, actor=patient, prescription_id=p))


@pytest.mark.parametrize("role", [Role.DOCTOR, Role.PHARMACY, Role.LAB, Role.ACCOUNTS, Role.ADMIN])
def test_only_patients_have_a_prescriptions_page(seeded, actors, role):
    actor = actors[role]
    assert_refused(seeded, actor, "prescription.own", lambda s: pharmacy.my_prescriptions(session=s, actor=actor))


@pytest.mark.parametrize("role", NOT_PHARMACY)
def test_only_pharmacy_staff_verify_reject_and_dispense(seeded, actors, doctor, pharmacist, visit, medicine, today,
                                                        role):
    actor = actors[role]
    receive(seeded, pharmacist, medicine, "F-1", in_days(100, today), 100)
    issued = prescribe(seeded, doctor, visit, (medicine, 10))
    verified = verify(seeded, pharmacist, prescribe(seeded, doctor, visit, (medicine, 10)))
    [item_id] = item_ids(seeded, verified)
    moves = [
        ("prescription.verify", lambda s: pharmacy.verify_prescription(session=s, actor=actor, prescription_id=issued)),
        ("prescription.reject", lambda s: pharmacy.reject_prescription(session=s, actor=actor, prescription_id=issued,
                                                                       reason=REASON)),
        ("prescription.dispense", lambda s: pharmacy.dispense(session=s, actor=actor, prescription_id=verified,
                                                              quantities={item_id: 10})),
        ("prescription.view", lambda s: pharmacy.dispense_view(session=s, actor=actor, prescription_id=verified)),
        ("pharmacy.queue", lambda s: pharmacy.prescription_queue(session=s, actor=actor)),
    ]
    for action, move in moves:
        error = assert_refused(seeded, actor, action, move)
        assert isinstance(error, PermissionDenied)
        assert audit_events(seeded, action=action, outcome="denied")[-1].detail == (
            f"role {role} lacks pharmacy.dispense")
    assert _status(seeded, issued).status == PrescriptionStatus.ISSUED
    assert _status(seeded, verified).status == PrescriptionStatus.VERIFIED
    assert on_hand(seeded, medicine) == {"F-1": 100}


# --- two pharmacists at once ------------------------------------------------------------------------------


def _dispensing(actor, prescription_id, quantities):
    """A dispensing in a session and connection of its own, as a handler on another worker runs it."""
    def work():
        with session_scope() as s:
            return pharmacy.dispense(session=s, actor=actor, prescription_id=prescription_id, quantities=quantities)
    return work


@pytest.fixture
def second_pharmacist(seeded, actors):
    return new_pharmacist(seeded, actors[Role.ADMIN])


def test_two_pharmacists_dispensing_the_last_units_at_once_one_wins(seeded, doctor, pharmacist, second_pharmacist,
                                                                    patient, other_patient, today):
    other_visit = open_visit(seeded, doctor, other_patient.user_id)
    visit = open_visit(seeded, doctor, patient.user_id)
    for round_ in range(3):
        medicine = new_medicine(seeded, pharmacist, name=f"Lastmycin {round_}")
        receive(seeded, pharmacist, medicine, "LAST-1", in_days(100, today), 3)
        receive(seeded, pharmacist, medicine, "LAST-2", in_days(200, today), 2)
        prescriptions = [verify(seeded, pharmacist, prescribe(seeded, doctor, v, (medicine, 5)))
                         for v in (visit, other_visit)]
        items = [item_ids(seeded, p)[0] for p in prescriptions]

        outcomes = all_at_once(_dispensing(pharmacist, prescriptions[0], {items[0]: 5}),
                                 _dispensing(second_pharmacist, prescriptions[1], {items[1]: 5}))

        won = [i for i, o in enumerate(outcomes) if isinstance(o, pharmacy.DispenseResult)]
        assert len(won) == 1, outcomes
        winner, loser = won[0], 1 - won[0]
        assert outcomes[winner].status == "dispensed"
        assert isinstance(outcomes[loser], Conflict), outcomes
        assert outcomes[loser].message == (
            f"Lastmycin {round_} 10 mg tablet has run out: no usable units on hand. Nothing was dispensed.")
        assert on_hand(seeded, medicine) == {"LAST-1": 0, "LAST-2": 0}
        assert [units for _, _, units in dispensations(seeded, prescriptions[winner])] == [3, 2]
        assert dispensations(seeded, prescriptions[loser]) == []
        assert dispensed_quantities(seeded, prescriptions[loser]) == [0]
        assert _status(seeded, prescriptions[loser]).status == PrescriptionStatus.VERIFIED
        assert sorted(q for _, kind, q in movements(seeded, medicine) if kind == "dispense") == [-3, -2]
        assert mismatches(seeded) == []
        assert negative_batches(seeded) == 0
    by = {e.actor_id for e in audit_events(seeded, action="prescription.dispense")}
    assert by <= {pharmacist.user_id, second_pharmacist.user_id}
    assert len(audit_events(seeded, action="prescription.dispense")) == 3


@pytest.mark.parametrize(("each", "refusal", "message"), [
    (10, Conflict, "This prescription is already fully dispensed."),
    (7, ValidationError, f"Only 3 units of {LABEL} are still owed; 7 is more than that."),
])
def test_one_prescription_dispensed_by_two_at_once_hands_out_only_what_is_owed(
        seeded, doctor, pharmacist, second_pharmacist, visit, medicine, today, each, refusal, message):
    receive(seeded, pharmacist, medicine, "F-1", in_days(100, today), 50)
    prescription_id = verify(seeded, pharmacist, prescribe(seeded, doctor, visit, (medicine, 10)))
    [item_id] = item_ids(seeded, prescription_id)

    outcomes = all_at_once(_dispensing(pharmacist, prescription_id, {item_id: each}),
                             _dispensing(second_pharmacist, prescription_id, {item_id: each}))

    assert sum(isinstance(o, pharmacy.DispenseResult) for o in outcomes) == 1, outcomes
    [refused] = [o for o in outcomes if not isinstance(o, pharmacy.DispenseResult)]
    assert isinstance(refused, refusal), outcomes
    assert refused.message == message
    assert sum(units for _, _, units in dispensations(seeded, prescription_id)) == each
    assert dispensed_quantities(seeded, prescription_id) == [each]
    assert on_hand(seeded, medicine) == {"F-1": 50 - each}
    assert mismatches(seeded) == []


def test_a_write_off_and_a_dispensing_at_once_never_overdraw_a_batch(seeded, doctor, pharmacist, second_pharmacist,
                                                                     visit, medicine, today):
    batch_id = receive(seeded, pharmacist, medicine, "F-1", in_days(100, today), 6)
    prescription_id = verify(seeded, pharmacist, prescribe(seeded, doctor, visit, (medicine, 6)))
    [item_id] = item_ids(seeded, prescription_id)

    def write_off():
        with session_scope() as s:
            return inventory.adjust_stock(session=s, actor=second_pharmacist, batch_id=batch_id, reason="damaged",
                                          change=-6)

    outcomes = all_at_once(_dispensing(pharmacist, prescription_id, {item_id: 6}), write_off)

    assert sum(not isinstance(o, Exception) for o in outcomes) == 1, outcomes
    [refused] = [o for o in outcomes if isinstance(o, Exception)]
    assert isinstance(refused, Conflict | ValidationError), outcomes
    dispensed = isinstance(outcomes[0], pharmacy.DispenseResult)
    assert dispensed_quantities(seeded, prescription_id) == [6 if dispensed else 0]
    assert [kind for _, kind, _ in movements(seeded, medicine)] == ["receive", "dispense" if dispensed else "damaged"]
    assert on_hand(seeded, medicine) == {"F-1": 0}
    assert mismatches(seeded) == []
    assert negative_batches(seeded) == 0

"""Prescribing with allergy and interaction checks, the pharmacy queue, and lab orders."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
import sqlalchemy as sa

from hms_app.db.engine import session_scope
from hms_app.db.enums import PrescriptionStatus, Role
from hms_app.db.models import LabOrder, Prescription, PrescriptionItem
from hms_app.db.types import utcnow
from hms_app.services.care import clinical, prescribing
from hms_app.services.care.clinical import EncounterForm
from hms_app.services.care.prescribing import (
    DuplicateOrder,
    ItemForm,
    SafetyWarning,
    suggested_quantity,
)
from hms_app.services.core import events, receipts
from hms_app.services.core.errors import Conflict, NotFound, ValidationError
from hms_app.services.core.localtime import format_date
from hms_app.services.laboratory import lab
from hms_app.services.medicines import pharmacy
from tests.conftest import login_as
from tests.services.appointment_helpers import call
from tests.services.clinical_helpers import (
    OTHER_DOCTOR_EMAIL,
    STRANGER_EMAIL,
    any_lab_test_ids,
    medicine_id,
    open_visit,
    use_private_data_dir,
    with_reference_data,
)
from tests.services.helpers import assert_refused, audit_events, snapshot, table_count

pytestmark = pytest.mark.db

NO_CLINICAL_WRITE = [Role.LAB, Role.PHARMACY, Role.ACCOUNTS, Role.PATIENT, Role.ADMIN]
OVERRIDE = "Benefit outweighs the risk; monitored on the ward"


@pytest.fixture(autouse=True)
def _private_data(monkeypatch, tmp_path):
    yield from use_private_data_dir(monkeypatch, tmp_path)


@pytest.fixture
def hospital(seeded):
    return with_reference_data(seeded)


@pytest.fixture
def doctor(actors):
    return actors[Role.DOCTOR]


@pytest.fixture
def patient(hospital):
    """Aisha Khan: no allergies or medicines in the demo data."""
    return login_as(hospital, STRANGER_EMAIL)


@pytest.fixture
def visit(hospital, doctor, patient):
    """An open encounter of Aisha's with Dr Hart."""
    return open_visit(hospital, doctor, patient.user_id)


@pytest.fixture
def changes():
    received: list[events.Change] = []
    events.subscribe(received.append)
    yield received
    events.unsubscribe(received.append)


def item(engine, name: str, *, dose: str = "1 tablet", frequency: str = "twice daily", days: object = 5,
         quantity: object = "", route: str = "oral", instructions: str = "") -> ItemForm:
    return ItemForm(medicine_id=medicine_id(engine, name), dose=dose, route=route, frequency=frequency, days=days,
                    quantity=quantity, instructions=instructions)


def warnings_of(engine, doctor, encounter_id, items) -> list[str]:
    return call(engine, prescribing.check_prescription, actor=doctor, encounter_id=encounter_id, items=items)


def prescribe(engine, doctor, encounter_id, items, override_reason=""):
    """Sign; an override is given for the warnings the items raise now, as the page shows them."""
    read = warnings_of(engine, doctor, encounter_id, items) if override_reason else []
    return call(engine, prescribing.prescribe, actor=doctor, encounter_id=encounter_id, items=items,
                override_reason=override_reason, acknowledged_warnings=read)


def items_of(engine, prescription_id: int) -> list[PrescriptionItem]:
    with session_scope(write=False, engine=engine) as s:
        return list(s.execute(sa.select(PrescriptionItem).where(PrescriptionItem.prescription_id == prescription_id)
                              .order_by(PrescriptionItem.id)).scalars())


def refused_warnings(engine, doctor, encounter_id, items, override_reason="", acknowledged=None) -> list[str]:
    """Prescribe expecting a SafetyWarning: nothing but the warning's audit row may be written."""
    before = snapshot(engine)
    with session_scope(engine=engine) as s, pytest.raises(SafetyWarning) as raised:
        prescribing.prescribe(session=s, actor=doctor, encounter_id=encounter_id, items=items,
                              override_reason=override_reason, acknowledged_warnings=acknowledged)
    assert snapshot(engine) == before
    if raised.value.warnings:
        assert raised.value.message.startswith("Safety check: ")
        assert raised.value.message.endswith("Give a reason to prescribe anyway.")
    return raised.value.warnings


def add_allergy(engine, doctor, patient_id, substance):
    return call(engine, clinical.add_allergy, actor=doctor, patient_id=patient_id, substance=substance)


# --- allergies ------------------------------------------------------------------------------------


def test_an_allergy_to_the_class_warns_and_an_override_signs(hospital, doctor, patient, visit, actors):
    add_allergy(hospital, doctor, patient.user_id, "penicillin")
    amoxicillin = item(hospital, "amoxicillin", dose="1 capsule", frequency="three times daily", days=7)
    warnings = refused_warnings(hospital, doctor, visit, [amoxicillin])
    assert len(warnings) == 1
    assert warnings[0].startswith("Amoxicillin: ")
    assert "penicillin" in warnings[0]
    [warned] = audit_events(hospital, action="prescription.warning")
    assert (warned.patient_id, warned.detail) == (patient.user_id, "1 warning(s); not signed")

    for too_short in ("", "   ", "because"):
        refused_warnings(hospital, doctor, visit, [amoxicillin], override_reason=too_short, acknowledged=warnings)
    with session_scope(engine=hospital) as s, pytest.raises(ValidationError, match="under 500"):
        prescribing.prescribe(session=s, actor=doctor, encounter_id=visit, items=[amoxicillin],
                              override_reason="r" * 501, acknowledged_warnings=warnings)

    prescription_id = prescribe(hospital, doctor, visit, [amoxicillin], override_reason=f"  {OVERRIDE}  ")
    [stored] = items_of(hospital, prescription_id)
    assert (stored.warnings, stored.override_reason, stored.quantity) == (warnings[0], OVERRIDE, 21)
    [signed] = audit_events(hospital, action="prescription.sign")
    assert signed.detail == "1 item(s); 1 warning(s) overridden"

    queue = call(hospital, pharmacy.prescription_queue, actor=actors[Role.PHARMACY])
    [row] = queue.rows
    assert (row.id, row.patient) == (prescription_id, "Aisha Khan")
    assert OVERRIDE in row.overrides_text
    assert warnings[0] in row.overrides_text
    assert (row.items[0].warnings, row.items[0].override_reason) == (warnings[0], OVERRIDE)
    orders = call(hospital, prescribing.encounter_orders, actor=doctor, encounter_id=visit)
    assert orders[0].text.endswith(f"— override: {OVERRIDE}")


def test_an_allergy_to_an_ingredient_warns(hospital, doctor, patient, visit):
    add_allergy(hospital, doctor, patient.user_id, "Amoxicillin")
    warnings = refused_warnings(hospital, doctor, visit, [item(hospital, "amoxicillin")])
    assert len(warnings) == 1
    assert warnings[0].startswith("Amoxicillin: ")
    assert "Amoxicillin" in warnings[0][len("Amoxicillin: "):], "the recorded allergy is quoted"


def test_unrelated_or_resolved_allergies_do_not_warn(hospital, doctor, patient, visit):
    add_allergy(hospital, doctor, patient.user_id, "Latex")
    resolved = add_allergy(hospital, doctor, patient.user_id, "penicillin")
    call(hospital, clinical.resolve_allergy, actor=doctor, allergy_id=resolved)
    prescription_id = prescribe(hospital, doctor, visit, [item(hospital, "amoxicillin")])
    [stored] = items_of(hospital, prescription_id)
    assert (stored.warnings, stored.override_reason) == ("", "")


def test_check_prescription_reports_without_writing(hospital, doctor, patient, visit):
    add_allergy(hospital, doctor, patient.user_id, "penicillin")
    before = snapshot(hospital)
    warnings = call(hospital, prescribing.check_prescription, actor=doctor, encounter_id=visit,
                    items=[item(hospital, "amoxicillin")])
    assert len(warnings) == 1
    assert snapshot(hospital) == before


# --- interactions ------------------------------------------------------------------------------------


def test_two_items_that_interact_warn(hospital, doctor, visit):
    items = [item(hospital, "warfarin", frequency="once daily"), item(hospital, "aspirin", frequency="once daily")]
    warnings = refused_warnings(hospital, doctor, visit, items)
    assert warnings
    assert all("Warfarin" in w and "Aspirin" in w for w in warnings)
    prescription_id = prescribe(hospital, doctor, visit, items, override_reason=OVERRIDE)
    stored = items_of(hospital, prescription_id)
    assert [bool(i.override_reason) for i in stored] == [False, True], "the warning sits on the item that raised it"


def test_an_interaction_with_a_current_medicine_warns(hospital, doctor, patient, visit):
    prescribe(hospital, doctor, visit, [item(hospital, "warfarin", frequency="once daily", days=30)])
    later = open_visit(hospital, doctor, patient.user_id)
    warnings = refused_warnings(hospital, doctor, later, [item(hospital, "aspirin", frequency="once daily")])
    assert warnings
    assert "with Warfarin" in warnings[0]


@pytest.mark.parametrize("change", ["rejected", "old"])
def test_rejected_or_old_prescriptions_are_not_current_medicines(hospital, doctor, patient, visit, change):
    earlier = prescribe(hospital, doctor, visit, [item(hospital, "warfarin", frequency="once daily", days=30)])
    values = ({"status": PrescriptionStatus.REJECTED.value} if change == "rejected"
              else {"created_at": utcnow() - timedelta(days=prescribing.CURRENT_MEDICINE_DAYS + 1)})
    with hospital.begin() as conn:
        conn.execute(sa.update(Prescription).where(Prescription.id == earlier).values(**values))
    later = open_visit(hospital, doctor, patient.user_id)
    assert prescribe(hospital, doctor, later, [item(hospital, "aspirin", frequency="once daily")]) > earlier


# --- quantities and validation ------------------------------------------------------------------------


@pytest.mark.parametrize(("dose", "frequency", "days", "expected"), [
    ("2 tablets", "twice daily", 5, 20),
    ("1 tablet", "once daily", 1, 1),
    ("5 ml", "three times daily", 7, 105),
    ("0.5 tablet", "twice daily", 3, 3),
    ("0,5 tablet", "once daily", 3, 2),  # 1.5 rounds up: never dispense too little
    ("1 tablet", "once weekly", 14, 2),
    ("1 tablet", "once weekly", 10, 2),
    ("half a tablet", "every 8 hours", 2, 6),  # no leading number: one unit a dose
])
def test_suggested_quantity(dose, frequency, days, expected):
    assert suggested_quantity(dose, frequency, days) == expected


def test_the_quantity_is_computed_unless_the_doctor_sets_it(hospital, doctor, visit):
    computed = prescribe(hospital, doctor, visit, [item(hospital, "paracetamol", dose="2 tablets",
                                                        frequency="twice daily", days=5)])
    assert [i.quantity for i in items_of(hospital, computed)] == [20]
    edited = prescribe(hospital, doctor, visit, [item(hospital, "paracetamol", dose="2 tablets",
                                                      frequency="twice daily", days=5, quantity=" 24 ")])
    assert [i.quantity for i in items_of(hospital, edited)] == [24]


@pytest.mark.parametrize(("change", "message"), [
    ({"medicine_id": 999_999}, "Medicine 1: choose a medicine from the formulary."),
    ({"medicine_id": "abc"}, "Medicine 1: choose a medicine from the formulary."),
    ({"dose": "  "}, "enter the dose"),
    ({"dose": "1" * 61}, "enter the dose"),
    ({"route": "by mouth"}, "choose a route from the list"),
    ({"frequency": "hourly"}, "choose a frequency from the list"),
    ({"days": 0}, "the number of days must be between 1 and 365"),
    ({"days": 366}, "the number of days must be between 1 and 365"),
    ({"days": "five"}, "the number of days must be between 1 and 365"),
    ({"quantity": "0"}, "the quantity must be a whole number from 1 to 10000"),
    ({"quantity": "10001"}, "the quantity must be a whole number from 1 to 10000"),
    ({"quantity": "2.5"}, "the quantity must be a whole number from 1 to 10000"),
    ({"instructions": "i" * 501}, "keep the instructions under 500 characters"),
])
def test_item_validation(hospital, doctor, visit, change, message):
    form = dataclasses.replace(item(hospital, "paracetamol"), **change)
    before = snapshot(hospital)
    with session_scope(engine=hospital) as s, pytest.raises(ValidationError) as raised:
        prescribing.prescribe(session=s, actor=doctor, encounter_id=visit, items=[form])
    assert message in raised.value.message
    assert snapshot(hospital) == before


def test_a_prescription_holds_one_to_twenty_items(hospital, doctor, visit):
    for items, message in (([], "Add at least one medicine."),
                           ([item(hospital, "paracetamol")] * 21, "at most 20 medicines")):
        with session_scope(engine=hospital) as s, pytest.raises(ValidationError, match=message):
            prescribing.prescribe(session=s, actor=doctor, encounter_id=visit, items=items)
    assert table_count(hospital, Prescription) == 0


@pytest.mark.parametrize("role", NO_CLINICAL_WRITE)
def test_roles_without_clinical_write_cannot_prescribe(hospital, actors, visit, role):
    actor = actors[role]
    items = [item(hospital, "paracetamol")]
    assert_refused(hospital, actor, "prescription.sign", lambda s: prescribing.prescribe(
        session=s, actor=actor, encounter_id=visit, items=items))
    assert_refused(hospital, actor, "prescription.check", lambda s: prescribing.check_prescription(
        session=s, actor=actor, encounter_id=visit, items=items))
    assert_refused(hospital, actor, "formulary.search", lambda s: prescribing.formulary(session=s, actor=actor))


def test_another_doctor_cannot_prescribe_in_this_encounter(hospital, visit):
    other = login_as(hospital, OTHER_DOCTOR_EMAIL)
    assert_refused(hospital, other, "prescription.sign", lambda s: prescribing.prescribe(
        session=s, actor=other, encounter_id=visit, items=[item(hospital, "paracetamol")]), error=NotFound)


def test_a_completed_encounter_takes_no_more_orders(hospital, doctor, visit):
    call(hospital, clinical.save_encounter, actor=doctor, encounter_id=visit, form=EncounterForm(diagnosis="Flu"))
    call(hospital, clinical.complete_encounter, actor=doctor, encounter_id=visit)
    with session_scope(engine=hospital) as s, pytest.raises(Conflict, match="completed"):
        prescribing.prescribe(session=s, actor=doctor, encounter_id=visit, items=[item(hospital, "paracetamol")])
    with session_scope(engine=hospital) as s, pytest.raises(Conflict, match="completed"):
        prescribing.order_lab_tests(session=s, actor=doctor, encounter_id=visit,
                                    test_ids=any_lab_test_ids(hospital, 1), priority="routine")


def test_formulary_search(hospital, doctor):
    found = call(hospital, prescribing.formulary, actor=doctor, search="AMOX")
    assert found
    assert all("amox" in m.label.lower() for m in found)
    assert "Amoxicillin 500 mg (capsule)" in [m.label for m in found]
    assert call(hospital, prescribing.formulary, actor=doctor, search="%") == []


def test_a_signed_prescription_reaches_the_pharmacy_and_a_refused_one_does_not(hospital, doctor, patient, visit,
                                                                                changes):
    add_allergy(hospital, doctor, patient.user_id, "penicillin")
    changes.clear()
    refused_warnings(hospital, doctor, visit, [item(hospital, "amoxicillin")])
    assert changes == []
    prescribe(hospital, doctor, visit, [item(hospital, "paracetamol")])
    [change] = changes
    assert change.topic == "prescriptions"
    assert "pharmacy" in change.roles
    assert {patient.user_id, doctor.user_id} <= change.user_ids


@pytest.mark.parametrize("role", [Role.DOCTOR, Role.LAB, Role.ACCOUNTS, Role.PATIENT, Role.ADMIN])
def test_only_the_pharmacy_sees_the_queue(hospital, actors, role):
    assert_refused(hospital, actors[role], "pharmacy.queue",
                   lambda s: pharmacy.prescription_queue(session=s, actor=actors[role]))


# --- lab orders -------------------------------------------------------------------------------------


def test_lab_orders_appear_on_the_worklist_stat_urgent_routine(hospital, doctor, patient, visit, actors, changes):
    routine, urgent, stat = any_lab_test_ids(hospital, 3)
    ids = {}
    for priority, test_id in (("routine", routine), ("urgent", urgent), ("stat", stat)):
        [ids[priority]] = call(hospital, prescribing.order_lab_tests, actor=doctor, encounter_id=visit,
                               test_ids=[str(test_id)], priority=priority, note=f"{priority}  sample")
    worklist = call(hospital, lab.worklist, actor=actors[Role.LAB])
    assert [(r.id, r.priority) for r in worklist.rows] == [
        (ids["stat"], "stat"), (ids["urgent"], "urgent"), (ids["routine"], "routine")]
    assert worklist.rows[0].patient == "Aisha Khan"
    assert worklist.rows[0].note == "stat sample"
    assert {c.topic for c in changes} == {"lab"}
    assert all("lab" in c.roles for c in changes)
    assert [e.patient_id for e in audit_events(hospital, action="lab_order.create")] == [patient.user_id] * 3


def test_several_tests_in_one_order(hospital, doctor, visit):
    test_ids = any_lab_test_ids(hospital, 3)
    order_ids = call(hospital, prescribing.order_lab_tests, actor=doctor, encounter_id=visit,
                     test_ids=[*test_ids, test_ids[0]], priority="urgent")
    assert len(order_ids) == 3
    with hospital.connect() as conn:
        assert sorted(conn.execute(sa.select(LabOrder.test_id)).scalars()) == sorted(test_ids)


@pytest.mark.parametrize(("tests", "priority", "note", "message"), [
    ("one", "asap", "", "Choose routine, urgent or stat."),
    ("none", "routine", "", "Choose at least one test."),
    ("unknown", "routine", "", "Choose tests from the catalog."),
    ("text", "routine", "", "Choose tests from the catalog."),
    ("many", "routine", "", "Order at most 20 tests at once."),
    ("one", "routine", "n" * 501, "Keep the note for the lab under 500 characters."),
])
def test_lab_order_validation(hospital, doctor, visit, tests, priority, note, message):
    test_ids = {"one": any_lab_test_ids(hospital, 1), "none": [], "unknown": [999_999], "text": ["CBC"],
                "many": list(range(1, 22))}[tests]
    before = snapshot(hospital)
    with session_scope(engine=hospital) as s, pytest.raises(ValidationError) as raised:
        prescribing.order_lab_tests(session=s, actor=doctor, encounter_id=visit, test_ids=test_ids,
                                    priority=priority, note=note)
    assert raised.value.message == message
    assert snapshot(hospital) == before


@pytest.mark.parametrize("role", NO_CLINICAL_WRITE)
def test_roles_without_clinical_write_cannot_order_tests(hospital, actors, visit, role):
    actor = actors[role]
    test_ids = any_lab_test_ids(hospital, 1)
    assert_refused(hospital, actor, "lab_order.create", lambda s: prescribing.order_lab_tests(
        session=s, actor=actor, encounter_id=visit, test_ids=test_ids, priority="routine"))


@pytest.mark.parametrize("role", [Role.DOCTOR, Role.PHARMACY, Role.ACCOUNTS, Role.PATIENT, Role.ADMIN])
def test_only_the_lab_sees_the_worklist(hospital, actors, role):
    assert_refused(hospital, actors[role], "lab.worklist", lambda s: lab.worklist(session=s, actor=actors[role]))


# --- an override is given for the warnings read (issue 16, item 1) ------------------------------


def test_an_override_counts_only_for_the_warnings_the_items_raise_now(hospital, doctor, patient, visit):
    add_allergy(hospital, doctor, patient.user_id, "penicillin")
    amoxicillin = item(hospital, "amoxicillin", dose="1 capsule", frequency="three times daily", days=7)
    aspirin = item(hospital, "aspirin", frequency="once daily")
    read = warnings_of(hospital, doctor, visit, [amoxicillin])
    assert len(read) == 1

    # The doctor read amoxicillin's warning, then changed the item to aspirin: the override
    # was given for other items, and aspirin raises nothing, so the signature is refused.
    with session_scope(engine=hospital) as s, pytest.raises(SafetyWarning) as stale:
        prescribing.prescribe(session=s, actor=doctor, encounter_id=visit, items=[aspirin],
                              override_reason=OVERRIDE, acknowledged_warnings=read)
    assert stale.value.warnings == []
    assert "changed" in stale.value.message
    # A client that sends a reason without the warnings it overrides, or other ones, is refused.
    for acknowledged in (None, [], ["Amoxicillin: something else."], [*read, "Amoxicillin with warfarin: bleeding."],
                         [w.upper() for w in read]):
        assert refused_warnings(hospital, doctor, visit, [amoxicillin], override_reason=OVERRIDE,
                                acknowledged=acknowledged) == read
    [*_, last] = audit_events(hospital, action="prescription.warning")
    assert last.detail == "1 warning(s); not signed; the override was given for other warnings"
    with hospital.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(Prescription)).scalar_one() == 0

    # Aspirin with no override signs plainly; amoxicillin with its own warning acknowledged signs.
    plain = call(hospital, prescribing.prescribe, actor=doctor, encounter_id=visit, items=[aspirin])
    assert [i.override_reason for i in items_of(hospital, plain)] == [""]
    overridden = call(hospital, prescribing.prescribe, actor=doctor, encounter_id=visit, items=[amoxicillin],
                      override_reason=OVERRIDE, acknowledged_warnings=list(reversed(read)))
    assert [i.override_reason for i in items_of(hospital, overridden)] == [OVERRIDE]


def test_a_warning_added_after_reading_needs_a_new_override(hospital, doctor, patient, visit):
    warfarin = item(hospital, "warfarin", frequency="once daily", days=30)
    aspirin = item(hospital, "aspirin", frequency="once daily")
    read = warnings_of(hospital, doctor, visit, [warfarin, aspirin])
    assert read
    add_allergy(hospital, doctor, patient.user_id, "aspirin")  # recorded by a colleague meanwhile
    now = refused_warnings(hospital, doctor, visit, [warfarin, aspirin], override_reason=OVERRIDE,
                           acknowledged=read)
    assert set(read) < set(now)


@pytest.mark.parametrize("acknowledged", ["Amoxicillin: penicillin", [1, 2], ["w" * 2_001], ["w"] * 101, {"a": 1}])
def test_acknowledged_warnings_of_the_wrong_shape_are_refused(hospital, doctor, visit, acknowledged):
    before = snapshot(hospital)
    with session_scope(engine=hospital) as s, pytest.raises(ValidationError, match="Read the safety warnings"):
        prescribing.prescribe(session=s, actor=doctor, encounter_id=visit, items=[item(hospital, "paracetamol")],
                              override_reason=OVERRIDE, acknowledged_warnings=acknowledged)
    assert snapshot(hospital) == before


def test_check_medicines_follows_the_items_as_they_change(hospital, doctor, patient, visit):
    add_allergy(hospital, doctor, patient.user_id, "penicillin")
    amoxicillin, aspirin = medicine_id(hospital, "amoxicillin"), medicine_id(hospital, "aspirin")
    before = snapshot(hospital)
    [warning] = call(hospital, prescribing.check_medicines, actor=doctor, encounter_id=visit,
                     medicine_ids=[str(amoxicillin)])
    assert warning == warnings_of(hospital, doctor, visit, [item(hospital, "amoxicillin")])[0]
    assert call(hospital, prescribing.check_medicines, actor=doctor, encounter_id=visit, medicine_ids=[aspirin]) == []
    for junk in ([], ["", "x", 999_999, None], "12", None):
        assert call(hospital, prescribing.check_medicines, actor=doctor, encounter_id=visit, medicine_ids=junk) == []
    assert snapshot(hospital) == before


@pytest.mark.parametrize("role", NO_CLINICAL_WRITE)
def test_roles_without_clinical_write_cannot_check_medicines(hospital, actors, visit, role):
    actor = actors[role]
    assert_refused(hospital, actor, "prescription.check", lambda s: prescribing.check_medicines(
        session=s, actor=actor, encounter_id=visit, medicine_ids=[medicine_id(hospital, "aspirin")]))


def test_another_doctors_encounter_is_not_checked(hospital, visit):
    other = login_as(hospital, OTHER_DOCTOR_EMAIL)
    assert_refused(hospital, other, "prescription.check", lambda s: prescribing.check_medicines(
        session=s, actor=other, encounter_id=visit, medicine_ids=[medicine_id(hospital, "aspirin")]), error=NotFound)


# --- a test already open is ordered again only when confirmed (issue 16, item 8) ------------------


def _set_status(engine, order_id: int, status: str) -> None:
    with engine.begin() as conn:
        conn.execute(sa.update(LabOrder).where(LabOrder.id == order_id).values(status=status))


def test_a_test_already_open_is_ordered_again_only_when_confirmed(hospital, doctor, visit):
    test_id, other_test = any_lab_test_ids(hospital, 2)
    [first] = call(hospital, prescribing.order_lab_tests, actor=doctor, encounter_id=visit, test_ids=[test_id],
                   priority="routine")
    for status in ("requested", "collected", "in_progress"):
        _set_status(hospital, first, status)
        before = snapshot(hospital)
        for confirm in (False, "yes", 1):
            with session_scope(engine=hospital) as s, pytest.raises(DuplicateOrder) as raised:
                prescribing.order_lab_tests(session=s, actor=doctor, encounter_id=visit,
                                            test_ids=[other_test, test_id], priority="urgent", confirm_duplicate=confirm)
            assert snapshot(hospital) == before
        with hospital.connect() as conn:
            name = conn.execute(sa.text("SELECT name FROM lab_test WHERE id = :i"), {"i": test_id}).scalar_one()
            ordered_at = conn.execute(sa.select(LabOrder.ordered_at).where(LabOrder.id == first)).scalar_one()
        [line] = raised.value.open_orders
        assert line == f"{name} is already open, ordered {format_date(ordered_at)} by {doctor_name(hospital, doctor)}"
        assert raised.value.message == f"{line} — order again?"
    again = call(hospital, prescribing.order_lab_tests, actor=doctor, encounter_id=visit,
                 test_ids=[other_test, test_id], priority="urgent", confirm_duplicate=True)
    assert len(again) == 2
    assert len(audit_events(hospital, action="lab_order.create")) == 3


@pytest.mark.parametrize("status", ["completed", "cancelled"])
def test_a_closed_order_of_the_same_test_needs_no_confirmation(hospital, doctor, visit, status):
    [test_id] = any_lab_test_ids(hospital, 1)
    [first] = call(hospital, prescribing.order_lab_tests, actor=doctor, encounter_id=visit, test_ids=[test_id],
                   priority="routine")
    _set_status(hospital, first, status)
    [second] = call(hospital, prescribing.order_lab_tests, actor=doctor, encounter_id=visit, test_ids=[test_id],
                    priority="routine")
    assert second != first


def test_another_patients_open_order_is_no_duplicate(hospital, doctor, visit, actors):
    [test_id] = any_lab_test_ids(hospital, 1)
    elsewhere = open_visit(hospital, doctor, actors[Role.PATIENT].user_id)
    call(hospital, prescribing.order_lab_tests, actor=doctor, encounter_id=elsewhere, test_ids=[test_id],
         priority="routine")
    assert len(call(hospital, prescribing.order_lab_tests, actor=doctor, encounter_id=visit, test_ids=[test_id],
                    priority="routine")) == 1


def doctor_name(engine, doctor) -> str:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT full_name FROM \"user\" WHERE id = :i"), {"i": doctor.user_id}).scalar_one()


# --- a double click on the prescribing and ordering forms --------------------------------------------------


def test_a_repeated_signature_answers_with_the_first_prescription_and_signs_no_second(hospital, doctor, visit):
    key = receipts.new_request_key()
    items = [item(hospital, "Paracetamol")]
    first = call(hospital, prescribing.prescribe, actor=doctor, encounter_id=visit, items=items, request_key=key)
    before = snapshot(hospital)
    again = call(hospital, prescribing.prescribe, actor=doctor, encounter_id=visit, items=items, request_key=key)
    assert again == first
    assert snapshot(hospital) == before
    # A new form (a new key) signs a new prescription, as a doctor who means it would.
    assert prescribe(hospital, doctor, visit, items) != first


def test_a_repeated_order_answers_with_the_first_orders_and_is_no_duplicate(hospital, doctor, visit):
    key = receipts.new_request_key()
    tests = any_lab_test_ids(hospital, 2)
    first = call(hospital, prescribing.order_lab_tests, actor=doctor, encounter_id=visit, test_ids=tests,
                 priority="stat", request_key=key)
    before = snapshot(hospital)
    again = call(hospital, prescribing.order_lab_tests, actor=doctor, encounter_id=visit, test_ids=tests,
                 priority="stat", request_key=key)
    assert sorted(again) == sorted(first)
    assert snapshot(hospital) == before
    with pytest.raises(DuplicateOrder):  # without the key it is a second order of open tests
        call(hospital, prescribing.order_lab_tests, actor=doctor, encounter_id=visit, test_ids=tests, priority="stat")


def test_a_signing_key_is_for_its_encounter_and_its_doctor(hospital, doctor, visit, actors):
    key = receipts.new_request_key()
    items = [item(hospital, "Paracetamol")]
    call(hospital, prescribing.prescribe, actor=doctor, encounter_id=visit, items=items, request_key=key)
    other_visit = open_visit(hospital, doctor, login_as(hospital, "james.smith@patients.example").user_id)
    with pytest.raises(ValidationError, match="expired"):
        call(hospital, prescribing.prescribe, actor=doctor, encounter_id=other_visit, items=items, request_key=key)

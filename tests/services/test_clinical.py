"""The clinical record: chart access and break-glass, allergies, problems, encounters with
vitals, completion, and the timeline paged in SQL."""

from __future__ import annotations

import dataclasses
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from hms_app import settings
from hms_app.db.engine import session_scope
from hms_app.db.enums import AppointmentStatus, EncounterStatus, LabPriority, Role
from hms_app.db.models import Allergy, Appointment, BreakGlass, Encounter, Problem
from hms_app.db.types import utcnow
from hms_app.services.booking import appointments
from hms_app.services.care import clinical, prescribing
from hms_app.services.care.clinical import (
    VITAL_RANGES,
    BreakGlassRequired,
    EncounterForm,
    parse_vitals,
)
from hms_app.services.core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from hms_app.services.laboratory import lab
from hms_app.services.medicines import pharmacy
from tests.conftest import login_as
from tests.services.appointment_helpers import appointment, call
from tests.services.clinical_helpers import (
    OTHER_DOCTOR_EMAIL,
    SOAP_FIELDS,
    STRANGER_EMAIL,
    any_lab_test_ids,
    care_appointment,
    encounter,
    medicine_id,
    open_visit,
    use_private_data_dir,
    with_reference_data,
)
from tests.services.helpers import assert_refused, audit_events, last_audit_id, snapshot

pytestmark = pytest.mark.db


def _after_midnight(days: int) -> datetime:
    """Seven minutes past local midnight ``days`` from today: in the future, and clear of the demo
    doctors' clinics, an overlap with which PostgreSQL's exclusion constraint refuses."""
    today = utcnow().astimezone(settings.TIMEZONE).replace(hour=0, minute=0, second=0, microsecond=0)
    return (today + timedelta(days=days, minutes=7)).astimezone(utcnow().tzinfo)

NO_CHART_ROLES = [Role.LAB, Role.PHARMACY, Role.ACCOUNTS, Role.PATIENT, Role.ADMIN]
"""Roles without clinical.read / clinical.write by default."""


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
def patient(actors):
    return actors[Role.PATIENT]


@pytest.fixture
def other_doctor(hospital):
    return login_as(hospital, OTHER_DOCTOR_EMAIL)


@pytest.fixture
def stranger(hospital):
    """A patient with no appointment with Dr Hart."""
    return login_as(hospital, STRANGER_EMAIL)


@pytest.fixture
def maria(hospital, doctor, patient):
    """Maria Garcia, under Dr Hart's care through a confirmed appointment that has started."""
    care_appointment(hospital, doctor, patient.user_id)
    return patient.user_id


def _chart_audits(engine, after_id, action="chart.view"):
    return audit_events(engine, action=action, after_id=after_id)


# --- chart access ---------------------------------------------------------------------------------


def test_doctor_opens_the_chart_of_a_patient_they_have_an_appointment_with(hospital, doctor, maria):
    before = last_audit_id(hospital)
    chart = call(hospital, clinical.open_chart, actor=doctor, patient_id=maria)
    assert (chart.patient_id, chart.full_name, chart.via_break_glass) == (maria, "Maria Garcia", False)
    assert chart.mrn
    assert [a.substance for a in chart.allergies] == ["Penicillin"]  # from the demo data
    [row] = _chart_audits(hospital, before)
    assert (row.actor_id, row.patient_id, str(row.outcome), row.entity_id) == (doctor.user_id, maria, "success", str(maria))


def test_a_requested_appointment_also_makes_the_patient_the_doctors(hospital, doctor, stranger):
    care_appointment(hospital, doctor, stranger.user_id, starts_at=_after_midnight(3),
                     status=AppointmentStatus.REQUESTED)
    assert call(hospital, clinical.open_chart, actor=doctor, patient_id=stranger.user_id).via_break_glass is False


def test_another_patients_chart_needs_break_glass_and_the_refusal_is_audited(hospital, doctor, stranger):
    error = assert_refused(hospital, doctor, "chart.view",
                           lambda s: clinical.open_chart(session=s, actor=doctor, patient_id=stranger.user_id),
                           error=BreakGlassRequired)
    assert "breaking the glass" in error.message
    [row] = audit_events(hospital, action="chart.view", outcome="denied")
    assert row.patient_id == stranger.user_id


def test_another_doctors_patient_needs_break_glass(hospital, doctor, other_doctor, maria):
    with session_scope(engine=hospital) as s, pytest.raises(BreakGlassRequired):
        clinical.open_chart(session=s, actor=other_doctor, patient_id=maria)


@pytest.mark.parametrize("bad_id", [999_999, "abc", None, -1])
def test_an_unknown_patient_is_not_found_and_audited(hospital, doctor, bad_id):
    assert_refused(hospital, doctor, "chart.view",
                   lambda s: clinical.open_chart(session=s, actor=doctor, patient_id=bad_id), error=NotFound)


def test_break_glass_opens_the_chart_for_four_hours_then_it_closes(hospital, doctor, stranger, actors):
    with session_scope(engine=hospital) as s, pytest.raises(ValidationError, match="at least 10 characters"):
        clinical.break_glass(session=s, actor=doctor, patient_id=stranger.user_id, reason="  urgent  ")
    assert _break_glass_rows(hospital) == []

    started = utcnow()
    call(hospital, clinical.break_glass, actor=doctor, patient_id=stranger.user_id,
         reason="Unconscious in A&E, needs   allergy history")
    [entry] = _break_glass_rows(hospital)
    assert entry.reason == "Unconscious in A&E, needs allergy history"
    assert timedelta(hours=4) <= entry.expires_at - started < timedelta(hours=4, minutes=1)
    [row] = audit_events(hospital, action="chart.break_glass")
    assert (row.patient_id, row.entity_id) == (stranger.user_id, str(entry.id))

    before = last_audit_id(hospital)
    chart = call(hospital, clinical.open_chart, actor=doctor, patient_id=stranger.user_id)
    assert chart.via_break_glass is True
    [view] = _chart_audits(hospital, before)
    assert (view.patient_id, view.detail) == (stranger.user_id, "break-glass")

    page = call(hospital, clinical.list_break_glass, actor=actors[Role.ADMIN])
    assert page.total == 1
    assert (page.rows[0].doctor, page.rows[0].patient, page.rows[0].reason) == (
        "Dr. Amelia Hart", "Aisha Khan", "Unconscious in A&E, needs allergy history")

    with hospital.begin() as conn:
        conn.execute(sa.update(BreakGlass).values(expires_at=utcnow() - timedelta(seconds=1)))
    with session_scope(engine=hospital) as s, pytest.raises(BreakGlassRequired):
        clinical.open_chart(session=s, actor=doctor, patient_id=stranger.user_id)


def test_break_glass_needs_a_real_patient_and_a_reason_of_reasonable_length(hospital, doctor, stranger):
    assert_refused(hospital, doctor, "chart.break_glass", lambda s: clinical.break_glass(
        session=s, actor=doctor, patient_id=999_999, reason="Unconscious in A&E"), error=NotFound)
    before = snapshot(hospital)
    for reason, message in ((None, "at least 10 characters"), ("r" * 501, "under 500 characters")):
        with session_scope(engine=hospital) as s, pytest.raises(ValidationError, match=message):
            clinical.break_glass(session=s, actor=doctor, patient_id=stranger.user_id, reason=reason)
    assert snapshot(hospital) == before


@pytest.mark.parametrize("role", [Role.DOCTOR, Role.LAB, Role.PHARMACY, Role.ACCOUNTS, Role.PATIENT])
def test_only_admin_lists_break_glass(hospital, actors, role):
    assert_refused(hospital, actors[role], "chart.break_glass.list",
                   lambda s: clinical.list_break_glass(session=s, actor=actors[role]))


@pytest.mark.parametrize("role", NO_CHART_ROLES)
def test_roles_without_clinical_permission_cannot_open_charts_or_break_glass(hospital, actors, maria, role):
    actor = actors[role]
    for action, service, kwargs in [
        ("chart.view", clinical.open_chart, {"patient_id": maria}),
        ("chart.timeline", clinical.chart_timeline, {"patient_id": maria}),
        ("chart.break_glass", clinical.break_glass, {"patient_id": maria, "reason": "I just want to have a look"}),
    ]:
        error = assert_refused(hospital, actor, action,
                               lambda s, service=service, kwargs=kwargs: service(session=s, actor=actor, **kwargs))
        assert type(error) is PermissionDenied


def test_every_chart_view_writes_an_audit_row_with_the_patient(hospital, doctor, maria):
    before = last_audit_id(hospital)
    call(hospital, clinical.open_chart, actor=doctor, patient_id=maria)
    call(hospital, clinical.open_chart, actor=doctor, patient_id=maria)
    call(hospital, clinical.chart_timeline, actor=doctor, patient_id=maria, page=2)
    encounter_id = open_visit(hospital, doctor, maria)
    call(hospital, clinical.open_encounter, actor=doctor, appointment_id=encounter(hospital, encounter_id).appointment_id)
    reads = [(e.action, e.patient_id) for e in audit_events(hospital, after_id=before)
             if e.action in {"chart.view", "chart.timeline", "encounter.view"}]
    assert reads == [("chart.view", maria), ("chart.view", maria), ("chart.timeline", maria),
                     ("encounter.view", maria), ("encounter.view", maria)]


def test_lab_worklist_and_pharmacy_queue_carry_no_notes_or_diagnoses(hospital, doctor, maria, actors):
    secret = "Secret-Note-4711"
    encounter_id = open_visit(hospital, doctor, maria)
    call(hospital, clinical.save_encounter, actor=doctor, encounter_id=encounter_id, form=EncounterForm(
        subjective=f"S {secret}", objective=f"O {secret}", assessment=f"A {secret}", plan=f"P {secret}",
        diagnosis=f"D {secret}", icd10_code="I10"))
    call(hospital, prescribing.prescribe, actor=doctor, encounter_id=encounter_id, items=[prescribing.ItemForm(
        medicine_id=medicine_id(hospital, "paracetamol"), dose="1 tablet", route="oral", frequency="once daily",
        days=3)])
    call(hospital, prescribing.order_lab_tests, actor=doctor, encounter_id=encounter_id,
         test_ids=any_lab_test_ids(hospital, 1), priority="routine", note="Fasting sample")

    worklist = call(hospital, lab.worklist, actor=actors[Role.LAB])
    queue = call(hospital, pharmacy.prescription_queue, actor=actors[Role.PHARMACY])
    assert worklist.total == 1
    assert queue.total == 1
    for row_type in (lab.WorklistRow, pharmacy.QueueRow, pharmacy.QueueItem):
        assert not set(SOAP_FIELDS) & {f.name for f in dataclasses.fields(row_type)}
    for row in [*worklist.rows, *queue.rows]:
        text = repr(dataclasses.asdict(row))
        assert secret not in text
    assert worklist.rows[0].note == "Fasting sample"  # what the doctor wrote for the lab, and only that


def _break_glass_rows(engine) -> list[BreakGlass]:
    with session_scope(write=False, engine=engine) as s:
        return list(s.execute(sa.select(BreakGlass)).scalars())


# --- allergies and problems --------------------------------------------------------------------------


def test_allergy_added_shown_and_resolved(hospital, doctor, patient, maria):
    allergy_id = call(hospital, clinical.add_allergy, actor=doctor, patient_id=maria, substance=" Latex ",
                      reaction="Contact   dermatitis", severity="mild")
    chart = call(hospital, clinical.open_chart, actor=doctor, patient_id=maria)
    row = next(a for a in chart.allergies if a.id == allergy_id)
    assert (row.substance, row.reaction, row.severity, row.status) == ("Latex", "Contact dermatitis", "mild", "active")
    assert "Latex" in [a.substance for a in call(hospital, clinical.my_allergies, actor=patient)]
    [added] = audit_events(hospital, action="allergy.add")
    assert (added.patient_id, added.entity_id) == (maria, str(allergy_id))

    call(hospital, clinical.resolve_allergy, actor=doctor, allergy_id=allergy_id)
    with session_scope(write=False, engine=hospital) as s:
        stored = s.get(Allergy, allergy_id)
    assert (str(stored.status), stored.resolved_at is not None) == ("resolved", True)
    assert "Latex" not in [a.substance for a in call(hospital, clinical.my_allergies, actor=patient)]
    with session_scope(engine=hospital) as s, pytest.raises(Conflict):
        clinical.resolve_allergy(session=s, actor=doctor, allergy_id=allergy_id)


@pytest.mark.parametrize(("substance", "severity", "message"), [
    ("", "mild", "Enter the substance"),
    ("   ", "mild", "Enter the substance"),
    ("x" * 121, "mild", "at most 120"),
    ("Latex", "deadly", "mild, moderate or severe"),
])
def test_allergy_validation(hospital, doctor, maria, substance, severity, message):
    before = snapshot(hospital)
    with session_scope(engine=hospital) as s, pytest.raises(ValidationError, match=message):
        clinical.add_allergy(session=s, actor=doctor, patient_id=maria, substance=substance, severity=severity)
    assert snapshot(hospital) == before


@pytest.mark.parametrize("role", NO_CHART_ROLES)
def test_roles_without_clinical_write_cannot_add_or_resolve_allergies_and_problems(hospital, actors, doctor, maria,
                                                                                    role):
    allergy_id = call(hospital, clinical.add_allergy, actor=doctor, patient_id=maria, substance="Latex")
    problem_id = call(hospital, clinical.add_problem, actor=doctor, patient_id=maria, description="Asthma")
    actor = actors[role]
    assert_refused(hospital, actor, "allergy.add", lambda s: clinical.add_allergy(
        session=s, actor=actor, patient_id=maria, substance="Nuts"))
    assert_refused(hospital, actor, "allergy.resolve", lambda s: clinical.resolve_allergy(
        session=s, actor=actor, allergy_id=allergy_id))
    assert_refused(hospital, actor, "problem.add", lambda s: clinical.add_problem(
        session=s, actor=actor, patient_id=maria, description="Gout"))
    assert_refused(hospital, actor, "problem.resolve", lambda s: clinical.resolve_problem(
        session=s, actor=actor, problem_id=problem_id))


def test_a_doctor_cannot_touch_allergies_or_problems_of_a_patient_not_theirs(hospital, doctor, other_doctor, maria):
    allergy_id = call(hospital, clinical.add_allergy, actor=doctor, patient_id=maria, substance="Latex")
    problem_id = call(hospital, clinical.add_problem, actor=doctor, patient_id=maria, description="Asthma")
    for action, run in [
        ("allergy.add", lambda s: clinical.add_allergy(session=s, actor=other_doctor, patient_id=maria, substance="Nuts")),
        ("allergy.resolve", lambda s: clinical.resolve_allergy(session=s, actor=other_doctor, allergy_id=allergy_id)),
        ("problem.add", lambda s: clinical.add_problem(session=s, actor=other_doctor, patient_id=maria,
                                                       description="Gout")),
        ("problem.resolve", lambda s: clinical.resolve_problem(session=s, actor=other_doctor, problem_id=problem_id)),
    ]:
        assert_refused(hospital, other_doctor, action, run, error=BreakGlassRequired)
    assert_refused(hospital, doctor, "allergy.resolve",
                   lambda s: clinical.resolve_allergy(session=s, actor=doctor, allergy_id=999_999), error=NotFound)
    assert_refused(hospital, doctor, "problem.resolve",
                   lambda s: clinical.resolve_problem(session=s, actor=doctor, problem_id="x"), error=NotFound)


def test_problem_added_with_an_icd10_code_and_resolved(hospital, doctor, maria):
    problem_id = call(hospital, clinical.add_problem, actor=doctor, patient_id=maria,
                      description="Essential  hypertension", icd10_code=" i10 ")
    no_code = call(hospital, clinical.add_problem, actor=doctor, patient_id=maria, description="Back pain")
    chart = call(hospital, clinical.open_chart, actor=doctor, patient_id=maria)
    problems = {p.id: p for p in chart.problems}
    assert (problems[problem_id].description, problems[problem_id].icd10_code) == ("Essential hypertension", "I10")
    assert problems[no_code].icd10_code == ""
    call(hospital, clinical.resolve_problem, actor=doctor, problem_id=problem_id)
    with session_scope(write=False, engine=hospital) as s:
        assert str(s.get(Problem, problem_id).status) == "resolved"
    with session_scope(engine=hospital) as s, pytest.raises(Conflict):
        clinical.resolve_problem(session=s, actor=doctor, problem_id=problem_id)


@pytest.mark.parametrize(("description", "code", "message"), [
    ("Hypertension", "Q99.999", "ICD-10"),
    ("Hypertension", "I10; DROP TABLE problem", "ICD-10"),
    ("Hypertension", "hypertension", "ICD-10"),
    ("", "I10", "Enter the problem"),
    ("x" * 301, "", "at most 300"),
])
def test_problem_validation(hospital, doctor, maria, description, code, message):
    before = snapshot(hospital)
    with session_scope(engine=hospital) as s, pytest.raises(ValidationError, match=message):
        clinical.add_problem(session=s, actor=doctor, patient_id=maria, description=description, icd10_code=code)
    assert snapshot(hospital) == before


# --- encounters ----------------------------------------------------------------------------------------


def test_one_encounter_per_appointment(hospital, doctor, maria):
    appointment_id = care_appointment(hospital, doctor, maria)
    first = call(hospital, clinical.open_encounter, actor=doctor, appointment_id=appointment_id)
    again = call(hospital, clinical.open_encounter, actor=doctor, appointment_id=appointment_id)
    assert first.id == again.id
    assert (first.patient_name, first.status) == ("Maria Garcia", "open")
    with hospital.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(Encounter)
                            .where(Encounter.appointment_id == appointment_id)).scalar_one() == 1
    assert len(audit_events(hospital, action="encounter.start")) == 1
    assert len(audit_events(hospital, action="encounter.view")) == 2


@pytest.mark.parametrize("status", [AppointmentStatus.REQUESTED, AppointmentStatus.CANCELLED,
                                    AppointmentStatus.DECLINED, AppointmentStatus.NO_SHOW,
                                    AppointmentStatus.COMPLETED])
def test_only_a_confirmed_appointment_opens_an_encounter(hospital, doctor, maria, status):
    appointment_id = care_appointment(hospital, doctor, maria, status=status)
    before = snapshot(hospital)
    with session_scope(engine=hospital) as s, pytest.raises(Conflict, match="confirmed"):
        clinical.open_encounter(session=s, actor=doctor, appointment_id=appointment_id)
    assert snapshot(hospital) == before


def test_another_doctors_appointment_is_not_found(hospital, doctor, other_doctor, maria):
    appointment_id = care_appointment(hospital, doctor, maria)
    assert_refused(hospital, other_doctor, "encounter.open", lambda s: clinical.open_encounter(
        session=s, actor=other_doctor, appointment_id=appointment_id), error=NotFound)
    encounter_id = open_visit(hospital, doctor, maria)
    assert_refused(hospital, other_doctor, "encounter.save", lambda s: clinical.save_encounter(
        session=s, actor=other_doctor, encounter_id=encounter_id, form=EncounterForm(diagnosis="x")), error=NotFound)


@pytest.mark.parametrize("role", NO_CHART_ROLES)
def test_roles_without_clinical_write_cannot_open_save_or_complete_encounters(hospital, actors, doctor, maria, role):
    appointment_id = care_appointment(hospital, doctor, maria)
    encounter_id = open_visit(hospital, doctor, maria)
    actor = actors[role]
    assert_refused(hospital, actor, "encounter.open", lambda s: clinical.open_encounter(
        session=s, actor=actor, appointment_id=appointment_id))
    assert_refused(hospital, actor, "encounter.save", lambda s: clinical.save_encounter(
        session=s, actor=actor, encounter_id=encounter_id, form=EncounterForm(diagnosis="Flu")))
    assert_refused(hospital, actor, "encounter.complete", lambda s: clinical.complete_encounter(
        session=s, actor=actor, encounter_id=encounter_id))


def test_doctor_opening_one_appointment_from_many_tabs_at_once_gets_one_encounter(hospital, doctor, maria):
    appointment_id = care_appointment(hospital, doctor, maria)
    racers = 8
    barrier = threading.Barrier(racers)

    def attempt(_):
        barrier.wait(timeout=60)
        try:
            with session_scope() as s:
                return clinical.open_encounter(session=s, actor=doctor, appointment_id=appointment_id).id
        except Exception as error:  # collected and checked below
            return error

    with ThreadPoolExecutor(max_workers=racers) as pool:
        results = list(pool.map(attempt, range(racers)))
    assert [r for r in results if isinstance(r, Exception)] == []
    assert len(set(results)) == 1
    with hospital.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(Encounter)
                            .where(Encounter.appointment_id == appointment_id)).scalar_one() == 1
    assert len(audit_events(hospital, action="encounter.start")) == 1
    assert len(audit_events(hospital, action="encounter.view")) == racers


def test_notes_diagnosis_and_vitals_are_saved(hospital, doctor, maria):
    encounter_id = open_visit(hospital, doctor, maria)
    view = call(hospital, clinical.save_encounter, actor=doctor, encounter_id=encounter_id, form=EncounterForm(
        subjective="Chest tightness on stairs", objective="Mild ankle oedema", assessment="Likely angina",
        plan="ECG and troponin", diagnosis="Angina  pectoris", icd10_code="i20.9",
        vitals={"bp_systolic": "150", "bp_diastolic": "95", "pulse": "88", "temperature_c": "36,8",
                "weight_kg": "81.5", "height_cm": "176", "spo2": "97"}))
    assert (view.diagnosis, view.icd10_code, view.bp_systolic, view.temperature_c) == (
        "Angina pectoris", "I20.9", "150", "36.8")
    stored = encounter(hospital, encounter_id)
    assert (stored.subjective, stored.plan, stored.pulse, stored.weight_kg, stored.spo2) == (
        "Chest tightness on stairs", "ECG and troponin", 88, 81.5, 97)
    assert [e.patient_id for e in audit_events(hospital, action="encounter.save")] == [maria]


def _vitals_with(name: str, value: object) -> dict[str, str]:
    """A form with one vital set; a blood pressure value gets a plausible partner."""
    form = {name: str(value)}
    if name == "bp_systolic":
        form["bp_diastolic"] = "40" if float(value) < 100 else "80"
    elif name == "bp_diastolic":
        form["bp_systolic"] = "200" if float(value) >= 100 else "120"
    return form


def _step(name: str) -> float:
    return 1 if name in {"bp_systolic", "bp_diastolic", "pulse", "spo2"} else 0.1


BOUNDARIES = [(name, edge) for name, (low, high, _) in VITAL_RANGES.items() for edge in (low, high)]
OUTSIDE = [(name, round(low - _step(name), 1)) for name, (low, _, _) in VITAL_RANGES.items()] + [
    (name, round(high + _step(name), 1)) for name, (_, high, _) in VITAL_RANGES.items()]


@pytest.mark.parametrize(("name", "value"), BOUNDARIES)
def test_each_vitals_minimum_and_maximum_are_accepted(name, value):
    parsed = parse_vitals(_vitals_with(name, value))
    assert parsed[name] == value
    assert isinstance(parsed[name], int) == (_step(name) == 1)


@pytest.mark.parametrize(("name", "value"), OUTSIDE)
def test_a_vital_just_outside_its_range_is_refused(name, value):
    low, high, label = VITAL_RANGES[name]
    with pytest.raises(ValidationError) as refused:
        parse_vitals(_vitals_with(name, value))
    assert refused.value.message == f"The {label} must be between {low:g} and {high:g}."


@pytest.mark.parametrize("name", list(VITAL_RANGES))
@pytest.mark.parametrize("raw", ["nan", "NaN", "inf", "-inf", "abc", "12 kg", "1e3", "0x50"])
def test_a_vital_that_is_not_a_plausible_number_is_refused(name, raw):
    with pytest.raises(ValidationError):
        parse_vitals(_vitals_with(name, "120") | {name: raw})


@pytest.mark.parametrize("name", ["bp_systolic", "bp_diastolic", "pulse", "spo2"])
def test_whole_number_vitals_refuse_fractions(name):
    with pytest.raises(ValidationError, match="whole number"):
        parse_vitals(_vitals_with(name, "95.5"))


@pytest.mark.parametrize(("systolic", "diastolic"), [("120", "120"), ("100", "110"), ("50", "160")])
def test_diastolic_must_be_below_systolic(systolic, diastolic):
    with pytest.raises(ValidationError, match="diastolic pressure must be below"):
        parse_vitals({"bp_systolic": systolic, "bp_diastolic": diastolic})


@pytest.mark.parametrize("form", [{"bp_systolic": "120"}, {"bp_diastolic": "80"},
                                  {"bp_systolic": "120", "bp_diastolic": " "}])
def test_one_blood_pressure_value_alone_is_refused(form):
    with pytest.raises(ValidationError, match="both blood pressure values"):
        parse_vitals(form)


def test_empty_vitals_are_none():
    assert set(parse_vitals({}).values()) == {None}
    assert parse_vitals({"temperature_c": "36,6"})["temperature_c"] == 36.6


def test_the_boundaries_are_stored_as_given(hospital, doctor, maria):
    encounter_id = open_visit(hospital, doctor, maria)
    lows = {name: str(low) for name, (low, _, _) in VITAL_RANGES.items() if name != "bp_diastolic"}
    lows["bp_diastolic"] = "30"
    highs = {name: str(high) for name, (_, high, _) in VITAL_RANGES.items()}
    for vitals in (lows, highs):
        call(hospital, clinical.save_encounter, actor=doctor, encounter_id=encounter_id,
             form=EncounterForm(vitals=vitals))
        stored = encounter(hospital, encounter_id)
        assert {name: getattr(stored, name) for name in VITAL_RANGES} == {
            name: float(value) for name, value in vitals.items()}


@pytest.mark.parametrize(("form", "message"), [
    (EncounterForm(assessment="New text", vitals={"pulse": "251"}), "pulse"),
    (EncounterForm(assessment="New text", vitals={"bp_systolic": "120"}), "both blood pressure"),
    (EncounterForm(assessment="New text", icd10_code="NOT-A-CODE"), "ICD-10"),
    (EncounterForm(assessment="x" * 10_001), "at most 10000"),
    (EncounterForm(assessment="New text", diagnosis="d" * 301), "at most 300"),
])
def test_a_refused_save_changes_nothing(hospital, doctor, maria, form, message):
    encounter_id = open_visit(hospital, doctor, maria)
    call(hospital, clinical.save_encounter, actor=doctor, encounter_id=encounter_id,
         form=EncounterForm(assessment="Old text", vitals={"pulse": "70"}))
    before, after_id = snapshot(hospital), last_audit_id(hospital)
    with session_scope(engine=hospital) as s, pytest.raises(ValidationError, match=message):
        clinical.save_encounter(session=s, actor=doctor, encounter_id=encounter_id, form=form)
    assert snapshot(hospital) == before
    assert audit_events(hospital, after_id=after_id) == []
    stored = encounter(hospital, encounter_id)
    assert (stored.assessment, stored.pulse) == ("Old text", 70)


def test_complete_needs_a_diagnosis_or_an_assessment(hospital, doctor, maria):
    encounter_id = open_visit(hospital, doctor, maria)
    with session_scope(engine=hospital) as s, pytest.raises(ValidationError, match="diagnosis or an assessment"):
        clinical.complete_encounter(session=s, actor=doctor, encounter_id=encounter_id)
    call(hospital, clinical.save_encounter, actor=doctor, encounter_id=encounter_id,
         form=EncounterForm(assessment="Viral infection"))
    call(hospital, clinical.complete_encounter, actor=doctor, encounter_id=encounter_id)
    assert str(encounter(hospital, encounter_id).status) == "completed"


def test_complete_needs_the_appointment_to_have_started(hospital, doctor, maria):
    encounter_id = open_visit(hospital, doctor, maria, starts_at=_after_midnight(1))
    call(hospital, clinical.save_encounter, actor=doctor, encounter_id=encounter_id,
         form=EncounterForm(diagnosis="Hypertension"))
    before = snapshot(hospital)
    with session_scope(engine=hospital) as s, pytest.raises(Conflict, match="not started"):
        clinical.complete_encounter(session=s, actor=doctor, encounter_id=encounter_id)
    assert snapshot(hospital) == before


def test_complete_closes_the_encounter_and_completes_the_appointment(hospital, doctor, maria):
    encounter_id = open_visit(hospital, doctor, maria)
    call(hospital, clinical.save_encounter, actor=doctor, encounter_id=encounter_id,
         form=EncounterForm(diagnosis="Hypertension", icd10_code="I10"))
    call(hospital, clinical.complete_encounter, actor=doctor, encounter_id=encounter_id)
    stored = encounter(hospital, encounter_id)
    assert (stored.status, stored.completed_at is not None) == (EncounterStatus.COMPLETED, True)
    assert appointment(hospital, stored.appointment_id).status == AppointmentStatus.COMPLETED
    actions = [e.action for e in audit_events(hospital) if e.action in {"encounter.complete", "appointment.complete"}]
    assert actions == ["encounter.complete", "appointment.complete"]

    for run in (
        lambda s: clinical.complete_encounter(session=s, actor=doctor, encounter_id=encounter_id),
        lambda s: clinical.save_encounter(session=s, actor=doctor, encounter_id=encounter_id,
                                          form=EncounterForm(diagnosis="Changed")),
    ):
        with session_scope(engine=hospital) as s, pytest.raises(Conflict, match="completed"):
            run(s)
    # Reopening the completed appointment shows the same, completed encounter.
    assert call(hospital, clinical.open_encounter, actor=doctor,
                appointment_id=stored.appointment_id).status == "completed"


def test_complete_is_one_transaction_with_the_appointment(hospital, doctor, maria, monkeypatch):
    encounter_id = open_visit(hospital, doctor, maria)
    call(hospital, clinical.save_encounter, actor=doctor, encounter_id=encounter_id,
         form=EncounterForm(diagnosis="Hypertension"))

    def broken(*_args, **_kwargs):
        raise RuntimeError("the appointment could not be completed")

    monkeypatch.setattr(appointments, "_change", broken)
    before = snapshot(hospital)
    with session_scope(engine=hospital) as s, pytest.raises(RuntimeError):
        clinical.complete_encounter(session=s, actor=doctor, encounter_id=encounter_id)
    assert snapshot(hospital) == before
    assert encounter(hospital, encounter_id).status == EncounterStatus.OPEN


# --- timeline ----------------------------------------------------------------------------------------


def _bulk_encounters(engine, doctor_id: int, patient_id: int, count: int) -> list[int]:
    """``count`` completed visits an hour apart, inserted in two statements; ids newest first."""
    first = utcnow().replace(microsecond=0) - timedelta(hours=count + 10)
    starts = [first + timedelta(hours=i) for i in range(count)]
    with engine.begin() as conn:
        department = conn.execute(sa.select(Appointment.department_id).where(Appointment.doctor_id == doctor_id)
                                  .limit(1)).scalar_one()
        conn.execute(sa.insert(Appointment), [
            {"patient_id": patient_id, "doctor_id": doctor_id, "department_id": department, "starts_at": start,
             "ends_at": start + timedelta(minutes=20), "status": AppointmentStatus.COMPLETED.value,
             "reason": "bulk", "status_reason": "", "created_at": start, "updated_at": start}
            for start in starts])
        appointment_ids = conn.execute(sa.select(Appointment.id, Appointment.starts_at).where(
            Appointment.patient_id == patient_id, Appointment.reason == "bulk")).all()
        conn.execute(sa.insert(Encounter), [
            {"appointment_id": appointment_id, "patient_id": patient_id, "doctor_id": doctor_id,
             "diagnosis": f"Visit {start:%Y%m%d%H}", "assessment": "Routine review", "started_at": start,
             "status": EncounterStatus.COMPLETED.value, "subjective": "", "objective": "", "plan": "",
             "icd10_code": "", "completed_at": start}
            for appointment_id, start in appointment_ids])
        return list(conn.execute(sa.select(Encounter.id).where(Encounter.patient_id == patient_id)
                                 .order_by(Encounter.started_at.desc())).scalars())


def test_the_timeline_is_paged_in_sql(hospital, doctor, maria):
    newest_first = _bulk_encounters(hospital, doctor.user_id, maria, 1000)
    assert len(newest_first) == 1000

    loaded = []
    listener = lambda target, _context: loaded.append(target.id)  # noqa: E731
    sa.event.listen(Encounter, "load", listener)
    try:
        first = call(hospital, clinical.chart_timeline, actor=doctor, patient_id=maria, page=1, page_size=20)
    finally:
        sa.event.remove(Encounter, "load", listener)
    assert (first.total, first.page_count, len(first.rows)) == (1000, 50, 20)
    assert [e.id for e in first.rows] == newest_first[:20]
    assert sorted(loaded) == sorted(newest_first[:20]), "only the page's encounters are loaded"
    assert first.rows[0].kind == "encounter"
    assert first.rows[0].title == "Visit with Dr. Amelia Hart"

    seen = [e.id for e in first.rows]
    for page in range(2, 51):
        result = call(hospital, clinical.chart_timeline, actor=doctor, patient_id=maria, page=page, page_size=20)
        assert len(result.rows) == 20
        seen += [e.id for e in result.rows]
    assert seen == newest_first, "pages follow one another without overlap or gap"
    beyond = call(hospital, clinical.chart_timeline, actor=doctor, patient_id=maria, page=51, page_size=20)
    assert (beyond.rows, beyond.total) == ([], 1000)


def test_the_timeline_mixes_every_kind_newest_first(hospital, doctor, maria):
    encounter_id = open_visit(hospital, doctor, maria)
    call(hospital, clinical.save_encounter, actor=doctor, encounter_id=encounter_id,
         form=EncounterForm(diagnosis="Hypertension", icd10_code="I10", assessment="Above target"))
    call(hospital, prescribing.prescribe, actor=doctor, encounter_id=encounter_id, items=[prescribing.ItemForm(
        medicine_id=medicine_id(hospital, "paracetamol"), dose="1 tablet", route="oral", frequency="once daily",
        days=3)])
    call(hospital, prescribing.order_lab_tests, actor=doctor, encounter_id=encounter_id,
         test_ids=any_lab_test_ids(hospital, 1), priority=LabPriority.STAT.value)
    page = call(hospital, clinical.chart_timeline, actor=doctor, patient_id=maria)
    assert [e.kind for e in page.rows] == ["lab", "prescription", "encounter"]
    assert page.rows[2].detail == "I10 Hypertension · Above target"


def test_my_history_shows_only_the_patients_own_entries(hospital, doctor, patient, stranger, maria):
    mine = [open_visit(hospital, doctor, maria) for _ in range(3)]
    theirs = [open_visit(hospital, doctor, stranger.user_id) for _ in range(2)]
    for encounter_id in mine:
        call(hospital, clinical.save_encounter, actor=doctor, encounter_id=encounter_id,
             form=EncounterForm(diagnosis="Hypertension", assessment="Private reasoning"))
    own = call(hospital, clinical.my_history, actor=patient)
    assert (own.total, sorted(e.id for e in own.rows)) == (3, sorted(mine))
    assert all(e.detail == "Hypertension" for e in own.rows), "the doctor's assessment stays in the chart"
    other = call(hospital, clinical.my_history, actor=stranger)
    assert (other.total, sorted(e.id for e in other.rows)) == (2, sorted(theirs))
    assert [e.patient_id for e in audit_events(hospital, action="history.view")] == [maria, stranger.user_id]


@pytest.mark.parametrize("role", [Role.DOCTOR, Role.LAB, Role.PHARMACY, Role.ACCOUNTS, Role.ADMIN])
def test_only_patients_have_a_history_page(hospital, actors, role):
    assert_refused(hospital, actors[role], "history.view",
                   lambda s: clinical.my_history(session=s, actor=actors[role]))


# --- issue 16: the whole ICD-10-CM, the allergy and problem banner --------------------------------


@pytest.mark.parametrize(("typed", "stored"), [
    ("I20.8", "I20.8"),  # a category: recorded as precisely as the doctor knows it
    ("i2089", "I20.89"),
    ("F32.A", "F32.A"),
    ("S72.001A", "S72.001A"),  # a seventh-character code
])
def test_any_code_of_the_classification_is_saved_as_icd10_cm_writes_it(hospital, doctor, maria, typed, stored):
    encounter_id = open_visit(hospital, doctor, maria)
    view = call(hospital, clinical.save_encounter, actor=doctor, encounter_id=encounter_id,
                form=EncounterForm(diagnosis="As coded", icd10_code=typed))
    assert view.icd10_code == stored
    assert view.icd10_label.startswith(f"{stored} — ")
    assert encounter(hospital, encounter_id).icd10_code == stored
    assert call(hospital, clinical.add_problem, actor=doctor, patient_id=maria, description="As coded",
                icd10_code=typed)


@pytest.mark.parametrize("code", ["I20-I25", "9", "I20.8999", "ZZZ9", "<I20>"])
def test_chapters_blocks_and_unknown_codes_are_refused(hospital, doctor, maria, code):
    encounter_id = open_visit(hospital, doctor, maria)
    before = snapshot(hospital)
    with session_scope(engine=hospital) as s, pytest.raises(ValidationError, match="ICD-10"):
        clinical.save_encounter(session=s, actor=doctor, encounter_id=encounter_id,
                                form=EncounterForm(diagnosis="Chest pain", icd10_code=code))
    assert snapshot(hospital) == before


def test_a_free_text_diagnosis_needs_no_code(hospital, doctor, maria):
    encounter_id = open_visit(hospital, doctor, maria)
    view = call(hospital, clinical.save_encounter, actor=doctor, encounter_id=encounter_id,
                form=EncounterForm(diagnosis="Atypical chest wall pain after a fall", icd10_code=""))
    assert (view.diagnosis, view.icd10_code, view.icd10_label) == ("Atypical chest wall pain after a fall", "", "")


def test_search_diagnoses_gives_at_most_20_labelled_codes(hospital, doctor):
    found = call(hospital, clinical.search_diagnoses, actor=doctor, term="angina")
    assert 1 <= len(found) <= 20
    assert all("angina" in o.description.lower() for o in found)
    by_code = {o.code: o.label for o in call(hospital, clinical.search_diagnoses, actor=doctor, term="I20.8")}
    assert by_code["I20.8"] == "I20.8 — Other forms of angina pectoris (category)"
    assert by_code["I20.89"] == "I20.89 — Other forms of angina pectoris"
    for nothing in ("", "   ", "zzqx", "%", None):
        assert call(hospital, clinical.search_diagnoses, actor=doctor, term=nothing) == []
    with session_scope(engine=hospital) as s, pytest.raises(ValidationError, match="control or invalid"):
        clinical.search_diagnoses(session=s, actor=doctor, term="angina\x00")
    assert len(call(hospital, clinical.search_diagnoses, actor=doctor, term="a" * 5_000)) <= 20


@pytest.mark.parametrize("role", [Role.LAB, Role.PHARMACY, Role.ACCOUNTS, Role.PATIENT, Role.ADMIN])
def test_roles_without_clinical_write_cannot_search_diagnoses(hospital, actors, role):
    assert_refused(hospital, actors[role], "icd10.search",
                   lambda s: clinical.search_diagnoses(session=s, actor=actors[role], term="angina"))


def test_the_encounter_shows_the_active_allergies_and_problems(hospital, doctor, maria):
    encounter_id = open_visit(hospital, doctor, maria)
    with hospital.begin() as conn:
        conn.execute(sa.delete(Allergy).where(Allergy.patient_id == maria))
        conn.execute(sa.delete(Problem).where(Problem.patient_id == maria))
    view = call(hospital, clinical.save_encounter, actor=doctor, encounter_id=encounter_id, form=EncounterForm())
    assert (view.allergies, view.problems) == ([], [])
    call(hospital, clinical.add_allergy, actor=doctor, patient_id=maria, substance="Penicillin", reaction="Hives",
         severity="severe")
    gone = call(hospital, clinical.add_allergy, actor=doctor, patient_id=maria, substance="Latex")
    call(hospital, clinical.resolve_allergy, actor=doctor, allergy_id=gone)
    call(hospital, clinical.add_problem, actor=doctor, patient_id=maria, description="Asthma", icd10_code="J45.909")
    old = call(hospital, clinical.add_problem, actor=doctor, patient_id=maria, description="Sprained ankle")
    call(hospital, clinical.resolve_problem, actor=doctor, problem_id=old)
    view = call(hospital, clinical.save_encounter, actor=doctor, encounter_id=encounter_id, form=EncounterForm())
    assert [(a.substance, a.reaction, a.severity) for a in view.allergies] == [("Penicillin", "Hives", "severe")]
    assert [(p.description, p.icd10_code) for p in view.problems] == [("Asthma", "J45.909")]

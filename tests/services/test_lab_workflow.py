"""The lab workflow: the worklist's filters, an order's moves, results with computed flags by
sex and age, critical values and their acknowledgement, report files, the PDF report, and who
may see what."""

from __future__ import annotations

import dataclasses
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from hms_app import settings
from hms_app.db.engine import session_scope
from hms_app.db.enums import LabOrderStatus, Role
from hms_app.db.models import LabReportFile, LabResult, LabTest
from hms_app.db.types import utcnow
from hms_app.services.care import clinical
from hms_app.services.care.clinical import BreakGlassRequired, EncounterForm
from hms_app.services.core import events
from hms_app.services.core.errors import Conflict, NotFound, ValidationError
from hms_app.services.core.localtime import format_date, format_local
from hms_app.services.laboratory import lab
from hms_app.services.reference.lab_catalog import LAB_TESTS
from tests.conftest import login_as
from tests.services.appointment_helpers import (
    OTHER_DOCTOR_EMAIL,
    OTHER_PATIENT_EMAIL,
    call,
    last_notification_id,
    notifications_since,
)
from tests.services.helpers import assert_refused, audit_events, last_audit_id, table_count
from tests.services.lab_helpers import (
    lab_order,
    lab_test_id,
    open_visit,
    order,
    pdf_bytes,
    pdf_text,
    report_rows,
    result_of,
    running,
    set_patient,
    stored_files,
    today,
    use_private_data_dir,
    with_reference_data,
    years_before,
)

pytestmark = pytest.mark.db

NOT_LAB = [Role.DOCTOR, Role.PHARMACY, Role.PATIENT, Role.ACCOUNTS, Role.ADMIN]
SOAP_FIELDS = {"subjective", "objective", "assessment", "plan", "diagnosis", "icd10_code"}


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
def lab_staff(actors):
    return actors[Role.LAB]


@pytest.fixture
def patient(actors):
    return actors[Role.PATIENT]


@pytest.fixture
def visit(hospital, doctor, patient):
    """An open encounter of Maria Garcia with Dr Hart, an adult man for the flag tests' sake."""
    set_patient(hospital, patient.user_id, sex="male", birth_date=years_before(today(), 40))
    return open_visit(hospital, doctor, patient.user_id)


@pytest.fixture
def changes():
    received: list[events.Change] = []
    events.subscribe(received.append)
    yield received
    events.unsubscribe(received.append)


def enter(engine, lab_staff, order_id, value, comment=""):
    return call(engine, lab.enter_result, actor=lab_staff, order_id=order_id, value=value, comment=comment)


def resulted(engine, doctor, lab_staff, visit, code, value, *, comment=""):
    """Order ``code``, run it and enter ``value``; returns (order id, EnteredResult)."""
    order_id = running(engine, lab_staff, order(engine, doctor, visit, code))
    return order_id, enter(engine, lab_staff, order_id, value, comment)


def catalog(code: str) -> LabTest:
    spec = next(t for t in LAB_TESTS if t["code"] == code)
    return LabTest(**{**spec, "ranges": json.dumps(spec["ranges"])})


# --- the boundary rule and the ranges (pure) ------------------------------------------------------


@pytest.mark.parametrize(("value", "flag"), [
    (0, "critical_low"), (69.9, "critical_low"), (70, "low"), (70.1, "low"), (129.9, "low"), (130, "normal"),
    (155, "normal"), (180, "normal"), (180.1, "high"), (199.9, "high"), (200, "high"), (200.1, "critical_high"),
])
def test_flag_at_every_boundary_of_adult_male_haemoglobin(value, flag):
    # Haemoglobin, man of 40: reference 130-180 g/L, critical below 70 and above 200.
    reference = lab.reference_range(catalog("HGB"), "male", date(1980, 1, 1), date(2020, 6, 1))
    assert reference == (130, 180)
    assert lab.compute_flag(value, reference, 70, 200) == flag


@pytest.mark.parametrize(("value", "flag"), [(114.9, "low"), (115, "normal"), (165, "normal"), (165.1, "high")])
def test_flag_at_the_boundaries_of_adult_female_haemoglobin(value, flag):
    reference = lab.reference_range(catalog("HGB"), "female", date(1980, 1, 1), date(2020, 6, 1))
    assert reference == (115, 165)
    assert lab.compute_flag(value, reference, 70, 200) == flag


def test_the_range_follows_sex_and_age_on_the_day_of_the_result():
    hgb = catalog("HGB")
    born = date(2010, 3, 15)
    assert lab.reference_range(hgb, "female", born, date(2018, 3, 15)) == (115, 155)  # 8: a child's band, any sex
    assert lab.reference_range(hgb, "male", born, date(2018, 3, 15)) == (115, 155)
    assert lab.reference_range(hgb, "female", born, date(2028, 3, 14)) == (120, 160)  # 17 the day before
    assert lab.reference_range(hgb, "female", born, date(2028, 3, 15)) == (115, 165)  # 18 on the birthday
    assert lab.reference_range(hgb, "male", born, date(2028, 3, 15)) == (130, 180)
    # Neither female nor male: the bands of both sexes, so nothing is flagged on a guess.
    assert lab.reference_range(hgb, "unknown", born, date(2040, 1, 1)) == (115, 180)
    # No birth date: the bands of every age.
    assert lab.reference_range(hgb, "male", None, date(2040, 1, 1)) == (105, 180)
    assert lab.reference_range(catalog("UA"), "male", born, date(2040, 1, 1)) is None
    # Not born yet on that day (a wrong birth date): no range rather than a wrong one.
    assert lab.reference_range(hgb, "male", born, date(2009, 1, 1)) is None


def test_critical_limits_apply_where_no_range_does_and_a_missing_limit_is_no_limit():
    assert lab.compute_flag(1.0, None, 2.5, 6.5) == "critical_low"
    assert lab.compute_flag(7.0, None, 2.5, 6.5) == "critical_high"
    assert lab.compute_flag(4.0, None, 2.5, 6.5) == ""
    # INR has no critical low; urea no critical low; a low of 0 means "no lower limit".
    assert lab.compute_flag(0.1, (0.8, 1.2), None, 5.0) == "low"
    assert lab.compute_flag(0, (0, 5), None, None) == "normal"
    assert lab.compute_flag(5.0, (0.8, 1.2), None, 5.0) == "high"
    assert lab.compute_flag(5.01, (0.8, 1.2), None, 5.0) == "critical_high"


@pytest.mark.parametrize("value", ["abc", "nan", "NaN", "inf", "-inf", "infinity", "1e400", "1e3", "1_000", "1,200",
                                   "5.4.1", "0x10", "", "   ", "-1", "12 g/L", float("nan"), float("inf"), True, None,
                                   -0.5, 2e9])
def test_numeric_results_refuse_what_is_no_plain_number(value):
    with pytest.raises(ValidationError):
        lab.parse_result_value(value)


@pytest.mark.parametrize(("value", "number"), [("5.4", 5.4), (" 130 ", 130.0), ("+7", 7.0), (".5", 0.5), ("0", 0.0),
                                               (12, 12.0), (4.25, 4.25)])
def test_numeric_results_accept_plain_numbers(value, number):
    assert lab.parse_result_value(value) == number


# --- flags through the service --------------------------------------------------------------------


def test_entered_values_get_their_flag_from_the_patients_sex_and_age(hospital, doctor, lab_staff, patient, visit):
    expected = {"69.9": "critical_low", "70": "low", "129.9": "low", "130": "normal", "180": "normal",
                "180.1": "high", "200": "high", "200.1": "critical_high"}
    for value, flag in expected.items():
        order_id, entered = resulted(hospital, doctor, lab_staff, visit, "HGB", value)
        stored = result_of(hospital, order_id)
        assert (entered.flag, stored.flag) == (flag, flag), value
        assert (stored.range_low, stored.range_high, stored.unit) == (130, 180, "g/L")
        assert stored.value_numeric == float(value)
        assert entered.is_critical == flag.startswith("critical")
        assert entered.reference_range == "130 - 180"

    set_patient(hospital, patient.user_id, sex="female")
    order_id, entered = resulted(hospital, doctor, lab_staff, visit, "HGB", "120")
    assert (entered.flag, result_of(hospital, order_id).range_low) == ("normal", 115)  # low for a man

    set_patient(hospital, patient.user_id, birth_date=years_before(today(), 8))
    order_id, entered = resulted(hospital, doctor, lab_staff, visit, "HGB", "160")
    assert entered.flag == "high"  # a child's band is 115-155, whatever the sex
    assert (result_of(hospital, order_id).range_low, result_of(hospital, order_id).range_high) == (115, 155)

    set_patient(hospital, patient.user_id, sex="unknown", birth_date=None)
    order_id, entered = resulted(hospital, doctor, lab_staff, visit, "HGB", "110")
    assert (entered.flag, entered.reference_range) == ("normal", "105 - 180")


def test_the_age_is_the_one_on_the_day_of_the_result(hospital, doctor, lab_staff, patient, visit, monkeypatch):
    # Ordered at 17, resulted three days later, after her 18th birthday: the adult range applies.
    birthday = today() + timedelta(days=2)
    set_patient(hospital, patient.user_id, sex="female", birth_date=years_before(birthday, 18))
    order_id = running(hospital, lab_staff, order(hospital, doctor, visit, "HGB"))
    later = utcnow() + timedelta(days=3)
    monkeypatch.setattr(lab, "utcnow", lambda: later)
    assert enter(hospital, lab_staff, order_id, "118").flag == "normal"  # 17: 120-160, low; 18: 115-165
    result = result_of(hospital, order_id)
    assert (result.range_low, result.range_high) == (115, 165)
    ordered_at = lab_order(hospital, order_id).ordered_at
    assert result.turnaround_seconds == int((later - ordered_at).total_seconds())
    assert 3 * 86400 - 60 < result.turnaround_seconds <= 3 * 86400


def test_text_results_take_text_and_have_no_flag(hospital, doctor, lab_staff, patient, visit):
    order_id = running(hospital, lab_staff, order(hospital, doctor, visit, "UA"))
    with pytest.raises(ValidationError, match="Enter the result"):
        enter(hospital, lab_staff, order_id, "   ")
    entered = enter(hospital, lab_staff, order_id, "Protein +, glucose negative, nitrites negative",
                    comment="Repeat in a week")
    result = result_of(hospital, order_id)
    assert (entered.flag, result.flag, result.value_numeric, result.range_low) == ("", "", None, None)
    assert result.value_text == "Protein +, glucose negative, nitrites negative"
    assert result.comment == "Repeat in a week"
    with hospital.connect() as conn:  # encrypted at rest
        raw = conn.execute(sa.text("SELECT value_text, comment FROM lab_result")).one()
    assert "Protein" not in raw[0]
    assert "Repeat" not in raw[1]


def test_a_numeric_test_refuses_text_and_nothing_changes(hospital, doctor, lab_staff, visit):
    order_id = running(hospital, lab_staff, order(hospital, doctor, visit, "K"))
    for value in ("high", "nan", "inf", "4,5"):
        with pytest.raises(ValidationError):
            enter(hospital, lab_staff, order_id, value)
    assert lab_order(hospital, order_id).status == LabOrderStatus.IN_PROGRESS
    assert result_of(hospital, order_id) is None


# --- moving an order ------------------------------------------------------------------------------


def test_an_order_moves_requested_collected_in_progress_completed(hospital, doctor, lab_staff, visit, changes):
    order_id = order(hospital, doctor, visit, "NA")
    changes.clear()
    call(hospital, lab.collect_sample, actor=lab_staff, order_id=order_id)
    assert lab_order(hospital, order_id).status == LabOrderStatus.COLLECTED
    assert lab_order(hospital, order_id).collected_at is not None
    call(hospital, lab.start_test, actor=lab_staff, order_id=str(order_id))  # ids as clients send them
    assert lab_order(hospital, order_id).status == LabOrderStatus.IN_PROGRESS
    assert lab_order(hospital, order_id).started_at is not None
    enter(hospital, lab_staff, order_id, "140")
    assert lab_order(hospital, order_id).status == LabOrderStatus.COMPLETED
    assert [e.action for e in audit_events(hospital) if e.action.startswith(("lab_order.", "lab_result."))][-3:] == [
        "lab_order.collect", "lab_order.start", "lab_result.enter"]
    assert all(c.topic in {"lab", "notifications", "billing"} for c in changes)
    assert all("lab" in c.roles for c in changes if c.topic == "lab")
    assert [c.roles for c in changes if c.topic == "billing"] == [{"accounts", "admin"}]  # the test's charge


@pytest.mark.parametrize(("moves", "attempt", "message"), [
    ([], "start", "Collect the sample before starting"),
    ([], "result", "Collect the sample and start the test"),
    (["collect"], "collect", "already collected"),
    (["collect"], "result", "Start the test before entering"),
    (["collect", "start"], "collect", "already in progress"),
    (["collect", "start"], "start", "already in progress"),
    (["collect", "start", "result"], "collect", "completed"),
    (["collect", "start", "result"], "start", "completed"),
    (["collect", "start", "result"], "result", "completed"),
    (["collect", "start", "result"], "cancel", "A completed order cannot be cancelled"),
    (["cancel"], "collect", "cancelled"),
    (["cancel"], "start", "cancelled"),
    (["cancel"], "result", "cancelled"),
    (["cancel"], "cancel", "already cancelled"),
])
def test_illegal_moves_are_refused_with_a_clear_message(hospital, doctor, lab_staff, visit, moves, attempt, message):
    order_id = order(hospital, doctor, visit, "NA")

    def do(move):
        if move == "collect":
            call(hospital, lab.collect_sample, actor=lab_staff, order_id=order_id)
        elif move == "start":
            call(hospital, lab.start_test, actor=lab_staff, order_id=order_id)
        elif move == "result":
            enter(hospital, lab_staff, order_id, "140")
        else:
            call(hospital, lab.cancel_order, actor=lab_staff, order_id=order_id, reason="Sample haemolysed")

    for move in moves:
        do(move)
    before = lab_order(hospital, order_id)
    with pytest.raises(Conflict, match=message):
        do(attempt)
    after = lab_order(hospital, order_id)
    assert (after.status, after.updated_at) == (before.status, before.updated_at)
    assert table_count(hospital, LabResult) == (1 if "result" in moves else 0)


@pytest.mark.parametrize("moves", [[], ["collect"], ["collect", "start"]])
def test_any_open_order_can_be_cancelled_with_a_reason(hospital, doctor, lab_staff, visit, moves):
    order_id = order(hospital, doctor, visit, "NA")
    for move in moves:
        call(hospital, {"collect": lab.collect_sample, "start": lab.start_test}[move], actor=lab_staff,
             order_id=order_id)
    with pytest.raises(ValidationError, match="Say why"):
        call(hospital, lab.cancel_order, actor=lab_staff, order_id=order_id, reason="  ")
    assert lab_order(hospital, order_id).status != LabOrderStatus.CANCELLED
    before = last_notification_id(hospital)
    call(hospital, lab.cancel_order, actor=lab_staff, order_id=order_id, reason="Sample  haemolysed")
    cancelled = lab_order(hospital, order_id)
    assert (cancelled.status, cancelled.cancel_reason) == (LabOrderStatus.CANCELLED, "Sample haemolysed")
    assert cancelled.cancelled_at is not None
    assert [(n[0], n[1]) for n in notifications_since(hospital, before)] == [(doctor.user_id, "Lab order cancelled")]
    assert audit_events(hospital, action="lab_order.cancel")[-1].detail == "Sample haemolysed"


def test_an_unknown_order_is_not_found_and_audited(hospital, lab_staff, visit):
    for bad in (999_999, "abc", -1, 1.5, None):
        assert_refused(hospital, lab_staff, "lab_order.collect",
                       lambda s, bad=bad: lab.collect_sample(session=s, actor=lab_staff, order_id=bad), error=NotFound)


@pytest.mark.parametrize("role", NOT_LAB)
def test_only_lab_staff_move_orders_and_enter_results(hospital, doctor, lab_staff, visit, actors, role):
    requested = order(hospital, doctor, visit, "NA")
    started = running(hospital, lab_staff, order(hospital, doctor, visit, "NA"))
    actor = actors[role]
    writes = [
        ("lab_order.collect", lambda s: lab.collect_sample(session=s, actor=actor, order_id=requested)),
        ("lab_order.start", lambda s: lab.start_test(session=s, actor=actor, order_id=requested)),
        ("lab_order.cancel", lambda s: lab.cancel_order(session=s, actor=actor, order_id=requested, reason="No")),
        ("lab_result.enter", lambda s: lab.enter_result(session=s, actor=actor, order_id=started, value="140")),
        ("lab_report.upload", lambda s: lab.upload_report_file(session=s, actor=actor, order_id=started,
                                                               file_name="r.pdf", data=pdf_bytes())),
        ("lab.worklist", lambda s: lab.worklist(session=s, actor=actor)),
    ]
    for action, write in writes:
        assert_refused(hospital, actor, action, write)
    assert stored_files() == []


# --- the worklist ---------------------------------------------------------------------------------


def test_the_worklist_filters_by_status_priority_and_test_keeping_stat_first(hospital, doctor, lab_staff, visit):
    routine_na = order(hospital, doctor, visit, "NA", "routine")
    stat_k = order(hospital, doctor, visit, "K", "stat")
    urgent_na = order(hospital, doctor, visit, "NA", "urgent")
    stat_na = running(hospital, lab_staff, order(hospital, doctor, visit, "NA", "stat"))
    done = running(hospital, lab_staff, order(hospital, doctor, visit, "K", "stat"))
    enter(hospital, lab_staff, done, "4.0")

    def ids(**filters):
        return [r.id for r in call(hospital, lab.worklist, actor=lab_staff, **filters).rows]

    assert ids() == [stat_k, stat_na, urgent_na, routine_na]
    assert ids(test_id=lab_test_id(hospital, "NA")) == [stat_na, urgent_na, routine_na]
    assert ids(test_id=str(lab_test_id(hospital, "NA")), priority="stat") == [stat_na]
    assert ids(status="in_progress") == [stat_na]
    assert ids(status="requested") == [stat_k, urgent_na, routine_na]
    assert ids(status="completed") == [done]
    assert ids(priority="routine") == [routine_na]
    for bad in ({"status": "lost"}, {"priority": "yesterday"}, {"test_id": "x"}, {"test_id": -3}):
        with pytest.raises(ValidationError):
            ids(**bad)
    row = call(hospital, lab.worklist, actor=lab_staff, status="in_progress").rows[0]
    assert (row.status_value, row.status, row.unit, row.numeric) == ("in_progress", "in progress", "mmol/L", True)
    assert [t.label for t in call(hospital, lab.worklist_tests, actor=lab_staff)][:1] == [
        "Alanine aminotransferase (ALT) (ALT)"]


def test_the_worklist_pages_in_its_order_with_the_total(hospital, doctor, lab_staff, visit):
    placed = [order(hospital, doctor, visit, "NA", priority) for priority in ("routine", "stat", "urgent", "routine", "stat")]

    pages = [call(hospital, lab.worklist, actor=lab_staff, page=n, page_size=2) for n in range(1, 5)]

    assert [r.id for page in pages for r in page.rows] == [placed[1], placed[4], placed[2], placed[0], placed[3]]
    assert {page.total for page in pages} == {5}
    assert pages[3].rows == []


def test_lab_staff_never_see_encounter_notes_through_any_lab_function(hospital, doctor, lab_staff, patient, visit):
    secret = "Confidential-assessment-7731"
    call(hospital, clinical.save_encounter, actor=doctor, encounter_id=visit, form=EncounterForm(
        subjective=secret, objective=secret, assessment=secret, plan=secret, diagnosis=secret, icd10_code="I10"))
    order_id = running(hospital, lab_staff, order(hospital, doctor, visit, "HGB", note="Fasting sample"))
    entered = enter(hospital, lab_staff, order_id, "150")
    call(hospital, lab.upload_report_file, actor=lab_staff, order_id=order_id, file_name="r.pdf", data=pdf_bytes())
    outputs = [
        call(hospital, lab.worklist, actor=lab_staff, status="completed"),
        call(hospital, lab.worklist_tests, actor=lab_staff),
        entered,
    ]
    for row_type in (lab.WorklistRow, lab.EnteredResult, lab.ResultView):
        assert not SOAP_FIELDS & {f.name for f in dataclasses.fields(row_type)}
    assert secret not in repr(outputs)
    pdf = call(hospital, lab.generate_report_pdf, actor=lab_staff, order_id=order_id)
    assert secret not in pdf_text(pdf)
    assert "Hart" in pdf_text(pdf)
    # The readers' functions refuse lab staff outright.
    for action, read in [
        ("lab_result.view", lambda s: lab.result_for_order(session=s, actor=lab_staff, order_id=order_id)),
        ("lab_result.download", lambda s: lab.download_result_file(session=s, actor=lab_staff, order_id=order_id)),
        ("lab_result.list", lambda s: lab.results_for_doctor(session=s, actor=lab_staff)),
        ("lab_result.list", lambda s: lab.results_for_patient(session=s, actor=lab_staff)),
        ("chart.view", lambda s: clinical.open_chart(session=s, actor=lab_staff, patient_id=patient.user_id)),
    ]:
        assert_refused(hospital, lab_staff, action, read)


# --- completion: notifications, live changes, turnaround ------------------------------------------


def test_a_result_notifies_the_patient_and_the_ordering_doctor(hospital, doctor, lab_staff, patient, visit, changes):
    order_id = running(hospital, lab_staff, order(hospital, doctor, visit, "HGB"))
    before = last_notification_id(hospital)
    changes.clear()
    enter(hospital, lab_staff, order_id, "150")
    sent = notifications_since(hospital, before)
    assert [(n[0], n[1]) for n in sent] == [(patient.user_id, "Your results are ready"),
                                           (doctor.user_id, "Lab result ready")]
    assert all("150" not in n[2] for n in sent)  # no values in the (unencrypted) notification text
    lab_changes = [c for c in changes if c.topic == "lab"]
    assert lab_changes
    assert all(c.roles == {"lab"} and c.user_ids == {patient.user_id, doctor.user_id}
                               for c in lab_changes)
    result = result_of(hospital, order_id)
    assert result.verified_by == lab_staff.user_id
    assert 0 <= result.turnaround_seconds < 600
    assert result.turnaround_seconds == int((result.resulted_at - lab_order(hospital, order_id).ordered_at)
                                            .total_seconds())


def test_a_critical_value_sends_the_doctor_a_separate_urgent_notification(hospital, doctor, lab_staff, patient, visit):
    order_id = running(hospital, lab_staff, order(hospital, doctor, visit, "K"))
    before = last_notification_id(hospital)
    entered = enter(hospital, lab_staff, order_id, "7.1")
    assert (entered.flag, entered.is_critical, entered.flag_label) == ("critical_high", True, "Critical high")
    sent = notifications_since(hospital, before)
    # A critical value is held for the doctor's review: the patient hears of it only on release.
    assert [(n[0], n[1]) for n in sent] == [(doctor.user_id, "Lab result to review"),
                                           (doctor.user_id, "URGENT: critical lab result")]
    assert "critical high" in sent[-1][2]


def test_critical_results_come_first_for_the_doctor_until_acknowledged(hospital, doctor, lab_staff, patient, visit):
    critical_order, critical = resulted(hospital, doctor, lab_staff, visit, "K", "2.0")
    normal_order, normal = resulted(hospital, doctor, lab_staff, visit, "K", "4.0")  # newer
    rows = call(hospital, lab.results_for_doctor, actor=doctor).rows
    assert [r.order_id for r in rows] == [critical_order, normal_order]
    assert (rows[0].flag, rows[0].needs_acknowledgement, rows[1].needs_acknowledgement) == ("critical_low", True, False)
    assert call(hospital, lab.unacknowledged_critical_count, actor=doctor) == 1
    assert [r.order_id for r in call(hospital, lab.results_for_doctor, actor=doctor, critical_only=True).rows] == [
        critical_order]

    with pytest.raises(Conflict, match="Only a critical result"):
        call(hospital, lab.acknowledge_critical, actor=doctor, result_id=normal.result_id)
    after = last_audit_id(hospital)
    call(hospital, lab.acknowledge_critical, actor=doctor, result_id=critical.result_id)
    [event] = audit_events(hospital, action="lab_result.acknowledge", after_id=after)
    assert (event.actor_id, event.patient_id, str(event.outcome)) == (doctor.user_id, patient.user_id, "success")
    stored = result_of(hospital, critical_order)
    assert stored.critical_acknowledged_by == doctor.user_id
    assert stored.critical_acknowledged_at is not None
    with pytest.raises(Conflict, match="acknowledged"):
        call(hospital, lab.acknowledge_critical, actor=doctor, result_id=critical.result_id)
    rows = call(hospital, lab.results_for_doctor, actor=doctor).rows
    assert [r.order_id for r in rows] == [critical_order, normal_order]  # acknowledged, still held for review
    call(hospital, lab.review_result, actor=doctor, result_id=critical.result_id)
    rows = call(hospital, lab.results_for_doctor, actor=doctor).rows
    assert [r.order_id for r in rows] == [normal_order, critical_order]  # newest first once acknowledged and reviewed
    assert rows[1].critical_acknowledged
    assert rows[1].acknowledged_at
    assert call(hospital, lab.unacknowledged_critical_count, actor=doctor) == 0


def test_only_the_ordering_doctor_acknowledges_a_critical_result(hospital, doctor, lab_staff, patient, visit, actors):
    _, critical = resulted(hospital, doctor, lab_staff, visit, "K", "7.5")
    other_doctor = login_as(hospital, OTHER_DOCTOR_EMAIL)
    open_visit(hospital, other_doctor, patient.user_id)  # the patient is under their care too
    assert_refused(hospital, other_doctor, "lab_result.acknowledge",
                   lambda s: lab.acknowledge_critical(session=s, actor=other_doctor, result_id=critical.result_id),
                   error=NotFound)
    for role in (Role.LAB, Role.PATIENT, Role.PHARMACY, Role.ACCOUNTS, Role.ADMIN):
        assert_refused(hospital, actors[role], "lab_result.acknowledge",
                       lambda s, role=role: lab.acknowledge_critical(session=s, actor=actors[role],
                                                                     result_id=critical.result_id))
    with session_scope(write=False, engine=hospital) as s:
        assert s.get(LabResult, critical.result_id).critical_acknowledged_at is None


# --- who sees results -----------------------------------------------------------------------------


def test_the_patient_sees_their_own_completed_results_only(hospital, doctor, lab_staff, patient, visit):
    done, _ = resulted(hospital, doctor, lab_staff, visit, "HGB", "150", comment="Sample slightly lipaemic")
    running(hospital, lab_staff, order(hospital, doctor, visit, "NA"))  # not yet resulted
    other = login_as(hospital, OTHER_PATIENT_EMAIL)
    open_visit_other = open_visit(hospital, doctor, other.user_id)
    resulted(hospital, doctor, lab_staff, open_visit_other, "HGB", "120")

    page = call(hospital, lab.results_for_patient, actor=patient)
    assert [r.order_id for r in page.rows] == [done]
    view = page.rows[0]
    assert (view.value, view.unit, view.reference_range, view.flag_label, view.comment, view.verified_by) == (
        "150", "g/L", "130 - 180", "Normal", "Sample slightly lipaemic", "Lee Laboratory")
    assert audit_events(hospital, action="lab_result.list")[-1].patient_id == patient.user_id
    assert call(hospital, lab.result_for_order, actor=patient, order_id=done).value == "150"


def test_one_patient_cannot_fetch_anothers_result_or_file(hospital, doctor, lab_staff, patient, visit):
    order_id, _ = resulted(hospital, doctor, lab_staff, visit, "HGB", "150")
    call(hospital, lab.upload_report_file, actor=lab_staff, order_id=order_id, file_name="r.pdf", data=pdf_bytes())
    other = login_as(hospital, OTHER_PATIENT_EMAIL)
    for action, read in [
        ("lab_result.view", lambda s: lab.result_for_order(session=s, actor=other, order_id=order_id)),
        ("lab_result.download", lambda s: lab.download_result_file(session=s, actor=other, order_id=order_id)),
        ("lab_result.download", lambda s: lab.download_result_file(session=s, actor=other, order_id=str(order_id),
                                                                   which="pdf")),
        ("lab_report.generate", lambda s: lab.generate_report_pdf(session=s, actor=other, order_id=order_id)),
    ]:
        error = assert_refused(hospital, other, action, read, error=NotFound)
        assert str(error) == "That result does not exist."
    # Exactly what a missing order answers.
    missing = assert_refused(hospital, other, "lab_result.download",
                             lambda s: lab.download_result_file(session=s, actor=other, order_id=987_654),
                             error=NotFound)
    assert str(missing) == "That result does not exist."
    assert call(hospital, lab.results_for_patient, actor=other).total == 0


def test_a_patient_cannot_fetch_their_own_result_before_it_is_completed(hospital, doctor, lab_staff, patient, visit):
    order_id = running(hospital, lab_staff, order(hospital, doctor, visit, "HGB"))
    call(hospital, lab.upload_report_file, actor=lab_staff, order_id=order_id, file_name="r.pdf", data=pdf_bytes())
    assert_refused(hospital, patient, "lab_result.download",
                   lambda s: lab.download_result_file(session=s, actor=patient, order_id=order_id), error=NotFound)


def test_downloads_for_the_patient_and_the_doctor_are_audited(hospital, doctor, lab_staff, patient, visit):
    order_id, _ = resulted(hospital, doctor, lab_staff, visit, "HGB", "150")
    upload = pdf_bytes("Analyser printout 42")
    call(hospital, lab.upload_report_file, actor=lab_staff, order_id=order_id, file_name="hgb report.pdf", data=upload)
    after = last_audit_id(hospital)
    for actor in (patient, doctor):
        report = call(hospital, lab.download_result_file, actor=actor, order_id=order_id, which="report")
        assert (report.file_name, report.content_type, report.data) == ("hgb report.pdf", "application/pdf", upload)
        generated = call(hospital, lab.download_result_file, actor=actor, order_id=order_id, which="pdf")
        assert generated.data.startswith(b"%PDF")
        assert generated.file_name == f"lab-report-{order_id}.pdf"
    events_ = audit_events(hospital, action="lab_result.download", after_id=after)
    assert [(e.actor_id, e.detail, e.patient_id) for e in events_] == [
        (patient.user_id, "report", patient.user_id), (patient.user_id, "pdf", patient.user_id),
        (doctor.user_id, "report", patient.user_id), (doctor.user_id, "pdf", patient.user_id)]
    with pytest.raises(ValidationError):
        call(hospital, lab.download_result_file, actor=patient, order_id=order_id, which="../etc/passwd")


def test_another_doctor_needs_the_chart_to_see_a_result(hospital, doctor, lab_staff, patient, visit):
    order_id, _ = resulted(hospital, doctor, lab_staff, visit, "HGB", "150")
    other_doctor = login_as(hospital, OTHER_DOCTOR_EMAIL)
    assert_refused(hospital, other_doctor, "lab_result.download",
                   lambda s: lab.download_result_file(session=s, actor=other_doctor, order_id=order_id, which="pdf"),
                   error=BreakGlassRequired)
    assert call(hospital, lab.results_for_doctor, actor=other_doctor).total == 0  # not theirs
    call(hospital, clinical.break_glass, actor=other_doctor, patient_id=patient.user_id,
         reason="Unconscious in the emergency department")
    assert call(hospital, lab.result_for_order, actor=other_doctor, order_id=order_id).value == "150"


def test_no_report_file_yet_is_not_found(hospital, doctor, lab_staff, patient, visit):
    order_id, _ = resulted(hospital, doctor, lab_staff, visit, "HGB", "150")
    with pytest.raises(NotFound, match="No report file"):
        call(hospital, lab.download_result_file, actor=patient, order_id=order_id)


# --- report files ---------------------------------------------------------------------------------


ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 56 + b"\x90" * 200
WINDOWS_EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00" + b"\x00" * 50 + b"PE\x00\x00" + b"\x90" * 200


@pytest.mark.parametrize(("file_name", "data", "message"), [
    ("report.pdf", WINDOWS_EXE, "Only PDF, PNG and JPEG"),
    ("report.pdf", ELF, "Only PDF, PNG and JPEG"),
    ("report.pdf", b"", "empty"),
    ("report.pdf", b"%PDF-1.4\n" + b"0" * (10 * 1024 * 1024), "larger than 10 MB"),
    ("../../etc/report.pdf", None, "folders"),
    ("..\\report.pdf", None, "folders"),
    ("/tmp/report.pdf", None, "folders"),
    ("report.exe.pdf", None, "program's extension"),
    ("report.pdf.exe", None, "program's extension"),
    ("report.final.pdf", None, "single extension"),
    ("report.png", None, "content is a PDF"),
])
def test_upload_refusals_store_nothing(hospital, doctor, lab_staff, visit, file_name, data, message):
    order_id = running(hospital, lab_staff, order(hospital, doctor, visit, "HGB"))
    data = pdf_bytes() if data is None else data
    with pytest.raises(ValidationError, match=message):
        call(hospital, lab.upload_report_file, actor=lab_staff, order_id=order_id, file_name=file_name, data=data)
    assert stored_files() == []
    assert table_count(hospital, LabReportFile) == 0


def test_an_upload_is_stored_encrypted_and_a_new_one_replaces_it(hospital, doctor, lab_staff, visit, changes):
    order_id = running(hospital, lab_staff, order(hospital, doctor, visit, "HGB"))
    first = pdf_bytes("First printout")
    changes.clear()
    call(hospital, lab.upload_report_file, actor=lab_staff, order_id=order_id, file_name="first.pdf", data=first)
    [stored] = stored_files()
    assert b"First printout" not in stored.read_bytes()
    assert not stored.name.endswith(".pdf")
    assert stored.stat().st_mode & 0o777 == 0o600
    assert str(stored.resolve()).startswith(str(settings.FILES_DIR.resolve()))
    assert any(c.topic == "lab" for c in changes)
    call(hospital, lab.upload_report_file, actor=lab_staff, order_id=order_id, file_name="second.pdf",
         data=pdf_bytes("Second printout"))
    [row] = report_rows(hospital)
    assert row.file_name == "second.pdf"
    assert row.uploaded_by == lab_staff.user_id
    assert [p.name for p in stored_files()] == [row.storage_name]
    assert [e.detail for e in audit_events(hospital, action="lab_report.upload")][-1].endswith("replaced")


def test_no_upload_before_the_sample_or_after_a_cancellation(hospital, doctor, lab_staff, visit):
    requested = order(hospital, doctor, visit, "HGB")
    with pytest.raises(Conflict, match="Collect the sample"):
        call(hospital, lab.upload_report_file, actor=lab_staff, order_id=requested, file_name="r.pdf",
             data=pdf_bytes())
    call(hospital, lab.cancel_order, actor=lab_staff, order_id=requested, reason="Duplicate order")
    with pytest.raises(Conflict, match="cancelled"):
        call(hospital, lab.upload_report_file, actor=lab_staff, order_id=requested, file_name="r.pdf",
             data=pdf_bytes())
    assert stored_files() == []


# --- the PDF report -------------------------------------------------------------------------------


def test_the_pdf_report_carries_the_hospital_patient_result_and_verifier(hospital, doctor, lab_staff, patient, visit):
    born = years_before(today(), 40)
    order_id, _ = resulted(hospital, doctor, lab_staff, visit, "HGB", "65.5", comment="Phoned to Dr Hart")
    with pytest.raises(Conflict, match="Enter the result"):
        call(hospital, lab.generate_report_pdf, actor=lab_staff,
             order_id=running(hospital, lab_staff, order(hospital, doctor, visit, "NA")))
    pdf = call(hospital, lab.generate_report_pdf, actor=lab_staff, order_id=order_id)
    assert pdf.startswith(b"%PDF-")
    assert len(pdf) > 1000
    text = pdf_text(pdf)
    for expected in (settings.HOSPITAL_NAME, "Maria Garcia", format_date(born), "Haemoglobin (HGB)", "65.5 g/L",
                     "130 - 180 g/L", "Critical low", "Phoned to Dr Hart", "Lee Laboratory", "Amelia Hart"):
        assert expected in text, expected
    with session_scope(write=False, engine=hospital) as s:
        result = s.get(LabResult, result_of(hospital, order_id).id)
    local = format_local(result.resulted_at, zone=True)
    assert local in text
    assert audit_events(hospital, action="lab_report.generate")[-1].patient_id == patient.user_id


# --- races ----------------------------------------------------------------------------------------


def _all_at_once(count: int, work):
    """Run ``work()`` in ``count`` threads released together; return results or errors."""
    barrier = threading.Barrier(count)

    def run(_):
        barrier.wait(timeout=30)
        try:
            return work()
        except Exception as error:  # collected and checked by the caller
            return error

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


def test_one_result_wins_when_lab_staff_enter_it_at_once(hospital, doctor, lab_staff, patient, visit):
    order_id = running(hospital, lab_staff, order(hospital, doctor, visit, "K"))
    before = last_notification_id(hospital)
    outcomes = _all_at_once(6, lambda: enter(hospital, lab_staff, order_id, "7.2"))
    assert sum(isinstance(o, lab.EnteredResult) for o in outcomes) == 1, outcomes
    assert all(isinstance(o, Conflict) for o in outcomes if not isinstance(o, lab.EnteredResult)), outcomes
    assert table_count(hospital, LabResult) == 1
    assert len(notifications_since(hospital, before)) == 2  # the doctor's "to review" and the one urgent notice
    assert len(audit_events(hospital, action="lab_result.enter")) == 1


def test_one_move_wins_when_two_collect_the_same_sample(hospital, doctor, lab_staff, visit):
    order_id = order(hospital, doctor, visit, "NA")
    outcomes = _all_at_once(6, lambda: call(hospital, lab.collect_sample, actor=lab_staff, order_id=order_id))
    assert outcomes.count(None) == 1, outcomes
    assert len(audit_events(hospital, action="lab_order.collect")) == 1

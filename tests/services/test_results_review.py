"""Results review: a result reaches its patient by the test's release rule, or when the ordering
doctor marks it reviewed; until then the patient sees only that it awaits review, everywhere.
Also the lab's result-entry guide, the worklist's closed orders over dates, and the desks."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from hms_app import settings
from hms_app.db.engine import session_scope
from hms_app.db.enums import AppointmentStatus, LabReleaseRule, Role
from hms_app.db.models import EmailOutbox, LabOrder, LabResult, LabTest
from hms_app.db.types import utcnow
from hms_app.services.care import clinical
from hms_app.services.core import events
from hms_app.services.core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from hms_app.services.interop import fhir, record_summary
from hms_app.services.laboratory import lab
from hms_app.services.reporting import desks
from tests.conftest import login_as
from tests.services.appointment_helpers import (
    OTHER_DOCTOR_EMAIL,
    call,
    insert_appointment,
    last_notification_id,
    notifications_since,
)
from tests.services.helpers import assert_refused, audit_events, last_audit_id
from tests.services.lab_helpers import (
    open_visit,
    order,
    pdf_bytes,
    pdf_text,
    result_of,
    running,
    set_patient,
    today,
    use_private_data_dir,
    with_reference_data,
    years_before,
)

pytestmark = pytest.mark.db


@pytest.fixture(autouse=True)
def _private_data(monkeypatch, tmp_path):
    monkeypatch.setattr(settings, "SMTP_URL", "smtp://127.0.0.1:2525?from=hms@hms.example")
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
    """An open encounter of the patient (a man of 40: potassium 3.5-5.3, critical below 2.5 and above 6.5)."""
    set_patient(hospital, patient.user_id, sex="male", birth_date=years_before(today(), 40))
    return open_visit(hospital, doctor, patient.user_id)


def resulted(engine, doctor, lab_staff, visit, code, value, comment=""):
    order_id = running(engine, lab_staff, order(engine, doctor, visit, code))
    return order_id, call(engine, lab.enter_result, actor=lab_staff, order_id=order_id, value=value, comment=comment)


def set_rule(engine, code: str, rule: LabReleaseRule) -> None:
    with session_scope(engine=engine) as s:
        s.execute(sa.update(LabTest).where(LabTest.code == code).values(release_rule=rule.value))
        s.commit()


def mails(engine, user_id: int) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(EmailOutbox.event_key).where(EmailOutbox.user_id == user_id)).scalars())


def patient_row(engine, patient, order_id):
    return next(r for r in call(engine, lab.results_for_patient, actor=patient).rows if r.order_id == order_id)


# --- the rule ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("rule", "flag", "at_once"), [
    ("at_once", "critical_high", True), ("at_once", "", True), ("at_once", "normal", True),
    ("normal_at_once", "normal", True), ("normal_at_once", "low", False), ("normal_at_once", "high", False),
    ("normal_at_once", "critical_low", False), ("normal_at_once", "", False),
    ("after_review", "normal", False), ("after_review", "", False),
])
def test_the_release_rule(rule, flag, at_once):
    assert lab.releases_at_once(rule, flag) is at_once


def test_a_normal_result_reaches_the_patient_at_once(hospital, doctor, lab_staff, patient, visit):
    before = last_notification_id(hospital)
    order_id, entered = resulted(hospital, doctor, lab_staff, visit, "K", "4.1")
    assert entered.released
    assert result_of(hospital, order_id).released_at is not None
    row = patient_row(hospital, patient, order_id)
    assert (row.value, row.flag, row.held, row.status) == ("4.1", "normal", False, "")
    assert (patient.user_id, "Your results are ready") in [(n[0], n[1]) for n in notifications_since(hospital, before)]
    assert mails(hospital, patient.user_id) == [f"lab.results_ready:{order_id}"]


def test_an_abnormal_result_waits_and_the_patient_sees_no_value_anywhere(hospital, doctor, lab_staff, patient, visit):
    before = last_notification_id(hospital)
    order_id = running(hospital, lab_staff, order(hospital, doctor, visit, "K"))
    call(hospital, lab.upload_report_file, actor=lab_staff, order_id=order_id, file_name="k.pdf",
         data=pdf_bytes("Potassium 5.9"))
    entered = call(hospital, lab.enter_result, actor=lab_staff, order_id=order_id, value="5.9", comment="Repeat")
    assert (entered.flag, entered.released) == ("high", False)
    assert result_of(hospital, order_id).released_at is None
    # The patient is not told; the doctor is told it waits for them.
    sent = notifications_since(hospital, before)
    assert [(n[0], n[1]) for n in sent] == [(doctor.user_id, "Lab result to review")]
    assert mails(hospital, patient.user_id) == []
    # The patient's results: the row, with no value, flag, range, comment or file.
    row = patient_row(hospital, patient, order_id)
    assert (row.value, row.unit, row.flag, row.flag_label, row.reference_range, row.comment) == ("",) * 6
    assert (row.held, row.status, row.has_report_file, row.can_review) == (True, lab.AWAITING_REVIEW, False, False)
    assert row.test == "Potassium"
    # Every download and the single view answer exactly like a missing order.
    for which in ("pdf", "report"):
        with pytest.raises(NotFound) as held:
            call(hospital, lab.download_result_file, actor=patient, order_id=order_id, which=which)
        with pytest.raises(NotFound) as missing:
            call(hospital, lab.download_result_file, actor=patient, order_id=999_999, which=which)
        assert held.value.message == missing.value.message
    with pytest.raises(NotFound):
        call(hospital, lab.result_for_order, actor=patient, order_id=order_id)
    with pytest.raises(NotFound):
        call(hospital, lab.generate_report_pdf, actor=patient, order_id=order_id)
    # The timeline, the FHIR export and the PDF summary.
    history = call(hospital, clinical.my_history, actor=patient).rows
    assert next(e for e in history if e.kind == "lab" and e.id == order_id).status == "awaiting review by your doctor"
    record = call(hospital, fhir.export_my_record, actor=patient)
    [observation] = [o for o in fhir.typed(record)["Observation"] if o["id"] == f"lab-{order_id}"]
    assert observation["status"] == "registered"
    assert not {"valueQuantity", "valueString", "referenceRange", "interpretation"} & observation.keys()
    assert "5.9" not in str(observation)
    assert "Repeat" not in str(observation)
    assert all(r["id"] != str(order_id) for r in fhir.typed(record).get("DiagnosticReport", []))
    text = pdf_text(call(hospital, record_summary.my_record_pdf, actor=patient).data)
    assert "Awaiting review by your doctor" in text
    assert "5.9" not in text
    # The doctor sees it all, held, with the review offered.
    [mine] = [r for r in call(hospital, lab.results_for_doctor, actor=doctor).rows if r.order_id == order_id]
    assert (mine.value, mine.flag, mine.held, mine.can_review) == ("5.9", "high", True, True)
    assert call(hospital, lab.download_result_file, actor=doctor, order_id=order_id, which="pdf").data


def test_a_text_result_waits_under_the_default_rule(hospital, doctor, lab_staff, patient, visit):
    order_id, entered = resulted(hospital, doctor, lab_staff, visit, "CULT", "E. coli, sensitive to nitrofurantoin")
    assert not entered.released
    assert patient_row(hospital, patient, order_id).value == ""


def test_the_tests_rule_decides(hospital, doctor, lab_staff, patient, visit):
    set_rule(hospital, "K", LabReleaseRule.AT_ONCE)
    high, entered = resulted(hospital, doctor, lab_staff, visit, "K", "5.9")
    assert entered.released
    assert patient_row(hospital, patient, high).value == "5.9"
    set_rule(hospital, "K", LabReleaseRule.AFTER_REVIEW)
    normal, entered = resulted(hospital, doctor, lab_staff, visit, "K", "4.0")
    assert not entered.released
    assert patient_row(hospital, patient, normal).held


# --- the review --------------------------------------------------------------------------------


def test_the_ordering_doctor_reviews_which_releases_it(hospital, doctor, lab_staff, patient, visit):
    order_id, entered = resulted(hospital, doctor, lab_staff, visit, "K", "5.9")
    assert call(hospital, lab.results_to_review_count, actor=doctor) == 1
    received: list[events.Change] = []
    events.subscribe(received.append)
    before, after = last_notification_id(hospital), last_audit_id(hospital)
    try:
        call(hospital, lab.review_result, actor=doctor, result_id=entered.result_id,
             note="  Slightly high; we will repeat it next week.  ")
    finally:
        events.unsubscribe(received.append)
    stored = result_of(hospital, order_id)
    assert stored.released_at is not None
    assert stored.reviewed_at == stored.released_at
    assert (stored.reviewed_by, stored.review_note) == (doctor.user_id, "Slightly high; we will repeat it next week.")
    with hospital.connect() as conn:  # encrypted at rest
        raw = conn.execute(sa.text("SELECT review_note FROM lab_result WHERE id = :id"), {"id": entered.result_id}).scalar_one()
    assert "repeat" not in raw
    [event] = audit_events(hospital, action="lab_result.review", after_id=after)
    assert (event.actor_id, event.patient_id, str(event.outcome)) == (doctor.user_id, patient.user_id, "success")
    assert [(n[0], n[1]) for n in notifications_since(hospital, before)] == [(patient.user_id, "Your results are ready")]
    assert mails(hospital, patient.user_id) == [f"lab.results_ready:{order_id}"]
    assert any(c.topic == "lab" and patient.user_id in c.user_ids for c in received)
    row = patient_row(hospital, patient, order_id)
    assert (row.value, row.flag, row.held, row.status) == ("5.9", "high", False, "Reviewed")
    assert row.review_note == "Slightly high; we will repeat it next week."
    assert call(hospital, lab.download_result_file, actor=patient, order_id=order_id, which="pdf").data
    assert call(hospital, lab.results_to_review_count, actor=doctor) == 0


def test_reviewing_twice_is_refused_and_changes_nothing(hospital, doctor, lab_staff, visit):
    _, entered = resulted(hospital, doctor, lab_staff, visit, "K", "5.9")
    call(hospital, lab.review_result, actor=doctor, result_id=entered.result_id, note="First")
    with pytest.raises(Conflict, match="You reviewed this result"):
        call(hospital, lab.review_result, actor=doctor, result_id=entered.result_id, note="Second")
    assert result_of(hospital, _).review_note == "First"


def test_a_result_released_at_once_needs_no_review(hospital, doctor, lab_staff, visit):
    _, entered = resulted(hospital, doctor, lab_staff, visit, "K", "4.0")
    with pytest.raises(Conflict, match="needs no review"):
        call(hospital, lab.review_result, actor=doctor, result_id=entered.result_id)


def test_a_note_too_long_is_refused(hospital, doctor, lab_staff, visit):
    order_id, entered = resulted(hospital, doctor, lab_staff, visit, "K", "5.9")
    with pytest.raises(ValidationError, match="at most 1000"):
        call(hospital, lab.review_result, actor=doctor, result_id=entered.result_id, note="x" * 1001)
    assert result_of(hospital, order_id).released_at is None


def test_only_the_ordering_doctor_reviews(hospital, doctor, lab_staff, patient, visit, actors):
    order_id, entered = resulted(hospital, doctor, lab_staff, visit, "K", "5.9")
    other = login_as(hospital, OTHER_DOCTOR_EMAIL)
    open_visit(hospital, other, patient.user_id)  # the patient is under their care too
    refused = assert_refused(hospital, other, "lab_result.review",
                             lambda s: lab.review_result(session=s, actor=other, result_id=entered.result_id),
                             error=NotFound)
    with pytest.raises(NotFound) as missing:
        call(hospital, lab.review_result, actor=doctor, result_id=999_999)
    assert refused.message == missing.value.message
    for role in (Role.LAB, Role.PATIENT, Role.PHARMACY, Role.ACCOUNTS, Role.ADMIN):
        assert_refused(hospital, actors[role], "lab_result.review",
                       lambda s, role=role: lab.review_result(session=s, actor=actors[role], result_id=entered.result_id),
                       error=(PermissionDenied, NotFound))
    assert result_of(hospital, order_id).released_at is None


def test_the_doctor_sees_critical_then_held_results_first(hospital, doctor, lab_staff, visit):
    released, _ = resulted(hospital, doctor, lab_staff, visit, "K", "4.0")
    held_old, _ = resulted(hospital, doctor, lab_staff, visit, "K", "5.8")
    held_new, _ = resulted(hospital, doctor, lab_staff, visit, "K", "5.9")
    critical, _ = resulted(hospital, doctor, lab_staff, visit, "K", "7.0")
    newest, _ = resulted(hospital, doctor, lab_staff, visit, "K", "4.2")
    rows = call(hospital, lab.results_for_doctor, actor=doctor).rows
    assert [r.order_id for r in rows] == [critical, held_old, held_new, newest, released]


# --- the lab's result entry and worklist -------------------------------------------------------


def test_the_worklist_shows_the_patients_range_and_the_critical_limits(hospital, doctor, lab_staff, patient, visit):
    order_id = order(hospital, doctor, visit, "HGB")
    set_patient(hospital, patient.user_id, sex="female")
    [row] = [r for r in call(hospital, lab.worklist, actor=lab_staff).rows if r.id == order_id]
    assert (row.unit, row.reference_range, row.critical_limits) == ("g/L", "115 - 165 g/L", "below 70, above 200 g/L")
    set_patient(hospital, patient.user_id, sex="male")
    [row] = [r for r in call(hospital, lab.worklist, actor=lab_staff).rows if r.id == order_id]
    assert row.reference_range == "130 - 180 g/L"


def _closed_at(engine, order_id: int, when) -> None:
    with session_scope(engine=engine) as s:
        s.execute(sa.update(LabResult).where(LabResult.order_id == order_id).values(resulted_at=when))
        s.execute(sa.update(LabOrder).where(LabOrder.id == order_id, LabOrder.cancelled_at.is_not(None))
                  .values(cancelled_at=when))
        s.commit()


def test_the_worklist_lists_completed_and_cancelled_orders_over_dates(hospital, doctor, lab_staff, visit):
    open_id = order(hospital, doctor, visit, "NA")
    done_today, _ = resulted(hospital, doctor, lab_staff, visit, "K", "4.0")
    done_long_ago, _ = resulted(hospital, doctor, lab_staff, visit, "K", "4.1")
    _closed_at(hospital, done_long_ago, utcnow() - timedelta(days=30))
    cancelled = order(hospital, doctor, visit, "HGB")
    call(hospital, lab.cancel_order, actor=lab_staff, order_id=cancelled, reason="Sample haemolysed")

    def ids(**kwargs):
        return [r.id for r in call(hospital, lab.worklist, actor=lab_staff, **kwargs).rows]

    assert ids() == [open_id]
    assert ids(show="completed") == [done_today]  # the last week by default
    day = today()
    assert ids(show="completed", date_from=(day - timedelta(days=40)).isoformat(), date_to=day.isoformat()) == [
        done_today, done_long_ago]
    assert ids(show="cancelled") == [cancelled]
    assert ids(show="cancelled", date_to=(day - timedelta(days=1)).isoformat()) == []
    page = call(hospital, lab.worklist, actor=lab_staff, show="completed", date_from=(day - timedelta(days=40)).isoformat(),
                page_size=1)
    assert (page.total, [r.id for r in page.rows]) == (2, [done_today])


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"show": "everything"}, "Choose a list to show"),
    ({"show": "completed", "date_from": "07/12/2026"}, "calendar date"),
    ({"show": "completed", "date_from": "2026-02-30"}, "calendar date"),
    ({"show": "completed", "date_from": "2026-12-08", "date_to": "2026-12-01"}, "must not be after"),
    ({"show": "completed", "date_from": "2020-01-01", "date_to": "2026-01-01"}, "at most 366 days"),
])
def test_the_worklist_refuses_bad_filters(hospital, lab_staff, kwargs, message):
    with pytest.raises(ValidationError, match=message):
        call(hospital, lab.worklist, actor=lab_staff, **kwargs)


# --- the desks ----------------------------------------------------------------------------------


def test_the_doctors_desk(hospital, doctor, lab_staff, patient, visit):
    requests_before = next(c.count for c in call(hospital, desks.doctor_desk, actor=doctor).waiting
                           if c.key == "requests")
    now = utcnow().replace(second=0, microsecond=0)
    start_of_day = now.astimezone(settings.TIMEZONE).replace(hour=0, minute=0).astimezone(now.tzinfo)
    morning = insert_appointment(hospital, patient_id=patient.user_id, doctor_id=doctor.user_id,
                                 starts_at=start_of_day + timedelta(minutes=1))
    insert_appointment(hospital, patient_id=patient.user_id, doctor_id=doctor.user_id,
                       starts_at=start_of_day + timedelta(minutes=30), status=AppointmentStatus.CANCELLED)
    # Just after midnight, three days on: clear of the demo's clinics, which PostgreSQL's
    # exclusion constraint would refuse an overlap with whatever the time of the run.
    insert_appointment(hospital, patient_id=patient.user_id, doctor_id=doctor.user_id,
                       starts_at=start_of_day + timedelta(days=3, minutes=5), status=AppointmentStatus.REQUESTED)
    resulted(hospital, doctor, lab_staff, visit, "K", "5.9")
    resulted(hospital, doctor, lab_staff, visit, "K", "7.0")
    desk = call(hospital, desks.doctor_desk, actor=doctor)
    [visit_row] = [v for v in desk.today if v.appointment_id == morning]
    assert (visit_row.patient, visit_row.status, visit_row.reason) == (patient.full_name, "Confirmed",
                                                                      "Inserted by the test")
    assert AppointmentStatus.CANCELLED.value not in {v.status_value for v in desk.today}
    counts = {c.key: (c.count, c.link) for c in desk.waiting}
    assert counts == {"requests": (requests_before + 1, "/doctor/appointments"), "review": (2, "/doctor/results"),
                      "critical": (1, "/doctor/results")}


def test_the_labs_desk(hospital, doctor, lab_staff, visit):
    order(hospital, doctor, visit, "NA", priority="stat")
    collected = order(hospital, doctor, visit, "K")
    call(hospital, lab.collect_sample, actor=lab_staff, order_id=collected)
    for value in ("4.0", "4.1", "4.2"):
        resulted(hospital, doctor, lab_staff, visit, "K", value)
    with session_scope(engine=hospital) as s:  # turnarounds of 10, 40 and 90 minutes
        ids = s.execute(sa.select(LabResult.id).order_by(LabResult.id)).scalars().all()
        for id_, seconds in zip(ids, (600, 2400, 5400), strict=True):
            s.execute(sa.update(LabResult).where(LabResult.id == id_).values(turnaround_seconds=seconds))
        s.commit()
    desk = call(hospital, desks.lab_desk, actor=lab_staff)
    assert {c.key: c.count for c in desk.by_status} == {"requested": 1, "collected": 1, "in_progress": 0}
    assert {c.key: c.count for c in desk.by_priority} == {"stat": 1, "urgent": 0, "routine": 1}
    assert (desk.open_total, desk.resulted_today, desk.median_turnaround) == (2, 3, "40 min")


def test_the_desks_median_of_an_even_count(hospital, doctor, lab_staff, visit):
    for value in ("4.0", "4.1"):
        resulted(hospital, doctor, lab_staff, visit, "K", value)
    with session_scope(engine=hospital) as s:
        for id_, seconds in zip(s.execute(sa.select(LabResult.id)).scalars().all(), (600, 1800), strict=True):
            s.execute(sa.update(LabResult).where(LabResult.id == id_).values(turnaround_seconds=seconds))
        s.commit()
    assert call(hospital, desks.lab_desk, actor=lab_staff).median_turnaround == "20 min"


@pytest.mark.parametrize("role", [Role.LAB, Role.PATIENT, Role.PHARMACY, Role.ACCOUNTS])
def test_only_clinicians_open_the_doctors_desk(hospital, actors, role):
    with pytest.raises(PermissionDenied):
        call(hospital, desks.doctor_desk, actor=actors[role])


@pytest.mark.parametrize("role", [Role.DOCTOR, Role.PATIENT, Role.PHARMACY, Role.ACCOUNTS, Role.ADMIN])
def test_only_the_lab_opens_the_labs_desk(hospital, actors, role):
    with pytest.raises(PermissionDenied):
        call(hospital, desks.lab_desk, actor=actors[role])

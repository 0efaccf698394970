"""Issue 4 in a real browser: the doctor opens a confirmed appointment, writes the note,
prescribes a drug the patient is allergic to (sees the warning, overrides it with a
reason), orders a lab test and completes the encounter; the pharmacy queue and the lab
worklist, open in other browsers, show the new items without a reload."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

from tests.e2e.helpers import assert_accessible, log_in, screenshot, wait_ready

PATIENT = "maria.garcia@patients.example"  # the demo data records her penicillin allergy
DOCTOR = "mateo.rossi@hms.example"


def started_confirmed_appointment(db: str, patient_email: str = PATIENT, doctor_email: str = DOCTOR, *,
                                  minutes_ago: int = 10) -> int:
    """A confirmed appointment that began ``minutes_ago`` (booking refuses the past)."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=minutes_ago)
    with sqlite3.connect(db) as conn:
        patient = conn.execute("SELECT id FROM user WHERE email=?", (patient_email,)).fetchone()[0]
        doctor, department = conn.execute(
            "SELECT u.id, d.department_id FROM user u JOIN doctor_profile d ON d.user_id=u.id WHERE u.email=?",
            (doctor_email,)).fetchone()
        cursor = conn.execute(
            "INSERT INTO appointment (patient_id, doctor_id, department_id, starts_at, ends_at, status, reason, "
            "status_reason, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'confirmed', 'Sore throat and fever', '', ?, ?)",
            (patient, doctor, department, start.replace(tzinfo=None).isoformat(" "),
             (start + timedelta(minutes=20)).replace(tzinfo=None).isoformat(" "),
             start.replace(tzinfo=None).isoformat(" "), start.replace(tzinfo=None).isoformat(" ")))
        return cursor.lastrowid


def test_encounter_prescription_and_orders_reach_pharmacy_and_lab_live(app_server, browser, screenshot_dir):
    db = app_server.database_url.removeprefix("sqlite:///")
    appointment_id = started_confirmed_appointment(db)
    contexts = [browser.new_context(viewport={"width": 1280, "height": 1000}) for _ in range(3)]
    try:
        pharmacy, lab, doctor = (ctx.new_page() for ctx in contexts)
        log_in(pharmacy, app_server.url, "pharmacy@hms.example")
        pharmacy.wait_for_url(f"{app_server.url}/pharmacy")
        pharmacy.goto(f"{app_server.url}/pharmacy/queue")
        wait_ready(pharmacy)
        log_in(lab, app_server.url, "lab@hms.example")
        lab.wait_for_url(f"{app_server.url}/lab")
        lab.goto(f"{app_server.url}/lab/worklist")
        wait_ready(lab)

        log_in(doctor, app_server.url, DOCTOR)
        doctor.wait_for_url(f"{app_server.url}/doctor")
        doctor.goto(f"{app_server.url}/doctor/encounter?appointment={appointment_id}")
        wait_ready(doctor)
        doctor.get_by_text("Maria Garcia").first.wait_for()
        doctor.fill("#enc-subjective", "Sore throat for three days, fever at night.")
        doctor.fill("#enc-assessment", "Probable streptococcal pharyngitis.")
        doctor.fill("#enc-diagnosis", "Acute pharyngitis")
        doctor.fill("#vital-bp_systolic", "124")
        doctor.fill("#vital-bp_diastolic", "78")
        doctor.fill("#vital-temperature_c", "38.4")
        doctor.fill("#vital-pulse", "96")
        doctor.get_by_role("button", name="Save notes and vitals").click()
        doctor.get_by_text("Notes and vitals saved").first.wait_for()

        doctor.select_option("#rx-medicine", label="Amoxicillin 500 mg (capsule)")
        doctor.fill("#rx-dose", "1 capsule")
        doctor.select_option("#rx-frequency", value="three times daily")
        doctor.fill("#rx-days", "7")
        warning = doctor.locator("#rx-warnings")
        warning.wait_for()
        assert "Penicillin" in warning.inner_text()
        screenshot(doctor, screenshot_dir, "doctor-encounter-warning")
        assert_accessible(doctor)
        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT count(*) FROM prescription p JOIN encounter e ON e.id = p.encounter_id "
                                "WHERE e.appointment_id = ?", (appointment_id,)).fetchone()[0] == 0
        doctor.fill("#rx-override", "Mild rash only in childhood; tolerated amoxicillin in 2024.")
        doctor.get_by_role("button", name="Override and sign").click()
        doctor.get_by_text("Prescription signed").first.wait_for()

        # The pharmacy's open queue shows it, with the override, without a reload.
        row = pharmacy.locator("tr[data-prescription]").filter(has_text="Maria Garcia")
        row.wait_for(timeout=5_000)
        assert "tolerated amoxicillin" in row.inner_text()
        screenshot(pharmacy, screenshot_dir, "pharmacy-queue")
        assert_accessible(pharmacy)

        doctor.get_by_text("C-reactive protein").first.click()
        doctor.select_option("#lab-priority", value="urgent")
        doctor.get_by_role("button", name="Order tests").click()
        doctor.get_by_text("test(s) ordered").first.wait_for()
        order = lab.locator("tr[data-order]").filter(has_text="Maria Garcia")
        order.wait_for(timeout=5_000)
        text = order.inner_text()
        assert "urgent" in text
        assert "pharyngitis" not in text.lower()
        screenshot(lab, screenshot_dir, "lab-worklist")
        assert_accessible(lab)

        doctor.get_by_role("button", name="Complete encounter").click()
        doctor.wait_for_url(f"{app_server.url}/doctor/appointments")
        with sqlite3.connect(db) as conn:
            status = conn.execute("SELECT status FROM appointment WHERE id=?", (appointment_id,)).fetchone()[0]
            encounter = conn.execute("SELECT status, diagnosis FROM encounter WHERE appointment_id=?",
                                     (appointment_id,)).fetchone()
            override = conn.execute("SELECT override_reason FROM prescription_item").fetchone()[0]
        assert status == "completed"
        assert encounter[0] == "completed"
        assert "pharyngitis" not in encounter[1]
        assert "tolerated" not in override

        doctor.goto(f"{app_server.url}/doctor/patient?id=" + str(_patient_id(db)))
        wait_ready(doctor)
        doctor.get_by_text("Acute pharyngitis").first.wait_for()
        screenshot(doctor, screenshot_dir, "doctor-chart")
        assert_accessible(doctor)
    finally:
        for ctx in contexts:
            ctx.close()


def _patient_id(db: str) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT id FROM user WHERE email=?", (PATIENT,)).fetchone()[0]

"""A patient whose every free-text field carries HTML and script, for the stored-XSS journey.

Run as ``python -m tests.e2e.xss_seed <nonce>`` in the environment of a running app server
(``HMS_DATA_DIR`` pointing at its data folder, so that clinical text is encrypted with the
server's key). It writes, through the services as the hospital's staff would, a patient whose
name, appointment reasons, decline reason, notes, diagnosis, allergy, problem, document title
and file name, prescription instructions, pharmacy rejection reason, lab note, invoice
discount reason and payment reference are payloads, and prints one JSON object: the ids and
the payloads as stored. It also leaves a started visit with no notes yet (``open_visit``).

The patient's doctor is Dr Grace Okafor (Orthopedics), whom no other journey uses.
"""

from __future__ import annotations

import json
import sys
from datetime import timedelta

import sqlalchemy as sa

from hms_app.db.engine import get_engine, session_scope
from hms_app.db.enums import AppointmentStatus
from hms_app.db.models import Appointment, DoctorProfile, Document, Invoice, LabTest, Medicine
from hms_app.db.types import utcnow
from hms_app.operations import demo
from hms_app.services.accounting import billing
from hms_app.services.administration import auth
from hms_app.services.booking import appointments
from hms_app.services.care import clinical, documents, prescribing
from hms_app.services.care.clinical import EncounterForm
from hms_app.services.care.prescribing import ItemForm
from hms_app.services.core.actor import Anonymous
from hms_app.services.medicines import pharmacy

DOCTOR_EMAIL = "grace.okafor@hms.example"
PASSWORD = "Xss-Patient-Passw0rd"
IP = "198.51.100.9"


def payloads(tag: str) -> dict[str, str]:
    """One payload per field; each names its field so that a fired alert says which one."""
    return {
        "name": f"Xavi{tag} <img src=x onerror=alert('name')> Quill",
        "visit_reason": "Knee pain <script>alert('visit')</script>",
        "booking_reason": "Swollen ankle <img src=x onerror=alert('booking')>",
        "decline_reason": "Fully booked <img src=x onerror=alert('decline')>",
        "subjective": "<script>alert('subjective')</script> Twisted the knee on stairs",
        "assessment": "Sprain <img src=x onerror=alert('assessment')>",
        "diagnosis": "Ligament strain <svg onload=alert('diagnosis')>",
        "allergy": "Latex <img src=x onerror=alert('allergy')>",
        "problem": "Recurrent knee pain <iframe src=javascript:alert('problem')>",
        "document_title": "MRI knee <img src=x onerror=alert('document')>",
        "file_name": "<img src=x onerror=alert('file')>.pdf",
        "instructions": "Take with food <script>alert('instructions')</script>",
        "rejection_reason": "Dose too high <img src=x onerror=alert('reject')>",
        "lab_note": "Fasting sample <img src=x onerror=alert('lab')>",
        "discount_reason": "Goodwill <img src=x onerror=alert('discount')>",
        "payment_reference": "REF <script>alert('pay')</script>",
    }


def _pdf() -> bytes:
    return b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def seed(nonce: str) -> dict[str, object]:
    engine = get_engine()
    text = payloads(nonce[:6].upper())

    def run(service, **kwargs):
        with session_scope(engine=engine) as s:
            return service(session=s, **kwargs)

    def actor(email: str, password: str = demo.DEMO_PASSWORD):
        token = run(auth.login, visitor=Anonymous(IP), email=email, password=password).token
        return run(auth.resolve_session, token=token, ip_address=IP)

    email = f"xss.{nonce}@patients.example"
    patient_id = run(auth.register_patient, visitor=Anonymous(IP), form=auth.Registration(
        full_name=text["name"], email=email, password=PASSWORD, birth_date="1984-02-11", phone="+44 20 7946 0999"))
    doctor, pharmacist, accounts = actor(DOCTOR_EMAIL), actor("pharmacy@hms.example"), actor("accounts@hms.example")

    now = utcnow().replace(second=0, microsecond=0)
    # Each run's appointments at times of their own: a doctor has one appointment per start.
    jitter = timedelta(minutes=20 * (int(nonce[:6], 16) % 2000))
    with session_scope(engine=engine) as s:
        department = s.get(DoctorProfile, doctor.user_id).department_id

        def appointment(starts, status, reason):
            row = Appointment(patient_id=patient_id, doctor_id=doctor.user_id, department_id=department,
                              starts_at=starts, ends_at=starts + timedelta(minutes=20), status=status, reason=reason)
            s.add(row)
            return row

        # Written directly, as the service tests do: booking refuses the past and needs free slots.
        visit = appointment(now - timedelta(days=2, hours=3) - jitter, AppointmentStatus.CONFIRMED,
                            text["visit_reason"])
        upcoming = appointment(now + timedelta(days=30, hours=1) + jitter, AppointmentStatus.REQUESTED,
                               text["booking_reason"])
        declined = appointment(now + timedelta(days=31, hours=1) + jitter, AppointmentStatus.REQUESTED,
                               "Second opinion")
        # A started visit left for a journey to open and write notes in.
        open_visit = appointment(now - timedelta(hours=1) - jitter, AppointmentStatus.CONFIRMED, "Follow-up")
        s.commit()
        ids = {"visit": visit.id, "upcoming": upcoming.id, "declined": declined.id, "open_visit": open_visit.id}
        medicine = s.execute(sa.select(Medicine.id).where(Medicine.name.startswith("Ibuprofen"))
                             .order_by(Medicine.id)).scalars().first()
        test = s.execute(sa.select(LabTest.id).where(LabTest.is_active).order_by(LabTest.id)).scalars().first()

    run(appointments.decline_appointment, actor=doctor, appointment_id=ids["declined"], reason=text["decline_reason"])
    encounter = run(clinical.open_encounter, actor=doctor, appointment_id=ids["visit"])
    run(clinical.save_encounter, actor=doctor, encounter_id=encounter.id, form=EncounterForm(
        subjective=text["subjective"], assessment=text["assessment"], diagnosis=text["diagnosis"]))
    run(clinical.add_allergy, actor=doctor, patient_id=patient_id, substance=text["allergy"], severity="mild")
    run(clinical.add_problem, actor=doctor, patient_id=patient_id, description=text["problem"])
    document = run(documents.upload_document, actor=doctor, patient_id=patient_id, title=text["document_title"],
                   file_name=text["file_name"], data=_pdf())

    def item() -> list[ItemForm]:
        return [ItemForm(medicine_id=medicine, dose="1 tablet", route="oral", frequency="twice daily", days="5",
                         instructions=text["instructions"])]

    def sign() -> int:  # overriding whatever the check warns of now
        read = run(prescribing.check_prescription, actor=doctor, encounter_id=encounter.id, items=item())
        return run(prescribing.prescribe, actor=doctor, encounter_id=encounter.id, items=item(),
                   override_reason="Reviewed: benefit outweighs the risk", acknowledged_warnings=read)

    rejected = sign()
    open_prescription = sign()
    run(pharmacy.reject_prescription, actor=pharmacist, prescription_id=rejected, reason=text["rejection_reason"])
    run(prescribing.order_lab_tests, actor=doctor, encounter_id=encounter.id, test_ids=[test], priority="routine",
        note=text["lab_note"])
    run(clinical.complete_encounter, actor=doctor, encounter_id=encounter.id)
    with session_scope(engine=engine) as s:
        invoice_id = s.execute(sa.select(Invoice.id).where(Invoice.patient_id == patient_id)).scalars().first()
        stored_file_name = s.get(Document, document).file_name
    run(billing.apply_discount, actor=accounts, invoice_id=invoice_id, amount="1.00", reason=text["discount_reason"])
    number = run(billing.issue_invoice, actor=accounts, invoice_id=invoice_id)
    run(billing.record_payment, actor=accounts, invoice_id=invoice_id, amount="2.00", method="cash",
        reference=text["payment_reference"])
    return {
        "patient": patient_id, "email": email, "password": PASSWORD, "doctor_email": DOCTOR_EMAIL,
        "encounter": encounter.id, "document": document, "invoice": invoice_id, "invoice_number": number,
        "prescription": open_prescription, "rejected_prescription": rejected, **ids,
        "payloads": text, "stored_file_name": stored_file_name,
    }


def seed_on(app_server) -> dict[str, object]:
    """Run this module against a running test server (``tests/e2e/server.py``); its output."""
    import subprocess
    import uuid

    from tests.e2e.server import ROOT, server_env

    done = subprocess.run([sys.executable, "-m", "tests.e2e.xss_seed", uuid.uuid4().hex],
                          env=server_env(app_server.data_dir, app_server.port), cwd=ROOT, capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, f"the seed failed:\n{done.stderr[-3000:]}"
    return json.loads(done.stdout)


def main() -> None:
    print(json.dumps(seed(sys.argv[1])))


if __name__ == "__main__":
    main()

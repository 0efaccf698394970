"""The victims of the handler probe: a patient and a doctor whose records carry canaries.

Run as ``python -m tests.e2e.probe_seed <nonce>`` in the environment of a probe server
(``HMS_DATA_DIR`` pointing at its migrated, demo-seeded data folder) before the server
starts. It creates, through the services as the hospital's staff would, a patient with a
complete record in every part of the hospital, her doctor's leave, and prints one JSON
object: the ids of every record (to aim hostile calls at) and the canaries, unique texts
written into those records, that a caller who may not see them must never receive.

The victim patient has seen only Dr Lucas Ortega (Orthopedics); the probe's doctor is
Dr Amelia Hart (Cardiology), who has no care relationship with her.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field
from datetime import timedelta

import sqlalchemy as sa

from hms_app import settings
from hms_app.db.engine import get_engine, session_scope
from hms_app.db.enums import AppointmentStatus
from hms_app.db.models import (
    Appointment,
    AuthSession,
    DoctorProfile,
    Invoice,
    LabTest,
    Medicine,
    Notification,
    PatientProfile,
    User,
    WaitlistEntry,
)
from hms_app.db.types import utcnow
from hms_app.operations import demo
from hms_app.services.accounting import billing
from hms_app.services.administration import auth
from hms_app.services.booking import appointments, scheduling
from hms_app.services.care import clinical, documents, prescribing
from hms_app.services.care.clinical import EncounterForm
from hms_app.services.care.prescribing import ItemForm
from hms_app.services.core import localtime
from hms_app.services.core.actor import Anonymous
from hms_app.services.laboratory import lab
from hms_app.services.messaging import notifications
from tests.services.clinical_helpers import pdf_bytes

VICTIM_DOCTOR_EMAIL = "lucas.ortega@hms.example"
VICTIM_DEPARTMENT = "Orthopedics"
VICTIM_PASSWORD = "Victim-Passw0rd-2026"
IP = "198.51.100.7"


@dataclass
class Victims:
    """What the probe aims at and what it looks for."""

    patient: int = 0
    doctor: int = 0
    department: int = 0
    ids: dict[str, int] = field(default_factory=dict)
    """Record kind (``appointment``, ``invoice``...) -> the id of the victim's record of that kind."""
    canaries: dict[str, str] = field(default_factory=dict)
    """Canary name -> the unique text stored in the victim's record."""
    search_prefix: str = ""
    """The start of the victim's surname: search text that finds her without naming her."""


def seed_victims(nonce: str) -> Victims:
    """Create the victims' records; ``nonce`` makes every canary unique to this run."""
    engine = get_engine()
    tag = nonce.upper()

    def canary(kind: str) -> str:
        return f"Qf{kind}Canary{tag}"

    def run(service, **kwargs):
        with session_scope(engine=engine) as s:
            return service(session=s, **kwargs)

    def actor(email: str, password: str = demo.DEMO_PASSWORD):
        token = run(auth.login, visitor=Anonymous(IP), email=email, password=password).token
        return run(auth.resolve_session, token=token, ip_address=IP), token

    victims = Victims(search_prefix="Quillfe")
    surname = f"Quillfeather{tag}"
    phone = f"+44 20 7946 {int(nonce[:6], 16) % 10000:04d}"
    email = f"vera.{nonce}@patients.example"
    victims.patient = run(auth.register_patient, visitor=Anonymous(IP), form=auth.Registration(
        full_name=f"Vera {surname}", email=email, password=VICTIM_PASSWORD, birth_date="1961-04-09", phone=phone))
    patient, patient_token = actor(email, VICTIM_PASSWORD)
    doctor, _ = actor(VICTIM_DOCTOR_EMAIL)
    lab_staff, _ = actor("lab@hms.example")
    accounts, _ = actor("accounts@hms.example")
    admin, _ = actor("admin@hms.example")
    victims.doctor = doctor.user_id

    with session_scope(engine=engine) as s:
        victims.department = s.get(DoctorProfile, doctor.user_id).department_id
        mrn = s.get(PatientProfile, victims.patient).mrn
        # A past visit, written directly as the service tests do (booking refuses the past).
        starts = utcnow().replace(second=0, microsecond=0) - timedelta(days=3, hours=2)
        visit = Appointment(patient_id=victims.patient, doctor_id=doctor.user_id, department_id=victims.department,
                            starts_at=starts, ends_at=starts + timedelta(minutes=20),
                            status=AppointmentStatus.CONFIRMED, reason=canary("VisitReason"))
        upcoming_start = utcnow().replace(second=0, microsecond=0) + timedelta(days=40)
        upcoming = Appointment(patient_id=victims.patient, doctor_id=doctor.user_id,
                               department_id=victims.department, starts_at=upcoming_start,
                               ends_at=upcoming_start + timedelta(minutes=20), status=AppointmentStatus.REQUESTED,
                               reason=canary("BookingReason"))
        s.add_all([visit, upcoming])
        s.commit()
        visit_id, upcoming_id = visit.id, upcoming.id
        amoxicillin = s.execute(sa.select(Medicine.id).where(Medicine.name.startswith("Amoxicillin"))
                                .order_by(Medicine.id)).scalars().first()
        tests = list(s.execute(sa.select(LabTest.id).where(LabTest.is_active, LabTest.numeric)
                               .order_by(LabTest.id).limit(2)).scalars())

    encounter = run(clinical.open_encounter, actor=doctor, appointment_id=visit_id)
    run(clinical.save_encounter, actor=doctor, encounter_id=encounter.id, form=EncounterForm(
        subjective=canary("Subjective"), objective=canary("Objective"), assessment=canary("Assessment"),
        plan=canary("Plan"), diagnosis=canary("Diagnosis"), icd10_code="",
        vitals={"bp_systolic": "121", "bp_diastolic": "79", "pulse": "64"}))
    allergy = run(clinical.add_allergy, actor=doctor, patient_id=victims.patient, substance="Penicillin",
                  reaction=canary("AllergyReaction"), severity="severe")
    problem = run(clinical.add_problem, actor=doctor, patient_id=victims.patient, description=canary("Problem"))
    items = [ItemForm(medicine_id=amoxicillin, dose="500 mg", route="oral", frequency="three times daily", days="7",
                      quantity="21", instructions=canary("Instructions"))]
    read = run(prescribing.check_prescription, actor=doctor, encounter_id=encounter.id, items=items)
    prescription = run(prescribing.prescribe, actor=doctor, encounter_id=encounter.id, items=items,
                       override_reason=canary("OverrideReason"), acknowledged_warnings=read)
    orders = run(prescribing.order_lab_tests, actor=doctor, encounter_id=encounter.id, test_ids=tests,
                 priority="routine", note=canary("LabNote"))
    document = run(documents.upload_document, actor=doctor, patient_id=victims.patient,
                   title=canary("DocumentTitle"), file_name="scan.pdf", data=pdf_bytes(canary("DocumentContent")))
    run(clinical.complete_encounter, actor=doctor, encounter_id=encounter.id)
    # The first test is resulted with a comment; the second stays on the worklist.
    run(lab.collect_sample, actor=lab_staff, order_id=orders[0])
    run(lab.start_test, actor=lab_staff, order_id=orders[0])
    entered = run(lab.enter_result, actor=lab_staff, order_id=orders[0], value="5.1",
                  comment=canary("ResultComment"))
    with session_scope(engine=engine) as s:
        invoice_id = s.execute(sa.select(Invoice.id).where(Invoice.patient_id == victims.patient)
                               .order_by(Invoice.id)).scalars().first()
    number = run(billing.issue_invoice, actor=accounts, invoice_id=invoice_id)
    run(billing.record_payment, actor=accounts, invoice_id=invoice_id, amount="1.00", method="cash",
        reference=canary("PaymentRef"))
    leave_day = (localtime.local_today() + timedelta(days=200)).isoformat()
    leave = run(scheduling.add_leave, actor=admin, doctor_id=doctor.user_id, date_from=leave_day,
                reason=canary("LeaveReason"))
    waitlist = run(appointments.join_waitlist, actor=patient, department_id=victims.department,
                   doctor_id=doctor.user_id, date_from=(localtime.local_today() + timedelta(days=5)).isoformat(),
                   date_to=(localtime.local_today() + timedelta(days=30)).isoformat())
    with session_scope(engine=engine) as s:
        notifications.notify(s, victims.patient, canary("Notification"), canary("NotificationBody"))
        s.commit()
        notification = s.execute(sa.select(sa.func.max(Notification.id))
                                 .where(Notification.user_id == victims.patient)).scalar_one()
        availability = s.execute(sa.text("SELECT min(id) FROM doctor_availability WHERE doctor_id = :d"),
                                 {"d": doctor.user_id}).scalar_one()
        stock_batch = s.execute(sa.text("SELECT min(id) FROM stock_batch")).scalar_one()
        item = s.execute(sa.text("SELECT min(id) FROM prescription_item WHERE prescription_id = :p"),
                         {"p": prescription}).scalar_one()
        assert s.get(WaitlistEntry, waitlist) is not None
        password_hash = s.get(User, victims.patient).password_hash
        token_hash = s.execute(sa.select(AuthSession.token_hash)
                               .where(AuthSession.user_id == victims.patient)).scalars().first()

    victims.ids = {
        "user": victims.patient, "patient": victims.patient, "doctor": victims.doctor,
        "department": victims.department, "appointment": visit_id, "upcoming_appointment": upcoming_id,
        "encounter": encounter.id, "allergy": allergy, "problem": problem, "prescription": prescription,
        "item": item, "order": orders[0], "open_order": orders[1], "result": entered.result_id,
        "document": document, "invoice": invoice_id, "leave": leave, "block": availability, "entry": waitlist,
        "notification": notification, "batch": stock_batch, "medicine": amoxicillin, "test": tests[0],
    }
    key_file = settings.DATA_DIR / "hms.key"
    victims.canaries = {
        "surname": surname, "email": email, "mrn": mrn, "phone": phone,
        **{name: canary(name) for name in (
            "VisitReason", "BookingReason", "Subjective", "Objective", "Assessment", "Plan", "Diagnosis",
            "AllergyReaction", "Problem", "Instructions", "OverrideReason", "LabNote", "DocumentTitle",
            "DocumentContent", "ResultComment", "PaymentRef", "LeaveReason", "Notification", "NotificationBody")},
        "InvoiceNumber": number,
        "PasswordHash": password_hash,
        "SessionTokenHash": token_hash,
        "SessionToken": patient_token,
        "DataKey": key_file.read_text().strip() if key_file.exists() else settings.DATA_KEY,
    }
    return victims


def main() -> None:
    print(json.dumps(asdict(seed_victims(sys.argv[1]))))


if __name__ == "__main__":
    main()

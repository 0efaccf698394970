"""Demo data: the departments, staff and patients listed in the README."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, time, timedelta

import sqlalchemy as sa
from sqlmodel import Session

from hms_app import settings
from hms_app.db.enums import (
    AppointmentStatus,
    ChargeKind,
    ClaimStatus,
    EncounterStatus,
    InvoiceStatus,
    PaymentMethod,
    Role,
    Sex,
    StockMovementKind,
)
from hms_app.db.models import (
    Allergy,
    Appointment,
    Department,
    DoctorAvailability,
    DoctorProfile,
    Encounter,
    Hospital,
    Invoice,
    InvoiceLine,
    LabTest,
    Medicine,
    PatientProfile,
    Payment,
    Problem,
    StockBatch,
    User,
)
from hms_app.db.types import utcnow
from hms_app.operations import demo_day
from hms_app.services.accounting import totals
from hms_app.services.accounting.billing import PAYMENT_TERMS_DAYS
from hms_app.services.administration.permissions import seed_default_permissions
from hms_app.services.core import audit, counters, emails, passwords
from hms_app.services.core.localtime import local_today
from hms_app.services.medicines.inventory import record_movement
from hms_app.services.reference.load import sync_reference_data

DEMO_PASSWORD = "Demo-Hospital-2026"  # noqa: S105  (published in the README on purpose)
DEPARTMENTS = ["Cardiology", "Orthopedics", "Pediatrics", "General Medicine", "Dermatology"]

DOCTORS = [
    ("Dr. Amelia Hart", "amelia.hart", "Cardiology", "Interventional cardiology", 15000),
    ("Dr. Rohan Mehta", "rohan.mehta", "Cardiology", "Heart failure", 14000),
    ("Dr. Lucas Ortega", "lucas.ortega", "Orthopedics", "Sports injuries", 12000),
    ("Dr. Grace Okafor", "grace.okafor", "Orthopedics", "Joint replacement", 13000),
    ("Dr. Hannah Becker", "hannah.becker", "Pediatrics", "Neonatology", 9000),
    ("Dr. Samuel Adeyemi", "samuel.adeyemi", "Pediatrics", "Child development", 8500),
    ("Dr. Olivia Chen", "olivia.chen", "General Medicine", "Family medicine", 6000),
    ("Dr. Mateo Rossi", "mateo.rossi", "General Medicine", "Internal medicine", 6500),
    ("Dr. Priya Nair", "priya.nair", "Dermatology", "Skin cancer screening", 11000),
    ("Dr. Jonas Lindqvist", "jonas.lindqvist", "Dermatology", "Paediatric dermatology", 10000),
]

STAFF = [
    ("Alex Admin", "admin@hms.example", Role.ADMIN),
    ("Avery Accounts", "accounts@hms.example", Role.ACCOUNTS),
    ("Lee Laboratory", "lab@hms.example", Role.LAB),
    ("Pat Pharmacist", "pharmacy@hms.example", Role.PHARMACY),
]

PATIENT_NAMES = [
    "Maria Garcia", "James Smith", "Aisha Khan", "Wei Zhang", "Fatima Ali", "John O'Brien",
    "Sofia Rossi", "Noah Williams", "Emma Johnson", "Liam Brown", "Chloe Martin", "Yusuf Demir",
    "Ana Silva", "Kenji Tanaka", "Zara Ahmed", "Daniel Cohen", "Ingrid Larsen", "Kwame Mensah",
    "Elena Petrova", "Lucy Evans",
]
INSURERS = ["", "Northwind Health", "Contoso Mutual", "Fabrikam Care"]


def demo_accounts() -> list[tuple[str, str, str]]:
    """(role, email, name) of every demo account, as the README lists them."""
    rows = [(r.value, email, name) for name, email, r in STAFF]
    rows += [("doctor", f"{slug}@hms.example", name) for name, slug, *_ in DOCTORS]
    rows += [("patient", _patient_email(n), n) for n in PATIENT_NAMES]
    return rows


def _patient_email(name: str) -> str:
    return name.lower().replace("'", "").replace(" ", ".") + "@patients.example"


def _account(email: str, name: str, role: Role, password_hash: str) -> User:
    """A demo account, its address in normal form and vouched for by the seed."""
    email = emails.normalise(email)
    return User(email=email, email_skeleton=emails.skeleton(email), email_confirmed_at=utcnow(), full_name=name,
                role=role, password_hash=password_hash)


def database_is_empty(session: Session) -> bool:
    """No account and no hospital set up by ``hms init``: the demo may be loaded."""
    return (session.execute(sa.select(User.id).limit(1)).first() is None
            and session.get(Hospital, 1) is None)


def refresh_demo_catalog(session: Session) -> dict[str, int] | None:
    """Insert the shipped medicines and lab tests a demo database lacks (``hms migrate``: a
    release that ships more reaches the demo too). A real hospital (``hms init``) and an empty
    database get nothing: their catalog is their own. The caller commits.

    Returns:
        What was inserted, or None when the database is not the demo.
    """
    if session.get(Hospital, 1) is not None or session.execute(sa.select(User.id).limit(1)).first() is None:
        return None
    return sync_reference_data(session)


def seed_demo(session: Session, *, billing_history: bool = True, work_in_progress: bool = True) -> bool:
    """Load the demo hospital into an empty database. Returns False if it held users or a hospital
    set up by ``hms init`` already.

    ``billing_history=False`` leaves out the months of invoices and payments, and
    ``work_in_progress=False`` the day under way (results, orders, prescriptions and today's
    clinic; see ``demo_day``), for tests that count such things from zero.
    """
    seed_default_permissions(session)
    if not database_is_empty(session):
        session.commit()
        return False
    sync_reference_data(session)
    accounts = demo_accounts()
    with ThreadPoolExecutor(max_workers=4) as pool:  # bcrypt releases the GIL
        hashes = list(pool.map(lambda _: passwords.hash_password(DEMO_PASSWORD), accounts))
    hash_for = dict(zip([email for _, email, _ in accounts], hashes, strict=True))

    departments = {}
    for name in DEPARTMENTS:
        department = Department(name=name)
        session.add(department)
        departments[name] = department
    session.flush()

    for name, email, role in STAFF:
        session.add(_account(email, name, role, hash_for[email]))
    for name, slug, department, specialty, fee in DOCTORS:
        email = f"{slug}@hms.example"
        user = _account(email, name, Role.DOCTOR, hash_for[email])
        session.add(user)
        session.flush()
        session.add(DoctorProfile(user_id=user.id, department_id=departments[department].id,
                                  specialty=specialty, consultation_fee_cents=fee, slot_minutes=20))
    rng = random.Random(2026)
    for index, name in enumerate(PATIENT_NAMES):
        email = _patient_email(name)
        user = _account(email, name, Role.PATIENT, hash_for[email])
        session.add(user)
        session.flush()
        insurer = INSURERS[index % len(INSURERS)]
        session.add(PatientProfile(
            user_id=user.id,
            mrn=counters.next_mrn(session),
            birth_date=date(rng.randint(1940, 2020), rng.randint(1, 12), rng.randint(1, 28)),
            sex=Sex.FEMALE if index % 2 == 0 else Sex.MALE,
            phone=f"+44 20 7946 {1000 + index:04d}",
            address=f"{10 + index} Example Street, London",
            emergency_contact_name=f"Contact of {name.split()[0]}",
            emergency_contact_phone=f"+44 20 7946 {2000 + index:04d}",
            insurer=insurer,
            policy_number=f"POL-{100000 + index}" if insurer else "",
        ))
    _seed_schedules(session, departments)
    _seed_clinical(session)
    _seed_stock(session)
    if billing_history:
        _seed_billing(session)
        session.flush()
        totals.rebuild_daily_totals(session)  # the history's rows were written here, not by the services
    audit.record(session, None, "demo.seed", actor_email="system",
                 detail=f"{len(accounts)} accounts, {len(DEPARTMENTS)} departments")
    session.commit()
    if work_in_progress:
        demo_day.seed_day_in_progress(session)
    return True


WORKING_HOURS = [(time(9, 0), time(12, 0)), (time(13, 0), time(17, 0))]


def _seed_schedules(session: Session, departments: dict[str, Department]) -> None:
    """Weekday hours for every doctor, and a few past and coming appointments."""
    doctors = session.execute(sa.select(DoctorProfile)).scalars().all()
    for doctor in doctors:
        for weekday in range(5):
            for start, end in WORKING_HOURS:
                session.add(DoctorAvailability(doctor_id=doctor.user_id, weekday=weekday, start_time=start, end_time=end))
    patients = session.execute(
        sa.select(User.id).where(User.role == Role.PATIENT).order_by(User.id)
    ).scalars().all()
    today = local_today()

    def weekday_after(days: int) -> date:
        day = today + timedelta(days=days)
        while day.weekday() >= 5:
            day += timedelta(days=1)
        return day

    def weekday_before(days: int) -> date:
        day = today - timedelta(days=days)
        while day.weekday() >= 5:
            day -= timedelta(days=1)
        return day

    plan = [  # (patient index, doctor index, day, hour, status, reason)
        (1, 0, weekday_before(14), 10, AppointmentStatus.COMPLETED, "Chest pain on exertion"),
        (1, 0, weekday_before(3), 11, AppointmentStatus.COMPLETED, "Follow-up of blood pressure"),
        (2, 6, weekday_before(7), 14, AppointmentStatus.NO_SHOW, "Persistent cough"),
        (3, 8, weekday_after(2), 9, AppointmentStatus.CONFIRMED, "Mole that changed shape"),
        (4, 0, weekday_after(3), 15, AppointmentStatus.REQUESTED, "Palpitations at night"),
        (5, 2, weekday_after(4), 10, AppointmentStatus.REQUESTED, "Knee pain after running"),
        (6, 4, weekday_after(5), 13, AppointmentStatus.CONFIRMED, "Vaccination review"),
    ]
    doctor_ids = [d.user_id for d in sorted(doctors, key=lambda d: d.user_id)]
    for patient_index, doctor_index, day, hour, status, reason in plan:
        doctor = session.get(DoctorProfile, doctor_ids[doctor_index])
        starts = datetime.combine(day, time(hour, 0), tzinfo=settings.TIMEZONE)
        session.add(Appointment(
            patient_id=patients[patient_index], doctor_id=doctor.user_id, department_id=doctor.department_id,
            starts_at=starts, ends_at=starts + timedelta(minutes=doctor.slot_minutes), status=status, reason=reason,
        ))
    session.flush()


def _seed_clinical(session: Session) -> None:
    """Allergies, a problem and the encounters of the completed demo visits, with vitals."""
    patients = session.execute(sa.select(User.id).where(User.role == Role.PATIENT).order_by(User.id)).scalars().all()
    admin = session.execute(sa.select(User.id).where(User.role == Role.ADMIN)).scalars().first()
    session.add(Allergy(patient_id=patients[0], substance="Penicillin", reaction="Hives and swelling",
                        severity="severe", recorded_by=admin))
    session.add(Allergy(patient_id=patients[1], substance="Sulfa drugs", reaction="Rash", severity="moderate",
                        recorded_by=admin))
    session.add(Problem(patient_id=patients[1], description="Essential hypertension", icd10_code="I10",
                        recorded_by=admin))
    completed = session.execute(
        sa.select(Appointment).where(Appointment.status == AppointmentStatus.COMPLETED.value).order_by(Appointment.starts_at)
    ).scalars().all()
    for number, appointment in enumerate(completed):
        session.add(Encounter(
            appointment_id=appointment.id, patient_id=appointment.patient_id, doctor_id=appointment.doctor_id,
            subjective=appointment.reason, assessment="Blood pressure above target" if number else "Stable angina suspected",
            diagnosis="Essential hypertension", icd10_code="I10", plan="Review in four weeks",
            bp_systolic=152 - 8 * number, bp_diastolic=95 - 4 * number, pulse=78, temperature_c=36.8,
            weight_kg=84.0 - number, height_cm=178, spo2=97, status=EncounterStatus.COMPLETED,
            started_at=appointment.starts_at, completed_at=appointment.ends_at,
        ))
    session.flush()


DEMO_STOCK_EXCEPTIONS = {
    # (name, strength): (units in the first-expiring lot, days to its expiry), so that every alert shows
    ("Salbutamol", "100 micrograms/dose"): (4, 150),
    ("Insulin glargine", "100 units/mL"): (2, 200),
    ("Ibuprofen", "400 mg"): (60, 45),
    ("Cetirizine", "10 mg"): (40, 75),
}
DEMO_EXPIRED_LOT = ("Amoxicillin", "500 mg", 12)
"""A lot of amoxicillin capsules that expired ten days ago: dispensing must pass over it."""


def _seed_stock(session: Session) -> None:
    """Stock for every medicine, booked in through the stock ledger: a first-expiring lot and a
    later one; a few medicines low or expiring soon, and one expired lot."""
    today = local_today()
    rng = random.Random(6)

    def book(medicine: Medicine, lot: str, units: int, expires_in_days: int) -> None:
        batch = StockBatch(medicine_id=medicine.id, lot=lot, expiry_date=today + timedelta(days=expires_in_days),
                           unit_cost_cents=max(1, medicine.unit_price_cents * 6 // 10),
                           supplier="Northbridge Pharma Wholesale")
        session.add(batch)
        session.flush()
        record_movement(session, None, batch, StockMovementKind.RECEIVE, units, note="opening stock")

    for medicine in session.execute(sa.select(Medicine).order_by(Medicine.id)).scalars().all():
        code = f"{''.join(ch for ch in medicine.name.upper() if ch.isalpha())[:3]}{medicine.id:03d}"
        reorder = max(medicine.reorder_level, 1)
        low_or_soon = DEMO_STOCK_EXCEPTIONS.get((medicine.name, medicine.strength))
        first, days = low_or_soon or (reorder * rng.randint(2, 4), rng.randint(120, 300))
        book(medicine, f"{code}A", first, days)
        if low_or_soon is None or low_or_soon[0] > reorder:
            book(medicine, f"{code}B", reorder * 2 + rng.randint(0, reorder), rng.randint(400, 700))
        if (medicine.name, medicine.strength) == DEMO_EXPIRED_LOT[:2]:
            book(medicine, f"{code}X", DEMO_EXPIRED_LOT[2], -10)
    session.flush()


BILLED_PATIENTS = ["Fatima Ali", "John O'Brien", "Sofia Rossi", "Noah Williams", "Emma Johnson", "Liam Brown",
                   "Chloe Martin", "Yusuf Demir", "Ana Silva", "Kwame Mensah"]
"""Patients with a billing history; those the browser journeys and tests work with have none."""
DEMO_VISITS = 40
"""One visit every three days, the first about four months ago, each billed on an invoice."""
_VOIDED_VISIT, _REFUNDED_VISIT = 7, 30
_UNPAID_VISITS = (2, 11)
"""Visit 2 is over 90 days old and unpaid; 11's claim was rejected by the insurer."""


def _seed_billing(session: Session) -> None:
    """Four months of issued invoices with their payments, so the accounts dashboard has a history.

    Written as the billing service would have left them: lines add up to the subtotal,
    payments (refunds negative) to what is paid, the status follows from the two, numbers
    come from the yearly invoice counter in order of issue. Lines name the source ``demo``
    (no appointment, lab order or dispensation stands behind them), so they can never stop
    a real service from being billed. No drafts: a patient's next charge opens their draft.
    """
    latest = local_today() - timedelta(days=1)  # nothing today: the day's own work starts from zero
    rng = random.Random(90)
    clerk = session.execute(sa.select(User.id).where(User.role == Role.ACCOUNTS)).scalar_one()
    patients = session.execute(
        sa.select(User.id, PatientProfile.insurer, PatientProfile.policy_number)
        .join(PatientProfile, PatientProfile.user_id == User.id).where(User.full_name.in_(BILLED_PATIENTS))
        .order_by(User.id)
    ).all()
    doctors = session.execute(
        sa.select(User.full_name, DoctorProfile.department_id, DoctorProfile.consultation_fee_cents)
        .join(DoctorProfile, DoctorProfile.user_id == User.id).order_by(User.id)
    ).all()
    tests = session.execute(sa.select(LabTest.name, LabTest.price_cents).where(LabTest.is_active)
                            .order_by(LabTest.id)).all()
    medicines = session.execute(sa.select(Medicine.name, Medicine.strength, Medicine.unit_price_cents)
                                .where(Medicine.is_active).order_by(Medicine.id)).all()

    def at(day: date, hour: int, minute: int = 0) -> datetime:
        return datetime.combine(day, time(hour, minute), tzinfo=settings.TIMEZONE)

    def pay(invoice: Invoice, cents: int, method: PaymentMethod, day: date, reference: str = "",
            reason: str = "", by: int | None = None) -> None:
        session.add(Payment(invoice_id=invoice.id, amount_cents=cents, method=method, reference=reference,
                            reason=reason, recorded_by=by or clerk, received_at=at(day, rng.randint(9, 16), 15)))
        invoice.paid_cents += cents

    source_ids = iter(range(1, 1000))
    for visit in range(DEMO_VISITS):
        seen_on = latest - timedelta(days=3 * (DEMO_VISITS - visit - 1))
        patient_id, insurer, policy = patients[visit % len(patients)]
        doctor, department_id, fee = doctors[rng.randrange(len(doctors))]
        charges = [(ChargeKind.CONSULTATION, f"Consultation with {doctor}, {seen_on.isoformat()}", 1, fee)]
        if rng.random() < 0.5:
            name, price = tests[rng.randrange(len(tests))]
            charges.append((ChargeKind.LAB, f"Lab test: {name}", 1, price))
        if rng.random() < 0.6:
            name, strength, price = medicines[rng.randrange(len(medicines))]
            units = rng.choice((7, 14, 21, 28))
            charges.append((ChargeKind.MEDICINE, f"{name} {strength} × {units}", units, price))
        issued_on = min(latest, seen_on + timedelta(days=rng.randint(0, 2)))
        year = issued_on.year
        invoice = Invoice(patient_id=patient_id, status=InvoiceStatus.ISSUED, insurer=insurer, policy_number=policy,
                          number=f"INV-{year}-{counters.next_value(session, f'invoice-{year}'):06d}",
                          created_at=at(seen_on, 9), issued_at=at(issued_on, 17),
                          due_date=issued_on + timedelta(days=PAYMENT_TERMS_DAYS))
        session.add(invoice)
        session.flush()
        for hour, (kind, description, quantity, price) in enumerate(charges, start=10):
            session.add(InvoiceLine(invoice_id=invoice.id, kind=kind, source_type="demo", source_id=next(source_ids),
                                    description=description, quantity=quantity, unit_price_cents=price,
                                    amount_cents=quantity * price, department_id=department_id,
                                    service_at=at(seen_on, hour, 30)))
            invoice.subtotal_cents += quantity * price
        invoice.total_cents = invoice.subtotal_cents
        age = (latest - issued_on).days
        paid_on = min(latest, issued_on + timedelta(days=rng.randint(1, 12)))
        chance = 0.9 if age > 60 else 0.55 if age > 20 else 0.25  # the older, the likelier paid
        settled = visit == _REFUNDED_VISIT or (visit not in _UNPAID_VISITS and rng.random() < chance)
        if visit == _VOIDED_VISIT:  # cancelled before anything was paid
            invoice.status, invoice.void_reason = InvoiceStatus.VOID, "Billed to the wrong patient; re-issued"
            continue
        if insurer:
            invoice.insurer_share_cents = invoice.total_cents * 7 // 10
            invoice.claim_status = ClaimStatus.SUBMITTED
        patient_part = invoice.total_cents - invoice.insurer_share_cents
        method = rng.choice((PaymentMethod.CASH, PaymentMethod.CARD, PaymentMethod.BANK_TRANSFER))
        if settled:
            pay(invoice, patient_part, method, paid_on, f"receipt {invoice.number}")
            if insurer:
                invoice.claim_status = ClaimStatus.PAID
                pay(invoice, invoice.insurer_share_cents, PaymentMethod.INSURANCE,
                    min(latest, paid_on + timedelta(days=rng.randint(5, 20))), f"claim {invoice.number}")
            if visit == _REFUNDED_VISIT:  # a goodwill discount after paying in full, refunded in cash
                refund = invoice.total_cents // 10
                invoice.discount_cents, invoice.discount_reason = refund, "Goodwill: long wait on the day"
                invoice.total_cents -= refund
                pay(invoice, -refund, PaymentMethod.CASH, min(latest, paid_on + timedelta(days=2)), "refund",
                    "Goodwill discount refunded")
        elif rng.random() < 0.5 and patient_part > 0:
            pay(invoice, patient_part // 2, method, paid_on, f"part payment {invoice.number}")
        if insurer and visit == _UNPAID_VISITS[1]:  # the insurer refused: all of it falls to the patient
            invoice.claim_status, invoice.claim_note = ClaimStatus.REJECTED, "Not covered by the policy"
        invoice.status = (InvoiceStatus.PAID if invoice.paid_cents >= invoice.total_cents
                          else InvoiceStatus.PARTLY_PAID if invoice.paid_cents else InvoiceStatus.ISSUED)
        invoice.updated_at = at(max(paid_on, issued_on), 18)
    session.flush()

"""The demo hospital's day under way: work in progress for every role, done through the services.

The demo's first patient in the README, Sofia Rossi, was seen by Dr. Amelia Hart two working
days ago: her results are back (one waits for the doctor's review), her prescription is being
dispensed, her invoice is partly paid, and a follow-up is booked. Ana Silva was seen within the
hour: a stat blood count waits for the lab and a prescription for the pharmacy. Today Dr. Hart's
clinic is under way: the visits before now are done, the one now is with the doctor, the rest
are coming; a patient's request waits for her answer.

Every step goes through the service a user's click would call, so the rows, charges,
notifications and audit entries are those the hospital would have made. Only the times of the
visits and the ordering of the tests are set to their day afterwards, since a service stamps
them with the time it runs.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import sqlalchemy as sa
from sqlmodel import Session

from hms_app import settings
from hms_app.db.enums import AppointmentStatus, Role
from hms_app.db.models import (
    Appointment,
    DoctorProfile,
    Encounter,
    Invoice,
    LabOrder,
    LabTest,
    Medicine,
    Prescription,
    User,
)
from hms_app.db.types import utcnow
from hms_app.services.accounting import billing
from hms_app.services.administration.auth import permissions_for_role
from hms_app.services.care import clinical, prescribing
from hms_app.services.care.clinical import EncounterForm
from hms_app.services.care.prescribing import ItemForm
from hms_app.services.core.actor import Actor
from hms_app.services.core.localtime import local_today
from hms_app.services.laboratory import lab
from hms_app.services.medicines import pharmacy

FIRST_PATIENT = "Sofia Rossi"
"""The patient the README names first: her portal shows every kind of record."""
CLINIC_DOCTOR = "amelia.hart@hms.example"
TODAYS_CLINIC = [  # (patient, hour, minute, reason)
    ("John O'Brien", 9, 0, "Breathless on the stairs"),
    ("Chloe Martin", 9, 40, "Blood pressure check"),
    ("Yusuf Demir", 11, 0, "Chest tightness after meals"),
    ("Wei Zhang", 14, 0, "Results of the blood count"),
    ("Emma Johnson", 15, 20, "Palpitations"),
]


def _actor(session: Session, email: str) -> Actor:
    user = session.execute(sa.select(User).where(User.email == email)).scalar_one()
    return Actor(user_id=user.id, role=Role(user.role), email=user.email, full_name=user.full_name,
                 permissions=permissions_for_role(session, user.role), ip_address="demo")


def _patient_id(session: Session, name: str) -> int:
    return session.execute(sa.select(User.id).where(User.full_name == name, User.role == Role.PATIENT)).scalar_one()


def _at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=settings.TIMEZONE)


def _working_day(today: date, step: int, count: int) -> date:
    """``count`` working days from ``today`` in the direction of ``step`` (+1 or -1)."""
    day = today
    while count:
        day += timedelta(days=step)
        count -= day.weekday() < 5
    return day


def _appointment(session: Session, doctor: Actor, patient_id: int, starts: datetime, reason: str,
                 status: AppointmentStatus = AppointmentStatus.CONFIRMED) -> Appointment:
    profile = session.get(DoctorProfile, doctor.user_id)
    appointment = Appointment(patient_id=patient_id, doctor_id=doctor.user_id, department_id=profile.department_id,
                              starts_at=starts, ends_at=starts + timedelta(minutes=profile.slot_minutes),
                              status=status, reason=reason, created_at=starts - timedelta(days=6),
                              updated_at=starts - timedelta(days=5))
    session.add(appointment)
    session.flush()
    return appointment


def _visit(session: Session, doctor: Actor, appointment: Appointment, *, notes: EncounterForm) -> int:
    """The doctor opens the visit and writes it up; returns the encounter's id (still open)."""
    encounter_id = clinical.open_encounter(session=session, actor=doctor, appointment_id=appointment.id).id
    clinical.save_encounter(session=session, actor=doctor, encounter_id=encounter_id, form=notes)
    encounter = session.get(Encounter, encounter_id)
    encounter.started_at = appointment.starts_at
    session.commit()
    return encounter_id


def _complete(session: Session, doctor: Actor, encounter_id: int) -> None:
    clinical.complete_encounter(session=session, actor=doctor, encounter_id=encounter_id)
    encounter = session.get(Encounter, encounter_id)
    appointment = session.get(Appointment, encounter.appointment_id)
    encounter.completed_at = appointment.updated_at = appointment.ends_at
    session.commit()


def _test_ids(session: Session, *codes: str) -> list[int]:
    ids = dict(session.execute(sa.select(LabTest.code, LabTest.id).where(LabTest.code.in_(codes))).all())
    return [ids[code] for code in codes]


def _medicine_id(session: Session, name: str, strength: str) -> int:
    return session.execute(sa.select(Medicine.id).where(Medicine.name == name, Medicine.strength == strength)
                           ).scalars().first()


def _order(session: Session, doctor: Actor, encounter_id: int, codes: tuple[str, ...], priority: str,
           ordered: datetime, note: str = "") -> list[int]:
    """The new orders' ids, in the order of ``codes``."""
    ids = prescribing.order_lab_tests(session=session, actor=doctor, encounter_id=encounter_id,
                                      test_ids=_test_ids(session, *codes), priority=priority, note=note)
    session.execute(sa.update(LabOrder).where(LabOrder.id.in_(ids)).values(ordered_at=ordered, updated_at=ordered))
    session.commit()
    by_test = dict(session.execute(sa.select(LabOrder.test_id, LabOrder.id).where(LabOrder.id.in_(ids))).all())
    return [by_test[test_id] for test_id in _test_ids(session, *codes)]


def _prescribe(session: Session, doctor: Actor, encounter_id: int, items: list[ItemForm], signed: datetime) -> int:
    prescription_id = prescribing.prescribe(session=session, actor=doctor, encounter_id=encounter_id, items=items)
    session.execute(sa.update(Prescription).where(Prescription.id == prescription_id)
                    .values(created_at=signed, updated_at=signed))
    session.commit()
    return prescription_id


def _result(session: Session, lab_actor: Actor, order_id: int, value: str, comment: str = "") -> None:
    lab.collect_sample(session=session, actor=lab_actor, order_id=order_id)
    lab.start_test(session=session, actor=lab_actor, order_id=order_id)
    if value:
        lab.enter_result(session=session, actor=lab_actor, order_id=order_id, value=value, comment=comment)


def seed_day_in_progress(session: Session) -> None:
    """Work in progress for every role of the (just seeded) demo hospital, as of now."""
    today, now = local_today(), utcnow()
    doctor, gp = _actor(session, CLINIC_DOCTOR), _actor(session, "olivia.chen@hms.example")
    lab_actor, pharmacist = _actor(session, "lab@hms.example"), _actor(session, "pharmacy@hms.example")
    accounts = _actor(session, "accounts@hms.example")
    sofia, ana = _patient_id(session, FIRST_PATIENT), _patient_id(session, "Ana Silva")

    # Sofia Rossi, two working days ago: chest pain; tests, a statin and aspirin, a follow-up booked.
    seen = _appointment(session, doctor, sofia, _at(_working_day(today, -1, 2), 10), "Chest pain when climbing stairs")
    encounter_id = _visit(session, doctor, seen, notes=EncounterForm(
        subjective="Tight chest after two flights of stairs for three weeks; settles with rest.",
        objective="Heart sounds normal, no oedema.", assessment="Stable angina suspected; raised cholesterol.",
        plan="Troponin, cholesterol and HbA1c; start atorvastatin and aspirin; review with the results.",
        diagnosis="Angina pectoris, unspecified", icd10_code="I20.9",
        vitals={"bp_systolic": "148", "bp_diastolic": "92", "pulse": "84", "temperature_c": "36.7",
                "weight_kg": "71", "height_cm": "165", "spo2": "97"}))
    troponin, cholesterol, hba1c = _order(session, doctor, encounter_id, ("TROP", "CHOL", "HBA1C"), "routine",
                                          seen.starts_at + timedelta(minutes=15))
    prescription = _prescribe(session, doctor, encounter_id, [
        ItemForm(medicine_id=_medicine_id(session, "Atorvastatin", "20 mg"), dose="1 tablet", route="oral",
                 frequency="once daily", days=28, quantity=28, instructions="At night."),
        ItemForm(medicine_id=_medicine_id(session, "Aspirin", "75 mg"), dose="1 tablet", route="oral",
                 frequency="once daily", days=28, quantity=28, instructions="With food."),
    ], seen.starts_at + timedelta(minutes=18))
    _complete(session, doctor, encounter_id)
    _result(session, lab_actor, cholesterol, "4.1")
    _result(session, lab_actor, troponin, "38", "Repeat in three hours if symptoms recur.")  # high: held for review
    _result(session, lab_actor, hba1c, "")  # on the analyser
    pharmacy.verify_prescription(session=session, actor=pharmacist, prescription_id=prescription)
    lines = pharmacy.dispense_view(session=session, actor=pharmacist, prescription_id=prescription).lines
    statin = next(line for line in lines if line.medicine.startswith("Atorvastatin"))
    pharmacy.dispense(session=session, actor=pharmacist, prescription_id=prescription,
                      quantities={statin.item_id: 28})  # the aspirin follows: the prescription is partly dispensed
    draft = session.execute(sa.select(Invoice.id).where(Invoice.patient_id == sofia, Invoice.status == "draft")
                            ).scalar_one()
    billing.issue_invoice(session=session, actor=accounts, invoice_id=draft)
    total = session.get(Invoice, draft).total_cents
    billing.record_payment(session=session, actor=accounts, invoice_id=draft, amount=f"{total // 200}.00",
                           method="cash", reference="Paid at the desk")
    _appointment(session, doctor, sofia, _at(_working_day(today, 1, 5), 10, 40), "Review of the heart tests")

    # Ana Silva, seen by Dr. Chen within the hour: a stat blood count for the lab, a prescription
    # for the pharmacy.
    local_now = now.astimezone(settings.TIMEZONE)
    ana_seen = _appointment(session, gp, ana, local_now.replace(minute=local_now.minute // 20 * 20, second=0,
                                                                microsecond=0) - timedelta(minutes=40),
                            "Tired and short of breath")
    ana_encounter = _visit(session, gp, ana_seen, notes=EncounterForm(
        subjective="Tired for a month, breathless walking uphill.", objective="Pale conjunctivae.",
        assessment="Anaemia suspected.", diagnosis="Fatigue", plan="Blood count today; iron if low."))
    _order(session, gp, ana_encounter, ("HGB", "PLT"), "stat", ana_seen.starts_at + timedelta(minutes=12),
           note="Pale, breathless: please run today.")
    _prescribe(session, gp, ana_encounter, [
        ItemForm(medicine_id=_medicine_id(session, "Paracetamol", "500 mg"), dose="2 tablets", route="oral",
                 frequency="four times daily", days=5, quantity=40, instructions="No more than 8 in 24 hours."),
    ], ana_seen.starts_at + timedelta(minutes=14))
    _complete(session, gp, ana_encounter)

    # Dr. Hart's clinic today: done before now, with the doctor now, coming later.
    for name, hour, minute, reason in TODAYS_CLINIC:
        starts = _at(today, hour, minute)
        appointment = _appointment(session, doctor, _patient_id(session, name), starts, reason)
        if starts > now:
            continue
        visit = _visit(session, doctor, appointment, notes=EncounterForm(
            subjective=reason, assessment="Seen and examined.", diagnosis="Essential hypertension", icd10_code="I10",
            vitals={"bp_systolic": "138", "bp_diastolic": "86", "pulse": "76"}))
        if appointment.ends_at <= now:
            _complete(session, doctor, visit)
    _appointment(session, doctor, _patient_id(session, "Liam Brown"), _at(_working_day(today, 1, 1), 11, 20),
                 "Second opinion on a heart murmur", status=AppointmentStatus.REQUESTED)
    session.commit()


"""A patient's record as a doctor sees it. Every opening is audited.

A doctor opens the record of a patient they have an appointment with; any other record
answers "not found", and the attempt is audited as denied.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa
from sqlmodel import Session

from hms_app.db.enums import Permission
from hms_app.db.models import Appointment, PatientProfile, User
from hms_app.db.types import utcnow
from hms_app.services import audit
from hms_app.services.access import require
from hms_app.services.actor import Actor
from hms_app.services.appointments import AppointmentRow, _base_query, _row
from hms_app.services.errors import NotFound


@dataclass(frozen=True)
class PatientRecord:
    patient_id: int
    full_name: str
    mrn: str
    birth_date: str
    age: str
    sex: str
    phone: str
    address: str
    emergency_contact: str
    insurance: str
    appointments: list[AppointmentRow]


def _age(born: date | None) -> str:
    if born is None:
        return ""
    today = date.today()
    return str(today.year - born.year - ((today.month, today.day) < (born.month, born.day)))


def doctor_may_open(session: Session, doctor_id: int, patient_id: int) -> bool:
    return session.execute(
        sa.select(Appointment.id).where(Appointment.doctor_id == doctor_id, Appointment.patient_id == patient_id).limit(1)
    ).first() is not None


def open_patient_record(*, session: Session, actor: Actor, patient_id: object) -> PatientRecord:
    """Demographics and the appointment history of a patient of the doctor's."""
    require(session, actor, Permission.CLINICAL_READ, action="chart.view")
    try:
        patient_id = int(patient_id)
    except (TypeError, ValueError):
        patient_id = -1
    profile = session.get(PatientProfile, patient_id)
    if profile is None or not doctor_may_open(session, actor.user_id, patient_id):
        audit.deny(session, actor, "chart.view", "That patient's record does not exist or is not yours to open.",
                   error=NotFound, entity_type="patient", entity_id=patient_id,
                   patient_id=patient_id if profile else None)
    user = session.get(User, patient_id)
    now = utcnow()
    history = [
        _row(*r, now=now)
        for r in session.execute(
            _base_query().where(Appointment.patient_id == patient_id).order_by(Appointment.starts_at.desc()).limit(50)
        )
    ]
    audit.record(session, actor, "chart.view", entity_type="patient", entity_id=patient_id, patient_id=patient_id)
    session.commit()
    return PatientRecord(
        patient_id=patient_id,
        full_name=user.full_name,
        mrn=profile.mrn,
        birth_date=profile.birth_date.isoformat() if profile.birth_date else "",
        age=_age(profile.birth_date),
        sex=str(profile.sex).capitalize(),
        phone=profile.phone,
        address=profile.address,
        emergency_contact=" ".join(x for x in (profile.emergency_contact_name, profile.emergency_contact_phone) if x),
        insurance=" / ".join(x for x in (profile.insurer, profile.policy_number) if x),
        appointments=history,
    )

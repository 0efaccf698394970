"""The lab's worklist: what lab staff need to run a test, and nothing of the clinical notes."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session

from hms_app.db.enums import LabOrderStatus, LabPriority, Permission
from hms_app.db.models import LabOrder, LabTest, PatientProfile, User
from hms_app.db.types import utcnow
from hms_app.services.access import require
from hms_app.services.actor import Actor
from hms_app.services.paging import Page, clamp_page

OPEN_STATUSES = [LabOrderStatus.REQUESTED.value, LabOrderStatus.COLLECTED.value, LabOrderStatus.IN_PROGRESS.value]


@dataclass(frozen=True)
class WorklistRow:
    id: int
    patient: str
    mrn: str
    birth_date: str
    sex: str
    test: str
    specimen: str
    priority: str
    status: str
    ordered_by: str
    waiting: str
    note: str


def _waiting(minutes: int) -> str:
    return f"{minutes} min" if minutes < 120 else f"{minutes // 60} h {minutes % 60} min"


def worklist(*, session: Session, actor: Actor, page: int = 1, page_size: int = 25) -> Page[WorklistRow]:
    """Open lab orders: stat first, then urgent, then routine; oldest first within each."""
    require(session, actor, Permission.LAB_WORK, action="lab.worklist")
    page, page_size = clamp_page(page, page_size)
    patient, doctor = sa.orm.aliased(User), sa.orm.aliased(User)
    urgency = sa.case({LabPriority.STAT.value: 0, LabPriority.URGENT.value: 1}, value=LabOrder.priority, else_=2)
    query = (
        sa.select(LabOrder, LabTest, patient.full_name, PatientProfile, doctor.full_name)
        .join(LabTest, LabTest.id == LabOrder.test_id)
        .join(patient, patient.id == LabOrder.patient_id)
        .join(PatientProfile, PatientProfile.user_id == LabOrder.patient_id)
        .join(doctor, doctor.id == LabOrder.doctor_id)
        .where(LabOrder.status.in_(OPEN_STATUSES))
    )
    total = session.execute(sa.select(sa.func.count()).select_from(query.subquery())).scalar_one()
    now = utcnow()
    rows = session.execute(query.order_by(urgency, LabOrder.ordered_at, LabOrder.id)
                           .offset((page - 1) * page_size).limit(page_size)).all()
    return Page(
        [WorklistRow(o.id, name, profile.mrn, profile.birth_date.isoformat() if profile.birth_date else "",
                     str(profile.sex), f"{t.name} ({t.code})", t.specimen, str(o.priority),
                     str(o.status).replace("_", " "), doctor_name,
                     _waiting(int((now - o.ordered_at).total_seconds() // 60)), o.note)
         for o, t, name, profile, doctor_name in rows],
        total, page, page_size,
    )



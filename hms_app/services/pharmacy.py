"""The pharmacy's prescription queue."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session

from hms_app import settings
from hms_app.db.enums import Permission, PrescriptionStatus
from hms_app.db.models import Medicine, PatientProfile, Prescription, PrescriptionItem, User
from hms_app.services import audit
from hms_app.services.access import require
from hms_app.services.actor import Actor
from hms_app.services.paging import Page, clamp_page

OPEN_STATUSES = [PrescriptionStatus.ISSUED.value, PrescriptionStatus.VERIFIED.value,
                 PrescriptionStatus.PARTLY_DISPENSED.value]


@dataclass(frozen=True)
class QueueItem:
    medicine: str
    directions: str
    quantity: int
    warnings: str
    override_reason: str


@dataclass(frozen=True)
class QueueRow:
    id: int
    issued: str
    patient: str
    mrn: str
    prescriber: str
    status: str
    items: list[QueueItem]
    items_text: str
    overrides_text: str


def prescription_queue(*, session: Session, actor: Actor, page: int = 1, page_size: int = 20) -> Page[QueueRow]:
    """Open prescriptions, oldest first, with their items and any safety override."""
    require(session, actor, Permission.PHARMACY_DISPENSE, action="pharmacy.queue")
    page, page_size = clamp_page(page, page_size)
    patient, doctor = sa.orm.aliased(User), sa.orm.aliased(User)
    query = (
        sa.select(Prescription, patient.full_name, PatientProfile.mrn, doctor.full_name)
        .join(patient, patient.id == Prescription.patient_id)
        .join(PatientProfile, PatientProfile.user_id == Prescription.patient_id)
        .join(doctor, doctor.id == Prescription.doctor_id)
        .where(Prescription.status.in_(OPEN_STATUSES))
    )
    total = session.execute(sa.select(sa.func.count()).select_from(query.subquery())).scalar_one()
    rows = session.execute(query.order_by(Prescription.created_at, Prescription.id)
                           .offset((page - 1) * page_size).limit(page_size)).all()
    ids = [p.id for p, *_ in rows]
    items: dict[int, list[QueueItem]] = {}
    for item, medicine in session.execute(
        sa.select(PrescriptionItem, Medicine).join(Medicine, Medicine.id == PrescriptionItem.medicine_id)
        .where(PrescriptionItem.prescription_id.in_(ids)).order_by(PrescriptionItem.id)
    ):
        items.setdefault(item.prescription_id, []).append(QueueItem(
            f"{medicine.name} {medicine.strength} {medicine.form}",
            f"{item.dose} {item.route} {item.frequency} for {item.days} days", item.quantity, item.warnings,
            item.override_reason))
    if ids:
        audit.record(session, actor, "pharmacy.queue", detail=f"{len(ids)} prescriptions shown")
        session.commit()
    return Page([_queue_row(p, name, mrn, prescriber, items.get(p.id, [])) for p, name, mrn, prescriber in rows],
                total, page, page_size)


def _queue_row(p: Prescription, name: str, mrn: str | None, prescriber: str, items: list[QueueItem]) -> QueueRow:
    return QueueRow(
        id=p.id, issued=p.created_at.astimezone(settings.TIMEZONE).strftime("%Y-%m-%d %H:%M"), patient=name,
        mrn=mrn or "", prescriber=prescriber, status=str(p.status).replace("_", " "), items=items,
        items_text="\n".join(f"{i.medicine} — {i.directions} · quantity {i.quantity}" for i in items),
        overrides_text="\n".join(f"{i.medicine}: {i.warnings} Override reason: {i.override_reason}"
                                  for i in items if i.override_reason),
    )

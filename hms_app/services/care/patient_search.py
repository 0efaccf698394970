"""A doctor finds a patient: by name, record number (MRN) or birth date.

The doctor's own patients (anyone with an appointment with them, the same care relationship that
opens a chart in ``clinical.chart_patient``) come first and are marked. Anyone else is listed with
name, MRN and birth year only, and their chart opens only through break-the-glass, as before. An
empty search lists only the doctor's own patients: the hospital's register is not browsed, only
searched. Every search is audited, like every other look into patients' records.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session

from hms_app.db.enums import Permission, Role
from hms_app.db.models import Appointment, PatientProfile, User
from hms_app.services.core import audit
from hms_app.services.core.access import require
from hms_app.services.core.actor import Actor
from hms_app.services.core.localtime import format_date, parse_local_date
from hms_app.services.core.paging import Page, clamp_page, fetch_page, order_by
from hms_app.services.core.text import escape_like, storable

MIN_TERM = 2
"""Letters a name or MRN search needs before it reaches beyond the doctor's own patients."""


@dataclass(frozen=True)
class PatientMatch:
    patient_id: int
    full_name: str
    mrn: str
    born: str
    """The birth date for the doctor's own patients; only the year for anyone else."""
    own: bool


def _own_patient(doctor_id: int) -> sa.ColumnElement[bool]:
    return sa.exists(
        sa.select(Appointment.id).where(Appointment.doctor_id == doctor_id, Appointment.patient_id == User.id)
    )


def search_patients(
    *,
    session: Session,
    actor: Actor,
    search: str = "",
    page: int = 1,
    page_size: int = 20,
    sort: str = "name",
    descending: bool = False,
) -> Page[PatientMatch]:
    """Patients whose name or MRN contains ``search``, or who were born on the day it names (typed
    in the locale's short form or ISO); the doctor's own patients first, then by ``sort``."""
    require(session, actor, Permission.CLINICAL_READ, action="patient.search")
    page, page_size = clamp_page(page, page_size)
    term = storable(str(search or "").strip()[:100], "search")
    own = _own_patient(actor.user_id).label("own")
    query = (
        sa.select(User.id, User.full_name, PatientProfile.mrn, PatientProfile.birth_date, own)
        .join(PatientProfile, PatientProfile.user_id == User.id)
        .where(User.role == Role.PATIENT.value)
    )
    born_on = parse_local_date(term)
    if born_on is not None:
        query = query.where(PatientProfile.birth_date == born_on)
    elif len(term) >= MIN_TERM:
        like = f"%{escape_like(term.lower())}%"
        query = query.where(sa.or_(sa.func.lower(User.full_name).like(like, escape="\\"),
                                   sa.func.lower(PatientProfile.mrn).like(like, escape="\\")))
    else:
        query = query.where(_own_patient(actor.user_id))
    columns = {"name": sa.func.lower(User.full_name), "mrn": PatientProfile.mrn, "born": PatientProfile.birth_date}
    query = query.order_by(_own_patient(actor.user_id).desc(), order_by(columns, sort, descending, "name"), User.id)
    total, rows = fetch_page(session, query, page=page, page_size=page_size)
    audit.record(session, actor, "patient.search", detail=f"{term!r}, page {page}: {total} found")
    session.commit()
    return Page([PatientMatch(patient_id, name, mrn, _born(birth_date, own=is_own), bool(is_own))
                 for patient_id, name, mrn, birth_date, is_own in rows], total, page, page_size)


def _born(birth_date, *, own: bool) -> str:
    if birth_date is None:
        return ""
    return format_date(birth_date) if own else str(birth_date.year)

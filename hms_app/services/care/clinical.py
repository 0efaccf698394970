"""The clinical record: who may open a chart, break-glass, allergies, problems,
encounters with notes and vitals, and the timeline.

A doctor opens the chart of a patient they have an appointment with. Any other chart only
through "break the glass": a stated reason opens it for four hours, audited and listed for
admin. Every chart view is audited. Lab and pharmacy staff have no clinical.read
permission and never reach notes or diagnoses through these functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import sqlalchemy as sa
from sqlmodel import Session

from hms_app.db.enums import (
    AppointmentStatus,
    ClinicalStatus,
    EncounterStatus,
    Permission,
    Role,
    Sex,
)
from hms_app.db.models import (
    Allergy,
    Appointment,
    BreakGlass,
    Document,
    Encounter,
    Immunization,
    LabOrder,
    LabResult,
    LabTest,
    Medicine,
    PatientProfile,
    Prescription,
    PrescriptionItem,
    Problem,
    Procedure,
    User,
)
from hms_app.db.types import utcnow
from hms_app.services.booking.appointments import complete_appointment
from hms_app.services.core import audit, events
from hms_app.services.core.access import access_by_id, require
from hms_app.services.core.actor import Actor
from hms_app.services.core.errors import Conflict, PermissionDenied, ValidationError
from hms_app.services.core.language import N_, _, ngettext
from hms_app.services.core.localtime import format_date, format_local, local_today
from hms_app.services.core.paging import Page, clamp_page
from hms_app.services.core.text import checked_line, one_line, storable
from hms_app.services.reference import icd10

BREAK_GLASS_HOURS = 4
MAX_NOTE = 10_000
# The users a query joins in their roles, aliased once: building an alias costs more CPU
# than running a short query (about 1.4 ms per statement), and every list page joins them.
_PATIENT = sa.orm.aliased(User, name="patient")
_DOCTOR = sa.orm.aliased(User, name="doctor")


class BreakGlassRequired(PermissionDenied):
    """The chart exists but is not the doctor's: it opens only with a stated reason."""


# --- access --------------------------------------------------------------------------------


def _patient(session: Session, actor: Actor, patient_id: object, action: str) -> PatientProfile:
    return access_by_id(session, actor, PatientProfile, patient_id, action=action,
                        missing=N_("That patient does not exist."), entity_type="patient")


def has_care_relationship(session: Session, doctor_id: int, patient_id: int) -> bool:
    return session.execute(
        sa.select(Appointment.id).where(Appointment.doctor_id == doctor_id, Appointment.patient_id == patient_id).limit(1)
    ).first() is not None


def _break_glass_open(session: Session, doctor_id: int, patient_id: int) -> bool:
    return session.execute(
        sa.select(BreakGlass.id).where(BreakGlass.doctor_id == doctor_id, BreakGlass.patient_id == patient_id,
                                       BreakGlass.expires_at > utcnow()).limit(1)
    ).first() is not None


def chart_patient(session: Session, actor: Actor, patient_id: object, action: str, *, write: bool = False) -> PatientProfile:
    """The patient whose chart the doctor may open now; refusals are audited."""
    require(session, actor, Permission.CLINICAL_WRITE if write else Permission.CLINICAL_READ, action=action)
    profile = _patient(session, actor, patient_id, action)
    if not (has_care_relationship(session, actor.user_id, profile.user_id)
            or _break_glass_open(session, actor.user_id, profile.user_id)):
        audit.deny(session, actor, action,
                   N_("This patient is not under your care. In an emergency you may open the chart by "
                      "breaking the glass with a reason; it is recorded and reviewed."),
                   error=BreakGlassRequired, entity_type="patient", entity_id=profile.user_id,
                   patient_id=profile.user_id)
    return profile


def break_glass(*, session: Session, actor: Actor, patient_id: int, reason: str) -> None:
    """Open a chart outside the doctor's patients for four hours, with a reason for review."""
    require(session, actor, Permission.CLINICAL_READ, action="chart.break_glass")
    profile = _patient(session, actor, patient_id, "chart.break_glass")
    reason = one_line(reason, _("reason"))
    if len(reason) < 10:
        raise ValidationError(_("Say why you need this chart (at least 10 characters); the reason is reviewed."))
    if len(reason) > 500:
        raise ValidationError(_("Keep the reason under 500 characters."))
    entry = BreakGlass(doctor_id=actor.user_id, patient_id=profile.user_id, reason=reason,
                       expires_at=utcnow() + timedelta(hours=BREAK_GLASS_HOURS))
    session.add(entry)
    session.flush()
    audit.record(session, actor, "chart.break_glass", entity_type="break_glass", entity_id=entry.id,
                 patient_id=profile.user_id, detail=f"{BREAK_GLASS_HOURS} hours")  # i18n: not shown
    events.publish(session, "notifications", roles=["admin"])
    session.commit()


@dataclass(frozen=True)
class BreakGlassRow:
    id: int
    when: str
    doctor: str
    patient: str
    mrn: str
    reason: str
    expires: str


def list_break_glass(*, session: Session, actor: Actor, page: int = 1, page_size: int = 20) -> Page[BreakGlassRow]:
    """Every break-glass opening, newest first, for admin's review."""
    require(session, actor, Permission.AUDIT_VIEW, action="chart.break_glass.list")
    page, page_size = clamp_page(page, page_size)
    doctor, patient = _DOCTOR, _PATIENT
    query = (
        sa.select(BreakGlass, doctor.full_name, patient.full_name, PatientProfile.mrn)
        .join(doctor, doctor.id == BreakGlass.doctor_id).join(patient, patient.id == BreakGlass.patient_id)
        .join(PatientProfile, PatientProfile.user_id == BreakGlass.patient_id)
        .order_by(BreakGlass.created_at.desc())
    )
    total = session.execute(sa.select(sa.func.count()).select_from(BreakGlass)).scalar_one()
    rows = session.execute(query.offset((page - 1) * page_size).limit(page_size)).all()
    audit.record(session, actor, "chart.break_glass.list", detail=f"page {page}")
    session.commit()
    return Page([BreakGlassRow(b.id, format_local(b.created_at), d, p, mrn, b.reason, format_local(b.expires_at))
                 for b, d, p, mrn in rows], total, page, page_size)


# --- the chart -------------------------------------------------------------------------------


@dataclass(frozen=True)
class AllergyRow:
    id: int
    substance: str
    reaction: str
    severity: str
    status: str
    recorded: str


@dataclass(frozen=True)
class ProblemRow:
    id: int
    description: str
    icd10_code: str
    status: str
    recorded: str


@dataclass(frozen=True)
class VitalsPoint:
    at: str
    bp_systolic: int | None
    bp_diastolic: int | None
    pulse: int | None
    temperature_c: float | None
    weight_kg: float | None
    spo2: int | None


@dataclass(frozen=True)
class Chart:
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
    allergies: list[AllergyRow]
    problems: list[ProblemRow]
    vitals: list[VitalsPoint]
    via_break_glass: bool


SEX_LABELS = {Sex.FEMALE: N_("Female"), Sex.MALE: N_("Male"), Sex.OTHER: N_("Other"), Sex.UNKNOWN: N_("Unknown")}


def sex_label(sex: Sex | str) -> str:
    """A patient's recorded sex as a page shows it, in the reader's language."""
    label = SEX_LABELS.get(str(sex))
    return _(label) if label else str(sex).capitalize()


SEVERITY_LABELS = {"mild": N_("mild"), "moderate": N_("moderate"), "severe": N_("severe")}
"""An allergy's severity (the stored value) as it is read."""


def age_in_years(born: date | None, on: date | None = None) -> int | None:
    if born is None:
        return None
    on = on or local_today()
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def _allergies(session: Session, patient_id: int, *, active_only: bool = False) -> list[AllergyRow]:
    query = sa.select(Allergy).where(Allergy.patient_id == patient_id)
    if active_only:
        query = query.where(Allergy.status == ClinicalStatus.ACTIVE.value)
    return [AllergyRow(a.id, a.substance, a.reaction,
                       _(SEVERITY_LABELS[a.severity]) if a.severity in SEVERITY_LABELS else a.severity,
                       str(a.status), format_date(a.recorded_at))
            for a in session.execute(query.order_by(Allergy.status, Allergy.recorded_at.desc())).scalars()]


def _problems(session: Session, patient_id: int) -> list[ProblemRow]:
    query = sa.select(Problem).where(Problem.patient_id == patient_id).order_by(Problem.status, Problem.recorded_at.desc())
    return [ProblemRow(p.id, p.description, p.icd10_code, str(p.status), format_date(p.recorded_at))
            for p in session.execute(query).scalars()]


def vitals_history(session: Session, patient_id: int, limit: int = 30) -> list[VitalsPoint]:
    """The last ``limit`` encounters with vitals, oldest first (for the trend chart)."""
    rows = session.execute(
        sa.select(Encounter.started_at, Encounter.bp_systolic, Encounter.bp_diastolic, Encounter.pulse,
                  Encounter.temperature_c, Encounter.weight_kg, Encounter.spo2)
        .where(Encounter.patient_id == patient_id,
               sa.or_(Encounter.bp_systolic.is_not(None), Encounter.pulse.is_not(None), Encounter.weight_kg.is_not(None),
                      Encounter.temperature_c.is_not(None), Encounter.spo2.is_not(None)))
        .order_by(Encounter.started_at.desc()).limit(limit)
    ).all()
    return [VitalsPoint(format_date(r[0]), *r[1:]) for r in reversed(rows)]


def open_chart(*, session: Session, actor: Actor, patient_id: int) -> Chart:
    """The chart's header: demographics, allergies, problems and the vitals trend."""
    profile = chart_patient(session, actor, patient_id, "chart.view")
    user = session.get(User, profile.user_id)
    age = age_in_years(profile.birth_date)
    via_break_glass = not has_care_relationship(session, actor.user_id, profile.user_id)
    chart = Chart(
        patient_id=profile.user_id, full_name=user.full_name, mrn=profile.mrn,
        birth_date=format_date(profile.birth_date),
        age="" if age is None else str(age), sex=sex_label(profile.sex), phone=profile.phone,
        address=profile.address,
        emergency_contact=" ".join(x for x in (profile.emergency_contact_name, profile.emergency_contact_phone) if x),
        insurance=" / ".join(x for x in (profile.insurer, profile.policy_number) if x),
        allergies=_allergies(session, profile.user_id), problems=_problems(session, profile.user_id),
        vitals=vitals_history(session, profile.user_id), via_break_glass=via_break_glass,
    )
    audit.record(session, actor, "chart.view", entity_type="patient", entity_id=profile.user_id,
                 patient_id=profile.user_id, detail="break-glass" if via_break_glass else "")
    session.commit()
    return chart


# --- timeline --------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimelineEntry:
    kind: str
    id: int
    when: str
    title: str
    detail: str
    status: str


def _timeline_union(patient_id: int, newest: int | None = None) -> sa.Subquery:
    """The patient's encounters, prescriptions, lab orders, documents, immunizations and procedures
    (the last two brought in from other systems) as (kind, id, at).

    Args:
        newest: keep only each kind's ``newest`` latest entries: enough for a page that ends
            within the first ``newest`` of the whole timeline. Each kind is then read backwards
            off its (patient, time) index and stops there, instead of every entry of a long
            record being fetched and sorted.
    """
    parts = [
        sa.select(sa.literal("encounter").label("kind"), Encounter.id.label("id"), Encounter.started_at.label("at"))
        .where(Encounter.patient_id == patient_id),
        sa.select(sa.literal("prescription").label("kind"), Prescription.id.label("id"),
                  Prescription.created_at.label("at")).where(Prescription.patient_id == patient_id),
        sa.select(sa.literal("lab").label("kind"), LabOrder.id.label("id"), LabOrder.ordered_at.label("at"))
        .where(LabOrder.patient_id == patient_id),
        sa.select(sa.literal("document").label("kind"), Document.id.label("id"), Document.created_at.label("at"))
        .where(Document.patient_id == patient_id),
        sa.select(sa.literal("immunization").label("kind"), Immunization.id.label("id"),
                  Immunization.given_at.label("at")).where(Immunization.patient_id == patient_id),
        sa.select(sa.literal("procedure").label("kind"), Procedure.id.label("id"), Procedure.performed_at.label("at"))
        .where(Procedure.patient_id == patient_id),
    ]
    if newest is not None:
        latest = [part.order_by(sa.desc("at"), sa.desc("id")).limit(newest).subquery() for part in parts]
        parts = [sa.select(part.c.kind, part.c.id, part.c.at) for part in latest]
    return sa.union_all(*parts).subquery("timeline")


def _timeline_page(session: Session, patient_id: int, page: int, page_size: int, *, for_patient: bool) -> Page[TimelineEntry]:
    everything = _timeline_union(patient_id)
    total = session.execute(sa.select(sa.func.count()).select_from(everything)).scalar_one()
    union = _timeline_union(patient_id, newest=page * page_size)
    keys = session.execute(
        sa.select(union.c.kind, union.c.id).order_by(union.c.at.desc(), union.c.id.desc())
        .offset((page - 1) * page_size).limit(page_size)
    ).all()
    wanted: dict[str, list[int]] = {}
    for kind, id_ in keys:
        wanted.setdefault(kind, []).append(id_)
    entries: dict[tuple[str, int], TimelineEntry] = {}
    if ids := wanted.get("encounter"):
        doctor = _DOCTOR
        for e, name in session.execute(sa.select(Encounter, doctor.full_name).join(doctor, doctor.id == Encounter.doctor_id)
                                       .where(Encounter.id.in_(ids))):
            diagnosis = " ".join(x for x in (e.icd10_code, e.diagnosis) if x) or _("No diagnosis recorded")
            detail = diagnosis if for_patient else " · ".join(x for x in (diagnosis, e.assessment[:200]) if x)
            entries[("encounter", e.id)] = TimelineEntry("encounter", e.id, format_local(e.started_at),
                                                         _("Visit with {doctor}").format(doctor=name),
                                                         detail, status_label(str(e.status)))
    if ids := wanted.get("prescription"):
        items: dict[int, list[str]] = {}
        for pid, name, strength, dose, freq, days in session.execute(
            sa.select(PrescriptionItem.prescription_id, Medicine.name, Medicine.strength, PrescriptionItem.dose,
                      PrescriptionItem.frequency, PrescriptionItem.days)
            .join(Medicine, Medicine.id == PrescriptionItem.medicine_id).where(PrescriptionItem.prescription_id.in_(ids))
        ):
            # An imported prescription may not say for how long (0 days): its line leaves it out.
            line = " ".join(x for x in (name, strength) if x) + f", {dose} {freq}"
            if days:
                line += " " + ngettext("for {n} day", "for {n} days", days).format(n=days)
            items.setdefault(pid, []).append(line)
        for p in session.execute(sa.select(Prescription).where(Prescription.id.in_(ids))).scalars():
            entries[("prescription", p.id)] = TimelineEntry("prescription", p.id, format_local(p.created_at),
                                                            _("Prescription"), "; ".join(items.get(p.id, [])),
                                                            status_label(str(p.status)))
    if ids := wanted.get("lab"):
        for o, test, held in session.execute(
            sa.select(LabOrder, LabTest.name, LabResult.id.is_not(None) & LabResult.released_at.is_(None))
            .join(LabTest, LabTest.id == LabOrder.test_id).outerjoin(LabResult, LabResult.order_id == LabOrder.id)
            .where(LabOrder.id.in_(ids))
        ):
            # A result held for the doctor's review is, to its patient, not there yet.
            status = _("awaiting review by your doctor") if for_patient and held else status_label(str(o.status))
            entries[("lab", o.id)] = TimelineEntry("lab", o.id, format_local(o.ordered_at),
                                                   _("Lab test: {test}").format(test=test),
                                                   _("Priority {priority}").format(priority=status_label(str(o.priority))),
                                                   status)
    if ids := wanted.get("document"):
        for d in session.execute(sa.select(Document).where(Document.id.in_(ids))).scalars():
            entries[("document", d.id)] = TimelineEntry("document", d.id, format_local(d.created_at),
                                                        _("Document: {title}").format(title=d.title),
                                                        d.file_name, "")
    if ids := wanted.get("immunization"):
        for i in session.execute(sa.select(Immunization).where(Immunization.id.in_(ids))).scalars():
            entries[("immunization", i.id)] = TimelineEntry("immunization", i.id, format_local(i.given_at),
                                                            _("Immunization: {vaccine}").format(vaccine=i.vaccine),
                                                            _coded(i.code_system, i.code), status_label(i.status))
    if ids := wanted.get("procedure"):
        for p in session.execute(sa.select(Procedure).where(Procedure.id.in_(ids))).scalars():
            entries[("procedure", p.id)] = TimelineEntry("procedure", p.id, format_local(p.performed_at),
                                                         _("Procedure: {description}").format(description=p.description),
                                                         _coded(p.code_system, p.code), status_label(p.status))
    rows = [entries[(kind, id_)] for kind, id_ in keys if (kind, id_) in entries]
    return Page(rows, total, page, page_size)


_TIMELINE_STATUSES = {
    "open": N_("open"), "completed": N_("completed"), "issued": N_("issued"), "verified": N_("verified"),
    "partly_dispensed": N_("partly dispensed"), "dispensed": N_("dispensed"), "rejected": N_("rejected"),
    "requested": N_("requested"), "collected": N_("collected"), "in_progress": N_("in progress"),
    "cancelled": N_("cancelled"), "routine": N_("routine"), "urgent": N_("urgent"), "stat": N_("stat"),
    # FHIR's, of the immunizations and procedures brought in from other systems
    "in-progress": N_("in progress"), "not-done": N_("not done"), "entered-in-error": N_("entered in error"),
    "on-hold": N_("on hold"), "stopped": N_("stopped"), "preparation": N_("preparation"), "unknown": N_("unknown"),
}
"""The statuses (and a lab order's priorities) a timeline shows, by their stored value."""


def status_label(status: str) -> str:
    """A clinical status (an encounter's, a prescription's, a lab order's or its priority, an imported
    record's) in the reader's language; a value none foresaw, in words as stored."""
    label = _TIMELINE_STATUSES.get(status)
    return _(label) if label else status.replace("_", " ").replace("-", " ")


_CODE_SYSTEMS = {"http://hl7.org/fhir/sid/cvx": "CVX", "http://snomed.info/sct": "SNOMED CT"}  # names  # i18n: not shown


def _coded(system: str, code: str) -> str:
    """"CVX 140", "SNOMED CT 430193006": the code a record came with, named by its system."""
    if not code:
        return ""
    return f"{_CODE_SYSTEMS[system]} {code}" if system in _CODE_SYSTEMS else _("Code {code}").format(code=code)


def chart_timeline(*, session: Session, actor: Actor, patient_id: int, page: int = 1, page_size: int = 20) -> Page[TimelineEntry]:
    """One page of the patient's encounters, prescriptions, lab orders, documents, immunizations and
    procedures, newest first."""
    profile = chart_patient(session, actor, patient_id, "chart.timeline")
    page, page_size = clamp_page(page, page_size)
    result = _timeline_page(session, profile.user_id, page, page_size, for_patient=False)
    audit.record(session, actor, "chart.timeline", entity_type="patient", entity_id=profile.user_id,
                 patient_id=profile.user_id, detail=f"page {page}")
    session.commit()
    return result


def my_history(*, session: Session, actor: Actor, page: int = 1, page_size: int = 20) -> Page[TimelineEntry]:
    """The patient's own history, read-only: diagnoses, prescriptions, results, documents."""
    require(session, actor, Permission.RECORD_READ_OWN, action="history.view")
    if actor.role != Role.PATIENT:
        audit.deny(session, actor, "history.view", N_("Only patients have a personal history page."))
    page, page_size = clamp_page(page, page_size)
    result = _timeline_page(session, actor.user_id, page, page_size, for_patient=True)
    audit.record(session, actor, "history.view", entity_type="patient", entity_id=actor.user_id,
                 patient_id=actor.user_id, detail=f"page {page}")
    session.commit()
    return result


def my_allergies(*, session: Session, actor: Actor) -> list[AllergyRow]:
    require(session, actor, Permission.RECORD_READ_OWN, action="history.allergies")
    return _allergies(session, actor.user_id, active_only=True)


# --- allergies and problems -------------------------------------------------------------------


SEVERITIES = ("mild", "moderate", "severe")


def add_allergy(*, session: Session, actor: Actor, patient_id: int, substance: str, reaction: str = "",
                severity: str = "moderate") -> int:
    profile = chart_patient(session, actor, patient_id, "allergy.add", write=True)
    substance = checked_line(substance, _("substance"), limit=120)
    if severity not in SEVERITIES:
        raise ValidationError(_("Choose mild, moderate or severe."))
    allergy = Allergy(patient_id=profile.user_id, substance=substance,
                      reaction=checked_line(reaction, _("reaction"), limit=500, required=False),
                      severity=severity, recorded_by=actor.user_id)
    session.add(allergy)
    session.flush()
    audit.record(session, actor, "allergy.add", entity_type="allergy", entity_id=allergy.id, patient_id=profile.user_id)
    session.commit()
    return allergy.id


def _resolve_entry(session: Session, actor: Actor, model: type[Allergy] | type[Problem], entry_id: object,
                   kind: str, *, missing: str, already: str) -> None:
    """Mark an allergy or a problem-list entry resolved, after the same checks as adding one.

    ``missing`` and ``already`` are the refusals (marked, English), for a missing entry and a resolved one.
    """
    action = f"{kind}.resolve"
    require(session, actor, Permission.CLINICAL_WRITE, action=action)
    entry = access_by_id(session, actor, model, entry_id, action=action, missing=missing, entity_type=kind)
    chart_patient(session, actor, entry.patient_id, action, write=True)
    if entry.status == ClinicalStatus.RESOLVED:
        raise Conflict(_(already))
    entry.status, entry.resolved_at = ClinicalStatus.RESOLVED, utcnow()
    session.add(entry)
    audit.record(session, actor, action, entity_type=kind, entity_id=entry.id, patient_id=entry.patient_id)
    session.commit()


def resolve_allergy(*, session: Session, actor: Actor, allergy_id: int) -> None:
    _resolve_entry(session, actor, Allergy, allergy_id, "allergy", missing=N_("That allergy does not exist."),
                   already=N_("That allergy is already marked as resolved."))


def add_problem(*, session: Session, actor: Actor, patient_id: int, description: str, icd10_code: str = "") -> int:
    profile = chart_patient(session, actor, patient_id, "problem.add", write=True)
    description = checked_line(description, _("problem"), limit=300)
    code = _icd10(icd10_code)
    problem = Problem(patient_id=profile.user_id, description=description, icd10_code=code, recorded_by=actor.user_id)
    session.add(problem)
    session.flush()
    audit.record(session, actor, "problem.add", entity_type="problem", entity_id=problem.id, patient_id=profile.user_id)
    session.commit()
    return problem.id


def resolve_problem(*, session: Session, actor: Actor, problem_id: int) -> None:
    _resolve_entry(session, actor, Problem, problem_id, "problem", missing=N_("That problem does not exist."),
                   already=N_("That problem is already resolved."))


def _icd10(code: object) -> str:
    """The code as ICD-10-CM writes it, from a category down to a billable code; "" for none."""
    text = str(code or "").strip()
    if not text:
        return ""
    found = icd10.lookup_icd10(text)
    if found is None:
        raise ValidationError(_("Choose an ICD-10 code from the list, or leave it empty."))
    return found.code


@dataclass(frozen=True)
class DiagnosisOption:
    code: str
    description: str
    label: str


def search_diagnoses(*, session: Session, actor: Actor, term: str) -> list[DiagnosisOption]:
    """At most 20 ICD-10-CM codes matching a code prefix or all the words of ``term``, best first.

    The label says which are categories (a billable code lies below them).
    """
    require(session, actor, Permission.CLINICAL_WRITE, action="icd10.search")
    term = storable(str(term or "").strip()[:100], _("search"))
    return [DiagnosisOption(c.code, c.description,
                            f"{c.code} — {c.description}" + ("" if c.billable else " " + _("(category)")))
            for c in icd10.search_icd10_codes(term, limit=20)]


# --- encounters ------------------------------------------------------------------------------


VITAL_RANGES: dict[str, tuple[float, float, str]] = {
    "bp_systolic": (50, 260, N_("systolic blood pressure (mmHg)")),
    "bp_diastolic": (30, 160, N_("diastolic blood pressure (mmHg)")),
    "pulse": (20, 250, N_("pulse (beats per minute)")),
    "temperature_c": (30.0, 45.0, N_("temperature (°C)")),
    "weight_kg": (0.3, 400.0, N_("weight (kg)")),
    "height_cm": (30.0, 250.0, N_("height (cm)")),
    "spo2": (50, 100, N_("oxygen saturation (%)")),
}
_INTEGER_VITALS = {"bp_systolic", "bp_diastolic", "pulse", "spo2"}


def parse_vitals(form: dict) -> dict[str, float | int | None]:
    """Each vital empty or a number in its plausible range; diastolic below systolic."""
    if not isinstance(form, dict):
        raise ValidationError(_("Enter the vitals as numbers."))
    values: dict[str, float | int | None] = {}
    for name, (low, high, label) in VITAL_RANGES.items():
        raw = str(form.get(name, "") or "").strip().replace(",", ".")
        if not raw:
            values[name] = None
            continue
        try:
            number = float(raw)
        except ValueError:
            raise ValidationError(_("Enter the {label} as a number.").format(label=_(label))) from None
        if number != number or not low <= number <= high:  # NaN fails the first test
            raise ValidationError(_("The {label} must be between {low} and {high}.").format(
                label=_(label), low=f"{low:g}", high=f"{high:g}"))
        if name in _INTEGER_VITALS:
            if number != int(number):
                raise ValidationError(_("Enter the {label} as a whole number.").format(label=_(label)))
            number = int(number)
        values[name] = number
    if (values["bp_systolic"] is None) != (values["bp_diastolic"] is None):
        raise ValidationError(_("Enter both blood pressure values, or neither."))
    if values["bp_systolic"] is not None and values["bp_diastolic"] >= values["bp_systolic"]:
        raise ValidationError(_("The diastolic pressure must be below the systolic pressure."))
    return values


@dataclass(frozen=True)
class EncounterView:
    id: int
    appointment_id: int
    patient_id: int
    patient_name: str
    mrn: str
    when: str
    reason: str
    status: str
    subjective: str
    objective: str
    assessment: str
    plan: str
    diagnosis: str
    icd10_code: str
    icd10_label: str
    """The code and its description, like "I10 — Essential (primary) hypertension"."""
    bp_systolic: str
    bp_diastolic: str
    pulse: str
    temperature_c: str
    weight_kg: str
    height_cm: str
    spo2: str
    allergies: list[AllergyRow]
    """The patient's active allergies, for the banner the doctor sees while prescribing."""
    problems: list[ProblemRow]
    """The patient's active problems."""


def encounter_for_doctor(session: Session, actor: Actor, encounter_id: object, action: str) -> Encounter:
    """One of the doctor's own encounters, to write in; another's answers "not found" (audited)."""
    require(session, actor, Permission.CLINICAL_WRITE, action=action)
    return access_by_id(session, actor, Encounter, encounter_id, action=action,
                        missing=N_("That encounter does not exist."), entity_type="encounter",
                        allowed=lambda e: e.doctor_id == actor.user_id, patient_of=lambda e: e.patient_id)


def _show(value: float | int | None) -> str:
    return "" if value is None else f"{value:g}"


def _view(session: Session, encounter: Encounter) -> EncounterView:
    appointment = session.get(Appointment, encounter.appointment_id)
    patient = session.get(User, encounter.patient_id)
    profile = session.get(PatientProfile, encounter.patient_id)
    return EncounterView(
        id=encounter.id, appointment_id=encounter.appointment_id, patient_id=encounter.patient_id,
        patient_name=patient.full_name, mrn=profile.mrn if profile else "", when=format_local(appointment.starts_at),
        reason=appointment.reason, status=str(encounter.status), subjective=encounter.subjective,
        objective=encounter.objective, assessment=encounter.assessment, plan=encounter.plan,
        diagnosis=encounter.diagnosis, icd10_code=encounter.icd10_code,
        icd10_label=f"{encounter.icd10_code} — {icd10.describe_icd10(encounter.icd10_code)}" if encounter.icd10_code else "",
        bp_systolic=_show(encounter.bp_systolic), bp_diastolic=_show(encounter.bp_diastolic),
        pulse=_show(encounter.pulse), temperature_c=_show(encounter.temperature_c),
        weight_kg=_show(encounter.weight_kg), height_cm=_show(encounter.height_cm), spo2=_show(encounter.spo2),
        allergies=_allergies(session, encounter.patient_id, active_only=True),
        problems=[p for p in _problems(session, encounter.patient_id) if p.status == ClinicalStatus.ACTIVE.value],
    )


def open_encounter(*, session: Session, actor: Actor, appointment_id: int) -> EncounterView:
    """The encounter of one of the doctor's confirmed (or completed) appointments; created on first open."""
    require(session, actor, Permission.CLINICAL_WRITE, action="encounter.open")
    appointment = access_by_id(session, actor, Appointment, appointment_id, action="encounter.open",
                               missing=N_("That appointment does not exist."), entity_type="appointment",
                               allowed=lambda a: a.doctor_id == actor.user_id)
    encounter = session.execute(sa.select(Encounter).where(Encounter.appointment_id == appointment.id)).scalar_one_or_none()
    if encounter is None:
        if appointment.status != AppointmentStatus.CONFIRMED:
            raise Conflict(_("Only a confirmed appointment can be opened as an encounter."))
        encounter = Encounter(appointment_id=appointment.id, patient_id=appointment.patient_id, doctor_id=actor.user_id)
        session.add(encounter)
        try:
            session.flush()
        except sa.exc.IntegrityError:
            session.rollback()
            encounter = session.execute(sa.select(Encounter).where(Encounter.appointment_id == appointment.id)).scalar_one()
        else:
            audit.record(session, actor, "encounter.start", entity_type="encounter", entity_id=encounter.id,
                         patient_id=appointment.patient_id)
    view = _view(session, encounter)
    audit.record(session, actor, "encounter.view", entity_type="encounter", entity_id=encounter.id,
                 patient_id=encounter.patient_id)
    session.commit()
    return view


@dataclass(frozen=True)
class EncounterForm:
    subjective: str = ""
    objective: str = ""
    assessment: str = ""
    plan: str = ""
    diagnosis: str = ""
    icd10_code: str = ""
    vitals: dict | None = None


def _note(value: object, label: str) -> str:
    text = storable(str(value or "").strip(), label)
    if len(text) > MAX_NOTE:
        raise ValidationError(_("The {label} must be at most {limit} characters.").format(label=label, limit=MAX_NOTE))
    return text


def save_encounter(*, session: Session, actor: Actor, encounter_id: int, form: EncounterForm) -> EncounterView:
    """Save notes, diagnosis and vitals of an open encounter (all checked before anything is written)."""
    encounter = encounter_for_doctor(session, actor, encounter_id, "encounter.save")
    if encounter.status == EncounterStatus.COMPLETED:
        raise Conflict(_("This encounter is completed and can no longer be changed."))
    values = {
        "subjective": _note(form.subjective, _("subjective note")),
        "objective": _note(form.objective, _("objective note")),
        "assessment": _note(form.assessment, _("assessment")), "plan": _note(form.plan, _("plan")),
        "diagnosis": checked_line(form.diagnosis, _("diagnosis"), limit=300, required=False),
        "icd10_code": _icd10(form.icd10_code),
        **parse_vitals(form.vitals or {}),
    }
    for name, value in values.items():
        setattr(encounter, name, value)
    session.add(encounter)
    audit.record(session, actor, "encounter.save", entity_type="encounter", entity_id=encounter.id,
                 patient_id=encounter.patient_id)
    session.commit()
    return _view(session, encounter)


def complete_encounter(*, session: Session, actor: Actor, encounter_id: int) -> None:
    """Close the encounter and complete its appointment (which must have started)."""
    encounter = encounter_for_doctor(session, actor, encounter_id, "encounter.complete")
    if encounter.status == EncounterStatus.COMPLETED:
        raise Conflict(_("This encounter is already completed."))
    if not (encounter.diagnosis or encounter.assessment):
        raise ValidationError(_("Record a diagnosis or an assessment before completing the encounter."))
    appointment = session.get(Appointment, encounter.appointment_id)
    if appointment.starts_at > utcnow():
        raise Conflict(_("The appointment has not started yet; complete the encounter once it has."))
    encounter.status, encounter.completed_at = EncounterStatus.COMPLETED, utcnow()
    session.add(encounter)
    audit.record(session, actor, "encounter.complete", entity_type="encounter", entity_id=encounter.id,
                 patient_id=encounter.patient_id)
    session.flush()
    complete_appointment(session=session, actor=actor, appointment_id=appointment.id)

"""The patient's whole record as a readable PDF summary, made from the same FHIR resources as
the JSON export, so the two never disagree."""

from __future__ import annotations

from datetime import date, datetime

from sqlmodel import Session

from hms_app import settings
from hms_app.db.enums import Permission, Role
from hms_app.db.models import PatientProfile
from hms_app.db.types import utcnow
from hms_app.services.core import audit
from hms_app.services.core.access import require
from hms_app.services.core.actor import Actor
from hms_app.services.core.errors import NotFound
from hms_app.services.core.files import DownloadedFile
from hms_app.services.core.language import N_, _
from hms_app.services.core.localtime import format_date, format_local
from hms_app.services.core.numbers import format_money, format_number
from hms_app.services.core.pdf import (
    closing_note,
    field,
    letterhead,
    phrase,
    sex_label,
    table,
    text_line,
)
from hms_app.services.interop import fhir


def _when(value: str | None, *, with_time: bool = True) -> str:
    if not value:
        return ""
    if len(value) <= 10:
        return format_date(date.fromisoformat(value))
    instant = datetime.fromisoformat(value)
    return format_local(instant) if with_time else format_date(instant)


def _text(concept: dict | None) -> str:
    if not concept:
        return ""
    coding = (concept.get("coding") or [{}])[0]
    text = concept.get("text") or coding.get("display") or ""
    code = coding.get("code", "")
    return f"{text} ({code})" if code and coding.get("system") == fhir.ICD10_SYSTEM else text


def _quantity(q: dict | None) -> str:
    if not q:
        return ""
    value = q.get("value")
    shown = f"{value:g}" if isinstance(value, float) else str(value)
    return f"{shown} {q.get('unit', '')}".strip()


_CODE_WORDS = (
    N_("active"), N_("resolved"), N_("inactive"), N_("finished"), N_("in-progress"), N_("pending"), N_("booked"),
    N_("fulfilled"), N_("cancelled"), N_("noshow"), N_("completed"), N_("draft"), N_("issued"), N_("balanced"),
    N_("mild"), N_("moderate"), N_("severe"))
"""The FHIR codes the summary prints (statuses, an allergy's severity), marked for the catalogue:
each code is its own English word."""


def _word(code: str) -> str:
    """A FHIR code or display text (a lab flag's, the lab's own label) as the reader's word; text
    no catalogue knows stays as it is."""
    return _(code) if code else ""


def _status(resource: dict, field: str = "clinicalStatus") -> str:
    return _word(((resource.get(field) or {}).get("coding") or [{}])[0].get("code", ""))


def summary_rows(record: dict) -> list[tuple[str, list[str], list[list[str]]]]:
    """The summary's sections: (title, column headings, rows), from a record Bundle, in the reader's language."""
    by_type = fhir.typed(record)
    names = {f"Practitioner/{p['id']}": p["name"][0].get("text", "") for p in by_type.get("Practitioner", [])}
    sections: list[tuple[str, list[str], list[list[str]]]] = []
    sections.append((_("Allergies"), [_("Substance"), _("Reaction"), _("Severity"), _("Status")], [
        [a["code"].get("text", ""), ", ".join(m.get("text", "") for r in a.get("reaction", []) for m in r["manifestation"]),
         _word((a.get("reaction") or [{}])[0].get("severity", "")), _status(a)]
        for a in by_type.get("AllergyIntolerance", [])]))
    problems = [c for c in by_type.get("Condition", []) if c["id"].startswith("problem-")]
    diagnoses = [c for c in by_type.get("Condition", []) if c["id"].startswith("encounter-")]
    sections.append((_("Problems"), [_("Problem"), _("Recorded"), _("Status")], [
        [_text(c.get("code")), _when(c.get("recordedDate"), with_time=False), _status(c)] for c in problems]))
    sections.append((_("Visits"), [_("Date"), _("Doctor"), _("Diagnosis"), _("Status")], [
        [_when(e["period"].get("start")), e["participant"][0]["individual"].get("display", ""),
         next((_text(d.get("code")) for d in diagnoses if d["encounter"]["reference"] == f"Encounter/{e['id']}"), ""),
         _word(e["status"])]
        for e in sorted(by_type.get("Encounter", []), key=lambda e: e["period"].get("start", ""), reverse=True)]))
    vitals = [o for o in by_type.get("Observation", []) if not o["id"].startswith("lab-")]
    sections.append((_("Vital signs"), [_("Date"), _("Measurement"), _("Value")], [
        [_when(o.get("effectiveDateTime")), o["code"].get("text", ""),
         " / ".join(_quantity(c.get("valueQuantity")) for c in o["component"]) if "component" in o
         else _quantity(o.get("valueQuantity"))]
        for o in sorted(vitals, key=lambda o: o.get("effectiveDateTime", ""), reverse=True)]))
    labs = [o for o in by_type.get("Observation", []) if o["id"].startswith("lab-")]
    sections.append((_("Lab results"), [_("Date"), _("Test"), _("Result"), _("Reference range"), _("Flag")], [
        [_when(o.get("issued")), o["code"].get("text", ""),
         _quantity(o.get("valueQuantity")) if "valueQuantity" in o
         else o.get("valueString", _(fhir.HELD_NOTE) if o.get("status") == "registered" else ""),
         " - ".join(_quantity(r.get(k)) for r in o.get("referenceRange", [])[:1] for k in ("low", "high") if r.get(k)),
         _word((o.get("interpretation") or [{}])[0].get("text", ""))]
        for o in sorted(labs, key=lambda o: o.get("issued", ""), reverse=True)]))
    dispensed: dict[str, int] = {}
    for d in by_type.get("MedicationDispense", []):
        key = d["authorizingPrescription"][0]["reference"]
        dispensed[key] = dispensed.get(key, 0) + d["quantity"]["value"]
    sections.append((_("Medicines"), [_("Prescribed"), _("Medicine"), _("Instructions"), _("Dispensed"), _("Status")], [
        [_when(m.get("authoredOn"), with_time=False), m["medicationCodeableConcept"].get("text", ""),
         m["dosageInstruction"][0].get("text", ""),
         phrase(_("{dispensed} of {prescribed}"), dispensed=format_number(dispensed.get(f"MedicationRequest/{m['id']}", 0)),
                prescribed=format_number(m["dispenseRequest"]["quantity"]["value"])),
         _word(m["status"])]
        for m in sorted(by_type.get("MedicationRequest", []), key=lambda m: m.get("authoredOn", ""), reverse=True)]))
    sections.append((_("Appointments"), [_("Date"), _("Doctor"), _("Reason"), _("Status")], [
        [_when(a.get("start")), names.get(a["participant"][1]["actor"]["reference"], ""),
         _text((a.get("reasonCode") or [None])[0]), _word(a["status"])]
        for a in sorted(by_type.get("Appointment", []), key=lambda a: a.get("start", ""), reverse=True)]))
    sections.append((_("Invoices"), [_("Date"), _("Number"), _("Total"), _("Status")], [
        [_when(i.get("date"), with_time=False), (i.get("identifier") or [{}])[0].get("value") or _("draft"),
         format_money(round(i["totalGross"]["value"] * 100)), _word(i["status"])]
        for i in by_type.get("Invoice", [])]))
    return sections


def render_summary(record: dict) -> bytes:
    """The summary PDF of a record Bundle, in the reader's language."""
    [patient] = fhir.typed(record)["Patient"]
    name = patient["name"][0]["text"]
    pdf = letterhead(phrase(_("Health record of {name}"), name=name), _("Health record summary"), bottom_margin=15)
    pdf.ln(3)
    details = [
        (_("Patient"), name),
        (_("Medical record no."), patient["identifier"][0]["value"]),
        (_("Birth date"), _when(patient.get("birthDate"), with_time=False)),
        (_("Sex"), sex_label(patient.get("gender", ""))),
    ]
    for label, value in details:
        field(pdf, label, value, label_width=45)
    for title, headings, rows in summary_rows(record):
        pdf.ln(4)
        text_line(pdf, title, size=12, bold=True, height=8)
        if rows:
            table(pdf, headings, rows)
        else:
            text_line(pdf, _("None recorded."), size=9)
    return closing_note(pdf, phrase(_("Printed {time} ({zone}). The same record is available as a FHIR R4 Bundle "
                                      "(JSON) for other hospitals' systems."),
                                    time=format_local(utcnow()), zone=settings.TIMEZONE.key))


def my_record_pdf(*, session: Session, actor: Actor) -> DownloadedFile:
    """The patient's own record as a PDF summary; audited like a chart view."""
    require(session, actor, Permission.RECORD_READ_OWN, action="record.summary")
    if actor.role != Role.PATIENT:
        audit.deny(session, actor, "record.summary", N_("Only patients can download their own record."),
                   detail="Only patients can download their own record.")  # i18n: not shown
    profile = session.get(PatientProfile, actor.user_id)
    if profile is None:
        raise NotFound(_("Your patient record was not found."))
    record = fhir.whole_record(session, actor.user_id, base_url=f"{settings.PUBLIC_URL}/fhir", for_patient=True)
    data = render_summary(record)
    audit.record(session, actor, "record.summary", entity_type="patient", entity_id=actor.user_id,
                 patient_id=actor.user_id,
                 detail=f"PDF summary, {len(record.get('entry', []))} resources")  # i18n: not shown
    session.commit()
    return DownloadedFile(f"health-record-{profile.mrn}.pdf", "application/pdf", data)

"""The patient record as FHIR R4 resources: the mapping, search by patient, ``$everything``
with paging, and the patient's own export.

Every resource is built as plain JSON and then validated by constructing its model from the
``fhir.resources`` package (its ``R4B`` models: the package ships no 4.0.1 models, and every
element used here is the same in R4 and R4B). A resource that does not validate is a bug here
and raises, rather than leaving the server.

Resource ids are the table ids, with a prefix where one FHIR type comes from several tables:

=====================  =================================================================
``Patient/7``          the patient's user id
``Practitioner/3``     a doctor's user id
``Organization/2``     a department
``Condition/problem-5``    a problem-list entry; ``Condition/encounter-9`` an encounter's diagnosis
``Observation/bp-9``   a vital sign of encounter 9 (bp, pulse, temp, weight, height, spo2)
``Observation/lab-4``  the result of lab order 4; ``DiagnosticReport/4`` its report
``MedicationRequest/6``    a prescription item; ``MedicationDispense/8`` a dispensation
``Binary/lab-report-4``    the report file uploaded for lab order 4
``Immunization/3``     an immunization, ``Procedure/5`` a procedure (both imported records)
=====================  =================================================================

Who may read is decided by the callers (``api_clients`` for the HTTP API, ``export_my_record``
for the portal); every read is audited like a chart view.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from fhir.resources.R4B import get_fhir_model_class
from sqlmodel import Session

from hms_app import settings
from hms_app.db.enums import (
    AppointmentStatus,
    ClinicalStatus,
    EncounterStatus,
    InvoiceStatus,
    LabOrderStatus,
    Permission,
    PrescriptionStatus,
    Role,
)
from hms_app.db.models import (
    Allergy,
    Appointment,
    Department,
    Dispensation,
    DoctorProfile,
    Encounter,
    Immunization,
    Invoice,
    InvoiceLine,
    LabOrder,
    LabReportFile,
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
from hms_app.services.core import audit, emails
from hms_app.services.core.access import require
from hms_app.services.core.actor import Actor
from hms_app.services.core.errors import NotFound, ValidationError
from hms_app.services.core.ids import parse_id
from hms_app.services.reference.icd10 import describe_icd10

FHIR_VERSION = "4.0.1"
FHIR_JSON = "application/fhir+json"
DEFAULT_COUNT = 50
MAX_COUNT = 500

MRN_SYSTEM = "urn:hms:mrn"
LAB_TEST_SYSTEM = "urn:hms:lab-test"
INVOICE_NUMBER_SYSTEM = "urn:hms:invoice-number"
ICD10_SYSTEM = "http://hl7.org/fhir/sid/icd-10"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
_OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
_INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
_CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
_CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
_CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
_ALLERGY_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
_DIAGNOSTIC_SERVICE = "http://terminology.hl7.org/CodeSystem/v2-0074"

RESOURCE_TYPES = (
    "Patient", "Practitioner", "Organization", "Appointment", "Encounter", "Condition",
    "AllergyIntolerance", "Observation", "DiagnosticReport", "MedicationRequest",
    "MedicationDispense", "Invoice", "Immunization", "Procedure",
)
"""The types the API reads and searches by patient (``Binary`` is read only)."""


@dataclass(frozen=True)
class Vital:
    """One vital sign of an encounter, as an Observation coded in LOINC."""

    key: str
    column: str
    loinc: str
    display: str
    unit: str
    ucum: str


VITALS = (
    Vital("bp", "bp_systolic", "85354-9", "Blood pressure panel", "mmHg", "mm[Hg]"),
    Vital("pulse", "pulse", "8867-4", "Heart rate", "beats/minute", "/min"),
    Vital("temp", "temperature_c", "8310-5", "Body temperature", "°C", "Cel"),
    Vital("weight", "weight_kg", "29463-7", "Body weight", "kg", "kg"),
    Vital("height", "height_cm", "8302-2", "Body height", "cm", "cm"),
    Vital("spo2", "spo2", "2708-6", "Oxygen saturation in arterial blood", "%", "%"),
)
_VITAL_BY_KEY = {v.key: v for v in VITALS}

_APPOINTMENT_STATUS = {
    AppointmentStatus.REQUESTED: "pending",
    AppointmentStatus.CONFIRMED: "booked",
    AppointmentStatus.COMPLETED: "fulfilled",
    AppointmentStatus.CANCELLED: "cancelled",
    AppointmentStatus.DECLINED: "cancelled",
    AppointmentStatus.NO_SHOW: "noshow",
}
_MEDICATION_REQUEST_STATUS = {
    PrescriptionStatus.ISSUED: "active",
    PrescriptionStatus.VERIFIED: "active",
    PrescriptionStatus.PARTLY_DISPENSED: "active",
    PrescriptionStatus.DISPENSED: "completed",
    PrescriptionStatus.REJECTED: "cancelled",
}
_INVOICE_STATUS = {
    InvoiceStatus.DRAFT: "draft",
    InvoiceStatus.ISSUED: "issued",
    InvoiceStatus.PARTLY_PAID: "issued",
    InvoiceStatus.PAID: "balanced",
    InvoiceStatus.VOID: "cancelled",
}
_FLAG_INTERPRETATION = {
    "critical_low": ("LL", "Critical low"),
    "low": ("L", "Low"),
    "normal": ("N", "Normal"),
    "high": ("H", "High"),
    "critical_high": ("HH", "Critical high"),
}


# --- small builders --------------------------------------------------------------------------


def _instant(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value else None


def _ref(resource_type: str, resource_id: object, display: str | None = None) -> dict:
    reference = {"reference": f"{resource_type}/{resource_id}"}
    if display:
        reference["display"] = display
    return reference


def _concept(text: str, *, system: str | None = None, code: str | None = None, display: str | None = None) -> dict:
    concept: dict[str, Any] = {"text": text} if text else {}
    if system and code:
        coding = {"system": system, "code": code}
        if display:
            coding["display"] = display
        concept["coding"] = [coding]
    return concept


def _money(cents: int) -> dict:
    # A float prints as the shortest decimal that reads back as itself: 1234 cents is 12.34.
    return {"value": cents / 100, "currency": settings.CURRENCY}


def _quantity(value: float | int, unit: str, ucum: str | None = None) -> dict:
    quantity: dict[str, Any] = {"value": value, "unit": unit}
    if ucum:
        quantity |= {"system": UCUM, "code": ucum}
    return quantity


def _drop_empty(data: Any) -> Any:
    """FHIR forbids empty strings, lists and objects: leave them out."""
    if isinstance(data, dict):
        cleaned = {k: _drop_empty(v) for k, v in data.items()}
        return {k: v for k, v in cleaned.items() if v not in (None, "", [], {})}
    if isinstance(data, list):
        cleaned = [_drop_empty(v) for v in data]
        return [v for v in cleaned if v not in (None, "", [], {})]
    return data


def validated(resource: dict) -> dict:
    """The resource as JSON, once its ``fhir.resources`` model accepted it.

    The model only checks: the JSON that leaves is the plain dict checked, because serialising
    through the model costs twice the validation again (a 4,500-resource record took 25 s).

    Raises:
        pydantic.ValidationError: the mapping produced something that is not valid FHIR.
    """
    cleaned = _drop_empty(resource)
    get_fhir_model_class(cleaned["resourceType"]).model_validate(cleaned)
    return cleaned


# --- one resource per row ----------------------------------------------------------------------


_GENDER = {"female": "female", "male": "male", "other": "other"}


def _email_telecom(address: str, **extra: str) -> list[dict]:
    """The person's address as a telecom; none for a placeholder that stands in for no address."""
    return [] if emails.is_placeholder(address) else [{"system": "email", "value": address, **extra}]


def patient_resource(user: User, profile: PatientProfile) -> dict:
    # "Maria Garcia": given Maria, family Garcia; a one-word name is the family name alone.
    *given, family = user.full_name.split() or [user.full_name]
    name = {"use": "official", "text": user.full_name, "family": family, "given": given}
    contact = []
    if profile.emergency_contact_name or profile.emergency_contact_phone:
        contact.append({
            "relationship": [_concept("Emergency contact", system="http://terminology.hl7.org/CodeSystem/v2-0131",
                                      code="C", display="Emergency Contact")],
            "name": {"text": profile.emergency_contact_name},
            "telecom": [{"system": "phone", "value": profile.emergency_contact_phone}]
            if profile.emergency_contact_phone else [],
        })
    return validated({
        "resourceType": "Patient",
        "id": str(user.id),
        "identifier": [{"use": "usual", "system": MRN_SYSTEM, "value": profile.mrn}],
        "active": user.is_active,
        "name": [name],
        "telecom": _email_telecom(user.email) + ([{"system": "phone", "value": profile.phone}] if profile.phone else []),
        "gender": _GENDER.get(str(profile.sex), "unknown"),
        "birthDate": profile.birth_date.isoformat() if profile.birth_date else None,
        "address": [{"text": profile.address}] if profile.address else [],
        "contact": contact,
    })


def practitioner_resource(user: User, profile: DoctorProfile | None) -> dict:
    return validated({
        "resourceType": "Practitioner",
        "id": str(user.id),
        "active": user.is_active,
        "name": [{"text": user.full_name}],
        "telecom": _email_telecom(user.email, use="work"),
        "qualification": [{"code": _concept(profile.specialty)}] if profile and profile.specialty else [],
    })


def organization_resource(department: Department) -> dict:
    return validated({
        "resourceType": "Organization",
        "id": str(department.id),
        "active": department.is_active,
        "type": [_concept("Hospital department", system="http://terminology.hl7.org/CodeSystem/organization-type",
                          code="dept", display="Hospital Department")],
        "name": department.name,
    })


def appointment_resource(appointment: Appointment, doctor_name: str, patient_name: str) -> dict:
    return validated({
        "resourceType": "Appointment",
        "id": str(appointment.id),
        "status": _APPOINTMENT_STATUS[AppointmentStatus(appointment.status)],
        "cancelationReason": _concept(appointment.status_reason) if appointment.status_reason else None,
        "reasonCode": [_concept(appointment.reason)] if appointment.reason else [],
        "start": _instant(appointment.starts_at),
        "end": _instant(appointment.ends_at),
        "minutesDuration": int((appointment.ends_at - appointment.starts_at).total_seconds() // 60),
        "created": _instant(appointment.created_at),
        "participant": [
            {"actor": _ref("Patient", appointment.patient_id, patient_name), "status": "accepted", "required": "required"},
            {"actor": _ref("Practitioner", appointment.doctor_id, doctor_name),
             "status": "needs-action" if appointment.status == AppointmentStatus.REQUESTED else "accepted",
             "required": "required"},
        ],
        "supportingInformation": [_ref("Organization", appointment.department_id)],
    })


def encounter_resource(encounter: Encounter, appointment: Appointment, doctor_name: str) -> dict:
    has_diagnosis = bool(encounter.diagnosis or encounter.icd10_code)
    return validated({
        "resourceType": "Encounter",
        "id": str(encounter.id),
        "status": "finished" if encounter.status == EncounterStatus.COMPLETED else "in-progress",
        "class": {"system": _ACT_CODE, "code": "AMB", "display": "ambulatory"},
        "subject": _ref("Patient", encounter.patient_id),
        "participant": [{"individual": _ref("Practitioner", encounter.doctor_id, doctor_name)}],
        "appointment": [_ref("Appointment", encounter.appointment_id)],
        "period": {"start": _instant(encounter.started_at), "end": _instant(encounter.completed_at)},
        "reasonCode": [_concept(appointment.reason)] if appointment.reason else [],
        "diagnosis": [{"condition": _ref("Condition", f"encounter-{encounter.id}"), "rank": 1}] if has_diagnosis else [],
        "serviceProvider": _ref("Organization", appointment.department_id),
    })


def _icd10_concept(text: str, code: str) -> dict:
    display = describe_icd10(code) if code else ""
    return _concept(text or display, system=ICD10_SYSTEM if code else None, code=code or None,
                    display=display or None)


def problem_condition(problem: Problem) -> dict:
    status = "resolved" if problem.status == ClinicalStatus.RESOLVED else "active"
    return validated({
        "resourceType": "Condition",
        "id": f"problem-{problem.id}",
        "clinicalStatus": _concept("", system=_CONDITION_CLINICAL, code=status),
        "verificationStatus": _concept("", system=_CONDITION_VERIFICATION, code="confirmed"),
        "category": [_concept("", system=_CONDITION_CATEGORY, code="problem-list-item", display="Problem List Item")],
        "code": _icd10_concept(problem.description, problem.icd10_code),
        "subject": _ref("Patient", problem.patient_id),
        "recordedDate": _instant(problem.recorded_at),
        "recorder": _ref("Practitioner", problem.recorded_by),
        "abatementDateTime": _instant(problem.resolved_at),
    })


def diagnosis_condition(encounter: Encounter) -> dict:
    return validated({
        "resourceType": "Condition",
        "id": f"encounter-{encounter.id}",
        "clinicalStatus": _concept("", system=_CONDITION_CLINICAL, code="active"),
        "verificationStatus": _concept("", system=_CONDITION_VERIFICATION, code="confirmed"),
        "category": [_concept("", system=_CONDITION_CATEGORY, code="encounter-diagnosis", display="Encounter Diagnosis")],
        "code": _icd10_concept(encounter.diagnosis, encounter.icd10_code),
        "subject": _ref("Patient", encounter.patient_id),
        "encounter": _ref("Encounter", encounter.id),
        "recordedDate": _instant(encounter.started_at),
        "recorder": _ref("Practitioner", encounter.doctor_id),
    })


def allergy_resource(allergy: Allergy) -> dict:
    status = "resolved" if allergy.status == ClinicalStatus.RESOLVED else "active"
    return validated({
        "resourceType": "AllergyIntolerance",
        "id": str(allergy.id),
        "clinicalStatus": _concept("", system=_ALLERGY_CLINICAL, code=status),
        "code": _concept(allergy.substance),
        "patient": _ref("Patient", allergy.patient_id),
        "recordedDate": _instant(allergy.recorded_at),
        "recorder": _ref("Practitioner", allergy.recorded_by),
        "reaction": [{
            "manifestation": [_concept(allergy.reaction or "Reaction not recorded")],
            "severity": allergy.severity if allergy.severity in ("mild", "moderate", "severe") else None,
        }],
    })


def vital_observation(encounter: Encounter, vital: Vital) -> dict:
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": f"{vital.key}-{encounter.id}",
        "status": "final" if encounter.status == EncounterStatus.COMPLETED else "preliminary",
        "category": [_concept("", system=_OBS_CATEGORY, code="vital-signs", display="Vital Signs")],
        "code": _concept(vital.display, system=LOINC, code=vital.loinc, display=vital.display),
        "subject": _ref("Patient", encounter.patient_id),
        "encounter": _ref("Encounter", encounter.id),
        "effectiveDateTime": _instant(encounter.started_at),
        "performer": [_ref("Practitioner", encounter.doctor_id)],
    }
    if vital.key == "bp":
        resource["component"] = [
            {"code": _concept("Systolic blood pressure", system=LOINC, code="8480-6", display="Systolic blood pressure"),
             "valueQuantity": _quantity(encounter.bp_systolic, "mmHg", "mm[Hg]")},
            {"code": _concept("Diastolic blood pressure", system=LOINC, code="8462-4", display="Diastolic blood pressure"),
             "valueQuantity": _quantity(encounter.bp_diastolic, "mmHg", "mm[Hg]")},
        ]
    else:
        resource["valueQuantity"] = _quantity(getattr(encounter, vital.column), vital.unit, vital.ucum)
    return validated(resource)


def _lab_code(test: LabTest) -> dict:
    return _concept(test.name, system=LAB_TEST_SYSTEM, code=test.code, display=test.name)


HELD_NOTE = "Awaiting review by your doctor"


def held_lab_observation(order: LabOrder, result: LabResult, test: LabTest) -> dict:
    """A result held for the ordering doctor's review, as its patient may see it: registered,
    with no value, range, interpretation or comment."""
    return validated({
        "resourceType": "Observation", "id": f"lab-{order.id}", "status": "registered",
        "category": [_concept("", system=_OBS_CATEGORY, code="laboratory", display="Laboratory")],
        "code": _lab_code(test), "subject": _ref("Patient", order.patient_id),
        "encounter": _ref("Encounter", order.encounter_id) if order.encounter_id else None,
        "effectiveDateTime": _instant(order.collected_at or order.ordered_at), "issued": _instant(result.resulted_at),
        "note": [{"text": HELD_NOTE}],
    })


def lab_observation(order: LabOrder, result: LabResult, test: LabTest) -> dict:
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": f"lab-{order.id}",
        "basedOn": [],
        "status": "final",
        "category": [_concept("", system=_OBS_CATEGORY, code="laboratory", display="Laboratory")],
        "code": _lab_code(test),
        "subject": _ref("Patient", order.patient_id),
        "encounter": _ref("Encounter", order.encounter_id) if order.encounter_id else None,
        "effectiveDateTime": _instant(order.collected_at or order.ordered_at),
        "issued": _instant(result.resulted_at),
        "note": [{"text": result.comment}] if result.comment else [],
        "specimen": None,
    }
    if result.value_numeric is not None:
        resource["valueQuantity"] = _quantity(result.value_numeric, result.unit or test.unit)
    else:
        resource["valueString"] = result.value_text
    if result.range_low is not None or result.range_high is not None:
        unit = result.unit or test.unit
        reference = {"type": _concept("Normal Range", system="http://terminology.hl7.org/CodeSystem/referencerange-meaning",
                                      code="normal", display="Normal Range")}
        if result.range_low is not None:
            reference["low"] = _quantity(result.range_low, unit)
        if result.range_high is not None:
            reference["high"] = _quantity(result.range_high, unit)
        resource["referenceRange"] = [reference]
    if result.flag in _FLAG_INTERPRETATION:
        code, display = _FLAG_INTERPRETATION[result.flag]
        resource["interpretation"] = [_concept(display, system=_INTERPRETATION, code=code, display=display)]
    return validated(resource)


def diagnostic_report(order: LabOrder, result: LabResult, test: LabTest, report: LabReportFile | None,
                      base_url: str) -> dict:
    return validated({
        "resourceType": "DiagnosticReport",
        "id": str(order.id),
        "status": "final",
        "category": [_concept("Laboratory", system=_DIAGNOSTIC_SERVICE, code="LAB", display="Laboratory")],
        "code": _lab_code(test),
        "subject": _ref("Patient", order.patient_id),
        "encounter": _ref("Encounter", order.encounter_id) if order.encounter_id else None,
        "effectiveDateTime": _instant(order.collected_at or order.ordered_at),
        "issued": _instant(result.resulted_at),
        "performer": [{"display": "Laboratory"}],
        "result": [_ref("Observation", f"lab-{order.id}")],
        "conclusion": result.comment,
        "presentedForm": [{
            "contentType": report.content_type,
            "url": f"{base_url}/Binary/lab-report-{order.id}",
            "size": report.size_bytes,
            "title": report.file_name,
            "creation": _instant(report.uploaded_at),
        }] if report else [],
    })


def _medicine_concept(medicine: Medicine) -> dict:
    return _concept(f"{medicine.name} {medicine.strength} {medicine.form}".strip(),
                    system="urn:hms:medicine", code=str(medicine.id), display=f"{medicine.name} {medicine.strength}")


def medication_request(item: PrescriptionItem, prescription: Prescription, medicine: Medicine, doctor_name: str) -> dict:
    return validated({
        "resourceType": "MedicationRequest",
        "id": str(item.id),
        "groupIdentifier": {"system": "urn:hms:prescription", "value": str(prescription.id)},
        "status": _MEDICATION_REQUEST_STATUS[PrescriptionStatus(prescription.status)],
        "statusReason": _concept(prescription.status_reason) if prescription.status_reason else None,
        "intent": "order",
        "medicationCodeableConcept": _medicine_concept(medicine),
        "subject": _ref("Patient", prescription.patient_id),
        "encounter": _ref("Encounter", prescription.encounter_id) if prescription.encounter_id else None,
        "authoredOn": _instant(prescription.created_at),
        "requester": _ref("Practitioner", prescription.doctor_id, doctor_name),
        "note": [{"text": item.instructions}] if item.instructions else [],
        "dosageInstruction": [{
            "text": f"{item.dose} {item.route} {item.frequency} for {item.days} days",
            "route": _concept(item.route),
            "patientInstruction": item.instructions,
        }],
        "dispenseRequest": {
            "quantity": {"value": item.quantity},
            "expectedSupplyDuration": {"value": item.days, "unit": "days", "system": UCUM, "code": "d"},
        },
    })


def medication_dispense(dispensation: Dispensation, item: PrescriptionItem, prescription: Prescription,
                        medicine: Medicine) -> dict:
    return validated({
        "resourceType": "MedicationDispense",
        "id": str(dispensation.id),
        "status": "completed",
        "medicationCodeableConcept": _medicine_concept(medicine),
        "subject": _ref("Patient", prescription.patient_id),
        "context": _ref("Encounter", prescription.encounter_id) if prescription.encounter_id else None,
        "authorizingPrescription": [_ref("MedicationRequest", item.id)],
        "quantity": {"value": dispensation.quantity},
        "whenHandedOver": _instant(dispensation.dispensed_at),
        "dosageInstruction": [{"text": f"{item.dose} {item.route} {item.frequency} for {item.days} days"}],
    })


_IMMUNIZATION_STATUS = {"completed", "entered-in-error", "not-done"}
_PROCEDURE_STATUS = {"preparation", "in-progress", "not-done", "on-hold", "stopped", "completed", "entered-in-error",
                     "unknown"}


def _coded_concept(text: str, system: str, code: str) -> dict:
    return _concept(text, system=system or None, code=code or None)


def immunization_resource(immunization: Immunization) -> dict:
    return validated({
        "resourceType": "Immunization",
        "id": str(immunization.id),
        "status": immunization.status if immunization.status in _IMMUNIZATION_STATUS else "completed",
        "vaccineCode": _coded_concept(immunization.vaccine, immunization.code_system, immunization.code),
        "patient": _ref("Patient", immunization.patient_id),
        "encounter": _ref("Encounter", immunization.encounter_id) if immunization.encounter_id else None,
        "occurrenceDateTime": _instant(immunization.given_at),
        "recorded": _instant(immunization.created_at),
        "primarySource": False,
        "performer": [{"actor": _ref("Practitioner", immunization.recorded_by)}],
    })


def procedure_resource(procedure: Procedure) -> dict:
    return validated({
        "resourceType": "Procedure",
        "id": str(procedure.id),
        "status": procedure.status if procedure.status in _PROCEDURE_STATUS else "unknown",
        "code": _coded_concept(procedure.description, procedure.code_system, procedure.code),
        "subject": _ref("Patient", procedure.patient_id),
        "encounter": _ref("Encounter", procedure.encounter_id) if procedure.encounter_id else None,
        "performedPeriod": {"start": _instant(procedure.performed_at), "end": _instant(procedure.ended_at)},
        "recorder": _ref("Practitioner", procedure.recorded_by),
    })


def invoice_resource(invoice: Invoice, lines: list[InvoiceLine]) -> dict:
    return validated({
        "resourceType": "Invoice",
        "id": str(invoice.id),
        "identifier": [{"system": INVOICE_NUMBER_SYSTEM, "value": invoice.number}] if invoice.number else [],
        "status": _INVOICE_STATUS[InvoiceStatus(invoice.status)],
        "cancelledReason": invoice.void_reason if invoice.status == InvoiceStatus.VOID else None,
        "subject": _ref("Patient", invoice.patient_id),
        "date": _instant(invoice.issued_at or invoice.created_at),
        "lineItem": [{
            "sequence": index,
            "chargeItemCodeableConcept": _concept(line.description, system="urn:hms:charge-kind", code=str(line.kind)),
            "priceComponent": [{"type": "base", "factor": line.quantity, "amount": _money(line.amount_cents)}],
        } for index, line in enumerate(lines, start=1)],
        "totalPriceComponent": [{"type": "discount", "amount": _money(invoice.discount_cents)}]
        if invoice.discount_cents else [],
        "totalNet": _money(invoice.subtotal_cents),
        "totalGross": _money(invoice.total_cents),
        "paymentTerms": f"Due {invoice.due_date.isoformat()}" if invoice.due_date else None,
        "note": [{"text": f"Paid {_money(invoice.paid_cents)['value']} {settings.CURRENCY}"}],
    })


# --- the index of one patient's resources ------------------------------------------------------


# (kind, FHIR type): the parts of a patient's record, in the order $everything pages them.
_KINDS: tuple[tuple[str, str], ...] = (
    ("patient", "Patient"), ("practitioner", "Practitioner"), ("organization", "Organization"),
    ("appointment", "Appointment"), ("encounter", "Encounter"), ("problem", "Condition"),
    ("diagnosis", "Condition"), ("allergy", "AllergyIntolerance"),
    *((f"vital:{v.key}", "Observation") for v in VITALS),
    ("lab", "Observation"), ("report", "DiagnosticReport"), ("request", "MedicationRequest"),
    ("dispense", "MedicationDispense"), ("invoice", "Invoice"), ("immunization", "Immunization"),
    ("procedure", "Procedure"),
)
_RANK = {kind: rank for rank, (kind, _) in enumerate(_KINDS)}
_TYPE_OF_KIND = dict(_KINDS)
_COMPLETED_LAB = (LabOrder.status == LabOrderStatus.COMPLETED.value)


def _diagnosed_encounters(session: Session, patient_id: int) -> list[int]:
    """Encounters whose (encrypted) diagnosis is filled in: decrypted here, since SQL cannot look."""
    rows = session.execute(
        sa.select(Encounter.id, Encounter.diagnosis, Encounter.icd10_code).where(Encounter.patient_id == patient_id)
    ).all()
    return [id_ for id_, diagnosis, code in rows if diagnosis or code]


def _index_parts(session: Session, patient_id: int, kinds: Iterable[str]) -> list[sa.Select]:
    """One ``SELECT rank, id`` per kind of entry of the patient's record."""
    parts = []
    for kind in kinds:
        rank = sa.literal(_RANK[kind]).label("rank")
        if kind == "patient":
            parts.append(sa.select(rank, PatientProfile.user_id.label("id")).where(PatientProfile.user_id == patient_id))
        elif kind == "practitioner":
            parts.append(sa.select(rank, Appointment.doctor_id).where(Appointment.patient_id == patient_id).distinct())
        elif kind == "organization":
            parts.append(sa.select(rank, Appointment.department_id).where(Appointment.patient_id == patient_id).distinct())
        elif kind == "appointment":
            parts.append(sa.select(rank, Appointment.id).where(Appointment.patient_id == patient_id))
        elif kind == "encounter":
            parts.append(sa.select(rank, Encounter.id).where(Encounter.patient_id == patient_id))
        elif kind == "problem":
            parts.append(sa.select(rank, Problem.id).where(Problem.patient_id == patient_id))
        elif kind == "diagnosis":
            ids = _diagnosed_encounters(session, patient_id)
            if ids:
                parts.append(sa.select(rank, Encounter.id).where(Encounter.id.in_(ids)))
        elif kind == "allergy":
            parts.append(sa.select(rank, Allergy.id).where(Allergy.patient_id == patient_id))
        elif kind.startswith("vital:"):
            column = getattr(Encounter, _VITAL_BY_KEY[kind.removeprefix("vital:")].column)
            parts.append(sa.select(rank, Encounter.id).where(Encounter.patient_id == patient_id, column.is_not(None)))
        elif kind in ("lab", "report"):
            parts.append(sa.select(rank, LabOrder.id).join(LabResult, LabResult.order_id == LabOrder.id)
                         .where(LabOrder.patient_id == patient_id, _COMPLETED_LAB))
        elif kind == "request":
            parts.append(sa.select(rank, PrescriptionItem.id)
                         .join(Prescription, Prescription.id == PrescriptionItem.prescription_id)
                         .where(Prescription.patient_id == patient_id))
        elif kind == "dispense":
            parts.append(sa.select(rank, Dispensation.id)
                         .join(Prescription, Prescription.id == Dispensation.prescription_id)
                         .where(Prescription.patient_id == patient_id))
        elif kind == "invoice":
            parts.append(sa.select(rank, Invoice.id).where(Invoice.patient_id == patient_id))
        elif kind == "immunization":
            parts.append(sa.select(rank, Immunization.id).where(Immunization.patient_id == patient_id))
        elif kind == "procedure":
            parts.append(sa.select(rank, Procedure.id).where(Procedure.patient_id == patient_id))
    return parts


def _index_page(session: Session, patient_id: int, kinds: list[str], offset: int, count: int) -> tuple[int, list[tuple[str, int]]]:
    parts = _index_parts(session, patient_id, kinds)
    if not parts:
        return 0, []
    union = sa.union_all(*parts).subquery("record")
    total = session.execute(sa.select(sa.func.count()).select_from(union)).scalar_one()
    keys = session.execute(
        sa.select(union.c.rank, union.c.id).order_by(union.c.rank, union.c.id).offset(offset).limit(count)
    ).all()
    return total, [(_KINDS[rank][0], id_) for rank, id_ in keys]


def _names(session: Session, ids: Iterable[int]) -> dict[int, str]:
    ids = set(ids)
    if not ids:
        return {}
    return dict(session.execute(sa.select(User.id, User.full_name).where(User.id.in_(ids))).all())


def _build(session: Session, wanted: dict[str, list[int]], base_url: str, *, for_patient: bool = False
           ) -> dict[tuple[str, int], dict]:
    """The resources of the given (kind, ids), each fetched with one query per kind.

    Args:
        for_patient: built for the patient's own eyes: a lab result held for the ordering
            doctor's review shows as registered, without its value (and without its report).
    """
    built: dict[tuple[str, int], dict] = {}
    if ids := wanted.get("patient"):
        for user, profile in session.execute(sa.select(User, PatientProfile).join(PatientProfile, PatientProfile.user_id == User.id)
                                             .where(User.id.in_(ids))):
            built[("patient", user.id)] = patient_resource(user, profile)
    if ids := wanted.get("practitioner"):
        for user, profile in session.execute(sa.select(User, DoctorProfile).outerjoin(DoctorProfile, DoctorProfile.user_id == User.id)
                                             .where(User.id.in_(ids), User.role == Role.DOCTOR.value)):
            built[("practitioner", user.id)] = practitioner_resource(user, profile)
    if ids := wanted.get("organization"):
        for department in session.execute(sa.select(Department).where(Department.id.in_(ids))).scalars():
            built[("organization", department.id)] = organization_resource(department)
    if ids := wanted.get("appointment"):
        rows = list(session.execute(sa.select(Appointment).where(Appointment.id.in_(ids))).scalars())
        names = _names(session, [a.doctor_id for a in rows] + [a.patient_id for a in rows])
        for a in rows:
            built[("appointment", a.id)] = appointment_resource(a, names.get(a.doctor_id, ""), names.get(a.patient_id, ""))
    encounter_ids = set()
    for kind in ("encounter", "diagnosis", *(f"vital:{v.key}" for v in VITALS)):
        encounter_ids.update(wanted.get(kind, []))
    if encounter_ids:
        rows = session.execute(sa.select(Encounter, Appointment).join(Appointment, Appointment.id == Encounter.appointment_id)
                               .where(Encounter.id.in_(encounter_ids))).all()
        names = _names(session, [e.doctor_id for e, _ in rows])
        for encounter, appointment in rows:
            if encounter.id in wanted.get("encounter", []):
                built[("encounter", encounter.id)] = encounter_resource(encounter, appointment, names.get(encounter.doctor_id, ""))
            if encounter.id in wanted.get("diagnosis", []) and (encounter.diagnosis or encounter.icd10_code):
                built[("diagnosis", encounter.id)] = diagnosis_condition(encounter)
            for vital in VITALS:
                if encounter.id in wanted.get(f"vital:{vital.key}", []) and getattr(encounter, vital.column) is not None:
                    built[(f"vital:{vital.key}", encounter.id)] = vital_observation(encounter, vital)
    if ids := wanted.get("problem"):
        for problem in session.execute(sa.select(Problem).where(Problem.id.in_(ids))).scalars():
            built[("problem", problem.id)] = problem_condition(problem)
    if ids := wanted.get("allergy"):
        for allergy in session.execute(sa.select(Allergy).where(Allergy.id.in_(ids))).scalars():
            built[("allergy", allergy.id)] = allergy_resource(allergy)
    lab_ids = set(wanted.get("lab", [])) | set(wanted.get("report", []))
    if lab_ids:
        rows = session.execute(
            sa.select(LabOrder, LabResult, LabTest, LabReportFile)
            .join(LabResult, LabResult.order_id == LabOrder.id).join(LabTest, LabTest.id == LabOrder.test_id)
            .outerjoin(LabReportFile, LabReportFile.order_id == LabOrder.id)
            .where(LabOrder.id.in_(lab_ids), _COMPLETED_LAB)
        ).all()
        for order, result, test, report in rows:
            if for_patient and result.released_at is None:
                if order.id in wanted.get("lab", []):
                    built[("lab", order.id)] = held_lab_observation(order, result, test)
                continue
            if order.id in wanted.get("lab", []):
                built[("lab", order.id)] = lab_observation(order, result, test)
            if order.id in wanted.get("report", []):
                built[("report", order.id)] = diagnostic_report(order, result, test, report, base_url)
    if ids := wanted.get("request"):
        rows = session.execute(
            sa.select(PrescriptionItem, Prescription, Medicine)
            .join(Prescription, Prescription.id == PrescriptionItem.prescription_id)
            .join(Medicine, Medicine.id == PrescriptionItem.medicine_id).where(PrescriptionItem.id.in_(ids))
        ).all()
        names = _names(session, [p.doctor_id for _, p, _ in rows])
        for item, prescription, medicine in rows:
            built[("request", item.id)] = medication_request(item, prescription, medicine, names.get(prescription.doctor_id, ""))
    if ids := wanted.get("dispense"):
        rows = session.execute(
            sa.select(Dispensation, PrescriptionItem, Prescription, Medicine)
            .join(PrescriptionItem, PrescriptionItem.id == Dispensation.prescription_item_id)
            .join(Prescription, Prescription.id == Dispensation.prescription_id)
            .join(Medicine, Medicine.id == PrescriptionItem.medicine_id).where(Dispensation.id.in_(ids))
        ).all()
        for dispensation, item, prescription, medicine in rows:
            built[("dispense", dispensation.id)] = medication_dispense(dispensation, item, prescription, medicine)
    if ids := wanted.get("invoice"):
        lines: dict[int, list[InvoiceLine]] = {}
        for line in session.execute(sa.select(InvoiceLine).where(InvoiceLine.invoice_id.in_(ids))
                                    .order_by(InvoiceLine.service_at, InvoiceLine.id)).scalars():
            lines.setdefault(line.invoice_id, []).append(line)
        for invoice in session.execute(sa.select(Invoice).where(Invoice.id.in_(ids))).scalars():
            built[("invoice", invoice.id)] = invoice_resource(invoice, lines.get(invoice.id, []))
    if ids := wanted.get("immunization"):
        for immunization in session.execute(sa.select(Immunization).where(Immunization.id.in_(ids))).scalars():
            built[("immunization", immunization.id)] = immunization_resource(immunization)
    if ids := wanted.get("procedure"):
        for procedure in session.execute(sa.select(Procedure).where(Procedure.id.in_(ids))).scalars():
            built[("procedure", procedure.id)] = procedure_resource(procedure)
    return built


# --- ids, reads, searches, bundles -------------------------------------------------------------


_ID = re.compile(r"^(?:(?P<prefix>[a-z0-9]+(?:-[a-z]+)*)-)?(?P<number>[0-9]{1,10})$")
_PREFIXED = {
    ("Condition", "problem"): "problem", ("Condition", "encounter"): "diagnosis",
    ("Observation", "lab"): "lab", **{("Observation", v.key): f"vital:{v.key}" for v in VITALS},
}


def parse_resource_id(resource_type: str, resource_id: str) -> tuple[str, int] | None:
    """The (kind, table id) a FHIR id names, or None for an id this server never gives out."""
    match = _ID.match(str(resource_id or ""))
    if resource_type not in RESOURCE_TYPES or match is None:
        return None
    number = parse_id(match["number"])
    if number is None:
        return None
    prefix = match["prefix"]
    if prefix is None:
        kinds = [kind for kind, type_ in _KINDS if type_ == resource_type]
        return (kinds[0], number) if len(kinds) == 1 else None
    kind = _PREFIXED.get((resource_type, prefix))
    return (kind, number) if kind else None


def resource_patient(session: Session, kind: str, id_: int) -> int | None:
    """The patient a resource belongs to (None for the shared Practitioner and Organization)."""
    model_column = {
        "patient": PatientProfile.user_id, "appointment": Appointment.patient_id, "encounter": Encounter.patient_id,
        "diagnosis": Encounter.patient_id, "problem": Problem.patient_id, "allergy": Allergy.patient_id,
        "lab": LabOrder.patient_id, "report": LabOrder.patient_id, "invoice": Invoice.patient_id,
        "immunization": Immunization.patient_id, "procedure": Procedure.patient_id,
        **{f"vital:{v.key}": Encounter.patient_id for v in VITALS},
    }
    if kind in model_column:
        column = model_column[kind]
        key = column.class_.__table__.primary_key.columns.values()[0]
        return session.execute(sa.select(column).where(key == id_)).scalar_one_or_none()
    if kind == "request":
        return session.execute(sa.select(Prescription.patient_id).join(PrescriptionItem, PrescriptionItem.prescription_id == Prescription.id)
                               .where(PrescriptionItem.id == id_)).scalar_one_or_none()
    if kind == "dispense":
        return session.execute(sa.select(Prescription.patient_id).join(Dispensation, Dispensation.prescription_id == Prescription.id)
                               .where(Dispensation.id == id_)).scalar_one_or_none()
    return None


def build_resource(session: Session, kind: str, id_: int, base_url: str) -> dict | None:
    """One resource, or None when no row (or no completed result) stands behind the id."""
    return _build(session, {kind: [id_]}, base_url).get((kind, id_))


def shared_resource_ids(session: Session, resource_type: str, offset: int, count: int) -> tuple[int, list[tuple[str, int]]]:
    """A page of every Practitioner (the doctors) or Organization (the departments)."""
    if resource_type == "Practitioner":
        query = sa.select(User.id).where(User.role == Role.DOCTOR.value)
        kind = "practitioner"
    else:
        query = sa.select(Department.id)
        kind = "organization"
    total = session.execute(sa.select(sa.func.count()).select_from(query.subquery())).scalar_one()
    ids = session.execute(query.order_by(query.selected_columns[0]).offset(offset).limit(count)).scalars()
    return total, [(kind, id_) for id_ in ids]


def patient_entries(session: Session, patient_id: int, resource_type: str | None, offset: int, count: int
                    ) -> tuple[int, list[tuple[str, int]]]:
    """A page of the patient's record: all of it (``resource_type`` None), or of one type."""
    kinds = [kind for kind, type_ in _KINDS if resource_type in (None, type_)]
    return _index_page(session, patient_id, kinds, offset, count)


def paging(count: object, offset: object) -> tuple[int, int]:
    """``_count`` and ``_offset`` as a client sent them, checked."""
    def number(value: object, default: int, label: str) -> int:
        if value in (None, ""):
            return default
        text = str(value).strip()
        if not (text.isascii() and text.isdigit() and len(text) <= 9):
            raise ValidationError(f"{label} must be a whole number.")
        return int(text)

    return max(1, min(number(count, DEFAULT_COUNT, "_count"), MAX_COUNT)), number(offset, 0, "_offset")


def bundle(session: Session, keys: list[tuple[str, int]], total: int, *, base_url: str, self_url: str,
           offset: int, count: int, for_patient: bool = False) -> dict:
    """A searchset Bundle of the resources behind ``keys``, with self, first, previous and next links."""
    wanted: dict[str, list[int]] = {}
    for kind, id_ in keys:
        wanted.setdefault(kind, []).append(id_)
    built = _build(session, wanted, base_url, for_patient=for_patient)
    entries = []
    for kind, id_ in keys:
        resource = built.get((kind, id_))
        if resource is not None:
            entries.append({"fullUrl": f"{base_url}/{resource['resourceType']}/{resource['id']}",
                            "resource": resource, "search": {"mode": "match"}})

    def link(relation: str, at: int) -> dict:
        separator = "&" if "?" in self_url else "?"
        return {"relation": relation, "url": f"{self_url}{separator}_count={count}&_offset={at}"}

    links = [link("self", offset), link("first", 0)]
    if offset > 0:
        links.append(link("previous", max(0, offset - count)))
    if offset + count < total:
        links.append(link("next", offset + count))
    return _bundle({"resourceType": "Bundle", "type": "searchset", "timestamp": _instant(utcnow()), "total": total,
                    "link": links, "entry": entries})


def _bundle(data: dict) -> dict:
    """A Bundle of resources each validated already: the envelope is validated on its own."""
    envelope = {**data, "entry": [{k: v for k, v in e.items() if k != "resource"} for e in data["entry"]]}
    validated(envelope)
    return _drop_empty(data)


def whole_record(session: Session, patient_id: int, *, base_url: str, for_patient: bool = False) -> dict:
    """Every resource of the patient in one collection Bundle (the portal's export; ``for_patient``
    leaves out the values of results held for the doctor's review)."""
    total, keys = patient_entries(session, patient_id, None, 0, 2**31 - 1)
    page = bundle(session, keys, total, base_url=base_url, self_url=f"{base_url}/Patient/{patient_id}/$everything",
                  offset=0, count=max(total, 1), for_patient=for_patient)
    return _bundle({"resourceType": "Bundle", "type": "collection", "timestamp": page["timestamp"],
                    "entry": [{"fullUrl": e["fullUrl"], "resource": e["resource"]} for e in page["entry"]]})


def capability_statement(base_url: str) -> dict:
    """What this server offers: read and search by patient for each type, ``$everything``."""
    def rest_resource(resource_type: str) -> dict:
        search = [{"name": "_count", "type": "number"}, {"name": "_offset", "type": "number"}]
        if resource_type not in ("Practitioner", "Organization"):
            search.insert(0, {"name": "patient", "type": "reference",
                              "documentation": "The patient the resources belong to (required)"})
        resource = {"type": resource_type, "interaction": [{"code": "read"}, {"code": "search-type"}],
                    "searchParam": search}
        if resource_type == "Patient":
            resource["operation"] = [{"name": "everything",
                                      "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything"}]
        return resource

    return validated({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": _instant(utcnow()),
        "publisher": settings.HOSPITAL_NAME,
        "kind": "instance",
        "software": {"name": "HMS", "version": "0.1.0"},
        "implementation": {"description": f"{settings.HOSPITAL_NAME} FHIR API", "url": base_url},
        "fhirVersion": FHIR_VERSION,
        "format": ["json"],
        "rest": [{
            "mode": "server",
            "security": {
                "service": [_concept("Bearer token issued by the hospital's administrator",
                                     system="http://terminology.hl7.org/CodeSystem/restful-security-service",
                                     code="OAuth", display="OAuth")],
                "description": "Send 'Authorization: Bearer <token>'. A token reads one patient's record or all.",
            },
            "resource": [rest_resource(t) for t in RESOURCE_TYPES]
            + [{"type": "Binary", "interaction": [{"code": "read"}]}],
        }],
    })


# --- the patient's own export -------------------------------------------------------------------


def export_my_record(*, session: Session, actor: Actor) -> dict:
    """The patient's whole record as a FHIR Bundle (collection), audited like a chart view."""
    require(session, actor, Permission.RECORD_READ_OWN, action="record.export")
    if actor.role != Role.PATIENT:
        audit.deny(session, actor, "record.export", "Only patients can export their own record.")
    if session.get(PatientProfile, actor.user_id) is None:
        raise NotFound("Your patient record was not found.")
    record = whole_record(session, actor.user_id, base_url=f"{settings.PUBLIC_URL}/fhir", for_patient=True)
    audit.record(session, actor, "record.export", entity_type="patient", entity_id=actor.user_id,
                 patient_id=actor.user_id, detail=f"FHIR bundle, {len(record.get('entry', []))} resources")
    session.commit()
    return record


def typed(record: dict) -> dict[str, list[dict]]:
    """The resources of a Bundle grouped by type (for summaries and tests)."""
    out: dict[str, list[dict]] = {}
    for entry in record.get("entry", []):
        out.setdefault(entry["resource"]["resourceType"], []).append(entry["resource"])
    return out

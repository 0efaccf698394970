"""FHIR R4 data shaped like Synthea's, made by the suite itself (no downloaded sample files).

A patient's record is a Patient and a number of encounters; each encounter carries vital signs
(a blood-pressure panel, pulse, temperature, weight, height, SpO2, and a BMI and a respiratory
rate HMS does not keep), two laboratory values, a condition, a prescription, an immunization,
a procedure, a diagnostic report with its text, a clinical note as a DocumentReference, and
the Claim and ExplanationOfBenefit that HMS does not model. Resources are linked the way
Synthea links them: ``urn:uuid:`` full URLs, and conditional references to the practitioner
(``Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|…``) and the organization, which
Synthea writes in bundles of their own (``practitioner_bundle``).

Everything is deterministic from the patient's number, so a test can build the same bundle
twice, or the same bundle with one resource edited.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

NPI = "http://hl7.org/fhir/sid/us-npi"
ORG_ID = "https://github.com/synthetichealth/synthea"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
CVX = "http://hl7.org/fhir/sid/cvx"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
VITAL = [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                      "code": "vital-signs", "display": "vital-signs"}]}]
LAB = [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                    "code": "laboratory", "display": "laboratory"}]}]
SURVEY = [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "survey"}]}]
_NS = uuid.UUID("5b0f6c1e-7d43-4a5e-9a61-0c3b6f0e2a11")
PRACTITIONER_NPIS = ("9999912345", "9999954321")


def uid(*parts: object) -> str:
    return str(uuid.uuid5(_NS, "/".join(str(p) for p in parts)))


def _entry(resource: dict, transaction: bool) -> dict:
    entry = {"fullUrl": f"urn:uuid:{resource['id']}", "resource": resource}
    if transaction:
        entry["request"] = {"method": "POST", "url": resource["resourceType"]}
    return entry


def _concept(system: str, code: str, display: str) -> dict:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


def _quantity(value: float, unit: str) -> dict:
    return {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}


def _text(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def patient_resources(n: int, *, encounters: int = 3, start: datetime | None = None) -> list[dict]:
    """One patient's resources, Synthea-shaped: 1 + 2 + ``encounters`` × 19 of them."""
    pid = uid("patient", n)
    patient_ref = {"reference": f"urn:uuid:{pid}"}
    resources: list[dict] = [{
        "resourceType": "Patient", "id": pid,
        "meta": {"profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"]},
        "identifier": [
            {"system": ORG_ID, "value": pid},
            {"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]},
             "system": "http://hospital.smarthealthit.org", "value": f"SYN-{n:06d}"},
        ],
        "name": [{"use": "official", "family": f"Family{n}", "given": [f"Given{n}"], "prefix": ["Ms."]}],
        "telecom": [{"system": "phone", "value": f"555-01{n % 100:02d}", "use": "home"}],
        "gender": "female" if n % 2 else "male",
        "birthDate": f"{1950 + n % 50}-0{1 + n % 9}-1{n % 10}",
        "address": [{"line": [f"{n} Main Street"], "city": "Springfield", "state": "MA", "postalCode": "01101"}],
    }]
    resources.append({
        "resourceType": "AllergyIntolerance", "id": uid("allergy", n),
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                                       "code": "active"}]},
        "type": "allergy", "category": ["food"], "criticality": "low",
        "code": _concept(SNOMED, "91935009", "Allergy to peanuts"),
        "patient": patient_ref, "recordedDate": "2010-03-01T10:00:00-05:00",
        "reaction": [{"manifestation": [_concept(SNOMED, "271807003", "Skin rash")], "severity": "mild"}],
    })
    resources.append({  # HMS does not model it: counted as skipped
        "resourceType": "CareTeam", "id": uid("careteam", n), "status": "active", "subject": patient_ref,
    })
    base = start or datetime(2020, 1, 6, 9, 0, tzinfo=UTC)
    for k in range(encounters):
        resources.extend(_encounter(n, k, base + timedelta(days=40 * k + n % 7), patient_ref))
    return resources


def _encounter(n: int, k: int, at: datetime, patient_ref: dict) -> list[dict]:
    eid = uid("encounter", n, k)
    enc = {"reference": f"urn:uuid:{eid}"}
    npi = PRACTITIONER_NPIS[(n + k) % len(PRACTITIONER_NPIS)]
    when = at.isoformat()
    end = (at + timedelta(minutes=30)).isoformat()
    out: list[dict] = [{
        "resourceType": "Encounter", "id": eid, "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "type": [_concept(SNOMED, "185349003", "Encounter for check up (procedure)")],
        "subject": patient_ref,
        "participant": [{"individual": {"reference": f"Practitioner?identifier={NPI}|{npi}",
                                        "display": f"Dr. Practitioner {npi[-3:]}"}}],
        "period": {"start": when, "end": end},
        "reasonCode": [_concept(SNOMED, "444814009", "Viral sinusitis (disorder)")] if k % 2 else [],
        "serviceProvider": {"reference": f"Organization?identifier={ORG_ID}|org-1", "display": "Springfield Clinic"},
    }]

    def obs(name: str, category: list, code: str, display: str, **value: object) -> dict:
        return {"resourceType": "Observation", "id": uid(name, n, k), "status": "final", "category": category,
                "code": _concept(LOINC, code, display), "subject": patient_ref, "encounter": enc,
                "effectiveDateTime": when, "issued": when, **value}

    out.append(obs("bp", VITAL, "85354-9", "Blood pressure panel", component=[
        {"code": _concept(LOINC, "8480-6", "Systolic blood pressure"), "valueQuantity": _quantity(118 + k, "mm[Hg]")},
        {"code": _concept(LOINC, "8462-4", "Diastolic blood pressure"), "valueQuantity": _quantity(76 + k, "mm[Hg]")},
    ]))
    out.append(obs("pulse", VITAL, "8867-4", "Heart rate", valueQuantity=_quantity(70 + k, "/min")))
    out.append(obs("temp", VITAL, "8310-5", "Body temperature", valueQuantity=_quantity(36.8, "Cel")))
    out.append(obs("weight", VITAL, "29463-7", "Body Weight", valueQuantity=_quantity(70.5 + k, "kg")))
    out.append(obs("height", VITAL, "8302-2", "Body Height", valueQuantity=_quantity(170.2, "cm")))
    out.append(obs("spo2", VITAL, "59408-5", "Oxygen saturation", valueQuantity=_quantity(97, "%")))
    out.append(obs("bmi", VITAL, "39156-5", "Body mass index", valueQuantity=_quantity(24.3, "kg/m2")))
    out.append(obs("glucose", LAB, "2339-0", "Glucose [Mass/volume] in Blood", valueQuantity=_quantity(95.0 + k, "mg/dL"),
                   referenceRange=[{"low": _quantity(70, "mg/dL"), "high": _quantity(100, "mg/dL")}]))
    out.append(obs("hgb", LAB, "718-7", "Hemoglobin [Mass/volume] in Blood", valueQuantity=_quantity(13.5, "g/dL"),
                   interpretation=[{"coding": [{"code": "N"}]}]))
    out.append(obs("smoking", SURVEY, "72166-2", "Tobacco smoking status",
                   valueCodeableConcept=_concept(SNOMED, "266919005", "Never smoked tobacco")))
    out.append({
        "resourceType": "Condition", "id": uid("condition", n, k),
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                       "code": "resolved" if k % 2 else "active"}]},
        "verificationStatus": {"coding": [{"code": "confirmed"}]},
        "code": ({"coding": [{"system": SNOMED, "code": "444814009", "display": "Viral sinusitis (disorder)"},
                             {"system": ICD10, "code": "J01.90", "display": "Acute sinusitis, unspecified"}],
                  "text": "Viral sinusitis (disorder)"} if k % 2 else
                 _concept(SNOMED, "162864005", "Body mass index 30+ - obesity (finding)")),
        "subject": patient_ref, "encounter": enc, "onsetDateTime": when, "recordedDate": when,
        **({"abatementDateTime": end} if k % 2 else {}),
    })
    out.append({
        "resourceType": "MedicationRequest", "id": uid("medreq", n, k), "status": "stopped", "intent": "order",
        "medicationCodeableConcept": _concept(RXNORM, "313782", "Acetaminophen 325 MG Oral Tablet"),
        "subject": patient_ref, "encounter": enc, "authoredOn": when,
        "requester": {"reference": f"Practitioner?identifier={NPI}|{npi}", "display": f"Dr. Practitioner {npi[-3:]}"},
        "dosageInstruction": [{"sequence": 1, "timing": {"repeat": {"frequency": 4, "period": 1, "periodUnit": "d"}},
                               "asNeededBoolean": False,
                               "doseAndRate": [{"doseQuantity": {"value": 2, "unit": "tablets"}}]}],
        "dispenseRequest": {"quantity": {"value": 40}, "expectedSupplyDuration": {"value": 5, "unit": "days"}},
    })
    out.append({
        "resourceType": "Immunization", "id": uid("immunization", n, k), "status": "completed",
        "vaccineCode": _concept(CVX, "140", "Influenza, seasonal, injectable, preservative free"),
        "patient": patient_ref, "encounter": enc, "occurrenceDateTime": when, "primarySource": True,
    })
    out.append({
        "resourceType": "Procedure", "id": uid("procedure", n, k), "status": "completed",
        "code": _concept(SNOMED, "430193006", "Medication reconciliation (procedure)"),
        "subject": patient_ref, "encounter": enc, "performedPeriod": {"start": when, "end": end},
    })
    note = f"Patient {n} seen for a check-up (visit {k + 1}). Vitals stable. Plan: review in a year."
    out.append({
        "resourceType": "DiagnosticReport", "id": uid("report", n, k), "status": "final",
        "category": [{"coding": [{"system": LOINC, "code": "34117-2", "display": "History and physical note"}]}],
        "code": _concept(LOINC, "34117-2", "History and physical note"),
        "subject": patient_ref, "encounter": enc, "effectiveDateTime": when, "issued": when,
        "presentedForm": [{"contentType": "text/plain; charset=utf-8", "data": _text(note)}],
    })
    out.append({
        "resourceType": "DocumentReference", "id": uid("docref", n, k), "status": "current",
        "type": _concept(LOINC, "34117-2", "History and physical note"),
        "subject": patient_ref, "date": when, "description": f"Visit note {k + 1}",
        "content": [{"attachment": {"contentType": "text/plain; charset=utf-8", "data": _text(note)}}],
        "context": {"encounter": [enc], "period": {"start": when, "end": end}},
    })
    out.append({"resourceType": "Claim", "id": uid("claim", n, k), "status": "active", "use": "claim",
                "patient": patient_ref, "created": when})
    out.append({"resourceType": "ExplanationOfBenefit", "id": uid("eob", n, k), "status": "active",
                "use": "claim", "patient": patient_ref, "created": when})
    return out


def practitioner_resources() -> list[dict]:
    """The practitioners and the organization that Synthea writes in a bundle of their own."""
    out: list[dict] = [{
        "resourceType": "Organization", "id": uid("organization"), "active": True, "name": "Springfield Clinic",
        "identifier": [{"system": ORG_ID, "value": "org-1"}],
    }]
    for npi in PRACTITIONER_NPIS:
        out.append({"resourceType": "Practitioner", "id": uid("practitioner", npi), "active": True,
                    "identifier": [{"system": NPI, "value": npi}],
                    "name": [{"family": f"Practitioner{npi[-3:]}", "given": ["Pat"], "prefix": ["Dr."]}]})
    return out


def bundle(resources: list[dict], *, kind: str = "transaction") -> dict:
    return {"resourceType": "Bundle", "type": kind, "entry": [_entry(r, kind == "transaction") for r in resources]}


def patient_bundle(n: int, *, encounters: int = 3, kind: str = "transaction") -> dict:
    return bundle(patient_resources(n, encounters=encounters), kind=kind)


def practitioner_bundle() -> dict:
    return bundle(practitioner_resources(), kind="batch")


def write_json(path: Path, data: dict) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def write_ndjson(path: Path, resources: list[dict]) -> Path:
    """Resources one per line (pass them through ``literal_references`` first, as a bulk export has no full URLs)."""
    with path.open("w", encoding="utf-8") as handle:
        for resource in resources:
            handle.write(json.dumps(resource) + "\n")
    return path


def literal_references(resources: list[dict]) -> list[dict]:
    """The resources with every ``urn:uuid:`` reference made a literal ``Type/id`` one (bulk export style)."""
    types = {r["id"]: r["resourceType"] for r in resources}
    text = json.dumps(resources)
    for rid, rtype in types.items():
        text = text.replace(f'"urn:uuid:{rid}"', f'"{rtype}/{rid}"')
    return json.loads(text)


def write_patient_files(folder: Path, patients: int, *, encounters: int = 5, first: int = 0) -> Iterator[Path]:
    """One transaction Bundle per patient (as Synthea writes them) plus the practitioners' bundle,
    written one patient at a time: memory holds one patient, whatever ``patients`` is."""
    folder.mkdir(parents=True, exist_ok=True)
    yield write_json(folder / "practitionerInformation.json", practitioner_bundle())
    for n in range(first, first + patients):
        yield write_json(folder / f"patient_{n:06d}.json", patient_bundle(n, encounters=encounters))

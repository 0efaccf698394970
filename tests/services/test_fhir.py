"""The record as FHIR R4: every kind of resource validates against the ``fhir.resources`` models
and says what the database says; ``$everything`` pages; the patient's own export round-trips."""

from __future__ import annotations

from decimal import Decimal

import pytest
import sqlalchemy as sa
from fhir.resources.R4B.bundle import Bundle

from hms_app import settings
from hms_app.db.engine import session_scope
from hms_app.db.enums import Role
from hms_app.db.models import (
    Allergy,
    Appointment,
    Dispensation,
    Encounter,
    Invoice,
    LabOrder,
    LabReportFile,
    LabResult,
    PatientProfile,
    Prescription,
    PrescriptionItem,
    Problem,
)
from hms_app.services.core.errors import PermissionDenied, ValidationError
from hms_app.services.interop import fhir
from tests.services.appointment_helpers import call
from tests.services.fhir_helpers import Record, build_record
from tests.services.helpers import assert_refused, audit_events
from tests.services.lab_helpers import use_private_data_dir, with_reference_data

pytestmark = pytest.mark.db
BASE = "https://hms.example/fhir"


@pytest.fixture(autouse=True)
def _private_data(monkeypatch, tmp_path):
    yield from use_private_data_dir(monkeypatch, tmp_path)


@pytest.fixture
def hospital(seeded):
    return with_reference_data(seeded)


@pytest.fixture
def record(hospital, actors) -> Record:
    return build_record(hospital, actors, actors[Role.PATIENT].user_id)


def _whole(engine, patient_id: int) -> dict[str, list[dict]]:
    with session_scope(engine=engine) as s:
        return fhir.typed(fhir.whole_record(s, patient_id, base_url=BASE))


def _by_id(resources: list[dict]) -> dict[str, dict]:
    return {r["id"]: r for r in resources}


def _count(engine, query: sa.Select) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(query.subquery())).scalar_one()


def test_every_kind_of_resource_is_valid_fhir_and_says_what_the_database_says(hospital, record, actors):
    resources = _whole(hospital, record.patient_id)
    # Immunizations and procedures come only from imports: tests/services/test_fhir_import.py.
    assert set(resources) == set(fhir.RESOURCE_TYPES) - {"Immunization", "Procedure"}
    for kind, items in resources.items():
        model = fhir.get_fhir_model_class(kind)
        for item in items:
            model.model_validate(item)  # validated again from the JSON that leaves the server

    with session_scope(write=False, engine=hospital) as s:
        profile = s.get(PatientProfile, record.patient_id)
        encounter = s.get(Encounter, record.encounter_id)
        result = s.execute(sa.select(LabResult).where(LabResult.order_id == record.lab_order_id)).scalar_one()
        report = s.execute(sa.select(LabReportFile).where(LabReportFile.order_id == record.lab_order_id)).scalar_one()
        invoice = s.get(Invoice, record.invoice_id)
        appointment = s.get(Appointment, encounter.appointment_id)

    [patient] = resources["Patient"]
    assert patient["id"] == str(record.patient_id)
    assert patient["identifier"] == [{"use": "usual", "system": fhir.MRN_SYSTEM, "value": profile.mrn}]
    assert (patient["gender"], patient["birthDate"]) == ("female", profile.birth_date.isoformat())
    assert patient["name"][0]["text"] == actors[Role.PATIENT].full_name

    assert str(actors[Role.DOCTOR].user_id) in _by_id(resources["Practitioner"])
    assert str(appointment.department_id) in _by_id(resources["Organization"])
    assert _by_id(resources["Appointment"])[str(appointment.id)]["status"] == "booked"

    visit = _by_id(resources["Encounter"])[str(record.encounter_id)]
    assert visit["status"] == "in-progress"
    assert visit["subject"]["reference"] == f"Patient/{record.patient_id}"
    assert visit["diagnosis"][0]["condition"]["reference"] == f"Condition/encounter-{record.encounter_id}"

    conditions = _by_id(resources["Condition"])
    assert conditions[f"encounter-{record.encounter_id}"]["code"]["coding"][0]["code"] == "I10"
    assert conditions[f"encounter-{record.encounter_id}"]["code"]["text"] == "Essential hypertension"
    problem = conditions[f"problem-{record.problem_id}"]
    assert (problem["code"]["coding"][0]["code"], problem["code"]["text"]) == ("E11.9", "Type 2 diabetes mellitus")
    assert problem["clinicalStatus"]["coding"][0]["code"] == "active"

    allergy = _by_id(resources["AllergyIntolerance"])[str(record.allergy_id)]
    assert allergy["code"]["text"] == "Latex"
    assert allergy["reaction"][0] == {"manifestation": [{"text": "Contact dermatitis"}], "severity": "mild"}

    observations = _by_id(resources["Observation"])
    bp = observations[f"bp-{record.encounter_id}"]
    assert bp["code"]["coding"][0]["code"] == "85354-9"
    assert [(c["code"]["coding"][0]["code"], c["valueQuantity"]["value"]) for c in bp["component"]] == [
        ("8480-6", encounter.bp_systolic), ("8462-4", encounter.bp_diastolic)]
    assert observations[f"weight-{record.encounter_id}"]["valueQuantity"] == {
        "value": 80.5, "unit": "kg", "system": fhir.UCUM, "code": "kg"}
    for key in ("pulse", "temp", "height", "spo2"):
        assert observations[f"{key}-{record.encounter_id}"]["category"][0]["coding"][0]["code"] == "vital-signs"

    potassium = observations[f"lab-{record.lab_order_id}"]
    assert potassium["valueQuantity"]["value"] == result.value_numeric == 5.9
    assert potassium["referenceRange"][0]["low"]["value"] == result.range_low
    assert potassium["referenceRange"][0]["high"]["value"] == result.range_high
    assert result.flag == "high"
    assert potassium["interpretation"][0]["coding"][0]["code"] == "H"
    assert potassium["note"] == [{"text": "Repeat in a week"}]

    diagnostic = _by_id(resources["DiagnosticReport"])[str(record.lab_order_id)]
    assert diagnostic["result"] == [{"reference": f"Observation/lab-{record.lab_order_id}"}]
    assert diagnostic["presentedForm"][0] | {"creation": None} == {
        "contentType": "application/pdf", "url": f"{BASE}/Binary/lab-report-{record.lab_order_id}",
        "size": report.size_bytes, "title": "potassium.pdf", "creation": None}

    request = _by_id(resources["MedicationRequest"])[str(record.item_id)]
    assert request["status"] == "active"
    assert request["dispenseRequest"]["quantity"]["value"] == 28
    assert request["medicationCodeableConcept"]["text"].startswith("Atorvastatin")
    [dispensed] = resources["MedicationDispense"]
    assert dispensed["quantity"]["value"] == 14
    assert dispensed["authorizingPrescription"] == [{"reference": f"MedicationRequest/{record.item_id}"}]

    bill = _by_id(resources["Invoice"])[str(record.invoice_id)]
    assert bill["status"] == "issued"
    assert bill["identifier"][0]["value"] == invoice.number
    assert Decimal(str(bill["totalGross"]["value"])) == Decimal(invoice.total_cents) / 100
    assert len(bill["lineItem"]) == 2  # the lab test and the dispensed units


def test_a_low_and_a_normal_result_are_flagged_l_and_n(hospital, record, actors):
    from hms_app.services.laboratory import lab
    from tests.services.lab_helpers import order, running

    doctor, lab_staff = actors[Role.DOCTOR], actors[Role.LAB]
    low = running(hospital, lab_staff, order(hospital, doctor, record.encounter_id, "K"))
    call(hospital, lab.enter_result, actor=lab_staff, order_id=low, value="3.2")
    normal = running(hospital, lab_staff, order(hospital, doctor, record.encounter_id, "K"))
    call(hospital, lab.enter_result, actor=lab_staff, order_id=normal, value="4.2")
    observations = _by_id(_whole(hospital, record.patient_id)["Observation"])
    assert observations[f"lab-{low}"]["interpretation"][0]["coding"][0]["code"] == "L"
    assert observations[f"lab-{normal}"]["interpretation"][0]["coding"][0]["code"] == "N"


def test_the_export_round_trips_through_fhir_resources_with_the_databases_counts(hospital, record, actors):
    patient = actors[Role.PATIENT]
    exported = call(hospital, fhir.export_my_record, actor=patient)
    parsed = Bundle.model_validate(exported)
    assert parsed.type == "collection"
    counts: dict[str, int] = {}
    for entry in parsed.entry:
        counts[entry.resource.get_resource_type()] = counts.get(entry.resource.get_resource_type(), 0) + 1
        assert entry.fullUrl == f"{settings.PUBLIC_URL}/fhir/{entry.resource.get_resource_type()}/{entry.resource.id}"

    pid = record.patient_id
    encounters = sa.select(Encounter.id).where(Encounter.patient_id == pid)
    with session_scope(write=False, engine=hospital) as s:
        diagnosed = len(fhir._diagnosed_encounters(s, pid))
        vitals = sum(_count(hospital, encounters.where(getattr(Encounter, v.column).is_not(None))) for v in fhir.VITALS)
    completed_labs = sa.select(LabOrder.id).join(LabResult, LabResult.order_id == LabOrder.id).where(
        LabOrder.patient_id == pid, LabOrder.status == "completed")
    assert counts == {
        "Patient": 1,
        "Practitioner": _count(hospital, sa.select(Appointment.doctor_id).where(Appointment.patient_id == pid).distinct()),
        "Organization": _count(hospital, sa.select(Appointment.department_id).where(Appointment.patient_id == pid).distinct()),
        "Appointment": _count(hospital, sa.select(Appointment.id).where(Appointment.patient_id == pid)),
        "Encounter": _count(hospital, encounters),
        "Condition": _count(hospital, sa.select(Problem.id).where(Problem.patient_id == pid)) + diagnosed,
        "AllergyIntolerance": _count(hospital, sa.select(Allergy.id).where(Allergy.patient_id == pid)),
        "Observation": vitals + _count(hospital, completed_labs),
        "DiagnosticReport": _count(hospital, completed_labs),
        "MedicationRequest": _count(hospital, sa.select(PrescriptionItem.id).join(Prescription).where(Prescription.patient_id == pid)),
        "MedicationDispense": _count(hospital, sa.select(Dispensation.id).join(Prescription).where(Prescription.patient_id == pid)),
        "Invoice": _count(hospital, sa.select(Invoice.id).where(Invoice.patient_id == pid)),
    }
    [event] = audit_events(hospital, action="record.export")
    assert (event.actor_id, event.patient_id, str(event.outcome)) == (patient.user_id, pid, "success")
    assert event.detail == f"FHIR bundle, {len(parsed.entry)} resources"


def test_another_patients_data_never_enters_the_export(hospital, record, actors):
    from tests.conftest import login_as
    from tests.services.clinical_helpers import STRANGER_EMAIL

    stranger = login_as(hospital, STRANGER_EMAIL)
    exported = call(hospital, fhir.export_my_record, actor=stranger)
    patients = {e["resource"]["subject"]["reference"] for e in exported["entry"] if "subject" in e["resource"]}
    patients |= {e["resource"]["patient"]["reference"] for e in exported["entry"] if "patient" in e["resource"]}
    assert patients <= {f"Patient/{stranger.user_id}"}
    assert f"Patient/{record.patient_id}" not in str(exported)


@pytest.mark.parametrize("role", [Role.DOCTOR, Role.ADMIN, Role.LAB, Role.PHARMACY, Role.ACCOUNTS])
def test_only_a_patient_exports_a_record(hospital, actors, role):
    actor = actors[role]
    assert_refused(hospital, actor, "record.export",
                   lambda s: fhir.export_my_record(session=s, actor=actor), error=PermissionDenied)


def test_everything_pages_through_a_long_record_without_gaps_or_repeats(hospital, record, actors):
    with session_scope(engine=hospital) as s:
        s.add_all(Allergy(patient_id=record.patient_id, substance=f"Substance {n}", recorded_by=actors[Role.DOCTOR].user_id)
                  for n in range(230))
        s.commit()
    with session_scope(write=False, engine=hospital) as s:
        total, everything = fhir.patient_entries(s, record.patient_id, None, 0, 10_000)
    assert total == len(everything) > 230

    seen, offset, pages = [], 0, 0
    url = f"{BASE}/Patient/{record.patient_id}/$everything"
    while True:
        with session_scope(write=False, engine=hospital) as s:
            count, offset = fhir.paging("100", str(offset))
            _, keys = fhir.patient_entries(s, record.patient_id, None, offset, count)
            page = fhir.bundle(s, keys, total, base_url=BASE, self_url=url, offset=offset, count=count)
        pages += 1
        assert page["total"] == total
        assert len(page["entry"]) == min(100, total - offset)
        seen += [f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in page["entry"]]
        links = {link["relation"]: link["url"] for link in page["link"]}
        if "next" not in links:
            break
        assert links["next"] == f"{url}?_count=100&_offset={offset + 100}"
        offset += 100
    assert pages == -(-total // 100)
    assert len(seen) == len(set(seen)) == total
    assert seen[0] == f"Patient/{record.patient_id}"


def test_search_by_type_returns_only_that_type(hospital, record):
    with session_scope(write=False, engine=hospital) as s:
        total, keys = fhir.patient_entries(s, record.patient_id, "Condition", 0, 50)
        page = fhir.bundle(s, keys, total, base_url=BASE, self_url=f"{BASE}/Condition?patient={record.patient_id}",
                           offset=0, count=50)
    assert {e["resource"]["resourceType"] for e in page["entry"]} == {"Condition"}
    assert page["total"] == len(page["entry"]) >= 2


@pytest.mark.parametrize(("resource_type", "resource_id", "expected"), [
    ("Patient", "12", ("patient", 12)),
    ("Condition", "problem-3", ("problem", 3)),
    ("Condition", "encounter-4", ("diagnosis", 4)),
    ("Condition", "4", None),
    ("Observation", "bp-9", ("vital:bp", 9)),
    ("Observation", "lab-9", ("lab", 9)),
    ("Observation", "9", None),
    ("DiagnosticReport", "9", ("report", 9)),
    ("Patient", "0", None),
    ("Patient", "99999999999", None),
    ("Patient", "1.5", None),
    ("Patient", "../1", None),
    ("Binary", "1", None),
    ("Secret", "1", None),
])
def test_resource_ids_parse_only_as_this_server_gives_them_out(resource_type, resource_id, expected):
    assert fhir.parse_resource_id(resource_type, resource_id) == expected


@pytest.mark.parametrize(("count", "offset", "expected"), [
    (None, None, (fhir.DEFAULT_COUNT, 0)), ("0", "5", (1, 5)), ("100000", "", (fhir.MAX_COUNT, 0)),
])
def test_paging_parameters_are_bounded(count, offset, expected):
    assert fhir.paging(count, offset) == expected


@pytest.mark.parametrize(("count", "offset"), [("-1", "0"), ("ten", "0"), ("10", "1e3"), ("10", "9999999999")])
def test_paging_parameters_must_be_whole_numbers(count, offset):
    with pytest.raises(ValidationError):
        fhir.paging(count, offset)


def test_the_capability_statement_is_valid_and_lists_every_type():
    statement = fhir.capability_statement(BASE)
    assert statement["fhirVersion"] == "4.0.1"
    types = [r["type"] for r in statement["rest"][0]["resource"]]
    assert types == [*fhir.RESOURCE_TYPES, "Binary"]


def test_the_pdf_summary_shows_the_record_and_is_audited(hospital, record, actors):
    from hms_app.services.interop import record_summary
    from tests.services.lab_helpers import pdf_text

    patient = actors[Role.PATIENT]
    download = call(hospital, record_summary.my_record_pdf, actor=patient)
    assert download.content_type == "application/pdf"
    assert download.data.startswith(b"%PDF-")
    text = pdf_text(download.data)
    with session_scope(write=False, engine=hospital) as s:
        mrn = s.get(PatientProfile, record.patient_id).mrn
    assert download.file_name == f"health-record-{mrn}.pdf"
    for expected in (patient.full_name, mrn, "Latex", "Contact dermatitis", "Type 2 diabetes mellitus (E11.9)",
                     "Essential hypertension (I10)", "5.9", "High", "Atorvastatin", "14 of 28", "141 mmHg / 91 mmHg"):
        assert expected in text, expected
    [event] = audit_events(hospital, action="record.summary")
    assert (event.actor_id, event.patient_id) == (patient.user_id, record.patient_id)


@pytest.mark.parametrize("role", [Role.DOCTOR, Role.ADMIN])
def test_only_a_patient_downloads_a_summary(hospital, actors, role):
    from hms_app.services.interop import record_summary

    actor = actors[role]
    assert_refused(hospital, actor, "record.summary",
                   lambda s: record_summary.my_record_pdf(session=s, actor=actor), error=PermissionDenied)

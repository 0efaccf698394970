"""Importing FHIR R4 (Synthea-shaped bundles the suite makes itself: tests/fhir_bundles.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from hms_app import settings
from hms_app.db.engine import session_scope
from hms_app.db.enums import DEFAULT_ROLE_PERMISSIONS, LineOutcome, Role
from hms_app.db.models import (
    AuditEvent,
    Document,
    EmailOutbox,
    Encounter,
    Immunization,
    LabResult,
    Medicine,
    PatientProfile,
    Prescription,
    Procedure,
    SourceRecord,
    User,
)
from hms_app.services.care import clinical, documents
from hms_app.services.core.actor import Actor
from hms_app.services.core.errors import PermissionDenied
from hms_app.services.golive.fhir_import import import_fhir
from hms_app.services.golive.kinds import ImportCancelled
from hms_app.services.interop import fhir
from hms_app.services.messaging import mail
from tests import fhir_bundles as fb

pytestmark = pytest.mark.db

PER_PATIENT = 1 + 2 + 3 * 19  # Patient, allergy, care team, three encounters of 19 resources


def _source(tmp_path: Path, patients: int = 2, *, kind: str = "transaction") -> Path:
    folder = tmp_path / "synthea"
    folder.mkdir(exist_ok=True)
    fb.write_json(folder / "practitionerInformation.json", fb.practitioner_bundle())
    fb.write_json(folder / "patients.json", fb.bundle([r for n in range(patients) for r in fb.patient_resources(n)],
                                                      kind=kind))
    return folder


def _counts(engine) -> dict[str, int]:
    with session_scope(engine=engine, write=False) as s:
        return {model.__tablename__: s.execute(sa.select(sa.func.count()).select_from(model)).scalar_one()
                for model in (User, PatientProfile, Encounter, Immunization, Procedure, Document, LabResult,
                              Prescription, SourceRecord, AuditEvent)}


def _imported_patient(engine, n: int) -> int:
    with session_scope(engine=engine, write=False) as s:
        return s.get(SourceRecord, ("fhir", "Patient", fb.uid("patient", n))).entity_id


def test_a_first_import_creates_each_resource_and_counts_what_hms_does_not_keep(seeded, actors, tmp_path):
    report = import_fhir(engine=seeded, actor=actors[Role.ADMIN], path=_source(tmp_path), job_id=7)
    assert report.committed
    assert report.failed == 0, report.lines
    # Per patient: 1 + allergy + 3 x (encounter, 6 vitals, 2 labs, condition, prescription,
    # immunization, procedure, report, note) = 47; plus the two practitioners.
    assert report.created == 2 * 47 + 2
    assert report.skipped_by_type == {
        "Organization": 1, "CareTeam": 2, "Claim": 6, "ExplanationOfBenefit": 6,
        "Observation (survey)": 6, "Observation (vital signs HMS does not keep)": 6,
    }
    assert report.skipped == sum(report.skipped_by_type.values())
    assert report.created + report.skipped == 2 * PER_PATIENT + 3
    assert "imported 2 patients" in report.message
    with session_scope(engine=seeded, write=False) as s:
        patient = s.get(PatientProfile, _imported_patient(seeded, 1))
        user = s.get(User, patient.user_id)
        assert user.full_name == "Ms. Given1 Family1"
        assert patient.mrn == "SYN-000001"
        assert user.email.endswith("@imported.invalid")
        assert user.password_hash == ""
        assert str(patient.sex) == "female"
        assert patient.address.startswith("1 Main Street")
        encounters = s.execute(sa.select(Encounter).where(Encounter.patient_id == patient.user_id)).scalars().all()
        assert len(encounters) == 3
        assert all(e.bp_systolic and e.spo2 == 97 for e in encounters)
        outside = s.get(User, encounters[0].doctor_id)
        assert outside.role == Role.DOCTOR
        assert not outside.is_active
        assert outside.full_name.startswith("Dr. Pat")
        audits = s.execute(sa.select(AuditEvent.detail).where(AuditEvent.action == "import.fhir.patient")).scalars().all()
        assert len(audits) == 2
        assert all(d.startswith("job 7: 47 created") for d in audits)


def test_a_second_import_of_the_same_source_changes_nothing(seeded, actors, tmp_path):
    source = _source(tmp_path)
    first = import_fhir(engine=seeded, actor=actors[Role.ADMIN], path=source)
    before = _counts(seeded)
    again = import_fhir(engine=seeded, actor=actors[Role.ADMIN], path=source)
    assert (again.created, again.updated, again.failed) == (0, 0, 0)
    assert again.unchanged == first.created
    assert _counts(seeded) == before


def test_an_edited_resource_is_updated_and_the_rest_left_alone(seeded, actors, tmp_path):
    source = _source(tmp_path, patients=1)
    import_fhir(engine=seeded, actor=actors[Role.ADMIN], path=source)
    resources = fb.patient_resources(0)
    pulse = next(r for r in resources if r["id"] == fb.uid("pulse", 0, 1))
    pulse["valueQuantity"]["value"] = 101
    fb.write_json(source / "patients.json", fb.bundle(resources))
    report = import_fhir(engine=seeded, actor=actors[Role.ADMIN], path=source)
    assert (report.created, report.updated, report.failed) == (0, 1, 0)
    with session_scope(engine=seeded, write=False) as s:
        encounter = s.get(Encounter, s.get(SourceRecord, ("fhir", "Encounter", fb.uid("encounter", 0, 1))).entity_id)
        assert encounter.pulse == 101


def test_unresolved_references_are_reported_against_their_resource_not_a_crash(seeded, actors, tmp_path):
    resources = fb.patient_resources(0, encounters=1)
    condition = next(r for r in resources if r["resourceType"] == "Condition")
    condition["encounter"] = {"reference": "urn:uuid:00000000-0000-0000-0000-000000000000"}
    stray = dict(next(r for r in resources if r["resourceType"] == "Procedure"), id="stray",
                 subject={"reference": "Patient/not-here"})
    source = fb.write_json(tmp_path / "bundle.json", fb.bundle([*resources, stray], kind="collection"))
    report = import_fhir(engine=seeded, actor=actors[Role.ADMIN], path=source)
    assert report.committed
    assert report.failed == 2
    failed = {line.record.split()[-1]: line.message for line in report.lines if line.outcome == LineOutcome.FAILED}
    assert "neither in the source nor imported before" in failed[f"Condition/{condition['id']}"]
    assert "Patient/not-here" in failed["Procedure/stray"]
    assert all("bundle.json entry" in line.record for line in report.lines)
    assert report.created == 1 + 1 + 14  # the rest of the patient went in


def test_a_practitioner_in_two_files_of_one_source_is_made_once(seeded, actors, tmp_path):
    source = _source(tmp_path, patients=1)
    fb.write_json(source / "practitionerInformation2.json", fb.practitioner_bundle())
    report = import_fhir(engine=seeded, actor=actors[Role.ADMIN], path=source)
    assert report.committed
    assert report.failed == 0, report.lines
    practitioners = sum(r["resourceType"] == "Practitioner" for r in fb.practitioner_resources())
    assert report.created == 47 + practitioners
    assert report.unchanged == practitioners
    with session_scope(engine=seeded, write=False) as s:
        outside = s.execute(sa.select(User).where(User.full_name.like("Dr. Pat%"))).scalars().all()
        assert len(outside) == practitioners


def test_a_resource_that_fails_after_writing_part_of_itself_leaves_nothing_of_it(seeded, actors, tmp_path):
    """A prescription whose medicine is new (so the import makes a formulary entry for it) and
    that then fails for want of a date: the patient is written again one savepoint a resource,
    so neither the medicine nor its code stays, the rest of the patient does, and the report
    names the failure once."""
    resources = fb.patient_resources(0, encounters=1)
    request = next(r for r in resources if r["resourceType"] == "MedicationRequest")
    request["medicationCodeableConcept"] = {"coding": [{"system": fb.RXNORM, "code": "999999", "display": "Imaginary 5 MG Oral Tablet"}]}
    del request["encounter"], request["authoredOn"]
    report = import_fhir(engine=seeded, actor=actors[Role.ADMIN], path=fb.write_json(tmp_path / "b.json", fb.bundle(resources)))
    assert report.committed
    assert report.failed == 1
    assert [line.message for line in report.lines if line.outcome == LineOutcome.FAILED] == [
        "has no date it was written (authoredOn)."]
    assert report.created == 1 + 1 + 14
    assert report.created + report.skipped + report.failed == len(resources)
    with session_scope(engine=seeded, write=False) as s:
        assert s.execute(sa.select(Medicine).where(Medicine.name == "Imaginary 5 MG Oral Tablet")).first() is None
        assert s.get(SourceRecord, (fb.RXNORM, "Medicine", "999999")) is None
        assert s.get(SourceRecord, ("fhir", "MedicationRequest", request["id"])) is None
        assert len(s.execute(sa.select(Encounter).where(Encounter.patient_id == _imported_patient(seeded, 0))).all()) == 1


def test_an_imported_patient_without_an_address_is_neither_exported_with_one_nor_mailed(seeded, actors, tmp_path,
                                                                                         monkeypatch):
    import_fhir(engine=seeded, actor=actors[Role.ADMIN], path=_source(tmp_path, patients=1))
    patient_id = _imported_patient(seeded, 0)
    monkeypatch.setattr(settings, "SMTP_URL", "smtp://127.0.0.1:9?from=hms@hospital.example")
    with session_scope(engine=seeded) as s:
        assert s.get(User, patient_id).email.endswith("@imported.invalid")
        record = fhir.typed(fhir.whole_record(s, patient_id, base_url="https://hms.example/fhir"))
        assert [t["system"] for t in record["Patient"][0]["telecom"]] == ["phone"]
        assert all(t["system"] != "email" for p in record.get("Practitioner", []) for t in p.get("telecom", []))
        mail.queue_account_email(s, user_id=patient_id, kind="account.registration_attempt", event_key="t:placeholder")
        doctor = actors[Role.DOCTOR].user_id
        mail.queue_account_email(s, user_id=doctor, kind="account.registration_attempt", event_key="t:doctor")
        s.commit()
        queued = s.execute(sa.select(EmailOutbox.to_address)).scalars().all()
    assert queued == [actors[Role.DOCTOR].email]  # the same call queues for a real address: the test can fail


@pytest.mark.parametrize(("content", "expected"), [
    (b'{"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {"resourceType": "Patient",, }}]}',
     "is not valid JSON"),
    (json.dumps(fb.patient_bundle(0)).encode()[:5000], "ends before its JSON does"),
    ('{"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {"resourceType": "Patient", '
     '"id": "p1", "name": [{"text": "José Müller"}]}}]}'.encode("latin-1"), "is not UTF-8"),
    (json.dumps({"resourceType": "Patient", "id": "p1"}).encode(), "holds a Patient, not a Bundle"),
    (json.dumps({"resourceType": "Bundle", "type": "document", "entry": []}).encode(), "document Bundle"),
    (json.dumps({"resourceType": "Bundle", "type": "collection",
                 "meta": {"profile": ["http://hl7.org/fhir/STU3/StructureDefinition/Bundle"]},
                 "entry": [{"resource": {"resourceType": "Patient", "id": "p"}}]}).encode(), "FHIR STU3 Bundle"),
    (json.dumps(fb.bundle([{"resourceType": "ProcedureRequest", "id": "x", "status": "active"}])).encode(),
     "which FHIR R4 does not have"),
    (json.dumps(fb.bundle([{"resourceType": "Condition", "id": "c", "clinicalStatus": "active"}])).encode(),
     "written the STU3 way"),
    (json.dumps({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {"resourceType": "Patient"}}]}
                ).encode(), "has neither an id nor a urn:uuid fullUrl"),
])
def test_a_bad_source_is_refused_whole_with_a_clear_message(seeded, actors, tmp_path, content, expected):
    good = fb.write_json(tmp_path / "a_good.json", fb.patient_bundle(5))  # read first: nothing of it may land
    (tmp_path / "b_bad.json").write_bytes(content)
    before = _counts(seeded)
    report = import_fhir(engine=seeded, actor=actors[Role.ADMIN], path=tmp_path)
    assert not report.committed
    assert report.message.startswith("Nothing was imported: b_bad.json")
    assert expected in report.message
    assert _counts(seeded) == before
    assert good.exists()


def test_ndjson_with_literal_references_and_several_types_per_file(seeded, actors, tmp_path):
    resources = fb.literal_references(fb.practitioner_resources() + fb.patient_resources(0) + fb.patient_resources(1))
    # Bulk export order is by type, not by patient: the observations come before their patients.
    resources.sort(key=lambda r: r["resourceType"] != "Observation")
    report = import_fhir(engine=seeded, actor=actors[Role.ADMIN], path=fb.write_ndjson(tmp_path / "all.ndjson", resources))
    assert report.committed
    assert report.failed == 0, report.lines
    assert report.created == 2 * 47 + 2


def test_cancel_midway_keeps_only_whole_patients(seeded, actors, tmp_path):
    calls = []

    def cancel_after_first_patient(done: int, total: int | None) -> None:
        if total is not None:
            calls.append(done)
            if len(calls) == 3:  # the start, the shared resources and the first patient are behind it
                raise ImportCancelled

    before = _counts(seeded)
    report = import_fhir(engine=seeded, actor=actors[Role.ADMIN], path=_source(tmp_path, patients=3),
                         progress=cancel_after_first_patient)
    assert not report.committed
    assert report.message.startswith("Cancelled.")
    after = _counts(seeded)
    assert after["patient_profile"] == before["patient_profile"] + 1
    assert after["encounter"] == before["encounter"] + 3
    assert after["document"] == before["document"] + 6


def test_a_dry_run_reports_what_would_happen_and_writes_nothing(seeded, actors, tmp_path):
    source = _source(tmp_path)
    stored_before = set(settings.FILES_DIR.iterdir()) if settings.FILES_DIR.exists() else set()
    before = _counts(seeded)
    dry = import_fhir(engine=seeded, actor=actors[Role.ADMIN], path=source, dry_run=True)
    assert not dry.committed
    assert dry.message.startswith("Dry run: would import 2 patients")
    assert _counts(seeded) == before
    assert (set(settings.FILES_DIR.iterdir()) if settings.FILES_DIR.exists() else set()) == stored_before
    real = import_fhir(engine=seeded, actor=actors[Role.ADMIN], path=source)
    assert (dry.created, dry.skipped, dry.failed) == (real.created, real.skipped, real.failed)


def test_only_a_role_that_may_import_data_may_run_it(seeded, actors, tmp_path):
    before = _counts(seeded)
    for role in (Role.DOCTOR, Role.PATIENT, Role.LAB):
        with pytest.raises(PermissionDenied):
            import_fhir(engine=seeded, actor=actors[role], path=_source(tmp_path))
    after = _counts(seeded)
    assert after["patient_profile"] == before["patient_profile"]


def _doctor_takes_over_npi(engine, doctor_id: int) -> None:
    """A staff import that knew the doctor's NPI leaves this row; the bundle's encounters then are theirs."""
    with session_scope(engine=engine) as s:
        s.add(SourceRecord(system=fb.NPI, source_type="Practitioner", source_id=fb.PRACTITIONER_NPIS[0],
                           entity_type="user", entity_id=doctor_id))
        s.commit()


def test_imported_records_show_in_the_chart_the_timeline_the_history_and_the_fhir_api(seeded, actors, tmp_path):
    doctor = actors[Role.DOCTOR]
    _doctor_takes_over_npi(seeded, doctor.user_id)
    import_fhir(engine=seeded, actor=actors[Role.ADMIN], path=_source(tmp_path, patients=1))
    patient_id = _imported_patient(seeded, 0)
    with session_scope(engine=seeded) as s:
        chart = clinical.open_chart(session=s, actor=doctor, patient_id=patient_id)
        assert not chart.via_break_glass
        assert [a.substance for a in chart.allergies] == ["Allergy to peanuts"]
        assert {p.description for p in chart.problems} == {"Viral sinusitis (disorder)",
                                                          "Body mass index 30+ - obesity (finding)"}
        assert "J01.90" in {p.icd10_code for p in chart.problems}
        assert [v.pulse for v in chart.vitals] == [70, 71, 72]
        assert chart.vitals[0].bp_systolic == 118
        timeline = clinical.chart_timeline(session=s, actor=doctor, patient_id=patient_id, page_size=100)
        kinds = [entry.kind for entry in timeline.rows]
        assert {k: kinds.count(k) for k in set(kinds)} == {"encounter": 3, "prescription": 3, "lab": 6, "document": 6,
                                                           "immunization": 3, "procedure": 3}
        titles = {entry.title for entry in timeline.rows}
        assert "Immunization: Influenza, seasonal, injectable, preservative free" in titles
        assert "Procedure: Medication reconciliation (procedure)" in titles
        assert any("Acetaminophen 325 MG Oral Tablet, 2 tablets 4 times per 1 d for 5 days" in e.detail
                   for e in timeline.rows)
        note = next(e for e in timeline.rows if e.kind == "document" and e.title == "Document: Visit note 1")
        downloaded = documents.download_document(session=s, actor=doctor, document_id=note.id)
        assert downloaded.content_type == "text/plain"
        assert b"seen for a check-up (visit 1)" in downloaded.data
        record = fhir.typed(fhir.whole_record(s, patient_id, base_url="https://hms.example/fhir"))
        assert len(record["Immunization"]) == 3
        assert record["Immunization"][0]["vaccineCode"]["coding"][0]["code"] == "140"
        assert len(record["Procedure"]) == 3
        assert len(record["Encounter"]) == 3
        observations = record["Observation"]
        assert sum(o["category"][0]["coding"][0]["code"] == "laboratory" for o in observations) == 6
        assert sum(o["category"][0]["coding"][0]["code"] == "vital-signs" for o in observations) == 3 * 6
        assert len(record["MedicationRequest"]) == 3
        assert len(record["AllergyIntolerance"]) == 1
        patient = Actor(user_id=patient_id, role=Role.PATIENT, email="", full_name="",
                        permissions=frozenset(p.value for p in DEFAULT_ROLE_PERMISSIONS[Role.PATIENT]))
        history = clinical.my_history(session=s, actor=patient, page_size=100)
        assert len(history.rows) == len(timeline.rows)

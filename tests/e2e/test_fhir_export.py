"""Interoperability in the browser: admin issues an API client whose token is shown once and
works against the real server's /fhir API until revoked; a patient downloads their whole record
as a FHIR Bundle and as a PDF summary."""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.request

from fhir.resources.R4B.bundle import Bundle
from playwright.sync_api import expect

from tests.e2e.helpers import (
    assert_accessible,
    db_rows,
    db_value,
    log_in_to,
    screenshot,
    user_id,
    wait_for_db,
    wait_ready,
)

PATIENT = "maria.garcia@patients.example"
OTHER_PATIENT = "aisha.khan@patients.example"


def _get(url: str, token: str) -> tuple[int, str, dict]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=15) as answer:
            return answer.status, answer.headers["content-type"], json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, error.headers["content-type"], json.loads(error.read())


def test_admin_issues_a_token_shown_once_that_reads_one_patient_until_revoked(app_server, page, screenshot_dir):
    url, db = app_server.url, app_server.database_url
    patient_id, other_id = user_id(db, PATIENT), user_id(db, OTHER_PATIENT)
    mrn = db_value(db, "SELECT mrn FROM patient_profile WHERE user_id = ?", (patient_id,))

    log_in_to(page, url, "admin@hms.example", "/admin")
    page.get_by_role("navigation", name="Main navigation").get_by_role("link", name="API clients").click()
    page.wait_for_url(f"{url}/admin/api-clients")
    expect(page.get_by_role("heading", level=1, name="API clients")).to_be_visible()
    assert_accessible(page)

    page.get_by_label("Client name").fill("Riverside GP practice")
    page.get_by_label("Reads").select_option("patient")
    page.get_by_label("Patient's medical record number").fill(mrn)
    page.get_by_role("button", name="Issue client").click()
    dialog = page.get_by_role("alertdialog")
    expect(dialog).to_contain_text("API token for Riverside GP practice")
    token = page.locator("#issued-token").inner_text().strip()
    assert token.startswith("hms_")
    assert_accessible(page)
    screenshot(page, screenshot_dir, "admin-api-client-issued")

    # Only the token's hash is in the database.
    [(token_hash, scope, scoped_patient)] = db_rows(
        db, "SELECT token_hash, scope, patient_id FROM api_client WHERE name = 'Riverside GP practice'")
    assert (token_hash, scope, scoped_patient) == (hashlib.sha256(token.encode()).hexdigest(), "patient", patient_id)
    assert token not in str(db_rows(db, "SELECT * FROM api_client"))

    dialog.get_by_role("button", name="I have copied it").click()
    expect(page.get_by_role("alertdialog")).to_have_count(0)
    expect(page.locator("#issued-token")).to_have_count(0)
    row = page.get_by_role("row").filter(has=page.get_by_role("rowheader", name="Riverside GP practice"))
    expect(row).to_contain_text("Active")
    expect(row).to_contain_text(token[:10])
    expect(row).not_to_contain_text(token[10:])

    # The token works against the real server's API, for its own patient only.
    status, content_type, body = _get(f"{url}/fhir/Patient/{patient_id}", token)
    assert (status, body["resourceType"], body["identifier"][0]["value"]) == (200, "Patient", mrn)
    assert content_type.startswith("application/fhir+json")
    status, _, body = _get(f"{url}/fhir/Patient/{patient_id}/$everything?_count=1", token)
    assert status == 200
    assert len(body["entry"]) == 1
    assert body["total"] >= 2  # the patient and her penicillin allergy at least
    assert any(link["relation"] == "next" for link in body["link"])
    assert _get(f"{url}/fhir/Patient/{other_id}", token)[0] == 403
    wait_for_db(db, "SELECT count(*) FROM audit_event WHERE action = 'fhir.read' AND patient_id = ? "
                "AND outcome = 'denied'", (other_id,))

    page.get_by_role("button", name="Revoke Riverside GP practice").click()
    expect(row).to_contain_text("Revoked")
    assert _get(f"{url}/fhir/Patient/{patient_id}", token)[0] == 401
    assert [a for (a,) in db_rows(db, "SELECT action FROM audit_event WHERE entity_type = 'api_client' ORDER BY id")
            ][-2:] == ["api_client.issue", "api_client.revoke"]
    assert_accessible(page)


def test_a_patient_downloads_their_record_as_fhir_and_as_a_pdf(app_server, page, screenshot_dir):
    url, db = app_server.url, app_server.database_url
    patient_id = user_id(db, PATIENT)
    mrn = db_value(db, "SELECT mrn FROM patient_profile WHERE user_id = ?", (patient_id,))

    log_in_to(page, url, PATIENT, "/patient")
    page.goto(f"{url}/patient/history")
    wait_ready(page)
    expect(page.get_by_role("heading", name="Download my record")).to_be_visible()
    assert_accessible(page)
    screenshot(page, screenshot_dir, "patient-record-download")

    with page.expect_download() as download_info:
        page.get_by_role("button", name="FHIR file (JSON)").click()
    download = download_info.value
    assert download.suggested_filename == "health-record.fhir.json"
    bundle = Bundle.model_validate_json(download.path().read_text(encoding="utf-8"))
    kinds: dict[str, int] = {}
    for entry in bundle.entry:
        kinds[entry.resource.get_resource_type()] = kinds.get(entry.resource.get_resource_type(), 0) + 1
    [patient] = [e.resource for e in bundle.entry if e.resource.get_resource_type() == "Patient"]
    assert (patient.id, patient.identifier[0].value) == (str(patient_id), mrn)
    assert kinds.get("Encounter", 0) == db_value(db, "SELECT count(*) FROM encounter WHERE patient_id = ?", (patient_id,))
    assert kinds.get("Appointment", 0) == db_value(db, "SELECT count(*) FROM appointment WHERE patient_id = ?",
                                                   (patient_id,))
    assert kinds.get("AllergyIntolerance", 0) == db_value(db, "SELECT count(*) FROM allergy WHERE patient_id = ?",
                                                          (patient_id,))

    with page.expect_download() as download_info:
        page.get_by_role("button", name="PDF summary").click()
    download = download_info.value
    assert download.suggested_filename == f"health-record-{mrn}.pdf"
    assert download.path().read_bytes().startswith(b"%PDF-")

    wait_for_db(db, "SELECT count(*) FROM audit_event WHERE action = 'record.summary' AND patient_id = ?", (patient_id,))
    assert db_value(db, "SELECT count(*) FROM audit_event WHERE action = 'record.export' AND patient_id = ?",
                    (patient_id,)) >= 1
    assert_accessible(page)

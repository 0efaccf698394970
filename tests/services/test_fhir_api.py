"""The FHIR API over real HTTP (Starlette's test client on the ``/fhir`` routes): API clients
issued and revoked by admin only, tokens stored hashed, 401/403/404, every read audited, and
``$everything`` followed page by page through its ``next`` links."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from fhir.resources.R4B.bundle import Bundle
from starlette.applications import Starlette
from starlette.testclient import TestClient

from hms_app.db.engine import session_scope
from hms_app.db.enums import Role
from hms_app.db.models import ApiClient, AuditEvent, PatientProfile
from hms_app.fhir_routes import base_url, mount
from hms_app.services.care import clinical
from hms_app.services.core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from hms_app.services.interop import api_clients, fhir
from tests.conftest import login_as
from tests.services.appointment_helpers import call
from tests.services.clinical_helpers import STRANGER_EMAIL
from tests.services.fhir_helpers import Record, build_record
from tests.services.helpers import assert_refused, audit_events, last_audit_id
from tests.services.lab_helpers import pdf_bytes, use_private_data_dir, with_reference_data

pytestmark = pytest.mark.db


@pytest.fixture(autouse=True)
def _private_data(monkeypatch, tmp_path):
    yield from use_private_data_dir(monkeypatch, tmp_path)


@pytest.fixture
def hospital(seeded):
    return with_reference_data(seeded)


@pytest.fixture
def record(hospital, actors) -> Record:
    return build_record(hospital, actors, actors[Role.PATIENT].user_id)


@pytest.fixture
def http(hospital):
    with TestClient(Starlette(routes=[mount])) as client:
        yield client


def _mrn(engine, patient_id: int) -> str:
    with session_scope(write=False, engine=engine) as s:
        return s.get(PatientProfile, patient_id).mrn


def _issue(engine, admin, scope: str = "all", patient_id: int | None = None) -> api_clients.IssuedClient:
    mrn = _mrn(engine, patient_id) if patient_id else ""
    return call(engine, api_clients.issue_api_client, actor=admin, name=f"Regional exchange {scope}", scope=scope,
                patient_mrn=mrn)


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


@pytest.fixture
def all_token(hospital, actors) -> str:
    return _issue(hospital, actors[Role.ADMIN]).token


@pytest.fixture
def stranger(hospital):
    return login_as(hospital, STRANGER_EMAIL)


# --- metadata and authentication ------------------------------------------------------------------


def test_metadata_needs_no_token_and_is_a_valid_capability_statement(http):
    answer = http.get("/fhir/metadata")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/fhir+json")
    body = answer.json()
    assert (body["resourceType"], body["fhirVersion"]) == ("CapabilityStatement", "4.0.1")
    fhir.get_fhir_model_class("CapabilityStatement").model_validate(body)


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer hms_not-a-token", "Basic abc", "Bearer " + "x" * 500])
def test_a_request_without_a_valid_token_gets_401_and_is_audited(hospital, record, http, header):
    after = last_audit_id(hospital)
    answer = http.get(f"/fhir/Patient/{record.patient_id}", headers={"Authorization": header} if header is not None else {})
    assert answer.status_code == 401
    assert answer.headers["content-type"].startswith("application/fhir+json")
    assert answer.headers["www-authenticate"].startswith("Bearer")
    assert answer.json()["resourceType"] == "OperationOutcome"
    assert answer.json()["issue"][0]["diagnostics"] == "A valid bearer token is required."
    assert [(e.action, str(e.outcome)) for e in audit_events(hospital, after_id=after)] == [("fhir.authenticate", "denied")]


def test_a_revoked_token_stops_working_at_once(hospital, record, http, actors):
    issued = _issue(hospital, actors[Role.ADMIN])
    assert http.get(f"/fhir/Patient/{record.patient_id}", headers=_auth(issued.token)).status_code == 200
    call(hospital, api_clients.revoke_api_client, actor=actors[Role.ADMIN], client_id=issued.id)
    assert http.get(f"/fhir/Patient/{record.patient_id}", headers=_auth(issued.token)).status_code == 401
    with pytest.raises(Conflict):
        call(hospital, api_clients.revoke_api_client, actor=actors[Role.ADMIN], client_id=issued.id)
    assert [e.detail for e in audit_events(hospital, action="fhir.authenticate")] == ["revoked token"]


# --- issuing clients --------------------------------------------------------------------------------


def test_the_token_is_shown_once_and_only_its_hash_is_stored(hospital, actors, record):
    issued = _issue(hospital, actors[Role.ADMIN], "patient", record.patient_id)
    assert issued.token.startswith("hms_")
    assert len(issued.token) >= 40
    with hospital.connect() as conn:
        raw = " ".join(str(v) for row in conn.execute(sa.select(ApiClient)).all() for v in row)
    assert issued.token not in raw
    assert api_clients.hash_token(issued.token) in raw
    [row] = call(hospital, api_clients.list_api_clients, actor=actors[Role.ADMIN])
    assert issued.token not in str(row)
    assert (row.name, row.scope, row.status, row.last_used) == (issued.name, "One patient", "Active", "Never")
    assert row.patient.endswith(f"({_mrn(hospital, record.patient_id)})")
    [event] = audit_events(hospital, action="api_client.issue")
    assert (event.actor_id, event.patient_id, event.entity_id) == (actors[Role.ADMIN].user_id, record.patient_id,
                                                                    str(issued.id))
    assert issued.token not in event.detail


@pytest.mark.parametrize("role", [Role.DOCTOR, Role.PATIENT, Role.LAB, Role.PHARMACY, Role.ACCOUNTS])
def test_only_admin_issues_lists_and_revokes_clients(hospital, actors, role):
    actor = actors[role]
    issued = _issue(hospital, actors[Role.ADMIN])
    assert_refused(hospital, actor, "api_client.issue", lambda s: api_clients.issue_api_client(
        session=s, actor=actor, name="Sneaky exchange", scope="all"))
    assert_refused(hospital, actor, "api_client.revoke", lambda s: api_clients.revoke_api_client(
        session=s, actor=actor, client_id=issued.id))
    assert_refused(hospital, actor, "api_client.list", lambda s: api_clients.list_api_clients(session=s, actor=actor))


@pytest.mark.parametrize(("form", "message"), [
    ({"name": "", "scope": "all"}, "Name the client"),
    ({"name": "Exchange", "scope": "everything"}, "Choose whether"),
    ({"name": "Exchange", "scope": "patient"}, "Enter the medical record number"),
    ({"name": "Exchange", "scope": "patient", "patient_mrn": "NOPE-1"}, "No patient has"),
])
def test_a_client_needs_a_name_a_scope_and_a_real_patient(hospital, actors, form, message):
    with pytest.raises(ValidationError, match=message):
        call(hospital, api_clients.issue_api_client, actor=actors[Role.ADMIN], **form)


def test_revoking_an_unknown_client_is_not_found(hospital, actors):
    with pytest.raises(NotFound):
        call(hospital, api_clients.revoke_api_client, actor=actors[Role.ADMIN], client_id=987654)


# --- reads ------------------------------------------------------------------------------------------


def test_every_kind_of_resource_reads_by_id_as_exported_and_each_read_is_audited(hospital, record, http, all_token):
    with session_scope(write=False, engine=hospital) as s:
        expected = fhir.whole_record(s, record.patient_id, base_url=base_url())
    after = last_audit_id(hospital)
    reads = 0
    for entry in expected["entry"]:
        resource = entry["resource"]
        answer = http.get(_path(entry["fullUrl"]), headers=_auth(all_token))
        assert answer.status_code == 200, entry["fullUrl"]
        assert answer.headers["content-type"].startswith("application/fhir+json")
        got = answer.json()
        fhir.get_fhir_model_class(got["resourceType"]).model_validate(got)
        assert got == resource
        reads += 1
    events = audit_events(hospital, after_id=after)
    assert len(events) == reads
    assert {(e.action, str(e.outcome)) for e in events} == {("fhir.read", "success")}
    assert all(e.actor_email.startswith("api-client:") for e in events)
    clinical = [e for e in events if e.entity_type not in ("Practitioner", "Organization")]
    assert {e.patient_id for e in clinical} == {record.patient_id}


def test_the_report_file_downloads_from_its_attachment_link(hospital, record, http, all_token):
    report = http.get(f"/fhir/DiagnosticReport/{record.lab_order_id}", headers=_auth(all_token)).json()
    [form] = report["presentedForm"]
    answer = http.get(_path(form["url"]), headers=_auth(all_token))
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/pdf"
    assert answer.content == pdf_bytes()
    assert http.get(_path(form["url"])).status_code == 401
    [event] = audit_events(hospital, action="fhir.binary")
    assert (event.patient_id, event.entity_id) == (record.patient_id, f"lab-report-{record.lab_order_id}")


@pytest.mark.parametrize("path", ["/fhir/Patient/987654", "/fhir/Observation/lab-987654", "/fhir/Condition/987",
                                  "/fhir/Observation/bp-987654", "/fhir/Secret/1", "/fhir/Patient/abc",
                                  "/fhir/Binary/lab-report-987654", "/fhir/Binary/x", "/fhir/Patient/987654/$everything",
                                  "/fhir/Secret"])
def test_what_does_not_exist_is_404(hospital, record, http, all_token, path):
    answer = http.get(path, headers=_auth(all_token))
    assert answer.status_code == 404
    assert answer.json()["issue"][0]["code"] == "not-found"


def test_a_practitioner_id_of_a_patient_is_not_found(hospital, record, http, all_token):
    assert http.get(f"/fhir/Practitioner/{record.patient_id}", headers=_auth(all_token)).status_code == 404


# --- scope -------------------------------------------------------------------------------------------


def test_one_patients_token_reads_that_record_and_gets_403_for_anothers(hospital, record, http, actors, stranger):
    token = _issue(hospital, actors[Role.ADMIN], "patient", record.patient_id).token
    other = stranger.user_id
    assert http.get(f"/fhir/Patient/{record.patient_id}", headers=_auth(token)).status_code == 200
    own = http.get("/fhir/Observation", headers=_auth(token))  # no patient named: its own
    assert own.status_code == 200
    assert {e["resource"]["subject"]["reference"] for e in own.json()["entry"]} == {f"Patient/{record.patient_id}"}

    allergy = call(hospital, clinical.add_allergy,
                   actor=_doctor_of(hospital, actors, other), patient_id=other, substance="Peanuts")
    after = last_audit_id(hospital)
    for path in (f"/fhir/Patient/{other}", f"/fhir/AllergyIntolerance/{allergy}", f"/fhir/Patient/{other}/$everything",
                 f"/fhir/AllergyIntolerance?patient={other}", f"/fhir/Condition?patient=Patient/{other}"):
        answer = http.get(path, headers=_auth(token))
        assert answer.status_code == 403, path
        assert "Peanuts" not in answer.text
    denied = audit_events(hospital, after_id=after)
    assert [(str(e.outcome), e.patient_id) for e in denied] == [("denied", other)] * 5
    # Doctors and departments are no one's record: any client may read them.
    assert http.get(f"/fhir/Practitioner/{actors[Role.DOCTOR].user_id}", headers=_auth(token)).status_code == 200


def _doctor_of(engine, actors, patient_id: int):
    """Dr Hart, given an appointment with the patient so that she may write to the chart."""
    from tests.services.lab_helpers import open_visit

    open_visit(engine, actors[Role.DOCTOR], patient_id)
    return actors[Role.DOCTOR]


def test_an_all_records_token_must_name_the_patient_it_searches(hospital, record, http, all_token):
    answer = http.get("/fhir/Observation", headers=_auth(all_token))
    assert answer.status_code == 400
    assert http.get(f"/fhir/Patient/{record.patient_id}/$everything?_count=ten", headers=_auth(all_token)).status_code == 400


# --- search and $everything -----------------------------------------------------------------------------


def test_search_by_patient_returns_that_type_and_is_audited(hospital, record, http, all_token):
    answer = http.get(f"/fhir/Condition?patient={record.patient_id}", headers=_auth(all_token))
    assert answer.status_code == 200
    page = Bundle.model_validate(answer.json())
    assert page.type == "searchset"
    assert {e.resource.get_resource_type() for e in page.entry} == {"Condition"}
    assert page.total == len(page.entry)
    [event] = audit_events(hospital, action="fhir.search")
    assert (event.patient_id, event.entity_type) == (record.patient_id, "Condition")
    practitioners = http.get("/fhir/Practitioner", headers=_auth(all_token)).json()
    assert practitioners["total"] >= 1


def test_everything_streams_in_pages_through_next_links(hospital, record, http, all_token):
    with session_scope(write=False, engine=hospital) as s:
        expected = [f"{e['resource']['resourceType']}/{e['resource']['id']}"
                    for e in fhir.whole_record(s, record.patient_id, base_url=base_url())["entry"]]
    after = last_audit_id(hospital)
    url, seen, pages = f"/fhir/Patient/{record.patient_id}/$everything?_count=7", [], 0
    while url:
        answer = http.get(url, headers=_auth(all_token))
        assert answer.status_code == 200
        page = answer.json()
        Bundle.model_validate(page)
        assert page["total"] == len(expected)
        assert len(page["entry"]) <= 7
        seen += [f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in page["entry"]]
        links = {link["relation"]: link["url"] for link in page["link"]}
        url = _path(links["next"]) if "next" in links else None
        pages += 1
    assert seen == expected
    assert pages == -(-len(expected) // 7)
    events = audit_events(hospital, after_id=after)
    assert [(e.action, e.patient_id) for e in events] == [("fhir.everything", record.patient_id)] * pages


def test_audit_rows_of_api_reads_carry_no_user(hospital, record, http, all_token):
    http.get(f"/fhir/Patient/{record.patient_id}", headers=_auth(all_token))
    with hospital.connect() as conn:
        row = conn.execute(sa.select(AuditEvent).where(AuditEvent.action == "fhir.read")).one()
    assert row.actor_id is None
    assert row.actor_email.startswith("api-client:")


def test_a_forbidden_read_changes_nothing_but_the_audit_trail(hospital, record, actors, stranger):
    issued = _issue(hospital, actors[Role.ADMIN], "patient", record.patient_id)

    def read(s):
        caller = api_clients.authenticate_client(session=s, authorization=f"Bearer {issued.token}")
        s.commit()
        return api_clients.read_resource(session=s, caller=caller, resource_type="Patient",
                                         resource_id=str(stranger.user_id), base_url=base_url())

    with session_scope(engine=hospital) as s, pytest.raises(PermissionDenied):
        read(s)
    [event] = audit_events(hospital, action="fhir.read", outcome="denied")
    assert event.patient_id == stranger.user_id


def test_of_two_simultaneous_revocations_one_wins_and_one_is_audited(hospital, actors):
    from tests.services.pharmacy_helpers import all_at_once

    admin = actors[Role.ADMIN]
    issued = _issue(hospital, admin)
    results = all_at_once(*[lambda: call(hospital, api_clients.revoke_api_client, actor=admin, client_id=issued.id)
                            for _ in range(2)])
    assert sorted(type(r).__name__ for r in results) == ["Conflict", "NoneType"]
    assert len(audit_events(hospital, action="api_client.revoke", outcome="success")) == 1


def test_a_token_cannot_be_used_with_another_scheme_or_padding(hospital, record, http, all_token):
    assert http.get(f"/fhir/Patient/{record.patient_id}", headers={"Authorization": f"bearer {all_token}"}).status_code == 200
    for header in (f"Token {all_token}", f"Bearer {all_token}x", f"Bearer {all_token[:-1]}", all_token):
        assert http.get(f"/fhir/Patient/{record.patient_id}", headers={"Authorization": header}).status_code == 401

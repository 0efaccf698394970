"""Uploaded files over the real server: refused with a message in the browser, never public.

The service tests (``tests/services/test_documents.py``, ``test_lab_workflow.py``) refuse each
bad file. Here, against the running app:

- a renamed executable, an empty file and a double extension, uploaded from the chart page in
  the browser, are refused with the service's message and store nothing;
- a stored document is not served over HTTP: not from Reflex's public upload route
  (``/_upload``), the front end's assets, or any path its generated name or file name could
  be guessed at; the file sits in ``data/files``, outside Reflex's upload folder;
- over the websocket only the patient it belongs to and a doctor who may open the chart
  receive it; a visitor, another patient and a doctor without access get nothing of it.
"""

from __future__ import annotations

import base64
import urllib.error
import urllib.request
from typing import Any

import pytest
from playwright.sync_api import expect

from hms_app.state.auth import LoginState
from hms_app.state.clinical import ChartState, PatientHistoryState
from tests.e2e.helpers import DEMO_PASSWORD, db_value, log_in_to, wait_ready
from tests.e2e.server import ROOT
from tests.e2e.xss_seed import seed_on
from tests.ws_client import WsClient

ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 56 + b"\x90" * 200
OTHER_PATIENT = "emma.johnson@patients.example"  # used by no other journey
DOCTOR_WITHOUT_ACCESS = "samuel.adeyemi@hms.example"  # used by no other journey


@pytest.fixture(scope="module")
def record(app_server) -> dict[str, Any]:
    """A patient of Dr Okafor's with one stored document (see ``tests/e2e/xss_seed.py``)."""
    return seed_on(app_server)


def _stored(app_server) -> set[str]:
    folder = app_server.data_dir / "files"
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


@pytest.mark.parametrize(("name", "content", "message"), [
    ("scan.pdf", ELF, "Only PDF, PNG and JPEG files are accepted (checked by their content, not their name)."),
    ("scan.pdf", b"", "The file is empty."),
    ("scan.exe.pdf", b"%PDF-1.4\n%%EOF\n", "That file name carries a program's extension"),
])
def test_a_bad_file_uploaded_in_the_browser_is_refused_with_a_message(app_server, page, record, tmp_path, name,
                                                                     content, message):
    path = tmp_path / name
    path.write_bytes(content)
    documents_before = db_value(app_server.database_url, "SELECT count(*) FROM document")
    stored_before = _stored(app_server)
    log_in_to(page, app_server.url, record["doctor_email"], "/doctor")
    page.goto(f"{app_server.url}/doctor/patient?id={record['patient']}")
    wait_ready(page)
    page.locator("input[type=file]").set_input_files(str(path))
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.get_by_text(message).first).to_be_visible()
    assert db_value(app_server.database_url, "SELECT count(*) FROM document") == documents_before
    assert _stored(app_server) == stored_before


def _get(url: str) -> tuple[int, bytes, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read(), response.headers.get("content-type", "")
    except urllib.error.HTTPError as error:
        return error.code, error.read(), error.headers.get("content-type", "")


def test_no_stored_file_is_served_over_http(app_server, record):
    url = app_server.database_url
    storage_name = db_value(url, "SELECT storage_name FROM document WHERE id = ?", (record["document"],))
    file_name = record["stored_file_name"]
    on_disk = app_server.data_dir / "files" / storage_name
    assert on_disk.is_file()
    encrypted = on_disk.read_bytes()

    for folder in (ROOT / "uploaded_files", ROOT / "assets", ROOT / ".web", app_server.data_dir / ".web"):
        if folder.is_dir():
            assert not list(folder.rglob(storage_name)), f"{storage_name} is under {folder}"

    quoted = urllib.request.quote
    candidates = [
        f"/_upload/{storage_name}", f"/_upload/{quoted(file_name)}", f"/_upload/files/{storage_name}",
        f"/_upload/..%2Ffiles%2F{storage_name}", f"/_upload/%2e%2e/files/{storage_name}",
        f"/files/{storage_name}", f"/data/files/{storage_name}", f"/{storage_name}", f"/assets/{storage_name}",
        f"/assets/{quoted(file_name)}", f"/{quoted(file_name)}", "/hms.key", "/data/hms.key", "/_upload/hms.key",
    ]
    for path in candidates:
        status, body, content_type = _get(f"{app_server.url}{path}")
        assert encrypted not in body, f"{path} served the stored file ({status})"
        assert b"%PDF" not in body, f"{path} served the file's content ({status})"
        assert not (status == 200 and "html" not in content_type), f"{path}: {status} {content_type}"


def _download_text(result) -> str:
    return " ".join(d.get("url", "") for d in result.downloads)


def _logged_in(app_server, email: str, password: str = DEMO_PASSWORD) -> WsClient:
    client = WsClient(app_server.url).connect()
    result = client.call(LoginState, "log_in", {"form_data": {"email": email, "password": password}},
                         pathname="/login")
    assert result.toasts, "the login answered nothing"
    assert result.toasts[-1][0] == "success", result.toasts
    return client


def test_only_the_owner_and_a_doctor_who_may_open_the_chart_receive_the_file(app_server, record):
    document = {"document_id": record["document"]}
    owner = _logged_in(app_server, record["email"], record["password"])
    try:
        got = owner.call(PatientHistoryState, "download_document", document, pathname="/patient/history")
    finally:
        owner.close()
    [download] = got.downloads
    data = base64.b64decode(download["url"].split(";base64,", 1)[1])
    assert data.startswith(b"%PDF")
    secret = download["url"].split(";base64,", 1)[1][:40]

    doctor = _logged_in(app_server, record["doctor_email"])
    try:
        assert doctor.call(ChartState, "download_document", document, pathname="/doctor/patient").downloads
    finally:
        doctor.close()

    refused: dict[str, Any] = {}
    with WsClient(app_server.url) as visitor:
        refused["visitor"] = visitor.call(PatientHistoryState, "download_document", document,
                                          pathname="/patient/history")
    for label, email, state, path in [("another patient", OTHER_PATIENT, PatientHistoryState, "/patient/history"),
                                      ("a doctor without access", DOCTOR_WITHOUT_ACCESS, ChartState, "/doctor/patient")]:
        client = _logged_in(app_server, email)
        try:
            refused[label] = client.call(state, "download_document", document, pathname=path)
        finally:
            client.close()
    for label, result in refused.items():
        assert result.downloads == [], f"{label} received the file"
        assert secret not in result.text(), f"{label} received the file's bytes"
        assert any(level in ("error", "warning") for level, _ in result.toasts), f"{label}: {result.toasts}"


def test_the_upload_folder_reflex_serves_holds_no_stored_file(app_server, record):
    upload_dir, files_dir = (ROOT / "uploaded_files").resolve(), (app_server.data_dir / "files").resolve()
    stored = _stored(app_server)
    assert stored, "the seed stored a document"
    if upload_dir.is_dir():
        assert not stored & {p.name for p in upload_dir.rglob("*")}
    assert upload_dir != files_dir
    assert upload_dir not in files_dir.parents

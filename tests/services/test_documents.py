"""Documents in the patient's record: upload checks by content, encrypted storage, and who
may download."""

from __future__ import annotations

import re
import stat

import pytest

from hms_app import settings
from hms_app.db.engine import session_scope
from hms_app.db.enums import Role
from hms_app.db.models import Document
from hms_app.services.care import clinical, documents
from hms_app.services.care.clinical import BreakGlassRequired
from hms_app.services.core import files
from hms_app.services.core.errors import NotFound, PermissionDenied, ValidationError
from tests.conftest import login_as
from tests.services.appointment_helpers import call
from tests.services.clinical_helpers import (
    STRANGER_EMAIL,
    care_appointment,
    jpeg_bytes,
    pdf_bytes,
    png_bytes,
    stored_files,
    use_private_data_dir,
    with_reference_data,
)
from tests.services.helpers import (
    assert_refused,
    audit_events,
    last_audit_id,
    snapshot,
    table_count,
)

pytestmark = pytest.mark.db

NO_CLINICAL_WRITE = [Role.LAB, Role.PHARMACY, Role.ACCOUNTS, Role.PATIENT, Role.ADMIN]
ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 56 + b"\x90" * 200
WINDOWS_EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00" + b"\x00" * 50 + b"PE\x00\x00" + b"\x90" * 200


@pytest.fixture(autouse=True)
def _private_data(monkeypatch, tmp_path):
    yield from use_private_data_dir(monkeypatch, tmp_path)


@pytest.fixture
def hospital(seeded):
    return with_reference_data(seeded)


@pytest.fixture
def doctor(actors):
    return actors[Role.DOCTOR]


@pytest.fixture
def patient(actors):
    return actors[Role.PATIENT]


@pytest.fixture
def maria(hospital, doctor, patient):
    """Maria Garcia, under Dr Hart's care."""
    care_appointment(hospital, doctor, patient.user_id)
    return patient.user_id


def upload(engine, actor, patient_id, file_name, data, title="Chest X-ray report"):
    return call(engine, documents.upload_document, actor=actor, patient_id=patient_id, title=title,
                file_name=file_name, data=data)


def document(engine, document_id) -> Document:
    with session_scope(write=False, engine=engine) as s:
        return s.get(Document, document_id)


SMALL_FILES = [
    ("report.pdf", pdf_bytes(), "application/pdf"),
    ("scan.png", png_bytes(), "image/png"),
    ("photo.jpg", jpeg_bytes(), "image/jpeg"),
    ("photo.jpeg", jpeg_bytes(), "image/jpeg"),
]


@pytest.mark.parametrize(("file_name", "data", "content_type"), SMALL_FILES)
def test_a_real_file_is_stored_encrypted_and_downloaded_by_owner_and_doctor(hospital, doctor, patient, maria,
                                                                            file_name, data, content_type):
    document_id = upload(hospital, doctor, maria, file_name, data)
    stored = document(hospital, document_id)
    assert (stored.file_name, stored.content_type, stored.size_bytes) == (file_name, content_type, len(data))
    assert re.fullmatch(r"[0-9a-f]{32}", stored.storage_name)

    [path] = stored_files()
    assert path.name == stored.storage_name
    assert path.parent == settings.FILES_DIR
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    raw = path.read_bytes()
    assert data not in raw
    assert b"%PDF" not in raw
    assert data[:8] not in raw
    [uploaded] = audit_events(hospital, action="document.upload")
    assert (uploaded.patient_id, uploaded.detail) == (maria, f"{content_type}, {len(data)} bytes")

    for actor in (patient, doctor):
        before = last_audit_id(hospital)
        downloaded = call(hospital, documents.download_document, actor=actor, document_id=document_id)
        assert (downloaded.data, downloaded.file_name, downloaded.content_type) == (data, file_name, content_type)
        [row] = audit_events(hospital, action="document.download", after_id=before)
        assert (row.actor_id, row.patient_id, str(row.outcome)) == (actor.user_id, maria, "success")


def test_another_patient_cannot_download_and_the_attempt_is_audited(hospital, doctor, maria):
    document_id = upload(hospital, doctor, maria, "report.pdf", pdf_bytes())
    stranger = login_as(hospital, STRANGER_EMAIL)
    error = assert_refused(hospital, stranger, "document.download", lambda s: documents.download_document(
        session=s, actor=stranger, document_id=document_id), error=NotFound)
    assert error.message == "That document does not exist."
    for missing in (999_999, "abc", None):
        assert_refused(hospital, stranger, "document.download", lambda s, missing=missing: documents.download_document(
            session=s, actor=stranger, document_id=missing), error=NotFound)


def test_a_doctor_without_access_needs_break_glass_to_download(hospital, doctor, maria):
    document_id = upload(hospital, doctor, maria, "report.pdf", pdf_bytes())
    other = login_as(hospital, "rohan.mehta@hms.example")
    assert_refused(hospital, other, "document.download", lambda s: documents.download_document(
        session=s, actor=other, document_id=document_id), error=BreakGlassRequired)
    call(hospital, clinical.break_glass, actor=other, patient_id=maria, reason="Covering for Dr Hart tonight")
    assert call(hospital, documents.download_document, actor=other, document_id=document_id).data == pdf_bytes()


@pytest.mark.parametrize("role", [Role.LAB, Role.PHARMACY, Role.ACCOUNTS, Role.ADMIN])
def test_staff_without_clinical_read_cannot_download(hospital, actors, doctor, maria, role):
    document_id = upload(hospital, doctor, maria, "report.pdf", pdf_bytes())
    error = assert_refused(hospital, actors[role], "document.download", lambda s: documents.download_document(
        session=s, actor=actors[role], document_id=document_id))
    assert type(error) is PermissionDenied


TOO_BIG = b"%PDF-1.4\n" + b"0" * (settings.MAX_UPLOAD_BYTES + 1 - 9)

REFUSED = [
    ("report.pdf", ELF, "Only PDF, PNG and JPEG files are accepted (checked by their content, not their name)."),
    ("report.pdf", WINDOWS_EXE, "Only PDF, PNG and JPEG files are accepted (checked by their content, not their name)."),
    ("report.pdf", TOO_BIG, "The file is larger than 10 MB."),
    ("report.pdf", b"", "The file is empty."),
    ("../../etc/passwd.pdf", pdf_bytes(), "File names may not contain folders or start with a dot."),
    ("..\\x.pdf", pdf_bytes(), "File names may not contain folders or start with a dot."),
    ("/abs.pdf", pdf_bytes(), "File names may not contain folders or start with a dot."),
    ("C:\\Windows\\x.pdf", pdf_bytes(), "File names may not contain folders or start with a dot."),
    (".hidden.pdf", pdf_bytes(), "File names may not contain folders or start with a dot."),
    ("report.pdf\x00.png", pdf_bytes(), "File names may not contain folders or start with a dot."),
    ("report.pdf.exe", pdf_bytes(), "That file name carries a program's extension; only PDF, PNG and JPEG files are accepted."),
    ("scan.exe.pdf", pdf_bytes(), "That file name carries a program's extension; only PDF, PNG and JPEG files are accepted."),
    ("a.php.png", png_bytes(), "That file name carries a program's extension; only PDF, PNG and JPEG files are accepted."),
    ("scan.final.pdf", pdf_bytes(), "Use a file name with a single extension, like report.pdf."),
    ("scan.png.pdf", png_bytes(), "Use a file name with a single extension, like report.pdf."),
    ("scan.pdf", png_bytes(), "The file's name says .pdf but its content is a PNG file."),
    ("photo.png", jpeg_bytes(), "The file's name says .png but its content is a JPEG file."),
    ("report.jpg", pdf_bytes(), "The file's name says .jpg but its content is a PDF file."),
    ("report", pdf_bytes(), "The file name needs an extension: .pdf, .png, .jpg or .jpeg."),
    ("", pdf_bytes(), "The file has no name."),
    ("notes.txt", b"Just some text", "Only PDF, PNG and JPEG files are accepted (checked by their content, not their name)."),
    ("page.html", b"<html><script>alert(1)</script>", "That file name carries a program's extension; only PDF, PNG and JPEG files are accepted."),
]


@pytest.mark.parametrize(("file_name", "data", "message"), REFUSED,
                         ids=[f"{i}-{name[:20]!r}" for i, (name, _, _) in enumerate(REFUSED)])
def test_a_refused_upload_stores_nothing(hospital, doctor, maria, file_name, data, message):
    before = snapshot(hospital)
    with session_scope(engine=hospital) as s, pytest.raises(ValidationError) as refused:
        documents.upload_document(session=s, actor=doctor, patient_id=maria, title="Report", file_name=file_name,
                                  data=data)
    assert refused.value.message == message
    assert stored_files() == []
    assert table_count(hospital, Document) == 0
    assert snapshot(hospital) == before


def test_exactly_ten_megabytes_is_accepted(hospital, doctor, maria):
    data = b"%PDF-1.4\n" + b"0" * (settings.MAX_UPLOAD_BYTES - 9)
    document_id = upload(hospital, doctor, maria, "big.pdf", data)
    assert document(hospital, document_id).size_bytes == settings.MAX_UPLOAD_BYTES


@pytest.mark.parametrize(("given", "kept"), [
    ("My scan (1).png", "My scan (1).png"),
    ("résumé.png", "résumé.png"),
    ("x-ray;rm -rf.png", "x-ray_rm -rf.png"),
    ("SCAN.PNG", "SCAN.png"),
    ("<script>.png", "_script_.png"),
])
def test_the_file_name_is_kept_only_as_safe_text(hospital, doctor, maria, given, kept):
    document_id = upload(hospital, doctor, maria, given, png_bytes())
    assert document(hospital, document_id).file_name == kept


def test_a_document_needs_a_title(hospital, doctor, maria):
    with session_scope(engine=hospital) as s, pytest.raises(ValidationError, match="Enter the document title"):
        documents.upload_document(session=s, actor=doctor, patient_id=maria, title="  ", file_name="a.pdf",
                                  data=pdf_bytes())
    assert stored_files() == []


def test_a_failure_after_storing_removes_the_file(hospital, doctor, maria, monkeypatch):
    def broken(*_args, **_kwargs):
        raise RuntimeError("publishing failed")

    monkeypatch.setattr(documents.events, "publish", broken)
    with session_scope(engine=hospital) as s, pytest.raises(RuntimeError):
        documents.upload_document(session=s, actor=doctor, patient_id=maria, title="Report", file_name="a.pdf",
                                  data=pdf_bytes())
    assert stored_files() == []
    assert table_count(hospital, Document) == 0


@pytest.mark.parametrize("role", NO_CLINICAL_WRITE)
def test_roles_without_clinical_write_cannot_upload(hospital, actors, maria, role):
    actor = actors[role]
    assert_refused(hospital, actor, "document.upload", lambda s: documents.upload_document(
        session=s, actor=actor, patient_id=maria, title="Report", file_name="a.pdf", data=pdf_bytes()))
    assert stored_files() == []


def test_a_doctor_uploads_only_to_charts_they_may_open(hospital, doctor):
    stranger = login_as(hospital, STRANGER_EMAIL)
    assert_refused(hospital, doctor, "document.upload", lambda s: documents.upload_document(
        session=s, actor=doctor, patient_id=stranger.user_id, title="Report", file_name="a.pdf", data=pdf_bytes()),
        error=BreakGlassRequired)
    assert stored_files() == []


def test_the_document_shows_on_the_timeline_and_in_the_patients_history(hospital, doctor, patient, maria):
    document_id = upload(hospital, doctor, maria, "report.pdf", pdf_bytes(), title="Echo report")
    [entry] = call(hospital, clinical.chart_timeline, actor=doctor, patient_id=maria).rows
    assert (entry.kind, entry.id, entry.title, entry.detail) == ("document", document_id, "Document: Echo report",
                                                                 "report.pdf")
    assert [e.id for e in call(hospital, clinical.my_history, actor=patient).rows] == [document_id]


@pytest.mark.parametrize("name", ["../hms.key", "..", "", "A" * 32, "0" * 31, "0" * 32 + "/x", None])
def test_stored_files_are_read_only_by_their_generated_name(name):
    with pytest.raises(ValidationError, match="not available"):
        files.read_decrypted(name)

"""Import jobs: started, run on the import thread, followed, cancelled, audited, recovered after a crash."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from hms_app import settings
from hms_app.db.engine import session_scope
from hms_app.db.enums import ImportStatus, LineOutcome, Role
from hms_app.db.models import AuditEvent, ImportJob, ImportLine
from hms_app.db.types import utcnow
from hms_app.services.core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from hms_app.services.golive import csv_import, jobs
from hms_app.services.golive.kinds import csv_kinds
from tests.services.helpers import snapshot

pytestmark = pytest.mark.db

FILE = ("mrn,full_name,birth_date\n"
        + "".join(f"MRN-92{i:04d},Patient {i},1980-01-01\n" for i in range(1, 6))
        + "MRN-929999,Bad Date,yesterday\n").encode()


def _upload(engine, actor, data=FILE, kind="patients", file_name="p.csv", replacing=0) -> jobs.Upload:
    with session_scope(engine=engine) as s:
        return jobs.receive_import_file(session=s, actor=actor, kind=kind, file_name=file_name, data=data,
                                        replacing=replacing)


def _start(engine, actor, data=FILE, **kwargs) -> int:
    kind = kwargs.pop("kind", "patients")
    upload = _upload(engine, actor, data, kind=kind, file_name="bundle.json" if kind == "fhir" else "p.csv")
    with session_scope(engine=engine) as s:
        return jobs.start_import(session=s, actor=actor, upload_id=upload.id, **kwargs)


def _job(engine, job_id) -> ImportJob:
    with session_scope(write=False, engine=engine) as s:
        return s.get(ImportJob, job_id)


def test_a_job_runs_in_the_background_and_keeps_its_report_counts_and_audit_rows(seeded, actors):
    admin = actors[Role.ADMIN]
    job_id = _start(seeded, admin, good_rows_only=True)
    stored = _job(seeded, job_id).storage_name
    assert (settings.FILES_DIR / stored).exists()
    assert _job(seeded, job_id).status == ImportStatus.WAITING
    jobs.launch_import(job_id, admin, engine=seeded).result(timeout=60)
    job = _job(seeded, job_id)
    assert (job.status, job.created, job.failed, job.processed, job.total, job.committed) == (
        ImportStatus.DONE, 5, 1, 6, 6, True)
    assert not (settings.FILES_DIR / stored).exists()
    with session_scope(write=False, engine=seeded) as s:
        view = jobs.import_status(session=s, actor=admin, job_id=job_id)
        failed = jobs.import_report(session=s, actor=admin, job_id=job_id, outcome="failed")
        searched = jobs.import_report(session=s, actor=admin, job_id=job_id, search="mrn-920003")
        history = jobs.list_imports(session=s, actor=admin)
        audits = s.execute(sa.select(AuditEvent).where(AuditEvent.entity_type == "import_job")).scalars().all()
    assert view.percent == 100
    assert view.status_label == "Done"
    assert view.progress_text == "6 of 6 lines"
    assert [(r.line, r.outcome, r.record) for r in failed.rows] == [(7, "failed", "MRN-929999")]
    assert "1980-04-23" in failed.rows[0].message
    assert [r.record for r in searched.rows] == ["MRN-920003"]
    assert history.rows[0].id == job_id
    assert [(a.action, a.detail) for a in audits] == [
        ("import.upload", f"patients from p.csv, {len(FILE)} bytes"),
        ("import.done", "patients from p.csv; good lines only; created 5, updated 0, unchanged 0, skipped 0, "
                        "failed 1; committed")]


def test_all_or_nothing_with_a_bad_line_fails_keeps_every_line_and_commits_nothing(seeded, actors):
    before = snapshot(seeded)
    job_id = _start(seeded, actors[Role.ADMIN])
    jobs.run_import(job_id, actors[Role.ADMIN], engine=seeded)
    job = _job(seeded, job_id)
    assert job.status == ImportStatus.FAILED
    assert not job.committed
    assert "Nothing was imported" in job.message
    with session_scope(write=False, engine=seeded) as s:
        lines = s.execute(sa.select(ImportLine.line, ImportLine.outcome).where(ImportLine.job_id == job_id)).all()
    assert len(lines) == 6
    assert lines[-1] == (7, LineOutcome.FAILED)
    after = snapshot(seeded)
    for table in ("import_job", "import_line"):
        before.pop(table), after.pop(table)
    assert after == before


def test_progress_is_followed_and_a_cancel_rolls_the_import_back(seeded, actors, monkeypatch):
    admin = actors[Role.ADMIN]
    monkeypatch.setattr(csv_import, "PROGRESS_EVERY", 1)
    reached, release = threading.Event(), threading.Event()
    seen = []

    def progress(done, total):
        seen.append((done, total))
        if done == 3:
            reached.set()
            release.wait(30)

    job_id = _start(seeded, admin, good_rows_only=True)
    runner = threading.Thread(target=jobs.run_import, args=(job_id, admin),
                              kwargs={"engine": seeded, "progress": progress})
    runner.start()
    assert reached.wait(30)
    with session_scope(write=False, engine=seeded) as s:
        view = jobs.import_status(session=s, actor=admin, job_id=job_id)
    assert view.running
    assert view.processed == 3
    assert view.total == 6
    assert view.created == 3
    assert view.percent == 50
    done = threading.Thread(target=lambda: _cancel(seeded, admin, job_id))
    done.start()
    release.set()
    runner.join(30)
    done.join(30)
    job = _job(seeded, job_id)
    assert job.status == ImportStatus.CANCELLED
    assert not job.committed
    assert job.cancel_requested
    with session_scope(write=False, engine=seeded) as s:
        assert s.execute(sa.text("select count(*) from patient_profile where mrn like 'MRN-92%'")).scalar() == 0
        with pytest.raises(Conflict):
            jobs.cancel_import(session=s, actor=admin, job_id=job_id)


def _cancel(engine, actor, job_id):
    with session_scope(engine=engine) as s:
        jobs.cancel_import(session=s, actor=actor, job_id=job_id)


def test_a_job_a_stopped_server_left_running_is_failed_at_the_next_start(seeded, actors):
    job_id = _start(seeded, actors[Role.ADMIN])
    stored = _job(seeded, job_id).storage_name
    with session_scope(engine=seeded) as s:
        s.execute(sa.update(ImportJob).where(ImportJob.id == job_id).values(status=ImportStatus.RUNNING))
        s.commit()
    with session_scope(engine=seeded) as s:
        assert jobs.recover_interrupted_imports(s, started_before=utcnow() - timedelta(hours=1)) == 0
        assert jobs.recover_interrupted_imports(s, started_before=utcnow()) == 1
    job = _job(seeded, job_id)
    assert job.status == ImportStatus.FAILED
    assert "nothing of it was committed" in job.message
    assert not (settings.FILES_DIR / stored).exists()


def test_a_bad_file_or_kind_is_refused_before_anything_is_stored(seeded, actors):
    admin = actors[Role.ADMIN]
    before, stored = snapshot(seeded), _stored_files()
    for data, kind, file_name, message in [(b"\xff\xfe\x00", "patients", "p.csv", "UTF"),
                                           (FILE, "shoes", "p.csv", "list"), (FILE, "patients", "p.pdf", "CSV file")]:
        with pytest.raises(ValidationError, match=message):
            _upload(seeded, admin, data, kind=kind, file_name=file_name)
    assert snapshot(seeded) == before
    assert _stored_files() == stored


def test_a_file_whose_columns_do_not_fit_is_kept_to_map_but_not_started(seeded, actors):
    admin = actors[Role.ADMIN]
    upload = _upload(seeded, admin, b"name\nAmina\n")
    assert "birth_date" in upload.preview.problem
    before = snapshot(seeded)
    for dry_run in (True, False):
        with pytest.raises(ValidationError, match="birth_date"), session_scope(engine=seeded) as s:
            jobs.start_import(session=s, actor=admin, upload_id=upload.id, dry_run=dry_run)
    assert snapshot(seeded) == before


@pytest.mark.parametrize("role", [Role.DOCTOR, Role.LAB, Role.PHARMACY, Role.ACCOUNTS, Role.PATIENT])
def test_only_an_importer_may_start_follow_or_cancel_imports(seeded, actors, role):
    job_id = _start(seeded, actors[Role.ADMIN])
    upload = _upload(seeded, actors[Role.ADMIN])
    before = snapshot(seeded)
    other = actors[role]
    with session_scope(engine=seeded) as s:
        for call in (lambda: jobs.receive_import_file(session=s, actor=other, kind="patients", file_name="p.csv",
                                                      data=FILE),
                     lambda: jobs.preview_upload(session=s, actor=other, upload_id=upload.id),
                     lambda: jobs.start_import(session=s, actor=other, upload_id=upload.id),
                     lambda: jobs.discard_upload(session=s, actor=other, upload_id=upload.id),
                     lambda: jobs.cancel_import(session=s, actor=other, job_id=job_id),
                     lambda: jobs.import_status(session=s, actor=other, job_id=job_id),
                     lambda: jobs.import_report(session=s, actor=other, job_id=job_id),
                     lambda: jobs.list_imports(session=s, actor=other)):
            with pytest.raises(PermissionDenied):
                call()
    assert snapshot(seeded) == before


def test_the_staff_kind_needs_the_users_permission_too(seeded, actors):
    admin = actors[Role.ADMIN]
    assert csv_kinds()["staff"].permission.value == "users.manage"
    stripped = admin.__class__(**{**admin.__dict__, "permissions": admin.permissions - {"users.manage"}})
    with pytest.raises(PermissionDenied):
        _upload(seeded, stripped, b"email,full_name,role\na@b.org,A B,lab\n", kind="staff", file_name="s.csv")
    upload = _upload(seeded, admin, b"email,full_name,role\na@b.org,A B,lab\n", kind="staff", file_name="s.csv")
    with pytest.raises(PermissionDenied), session_scope(engine=seeded) as s:
        jobs.start_import(session=s, actor=stripped, upload_id=upload.id)


def _stored_files() -> set[str]:
    return {p.name for p in settings.FILES_DIR.iterdir()} if settings.FILES_DIR.exists() else set()


def _uploads(engine) -> list[tuple[int, str]]:
    with session_scope(write=False, engine=engine) as s:
        return [tuple(r) for r in s.execute(sa.select(ImportJob.id, ImportJob.storage_name).where(
            ImportJob.status == ImportStatus.WAITING, ImportJob.started_at.is_(None)))]


def test_an_upload_is_stored_encrypted_at_once_and_checked_on_a_copy_then_imported_and_gone(seeded, actors):
    admin = actors[Role.ADMIN]
    upload = _upload(seeded, admin)
    assert upload.file_name == "p.csv"
    assert (upload.preview.headers, upload.preview.lines) == (["mrn", "full_name", "birth_date"], 6)
    [(upload_id, stored)] = _uploads(seeded)
    assert upload_id == upload.id
    assert b"MRN-92" not in (settings.FILES_DIR / stored).read_bytes()
    with session_scope(write=False, engine=seeded) as s:
        assert jobs.list_imports(session=s, actor=admin).total == 0
        with pytest.raises(NotFound):
            jobs.import_status(session=s, actor=admin, job_id=upload.id)
        remapped = jobs.preview_upload(session=s, actor=admin, upload_id=upload.id,
                                       mapping={"mrn": "mrn", "full_name": "full_name", "birth_date": ""})
    assert "birth_date" in remapped.problem
    with session_scope(engine=seeded) as s:
        check = jobs.start_import(session=s, actor=admin, upload_id=upload.id, dry_run=True)
    jobs.run_import(check, admin, engine=seeded)
    assert _uploads(seeded) == [(upload_id, stored)]
    assert (settings.FILES_DIR / stored).exists()
    assert _job(seeded, check).storage_name not in _stored_files()
    with session_scope(engine=seeded) as s:
        job_id = jobs.start_import(session=s, actor=admin, upload_id=upload.id, good_rows_only=True)
    assert _uploads(seeded) == []
    assert _job(seeded, job_id).storage_name == stored
    jobs.run_import(job_id, admin, engine=seeded)
    assert _job(seeded, job_id).created == 5
    assert stored not in _stored_files()
    with pytest.raises(NotFound, match="upload it again"), session_scope(engine=seeded) as s:
        jobs.start_import(session=s, actor=admin, upload_id=upload.id)


def test_an_upload_is_only_its_uploaders_and_survives_a_restart_for_a_day(seeded, actors):
    admin = actors[Role.ADMIN]
    upload = _upload(seeded, admin)
    [(_, stored)] = _uploads(seeded)
    other_admin = admin.__class__(**{**admin.__dict__, "user_id": actors[Role.DOCTOR].user_id})
    with pytest.raises(NotFound), session_scope(engine=seeded) as s:
        jobs.start_import(session=s, actor=other_admin, upload_id=upload.id)
    with session_scope(engine=seeded) as s:
        jobs.discard_upload(session=s, actor=other_admin, upload_id=upload.id)
        assert jobs.recover_interrupted_imports(s, started_before=utcnow()) == 0
    assert _uploads(seeded) == [(upload.id, stored)]
    assert (settings.FILES_DIR / stored).exists()
    with session_scope(engine=seeded) as s:
        s.execute(sa.update(ImportJob).where(ImportJob.id == upload.id).values(
            created_at=utcnow() - jobs.UPLOAD_KEPT - timedelta(minutes=1)))
        s.commit()
        jobs.recover_interrupted_imports(s, started_before=utcnow())
    assert _uploads(seeded) == []
    assert stored not in _stored_files()


def test_a_new_file_replaces_the_upload_and_an_abandoned_one_is_swept(seeded, actors):
    admin = actors[Role.ADMIN]
    first = _upload(seeded, admin)
    old = _upload(seeded, actors[Role.ADMIN], file_name="old.csv")
    [(_, first_file), (_, old_file)] = _uploads(seeded)
    with session_scope(engine=seeded) as s:
        s.execute(sa.update(ImportJob).where(ImportJob.id == old.id).values(
            created_at=utcnow() - jobs.UPLOAD_KEPT - timedelta(minutes=1)))
        s.commit()
    second = _upload(seeded, admin, replacing=first.id)
    assert [u for u, _ in _uploads(seeded)] == [second.id]
    assert not {first_file, old_file} & _stored_files()
    with session_scope(engine=seeded) as s:
        jobs.discard_upload(session=s, actor=admin, upload_id=second.id)
    assert _uploads(seeded) == []
    with session_scope(write=False, engine=seeded) as s:
        actions = s.execute(sa.select(AuditEvent.action, AuditEvent.detail).where(
            AuditEvent.action == "import.discard").order_by(AuditEvent.id)).all()
    assert [a for a, _ in actions] == ["import.discard"] * 3
    assert "within a day" in actions[1][1] or "within a day" in actions[0][1]


def test_a_fhir_bundle_uploaded_on_the_page_runs_as_a_job_and_again_changes_nothing(seeded, actors):
    from tests import fhir_bundles as fb

    admin = actors[Role.ADMIN]
    data = json.dumps(fb.bundle([*fb.practitioner_resources(), *fb.patient_resources(1, encounters=2)])).encode()
    ids = []
    for _ in range(2):
        job_id = _start(seeded, admin, data, kind="fhir")
        jobs.launch_import(job_id, admin, engine=seeded).result(timeout=120)
        ids.append(job_id)
    first, again = _job(seeded, ids[0]), _job(seeded, ids[1])
    assert (first.status, first.committed, first.failed) == (ImportStatus.DONE, True, 0)
    assert first.created > 10
    assert json.loads(first.skipped_by_type)
    assert (again.status, again.created, again.updated, again.unchanged) == (
        ImportStatus.DONE, 0, 0, first.created)
    assert not (settings.FILES_DIR / first.storage_name).exists()
    with session_scope(write=False, engine=seeded) as s:
        done = s.execute(sa.select(AuditEvent.detail).where(AuditEvent.action == "import.done")).scalars().all()
    assert len(done) == 2
    assert done[0].startswith("fhir from ")


def test_a_fhir_upload_of_another_fhir_version_fails_whole_with_its_message(seeded, actors):
    admin = actors[Role.ADMIN]
    stu3 = {"resourceType": "Bundle", "type": "collection",
            "meta": {"profile": ["http://hl7.org/fhir/STU3/StructureDefinition/Bundle"]},
            "entry": [{"resource": {"resourceType": "Patient", "id": "p1"}}]}
    before = snapshot(seeded)
    job_id = _start(seeded, admin, json.dumps(stu3).encode(), kind="fhir")
    jobs.launch_import(job_id, admin, engine=seeded).result(timeout=60)
    job = _job(seeded, job_id)
    assert (job.status, job.committed, job.created) == (ImportStatus.FAILED, False, 0)
    assert "STU3" in job.message
    changed = {t for t, rows in snapshot(seeded).items() if rows != before.get(t)}
    assert changed <= {"import_job", "import_line", "audit_event"}

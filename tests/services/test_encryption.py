"""Encryption at rest: clinical text and stored files never hold plain text, and the data
key can be rotated without losing a value or a file."""

from __future__ import annotations

import stat
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken

from hms_app import cli, settings
from hms_app.db import crypto
from hms_app.db.engine import session_scope
from hms_app.db.enums import Role
from hms_app.db.models import (
    Allergy,
    BreakGlass,
    Document,
    Encounter,
    LabOrder,
    PrescriptionItem,
    Problem,
)
from hms_app.operations import keys
from hms_app.operations.keys import KeyRotationFailed, encrypted_columns, rotate_data_key
from hms_app.services.care import clinical, documents, prescribing
from hms_app.services.care.clinical import EncounterForm
from hms_app.services.core import audit, files
from hms_app.services.core.errors import Conflict
from tests.conftest import login_as
from tests.services.appointment_helpers import call
from tests.services.clinical_helpers import (
    OTHER_DOCTOR_EMAIL,
    any_lab_test_ids,
    medicine_id,
    open_visit,
    pdf_bytes,
    raw_database_files,
    raw_database_text,
    raw_tokens,
    stored_files,
    use_private_data_dir,
    with_reference_data,
)
from tests.services.helpers import audit_events

pytestmark = pytest.mark.db

MARKER = "ZEBRA-7391-QUOKKA"


@pytest.fixture(autouse=True)
def _private_data(monkeypatch, tmp_path):
    yield from use_private_data_dir(monkeypatch, tmp_path)


@pytest.fixture
def hospital(seeded):
    return with_reference_data(seeded)


@dataclass(frozen=True)
class Record:
    encounter_id: int
    allergy_id: int
    problem_id: int
    prescription_id: int
    lab_order_id: int
    document_id: int
    document_bytes: bytes


@pytest.fixture
def record(hospital, actors) -> Record:
    """Maria's record with the marker in every kind of clinical text and in an uploaded file."""
    doctor, maria = actors[Role.DOCTOR], actors[Role.PATIENT].user_id
    encounter_id = open_visit(hospital, doctor, maria)
    call(hospital, clinical.save_encounter, actor=doctor, encounter_id=encounter_id, form=EncounterForm(
        subjective=f"subjective {MARKER}", objective=f"objective {MARKER}", assessment=f"assessment {MARKER}",
        plan=f"plan {MARKER}", diagnosis=f"diagnosis {MARKER}", icd10_code="I10"))
    allergy_id = call(hospital, clinical.add_allergy, actor=doctor, patient_id=maria, substance=f"Nuts {MARKER}",
                      reaction=f"Anaphylaxis {MARKER}", severity="severe")
    problem_id = call(hospital, clinical.add_problem, actor=doctor, patient_id=maria, description=f"Asthma {MARKER}")
    # Maria is allergic to penicillin (demo data): amoxicillin warns and needs the override.
    items = [prescribing.ItemForm(medicine_id=medicine_id(hospital, "amoxicillin"), dose="1 capsule", route="oral",
                                  frequency="three times daily", days=5, instructions=f"After food {MARKER}")]
    read = call(hospital, prescribing.check_prescription, actor=doctor, encounter_id=encounter_id, items=items)
    prescription_id = call(hospital, prescribing.prescribe, actor=doctor, encounter_id=encounter_id, items=items,
                           override_reason=f"Tolerated before {MARKER}", acknowledged_warnings=read)
    [lab_order_id] = call(hospital, prescribing.order_lab_tests, actor=doctor, encounter_id=encounter_id,
                          test_ids=any_lab_test_ids(hospital, 1), priority="urgent", note=f"Fasting {MARKER}")
    data = pdf_bytes(f"Echo report {MARKER}")
    document_id = call(hospital, documents.upload_document, actor=doctor, patient_id=maria,
                       title=f"Echo {MARKER}", file_name="echo.pdf", data=data)
    other_doctor = login_as(hospital, OTHER_DOCTOR_EMAIL)
    call(hospital, clinical.break_glass, actor=other_doctor, patient_id=maria, reason=f"Night cover {MARKER}")
    return Record(encounter_id, allergy_id, problem_id, prescription_id, lab_order_id, document_id, data)


def all_tokens(engine) -> dict[tuple[str, str, int], str]:
    """Every stored value of every encrypted column, read with plain SQL."""
    return {(table.name, column.name, key): token
            for table, columns in encrypted_columns().items() for column in columns
            for key, token in raw_tokens(engine, table.name, column.name).items()}


def read_back(engine, record: Record) -> dict[str, str]:
    """The marked values, decrypted through the models."""
    with session_scope(write=False, engine=engine) as s:
        encounter = s.get(Encounter, record.encounter_id)
        [item] = s.execute(sa.select(PrescriptionItem)
                           .where(PrescriptionItem.prescription_id == record.prescription_id)).scalars()
        return {
            "subjective": encounter.subjective, "diagnosis": encounter.diagnosis, "plan": encounter.plan,
            "allergy": s.get(Allergy, record.allergy_id).substance,
            "reaction": s.get(Allergy, record.allergy_id).reaction,
            "problem": s.get(Problem, record.problem_id).description,
            "instructions": item.instructions, "override": item.override_reason, "warnings": item.warnings,
            "lab note": s.get(LabOrder, record.lab_order_id).note,
            "title": s.get(Document, record.document_id).title,
            "break glass": s.execute(sa.select(BreakGlass.reason)).scalar_one(),
        }


EXPECTED = {
    "subjective": f"subjective {MARKER}", "diagnosis": f"diagnosis {MARKER}", "plan": f"plan {MARKER}",
    "allergy": f"Nuts {MARKER}", "reaction": f"Anaphylaxis {MARKER}", "problem": f"Asthma {MARKER}",
    "instructions": f"After food {MARKER}", "override": f"Tolerated before {MARKER}",
    "lab note": f"Fasting {MARKER}", "title": f"Echo {MARKER}", "break glass": f"Night cover {MARKER}",
}


def key_file_keys() -> list[bytes]:
    return [line for line in crypto.key_file().read_bytes().splitlines() if line]


# --- at rest --------------------------------------------------------------------------------------


def test_the_marker_is_nowhere_in_the_raw_database_or_files(hospital, record):
    values = read_back(hospital, record)
    assert {k: v for k, v in values.items() if k != "warnings"} == EXPECTED
    assert values["warnings"].startswith("Amoxicillin: ")
    assert "Penicillin" in values["warnings"]

    raw = raw_database_text(hospital)
    assert MARKER not in raw
    assert MARKER.encode() not in raw_database_files(hospital)
    assert values["warnings"] not in raw, "warnings are encrypted"
    assert "Essential hypertension" not in raw, "the demo's clinical text is encrypted too"
    [stored] = stored_files()
    assert MARKER.encode() not in stored.read_bytes()
    assert b"%PDF" not in stored.read_bytes()
    assert MARKER.encode() in record.document_bytes  # the marker was there to find
    assert len(stored_files()) == 1


def test_every_encrypted_column_holds_fernet_tokens(hospital, record):
    tokens = all_tokens(hospital)
    found = {(table, column) for table, column, _ in tokens}
    assert found <= {(t.name, c.name) for t, cs in encrypted_columns().items() for c in cs}
    assert {"encounter", "allergy", "problem", "prescription_item", "lab_order", "document", "break_glass"} <= {
        t for t, _ in found}
    for token in tokens.values():
        assert token.startswith("gAAAAA"), "a Fernet token (version byte 0x80, base64)"
        assert crypto.cipher().decrypt(token.encode()) is not None


def test_encryption_round_trip():
    token = crypto.encrypt_bytes(b"blood results")
    assert crypto.decrypt_bytes(token) == b"blood results"
    assert crypto.encrypt_bytes(b"blood results") != token, "a fresh IV every time"
    column = crypto.EncryptedText()
    stored = column.process_bind_param("Type 2 diabetes", None)
    assert stored != "Type 2 diabetes"
    assert column.process_result_value(stored, None) == "Type 2 diabetes"
    assert column.process_bind_param(None, None) is None
    assert column.process_result_value(None, None) is None
    assert column.process_result_value(column.process_bind_param("", None), None) == ""


def test_the_key_file_is_created_once_with_mode_0600():
    assert not crypto.key_file().exists()
    crypto.encrypt_bytes(b"x")
    path = crypto.key_file()
    assert path.parent == settings.DATA_DIR
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    first = path.read_bytes()
    crypto.reset_cipher()
    crypto.encrypt_bytes(b"x")
    assert path.read_bytes() == first


def test_workers_starting_together_share_one_new_key_file():
    """Several workers may start at once on a fresh install: all must end up with the same key."""
    racers = 16
    barrier = threading.Barrier(racers)

    def first_use(_):
        barrier.wait(timeout=30)
        try:
            return crypto.current_keys()
        except Exception as error:  # collected and checked below
            return error

    with ThreadPoolExecutor(max_workers=racers) as pool:
        results = list(pool.map(first_use, range(racers)))
    assert [r for r in results if isinstance(r, Exception)] == []
    assert len({tuple(r) for r in results}) == 1
    assert len(results[0]) == 1
    assert key_file_keys() == results[0]
    assert [p.name for p in settings.DATA_DIR.iterdir()] == ["hms.key"], "no temporary file left behind"


def test_keys_from_the_environment_decrypt_newest_first(monkeypatch):
    old, new = Fernet.generate_key(), Fernet.generate_key()
    monkeypatch.setattr(settings, "DATA_KEY", f" {new.decode()} , {old.decode()} ")
    crypto.reset_cipher()
    assert Fernet(new).decrypt(crypto.encrypt_bytes(b"x")) == b"x"
    assert crypto.decrypt_bytes(Fernet(old).encrypt(b"y")) == b"y"
    assert not crypto.key_file().exists()


def test_a_wrong_key_fails_loudly(hospital, record, monkeypatch):
    monkeypatch.setattr(settings, "DATA_KEY", Fernet.generate_key().decode())
    crypto.reset_cipher()
    with pytest.raises(RuntimeError, match="wrong or missing data key"):
        read_back(hospital, record)
    with pytest.raises(InvalidToken):
        files.read_decrypted(stored_files()[0].name)


# --- rotation -----------------------------------------------------------------------------------------


def test_rotation_re_encrypts_every_value_and_file_and_drops_the_old_key(hospital, record, actors, monkeypatch):
    monkeypatch.setattr(keys, "BATCH_SIZE", 3)  # several batches per table
    old_keys = key_file_keys()
    before_tokens = all_tokens(hospital)
    before_files = {p.name: p.read_bytes() for p in stored_files()}

    with session_scope(engine=hospital) as s:
        report = rotate_data_key(s)

    [new_key] = key_file_keys()
    assert new_key not in old_keys
    assert stat.S_IMODE(crypto.key_file().stat().st_mode) == 0o600
    assert not crypto.key_file().with_suffix(".tmp").exists()
    after_tokens = all_tokens(hospital)
    assert after_tokens.keys() == before_tokens.keys()
    assert all(after_tokens[k] != before_tokens[k] for k in before_tokens), "every token was rewritten"
    after_files = {p.name: p.read_bytes() for p in stored_files()}
    assert after_files.keys() == before_files.keys()
    assert all(after_files[n] != before_files[n] for n in before_files)
    assert report == keys.RotationReport(
        tables=len(encrypted_columns()), columns=sum(len(c) for c in encrypted_columns().values()),
        values=len([t for t in before_tokens.values() if t is not None]), files=1, old_keys_dropped=1)

    # Everything written before still reads, through the models and the services.
    assert {k: v for k, v in read_back(hospital, record).items() if k != "warnings"} == EXPECTED
    downloaded = call(hospital, documents.download_document, actor=actors[Role.PATIENT],
                      document_id=record.document_id)
    assert downloaded.data == record.document_bytes
    assert Fernet(new_key).decrypt(after_tokens[("encounter", "diagnosis", record.encounter_id)].encode()) == (
        f"diagnosis {MARKER}".encode())

    # The old key alone no longer opens anything.
    monkeypatch.setattr(settings, "DATA_KEY", old_keys[0].decode())
    crypto.reset_cipher()
    with pytest.raises(RuntimeError, match="could not be decrypted"):
        read_back(hospital, record)
    with pytest.raises(InvalidToken):
        files.read_decrypted(record_storage_name(hospital, record))

    [rotated] = audit_events(hospital, action="key.rotate")
    assert (rotated.actor_id, rotated.actor_email, str(rotated.outcome)) == (None, "system", "success")
    assert rotated.detail == (f"{report.values} values in {report.columns} columns of {report.tables} tables, "
                              f"1 files; 1 old key(s) dropped")
    with session_scope(write=False, engine=hospital) as s:
        assert audit.verify_chain(s).ok


def record_storage_name(engine, record: Record) -> str:
    with engine.connect() as conn:
        return conn.execute(sa.select(Document.storage_name).where(Document.id == record.document_id)).scalar_one()


def test_new_values_after_rotation_use_the_new_key_and_rotation_repeats(hospital, record, actors):
    for _ in range(2):
        with session_scope(engine=hospital) as s:
            rotate_data_key(s)
    [key] = key_file_keys()
    doctor = actors[Role.DOCTOR]
    allergy_id = call(hospital, clinical.add_allergy, actor=doctor, patient_id=actors[Role.PATIENT].user_id,
                      substance="Latex")
    token = raw_tokens(hospital, "allergy", "substance")[allergy_id]
    assert Fernet(key).decrypt(token.encode()) == b"Latex"
    assert read_back(hospital, record)["title"] == f"Echo {MARKER}"


def test_rotation_without_stored_files_and_past_files_that_are_not_documents(hospital):
    with session_scope(engine=hospital) as s:
        assert rotate_data_key(s).files == 0
    settings.FILES_DIR.mkdir(parents=True)
    stray = settings.FILES_DIR / "README"
    stray.write_bytes(b"not ours")
    leftover = settings.FILES_DIR / (("a" * 32) + ".rotating")
    leftover.write_bytes(b"half-written by a crashed rotation")
    with session_scope(engine=hospital) as s:
        assert rotate_data_key(s).files == 0
    assert stray.read_bytes() == b"not ours"
    assert leftover.read_bytes() == b"half-written by a crashed rotation"


def test_rotation_refuses_when_the_key_comes_from_the_environment(hospital, record, monkeypatch):
    key = key_file_keys()[0]
    crypto.key_file().unlink()
    monkeypatch.setattr(settings, "DATA_KEY", key.decode())
    crypto.reset_cipher()
    before = all_tokens(hospital)
    with session_scope(engine=hospital) as s, pytest.raises(Conflict) as refused:
        rotate_data_key(s)
    assert "HMS_DATA_KEY" in refused.value.message
    assert "hms rotate-key" in refused.value.message
    assert all_tokens(hospital) == before
    assert not crypto.key_file().exists()
    assert audit_events(hospital, action="key.rotate") == []


def test_a_failed_rotation_commits_nothing_and_keeps_both_keys(hospital, record):
    old_keys = key_file_keys()
    before = all_tokens(hospital)
    corrupt = settings.FILES_DIR / ("f" * 32)
    corrupt.write_bytes(b"not a token")
    with session_scope(engine=hospital) as s, pytest.raises(KeyRotationFailed) as failed:
        rotate_data_key(s)
    assert "ffffffff" in failed.value.message
    assert "keeps the new and the old keys" in failed.value.message
    assert all_tokens(hospital) == before
    keys_now = key_file_keys()
    assert len(keys_now) == 2
    assert keys_now[1:] == old_keys
    crypto.reset_cipher()
    assert read_back(hospital, record)["problem"] == f"Asthma {MARKER}"
    assert files.read_decrypted(record_storage_name(hospital, record)) == record.document_bytes
    assert audit_events(hospital, action="key.rotate") == []

    corrupt.unlink()
    with session_scope(engine=hospital) as s:
        assert rotate_data_key(s).old_keys_dropped == 2
    assert len(key_file_keys()) == 1
    assert read_back(hospital, record)["problem"] == f"Asthma {MARKER}"


def test_a_value_under_an_unknown_key_stops_the_rotation(hospital, record):
    stranger_token = Fernet(Fernet.generate_key()).encrypt(b"lost").decode()
    with hospital.begin() as conn:
        conn.execute(sa.text("UPDATE problem SET description = :token WHERE id = :id"),
                     {"token": stranger_token, "id": record.problem_id})
    with session_scope(engine=hospital) as s, pytest.raises(KeyRotationFailed, match=f"problem.description of row {record.problem_id}"):
        rotate_data_key(s)
    assert raw_tokens(hospital, "problem", "description")[record.problem_id] == stranger_token


def test_the_rotate_key_command(hospital, record, capsys, monkeypatch):
    assert cli.main(["rotate-key"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("data key rotated: ")
    assert "1 files" in out
    assert len(key_file_keys()) == 1

    monkeypatch.setattr(settings, "DATA_KEY", key_file_keys()[0].decode())
    assert cli.main(["rotate-key"]) == 1
    assert "HMS_DATA_KEY" in capsys.readouterr().err


def test_encrypted_columns_are_found_by_their_type():
    names = {(t.name, c.name) for t, cs in encrypted_columns().items() for c in cs}
    assert {("encounter", "diagnosis"), ("document", "title"), ("break_glass", "reason")} <= names
    assert ("user", "password_hash") not in names

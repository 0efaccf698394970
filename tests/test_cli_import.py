"""``hms import``: in-process, on a test database; counts, failed lines, the report file, exit codes."""

from __future__ import annotations

import csv

import pytest
import sqlalchemy as sa

from hms_app import cli
from hms_app.db.engine import session_scope
from hms_app.db.enums import ImportStatus
from hms_app.db.models import AuditEvent, ImportJob, PatientProfile

pytestmark = pytest.mark.db

FILE = ("Record No;Name;Date of birth\n"
        "MRN-910001;Amina Yusuf;1980-04-23\n"
        "MRN-910002;Omar Yusuf;23/04/1980\n")


def _mrns(engine) -> set[str]:
    with session_scope(write=False, engine=engine) as s:
        return set(s.execute(sa.select(PatientProfile.mrn).where(PatientProfile.mrn.like("MRN-91%"))).scalars())


def test_import_maps_headers_reports_failed_lines_and_exits_1_when_nothing_committed(seeded, tmp_path, capsys):
    path = tmp_path / "patients.csv"
    path.write_text(FILE, encoding="utf-8")
    common = ["import", "patients", str(path), "--by", "admin@hms.example", "--map", "Record No=mrn"]
    assert cli.main(common) == 1
    err = capsys.readouterr().err
    assert "line 3:" in err
    assert "1980-04-23" in err
    assert _mrns(seeded) == set()
    report = tmp_path / "report.csv"
    assert cli.main([*common, "--good-rows-only", "--report", str(report)]) == 0
    assert _mrns(seeded) == {"MRN-910001"}
    rows = list(csv.DictReader(report.open(encoding="utf-8")))
    assert [(r["line"], r["outcome"]) for r in rows] == [("2", "created"), ("3", "failed")]
    assert cli.main([*common, "--good-rows-only"]) == 0
    out = capsys.readouterr().out
    assert "Done" in out
    with session_scope(write=False, engine=seeded) as s:
        jobs = s.execute(sa.select(ImportJob).order_by(ImportJob.id)).scalars().all()
        audited = s.execute(sa.select(AuditEvent.detail).where(AuditEvent.action.like("import.%"))).scalars().all()
    assert [j.status for j in jobs] == [ImportStatus.FAILED, ImportStatus.DONE, ImportStatus.DONE]
    assert (jobs[-1].unchanged, jobs[-1].failed, jobs[-1].created) == (1, 1, 0)
    assert len(audited) == 3
    assert "patients from patients.csv; good lines only; created 0, updated 0, unchanged 1" \
        in audited[-1]


def test_a_dry_run_changes_nothing_and_an_unknown_or_unentitled_account_is_refused(seeded, tmp_path, capsys):
    path = tmp_path / "patients.csv"
    path.write_text(FILE.replace("23/04/1980", "1980-04-23"), encoding="utf-8")
    base = ["import", "patients", str(path), "--map", "Record No=mrn"]
    assert cli.main([*base, "--by", "admin@hms.example", "--dry-run"]) == 0
    assert _mrns(seeded) == set()
    assert cli.main([*base, "--by", "nobody@hms.example"]) == 1
    assert cli.main([*base, "--by", "lab@hms.example"]) == 1
    assert "permission" in capsys.readouterr().err
    assert cli.main([*base, "--by", "admin@hms.example", "--map", "nonsense"]) == 2


def test_a_latin1_file_is_refused_before_anything_runs(seeded, tmp_path, capsys):
    path = tmp_path / "patients.csv"
    path.write_bytes(FILE.replace("Amina", "Zoë").encode("latin-1"))
    assert cli.main(["import", "patients", str(path), "--by", "admin@hms.example"]) == 1
    assert "UTF-8" in capsys.readouterr().err


def test_import_fhir_takes_a_folder_of_bundles_and_a_second_run_changes_nothing(seeded, tmp_path, capsys):
    from tests import fhir_bundles as fb

    folder = tmp_path / "synthea"
    list(fb.write_patient_files(folder, 2, encounters=2))
    command = ["import", "fhir", str(folder), "--by", "admin@hms.example"]
    assert cli.main(command) == 0
    first = capsys.readouterr().out
    assert "Done" in first
    with session_scope(write=False, engine=seeded) as s:
        imported = s.execute(sa.select(sa.func.count()).select_from(PatientProfile).where(
            PatientProfile.user_id.in_(sa.select(sa.column("entity_id")).select_from(sa.table("source_record")).where(
                sa.column("source_type") == "Patient")))).scalar_one()
    assert imported == 2
    assert cli.main(command) == 0
    with session_scope(write=False, engine=seeded) as s:
        again = s.execute(sa.select(ImportJob).order_by(ImportJob.id.desc())).scalars().first()
    assert (again.kind, again.created, again.updated, again.unchanged > 0) == ("fhir", 0, 0, True)


def test_the_report_file_defuses_a_cell_that_a_spreadsheet_would_run(seeded, tmp_path):
    path = tmp_path / "patients.csv"
    path.write_text("mrn,full_name,birth_date\n=HYPERLINK(\"http://x.example\"),Eve Formula,yesterday\n",
                    encoding="utf-8")
    report = tmp_path / "report.csv"
    assert cli.main(["import", "patients", str(path), "--by", "admin@hms.example", "--report", str(report)]) == 1
    rows = list(csv.DictReader(report.open(encoding="utf-8")))
    assert rows[0]["outcome"] == "failed"
    assert not rows[0]["record"].startswith("=")

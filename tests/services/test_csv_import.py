"""The CSV import engine: reading the file, mapping its headers, line numbers, and the three ways to run."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from hms_app.db.engine import session_scope
from hms_app.db.enums import LineOutcome, Role
from hms_app.db.models import PatientProfile, User
from hms_app.services.core.errors import PermissionDenied, ValidationError
from hms_app.services.golive import csv_import
from hms_app.services.golive.kinds import ImportCancelled, csv_kinds
from tests.services.helpers import snapshot

pytestmark = pytest.mark.db

GOOD = (
    "mrn,full_name,birth_date,sex,phone\r\n"
    "MRN-900001,Amina Yusuf,1980-04-23,female,+44 20 7946 0000\r\n"
    "MRN-900002,Omar Yusuf,1979-01-02,M,\r\n"
)


def _run(engine, actor, data, **kwargs):
    with session_scope(engine=engine) as s:
        return csv_import.run_csv(session=s, actor=actor, kind=csv_kinds()["patients"], data=data, **kwargs)


def _mrns(engine) -> set[str]:
    with session_scope(write=False, engine=engine) as s:
        return set(s.execute(sa.select(PatientProfile.mrn).where(PatientProfile.mrn.like("MRN-9%"))).scalars())


def _outcomes(report) -> list[tuple[int, LineOutcome]]:
    return [(r.line, r.outcome) for r in report.lines]


# --- reading --------------------------------------------------------------------------------------


def test_utf8_with_and_without_bom_and_utf16_with_bom_read_alike():
    plain = csv_import.read_text(GOOD.encode())
    assert csv_import.read_text(b"\xef\xbb\xbf" + GOOD.encode()) == plain
    assert csv_import.read_text(GOOD.encode("utf-16")) == plain


def test_a_latin1_file_is_refused_with_the_line_and_how_to_save_as_utf8():
    data = "mrn,full_name,birth_date\nMRN-1,Zoë Müller,1990-01-01\n".encode("latin-1")
    with pytest.raises(ValidationError) as error:
        csv_import.read_text(data)
    assert "line 2" in error.value.message
    assert "CSV UTF-8" in error.value.message


@pytest.mark.parametrize("data", [b"", b"PK\x03\x04\x00\x00binary", b"a,b\n\x00\x01"])
def test_empty_and_binary_files_are_refused(data):
    with pytest.raises(ValidationError):
        csv_import.read_text(data)


def test_a_file_past_the_size_limit_is_refused(monkeypatch):
    monkeypatch.setattr(csv_import, "MAX_IMPORT_BYTES", 100)
    with pytest.raises(ValidationError, match="larger than"):
        csv_import.read_text(b"a" * 101)


def test_a_file_past_the_row_limit_is_refused(monkeypatch):
    monkeypatch.setattr(csv_import, "MAX_IMPORT_ROWS", 1)
    with pytest.raises(ValidationError, match="more than 1 lines"):
        csv_import.parse_csv(GOOD.encode())


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_the_delimiter_is_sniffed(delimiter):
    parsed = csv_import.parse_csv(GOOD.replace(",", delimiter).encode())
    assert parsed.headers == ["mrn", "full_name", "birth_date", "sex", "phone"]
    assert parsed.lines[0].cells[1] == "Amina Yusuf"


def test_a_quoted_comma_does_not_fool_the_sniffer():
    parsed = csv_import.parse_csv(b'"name, full";birth_date\n"Yusuf, Amina";1980-04-23\n')
    assert parsed.delimiter == ";"
    assert parsed.lines[0].cells == ["Yusuf, Amina", "1980-04-23"]


def test_line_numbers_are_the_files_own_across_quoted_line_breaks_and_blank_lines():
    data = (b'mrn,full_name,birth_date,address\n'
            b'MRN-900001,Amina Yusuf,1980-04-23,"12 Mill Lane\nLeeds\nLS1"\n'
            b'\n'
            b'MRN-900002,Omar Yusuf,1979-01-02,\n')
    parsed = csv_import.parse_csv(data)
    assert [line.line for line in parsed.lines] == [2, 6]
    assert parsed.lines[0].cells[3] == "12 Mill Lane\nLeeds\nLS1"


def test_a_file_without_a_header_or_with_an_unclosed_quote_is_refused():
    with pytest.raises(ValidationError, match="no header"):
        csv_import.parse_csv(b"\n\n,,\n")
    with pytest.raises(ValidationError, match="closing quote"):
        csv_import.parse_csv(b'mrn,full_name\nMRN-1,"Amina\n')


# --- mapping --------------------------------------------------------------------------------------


def test_headers_map_by_name_and_alias_whatever_their_case_spaces_and_underscores():
    kind = csv_kinds()["patients"]
    mapping = csv_import.auto_mapping(kind, ["MRN", "Full Name", "Date of Birth", "GENDER", "Shoe size"])
    assert mapping == {"MRN": "mrn", "Full Name": "full_name", "Date of Birth": "birth_date", "GENDER": "sex",
                       "Shoe size": ""}


def test_an_explicit_mapping_overrides_and_a_missing_required_column_is_named():
    kind = csv_kinds()["patients"]
    data = b"mrn,name,born on\nMRN-900001,Amina Yusuf,1980-04-23\n"
    preview = csv_import.preview_csv(kind, data)
    assert "birth_date" in preview.problem
    assert preview.mapping["born on"] == ""
    preview = csv_import.preview_csv(kind, data, {"born on": "birth_date"})
    assert preview.problem == ""
    assert preview.mapping == {"mrn": "mrn", "name": "full_name", "born on": "birth_date"}
    assert preview.rows == [["MRN-900001", "Amina Yusuf", "1980-04-23"]]
    assert preview.lines == 1


def test_a_mapping_to_an_unknown_column_or_twice_to_one_column_is_refused():
    kind = csv_kinds()["patients"]
    headers = ["mrn", "name", "dob"]
    with pytest.raises(ValidationError, match="not a column"):
        csv_import.check_mapping(kind, headers, {"name": "shoe_size"})
    with pytest.raises(ValidationError, match="Both"):
        csv_import.check_mapping(kind, headers, {"mrn": "full_name"})
    with pytest.raises(ValidationError, match="no column headed"):
        csv_import.check_mapping(kind, headers, {"nope": "mrn"})


def test_the_template_lists_every_column_with_an_example_line():
    kind = csv_kinds()["patients"]
    parsed = csv_import.parse_csv(csv_import.template_csv(kind).encode())
    assert parsed.headers == [c.name for c in kind.columns]
    assert len(parsed.lines) == 1


# --- running --------------------------------------------------------------------------------------


def test_a_dry_run_reports_what_a_real_run_does_and_writes_nothing(seeded, actors):
    before = snapshot(seeded)
    dry = _run(seeded, actors[Role.ADMIN], GOOD.encode(), dry_run=True)
    assert snapshot(seeded) == before
    assert not dry.committed
    assert dry.created == 2
    assert "Checked" in dry.message
    real = _run(seeded, actors[Role.ADMIN], GOOD.encode())
    assert _outcomes(real) == _outcomes(dry) == [(2, LineOutcome.CREATED), (3, LineOutcome.CREATED)]
    assert real.committed
    assert _mrns(seeded) == {"MRN-900001", "MRN-900002"}


BAD = GOOD + "MRN-900003,Lena Park,31/12/1990,female,\r\nMRN-900004,Ben Park,1991-02-03,dragon,\r\n"


def test_all_or_nothing_writes_nothing_when_a_line_fails_and_says_which(seeded, actors):
    before = snapshot(seeded)
    report = _run(seeded, actors[Role.ADMIN], BAD.encode())
    assert snapshot(seeded) == before
    assert not report.committed
    assert report.failed == 2
    assert report.created == 2
    failed = {r.line: r.message for r in report.lines if r.outcome is LineOutcome.FAILED}
    assert set(failed) == {4, 5}
    assert "1980-04-23" in failed[4]
    assert "female, male" in failed[5]
    assert "Nothing was imported" in report.message


def test_good_rows_only_commits_the_good_lines_and_reports_the_others(seeded, actors):
    report = _run(seeded, actors[Role.ADMIN], BAD.encode(), good_rows_only=True)
    assert report.committed
    assert report.created == 2
    assert report.failed == 2
    assert _mrns(seeded) == {"MRN-900001", "MRN-900002"}


def test_the_same_file_again_is_all_unchanged_and_an_edited_one_updates(seeded, actors):
    _run(seeded, actors[Role.ADMIN], GOOD.encode())
    again = _run(seeded, actors[Role.ADMIN], GOOD.encode())
    assert [o for _, o in _outcomes(again)] == [LineOutcome.UNCHANGED] * 2
    edited = _run(seeded, actors[Role.ADMIN], GOOD.replace("Omar Yusuf", "Omar B. Yusuf").encode())
    assert [o for _, o in _outcomes(edited)] == [LineOutcome.UNCHANGED, LineOutcome.UPDATED]
    with session_scope(write=False, engine=seeded) as s:
        name = s.execute(sa.select(User.full_name).join(PatientProfile, PatientProfile.user_id == User.id)
                         .where(PatientProfile.mrn == "MRN-900002")).scalar_one()
    assert name == "Omar B. Yusuf"


def test_a_record_listed_twice_fails_on_its_second_line(seeded, actors):
    data = GOOD + "MRN-900001,Amina Yusuf,1980-04-23,female,\r\n"
    report = _run(seeded, actors[Role.ADMIN], data.encode(), good_rows_only=True)
    assert report.lines[2].outcome is LineOutcome.FAILED
    assert "Line 2 already holds MRN-900001" in report.lines[2].message
    assert report.created == 2


def test_a_cancel_rolls_back_everything(seeded, actors, monkeypatch):
    monkeypatch.setattr(csv_import, "PROGRESS_EVERY", 1)
    seen = []

    def progress(done, total):
        seen.append((done, total))
        if done == 2:
            raise ImportCancelled

    before = snapshot(seeded)
    report = _run(seeded, actors[Role.ADMIN], GOOD.encode(), progress=progress)
    assert snapshot(seeded) == before
    assert seen == [(0, 2), (1, 2), (2, 2)]
    assert not report.committed
    assert "Cancelled" in report.message


def test_an_unexpected_error_rolls_back_everything_and_is_raised(seeded, actors, monkeypatch):
    kind = csv_kinds()["patients"]
    calls = []

    def broken(**kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("bug")
        return kind.import_row(**kwargs)

    before = snapshot(seeded)
    with session_scope(engine=seeded) as s, pytest.raises(RuntimeError):
        csv_import.run_csv(session=s, actor=actors[Role.ADMIN], kind=kind.__class__(**{**kind.__dict__,
                           "import_row": broken}), data=GOOD.encode())
    assert snapshot(seeded) == before


@pytest.mark.parametrize("role", [Role.DOCTOR, Role.LAB, Role.PHARMACY, Role.ACCOUNTS, Role.PATIENT])
def test_only_an_importer_may_run_an_import(seeded, actors, role):
    before = snapshot(seeded)
    with pytest.raises(PermissionDenied):
        _run(seeded, actors[role], GOOD.encode())
    assert snapshot(seeded) == before

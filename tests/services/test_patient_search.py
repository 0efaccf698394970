"""A doctor finds a patient (``care.patient_search``): own patients first and marked, anyone else by
name, MRN and birth year only, opened through break-the-glass; every search audited."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from babel import Locale

from hms_app import settings
from hms_app.db.engine import session_scope
from hms_app.db.enums import Role
from hms_app.db.models import PatientProfile, User
from hms_app.services.care import clinical
from hms_app.services.care.clinical import BreakGlassRequired
from hms_app.services.care.patient_search import search_patients
from hms_app.services.core.errors import PermissionDenied
from hms_app.services.core.localtime import format_date
from tests.conftest import login_as
from tests.services.appointment_helpers import call
from tests.services.clinical_helpers import STRANGER_EMAIL, care_appointment, use_private_data_dir
from tests.services.helpers import assert_refused, audit_events

pytestmark = pytest.mark.db


@pytest.fixture(autouse=True)
def _private_data(monkeypatch, tmp_path):
    yield from use_private_data_dir(monkeypatch, tmp_path)


@pytest.fixture
def doctor(actors):
    return actors[Role.DOCTOR]


@pytest.fixture
def maria(seeded, doctor, actors):
    """Maria Garcia, Dr Hart's patient through an appointment."""
    care_appointment(seeded, doctor, actors[Role.PATIENT].user_id)
    return actors[Role.PATIENT].user_id


@pytest.fixture
def stranger(seeded):
    """Aisha Khan: no appointment with Dr Hart."""
    return login_as(seeded, STRANGER_EMAIL).user_id


def _profile(engine, patient_id):
    with engine.connect() as conn:
        return conn.execute(sa.select(User.full_name, PatientProfile.mrn, PatientProfile.birth_date)
                            .join(PatientProfile, PatientProfile.user_id == User.id).where(User.id == patient_id)).one()


def _search(engine, doctor, **kwargs):
    return call(engine, search_patients, actor=doctor, **kwargs)


def test_an_empty_search_lists_only_the_doctors_own_patients(seeded, doctor, maria, stranger):
    found = _search(seeded, doctor)
    ids = [r.patient_id for r in found.rows]
    assert maria in ids
    assert stranger not in ids
    assert all(r.own for r in found.rows)


def test_own_patients_come_first_and_are_marked(seeded, doctor, maria, stranger):
    # "a" alone reaches no further than the doctor's own; "ar" (Maria Garcia, and others) does.
    found = _search(seeded, doctor, search="ar", page_size=100)
    flags = [r.own for r in found.rows]
    assert flags == sorted(flags, reverse=True), "own patients first"
    mine = next(r for r in found.rows if r.patient_id == maria)
    name, mrn, born = _profile(seeded, maria)
    assert (mine.full_name, mine.mrn, mine.own) == (name, mrn, True)
    assert mine.born == format_date(born)


def test_anyone_else_shows_name_mrn_and_birth_year_only(seeded, doctor, stranger):
    name, mrn, born = _profile(seeded, stranger)
    [row] = [r for r in _search(seeded, doctor, search=name.split()[-1]).rows if r.patient_id == stranger]
    assert (row.full_name, row.mrn, row.own) == (name, mrn, False)
    assert row.born == str(born.year)


def test_search_by_mrn_and_by_birth_date_typed_in_the_locale_or_iso(seeded, doctor, stranger, monkeypatch):
    _, mrn, born = _profile(seeded, stranger)
    assert [r.patient_id for r in _search(seeded, doctor, search=mrn.lower()).rows] == [stranger]
    for typed in (born.isoformat(), f"{born:%d/%m/%Y}"):
        assert stranger in [r.patient_id for r in _search(seeded, doctor, search=typed).rows]
    monkeypatch.setattr(settings, "LOCALE", Locale.parse("en_US"))
    assert stranger in [r.patient_id for r in _search(seeded, doctor, search=f"{born:%m/%d/%Y}").rows]


def test_wildcards_are_searched_as_typed(seeded, doctor, maria):
    assert _search(seeded, doctor, search="%%").rows == []
    assert _search(seeded, doctor, search="__").rows == []


def test_results_are_paged_and_sorted_in_sql(seeded, doctor):
    everyone = _search(seeded, doctor, search="example", page_size=100)  # no name has it: nothing
    assert everyone.total == 0
    by_mrn = _search(seeded, doctor, search="MRN", sort="mrn", descending=True, page_size=100)
    assert by_mrn.total > 2
    others = [r.mrn for r in by_mrn.rows if not r.own]
    assert others == sorted(others, reverse=True)
    first, second = (_search(seeded, doctor, search="MRN", sort="mrn", page=n, page_size=2) for n in (1, 2))
    assert first.total == by_mrn.total
    assert len(first.rows) == 2
    assert not {r.patient_id for r in first.rows} & {r.patient_id for r in second.rows}
    # An unknown sort column falls back to the name, never to SQL taken from the client.
    assert _search(seeded, doctor, search="MRN", sort="1; drop table user", page_size=100).total == by_mrn.total


def test_every_search_is_audited(seeded, doctor, stranger):
    _search(seeded, doctor, search="Khan")
    [row] = audit_events(seeded, action="patient.search")
    assert (row.actor_id, str(row.outcome)) == (doctor.user_id, "success")
    assert "Khan" in row.detail


def test_another_doctors_patient_found_in_a_search_opens_only_by_breaking_the_glass(seeded, doctor, stranger):
    [row] = _search(seeded, doctor, search=_profile(seeded, stranger).mrn).rows
    assert row.own is False
    with session_scope(engine=seeded) as s, pytest.raises(BreakGlassRequired):
        clinical.open_chart(session=s, actor=doctor, patient_id=row.patient_id)
    call(seeded, clinical.break_glass, actor=doctor, patient_id=row.patient_id, reason="Seen in A&E, unconscious")
    assert call(seeded, clinical.open_chart, actor=doctor, patient_id=row.patient_id).via_break_glass is True


@pytest.mark.parametrize("role", [Role.PATIENT, Role.LAB, Role.PHARMACY, Role.ACCOUNTS, Role.ADMIN])
def test_roles_without_chart_access_cannot_search(seeded, actors, role):
    actor = actors[role]
    assert_refused(seeded, actor, "patient.search",
                   lambda s: search_patients(session=s, actor=actor, search="Garcia"), error=PermissionDenied)

"""Reading one's own record has a permission of its own (``record.read_own``), apart from
booking (``appointments.book``): an admin who stops patients from booking does not lock them
out of their history, results, prescriptions, documents and record export."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from hms_app.db.engine import session_scope
from hms_app.db.enums import DEFAULT_ROLE_PERMISSIONS, Permission, Role
from hms_app.db.migrate import upgrade
from hms_app.db.models import PermissionCatalog, RolePermission
from hms_app.services.administration import permissions
from hms_app.services.booking import appointments
from hms_app.services.care import clinical
from hms_app.services.interop import fhir, record_summary
from hms_app.services.laboratory import lab
from hms_app.services.medicines import pharmacy
from tests.conftest import DEMO_EMAIL
from tests.services.helpers import assert_refused, login_token, resolve

pytestmark = pytest.mark.db

# Every read of a patient's own record, with the audit action its refusal is recorded under.
OWN_RECORD_READS = {
    "history.view": lambda s, a: clinical.my_history(session=s, actor=a),
    "history.allergies": lambda s, a: clinical.my_allergies(session=s, actor=a),
    "lab_result.list": lambda s, a: lab.results_for_patient(session=s, actor=a),
    "prescription.own": lambda s, a: pharmacy.my_prescriptions(session=s, actor=a),
    "record.summary": lambda s, a: record_summary.my_record_pdf(session=s, actor=a),
    "record.export": lambda s, a: fhir.export_my_record(session=s, actor=a),
}


def _revoke(engine, admin, role: str, permission: str) -> None:
    with session_scope(engine=engine) as s:
        permissions.revoke_permission(session=s, actor=admin, role=role, permission=permission)


def _patient(engine):
    return resolve(engine, login_token(engine, DEMO_EMAIL[Role.PATIENT]))


def test_patients_read_their_record_by_default():
    assert Permission.RECORD_READ_OWN in DEFAULT_ROLE_PERMISSIONS[Role.PATIENT]
    staff = [role for role in Role if role != Role.PATIENT]
    assert all(Permission.RECORD_READ_OWN not in DEFAULT_ROLE_PERMISSIONS[role] for role in staff)


def test_a_patient_barred_from_booking_still_reads_their_record(actors, seeded):
    _revoke(seeded, actors[Role.ADMIN], "patient", "appointments.book")
    patient = _patient(seeded)
    assert not patient.can(Permission.APPOINTMENTS_BOOK)
    for read in OWN_RECORD_READS.values():
        with session_scope(engine=seeded) as s:
            read(s, patient)
    assert_refused(seeded, patient, "booking.departments",
                   lambda s: appointments.booking_departments(session=s, actor=patient))


@pytest.mark.parametrize("action", sorted(OWN_RECORD_READS))
def test_without_record_read_own_the_record_is_refused_and_booking_is_not(actors, seeded, action):
    _revoke(seeded, actors[Role.ADMIN], "patient", "record.read_own")
    patient = _patient(seeded)
    assert patient.can(Permission.APPOINTMENTS_BOOK)
    assert_refused(seeded, patient, action, lambda s: OWN_RECORD_READS[action](s, patient))
    with session_scope(engine=seeded) as s:
        assert appointments.booking_departments(session=s, actor=patient)


def _grants(url: str) -> set[tuple[str, str]]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        found = {(r, p) for r, p in conn.execute(sa.select(RolePermission.role, RolePermission.permission))}
        catalog = set(conn.execute(sa.select(PermissionCatalog.permission)).scalars())
    engine.dispose()
    assert "record.read_own" in catalog  # so the default seeding leaves an admin's later edit alone
    return found


def test_the_migration_grants_it_to_patients_whom_an_admin_barred_from_booking(tmp_path):
    url = f"sqlite:///{tmp_path / 'before.db'}"
    upgrade(url, "0009")
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # a hospital at release 0009 whose admin stopped patients booking
        for permission in ("profile.own", "notifications.own", "billing.pay_own"):
            conn.execute(sa.insert(RolePermission).values(role="patient", permission=permission))
            conn.execute(sa.insert(PermissionCatalog).values(permission=permission))
        conn.execute(sa.insert(PermissionCatalog).values(permission="appointments.book"))
    engine.dispose()

    upgrade(url)
    patient_grants = {p for r, p in _grants(url) if r == "patient"}
    assert "record.read_own" in patient_grants
    assert "appointments.book" not in patient_grants

    upgrade(url)  # a second run changes nothing
    assert {p for r, p in _grants(url) if r == "patient"} == patient_grants


def test_an_admin_may_take_it_away_and_the_seeding_does_not_give_it_back(actors, seeded):
    _revoke(seeded, actors[Role.ADMIN], "patient", "record.read_own")
    with session_scope(engine=seeded) as s:
        assert permissions.seed_default_permissions(s) == []
        s.commit()
    assert not _patient(seeded).can(Permission.RECORD_READ_OWN)

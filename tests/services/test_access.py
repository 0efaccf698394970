"""The one lookup by id (``core.access.access_by_id``): a forbidden row answers exactly like a missing one."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from hms_app.db.engine import session_scope
from hms_app.db.enums import Role
from hms_app.db.models import Department, Notification, User
from hms_app.services.core.access import access_by_id
from hms_app.services.core.errors import NotFound
from tests.services.helpers import audit_events, last_audit_id

pytestmark = pytest.mark.db

MISSING = "That notification does not exist."


def _notification_of(engine: sa.Engine, user_id: int) -> int:
    with session_scope(engine=engine) as s:
        note = Notification(user_id=user_id, title="Results ready", body="", link="/patient/history")
        s.add(note)
        s.commit()
        return note.id


def _lookup(engine: sa.Engine, actor, notification_id: object, **options) -> Notification:
    with session_scope(engine=engine) as s:
        return access_by_id(s, actor, Notification, notification_id, action="notification.read", missing=MISSING,
                            entity_type="notification", allowed=lambda n: n.user_id == actor.user_id, **options)


def _refusal(engine: sa.Engine, actor, notification_id: object) -> tuple[str, str, str, str, str, int | None]:
    before = last_audit_id(engine)
    with pytest.raises(NotFound) as refused:
        _lookup(engine, actor, notification_id)
    [event] = audit_events(engine, after_id=before)
    return (str(refused.value), event.action, str(event.outcome), event.entity_type, event.detail,
            event.patient_id)


def test_the_owner_gets_the_row(seeded, actors):
    patient = actors[Role.PATIENT]
    own = _notification_of(seeded, patient.user_id)
    before = last_audit_id(seeded)
    assert _lookup(seeded, patient, own).id == own
    assert _lookup(seeded, patient, str(own), lock=True).id == own
    assert audit_events(seeded, after_id=before) == []  # a lookup that succeeds audits nothing itself


def test_missing_and_forbidden_answer_alike_and_both_are_audited(seeded, actors):
    patient, other = actors[Role.PATIENT], actors[Role.DOCTOR]
    someone_elses = _notification_of(seeded, other.user_id)
    with session_scope(engine=seeded) as s:
        highest = s.execute(sa.select(sa.func.max(Notification.id))).scalar_one()
    forbidden = _refusal(seeded, patient, someone_elses)
    missing = _refusal(seeded, patient, highest + 1000)
    assert forbidden == missing == (MISSING, "notification.read", "denied", "notification", MISSING, None)
    assert _refusal(seeded, patient, "not an id") == forbidden
    assert _refusal(seeded, patient, True) == forbidden  # a boolean is no id
    ids = [e.entity_id for e in audit_events(seeded, action="notification.read", outcome="denied")[-4:]]
    assert ids == [str(someone_elses), str(highest + 1000), "not an id", "True"]


def test_without_a_rule_every_existing_row_is_returned(seeded, actors):
    admin = actors[Role.ADMIN]
    with session_scope(engine=seeded) as s:
        department_id = s.execute(sa.select(sa.func.min(Department.id))).scalar_one()
        row = access_by_id(s, admin, Department, department_id, action="department.update",
                           missing="That department does not exist.", entity_type="department")
        assert row.id == department_id


def test_a_refused_existing_row_can_name_its_patient(seeded, actors):
    patient, doctor = actors[Role.PATIENT], actors[Role.DOCTOR]
    before = last_audit_id(seeded)
    with session_scope(engine=seeded) as s, pytest.raises(NotFound, match="That account does not exist"):
        access_by_id(s, doctor, User, patient.user_id, action="user.view", missing="That account does not exist.",
                     entity_type="user", allowed=lambda u: u.role != Role.PATIENT, patient_of=lambda u: u.id)
    [event] = audit_events(seeded, after_id=before)
    assert (event.entity_id, event.patient_id) == (str(patient.user_id), patient.user_id)

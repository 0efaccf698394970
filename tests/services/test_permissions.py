"""The role -> permission table: the matrix, grants and revocations, and who may edit it."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from hms_app.db.engine import session_scope
from hms_app.db.enums import DEFAULT_ROLE_PERMISSIONS, Permission, Role
from hms_app.db.models import AuditEvent, RolePermission
from hms_app.services.administration import audit_trail, auth, permissions
from hms_app.services.core.access import require
from hms_app.services.core.errors import Conflict, SessionExpired, ValidationError
from hms_app.services.messaging import notifications
from tests.conftest import DEMO_EMAIL
from tests.services.helpers import (
    assert_refused,
    audit_events,
    last_audit_id,
    login_token,
    resolve,
    snapshot,
    table_count,
)

pytestmark = pytest.mark.db

NON_ADMIN = [Role.PATIENT, Role.DOCTOR, Role.LAB, Role.PHARMACY, Role.ACCOUNTS]


def _granted(engine) -> set[tuple[str, str]]:
    with engine.connect() as conn:
        return {(r, p) for r, p in conn.execute(sa.select(RolePermission.role, RolePermission.permission))}


def _default_pairs() -> set[tuple[str, str]]:
    return {(role.value, p.value) for role, granted in DEFAULT_ROLE_PERMISSIONS.items() for p in granted}


def _grant(engine, actor, role, permission) -> None:
    with session_scope(engine=engine) as s:
        permissions.grant_permission(session=s, actor=actor, role=role, permission=permission)


def _revoke(engine, actor, role, permission) -> None:
    with session_scope(engine=engine) as s:
        permissions.revoke_permission(session=s, actor=actor, role=role, permission=permission)


def test_defaults_are_seeded_once(empty_hospital):
    assert _granted(empty_hospital) == _default_pairs()
    with session_scope(engine=empty_hospital) as s:
        permissions.seed_default_permissions(s)
        s.commit()
    assert _granted(empty_hospital) == _default_pairs()


def test_default_grants_follow_the_design():
    assert Permission.USERS_MANAGE in DEFAULT_ROLE_PERMISSIONS[Role.ADMIN]
    for role in NON_ADMIN:
        granted = DEFAULT_ROLE_PERMISSIONS[role]
        assert {Permission.PROFILE_OWN, Permission.NOTIFICATIONS_OWN} <= granted
        assert not granted & {Permission.USERS_MANAGE, Permission.PERMISSIONS_MANAGE,
                              Permission.DEPARTMENTS_MANAGE, Permission.AUDIT_VIEW}


def test_the_matrix_shows_every_permission_for_every_role(actors, seeded):
    with session_scope(write=False, engine=seeded) as s:
        matrix = permissions.permission_matrix(session=s, actor=actors[Role.ADMIN])
    assert [row.permission for row in matrix] == [p.value for p in Permission]
    assert all(row.description for row in matrix)
    cells = {(c.role, c.permission): c for row in matrix for c in row.cells}
    assert len(cells) == len(Role) * len(Permission)
    assert {key for key, cell in cells.items() if cell.granted} == _default_pairs()
    assert {key for key, cell in cells.items() if cell.locked} == {
        ("admin", "users.manage"), ("admin", "permissions.manage")}


def test_a_grant_takes_effect_at_the_next_resolve(seeded):
    token = login_token(seeded, DEMO_EMAIL[Role.LAB])
    lab = resolve(seeded, token)
    admin = resolve(seeded, login_token(seeded, DEMO_EMAIL[Role.ADMIN]))
    assert not lab.can(Permission.REPORTS_VIEW)
    _grant(seeded, admin, "lab", "reports.view")
    assert ("lab", "reports.view") in _granted(seeded)
    assert resolve(seeded, token).can(Permission.REPORTS_VIEW)
    [event] = audit_events(seeded, action="permission.grant")
    assert (event.actor_id, event.entity_type, event.entity_id) == (admin.user_id, "role_permission",
                                                                   "lab:reports.view")
    with pytest.raises(Conflict, match="already has"):
        _grant(seeded, admin, "lab", "reports.view")


def test_a_revocation_takes_effect_at_the_next_resolve(seeded):
    token = login_token(seeded, DEMO_EMAIL[Role.ADMIN])
    admin = resolve(seeded, token)
    with session_scope(write=False, engine=seeded) as s:
        audit_trail.search_audit(session=s, actor=admin, filters=audit_trail.AuditFilter())
    _revoke(seeded, admin, "admin", "audit.view")
    assert ("admin", "audit.view") not in _granted(seeded)
    [event] = audit_events(seeded, action="permission.revoke")
    assert (event.entity_id, str(event.outcome)) == ("admin:audit.view", "success")

    admin = resolve(seeded, token)
    assert not admin.can(Permission.AUDIT_VIEW)
    assert_refused(seeded, admin, "audit.search",
                   lambda s: audit_trail.search_audit(session=s, actor=admin, filters=audit_trail.AuditFilter()))
    with pytest.raises(Conflict, match="does not have"):
        _revoke(seeded, admin, "admin", "audit.view")
    # Granting it back restores access.
    _grant(seeded, admin, "admin", "audit.view")
    with session_scope(write=False, engine=seeded) as s:
        assert audit_trail.search_audit(session=s, actor=resolve(seeded, token), filters=audit_trail.AuditFilter()).rows


def test_revoking_a_permission_from_a_role_stops_every_member(actors, seeded):
    admin = actors[Role.ADMIN]
    _revoke(seeded, admin, "patient", "notifications.own")
    patients = [resolve(seeded, login_token(seeded, email)) for email in
                ("maria.garcia@patients.example", "james.smith@patients.example")]
    for patient in patients:
        assert not patient.can(Permission.NOTIFICATIONS_OWN)
    assert_refused(seeded, patients[1], "notification.count",
                   lambda s: notifications.unread_count(session=s, actor=patients[1]))


@pytest.mark.parametrize("permission", ["users.manage", "permissions.manage"])
def test_admin_keeps_the_rights_to_manage_users_and_permissions(actors, seeded, permission):
    admin = actors[Role.ADMIN]
    error = assert_refused(seeded, admin, "permission.revoke",
                           lambda s: permissions.revoke_permission(session=s, actor=admin, role="admin",
                                                                   permission=permission),
                           error=ValidationError)
    assert "must keep" in str(error)
    assert ("admin", permission) in _granted(seeded)
    [event] = audit_events(seeded, action="permission.revoke")
    assert event.entity_id == f"admin:{permission}"
    # Other roles' copies of the same permission may still be granted and revoked.
    _grant(seeded, admin, "accounts", permission)
    _revoke(seeded, admin, "accounts", permission)
    assert ("accounts", permission) not in _granted(seeded)


def test_unknown_roles_and_permissions_are_refused(actors, seeded):
    admin = actors[Role.ADMIN]
    before = snapshot(seeded)
    audit_before = table_count(seeded, AuditEvent)
    for role, permission in [("root", "users.manage"), ("lab", "everything"), ("", ""), (None, None),
                             ("Admin", "users.manage"), ("lab", "USERS.MANAGE")]:
        with pytest.raises(ValidationError):
            _grant(seeded, admin, role, permission)
        with pytest.raises(ValidationError):
            _revoke(seeded, admin, role, permission)
    assert snapshot(seeded) == before
    assert table_count(seeded, AuditEvent) == audit_before


def _only_admin_edits_permissions(seeded, actors, role):
    actor = actors[role]
    # Not even to give themselves what they lack, nor to take away what others have.
    assert_refused(seeded, actor, "permission.grant",
                   lambda s: permissions.grant_permission(session=s, actor=actor, role=role.value,
                                                          permission="users.manage"))
    assert_refused(seeded, actor, "permission.revoke",
                   lambda s: permissions.revoke_permission(session=s, actor=actor, role="admin",
                                                           permission="audit.view"))
    assert_refused(seeded, actor, "permission.view",
                   lambda s: permissions.permission_matrix(session=s, actor=actor))


def test_only_admin_edits_permissions(actors, seeded, subtests):
    for role in NON_ADMIN:
        with subtests.test(role=role.value):
            _only_admin_edits_permissions(seeded, actors, role)


def test_require_refuses_a_missing_session_and_audits_it(seeded):
    after = last_audit_id(seeded)
    for actor in (None, "admin", {"user_id": 1, "role": "admin"}):
        with session_scope(engine=seeded) as s, pytest.raises(SessionExpired):
            require(s, actor, Permission.USERS_MANAGE, action="user.list")
    events = audit_events(seeded, after_id=after)
    assert [(e.action, str(e.outcome), e.actor_id) for e in events] == [("user.list", "denied", None)] * 3
    assert "users.manage" in events[0].detail


def test_permissions_for_role_reads_the_table(actors, seeded):
    _revoke(seeded, actors[Role.ADMIN], "admin", "dashboard.admin")
    with session_scope(write=False, engine=seeded) as s:
        admin_rights = auth.permissions_for_role(s, "admin")
        lab_rights = auth.permissions_for_role(s, Role.LAB)
    assert "dashboard.admin" not in admin_rights
    assert {"users.manage", "permissions.manage", "audit.view"} <= admin_rights
    assert lab_rights == {p.value for p in DEFAULT_ROLE_PERMISSIONS[Role.LAB]}

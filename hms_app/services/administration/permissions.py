"""The role -> permission table that every service checks, editable by admin."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session

from hms_app.db.enums import (
    DEFAULT_ROLE_PERMISSIONS,
    PROTECTED_ADMIN_PERMISSIONS,
    ROLE_LABELS,
    Permission,
    Role,
)
from hms_app.db.models import PermissionCatalog, RolePermission
from hms_app.services.core import audit, events
from hms_app.services.core.access import require
from hms_app.services.core.actor import Actor
from hms_app.services.core.errors import Conflict, ValidationError
from hms_app.services.core.language import N_, _


@dataclass(frozen=True)
class PermissionCell:
    role: str
    permission: str
    granted: bool
    locked: bool


@dataclass(frozen=True)
class PermissionRow:
    permission: str
    description: str
    cells: list[PermissionCell]


def seed_default_permissions(session: Session) -> list[str]:
    """Grant the default roles each permission the database has not seen before.

    Runs at every ``hms migrate`` and demo load: a permission added by a new release gets
    its default grants once; a grant admin removed later stays removed.

    Returns:
        The permissions that were new.
    """
    known = set(session.execute(sa.select(PermissionCatalog.permission)).scalars())
    new = [p for p in Permission if p.value not in known]
    for permission in new:
        for role, granted in DEFAULT_ROLE_PERMISSIONS.items():
            if permission in granted and not session.get(RolePermission, (role.value, permission.value)):
                session.add(RolePermission(role=role, permission=permission.value))
        session.add(PermissionCatalog(permission=permission.value))
    session.flush()
    return [p.value for p in new]


def permission_matrix(*, session: Session, actor: Actor) -> list[PermissionRow]:
    require(session, actor, Permission.PERMISSIONS_MANAGE, action="permission.view")
    granted = {(r, p) for r, p in session.execute(sa.select(RolePermission.role, RolePermission.permission))}
    return [
        PermissionRow(
            permission=permission.value,
            description=_(permission.description),
            cells=[
                PermissionCell(
                    role=role.value,
                    permission=permission.value,
                    granted=(role.value, permission.value) in granted,
                    locked=role is Role.ADMIN and permission in PROTECTED_ADMIN_PERMISSIONS,
                )
                for role in Role
            ],
        )
        for permission in Permission
    ]


def _parse(role: object, permission: object) -> tuple[Role, Permission]:
    try:
        return Role(str(role)), Permission(str(permission))
    except ValueError:
        raise ValidationError(_("Choose a role and a permission from the table.")) from None


def grant_permission(*, session: Session, actor: Actor, role: str, permission: str) -> None:
    require(session, actor, Permission.PERMISSIONS_MANAGE, action="permission.grant")
    role_, permission_ = _parse(role, permission)
    if session.get(RolePermission, (role_.value, permission_.value)):
        raise Conflict(_("{role} already has {permission}.").format(role=_(ROLE_LABELS[role_]),
                                                                   permission=permission_.value))
    session.add(RolePermission(role=role_, permission=permission_.value))
    try:
        session.flush()
    except sa.exc.IntegrityError:  # granted by a concurrent call since the check above
        session.rollback()
        raise Conflict(_("{role} already has {permission}.").format(role=_(ROLE_LABELS[role_]),
                                                                   permission=permission_.value)) from None
    audit.record(session, actor, "permission.grant", entity_type="role_permission",
                 entity_id=f"{role_.value}:{permission_.value}")
    events.publish(session, events.PERMISSIONS, roles=[role_.value])
    session.commit()


def revoke_permission(*, session: Session, actor: Actor, role: str, permission: str) -> None:
    require(session, actor, Permission.PERMISSIONS_MANAGE, action="permission.revoke")
    role_, permission_ = _parse(role, permission)
    if role_ is Role.ADMIN and permission_ in PROTECTED_ADMIN_PERMISSIONS:
        audit.deny(session, actor, "permission.revoke",
                   N_("Administrators must keep the right to manage users and permissions."),
                   error=ValidationError, entity_type="role_permission",
                   entity_id=f"{role_.value}:{permission_.value}")
    # One DELETE that reports what it removed, so of two concurrent revocations only one
    # succeeds and is audited as such.
    removed = session.execute(
        sa.delete(RolePermission).where(
            RolePermission.role == role_.value, RolePermission.permission == permission_.value
        )
    ).rowcount
    if not removed:
        session.rollback()
        raise Conflict(_("{role} does not have {permission}.").format(role=_(ROLE_LABELS[role_]),
                                                                     permission=permission_.value))
    audit.record(session, actor, "permission.revoke", entity_type="role_permission",
                 entity_id=f"{role_.value}:{permission_.value}")
    events.publish(session, events.PERMISSIONS, roles=[role_.value])
    session.commit()

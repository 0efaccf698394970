"""The figures each role's dashboard shows, aggregated in SQL."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session

from hms_app.db.enums import ROLE_LABELS, Permission, Role
from hms_app.db.models import AuditEvent, Department, User
from hms_app.services.core.access import require
from hms_app.services.core.actor import Actor
from hms_app.services.core.language import _
from hms_app.services.core.localtime import local_midnight, local_today


@dataclass(frozen=True)
class RoleCount:
    role: str
    label: str
    active: int
    inactive: int


@dataclass(frozen=True)
class AdminFigures:
    users_by_role: list[RoleCount]
    total_users: int
    logins_today: int
    failed_logins_today: int
    lockouts_today: int
    active_departments: int


def admin_figures(*, session: Session, actor: Actor) -> AdminFigures:
    require(session, actor, Permission.ADMIN_DASHBOARD, action="dashboard.admin")
    counts = {
        (role, active): n
        for role, active, n in session.execute(
            sa.select(User.role, User.is_active, sa.func.count()).group_by(User.role, User.is_active)
        )
    }
    by_role = [
        RoleCount(r.value, _(ROLE_LABELS[r]), counts.get((r.value, True), 0), counts.get((r.value, False), 0))
        for r in Role
    ]
    since = local_midnight(local_today())
    actions = dict(
        session.execute(
            sa.select(AuditEvent.action, sa.func.count())
            .where(AuditEvent.occurred_at >= since,
                   AuditEvent.action.in_(["login.success", "login.failed", "login.locked", "login.lockout"]))
            .group_by(AuditEvent.action)
        ).all()
    )
    departments = session.execute(
        sa.select(sa.func.count()).select_from(Department).where(Department.is_active)
    ).scalar_one()
    return AdminFigures(
        users_by_role=by_role,
        total_users=sum(c.active + c.inactive for c in by_role),
        logins_today=actions.get("login.success", 0),
        failed_logins_today=actions.get("login.failed", 0) + actions.get("login.locked", 0),
        lockouts_today=actions.get("login.lockout", 0),
        active_departments=departments,
    )

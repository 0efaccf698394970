"""The admin's pages: figures, users, departments, permissions and the audit trail."""

from __future__ import annotations

import reflex as rx

from hms_app.services.administration import (
    audit_trail,
    dashboards,
    departments,
    hospital,
    permissions,
    second_factor,
    users,
)
from hms_app.services.administration.audit_trail import AuditFilter, AuditRow
from hms_app.services.administration.dashboards import AdminFigures
from hms_app.services.administration.departments import DepartmentRow
from hms_app.services.administration.hospital import HospitalCard, SetupOverview
from hms_app.services.administration.permissions import PermissionRow
from hms_app.services.administration.second_factor import RequirementRow
from hms_app.services.administration.users import UserRow
from hms_app.services.care import clinical
from hms_app.services.care.clinical import BreakGlassRow
from hms_app.services.core.language import N_, _, ngettext
from hms_app.services.messaging import mail
from hms_app.services.messaging.mail import MailStatus
from hms_app.state.auth import SessionState
from hms_app.state.forms import form_text
from hms_app.state.tables import PagedTableMixin

_NO_FIGURES = AdminFigures([], 0, 0, 0, 0, 0)
_NO_MAIL = MailStatus(enabled=False, server="", waiting=0, sent=0, failed=0)
_NO_OVERVIEW = SetupOverview(HospitalCard("", "", "", "", ""), [], 0)
_ROLE_WORDS = {"admin": N_("admin"), "accounts": N_("accounts"), "doctor": N_("doctor"), "lab": N_("lab"),
               "pharmacy": N_("pharmacy"), "patient": N_("patient")}
"""A role's code as its toasts write it ("required of lab accounts"), for translation."""


def _role_word(role: str) -> str:
    """``role`` (a client's value) as the toasts name it, in the reader's language."""
    return _(_ROLE_WORDS[role]) if isinstance(role, str) and role in _ROLE_WORDS else str(role)


class AdminDashboardState(SessionState):
    figures: AdminFigures = _NO_FIGURES
    mail_status: MailStatus = _NO_MAIL
    overview: SetupOverview = _NO_OVERVIEW

    async def _fetch(self) -> None:
        self.figures = await self._call(dashboards.admin_figures, write=False)
        self.mail_status = await self._call(mail.mail_status, write=False)
        self.overview = await self._call(hospital.setup_overview, write=False)

    @rx.event
    async def load_figures(self):
        return await self._act(self._fetch())


class AdminUsersState(PagedTableMixin, SessionState):
    rows: list[UserRow] = []
    role_filter: str = ""
    sort: str = "full_name"
    create_open: bool = False
    create_role: str = "doctor"
    department_options: list[list[str]] = []
    form_error: str = ""
    temporary_password: str = ""
    temporary_for: str = ""

    async def _fetch(self) -> None:
        result = await self._call(
            users.list_users, write=False, search=self.search, role=self.role_filter, page=self.page,
            page_size=self.page_size, sort=self.sort, descending=self.descending,
        )
        self.rows = self._paged(result)

    @rx.event
    async def filter_role(self, role: str):
        self.role_filter = str(role)[:20] if role != "all" else ""
        self.page = 1
        return await self._reload()

    @rx.event
    async def open_create(self):
        answer = await self._act(departments.list_departments, write=False, include_inactive=False)
        if not answer.refused:
            self.department_options = [[str(d.id), d.name] for d in answer.result]
            self.form_error = ""
            self.create_open = True
        return answer

    @rx.event
    def close_create(self):
        self.create_open = False

    @rx.event
    def choose_create_role(self, role: str):
        self.create_role = str(role)[:20]

    @rx.event
    async def create_user(self, form_data: dict):
        form = users.StaffForm(
            full_name=form_text(form_data, "full_name"),
            email=form_text(form_data, "email"),
            role=form_text(form_data, "role", 20),
            password=form_text(form_data, "password", 1000),
            department_id=form_text(form_data, "department_id", 20),
            specialty=form_text(form_data, "specialty"),
            consultation_fee=form_text(form_data, "consultation_fee", 40),
            slot_minutes=form_text(form_data, "slot_minutes", 10) or "20",
        )
        answer = await self._act(
            users.create_staff_user, form=form, refresh=self._reload,
            success=_("Account created for {name}. They choose a new password at first login.").format(
                name=form.full_name.strip()))
        self.form_error = answer.error
        if not answer.refused:
            self.create_open = False
        return answer

    @rx.event
    async def deactivate(self, user_id: int):
        return await self._act(users.deactivate_user, user_id=user_id, refresh=self._reload,
                               success=_("Account deactivated; its open sessions have ended."))

    @rx.event
    async def reactivate(self, user_id: int):
        return await self._act(users.reactivate_user, user_id=user_id, refresh=self._reload,
                               success=_("Account reactivated."))

    @rx.event
    async def reset_password(self, user_id: int, name: str = ""):
        answer = await self._act(users.reset_password, user_id=user_id,
                                 success=_("Password reset. Hand over the temporary password in person."))
        if not answer.refused:
            self.temporary_password, self.temporary_for = answer.result, str(name)[:120]
        return answer

    @rx.event
    async def reset_second_factor(self, user_id: int):
        return await self._act(second_factor.reset_second_factor, user_id=user_id, refresh=self._reload,
                               success=_("Second factor reset; the account's sessions have ended. If the role "
                                         "requires one, they set up a new authenticator at their next login."))

    @rx.event
    def dismiss_temporary_password(self):
        self.temporary_password = ""
        self.temporary_for = ""


class DepartmentsState(SessionState):
    rows: list[DepartmentRow] = []
    renaming_id: int = 0
    form_error: str = ""

    async def _fetch(self):
        answer = await self._act(departments.list_departments, write=False)
        if not answer.refused:
            self.rows = answer.result
        return answer

    @rx.event
    async def load_departments(self):
        return await self._fetch()

    @rx.event
    async def create_department(self, form_data: dict):
        answer = await self._act(departments.create_department, name=form_text(form_data, "name"),
                                 refresh=self._fetch, success=_("Department created."))
        self.form_error = answer.error
        return answer

    @rx.event
    def start_rename(self, department_id: int):
        self.renaming_id = department_id if isinstance(department_id, int) else 0

    @rx.event
    def cancel_rename(self):
        self.renaming_id = 0

    @rx.event
    async def rename_department(self, form_data: dict):
        answer = await self._act(departments.rename_department, department_id=self.renaming_id,
                                 name=form_text(form_data, "name"), refresh=self._fetch, success=_("Department renamed."))
        if not answer.refused:
            self.renaming_id = 0
        return answer

    @rx.event
    async def toggle_department(self, department_id: int, active: bool):
        return await self._act(departments.set_department_active, department_id=department_id, active=bool(active),
                               refresh=self._fetch,
                               success=_("Department reactivated.") if active else _("Department deactivated."))


class PermissionsState(SessionState):
    matrix: list[PermissionRow] = []
    second_factor_rules: list[RequirementRow] = []

    async def _fetch(self) -> None:
        self.matrix = await self._call(permissions.permission_matrix, write=False)
        self.second_factor_rules = await self._call(second_factor.list_second_factor_requirements, write=False)

    async def _load(self):
        return await self._act(self._fetch())

    @rx.event
    async def load_matrix(self):
        return await self._load()

    @rx.event
    async def require_second_factor(self, role: str, required: bool):
        return await self._act(
            second_factor.set_second_factor_requirement, role=role, required=required,
            refresh=self._load, on_refusal=self._load,
            success=(_("A second factor is now required of {role} accounts.") if required
                     else _("A second factor is no longer required of {role} accounts.")).format(role=_role_word(role)))

    @rx.event
    async def toggle_permission(self, role: str, permission: str, grant: bool):
        service = permissions.grant_permission if grant else permissions.revoke_permission
        return await self._act(service, role=role, permission=permission, refresh=self._load, on_refusal=self._load,
                               success=(_("Granted {permission} for {role}.") if grant
                                        else _("Removed {permission} for {role}.")).format(
                                   permission=permission, role=_role_word(role)))


class AuditState(SessionState):
    """The trail newest first, paged by id (keyset): a page reads its rows and one more, and
    never counts the trail, which holds millions of rows. It sorts only by time (its id order):
    an audit trail is read from the latest back, and another order could not page by id."""

    rows: list[AuditRow] = []
    page_size: int = 25
    page: int = 1
    """Pages back from the newest, for the pager's label only: the ids shown are the cursor."""
    has_newer: bool = False
    has_older: bool = False
    size_note: str = ""
    filter_user: str = ""
    filter_patient: str = ""
    filter_action: str = ""
    filter_outcome: str = ""
    filter_from: str = ""
    filter_to: str = ""
    chain_status: str = ""

    def _filters(self) -> AuditFilter:
        return AuditFilter(self.filter_user, self.filter_patient, self.filter_action, self.filter_outcome,
                           self.filter_from, self.filter_to)

    async def _fetch(self, *, older_than: int | None = None, newer_than: int | None = None) -> None:
        result = await self._call(audit_trail.search_audit, write=False, filters=self._filters(),
                                  older_than=older_than, newer_than=newer_than, page_size=self.page_size)
        if older_than is not None and result.rows:
            self.page += 1
        elif newer_than is not None:
            self.page = max(1, self.page - 1) if result.has_newer else 1
        else:
            self.page = 1
        self.rows, self.has_newer, self.has_older = result.rows, result.has_newer, result.has_older
        self.size_note = result.size_note

    async def _reload(self):
        """The newest page again (after new filters, or on opening the page)."""
        return await self._act(self._fetch())

    @rx.event
    async def load_rows(self):
        """The newest page (on page load)."""
        return await self._reload()

    @rx.event
    async def next_page(self):
        """The page of rows older than the oldest shown."""
        if not (self.has_older and self.rows):
            return await self._reload()
        return await self._act(self._fetch(older_than=self.rows[-1].id))

    @rx.event
    async def previous_page(self):
        """The page of rows newer than the newest shown."""
        if not (self.has_newer and self.rows):
            return await self._reload()
        return await self._act(self._fetch(newer_than=self.rows[0].id))

    @rx.event
    async def apply_filters(self, form_data: dict):
        self.filter_user = form_text(form_data, "user", 254)
        self.filter_patient = form_text(form_data, "patient", 40)
        self.filter_action = form_text(form_data, "action", 64)
        outcome = form_text(form_data, "outcome", 10)
        self.filter_outcome = "" if outcome == "all" else outcome
        self.filter_from = form_text(form_data, "date_from", 10)
        self.filter_to = form_text(form_data, "date_to", 10)
        return await self._reload()

    @rx.event
    async def clear_filters(self):
        self.filter_user = self.filter_patient = self.filter_action = ""
        self.filter_outcome = self.filter_from = self.filter_to = ""
        return await self._reload()

    @rx.event
    async def export_csv(self):
        return await self._act(audit_trail.export_audit_csv, filters=self._filters(), success=lambda data: [
            rx.download(data=data, filename="audit-trail.csv", mime_type="text/csv"),
            rx.toast.success(_("Audit trail exported."))])

    @rx.event
    async def verify_chain(self):
        return await self._act(audit_trail.verify_audit_chain, success=self._show_chain)

    def _show_chain(self, report: audit_trail.ChainReport):
        if report.ok:
            self.chain_status = ngettext("Intact: {n} row checked.", "Intact: {n} rows checked.",
                                         report.rows_checked).format(n=report.rows_checked)
            return rx.toast.success(self.chain_status)
        self.chain_status = _("Broken at row {row}: {reason}.").format(row=report.first_bad_id, reason=report.reason)
        return rx.toast.error(self.chain_status)


class BreakGlassState(PagedTableMixin, SessionState):
    """Every emergency opening of a chart, for review."""

    rows: list[BreakGlassRow] = []

    async def _fetch(self) -> None:
        self.rows = self._paged(await self._call(clinical.list_break_glass, page=self.page, page_size=self.page_size))

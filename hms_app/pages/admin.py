"""The admin's pages."""

from __future__ import annotations

import reflex as rx

from hms_app.components.badges import outcome_badge, status_badge
from hms_app.components.dialogs import action_button, confirm_dialog, dialog, form_buttons
from hms_app.components.forms import field, form_error, select_field
from hms_app.components.i18n import t, tn
from hms_app.components.layout import page_shell
from hms_app.components.table import data_table, keyset_pager, search_box
from hms_app.db.enums import ROLE_LABELS, Role
from hms_app.services.administration.audit_trail import AuditRow
from hms_app.services.administration.dashboards import RoleCount
from hms_app.services.administration.departments import DepartmentRow
from hms_app.services.administration.hospital import SetupStep
from hms_app.services.administration.permissions import PermissionCell, PermissionRow
from hms_app.services.administration.second_factor import RequirementRow
from hms_app.services.administration.users import STAFF_ROLES, UserRow
from hms_app.services.care.clinical import BreakGlassRow
from hms_app.services.core.language import N_
from hms_app.state.admin import (
    AdminDashboardState,
    AdminUsersState,
    AuditState,
    BreakGlassState,
    DepartmentsState,
    PermissionsState,
)

ROLE_OPTIONS = [(r.value, ROLE_LABELS[r]) for r in Role]


def _stat(label: rx.Var[str], value: rx.Var, element_id: str) -> rx.Component:
    return rx.card(
        rx.vstack(rx.text(label, size="2", color="var(--gray-11)"),
                  rx.text(value, size="7", weight="bold", id=element_id), spacing="1"),
        flex="1",
        min_width="11rem",
    )


def _role_count_row(c: RoleCount) -> rx.Component:
    return rx.table.row(rx.table.row_header_cell(c.label), rx.table.cell(c.active), rx.table.cell(c.inactive))


def admin_dashboard() -> rx.Component:
    f = AdminDashboardState.figures
    return page_shell(
        N_("Administration"),
        rx.flex(
            _stat(t("Users"), f.total_users.to_string(), "stat-users"),
            _stat(t("Logins today"), f.logins_today.to_string(), "stat-logins"),
            _stat(t("Failed logins today"), f.failed_logins_today.to_string(), "stat-failed"),
            _stat(t("Lockouts today"), f.lockouts_today.to_string(), "stat-lockouts"),
            _stat(t("Active departments"), f.active_departments.to_string(), "stat-departments"),
            spacing="3",
            wrap="wrap",
            width="100%",
        ),
        _getting_started_card(),
        rx.card(
            rx.heading(t("Users per role"), as_="h2", size="4", margin_bottom="0.75rem"),
            rx.table.root(
                rx.el.caption(t("Active and deactivated accounts per role"), class_name="visually-hidden"),
                rx.table.header(rx.table.row(
                    rx.table.column_header_cell(t("Role"), scope="col"),
                    rx.table.column_header_cell(t("Active"), scope="col"),
                    rx.table.column_header_cell(t("Deactivated"), scope="col"),
                )),
                rx.table.body(rx.foreach(f.users_by_role, _role_count_row)),
                width="100%",
            ),
            width="100%",
        ),
        _mail_card(),
        _hospital_card(),
    )


def _setup_step(step: SetupStep) -> rx.Component:
    return rx.el.li(
        rx.flex(
            rx.box(status_badge(rx.cond(step.done, t("Done"), t("To do")), active=step.done), min_width="4.5rem"),
            rx.vstack(
                rx.text(step.label, weight="bold"),
                rx.text(step.summary, size="2", color="var(--gray-11)"),
                spacing="0",
                flex="1",
                min_width="12rem",
            ),
            rx.link(step.action, href=step.href, underline="always", weight="medium"),
            align="center",
            spacing="3",
            wrap="wrap",
            width="100%",
        ),
        id="setup-" + step.key,
        padding_y="0.5rem",
        border_top="1px solid var(--gray-5)",
    )


def _getting_started_card() -> rx.Component:
    """What a new hospital still has to set up; gone once every step is done."""
    o = AdminDashboardState.overview
    return rx.cond(
        o.remaining > 0,
        rx.card(
            rx.heading(t("Getting started"), as_="h2", size="4", margin_bottom="0.25rem"),
            # The English says "steps" even for one step; the count lets other languages choose their form.
            rx.text(tn("{remaining} of {n} steps still to do. Each link opens the page where the step is done; "
                       "this list goes away once everything is set up.",
                       "{remaining} of {n} steps still to do. Each link opens the page where the step is done; "
                       "this list goes away once everything is set up.",
                       o.steps.length(), remaining=o.remaining),
                    size="2", margin_bottom="0.5rem"),
            rx.el.ul(rx.foreach(o.steps, _setup_step), list_style="none", padding="0", margin="0"),
            id="getting-started",
            width="100%",
        ),
    )


def _hospital_card() -> rx.Component:
    h = AdminDashboardState.overview.hospital
    return rx.card(
        rx.heading(t("Hospital"), as_="h2", size="4", margin_bottom="0.5rem"),
        rx.data_list.root(
            rx.data_list.item(rx.data_list.label(t("Name")), rx.data_list.value(h.name, id="hospital-name")),
            rx.data_list.item(rx.data_list.label(t("Time zone")), rx.data_list.value(h.timezone, id="hospital-timezone")),
            rx.data_list.item(rx.data_list.label(t("Locale")), rx.data_list.value(h.locale, id="hospital-locale")),
            rx.data_list.item(rx.data_list.label(t("Currency")), rx.data_list.value(h.currency, id="hospital-currency")),
        ),
        rx.text(h.source, size="2", color="var(--gray-11)", margin_top="0.5rem", id="hospital-source"),
        width="100%",
    )


def _mail_card() -> rx.Component:
    m = AdminDashboardState.mail_status
    return rx.card(
        rx.heading(t("E-mail"), as_="h2", size="4", margin_bottom="0.5rem"),
        rx.cond(
            m.enabled,
            # One sentence per message: the server and the command are its data, in plain text.
            rx.text(t("On: sent through {server} by the {command} command. {waiting} waiting, {sent} sent, "
                      "{failed} given up.", server=m.server, command="hms worker", waiting=m.waiting, sent=m.sent,
                      failed=m.failed), id="mail-status"),
            rx.text(t("Off: HMS_SMTP_URL is not set, so no e-mail is queued or sent (appointment news, "
                      "reminders, results and invoices reach users only inside HMS)."), id="mail-status"),
        ),
        width="100%",
    )


# --- users ---------------------------------------------------------------------------------


def _user_row(u: UserRow) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(u.full_name),
        rx.table.cell(u.email),
        rx.table.cell(u.role_label),
        rx.table.cell(u.unit),
        rx.table.cell(status_badge(u.status, active=u.is_active)),
        rx.table.cell(u.last_login),
        rx.table.cell(
            rx.hstack(
                rx.cond(
                    u.is_active,
                    confirm_dialog(
                        t("Deactivate {name}?", name=u.full_name),
                        N_("They can no longer log in and their open sessions end at once. You can reactivate "
                           "the account later."),
                        confirm=N_("Deactivate"), on_confirm=AdminUsersState.deactivate(u.id),
                        trigger=rx.button(t("Deactivate"), size="1", color_scheme="red", variant="soft",
                                          aria_label=t("Deactivate {name}", name=u.full_name))),
                    rx.button(t("Reactivate"), size="1", variant="soft",
                              on_click=AdminUsersState.reactivate(u.id),
                              aria_label=t("Reactivate {name}", name=u.full_name)),
                ),
                confirm_dialog(
                    t("Reset the password of {name}?", name=u.full_name),
                    N_("Their current password stops working at once; you hand them a temporary one."),
                    confirm=N_("Reset password"), on_confirm=AdminUsersState.reset_password(u.id, u.full_name),
                    trigger=rx.button(t("Reset password"), size="1", variant="soft", color_scheme="gray",
                                      aria_label=t("Reset password of {name}", name=u.full_name))),
                rx.cond(
                    u.second_factor,
                    confirm_dialog(
                        t("Reset the second factor of {name}?", name=u.full_name),
                        N_("Their authenticator stops working and their sessions end; they set up a new one at "
                           "their next login."),
                        confirm=N_("Reset second factor"), on_confirm=AdminUsersState.reset_second_factor(u.id),
                        trigger=rx.button(t("Reset second factor"), size="1", variant="soft", color_scheme="gray",
                                          aria_label=t("Reset second factor of {name}", name=u.full_name))),
                    rx.fragment(),
                ),
                spacing="2",
                wrap="wrap",
            )
        ),
    )


def _create_user_dialog() -> rx.Component:
    return dialog(
        N_("New staff account"),
        rx.form(
            rx.vstack(
                field(N_("Full name"), "full_name", required=True, field_id="new-user-name"),
                field(N_("Email"), "email", type="email", required=True, field_id="new-user-email"),
                select_field(N_("Role"), "role", [(r.value, ROLE_LABELS[r]) for r in STAFF_ROLES],
                             field_id="new-user-role", default="doctor",
                             on_change=AdminUsersState.choose_create_role),
                field(N_("Temporary password"), "password", type="password", required=True,
                      autocomplete="new-password", field_id="new-user-password",
                      hint=N_("At least 10 characters; the person must change it at first login.")),
                rx.cond(
                    AdminUsersState.create_role == "doctor",
                    rx.vstack(
                        select_field(N_("Department"), "department_id", AdminUsersState.department_options,
                                     field_id="new-user-department"),
                        field(N_("Specialty"), "specialty", field_id="new-user-specialty"),
                        field(N_("Consultation fee"), "consultation_fee", required=True, field_id="new-user-fee",
                              hint=N_("An amount like 120 or 120.50."), input_mode="decimal"),
                        field(N_("Slot length in minutes"), "slot_minutes", type="number",
                              field_id="new-user-slot", default_value="20", min=5, max=240),
                        width="100%",
                        spacing="3",
                    ),
                    rx.fragment(),
                ),
                form_error(AdminUsersState.form_error),
                form_buttons(N_("Create account"), AdminUsersState.close_create),
                spacing="3",
            ),
            on_submit=AdminUsersState.create_user,
            reset_on_submit=False,
        ),
        description=N_("The person chooses their own password at first login."),
        open=AdminUsersState.create_open,
        on_close=AdminUsersState.close_create,
        max_width="32rem",
    )


def _temporary_password_dialog() -> rx.Component:
    return dialog(
        N_("Temporary password"),
        description=rx.vstack(
            rx.text(t("Give this password to {name} in person. It is shown only once and must be changed at the "
                      "next login.", name=AdminUsersState.temporary_for)),
            rx.code(AdminUsersState.temporary_password, size="5", id="temporary-password"),
            spacing="3",
        ),
        buttons=[action_button(t("Done"), AdminUsersState.dismiss_temporary_password)],
        open=AdminUsersState.temporary_password != "",
        alert=True,
    )


def users_page() -> rx.Component:
    toolbar = rx.hstack(
        search_box(AdminUsersState, N_("Search users"), N_("Name or email")),
        rx.vstack(
            rx.el.label(t("Role"), html_for="role-filter", font_weight="500", font_size="0.9rem"),
            rx.el.select(
                rx.el.option(t("All roles"), value="all"),
                *[rx.el.option(t(text), value=value) for value, text in ROLE_OPTIONS],
                id="role-filter",
                class_name="native-select",
                on_change=AdminUsersState.filter_role,
            ),
            spacing="1",
        ),
        align="end",
        wrap="wrap",
        spacing="3",
    )
    return page_shell(
        N_("Users"),
        data_table(
            AdminUsersState,
            caption=N_("User accounts"),
            columns=[("full_name", N_("Name")), ("email", N_("Email")), ("role", N_("Role")), ("", N_("Department or unit")),
                     ("status", N_("Status")), ("last_login", N_("Last login")), ("", N_("Actions"))],
            rows=AdminUsersState.rows,
            render_row=_user_row,
            empty=N_("No accounts match. Clear the search or choose another role."),
            toolbar=toolbar,
        ),
        _create_user_dialog(),
        _temporary_password_dialog(),
        actions=rx.button(rx.icon("user-plus", size=16, aria_hidden="true"), t("New staff account"),
                          on_click=AdminUsersState.open_create),
    )


# --- departments ---------------------------------------------------------------------------


def _department_row(d: DepartmentRow) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(
            rx.cond(
                DepartmentsState.renaming_id == d.id,
                rx.form(
                    rx.hstack(
                        rx.el.label(t("New name"), html_for="rename-department", class_name="visually-hidden"),
                        rx.input(id="rename-department", name="name", default_value=d.name, required=True),
                        rx.button(t("Save"), type="submit", size="1"),
                        rx.button(t("Cancel"), type="button", size="1", variant="soft", color_scheme="gray",
                                  on_click=DepartmentsState.cancel_rename),
                        align="center",
                    ),
                    on_submit=DepartmentsState.rename_department,
                ),
                rx.text(d.name),
            )
        ),
        rx.table.cell(d.doctors),
        rx.table.cell(status_badge(d.status, active=d.is_active)),
        rx.table.cell(
            rx.hstack(
                rx.button(t("Rename"), size="1", variant="soft", on_click=DepartmentsState.start_rename(d.id),
                          aria_label=t("Rename {name}", name=d.name)),
                rx.cond(
                    d.is_active,
                    rx.button(t("Deactivate"), size="1", variant="soft", color_scheme="red",
                              on_click=DepartmentsState.toggle_department(d.id, False),
                              aria_label=t("Deactivate {name}", name=d.name)),
                    rx.button(t("Reactivate"), size="1", variant="soft",
                              on_click=DepartmentsState.toggle_department(d.id, True),
                              aria_label=t("Reactivate {name}", name=d.name)),
                ),
                spacing="2",
            )
        ),
    )


def departments_page() -> rx.Component:
    return page_shell(
        N_("Departments"),
        rx.card(
            rx.form(
                rx.hstack(
                    rx.box(field(N_("New department"), "name", required=True, field_id="new-department"), flex="1"),
                    rx.button(t("Create department"), type="submit"),
                    align="end",
                    width="100%",
                    wrap="wrap",
                ),
                on_submit=DepartmentsState.create_department,
                reset_on_submit=True,
            ),
            form_error(DepartmentsState.form_error),
            width="100%",
        ),
        rx.cond(
            DepartmentsState.rows.length() > 0,
            rx.table.root(
                rx.el.caption(t("Departments"), class_name="visually-hidden"),
                rx.table.header(rx.table.row(
                    rx.table.column_header_cell(t("Name"), scope="col"),
                    rx.table.column_header_cell(t("Active doctors"), scope="col"),
                    rx.table.column_header_cell(t("Status"), scope="col"),
                    rx.table.column_header_cell(t("Actions"), scope="col"),
                )),
                rx.table.body(rx.foreach(DepartmentsState.rows, _department_row)),
                variant="surface",
                width="100%",
            ),
            rx.callout(t("No departments yet. Create the first one above."), icon="info", color_scheme="gray"),
        ),
    )


# --- permissions ---------------------------------------------------------------------------


def _permission_cell(cell: PermissionCell) -> rx.Component:
    return rx.table.cell(
        rx.checkbox(
            checked=cell.granted,
            disabled=cell.locked,
            on_change=lambda checked: PermissionsState.toggle_permission(cell.role, cell.permission, checked),
            aria_label=t("{permission} for {role}", permission=cell.permission, role=cell.role),
        ),
        text_align="center",
    )


def _permission_row(row: PermissionRow) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(rx.text(row.permission, weight="medium", font_family="monospace"),
                                 rx.text(row.description, size="1", color="var(--gray-11)")),
        rx.foreach(row.cells, _permission_cell),
    )


def _second_factor_rule(rule: RequirementRow) -> rx.Component:
    return rx.el.li(
        rx.el.label(
            rx.switch(checked=rule.required,
                      on_change=lambda checked: PermissionsState.require_second_factor(rule.role, checked),
                      id="second-factor-" + rule.role),
            rx.text(rule.role_label),
            style={"display": "flex", "gap": "0.5rem", "align_items": "center"},
        ),
    )


def _second_factor_rules() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.heading(t("Second factor at login"), as_="h2", size="4"),
            rx.text(t("Accounts of a ticked role log in with a code from an authenticator app after their "
                      "password; those not yet set up do so at their next login. Anyone who has set one up keeps "
                      "using it."),
                    size="2", color="var(--gray-11)"),
            rx.el.ul(rx.foreach(PermissionsState.second_factor_rules, _second_factor_rule),
                     style={"list_style": "none", "padding": "0", "margin": "0", "display": "flex",
                            "flex_wrap": "wrap", "gap": "1.25rem"}),
            spacing="2",
        ),
        width="100%",
    )


def permissions_page() -> rx.Component:
    return page_shell(
        N_("Permissions"),
        rx.text(t("Tick a box to grant a permission to every account of that role. Administrators always keep "
                  "the right to manage users and permissions."), color="var(--gray-11)"),
        _second_factor_rules(),
        rx.box(
            rx.table.root(
                rx.el.caption(t("Permissions per role"), class_name="visually-hidden"),
                rx.table.header(rx.table.row(
                    rx.table.column_header_cell(t("Permission"), scope="col"),
                    *[rx.table.column_header_cell(t(ROLE_LABELS[r]), scope="col", text_align="center") for r in Role],
                )),
                rx.table.body(rx.foreach(PermissionsState.matrix, _permission_row)),
                variant="surface",
                width="100%",
            ),
            overflow_x="auto",
            width="100%",
        ),
    )


# --- audit ---------------------------------------------------------------------------------


def _audit_row(r: AuditRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(r.occurred_at, white_space="nowrap"),
        rx.table.cell(r.actor),
        rx.table.cell(rx.code(r.action)),
        rx.table.cell(r.record),
        rx.table.cell(r.patient),
        rx.table.cell(r.ip_address),
        rx.table.cell(outcome_badge(r.outcome)),
        rx.table.cell(rx.text(r.detail, size="1")),
    )


def _audit_filters() -> rx.Component:
    return rx.form(
        rx.grid(
            field(N_("User (email or id)"), "user", field_id="audit-user"),
            field(N_("Patient (MRN or id)"), "patient", field_id="audit-patient"),
            field(N_("Action starts with"), "action", field_id="audit-action", placeholder="login."),
            select_field(N_("Outcome"), "outcome", [("all", N_("Any")), ("success", N_("Success")), ("denied", N_("Denied")),
                                                     ("failed", N_("Failed"))], field_id="audit-outcome"),
            field(N_("From"), "date_from", type="date", field_id="audit-from"),
            field(N_("To"), "date_to", type="date", field_id="audit-to"),
            rx.hstack(
                rx.button(t("Apply filters"), type="submit"),
                rx.button(t("Clear"), type="reset", variant="soft", color_scheme="gray", on_click=AuditState.clear_filters),
                align="end",
            ),
            columns=rx.breakpoints(initial="1", sm="2", lg="4"),
            spacing="3",
            align="end",
            width="100%",
        ),
        on_submit=AuditState.apply_filters,
        reset_on_submit=False,
        width="100%",
    )


def audit_page() -> rx.Component:
    return page_shell(
        N_("Audit trail"),
        _audit_filters(),
        rx.cond(AuditState.chain_status != "", rx.callout(AuditState.chain_status, icon="shield-check",
                                                          width="100%"), rx.fragment()),
        data_table(
            AuditState,
            caption=N_("Audit events, newest first"),
            columns=[("", N_("When")), ("", N_("User")), ("", N_("Action")), ("", N_("Record")), ("", N_("Patient")),
                     ("", N_("Address")), ("", N_("Outcome")), ("", N_("Detail"))],
            rows=AuditState.rows,
            render_row=_audit_row,
            empty=N_("No audit events match these filters. Widen the date range or clear the filters."),
            paging=keyset_pager(AuditState, AuditState.size_note),
        ),
        actions=rx.hstack(
            rx.button(rx.icon("shield-check", size=16, aria_hidden="true"), t("Verify chain"), variant="soft",
                      on_click=AuditState.verify_chain),
            rx.button(rx.icon("download", size=16, aria_hidden="true"), t("Export CSV"),
                      on_click=AuditState.export_csv),
        ),
    )


# --- break-glass review ------------------------------------------------------------------------


def _break_glass_row(r: BreakGlassRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(r.when, white_space="nowrap"), rx.table.row_header_cell(r.doctor),
        rx.table.cell(r.patient, rx.text(r.mrn, size="1", color="var(--gray-11)")),
        rx.table.cell(r.reason), rx.table.cell(r.expires, white_space="nowrap"),
    )


def break_glass_page() -> rx.Component:
    return page_shell(
        N_("Break-glass review"),
        rx.text(t("Each row is a doctor opening the chart of a patient not under their care, with the reason they "
                  "gave. The audit trail holds every view made during the four hours that followed."), color="var(--gray-11)"),
        data_table(BreakGlassState, caption=N_("Break-glass openings, newest first"),
                   columns=[("", N_("When")), ("", N_("Doctor")), ("", N_("Patient")), ("", N_("Reason")), ("", N_("Open until"))],
                   rows=BreakGlassState.rows, render_row=_break_glass_row,
                   empty=N_("No chart has been opened by breaking the glass.")),
    )

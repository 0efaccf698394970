"""The dashboards of the patient and of the staff roles other than admin."""

from __future__ import annotations

import reflex as rx

from hms_app.components.i18n import t
from hms_app.components.layout import page_shell
from hms_app.services.core.language import N_
from hms_app.services.reporting.desks import DeskCount, TodayVisit
from hms_app.state.dashboard import DoctorDeskState, LabDeskState, ProfileState


def _item(label: rx.Var[str], value: rx.Var) -> rx.Component:
    return rx.data_list.item(
        rx.data_list.label(label, min_width="10rem"),
        rx.data_list.value(rx.cond(value != "", value, rx.text(t("not recorded"), color="var(--gray-11)"))),
    )


def _stat(label: rx.Var[str], value: rx.Var, element_id: str) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.text(label, size="2", color="var(--gray-11)"),
            rx.text(value, size="6", weight="bold", id=element_id),
            spacing="1",
        ),
        min_width="12rem",
        flex="1",
    )


def patient_dashboard() -> rx.Component:
    p = ProfileState.profile
    return page_shell(
        N_("My dashboard"),
        rx.flex(
            _stat(t("Medical record number"), p.mrn, "patient-mrn"),
            _stat(t("Name"), p.full_name, "patient-name"),
            spacing="3",
            wrap="wrap",
            width="100%",
        ),
        rx.card(
            rx.heading(t("My details"), as_="h2", size="4", margin_bottom="0.75rem"),
            rx.data_list.root(
                _item(t("Email"), p.email),
                _item(t("Birth date"), p.birth_date),
                _item(t("Sex"), p.sex),
                _item(t("Phone"), p.phone),
                _item(t("Address"), p.address),
                _item(t("Emergency contact"), p.emergency_contact),
                _item(t("Insurance"), p.insurance),
                orientation=rx.breakpoints(initial="vertical", sm="horizontal"),
            ),
            width="100%",
        ),
        rx.card(
            rx.heading(t("E-mail"), as_="h2", size="4", margin_bottom="0.5rem"),
            rx.el.label(
                rx.switch(checked=ProfileState.email_reminders, on_change=ProfileState.choose_reminders,
                          id="email-reminders"),
                rx.text(t("E-mail me a reminder the day before each appointment")),
                style={"display": "flex", "gap": "0.5rem", "align_items": "center"},
            ),
            rx.text(t("E-mails only say that something is waiting for you here; they never hold medical or "
                      "payment details."), size="1", color="var(--gray-11)", margin_top="0.5rem"),
            width="100%",
        ),
    )


def staff_dashboard(title: str, *work: rx.Component) -> rx.Component:
    """A staff member's dashboard: their ``work`` of the day first, then their profile; ``title`` is
    an English text marked ``N_`` (the page's shell shows it translated)."""
    p = ProfileState.profile
    return page_shell(
        title,
        *work,
        rx.flex(
            _stat(t("Role"), p.role_label, "staff-role"),
            _stat(t("Department"), p.unit, "staff-department"),
            spacing="3",
            wrap="wrap",
            width="100%",
        ),
        rx.card(
            rx.heading(t("My profile"), as_="h2", size="4", margin_bottom="0.75rem"),
            rx.data_list.root(
                _item(t("Name"), p.full_name),
                _item(t("Email"), p.email),
                _item(t("Department"), p.unit),
                rx.cond(p.role == "doctor", _item(t("Specialty"), p.specialty), rx.fragment()),
                rx.cond(p.role == "doctor", _item(t("Consultation fee"), p.consultation_fee), rx.fragment()),
                rx.cond(p.role == "doctor", _item(t("Slot length (minutes)"), p.slot_minutes.to_string()), rx.fragment()),
                orientation=rx.breakpoints(initial="vertical", sm="horizontal"),
            ),
            width="100%",
        ),
    )


def _count_link(c: DeskCount) -> rx.Component:
    """A count that leads to the page where its work is done."""
    return rx.link(
        rx.card(
            rx.vstack(
                rx.text(c.label, size="2", color="var(--gray-11)"),
                rx.text(c.count, size="6", weight="bold", id="desk-count-" + c.key),
                spacing="1",
            ),
            min_width="12rem", width="100%",
        ),
        href=c.link, flex="1", min_width="12rem", underline="none", color="inherit",
    )


def _counts(heading: rx.Var[str], counts: rx.Var, heading_id: str) -> rx.Component:
    return rx.vstack(
        rx.heading(heading, as_="h2", size="4", id=heading_id),
        rx.flex(rx.foreach(counts, _count_link), spacing="3", wrap="wrap", width="100%"),
        spacing="2", width="100%",
    )


def _visit_row(v: TodayVisit) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(v.time, white_space="nowrap"),
        rx.table.cell(v.patient),
        rx.table.cell(rx.badge(v.status, variant="soft", high_contrast=True,
                               color_scheme=rx.match(v.status_value, ("confirmed", "blue"), ("completed", "grass"),
                                                     ("requested", "amber"), "gray"))),
        rx.table.cell(v.reason),
        data_visit=v.appointment_id.to_string(),
    )


def doctor_dashboard() -> rx.Component:
    d = DoctorDeskState.desk
    return staff_dashboard(
        N_("Doctor's dashboard"),
        _counts(t("Waiting for you"), d.waiting, "desk-waiting"),
        rx.card(
            rx.heading(t("Today's list"), as_="h2", size="4", margin_bottom="0.75rem"),
            rx.cond(
                d.today.length() > 0,
                rx.box(rx.table.root(
                    rx.el.caption(t("Today's appointments, in order"), class_name="visually-hidden"),
                    rx.table.header(rx.table.row(*[rx.table.column_header_cell(h, scope="col")
                                                   for h in (t("Time"), t("Patient"), t("Status"), t("Reason"))])),
                    rx.table.body(rx.foreach(d.today, _visit_row)),
                    variant="surface", width="100%", id="desk-today"),
                    width="100%", overflow_x="auto"),
                rx.callout(t("No appointments today. Requests to confirm are under Appointments."), icon="info",
                           color_scheme="gray", width="100%"),
            ),
            width="100%",
        ),
        rx.link(t("Open my appointments"), href="/doctor/appointments"),
    )


def lab_dashboard() -> rx.Component:
    d = LabDeskState.desk
    return staff_dashboard(
        N_("Laboratory dashboard"),
        _counts(t("Open orders by status"), d.by_status, "desk-by-status"),
        _counts(t("Open orders by priority"), d.by_priority, "desk-by-priority"),
        rx.vstack(
            rx.heading(t("Today's turnaround"), as_="h2", size="4"),
            rx.flex(
                _stat(t("Results entered today"), d.resulted_today.to_string(), "desk-resulted-today"),
                _stat(t("Median order to result"), rx.cond(d.median_turnaround != "", d.median_turnaround,
                                                          t("no results yet today")), "desk-median-turnaround"),
                spacing="3", wrap="wrap", width="100%",
            ),
            spacing="2", width="100%",
        ),
        rx.link(t("Open the worklist"), href="/lab/worklist"),
    )

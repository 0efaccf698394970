"""The dashboards of the patient and of the staff roles other than admin."""

from __future__ import annotations

import reflex as rx

from hms_app.components.layout import page_shell
from hms_app.services.reporting.desks import DeskCount, TodayVisit
from hms_app.state.dashboard import DoctorDeskState, LabDeskState, ProfileState


def _item(label: str, value: rx.Var) -> rx.Component:
    return rx.data_list.item(
        rx.data_list.label(label, min_width="10rem"),
        rx.data_list.value(rx.cond(value != "", value, rx.text("not recorded", color="var(--gray-11)"))),
    )


def _stat(label: str, value: rx.Var, element_id: str) -> rx.Component:
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
        "My dashboard",
        rx.flex(
            _stat("Medical record number", p.mrn, "patient-mrn"),
            _stat("Name", p.full_name, "patient-name"),
            spacing="3",
            wrap="wrap",
            width="100%",
        ),
        rx.card(
            rx.heading("My details", as_="h2", size="4", margin_bottom="0.75rem"),
            rx.data_list.root(
                _item("Email", p.email),
                _item("Birth date", p.birth_date),
                _item("Sex", p.sex),
                _item("Phone", p.phone),
                _item("Address", p.address),
                _item("Emergency contact", p.emergency_contact),
                _item("Insurance", p.insurance),
                orientation=rx.breakpoints(initial="vertical", sm="horizontal"),
            ),
            width="100%",
        ),
        rx.card(
            rx.heading("E-mail", as_="h2", size="4", margin_bottom="0.5rem"),
            rx.el.label(
                rx.switch(checked=ProfileState.email_reminders, on_change=ProfileState.choose_reminders,
                          id="email-reminders"),
                rx.text("E-mail me a reminder the day before each appointment"),
                style={"display": "flex", "gap": "0.5rem", "align_items": "center"},
            ),
            rx.text("E-mails only say that something is waiting for you here; they never hold medical or "
                    "payment details.", size="1", color="var(--gray-11)", margin_top="0.5rem"),
            width="100%",
        ),
    )


def staff_dashboard(title: str, *work: rx.Component) -> rx.Component:
    """A staff member's dashboard: their ``work`` of the day first, then their profile."""
    p = ProfileState.profile
    return page_shell(
        title,
        *work,
        rx.flex(
            _stat("Role", p.role_label, "staff-role"),
            _stat("Department", p.unit, "staff-department"),
            spacing="3",
            wrap="wrap",
            width="100%",
        ),
        rx.card(
            rx.heading("My profile", as_="h2", size="4", margin_bottom="0.75rem"),
            rx.data_list.root(
                _item("Name", p.full_name),
                _item("Email", p.email),
                _item("Department", p.unit),
                rx.cond(p.role == "doctor", _item("Specialty", p.specialty), rx.fragment()),
                rx.cond(p.role == "doctor", _item("Consultation fee", p.consultation_fee), rx.fragment()),
                rx.cond(p.role == "doctor", _item("Slot length (minutes)", p.slot_minutes.to_string()), rx.fragment()),
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


def _counts(heading: str, counts: rx.Var, heading_id: str) -> rx.Component:
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
        "Doctor's dashboard",
        _counts("Waiting for you", d.waiting, "desk-waiting"),
        rx.card(
            rx.heading("Today's list", as_="h2", size="4", margin_bottom="0.75rem"),
            rx.cond(
                d.today.length() > 0,
                rx.box(rx.table.root(
                    rx.el.caption("Today's appointments, in order", class_name="visually-hidden"),
                    rx.table.header(rx.table.row(*[rx.table.column_header_cell(h, scope="col")
                                                   for h in ("Time", "Patient", "Status", "Reason")])),
                    rx.table.body(rx.foreach(d.today, _visit_row)),
                    variant="surface", width="100%", id="desk-today"),
                    width="100%", overflow_x="auto"),
                rx.callout("No appointments today. Requests to confirm are under Appointments.", icon="info",
                           color_scheme="gray", width="100%"),
            ),
            width="100%",
        ),
        rx.link("Open my appointments", href="/doctor/appointments"),
    )


def lab_dashboard() -> rx.Component:
    d = LabDeskState.desk
    return staff_dashboard(
        "Laboratory dashboard",
        _counts("Open orders by status", d.by_status, "desk-by-status"),
        _counts("Open orders by priority", d.by_priority, "desk-by-priority"),
        rx.vstack(
            rx.heading("Today's turnaround", as_="h2", size="4"),
            rx.flex(
                _stat("Results entered today", d.resulted_today.to_string(), "desk-resulted-today"),
                _stat("Median order to result", rx.cond(d.median_turnaround != "", d.median_turnaround,
                                                          "no results yet today"), "desk-median-turnaround"),
                spacing="3", wrap="wrap", width="100%",
            ),
            spacing="2", width="100%",
        ),
        rx.link("Open the worklist", href="/lab/worklist"),
    )

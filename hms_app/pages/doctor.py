"""The doctor's pages about one patient."""

from __future__ import annotations

import reflex as rx

from hms_app.components.badges import appointment_badge
from hms_app.components.layout import page_shell
from hms_app.services.appointments import AppointmentRow
from hms_app.state.doctor import PatientRecordState


def _item(label: str, value: rx.Var) -> rx.Component:
    return rx.data_list.item(
        rx.data_list.label(label, min_width="10rem"),
        rx.data_list.value(rx.cond(value != "", value, rx.text("not recorded", color="var(--gray-11)"))),
    )


def _history_row(row: AppointmentRow) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(row.when), rx.table.cell(row.doctor), rx.table.cell(row.department),
        rx.table.cell(row.reason), rx.table.cell(appointment_badge(row.status, row.status_label)),
    )


def patient_record_page() -> rx.Component:
    r = PatientRecordState.record
    return page_shell(
        "Patient record",
        rx.cond(
            PatientRecordState.missing,
            rx.callout("This record is not available. Open patients from your appointments list.", icon="info",
                       color_scheme="gray", width="100%"),
            rx.vstack(
                rx.card(
                    rx.heading(r.full_name, as_="h2", size="5", id="record-name"),
                    rx.text(r.mrn, " · ", r.sex, " · age ", r.age, color="var(--gray-11)", margin_bottom="0.75rem"),
                    rx.data_list.root(
                        _item("Birth date", r.birth_date),
                        _item("Phone", r.phone),
                        _item("Address", r.address),
                        _item("Emergency contact", r.emergency_contact),
                        _item("Insurance", r.insurance),
                        orientation=rx.breakpoints(initial="vertical", sm="horizontal"),
                    ),
                    width="100%",
                ),
                rx.heading("Appointments", as_="h2", size="4"),
                rx.box(
                    rx.table.root(
                        rx.el.caption("Appointment history", class_name="visually-hidden"),
                        rx.table.header(rx.table.row(*[rx.table.column_header_cell(h, scope="col") for h in
                                                       ("When", "Doctor", "Department", "Reason", "Status")])),
                        rx.table.body(rx.foreach(r.appointments, _history_row)),
                        variant="surface",
                        width="100%",
                    ),
                    overflow_x="auto",
                    width="100%",
                ),
                spacing="4",
                width="100%",
            ),
        ),
    )

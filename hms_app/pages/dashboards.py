"""The dashboards of the patient and of the staff roles other than admin."""

from __future__ import annotations

import reflex as rx

from hms_app.components.layout import page_shell
from hms_app.state.dashboard import ProfileState


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


def staff_dashboard(title: str) -> rx.Component:
    p = ProfileState.profile
    return page_shell(
        title,
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


def doctor_dashboard() -> rx.Component:
    return staff_dashboard("Doctor's dashboard")


def lab_dashboard() -> rx.Component:
    return staff_dashboard("Laboratory dashboard")

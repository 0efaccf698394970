"""Appointment pages: the patient's booking and list, the doctor's day and schedule, admin's
overview of every appointment and every schedule."""

from __future__ import annotations

import reflex as rx

from hms_app.components.badges import appointment_badge
from hms_app.components.dialogs import close_button, confirm_dialog, dialog, form_buttons
from hms_app.components.forms import (
    field,
    form_error,
    request_key_field,
    select_field,
    submit_button,
)
from hms_app.components.layout import page_shell
from hms_app.components.table import data_table
from hms_app.db.enums import APPOINTMENT_STATUS_LABELS
from hms_app.services.booking.appointments import AppointmentRow, SlotOption, WaitlistRow
from hms_app.services.booking.scheduling import WEEKDAYS, HoursBlock, LeaveRow
from hms_app.state.appointments import (
    AdminAppointmentsState,
    BookingState,
    DoctorAppointmentsState,
    PatientAppointmentsState,
    ScheduleState,
)


def _options(options: rx.Var, lead: list[tuple[str, str]]) -> list[rx.Component]:
    return [rx.el.option(text, value=value) for value, text in lead] + [
        rx.foreach(options, lambda o: rx.el.option(o.label, value=o.value))
    ]


def _labelled_select(label: str, select_id: str, options: list[rx.Component], **props) -> rx.Component:
    return rx.vstack(
        rx.el.label(label, html_for=select_id, font_weight="500", font_size="0.9rem"),
        rx.el.select(*options, id=select_id, class_name="native-select", **props),
        spacing="1",
        width="100%",
    )


# --- patient: booking ------------------------------------------------------------------------


def _slot_button(slot: SlotOption) -> rx.Component:
    chosen = BookingState.slot == slot.starts_at
    return rx.button(
        slot.label,
        type="button",
        variant=rx.cond(chosen, "solid", "outline"),
        on_click=BookingState.pick_slot(slot.starts_at),
        aria_pressed=rx.cond(chosen, "true", "false"),
        class_name="slot-button",
        min_width="5rem",
    )


def booking_page() -> rx.Component:
    return page_shell(
        "Book an appointment",
        rx.card(
            rx.vstack(
                rx.grid(
                    _labelled_select("Department", "book-department",
                                     _options(BookingState.departments, [("", "Choose a department")]),
                                     value=BookingState.department_id, on_change=BookingState.choose_department),
                    _labelled_select("Doctor", "book-doctor",
                                     _options(BookingState.doctors, [("any", "Any available doctor")]),
                                     value=BookingState.doctor_id, on_change=BookingState.choose_doctor,
                                     disabled=BookingState.department_id == ""),
                    rx.vstack(
                        rx.el.label("Date", html_for="book-date", font_weight="500", font_size="0.9rem"),
                        rx.input(id="book-date", type="date", value=BookingState.day,
                                 on_change=BookingState.choose_day, width="100%"),
                        spacing="1", width="100%",
                    ),
                    columns=rx.breakpoints(initial="1", sm="3"),
                    spacing="3",
                    width="100%",
                ),
                rx.heading("Free times", as_="h2", size="4"),
                rx.cond(
                    BookingState.slots.length() > 0,
                    rx.flex(rx.foreach(BookingState.slots, _slot_button), wrap="wrap", spacing="2",
                            role="group", aria_label="Free times"),
                    rx.callout(
                        rx.cond(BookingState.department_id == "", "Choose a department and a date to see free times.",
                                "No free times that day. Try another date or doctor, or join the waitlist below."),
                        icon="calendar-x", color_scheme="gray", width="100%",
                    ),
                ),
                rx.form(
                    rx.vstack(
                        rx.el.label("Reason for the visit", html_for="book-reason", font_weight="500",
                                    font_size="0.9rem"),
                        rx.text_area(id="book-reason", name="reason", required=True, max_length=500,
                                     placeholder="For example: follow-up of my blood pressure", width="100%"),
                        form_error(BookingState.error),
                        request_key_field(BookingState.form_key),
                        submit_button("Request appointment", disabled=BookingState.slot == ""),
                        spacing="2",
                        width="100%",
                    ),
                    on_submit=BookingState.request_appointment,
                    reset_on_submit=False,
                    width="100%",
                ),
                spacing="4",
                width="100%",
            ),
            width="100%",
        ),
        rx.card(
            rx.heading("Nothing suits? Join the waitlist", as_="h2", size="4", margin_bottom="0.5rem"),
            rx.text("When a slot frees up with the doctor (or department) chosen above, the first patient "
                    "in line is told at once.", size="2", color="var(--gray-11)"),
            rx.form(
                rx.grid(
                    field("From", "date_from", type="date", required=True, field_id="wait-from"),
                    field("To", "date_to", type="date", required=True, field_id="wait-to"),
                    rx.button("Join waitlist", type="submit", variant="soft", disabled=BookingState.department_id == ""),
                    columns=rx.breakpoints(initial="1", sm="3"),
                    align="end",
                    spacing="3",
                    margin_top="0.75rem",
                ),
                on_submit=BookingState.join_waitlist,
            ),
            width="100%",
        ),
    )


# --- patient: my appointments ------------------------------------------------------------------


def _patient_row(row: AppointmentRow) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(row.when),
        rx.table.cell(row.doctor, rx.text(row.department, size="1", color="var(--gray-11)")),
        rx.table.cell(row.reason),
        rx.table.cell(appointment_badge(row.status, row.status_label),
                      rx.cond(row.status_reason != "", rx.text(row.status_reason, size="1", color="var(--gray-11)"),
                              rx.fragment())),
        rx.table.cell(
            rx.cond(
                row.can_cancel,
                rx.hstack(
                    rx.button("Reschedule", size="1", variant="soft", on_click=PatientAppointmentsState.start_moving(row.id),
                              aria_label="Reschedule the appointment on " + row.when),
                    confirm_dialog(
                        "Cancel your appointment on " + row.when + "?",
                        "With " + row.doctor + ". The time is offered to others; this cannot be undone.",
                        confirm="Cancel appointment", keep="Keep it",
                        on_confirm=PatientAppointmentsState.cancel(row.id),
                        trigger=rx.button("Cancel", size="1", variant="soft", color_scheme="red",
                                          aria_label="Cancel the appointment on " + row.when),
                    ),
                    spacing="2",
                ),
                rx.fragment(),
            )
        ),
        data_appointment=row.id.to_string(),
    )


def _appointments_table(rows: rx.Var, caption: str, render) -> rx.Component:
    return rx.box(
        rx.table.root(
            rx.el.caption(caption, class_name="visually-hidden"),
            rx.table.header(rx.table.row(*[rx.table.column_header_cell(h, scope="col") for h in
                                           ("When", "Doctor", "Reason", "Status", "Actions")])),
            rx.table.body(rx.foreach(rows, render)),
            variant="surface",
            width="100%",
        ),
        overflow_x="auto",
        width="100%",
    )


def _moving_slot(slot: SlotOption) -> rx.Component:
    return rx.button(slot.label, variant="outline", on_click=PatientAppointmentsState.move_to(slot.starts_at))


def _reschedule_dialog() -> rx.Component:
    s = PatientAppointmentsState
    return dialog(
        "Move the appointment",
        rx.vstack(
            rx.el.label("Date", html_for="move-date", font_weight="500", font_size="0.9rem"),
            rx.input(id="move-date", type="date", value=s.moving_day, on_change=s.choose_moving_day),
            rx.cond(s.moving_slots.length() > 0,
                    rx.flex(rx.foreach(s.moving_slots, _moving_slot), wrap="wrap", spacing="2"),
                    rx.text("No free times that day; try another date.", color="var(--gray-11)")),
            rx.flex(close_button("Close", s.stop_moving), justify="end", width="100%"),
            spacing="3",
            margin_top="0.75rem",
        ),
        description="Choose a new free time with " + s.moving_doctor + ".",
        open=s.moving_id != 0,
        on_close=s.stop_moving,
    )


def _waitlist_row(w: WaitlistRow) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(w.department), rx.table.cell(w.doctor), rx.table.cell(w.dates),
        rx.table.cell(w.status, rx.cond(w.offer != "", rx.text(" — " + w.offer), rx.fragment())),
        rx.table.cell(rx.button("Leave", size="1", variant="soft", color_scheme="gray",
                                on_click=PatientAppointmentsState.leave_waitlist(w.id),
                                aria_label="Leave the waitlist for " + w.department)),
    )


def patient_appointments_page() -> rx.Component:
    s = PatientAppointmentsState
    return page_shell(
        "My appointments",
        rx.heading("Upcoming", as_="h2", size="4"),
        rx.cond(s.upcoming.length() > 0, _appointments_table(s.upcoming, "Upcoming appointments", _patient_row),
                rx.callout(rx.text("No upcoming appointments. ", rx.link("Book one now", href="/patient/book", underline="always"), ".", as_="span"),
                           icon="calendar", color_scheme="gray", width="100%")),
        rx.cond(s.waitlist.length() > 0, rx.vstack(
            rx.heading("Waitlists", as_="h2", size="4"),
            rx.table.root(
                rx.table.header(rx.table.row(*[rx.table.column_header_cell(h, scope="col") for h in
                                               ("Department", "Doctor", "Dates", "Status", "Action")])),
                rx.table.body(rx.foreach(s.waitlist, _waitlist_row)), variant="surface", width="100%"),
            width="100%",
        ), rx.fragment()),
        rx.heading("Past and cancelled", as_="h2", size="4"),
        rx.cond(s.past.length() > 0, _appointments_table(s.past, "Past and cancelled appointments", _patient_row),
                rx.text("Nothing here yet.", color="var(--gray-11)")),
        rx.hstack(
            rx.button("Newer", variant="soft", on_click=s.newer_past, disabled=s.past_page <= 1),
            rx.text("Page " + s.past_page.to_string() + " of " + s.past_pages.to_string(), size="2"),
            rx.button("Older", variant="soft", on_click=s.older_past, disabled=s.past_page >= s.past_pages),
            align="center",
        ),
        _reschedule_dialog(),
        actions=rx.link(rx.button(rx.icon("calendar-plus", size=16, aria_hidden="true"), "Book an appointment"),
                        href="/patient/book"),
    )


# --- doctor: day, week, requests ---------------------------------------------------------------


def _doctor_actions(row: AppointmentRow) -> rx.Component:
    s = DoctorAppointmentsState
    return rx.hstack(
        rx.cond(row.can_confirm, rx.fragment(
            rx.button("Confirm", size="1", on_click=s.confirm(row.id), aria_label="Confirm " + row.patient + " at " + row.when),
            rx.button("Decline", size="1", variant="soft", color_scheme="red", on_click=s.ask_reason(row.id, "decline"),
                      aria_label="Decline " + row.patient + " at " + row.when),
        ), rx.fragment()),
        rx.cond((row.status == "confirmed") | (row.status == "completed"),
                rx.button("Encounter", size="1", variant="outline",
                          on_click=rx.redirect("/doctor/encounter?appointment=" + row.id.to_string()),
                          aria_label="Encounter with " + row.patient),
                rx.fragment()),
        rx.cond(row.can_close, rx.fragment(
            rx.button("Complete", size="1", on_click=s.complete(row.id), aria_label="Complete " + row.patient),
            rx.button("No-show", size="1", variant="soft", color_scheme="orange", on_click=s.no_show(row.id),
                      aria_label="No-show: " + row.patient),
        ), rx.fragment()),
        rx.cond(row.can_cancel & (row.status == "confirmed"),
                rx.button("Cancel", size="1", variant="soft", color_scheme="gray", on_click=s.ask_reason(row.id, "cancel"),
                          aria_label="Cancel " + row.patient + " at " + row.when),
                rx.fragment()),
        spacing="2",
        wrap="wrap",
    )


def _doctor_row(row: AppointmentRow, *, with_day: bool = False) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(row.when if with_day else rx.cond(DoctorAppointmentsState.week, row.date + " ", ""),
                                 "" if with_day else row.time),
        rx.table.cell(rx.link(row.patient, href="/doctor/patient?id=" + row.patient_id.to_string(), weight="medium"),
                      rx.text(row.mrn, size="1", color="var(--gray-11)")),
        rx.table.cell(row.reason),
        rx.table.cell(appointment_badge(row.status, row.status_label)),
        rx.table.cell(_doctor_actions(row)),
        data_appointment=row.id.to_string(),
    )


def _doctor_table(rows: rx.Var, caption: str, first: str, *, with_day: bool = False) -> rx.Component:
    return rx.box(
        rx.table.root(
            rx.el.caption(caption, class_name="visually-hidden"),
            rx.table.header(rx.table.row(*[rx.table.column_header_cell(h, scope="col") for h in
                                           (first, "Patient", "Reason", "Status", "Actions")])),
            rx.table.body(rx.foreach(rows, lambda row: _doctor_row(row, with_day=with_day))),
            variant="surface",
            width="100%",
        ),
        overflow_x="auto",
        width="100%",
    )


def _reason_dialog() -> rx.Component:
    s = DoctorAppointmentsState
    return dialog(
        rx.cond(s.answering_action == "decline", "Decline the request", "Cancel the appointment"),
        rx.form(
            rx.vstack(
                rx.el.label("Reason", html_for="answer-reason", font_weight="500", font_size="0.9rem"),
                rx.text_area(id="answer-reason", name="reason", required=True, max_length=500, width="100%"),
                form_buttons(rx.cond(s.answering_action == "decline", "Decline", "Cancel appointment"),
                             s.close_reason, close="Back", color_scheme="red"),
                spacing="2",
                margin_top="0.75rem",
            ),
            on_submit=s.give_reason,
        ),
        description="The patient sees this reason.",
        open=s.answering_id != 0,
        on_close=s.close_reason,
    )


def doctor_appointments_page() -> rx.Component:
    s = DoctorAppointmentsState
    return page_shell(
        "Appointments",
        rx.heading("Requests waiting for you (" + s.pending_total.to_string() + ")", as_="h2", size="4"),
        rx.cond(s.pending.length() > 0, _doctor_table(s.pending, "Pending requests", "When", with_day=True),
                rx.callout("No requests are waiting. New ones appear here at once.", icon="inbox",
                           color_scheme="gray", width="100%")),
        rx.hstack(
            rx.heading(rx.cond(s.week, "Week from ", "Schedule for "), s.day_label, as_="h2", size="4"),
            rx.spacer(),
            rx.vstack(
                rx.el.label("Date", html_for="doctor-day", font_weight="500", font_size="0.9rem"),
                rx.input(id="doctor-day", type="date", value=s.day, on_change=s.choose_day),
                spacing="1",
            ),
            rx.hstack(
                rx.el.label("Week view", html_for="week-switch", font_size="0.9rem"),
                rx.switch(id="week-switch", checked=s.week, on_change=s.show_week),
                align="center",
            ),
            width="100%", align="end", wrap="wrap", spacing="3",
        ),
        rx.cond(s.rows.length() > 0, _doctor_table(s.rows, "Schedule", "Time"),
                rx.callout("Nothing booked for this period. Patients book your free slots from the portal.",
                           icon="calendar", color_scheme="gray", width="100%")),
        _reason_dialog(),
    )


# --- schedules (doctor's own, admin's any) -------------------------------------------------------


def _hours_row(block: HoursBlock) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(block.weekday_name), rx.table.cell(block.start + "–" + block.end),
        rx.table.cell(rx.button("Remove", size="1", variant="soft", color_scheme="red",
                                on_click=ScheduleState.remove_hours(block.id),
                                aria_label="Remove " + block.weekday_name + " " + block.start + "–" + block.end)),
    )


def _leave_row(leave: LeaveRow) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(leave.period), rx.table.cell(leave.reason),
        rx.table.cell(rx.button("Remove", size="1", variant="soft", color_scheme="red",
                                on_click=ScheduleState.remove_leave(leave.id), aria_label="Remove leave " + leave.period)),
    )


def _simple_table(headers: list[str], rows: rx.Var, render, caption: str) -> rx.Component:
    return rx.table.root(
        rx.el.caption(caption, class_name="visually-hidden"),
        rx.table.header(rx.table.row(*[rx.table.column_header_cell(h, scope="col") for h in headers])),
        rx.table.body(rx.foreach(rows, render)),
        variant="surface",
        width="100%",
    )


def schedule_editor() -> rx.Component:
    s = ScheduleState
    return rx.vstack(
        rx.text(s.schedule.doctor_name, " · ", s.schedule.department, color="var(--gray-11)"),
        rx.card(
            rx.heading("Weekly working hours", as_="h2", size="4", margin_bottom="0.5rem"),
            rx.cond(s.schedule.hours.length() > 0,
                    _simple_table(["Day", "Hours", "Action"], s.schedule.hours, _hours_row, "Weekly working hours"),
                    rx.callout("No working hours yet: patients cannot book. Add the first block below.",
                               icon="clock", color_scheme="gray")),
            rx.form(
                rx.hstack(
                    select_field("Weekday", "weekday", [(str(i), d) for i, d in enumerate(WEEKDAYS)], field_id="hours-day"),
                    field("From", "start", type="time", required=True, field_id="hours-start"),
                    field("To", "end", type="time", required=True, field_id="hours-end"),
                    rx.button("Add hours", type="submit"),
                    align="end", wrap="wrap", spacing="3", margin_top="0.75rem",
                ),
                on_submit=s.add_hours,
            ),
            width="100%",
        ),
        rx.card(
            rx.heading("Slot length", as_="h2", size="4", margin_bottom="0.5rem"),
            rx.form(
                rx.hstack(
                    field("Minutes per appointment", "minutes", type="number", required=True, field_id="slot-minutes",
                          default_value=s.schedule.slot_minutes.to_string(), key=s.schedule.slot_minutes.to_string(),
                          min=5, max=240),
                    rx.button("Save", type="submit"),
                    align="end", spacing="3",
                ),
                on_submit=s.change_slot_length,
                reset_on_submit=False,
            ),
            width="100%",
        ),
        rx.card(
            rx.heading("Leave", as_="h2", size="4", margin_bottom="0.5rem"),
            rx.cond(s.schedule.leave.length() > 0,
                    _simple_table(["Period", "Reason", "Action"], s.schedule.leave, _leave_row, "Leave"),
                    rx.text("No leave planned.", color="var(--gray-11)")),
            rx.form(
                rx.grid(
                    field("First day", "date_from", type="date", required=True, field_id="leave-from"),
                    field("Last day", "date_to", type="date", field_id="leave-to", hint="Empty for one day."),
                    field("From (optional)", "start", type="time", field_id="leave-start", hint="For leave by the hour."),
                    field("To (optional)", "end", type="time", field_id="leave-end"),
                    field("Reason", "reason", field_id="leave-reason"),
                    rx.button("Add leave", type="submit"),
                    columns=rx.breakpoints(initial="1", sm="3"), spacing="3", align="end", margin_top="0.75rem",
                ),
                on_submit=s.add_leave,
            ),
            width="100%",
        ),
        spacing="4",
        width="100%",
    )


def doctor_schedule_page() -> rx.Component:
    return page_shell("My schedule", schedule_editor())


def admin_schedules_page() -> rx.Component:
    return page_shell(
        "Doctors' schedules",
        rx.box(
            _labelled_select("Doctor", "schedule-doctor", _options(ScheduleState.doctor_options, []),
                             value=ScheduleState.doctor_id, on_change=ScheduleState.choose_doctor),
            max_width="24rem",
        ),
        schedule_editor(),
    )


# --- admin: every appointment ---------------------------------------------------------------


def _admin_row(row: AppointmentRow) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(row.when),
        rx.table.cell(row.patient, rx.text(row.mrn, size="1", color="var(--gray-11)")),
        rx.table.cell(row.doctor),
        rx.table.cell(row.department),
        rx.table.cell(appointment_badge(row.status, row.status_label)),
        rx.table.cell(row.reason),
    )


def admin_appointments_page() -> rx.Component:
    s = AdminAppointmentsState
    statuses = [("", "Any status")] + [(k.value, v) for k, v in APPOINTMENT_STATUS_LABELS.items()]
    filters = rx.form(
        rx.grid(
            _labelled_select("Department", "filter-department", _options(s.department_options, [("", "All departments")]),
                             name="department"),
            _labelled_select("Doctor", "filter-doctor", _options(s.doctor_options, [("", "All doctors")]), name="doctor"),
            select_field("Status", "status", statuses, field_id="filter-status"),
            field("From", "date_from", type="date", field_id="filter-from"),
            field("To", "date_to", type="date", field_id="filter-to"),
            rx.button("Apply filters", type="submit"),
            columns=rx.breakpoints(initial="1", sm="3"), spacing="3", align="end", width="100%",
        ),
        on_submit=s.apply_filters,
        reset_on_submit=False,
        width="100%",
    )
    return page_shell(
        "All appointments",
        data_table(
            s,
            caption="Appointments",
            columns=[("when", "When"), ("", "Patient"), ("", "Doctor"), ("", "Department"), ("status", "Status"),
                     ("", "Reason")],
            rows=s.rows,
            render_row=_admin_row,
            empty="No appointments match these filters. Widen the dates or clear a filter.",
            toolbar=filters,
        ),
    )



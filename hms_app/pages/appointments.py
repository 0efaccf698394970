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
from hms_app.components.i18n import pt, t
from hms_app.components.layout import page_shell
from hms_app.components.table import data_table
from hms_app.db.enums import APPOINTMENT_STATUS_LABELS
from hms_app.services.booking.appointments import AppointmentRow, SlotOption, WaitlistRow
from hms_app.services.booking.scheduling import WEEKDAYS, HoursBlock, LeaveRow
from hms_app.services.core.language import N_
from hms_app.state.appointments import (
    AdminAppointmentsState,
    BookingState,
    DoctorAppointmentsState,
    PatientAppointmentsState,
    ScheduleState,
)


def _options(options: rx.Var, lead: list[tuple[str, rx.Var[str]]]) -> list[rx.Component]:
    return [rx.el.option(text, value=value) for value, text in lead] + [
        rx.foreach(options, lambda o: rx.el.option(o.label, value=o.value))
    ]


def _labelled_select(label: rx.Var[str], select_id: str, options: list[rx.Component], **props) -> rx.Component:
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
        N_("Book an appointment"),
        rx.card(
            rx.vstack(
                rx.grid(
                    _labelled_select(t("Department"), "book-department",
                                     _options(BookingState.departments, [("", t("Choose a department"))]),
                                     value=BookingState.department_id, on_change=BookingState.choose_department),
                    _labelled_select(t("Doctor"), "book-doctor",
                                     _options(BookingState.doctors, [("any", t("Any available doctor"))]),
                                     value=BookingState.doctor_id, on_change=BookingState.choose_doctor,
                                     disabled=BookingState.department_id == ""),
                    rx.vstack(
                        rx.el.label(t("Date"), html_for="book-date", font_weight="500", font_size="0.9rem"),
                        rx.input(id="book-date", type="date", value=BookingState.day,
                                 on_change=BookingState.choose_day, width="100%", aria_describedby="book-date-label"),
                        rx.text(BookingState.day_label, id="book-date-label", size="2", color="var(--gray-11)"),
                        spacing="1", width="100%",
                    ),
                    columns=rx.breakpoints(initial="1", sm="3"),
                    spacing="3",
                    width="100%",
                ),
                rx.heading(t("Free times"), as_="h2", size="4"),
                rx.cond(
                    BookingState.slots.length() > 0,
                    rx.flex(rx.foreach(BookingState.slots, _slot_button), wrap="wrap", spacing="2",
                            role="group", aria_label=t("Free times")),
                    rx.callout(
                        rx.cond(BookingState.department_id == "", t("Choose a department and a date to see free times."),
                                t("No free times that day. Try another date or doctor, or join the waitlist below.")),
                        icon="calendar-x", color_scheme="gray", width="100%",
                    ),
                ),
                rx.form(
                    rx.vstack(
                        rx.el.label(t("Reason for the visit"), html_for="book-reason", font_weight="500",
                                    font_size="0.9rem"),
                        rx.text_area(id="book-reason", name="reason", required=True, max_length=500,
                                     placeholder=t("For example: follow-up of my blood pressure"), width="100%"),
                        form_error(BookingState.error),
                        request_key_field(BookingState.form_key),
                        submit_button(N_("Request appointment"), disabled=BookingState.slot == ""),
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
            rx.heading(t("Nothing suits? Join the waitlist"), as_="h2", size="4", margin_bottom="0.5rem"),
            rx.text(t("When a slot frees up with the doctor (or department) chosen above, the first patient "
                      "in line is told at once."), size="2", color="var(--gray-11)"),
            rx.form(
                rx.grid(
                    field(N_("From"), "date_from", type="date", required=True, field_id="wait-from"),
                    field(N_("To"), "date_to", type="date", required=True, field_id="wait-to"),
                    rx.button(t("Join waitlist"), type="submit", variant="soft", disabled=BookingState.department_id == ""),
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
                    rx.button(t("Reschedule"), size="1", variant="soft", on_click=PatientAppointmentsState.start_moving(row.id),
                              aria_label=t("Reschedule the appointment on {when}", when=row.when)),
                    confirm_dialog(
                        t("Cancel your appointment on {when}?", when=row.when),
                        t("With {doctor}. The time is offered to others; this cannot be undone.", doctor=row.doctor),
                        confirm=N_("Cancel appointment"), keep=N_("Keep it"),
                        on_confirm=PatientAppointmentsState.cancel(row.id),
                        trigger=rx.button(t("Cancel"), size="1", variant="soft", color_scheme="red",
                                          aria_label=t("Cancel the appointment on {when}", when=row.when)),
                    ),
                    spacing="2",
                ),
                rx.fragment(),
            )
        ),
        data_appointment=row.id.to_string(),
    )


def _appointments_table(rows: rx.Var, caption: rx.Var[str], render) -> rx.Component:
    return rx.box(
        rx.table.root(
            rx.el.caption(caption, class_name="visually-hidden"),
            rx.table.header(rx.table.row(*[rx.table.column_header_cell(h, scope="col") for h in
                                           (t("When"), t("Doctor"), t("Reason"), t("Status"), t("Actions"))])),
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
        N_("Move the appointment"),
        rx.vstack(
            rx.el.label(t("Date"), html_for="move-date", font_weight="500", font_size="0.9rem"),
            rx.input(id="move-date", type="date", value=s.moving_day, on_change=s.choose_moving_day),
            rx.cond(s.moving_slots.length() > 0,
                    rx.flex(rx.foreach(s.moving_slots, _moving_slot), wrap="wrap", spacing="2"),
                    rx.text(t("No free times that day; try another date."), color="var(--gray-11)")),
            rx.flex(close_button(N_("Close"), s.stop_moving), justify="end", width="100%"),
            spacing="3",
            margin_top="0.75rem",
        ),
        description=t("Choose a new free time with {doctor}.", doctor=s.moving_doctor),
        open=s.moving_id != 0,
        on_close=s.stop_moving,
    )


def _waitlist_row(w: WaitlistRow) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(w.department), rx.table.cell(w.doctor), rx.table.cell(w.dates),
        rx.table.cell(w.status, rx.cond(w.offer != "", rx.text(" — " + w.offer), rx.fragment())),
        rx.table.cell(rx.button(t("Leave"), size="1", variant="soft", color_scheme="gray",
                                on_click=PatientAppointmentsState.leave_waitlist(w.id),
                                aria_label=t("Leave the waitlist for {department}", department=w.department))),
    )


def patient_appointments_page() -> rx.Component:
    s = PatientAppointmentsState
    return page_shell(
        N_("My appointments"),
        rx.heading(t("Upcoming"), as_="h2", size="4"),
        rx.cond(s.upcoming.length() > 0, _appointments_table(s.upcoming, t("Upcoming appointments"), _patient_row),
                rx.callout(rx.text(t("No upcoming appointments."), " ",
                                   rx.link(t("Book one now"), href="/patient/book", underline="always"), ".", as_="span"),
                           icon="calendar", color_scheme="gray", width="100%")),
        rx.cond(s.waitlist.length() > 0, rx.vstack(
            rx.heading(t("Waitlists"), as_="h2", size="4"),
            rx.table.root(
                rx.table.header(rx.table.row(*[rx.table.column_header_cell(h, scope="col") for h in
                                               (t("Department"), t("Doctor"), t("Dates"), t("Status"), t("Action"))])),
                rx.table.body(rx.foreach(s.waitlist, _waitlist_row)), variant="surface", width="100%"),
            width="100%",
        ), rx.fragment()),
        rx.heading(t("Past and cancelled"), as_="h2", size="4"),
        rx.cond(s.past.length() > 0, _appointments_table(s.past, t("Past and cancelled appointments"), _patient_row),
                rx.text(t("Nothing here yet."), color="var(--gray-11)")),
        rx.hstack(
            rx.button(t("Newer"), variant="soft", on_click=s.newer_past, disabled=s.past_page <= 1),
            rx.text(t("Page {page} of {pages}", page=s.past_page, pages=s.past_pages), size="2"),
            rx.button(t("Older"), variant="soft", on_click=s.older_past, disabled=s.past_page >= s.past_pages),
            align="center",
        ),
        _reschedule_dialog(),
        actions=rx.link(rx.button(rx.icon("calendar-plus", size=16, aria_hidden="true"), t("Book an appointment")),
                        href="/patient/book"),
    )


# --- doctor: day, week, requests ---------------------------------------------------------------


def _doctor_actions(row: AppointmentRow) -> rx.Component:
    s = DoctorAppointmentsState
    return rx.hstack(
        rx.cond(row.can_confirm, rx.fragment(
            rx.button(t("Confirm"), size="1", on_click=s.confirm(row.id),
                      aria_label=t("Confirm {patient} at {when}", patient=row.patient, when=row.when)),
            rx.button(t("Decline"), size="1", variant="soft", color_scheme="red", on_click=s.ask_reason(row.id, "decline"),
                      aria_label=t("Decline {patient} at {when}", patient=row.patient, when=row.when)),
        ), rx.fragment()),
        rx.cond((row.status == "confirmed") | (row.status == "completed"),
                rx.button(t("Encounter"), size="1", variant="outline",
                          on_click=rx.redirect("/doctor/encounter?appointment=" + row.id.to_string()),
                          aria_label=t("Encounter with {patient}", patient=row.patient)),
                rx.fragment()),
        rx.cond(row.can_close, rx.fragment(
            rx.button(t("Complete"), size="1", on_click=s.complete(row.id),
                      aria_label=t("Complete {patient}", patient=row.patient)),
            rx.button(t("No-show"), size="1", variant="soft", color_scheme="orange", on_click=s.no_show(row.id),
                      aria_label=t("No-show: {patient}", patient=row.patient)),
        ), rx.fragment()),
        rx.cond(row.can_cancel & (row.status == "confirmed"),
                rx.button(t("Cancel"), size="1", variant="soft", color_scheme="gray", on_click=s.ask_reason(row.id, "cancel"),
                          aria_label=t("Cancel {patient} at {when}", patient=row.patient, when=row.when)),
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


def _doctor_table(rows: rx.Var, caption: rx.Var[str], first: rx.Var[str], *, with_day: bool = False) -> rx.Component:
    return rx.box(
        rx.table.root(
            rx.el.caption(caption, class_name="visually-hidden"),
            rx.table.header(rx.table.row(*[rx.table.column_header_cell(h, scope="col") for h in
                                           (first, t("Patient"), t("Reason"), t("Status"), t("Actions"))])),
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
        rx.cond(s.answering_action == "decline", t("Decline the request"), t("Cancel the appointment")),
        rx.form(
            rx.vstack(
                rx.el.label(t("Reason"), html_for="answer-reason", font_weight="500", font_size="0.9rem"),
                rx.text_area(id="answer-reason", name="reason", required=True, max_length=500, width="100%"),
                form_buttons(rx.cond(s.answering_action == "decline", t("Decline"), t("Cancel appointment")),
                             s.close_reason, close=N_("Back"), color_scheme="red"),
                spacing="2",
                margin_top="0.75rem",
            ),
            on_submit=s.give_reason,
        ),
        description=N_("The patient sees this reason."),
        open=s.answering_id != 0,
        on_close=s.close_reason,
    )


def doctor_appointments_page() -> rx.Component:
    s = DoctorAppointmentsState
    return page_shell(
        N_("Appointments"),
        rx.heading(t("Requests waiting for you ({count})", count=s.pending_total), as_="h2", size="4"),
        rx.cond(s.pending.length() > 0, _doctor_table(s.pending, t("Pending requests"), t("When"), with_day=True),
                rx.callout(t("No requests are waiting. New ones appear here at once."), icon="inbox",
                           color_scheme="gray", width="100%")),
        rx.hstack(
            rx.heading(rx.cond(s.week, t("Week from {day}", day=s.day_label), t("Schedule for {day}", day=s.day_label)),
                       as_="h2", size="4"),
            rx.spacer(),
            rx.vstack(
                rx.el.label(t("Date"), html_for="doctor-day", font_weight="500", font_size="0.9rem"),
                rx.input(id="doctor-day", type="date", value=s.day, on_change=s.choose_day),
                spacing="1",
            ),
            rx.hstack(
                rx.el.label(t("Week view"), html_for="week-switch", font_size="0.9rem"),
                rx.switch(id="week-switch", checked=s.week, on_change=s.show_week),
                align="center",
            ),
            width="100%", align="end", wrap="wrap", spacing="3",
        ),
        rx.cond(s.rows.length() > 0, _doctor_table(s.rows, t("Schedule"), t("Time")),
                rx.callout(t("Nothing booked for this period. Patients book your free slots from the portal."),
                           icon="calendar", color_scheme="gray", width="100%")),
        _reason_dialog(),
    )


# --- schedules (doctor's own, admin's any) -------------------------------------------------------


def _hours_row(block: HoursBlock) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(block.weekday_name), rx.table.cell(block.start + "–" + block.end),
        rx.table.cell(rx.button(t("Remove"), size="1", variant="soft", color_scheme="red",
                                on_click=ScheduleState.remove_hours(block.id),
                                aria_label=t("Remove {weekday} {start}–{end}", weekday=block.weekday_name,
                                             start=block.start, end=block.end))),
    )


def _leave_row(leave: LeaveRow) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(leave.period), rx.table.cell(leave.reason),
        rx.table.cell(rx.button(t("Remove"), size="1", variant="soft", color_scheme="red",
                                on_click=ScheduleState.remove_leave(leave.id),
                                aria_label=t("Remove leave {period}", period=leave.period))),
    )


def _simple_table(headers: list[rx.Var[str]], rows: rx.Var, render, caption: rx.Var[str]) -> rx.Component:
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
            rx.heading(t("Weekly working hours"), as_="h2", size="4", margin_bottom="0.5rem"),
            rx.cond(s.schedule.hours.length() > 0,
                    _simple_table([t("Day"), t("Hours"), t("Action")], s.schedule.hours, _hours_row,
                                  t("Weekly working hours")),
                    rx.callout(t("No working hours yet: patients cannot book. Add the first block below."),
                               icon="clock", color_scheme="gray")),
            rx.form(
                rx.hstack(
                    select_field(N_("Weekday"), "weekday", [(str(i), d) for i, d in enumerate(WEEKDAYS)], field_id="hours-day"),
                    field(N_("From"), "start", type="time", required=True, field_id="hours-start"),
                    field(N_("To"), "end", type="time", required=True, field_id="hours-end"),
                    rx.button(t("Add hours"), type="submit"),
                    align="end", wrap="wrap", spacing="3", margin_top="0.75rem",
                ),
                on_submit=s.add_hours,
            ),
            width="100%",
        ),
        rx.card(
            rx.heading(t("Slot length"), as_="h2", size="4", margin_bottom="0.5rem"),
            rx.form(
                rx.hstack(
                    field(N_("Minutes per appointment"), "minutes", type="number", required=True, field_id="slot-minutes",
                          default_value=s.schedule.slot_minutes.to_string(), key=s.schedule.slot_minutes.to_string(),
                          min=5, max=240),
                    rx.button(t("Save"), type="submit"),
                    align="end", spacing="3",
                ),
                on_submit=s.change_slot_length,
                reset_on_submit=False,
            ),
            width="100%",
        ),
        rx.card(
            rx.heading(pt("time off", "Leave"), as_="h2", size="4", margin_bottom="0.5rem"),
            rx.cond(s.schedule.leave.length() > 0,
                    _simple_table([t("Period"), t("Reason"), t("Action")], s.schedule.leave, _leave_row, pt("time off", "Leave")),
                    rx.text(t("No leave planned."), color="var(--gray-11)")),
            rx.form(
                rx.grid(
                    field(N_("First day"), "date_from", type="date", required=True, field_id="leave-from"),
                    field(N_("Last day"), "date_to", type="date", field_id="leave-to", hint=N_("Empty for one day.")),
                    field(N_("From (optional)"), "start", type="time", field_id="leave-start",
                          hint=N_("For leave by the hour.")),
                    field(N_("To (optional)"), "end", type="time", field_id="leave-end"),
                    field(N_("Reason"), "reason", field_id="leave-reason"),
                    rx.button(t("Add leave"), type="submit"),
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
    return page_shell(N_("My schedule"), schedule_editor())


def admin_schedules_page() -> rx.Component:
    return page_shell(
        N_("Doctors' schedules"),
        rx.box(
            _labelled_select(t("Doctor"), "schedule-doctor", _options(ScheduleState.doctor_options, []),
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
    statuses = [("", N_("Any status"))] + [(k.value, v) for k, v in APPOINTMENT_STATUS_LABELS.items()]
    filters = rx.form(
        rx.grid(
            _labelled_select(t("Department"), "filter-department",
                             _options(s.department_options, [("", t("All departments"))]),
                             name="department"),
            _labelled_select(t("Doctor"), "filter-doctor", _options(s.doctor_options, [("", t("All doctors"))]),
                             name="doctor"),
            select_field(N_("Status"), "status", statuses, field_id="filter-status"),
            field(N_("From"), "date_from", type="date", field_id="filter-from"),
            field(N_("To"), "date_to", type="date", field_id="filter-to"),
            rx.button(t("Apply filters"), type="submit"),
            columns=rx.breakpoints(initial="1", sm="3"), spacing="3", align="end", width="100%",
        ),
        on_submit=s.apply_filters,
        reset_on_submit=False,
        width="100%",
    )
    return page_shell(
        N_("All appointments"),
        data_table(
            s,
            caption=N_("Appointments"),
            columns=[("when", N_("When")), ("", N_("Patient")), ("", N_("Doctor")), ("", N_("Department")),
                     ("status", N_("Status")), ("", N_("Reason"))],
            rows=s.rows,
            render_row=_admin_row,
            empty=N_("No appointments match these filters. Widen the dates or clear a filter."),
            toolbar=filters,
        ),
    )



"""Appointments for patients (booking, their list, the waitlist), doctors (their day, week
and pending requests, their schedule) and admin (every appointment, every schedule)."""

from __future__ import annotations

import reflex as rx

from hms_app.services.booking import appointments, scheduling
from hms_app.services.booking.appointments import (
    AppointmentFilter,
    AppointmentRow,
    Option,
    SlotOption,
    WaitlistRow,
)
from hms_app.services.booking.scheduling import Schedule
from hms_app.services.core import localtime, receipts
from hms_app.services.core.errors import HMSError
from hms_app.services.core.language import _
from hms_app.state.auth import SessionState
from hms_app.state.forms import form_text
from hms_app.state.tables import PagedTableMixin


class BookingState(SessionState):
    """The patient's booking form: department, doctor or any, date, slot, reason."""

    departments: list[Option] = []
    doctors: list[Option] = []
    department_id: str = ""
    doctor_id: str = "any"
    day: str = ""
    day_label: str = ""
    """The chosen day written in the reader's language (a browser's date input keeps its own format)."""
    slots: list[SlotOption] = []
    slot: str = ""
    searched: bool = False
    error: str = ""
    form_key: str = ""
    """The booking form's request key (``receipts``): a double click books once."""

    async def _load_slots(self):
        self.slot = ""
        self.searched = False
        self.day_label = localtime.format_date(localtime.parse_local_date(self.day), "weekday")
        if not self.department_id or not self.day:
            self.slots = []
            return None
        answer = await self._act(appointments.free_slots, write=False, department_id=self.department_id,
                                 doctor_id=self.doctor_id, day=self.day)
        self.slots = [] if answer.refused else answer.result
        self.error = answer.error
        self.searched = not answer.refused
        return answer

    @rx.event
    async def open_booking(self):
        """``on_load``: the lists, and the choice a waitlist offer's link carries."""
        params = self.router.url.query_parameters
        answer = await self._act(appointments.booking_departments, write=False)
        if answer.refused:
            return answer
        self.departments = answer.result
        self.department_id = str(params.get("department", "") or "")[:12]
        self.doctor_id = str(params.get("doctor", "") or "any")[:12]
        self.day = str(params.get("date", "") or localtime.local_today().isoformat())[:10]
        self.slots, self.slot, self.searched, self.error = [], "", False, ""
        self.form_key = receipts.new_request_key()
        if self.department_id:
            try:
                self.doctors = await self._call(appointments.booking_doctors, write=False,
                                                department_id=self.department_id)
            except HMSError:
                self.department_id, self.doctors = "", []
        return await self._load_slots()

    @rx.event
    async def choose_department(self, department_id: str):
        self.department_id = str(department_id)[:12]
        self.doctor_id = "any"
        self.doctors = []
        if self.department_id:
            answer = await self._act(appointments.booking_doctors, write=False, department_id=self.department_id)
            if answer.refused:
                return answer
            self.doctors = answer.result
        return await self._load_slots()

    @rx.event
    async def choose_doctor(self, doctor_id: str):
        self.doctor_id = str(doctor_id)[:12] or "any"
        return await self._load_slots()

    @rx.event
    async def choose_day(self, day: str):
        self.day = str(day)[:10]
        return await self._load_slots()

    @rx.event
    def pick_slot(self, starts_at: str):
        self.slot = str(starts_at)[:40]

    @rx.event
    async def request_appointment(self, form_data: dict):
        if not self.slot:
            self.error = _("Choose one of the free times first.")
            yield rx.toast.error(self.error)
            return
        await self._hold_submits()
        yield
        answer = await self._act(
            appointments.book_appointment, department_id=self.department_id, doctor_id=self.doctor_id,
            starts_at=self.slot, reason=form_text(form_data, "reason", 600), on_refusal=self._load_slots,
            request_key=form_text(form_data, "request_key", 64),
            success=lambda _result: [rx.redirect("/patient/appointments"), rx.toast.success(
                _("Appointment requested. You will see here when the doctor confirms it."))])
        if not answer.refused:
            self.error = ""
            self.form_key = receipts.new_request_key()
        yield answer

    @rx.event
    async def join_waitlist(self, form_data: dict):
        return await self._act(
            appointments.join_waitlist, department_id=self.department_id, doctor_id=self.doctor_id,
            date_from=form_text(form_data, "date_from", 10), date_to=form_text(form_data, "date_to", 10),
            success=lambda _result: [rx.redirect("/patient/appointments"),
                               rx.toast.success(_("You are on the waitlist. We will tell you when a slot frees up."))])


class PatientAppointmentsState(SessionState):
    """The patient's upcoming and past appointments and waitlist entries; updates live."""

    upcoming: list[AppointmentRow] = []
    past: list[AppointmentRow] = []
    past_page: int = 1
    past_pages: int = 1
    waitlist: list[WaitlistRow] = []
    moving_id: int = 0
    moving_doctor: str = ""
    moving_day: str = ""
    moving_slots: list[SlotOption] = []
    _moving_department: str = ""
    _moving_doctor_id: str = ""

    @rx.event
    async def load_appointments(self):
        return await self._load()

    async def _fetch(self) -> None:
        upcoming = await self._call(appointments.patient_appointments, write=False, upcoming=True, page_size=50)
        past = await self._call(appointments.patient_appointments, write=False, upcoming=False,
                                page=self.past_page, page_size=10)
        self.waitlist = await self._call(appointments.my_waitlist, write=False)
        self.upcoming = upcoming.rows
        self.past = past.rows
        self.past_pages = past.page_count

    async def _load(self):
        return await self._act(self._fetch())

    @rx.event
    async def older_past(self):
        if self.past_page < self.past_pages:
            self.past_page += 1
        return await self._load()

    @rx.event
    async def newer_past(self):
        if self.past_page > 1:
            self.past_page -= 1
        return await self._load()

    @rx.event
    async def cancel(self, appointment_id: int):
        return await self._act(appointments.cancel_appointment, appointment_id=appointment_id, refresh=self._load,
                               success=_("Appointment cancelled. The slot is free for others again."))

    @rx.event
    async def start_moving(self, appointment_id: int):
        row = next((r for r in self.upcoming if r.id == appointment_id), None)
        if row is None:
            return rx.toast.error(_("That appointment can no longer be moved."))
        self.moving_id = row.id
        self.moving_doctor = row.doctor
        self._moving_department = str(row.department_id)
        self._moving_doctor_id = str(row.doctor_id)
        self.moving_day = localtime.local_today().isoformat()
        return await self._load_moving_slots()

    async def _load_moving_slots(self):
        answer = await self._act(appointments.free_slots, write=False, department_id=self._moving_department,
                                 doctor_id=self._moving_doctor_id, day=self.moving_day)
        self.moving_slots = [] if answer.refused else answer.result
        return answer

    @rx.event
    async def choose_moving_day(self, day: str):
        self.moving_day = str(day)[:10]
        return await self._load_moving_slots()

    @rx.event
    def stop_moving(self):
        self.moving_id = 0
        self.moving_slots = []

    @rx.event
    async def move_to(self, starts_at: str):
        answer = await self._act(appointments.reschedule_appointment, appointment_id=self.moving_id,
                                 starts_at=str(starts_at)[:40], refresh=self._load, on_refusal=self._load_moving_slots,
                                 success=_("Appointment moved. The doctor will confirm the new time."))
        if not answer.refused:
            self.moving_id = 0
            self.moving_slots = []
        return answer

    @rx.event
    async def leave_waitlist(self, entry_id: int):
        return await self._act(appointments.leave_waitlist, entry_id=entry_id, refresh=self._load,
                               success=_("You have left the waitlist."))


class DoctorAppointmentsState(SessionState):
    """The doctor's day or week, and the queue of requests waiting for an answer."""

    day: str = ""
    day_label: str = ""
    week: bool = False
    rows: list[AppointmentRow] = []
    pending: list[AppointmentRow] = []
    pending_total: int = 0
    answering_id: int = 0
    answering_action: str = ""

    @rx.event
    async def load_schedule(self):
        return await self._load()

    async def _fetch(self) -> None:
        if not self.day:
            self.day = localtime.local_today().isoformat()
        self.rows = await self._call(appointments.doctor_schedule, write=False, first_day=self.day,
                                     days=7 if self.week else 1)
        self.day_label = localtime.format_date(localtime.parse_local_date(self.day), "weekday")
        pending = await self._call(appointments.pending_requests, write=False, page_size=50)
        self.pending = pending.rows
        self.pending_total = pending.total

    async def _load(self):
        return await self._act(self._fetch())

    @rx.event
    async def choose_day(self, day: str):
        self.day = str(day)[:10]
        return await self._load()

    @rx.event
    async def show_week(self, week: bool):
        self.week = bool(week)
        return await self._load()

    async def _decide(self, service, success: str, **kwargs):
        """One of the doctor's answers to an appointment; the day is shown afresh either way."""
        answer = await self._act(service, refresh=self._load, on_refusal=self._load, success=success, **kwargs)
        if not answer.refused:
            self.answering_id = 0
        return answer

    @rx.event
    async def confirm(self, appointment_id: int):
        return await self._decide(appointments.confirm_appointment, _("Appointment confirmed; the patient sees it now."),
                                  appointment_id=appointment_id)

    @rx.event
    async def complete(self, appointment_id: int):
        return await self._decide(appointments.complete_appointment, _("Appointment completed."),
                                  appointment_id=appointment_id)

    @rx.event
    async def no_show(self, appointment_id: int):
        return await self._decide(appointments.mark_no_show, _("Marked as a no-show."), appointment_id=appointment_id)

    @rx.event
    def ask_reason(self, appointment_id: int, action: str):
        self.answering_id = appointment_id if isinstance(appointment_id, int) else 0
        self.answering_action = "decline" if action == "decline" else "cancel"

    @rx.event
    def close_reason(self):
        self.answering_id = 0

    @rx.event
    async def give_reason(self, form_data: dict):
        reason = form_text(form_data, "reason")
        if self.answering_action == "decline":
            return await self._decide(appointments.decline_appointment, _("Request declined; the patient is told why."),
                                      appointment_id=self.answering_id, reason=reason)
        return await self._decide(appointments.cancel_appointment, _("Appointment cancelled; the patient is told why."),
                                  appointment_id=self.answering_id, reason=reason)


class ScheduleState(SessionState):
    """Weekly hours, slot length and leave: a doctor's own, or any doctor's for admin."""

    doctor_id: str = ""
    doctor_options: list[Option] = []
    schedule: Schedule = Schedule(0, "", "", 0, [], [])

    async def _fetch(self):
        if not self.doctor_id:
            return None
        answer = await self._act(scheduling.get_schedule, write=False, doctor_id=self.doctor_id)
        if not answer.refused:
            self.schedule = answer.result
        return answer

    @rx.event
    async def load_own_schedule(self):
        answer = await self._act(self._actor(refused_action="scheduling.get_schedule"))
        if answer.refused:
            return answer
        self.doctor_id = str(answer.result.user_id)
        return await self._fetch()

    @rx.event
    async def load_any_schedule(self):
        answer = await self._act(appointments.appointment_filter_options, write=False)
        if answer.refused:
            return answer
        _departments, self.doctor_options = answer.result
        if not self.doctor_id and self.doctor_options:
            self.doctor_id = self.doctor_options[0].value
        return await self._fetch()

    @rx.event
    async def choose_doctor(self, doctor_id: str):
        self.doctor_id = str(doctor_id)[:12]
        return await self._fetch()

    async def _edit(self, service, success: str, **kwargs):
        return await self._act(service, doctor_id=self.doctor_id, refresh=self._fetch, success=success, **kwargs)

    @rx.event
    async def add_hours(self, form_data: dict):
        return await self._edit(scheduling.add_hours, _("Working hours added."), weekday=form_text(form_data, "weekday", 2),
                                start=form_text(form_data, "start", 8), end=form_text(form_data, "end", 8))

    @rx.event
    async def remove_hours(self, block_id: int):
        return await self._edit(scheduling.remove_hours, _("Working hours removed."), block_id=block_id)

    @rx.event
    async def change_slot_length(self, form_data: dict):
        return await self._edit(scheduling.set_slot_minutes, _("Slot length changed."),
                                minutes=form_text(form_data, "minutes", 5))

    @rx.event
    async def add_leave(self, form_data: dict):
        return await self._edit(scheduling.add_leave, _("Leave recorded; those times are no longer bookable."),
                                date_from=form_text(form_data, "date_from", 10), date_to=form_text(form_data, "date_to", 10),
                                start=form_text(form_data, "start", 8), end=form_text(form_data, "end", 8),
                                reason=form_text(form_data, "reason", 200))

    @rx.event
    async def remove_leave(self, leave_id: int):
        return await self._edit(scheduling.remove_leave, _("Leave removed."), leave_id=leave_id)


class AdminAppointmentsState(PagedTableMixin, SessionState):
    """Every appointment in the hospital, with filters."""

    rows: list[AppointmentRow] = []
    sort: str = "when"
    descending: bool = True
    department_options: list[Option] = []
    doctor_options: list[Option] = []
    filter_department: str = ""
    filter_doctor: str = ""
    filter_status: str = ""
    filter_from: str = ""
    filter_to: str = ""

    async def _fetch(self) -> None:
        if not self.department_options:
            self.department_options, self.doctor_options = await self._call(
                appointments.appointment_filter_options, write=False)
        result = await self._call(
            appointments.all_appointments, write=False,
            filters=AppointmentFilter(self.filter_department, self.filter_doctor, self.filter_status,
                                      self.filter_from, self.filter_to),
            page=self.page, page_size=self.page_size, sort=self.sort, descending=self.descending,
        )
        self.rows = self._paged(result)

    @rx.event
    async def apply_filters(self, form_data: dict):
        self.filter_department = form_text(form_data, "department", 12)
        self.filter_doctor = form_text(form_data, "doctor", 12)
        self.filter_status = form_text(form_data, "status", 12)
        self.filter_from = form_text(form_data, "date_from", 10)
        self.filter_to = form_text(form_data, "date_to", 10)
        self.page = 1
        return await self._reload()

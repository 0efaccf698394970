"""The admin's reports page: a date range, a chart and a table per report, and CSV exports."""

from __future__ import annotations

from datetime import timedelta

import reflex as rx

from hms_app.components.figures import Figure, blank_figure
from hms_app.components.report_figures import (
    SummaryTable,
    appointments_by_department_figure,
    appointments_over_time_figure,
    appointments_table,
    lab_turnaround_figure,
    lab_turnaround_table,
    new_patients_figure,
    new_patients_table,
    pharmacy_figure,
    pharmacy_table,
    utilisation_figure,
    utilisation_table,
)
from hms_app.services.core import localtime
from hms_app.services.core.language import N_, _, ngettext
from hms_app.services.core.periods import ReportRange
from hms_app.services.reporting import reports
from hms_app.state.auth import SessionState
from hms_app.state.forms import form_text

DEFAULT_DAYS = 30
_NO_TABLE = SummaryTable("", [], [], empty=True)


def range_label(dates: ReportRange) -> str:
    """The range as the page states it: "1 Mar 2025 – 30 Mar 2025: 30 days, charted per day."."""
    if dates.per == "month":
        text = ngettext("{range}: {n} day, charted per month.", "{range}: {n} days, charted per month.", dates.days)
    else:
        text = ngettext("{range}: {n} day, charted per day.", "{range}: {n} days, charted per day.", dates.days)
    return text.format(range=dates.label, n=dates.days)


class AdminReportsState(SessionState):
    """What the reports page shows: figures and tables only, never the rows behind them."""

    start: str = ""
    end: str = ""
    range_label: str = ""
    error: str = ""
    loading: bool = False
    appointments_over_time: Figure = blank_figure()
    appointments_by_department: Figure = blank_figure()
    utilisation: Figure = blank_figure()
    lab_turnaround: Figure = blank_figure()
    pharmacy: Figure = blank_figure()
    new_patients: Figure = blank_figure()
    appointments_summary: SummaryTable = _NO_TABLE
    utilisation_summary: SummaryTable = _NO_TABLE
    lab_turnaround_summary: SummaryTable = _NO_TABLE
    pharmacy_summary: SummaryTable = _NO_TABLE
    new_patients_summary: SummaryTable = _NO_TABLE

    async def _load(self, start: str, end: str):
        answer = await self._act(reports.hospital_reports, start=start, end=end)
        if answer.refused:
            self.loading = False
            self.error = answer.error
            return answer
        result = answer.result
        dates = result.dates
        self.start, self.end, self.error = dates.first_day.isoformat(), dates.last_day.isoformat(), ""
        self.range_label = range_label(dates)
        self.appointments_over_time = appointments_over_time_figure(result.appointments, dates.periods, dates.per)
        self.appointments_by_department = appointments_by_department_figure(result.appointments)
        self.appointments_summary = appointments_table(result.appointments)
        self.utilisation = utilisation_figure(result.doctor_utilisation)
        self.utilisation_summary = utilisation_table(result.doctor_utilisation)
        self.lab_turnaround = lab_turnaround_figure(result.lab_turnaround)
        self.lab_turnaround_summary = lab_turnaround_table(result.lab_turnaround)
        self.pharmacy = pharmacy_figure(result.pharmacy, dates.per)
        self.pharmacy_summary = pharmacy_table(result.pharmacy)
        self.new_patients = new_patients_figure(result.new_patients)
        self.new_patients_summary = new_patients_table(result.new_patients)
        self.loading = False
        return None

    @rx.event
    async def load_reports(self):
        """``on_load``: the range this tab chose before, else the last 30 days up to today."""
        if not (self.start and self.end):
            today = localtime.local_today()
            self.start, self.end = (today - timedelta(days=DEFAULT_DAYS - 1)).isoformat(), today.isoformat()
        self.loading = True
        yield
        yield await self._load(self.start, self.end)

    @rx.event
    async def apply_range(self, form_data: dict):
        self.loading = True
        yield
        yield await self._load(form_text(form_data, "start", 20), form_text(form_data, "end", 20))

    async def _export(self, report: str, title: str):
        return await self._act(reports.export_report_csv, report=report, start=self.start, end=self.end,
                               success=lambda data: self._csv(data, report, title))

    def _csv(self, data: str, report: str, title: str):
        # The file is named from the dates as parsed, never as sent (setvar reaches start and end).
        dates = reports.parse_report_range(self.start, self.end)
        return [rx.download(data=data, filename=f"{report}-{dates.first_day}-to-{dates.last_day}.csv",
                            mime_type="text/csv"),
                rx.toast.success(_("{report} exported.").format(report=_(title)))]

    @rx.event
    async def export_appointments_csv(self):
        return await self._export("appointments", N_("Appointments"))

    @rx.event
    async def export_utilisation_csv(self):
        return await self._export("doctor-utilisation", N_("Doctor utilisation"))

    @rx.event
    async def export_lab_turnaround_csv(self):
        return await self._export("lab-turnaround", N_("Lab turnaround"))

    @rx.event
    async def export_pharmacy_csv(self):
        return await self._export("pharmacy", N_("Pharmacy activity"))

    @rx.event
    async def export_new_patients_csv(self):
        return await self._export("new-patients", N_("New patients"))

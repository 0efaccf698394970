"""The admin's reports: one card per report with its chart, its figures as a table, and a CSV export."""

from __future__ import annotations

import reflex as rx

from hms_app.components.charts import plotly_chart
from hms_app.components.forms import field, form_error
from hms_app.components.i18n import t
from hms_app.components.layout import page_shell
from hms_app.services.core.language import N_
from hms_app.state.reports import AdminReportsState as S

_PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}


def _range_form() -> rx.Component:
    return rx.card(
        rx.form(
            rx.grid(
                field(N_("From"), "start", type="date", required=True, field_id="report-start",
                      default_value=S.start, key="start-" + S.start),
                field(N_("To"), "end", type="date", required=True, field_id="report-end",
                      default_value=S.end, key="end-" + S.end),
                rx.button(rx.icon("refresh-cw", size=16, aria_hidden="true"), t("Show reports"), type="submit",
                          loading=S.loading),
                columns=rx.breakpoints(initial="1", sm="3"),
                spacing="3",
                align="end",
                width="100%",
                max_width="40rem",
            ),
            on_submit=S.apply_range,
            reset_on_submit=False,
            width="100%",
        ),
        form_error(S.error),
        rx.text(S.range_label, id="report-range", size="2", color="var(--gray-11)", margin_top="0.5rem",
                aria_live="polite"),
        width="100%",
    )


def _cell_row(row: rx.Var) -> rx.Component:
    return rx.table.row(rx.table.row_header_cell(row[0]), rx.foreach(row[1:], lambda cell: rx.table.cell(cell)))


def _summary(table, empty: rx.Var) -> rx.Component:
    """The report's figures as a table, or what to do when the range holds nothing."""
    return rx.cond(
        table.empty,
        rx.callout(empty, icon="info", color_scheme="gray", width="100%"),
        rx.box(
            rx.table.root(
                rx.el.caption(table.caption, class_name="visually-hidden"),
                rx.table.header(rx.table.row(
                    rx.foreach(table.columns, lambda c: rx.table.column_header_cell(c, scope="col")))),
                rx.table.body(rx.foreach(table.rows, _cell_row)),
                size="1",
                width="100%",
            ),
            overflow_x="auto",
            width="100%",
        ),
    )


def _chart(figure) -> rx.Component:
    return rx.box(plotly_chart(figure, config=_PLOTLY_CONFIG, width="100%"), width="100%", class_name="report-chart")


def _report_card(key: str, title: str, about: str, charts: list, summary: rx.Component, export) -> rx.Component:
    """``title`` and ``about``: ``N_``-marked, shown translated."""
    heading_id = f"report-{key}-title"
    return rx.el.section(
        rx.card(
            rx.vstack(
                rx.hstack(
                    rx.heading(t(title), as_="h2", size="4", id=heading_id),
                    rx.spacer(),
                    rx.button(rx.icon("download", size=16, aria_hidden="true"), t("Export CSV"), variant="soft",
                              on_click=export, aria_label=t("Export CSV of {report}", report=t(title).lower())),
                    width="100%",
                    align="center",
                    wrap="wrap",
                ),
                rx.text(t(about), size="2", color="var(--gray-11)"),
                *[_chart(figure) for figure in charts],
                summary,
                spacing="3",
                width="100%",
            ),
            width="100%",
        ),
        aria_labelledby=heading_id,
        id=f"report-{key}",
        width="100%",
    )


def reports_page() -> rx.Component:
    return page_shell(
        t("Reports"),
        rx.text(t("Hospital activity over a range of days in the hospital's own time zone. Each report exports "
                  "as CSV for a spreadsheet."), color="var(--gray-11)"),
        _range_form(),
        _report_card(
            "appointments", N_("Appointments by department and status"),
            N_("Appointments by the day (or month) they start, whatever became of them."),
            [S.appointments_over_time, S.appointments_by_department],
            _summary(S.appointments_summary, t("No appointments start in this range. Choose a wider range, or one "
                                               "that includes coming weeks.")),
            S.export_appointments_csv,
        ),
        _report_card(
            "utilisation", N_("Doctor utilisation"),
            N_("Appointments that held a slot (pending, confirmed, completed or no-show) against the slots of each "
               "doctor's weekly hours in the range, less leave."),
            [S.utilisation],
            _summary(S.utilisation_summary, t("No doctor has weekly hours or bookings in this range. Add hours "
                                              "under Schedules, or choose another range.")),
            S.export_utilisation_csv,
        ),
        _report_card(
            "lab", N_("Lab turnaround times"),
            N_("Time from the doctor's order to the lab's result, for results entered in the range."),
            [S.lab_turnaround],
            _summary(S.lab_turnaround_summary, t("No lab results were entered in this range. Choose a wider range; "
                                                 "results appear here once the lab enters them.")),
            S.export_lab_turnaround_csv,
        ),
        _report_card(
            "pharmacy", N_("Pharmacy dispensing and stock value"),
            N_("Units handed out and their value at price; the stock's value at cost at the end of each period, "
               "rebuilt from the stock ledger."),
            [S.pharmacy],
            _summary(S.pharmacy_summary, t("Nothing was in stock or dispensed in this range. Choose a range that "
                                           "includes deliveries received on the Stock page.")),
            S.export_pharmacy_csv,
        ),
        _report_card(
            "new-patients", N_("New patients per month"),
            N_("Patient accounts created in each month of the range."),
            [S.new_patients],
            _summary(S.new_patients_summary, t("No patients registered in this range. Choose a wider range.")),
            S.export_new_patients_csv,
        ),
    )

"""The admin reports as Plotly figures, and as small tables that say the same in words.

Pure functions of the report rows that ``hms_app.services.reporting.reports`` aggregated in SQL: no
queries here. Every chart has a title; each colour is at least 3:1 against white, and the
table under the chart carries the figures for anyone who cannot see it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import plotly.graph_objects as go

from hms_app.components.figures import NO_TEMPLATE
from hms_app.db.enums import APPOINTMENT_STATUS_LABELS
from hms_app.services.core.localtime import format_period
from hms_app.services.core.numbers import format_money, format_number, money_axis
from hms_app.services.reporting.reports import (
    AppointmentCount,
    DoctorUtilisation,
    LabTurnaround,
    NewPatientsMonth,
    PharmacyPeriod,
)

INK = "#1c2024"
GRID = "#e0e1e6"
BLUE = "#0d74ce"
GREEN = "#218358"
AMBER = "#ab6400"
RED = "#ce2c31"
PURPLE = "#8e4ec6"
GREY = "#60646c"
INDIGO = "#3e63dd"

STATUS_ORDER = list(APPOINTMENT_STATUS_LABELS.values())
STATUS_COLOURS = {
    "Pending": AMBER, "Confirmed": BLUE, "Completed": GREEN, "Cancelled": GREY, "Declined": RED, "No-show": PURPLE,
}
PRIORITY_COLOURS = {"Stat": RED, "Urgent": AMBER, "Routine": BLUE}


@dataclass(frozen=True)
class SummaryTable:
    """A report's figures as a table: the first cell of each row names it."""

    caption: str
    columns: list[str]
    rows: list[list[str]]
    empty: bool = False


# --- labels ------------------------------------------------------------------------------------


def period_label(period: str) -> str:
    """``2025-03-29`` as "29 Mar 2025", ``2025-03`` as "Mar 2025"."""
    return format_period(period)


def duration_label(minutes: float) -> str:
    """Minutes as "25 min", "1 h 17 min" or "2 d 3 h"."""
    whole = round(minutes)
    if whole < 60:
        return f"{whole} min"
    hours, rest = divmod(whole, 60)
    if hours < 48:
        return f"{hours} h {rest} min" if rest else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def _statuses(rows: list[AppointmentCount]) -> list[str]:
    present = {r.status for r in rows}
    return [s for s in STATUS_ORDER if s in present] + sorted(present - set(STATUS_ORDER))


# --- figures -----------------------------------------------------------------------------------


def _style(figure: go.Figure, title: str, *, height: int = 320, legend: bool = True, **layout) -> go.Figure:
    # The title, then the legend, above the plot: below it the legend would meet the axis title.
    figure.update_layout(
        template=NO_TEMPLATE,
        title={"text": title, "x": 0, "xanchor": "left", "y": 0.98, "yref": "container", "yanchor": "top",
               "font": {"size": 15}},
        margin={"l": 10, "r": 10, "t": 76 if legend else 44, "b": 10}, height=height, showlegend=legend,
        legend={"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom", "traceorder": "normal"},
        paper_bgcolor="white", plot_bgcolor="white", separators=money_axis()["separators"],
        font={"color": INK, "size": 12}, hoverlabel={"font": {"color": INK}, "bgcolor": "white"},
        **layout,
    )
    figure.update_xaxes(gridcolor=GRID, linecolor=GREY, automargin=True)
    figure.update_yaxes(gridcolor=GRID, linecolor=GREY, automargin=True, rangemode="tozero")
    return figure


def _count_ticks(largest: int) -> dict:
    """Whole-number ticks: Plotly would put halves between small counts."""
    return {"tickformat": ",d", **({"dtick": 1} if largest <= 8 else {})}


def empty_figure(title: str, message: str, *, height: int = 220) -> go.Figure:
    """A titled chart with no data: the message in the middle, no axes."""
    figure = go.Figure()
    figure.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper",
                          font={"size": 14, "color": GREY})
    _style(figure, title, height=height, legend=False)
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False)
    return figure


def appointments_over_time_figure(rows: list[AppointmentCount], periods: list[str], per: str) -> go.Figure:
    """Appointments per day or month, stacked by status (all departments)."""
    title = f"Appointments per {per}, by status"
    if not rows:
        return empty_figure(title, "No appointments in this range")
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for r in rows:
        counts[(r.status, r.period)] += r.appointments
    labels = [period_label(p) for p in periods]
    figure = go.Figure()
    for status in _statuses(rows):
        figure.add_trace(go.Bar(x=labels, y=[counts[(status, p)] for p in periods], name=status,
                                marker_color=STATUS_COLOURS.get(status, INDIGO),
                                hovertemplate="%{x}: %{y} " + status.lower() + "<extra></extra>"))
    _style(figure, title, barmode="stack")
    figure.update_xaxes(type="category", title_text=per.capitalize())
    figure.update_yaxes(title_text="Appointments", **_count_ticks(max(
        sum(counts[(s, p)] for s in _statuses(rows)) for p in periods)))
    return figure


def appointments_by_department_figure(rows: list[AppointmentCount]) -> go.Figure:
    """Each department's appointments over the whole range, stacked by status."""
    title = "Appointments by department and status"
    if not rows:
        return empty_figure(title, "No appointments in this range")
    departments = sorted({r.department for r in rows}, reverse=True)  # read top-down alphabetically
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for r in rows:
        counts[(r.status, r.department)] += r.appointments
    figure = go.Figure()
    for status in _statuses(rows):
        figure.add_trace(go.Bar(y=departments, x=[counts[(status, d)] for d in departments], name=status,
                                orientation="h", marker_color=STATUS_COLOURS.get(status, INDIGO),
                                hovertemplate="%{y}: %{x} " + status.lower() + "<extra></extra>"))
    _style(figure, title, height=140 + 36 * len(departments), barmode="stack")
    figure.update_xaxes(title_text="Appointments", rangemode="tozero", **_count_ticks(max(
        sum(counts[(s, d)] for s in _statuses(rows)) for d in departments)))
    figure.update_yaxes(type="category")
    return figure


def utilisation_figure(rows: list[DoctorUtilisation]) -> go.Figure:
    """Each doctor's booked slots as a share of the slots they offered."""
    title = "Doctor utilisation: booked as a share of available slots"
    if not rows:
        return empty_figure(title, "No doctor had hours or bookings in this range")
    ordered = list(reversed(rows))  # Plotly draws the first category at the bottom
    names = [f"{r.doctor} · {r.department}" for r in ordered]
    figure = go.Figure(go.Bar(
        y=names, x=[r.utilisation_percent or 0 for r in ordered], orientation="h", marker_color=INDIGO,
        text=[_utilisation_text(r) for r in ordered], textposition="outside", cliponaxis=False,
        hovertemplate="%{y}<br>%{text}<extra></extra>",
    ))
    top = max([r.utilisation_percent or 0 for r in rows] + [100])
    _style(figure, title, height=110 + 30 * len(rows), legend=False)
    figure.update_xaxes(title_text="Utilisation (%)", range=[0, top * 1.1], ticksuffix="%")
    figure.update_yaxes(type="category", rangemode="normal")
    return figure


def _utilisation_text(r: DoctorUtilisation) -> str:
    if r.utilisation_percent is None:
        return f"no slots · {r.booked} booked"
    return f"{percent_label(r)} · {r.booked} of {r.available_slots}"


def percent_label(r: DoctorUtilisation) -> str:
    """"3.4%"; "under 0.1%" rather than a 0% that hides a booking; "no slots"."""
    if r.utilisation_percent is None:
        return "no slots"
    if r.utilisation_percent == 0 and r.booked:
        return "under 0.1%"
    return f"{r.utilisation_percent:g}%"


def lab_turnaround_figure(rows: list[LabTurnaround]) -> go.Figure:
    """Average time from order to result per test, one bar per priority."""
    title = "Lab turnaround: average time from order to result"
    if not rows:
        return empty_figure(title, "No lab results were entered in this range")
    tests = sorted({r.test for r in rows}, reverse=True)
    figure = go.Figure()
    for priority in [p for p in PRIORITY_COLOURS if any(r.priority == p for r in rows)]:
        by_test = {r.test: r for r in rows if r.priority == priority}
        shown = [t for t in tests if t in by_test]
        figure.add_trace(go.Bar(
            y=shown, x=[by_test[t].average_minutes / 60 for t in shown], name=priority, orientation="h",
            marker_color=PRIORITY_COLOURS[priority],
            customdata=[[duration_label(by_test[t].average_minutes), by_test[t].results] for t in shown],
            hovertemplate="%{y} (" + priority.lower() + "): %{customdata[0]} on average over "
                          "%{customdata[1]} results<extra></extra>",
        ))
    _style(figure, title, height=150 + 26 * len(rows), barmode="group")
    figure.update_xaxes(title_text="Average turnaround (hours)", rangemode="tozero")
    figure.update_yaxes(type="category", rangemode="normal")
    return figure


def pharmacy_figure(rows: list[PharmacyPeriod], per: str) -> go.Figure:
    """Units dispensed per day or month (bars) and the stock's value at cost at its end (line)."""
    title = f"Units dispensed per {per}, and stock value at cost"
    if not any(r.units_dispensed or r.stock_value_cents for r in rows):
        return empty_figure(title, "No stock and nothing dispensed in this range")
    labels = [period_label(r.period) for r in rows]
    figure = go.Figure()
    figure.add_trace(go.Bar(x=labels, y=[r.units_dispensed for r in rows], name="Units dispensed",
                            marker_color=BLUE, customdata=[format_number(r.units_dispensed) for r in rows],
                            hovertemplate="%{x}: %{customdata} units dispensed<extra></extra>"))
    figure.add_trace(go.Scatter(x=labels, y=[r.stock_value_cents / 100 for r in rows], name="Stock value at cost",
                                yaxis="y2", mode="lines+markers" if len(rows) <= 31 else "lines",
                                line={"color": GREEN, "width": 3},
                                customdata=[format_money(r.stock_value_cents) for r in rows],
                                hovertemplate="%{x}: stock worth %{customdata} at cost<extra></extra>"))
    _style(figure, title, yaxis2={"overlaying": "y", "side": "right", "title": {"text": "Stock value at cost"},
                                  "rangemode": "tozero", "tickformat": ",.0f", "showgrid": False,
                                  "tickprefix": money_axis()["tickprefix"], "ticksuffix": money_axis()["ticksuffix"],
                                  "automargin": True})
    figure.update_xaxes(type="category", title_text=per.capitalize())
    figure.update_layout(yaxis={"title": {"text": "Units dispensed"},
                                **_count_ticks(max(r.units_dispensed for r in rows))})
    return figure


def new_patients_figure(rows: list[NewPatientsMonth]) -> go.Figure:
    title = "New patients per month"
    if not any(r.new_patients for r in rows):
        return empty_figure(title, "No patients registered in this range")
    labels = [period_label(r.month) for r in rows]
    figure = go.Figure(go.Bar(x=labels, y=[r.new_patients for r in rows], marker_color=PURPLE,
                              text=[r.new_patients for r in rows], textposition="outside", cliponaxis=False,
                              hovertemplate="%{x}: %{y} new patients<extra></extra>"))
    _style(figure, title, legend=False)
    figure.update_xaxes(type="category", title_text="Month")
    figure.update_yaxes(title_text="New patients", **_count_ticks(max(r.new_patients for r in rows)))
    return figure


# --- the same in words -------------------------------------------------------------------------


def appointments_table(rows: list[AppointmentCount]) -> SummaryTable:
    """Appointments per department and status over the range, with totals."""
    statuses = _statuses(rows)
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for r in rows:
        counts[(r.department, r.status)] += r.appointments
    departments = sorted({r.department for r in rows})
    body = [[d, *[str(counts[(d, s)]) for s in statuses], str(sum(counts[(d, s)] for s in statuses))]
            for d in departments]
    if len(departments) > 1:
        body.append(["All departments", *[str(sum(counts[(d, s)] for d in departments)) for s in statuses],
                     str(sum(r.appointments for r in rows))])
    return SummaryTable("Appointments per department and status in the range", ["Department", *statuses, "Total"],
                        body, empty=not rows)


def utilisation_table(rows: list[DoctorUtilisation]) -> SummaryTable:
    return SummaryTable(
        "Slots available and booked per doctor in the range",
        ["Doctor", "Department", "Available slots", "Booked", "Utilisation"],
        [[r.doctor, r.department, str(r.available_slots), str(r.booked),
          percent_label(r)] for r in rows],
        empty=not rows,
    )


def lab_turnaround_table(rows: list[LabTurnaround]) -> SummaryTable:
    return SummaryTable(
        "Turnaround from order to result per test and priority, for results entered in the range",
        ["Test", "Priority", "Results", "Average", "Longest"],
        [[f"{r.test} ({r.test_code})", r.priority, str(r.results), duration_label(r.average_minutes),
          duration_label(r.longest_minutes)] for r in rows],
        empty=not rows,
    )


def pharmacy_table(rows: list[PharmacyPeriod]) -> SummaryTable:
    if not rows:
        return SummaryTable("Pharmacy dispensing and stock value in the range", ["Figure", "Value"], [], empty=True)
    body = [
        ["Dispensations", format_number(sum(r.dispensations for r in rows))],
        ["Units dispensed", format_number(sum(r.units_dispensed for r in rows))],
        ["Value dispensed (at price)", format_money(sum(r.dispensed_value_cents for r in rows))],
        [f"Stock value at cost, end of {period_label(rows[0].period)}", format_money(rows[0].stock_value_cents)],
        [f"Stock value at cost, end of {period_label(rows[-1].period)}", format_money(rows[-1].stock_value_cents)],
    ]
    if len(rows) == 1:
        del body[3]
    quiet = not any(r.units_dispensed or r.stock_value_cents for r in rows)
    return SummaryTable("Pharmacy dispensing and stock value in the range", ["Figure", "Value"], body, empty=quiet)


def new_patients_table(rows: list[NewPatientsMonth]) -> SummaryTable:
    body = [[period_label(r.month), str(r.new_patients)] for r in rows]
    if len(rows) > 1:
        body.append(["All months", str(sum(r.new_patients for r in rows))])
    return SummaryTable("New patients per month in the range", ["Month", "New patients"], body,
                        empty=not any(r.new_patients for r in rows))

"""The admin reports as Plotly figures (plain dicts), and as small tables that say the same in words.

Pure functions of the report rows that ``hms_app.services.reporting.reports`` aggregated in SQL: no
queries here. Every chart has a title; each colour is at least 3:1 against white, and the
table under the chart carries the figures for anyone who cannot see it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from hms_app.components.figures import NO_TEMPLATE, Figure, in_reading_direction
from hms_app.db.enums import APPOINTMENT_STATUS_LABELS
from hms_app.services.core.language import N_, _
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
PRIORITY_COLOURS = {N_("Stat"): RED, N_("Urgent"): AMBER, N_("Routine"): BLUE}
"""By the English labels (the catalogue's ids); a chart shows them in the reader's language."""
_PERIOD_AXES = {"day": N_("Day"), "month": N_("Month")}
"""The title of the time axis of a report charted per day or per month."""


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
        return _("{minutes} min").format(minutes=format_number(whole))
    hours, rest = divmod(whole, 60)
    if hours < 48:
        if rest:
            return _("{hours} h {minutes} min").format(hours=format_number(hours), minutes=format_number(rest))
        return _("{hours} h").format(hours=format_number(hours))
    days, hours = divmod(hours, 24)
    if hours:
        return _("{days} d {hours} h").format(days=format_number(days), hours=format_number(hours))
    return _("{days} d").format(days=format_number(days))


def _english(label: str, known: Iterable[str]) -> str:
    """A report row's status or priority as its English label among ``known``: the reporting
    service may write it in English or already in the reader's language."""
    return next((k for k in known if label in (k, _(k))), label)


def _statuses(rows: list[AppointmentCount]) -> list[str]:
    """The statuses present in ``rows`` (English labels), in the workflow's order."""
    present = {_english(r.status, STATUS_ORDER) for r in rows}
    return [s for s in STATUS_ORDER if s in present] + sorted(present - set(STATUS_ORDER))


def _period_axis(per: str) -> dict:
    return _title(_(_PERIOD_AXES[per]) if per in _PERIOD_AXES else per)


# --- figures -----------------------------------------------------------------------------------


def _style(data: list[dict], title: str, *, height: int = 320, legend: bool = True, xaxis: dict | None = None,
           yaxis: dict | None = None, **layout) -> Figure:
    """A figure of ``data`` in the reports' style; ``xaxis`` and ``yaxis`` add to (or override) the
    grid, lines and margins every axis has, the y axes also starting at zero, ``yaxis2`` included."""
    # The title, then the legend, above the plot: below it the legend would meet the axis title.
    every_axis = {"gridcolor": GRID, "linecolor": GREY, "automargin": True}
    every_y_axis = {**every_axis, "rangemode": "tozero"}
    if "yaxis2" in layout:
        layout["yaxis2"] = {**layout["yaxis2"], **every_y_axis}
    return in_reading_direction({"data": data, "layout": {
        "template": NO_TEMPLATE,
        "title": {"text": title, "x": 0, "xanchor": "left", "y": 0.98, "yref": "container", "yanchor": "top",
                  "font": {"size": 15}},
        "margin": {"l": 10, "r": 10, "t": 76 if legend else 44, "b": 10}, "height": height, "showlegend": legend,
        "legend": {"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom", "traceorder": "normal"},
        "paper_bgcolor": "white", "plot_bgcolor": "white", "separators": money_axis()["separators"],
        "font": {"color": INK, "size": 12}, "hoverlabel": {"font": {"color": INK}, "bgcolor": "white"},
        **layout,
        "xaxis": {**every_axis, **(xaxis or {})},
        "yaxis": {**every_y_axis, **(yaxis or {})},
    }})


def _count_ticks(largest: int) -> dict:
    """Whole-number ticks: Plotly would put halves between small counts."""
    return {"tickformat": ",d", **({"dtick": 1} if largest <= 8 else {})}


def _title(text: str) -> dict:
    return {"title": {"text": text}}


def empty_figure(title: str, message: str, *, height: int = 220) -> Figure:
    """A titled chart with no data: the message in the middle, no axes."""
    note = {"text": message, "showarrow": False, "x": 0.5, "y": 0.5, "xref": "paper", "yref": "paper",
            "font": {"size": 14, "color": GREY}}
    return _style([], title, height=height, legend=False, annotations=[note], xaxis={"visible": False},
                  yaxis={"visible": False})


def _status_hover(category: str, count: str, status: str) -> str:
    """"29 Mar 2025: 3 completed": a stacked bar's hover label (Plotly fills the ``%{…}``)."""
    return _("{category}: {count} {status}").format(category=category, count=count,
                                                      status=_(status).lower()) + "<extra></extra>"


def appointments_over_time_figure(rows: list[AppointmentCount], periods: list[str], per: str) -> Figure:
    """Appointments per day or month, stacked by status (all departments)."""
    title = _("Appointments per month, by status") if per == "month" else _("Appointments per day, by status")
    if not rows:
        return empty_figure(title, _("No appointments in this range"))
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for r in rows:
        counts[(_english(r.status, STATUS_ORDER), r.period)] += r.appointments
    labels = [period_label(p) for p in periods]
    bars = [{"type": "bar", "x": labels, "y": [counts[(status, p)] for p in periods], "name": _(status),
             "marker": {"color": STATUS_COLOURS.get(status, INDIGO)},
             "hovertemplate": _status_hover("%{x}", "%{y}", status)} for status in _statuses(rows)]
    largest = max(sum(counts[(s, p)] for s in _statuses(rows)) for p in periods)
    return _style(bars, title, barmode="stack", xaxis={"type": "category", **_period_axis(per)},
                  yaxis={**_title(_("Appointments")), **_count_ticks(largest)})


def appointments_by_department_figure(rows: list[AppointmentCount]) -> Figure:
    """Each department's appointments over the whole range, stacked by status."""
    title = _("Appointments by department and status")
    if not rows:
        return empty_figure(title, _("No appointments in this range"))
    departments = sorted({r.department for r in rows}, reverse=True)  # read top-down alphabetically
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for r in rows:
        counts[(_english(r.status, STATUS_ORDER), r.department)] += r.appointments
    bars = [{"type": "bar", "y": departments, "x": [counts[(status, d)] for d in departments], "name": _(status),
             "orientation": "h", "marker": {"color": STATUS_COLOURS.get(status, INDIGO)},
             "hovertemplate": _status_hover("%{y}", "%{x}", status)} for status in _statuses(rows)]
    largest = max(sum(counts[(s, d)] for s in _statuses(rows)) for d in departments)
    return _style(bars, title, height=140 + 36 * len(departments), barmode="stack",
                  xaxis={**_title(_("Appointments")), "rangemode": "tozero", **_count_ticks(largest)},
                  yaxis={"type": "category"})


def utilisation_figure(rows: list[DoctorUtilisation]) -> Figure:
    """Each doctor's booked slots as a share of the slots they offered."""
    title = _("Doctor utilisation: booked as a share of available slots")
    if not rows:
        return empty_figure(title, _("No doctor had hours or bookings in this range"))
    ordered = list(reversed(rows))  # Plotly draws the first category at the bottom
    bars = {"type": "bar", "y": [f"{r.doctor} · {r.department}" for r in ordered],
            "x": [r.utilisation_percent or 0 for r in ordered], "orientation": "h", "marker": {"color": INDIGO},
            "text": [_utilisation_text(r) for r in ordered], "textposition": "outside", "cliponaxis": False,
            "hovertemplate": "%{y}<br>%{text}<extra></extra>"}
    top = max([r.utilisation_percent or 0 for r in rows] + [100])
    return _style([bars], title, height=110 + 30 * len(rows), legend=False,
                  xaxis={**_title(_("Utilisation (%)")), "range": [0, top * 1.1], "ticksuffix": "%"},
                  yaxis={"type": "category", "rangemode": "normal"})


def _utilisation_text(r: DoctorUtilisation) -> str:
    # The counts ungrouped, as this label has always written them ("1 of 2919"): it sits beside
    # the bar, where a short figure reads best.
    if r.utilisation_percent is None:
        return _("no slots · {booked} booked").format(booked=r.booked)
    return _("{percent} · {booked} of {available}").format(
        percent=percent_label(r), booked=r.booked, available=r.available_slots)


def percent_label(r: DoctorUtilisation) -> str:
    """"3.4%"; "under 0.1%" rather than a 0% that hides a booking; "no slots"."""
    if r.utilisation_percent is None:
        return _("no slots")
    if r.utilisation_percent == 0 and r.booked:
        return _("under 0.1%")
    value = r.utilisation_percent
    return _("{percent}%").format(percent=format_number(value, decimals=0 if value == int(value) else 1))


def lab_turnaround_figure(rows: list[LabTurnaround]) -> Figure:
    """Average time from order to result per test, one bar per priority."""
    title = _("Lab turnaround: average time from order to result")
    if not rows:
        return empty_figure(title, _("No lab results were entered in this range"))
    tests = sorted({r.test for r in rows}, reverse=True)
    bars = []
    for priority in [p for p in PRIORITY_COLOURS if any(_english(r.priority, PRIORITY_COLOURS) == p for r in rows)]:
        by_test = {r.test: r for r in rows if _english(r.priority, PRIORITY_COLOURS) == priority}
        shown = [t for t in tests if t in by_test]
        bars.append({
            "type": "bar", "y": shown, "x": [by_test[t].average_minutes / 60 for t in shown], "name": _(priority),
            "orientation": "h", "marker": {"color": PRIORITY_COLOURS[priority]},
            "customdata": [[duration_label(by_test[t].average_minutes), format_number(by_test[t].results)]
                           for t in shown],
            "hovertemplate": _("{test} ({priority}): {average} on average over {results} results").format(
                test="%{y}", priority=_(priority).lower(), average="%{customdata[0]}",
                results="%{customdata[1]}") + "<extra></extra>",
        })
    return _style(bars, title, height=150 + 26 * len(rows), barmode="group",
                  xaxis={**_title(_("Average turnaround (hours)")), "rangemode": "tozero"},
                  yaxis={"type": "category", "rangemode": "normal"})


def pharmacy_figure(rows: list[PharmacyPeriod], per: str) -> Figure:
    """Units dispensed per day or month (bars) and the stock's value at cost at its end (line)."""
    title = (_("Units dispensed per month, and stock value at cost") if per == "month"
             else _("Units dispensed per day, and stock value at cost"))
    if not any(r.units_dispensed or r.stock_value_cents for r in rows):
        return empty_figure(title, _("No stock and nothing dispensed in this range"))
    labels = [period_label(r.period) for r in rows]
    units = {"type": "bar", "x": labels, "y": [r.units_dispensed for r in rows], "name": _("Units dispensed"),
             "marker": {"color": BLUE}, "customdata": [format_number(r.units_dispensed) for r in rows],
             "hovertemplate": _("{period}: {units} units dispensed").format(
                 period="%{x}", units="%{customdata}") + "<extra></extra>"}
    stock_value = {"type": "scatter", "x": labels, "y": [r.stock_value_cents / 100 for r in rows],
                   "name": _("Stock value at cost"), "yaxis": "y2",
                   "mode": "lines+markers" if len(rows) <= 31 else "lines",
                   "line": {"color": GREEN, "width": 3}, "customdata": [format_money(r.stock_value_cents) for r in rows],
                   "hovertemplate": _("{period}: stock worth {amount} at cost").format(
                       period="%{x}", amount="%{customdata}") + "<extra></extra>"}
    marks = money_axis()
    return _style([units, stock_value], title,
                  xaxis={"type": "category", **_period_axis(per)},
                  yaxis={**_title(_("Units dispensed")), **_count_ticks(max(r.units_dispensed for r in rows))},
                  yaxis2={"overlaying": "y", "side": "right", **_title(_("Stock value at cost")), "rangemode": "tozero",
                          "tickformat": ",.0f", "showgrid": False, "tickprefix": marks["tickprefix"],
                          "ticksuffix": marks["ticksuffix"], "automargin": True})


def new_patients_figure(rows: list[NewPatientsMonth]) -> Figure:
    title = _("New patients per month")
    if not any(r.new_patients for r in rows):
        return empty_figure(title, _("No patients registered in this range"))
    bars = {"type": "bar", "x": [period_label(r.month) for r in rows], "y": [r.new_patients for r in rows],
            "marker": {"color": PURPLE}, "text": [format_number(r.new_patients) for r in rows],
            "textposition": "outside", "cliponaxis": False,
            "hovertemplate": _("{month}: {count} new patients").format(month="%{x}", count="%{y}")
                             + "<extra></extra>"}
    return _style([bars], title, legend=False, xaxis={"type": "category", **_title(_("Month"))},
                  yaxis={**_title(_("New patients")), **_count_ticks(max(r.new_patients for r in rows))})


# --- the same in words -------------------------------------------------------------------------


def appointments_table(rows: list[AppointmentCount]) -> SummaryTable:
    """Appointments per department and status over the range, with totals."""
    statuses = _statuses(rows)
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for r in rows:
        counts[(r.department, _english(r.status, STATUS_ORDER))] += r.appointments
    departments = sorted({r.department for r in rows})
    body = [[d, *[format_number(counts[(d, s)]) for s in statuses],
             format_number(sum(counts[(d, s)] for s in statuses))] for d in departments]
    if len(departments) > 1:
        body.append([_("All departments"), *[format_number(sum(counts[(d, s)] for d in departments)) for s in statuses],
                     format_number(sum(r.appointments for r in rows))])
    return SummaryTable(_("Appointments per department and status in the range"),
                        [_("Department"), *[_(s) for s in statuses], _("Total")], body, empty=not rows)


def utilisation_table(rows: list[DoctorUtilisation]) -> SummaryTable:
    return SummaryTable(
        _("Slots available and booked per doctor in the range"),
        [_("Doctor"), _("Department"), _("Available slots"), _("Booked"), _("Utilisation")],
        [[r.doctor, r.department, format_number(r.available_slots), format_number(r.booked),
          percent_label(r)] for r in rows],
        empty=not rows,
    )


def lab_turnaround_table(rows: list[LabTurnaround]) -> SummaryTable:
    return SummaryTable(
        _("Turnaround from order to result per test and priority, for results entered in the range"),
        [_("Test"), _("Priority"), _("Results"), _("Average"), _("Longest")],
        [[f"{r.test} ({r.test_code})", _(_english(r.priority, PRIORITY_COLOURS)), format_number(r.results),
          duration_label(r.average_minutes), duration_label(r.longest_minutes)] for r in rows],
        empty=not rows,
    )


def pharmacy_table(rows: list[PharmacyPeriod]) -> SummaryTable:
    caption, columns = _("Pharmacy dispensing and stock value in the range"), [_("Figure"), _("Value")]
    if not rows:
        return SummaryTable(caption, columns, [], empty=True)
    body = [
        [_("Dispensations"), format_number(sum(r.dispensations for r in rows))],
        [_("Units dispensed"), format_number(sum(r.units_dispensed for r in rows))],
        [_("Value dispensed (at price)"), format_money(sum(r.dispensed_value_cents for r in rows))],
        [_("Stock value at cost, end of {period}").format(period=period_label(rows[0].period)),
         format_money(rows[0].stock_value_cents)],
        [_("Stock value at cost, end of {period}").format(period=period_label(rows[-1].period)),
         format_money(rows[-1].stock_value_cents)],
    ]
    if len(rows) == 1:
        del body[3]
    quiet = not any(r.units_dispensed or r.stock_value_cents for r in rows)
    return SummaryTable(caption, columns, body, empty=quiet)


def new_patients_table(rows: list[NewPatientsMonth]) -> SummaryTable:
    body = [[period_label(r.month), format_number(r.new_patients)] for r in rows]
    if len(rows) > 1:
        body.append([_("All months"), format_number(sum(r.new_patients for r in rows))])
    return SummaryTable(_("New patients per month in the range"), [_("Month"), _("New patients")], body,
                        empty=not any(r.new_patients for r in rows))

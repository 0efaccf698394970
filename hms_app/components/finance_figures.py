"""Pure functions that turn the accounts dashboard's aggregates into Plotly figures (plain dicts) and tables.

Colours come from the Okabe–Ito palette, each at least 3:1 against white, and never carry
meaning alone: collected bars are hatched where billed bars are solid,
bars carry their amounts as text, and the page prints every figure in a table as well.
"""

from __future__ import annotations

from dataclasses import dataclass

from hms_app import settings
from hms_app.components.figures import NO_TEMPLATE, Figure, in_reading_direction
from hms_app.services.accounting import finance
from hms_app.services.accounting.finance import (
    PATIENTS_PAYER,
    AccountsSummary,
    AgeBucket,
    DepartmentBilled,
    KindBilled,
    MethodCollected,
    PayerOutstanding,
    RevenuePeriod,
)
from hms_app.services.core.language import _, ngettext
from hms_app.services.core.localtime import format_date, format_period
from hms_app.services.core.numbers import format_money, format_number, format_percent, money_axis

BILLED_COLOUR = "#0072B2"  # blue, 5.2:1 on white
COLLECTED_COLOUR = "#D55E00"  # vermilion, 3.9:1
AGE_COLOURS = ["#0072B2", "#AB6400", "#D55E00", "#9A3412"]  # blue within terms, then warmer and darker
INK = "#1c2024"
GRID = "#e0e1e6"
LEGEND_TOP_MARGIN = 60
"""Pixels above the plot of a chart with a legend: the title, the toolbar and the legend below it."""
CHART_CONFIG = {"displaylogo": False, "responsive": True,
                "modeBarButtonsToRemove": ["select2d", "lasso2d", "autoScale2d"]}
"""Passed to ``rx.plotly``: Plotly's own toolbar without its logo or selection tools."""


def _money_axis() -> dict:
    marks = money_axis()
    return {"title": {"text": _("Amount ({currency})").format(currency=settings.CURRENCY)}, "tickformat": ",.0f", "gridcolor": GRID,
            "tickprefix": marks["tickprefix"], "ticksuffix": marks["ticksuffix"],
            "rangemode": "tozero", "zerolinecolor": "#b9bbc6"}


def _figure(data: list[dict], title: str, *, height: int = 320, legend: bool = False, **axes) -> Figure:
    # A legend sits at the top right, where Plotly's toolbar shows while the pointer is over the
    # chart: the toolbar gets a row of its own above the legend.
    return in_reading_direction({"data": data, "layout": {
        "template": NO_TEMPLATE,
        "title": {"text": title, "font": {"size": 13, "color": "#60646c"}, "x": 0, "xanchor": "left"},
        "height": height, "margin": {"l": 60, "r": 16, "t": LEGEND_TOP_MARGIN if legend else 36, "b": 48},
        "showlegend": legend,
        "legend": {"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 1, "xanchor": "right"},
        "paper_bgcolor": "white", "plot_bgcolor": "white", "font": {"color": INK, "family": "system-ui, sans-serif"},
        "hoverlabel": {"bgcolor": "white"}, "separators": money_axis()["separators"], **axes,
    }})


def _units(cents: int) -> float:
    return cents / 100


def _bar_text(cents: list[int]) -> list[str]:
    return [format_money(c) for c in cents]


def _hover(first: str, text: str) -> str:
    """A bar's hover label: its category (``%{x}`` or ``%{y}``) over ``text``, whose ``{amount}``
    is the bar's amount as written (its ``customdata``)."""
    return f"{first}<br>" + text.format(amount="%{customdata}") + "<extra></extra>"


def _is_patients(payer: str) -> bool:
    """Whether ``payer`` is the patients' share: the service names it in the reader's language."""
    return payer == _(PATIENTS_PAYER)


def _revenue_bars(rows: list[RevenuePeriod], *, amounts_on_bars: bool = False) -> list[dict]:
    """Billed and collected side by side; collected hatched, so the two differ without colour."""
    periods = [format_period(r.period) for r in rows]
    billed, collected = [r.billed_cents for r in rows], [r.collected_cents for r in rows]
    on_bars = ({"text": _bar_text(billed), "textposition": "outside"},
               {"text": _bar_text(collected), "textposition": "outside"}) if amounts_on_bars else ({}, {})
    return [
        {"type": "bar", "x": periods, "y": [_units(c) for c in billed], "name": _("Billed"),
         "marker": {"color": BILLED_COLOUR}, "customdata": _bar_text(billed),
         "hovertemplate": _hover("%{x}", _("Billed {amount}")), **on_bars[0]},
        {"type": "bar", "x": periods, "y": [_units(c) for c in collected], "name": _("Collected"),
         "marker": {"color": COLLECTED_COLOUR, "pattern": {"shape": "/", "fgcolor": "white", "solidity": 0.25}},
         "customdata": [_signed(c) for c in collected],
         "hovertemplate": _hover("%{x}", _("Collected {amount}")), **on_bars[1]},
    ]


def revenue_by_day_figure(rows: list[RevenuePeriod], range_label: str) -> Figure:
    """Billed and collected on each local day of the range."""
    return _figure(_revenue_bars(rows), f"{range_label} · {settings.CURRENCY}", legend=True, barmode="group",
                   bargap=0.25, xaxis={"title": {"text": _("Day")}, "type": "category", "gridcolor": GRID},
                   yaxis=_money_axis())


def revenue_by_month_figure(rows: list[RevenuePeriod], range_label: str) -> Figure:
    """Billed and collected in each local month of the range, amounts written on the bars."""
    return _figure(_revenue_bars(rows, amounts_on_bars=True), f"{range_label} · {settings.CURRENCY}", legend=True,
                   barmode="group", uniformtext={"minsize": 9, "mode": "hide"},
                   xaxis={"title": {"text": _("Month")}, "type": "category"}, yaxis=_money_axis())


def _horizontal_bars(names: list[str], cents: list[int], title: str, colours: str | list[str],
                     hover: str) -> Figure:
    """One bar per name, largest on top, its amount written beside it; ``hover`` says what the
    amount is, ``{amount}`` in it."""
    bars = {
        "type": "bar", "y": names, "x": [_units(c) for c in cents], "orientation": "h",
        "marker": {"color": colours}, "text": _bar_text(cents), "textposition": "auto",
        "insidetextfont": {"color": "white"}, "outsidetextfont": {"color": INK}, "customdata": _bar_text(cents),
        "hovertemplate": _hover("%{y}", hover),
    }
    return _figure([bars], title, height=max(200, 70 + 44 * len(names)),
                   xaxis=_money_axis(), yaxis={"autorange": "reversed", "automargin": True})


def billed_by_department_figure(rows: list[DepartmentBilled], range_label: str) -> Figure:
    return _horizontal_bars([r.department for r in rows], [r.billed_cents for r in rows],
                            _("Billed, {range}").format(range=range_label), BILLED_COLOUR, _("Billed {amount}"))


def billed_by_kind_figure(rows: list[KindBilled], range_label: str) -> Figure:
    return _horizontal_bars([r.kind for r in rows], [r.billed_cents for r in rows],
                            _("Billed, {range}").format(range=range_label), BILLED_COLOUR, _("Billed {amount}"))


def collected_by_method_figure(rows: list[MethodCollected], range_label: str) -> Figure:
    """Collected (received less refunded) per payment method."""
    return _horizontal_bars([r.method for r in rows], [r.collected_cents for r in rows],
                            _("Collected less refunds, {range}").format(range=range_label), COLLECTED_COLOUR,
                            _("Collected {amount}"))


def receivables_by_age_figure(rows: list[AgeBucket], today: str) -> Figure:
    """Open balances by days since the invoice was issued, youngest first."""
    return _horizontal_bars([r.age for r in rows], [r.outstanding_cents for r in rows],
                            _("Open invoices on {day}, by days since issue").format(day=today),
                            AGE_COLOURS[:len(rows)], _("Outstanding {amount}"))


def outstanding_by_payer_figure(rows: list[PayerOutstanding], today: str) -> Figure:
    """What each insurer is still expected to pay, and what the patients owe."""
    colours = [COLLECTED_COLOUR if _is_patients(r.payer) else BILLED_COLOUR for r in rows]
    return _horizontal_bars([r.payer for r in rows], [r.outstanding_cents for r in rows],
                            _("Still owed on {day}").format(day=today), colours, _("Owed {amount}"))


def accounts_figures(summary: AccountsSummary, today: str) -> dict[str, Figure]:
    """Every chart of the accounts dashboard by its report name (``finance.REPORTS``)."""
    label = summary.dates.label
    return {
        "revenue-by-day": revenue_by_day_figure(summary.by_day, label),
        "revenue-by-month": revenue_by_month_figure(summary.by_month, label),
        "billed-by-department": billed_by_department_figure(summary.by_department, label),
        "billed-by-kind": billed_by_kind_figure(summary.by_kind, label),
        "collected-by-method": collected_by_method_figure(summary.by_method, label),
        "receivables-by-age": receivables_by_age_figure(summary.by_age, today),
        "outstanding-by-payer": outstanding_by_payer_figure(summary.by_payer, today),
    }


# --- the same figures as text: the headline tiles, and a table and a sentence per chart -----------


@dataclass(frozen=True)
class HeadlineView:
    billed: str
    collected: str
    outstanding: str
    overdue: str
    open_invoices: int
    range_label: str
    today: str


@dataclass(frozen=True)
class SummaryTable:
    """One chart's figures as a table (first column a label, the others numbers) and a sentence."""

    report: str
    title: str
    columns: list[str]
    rows: list[list[str]]
    total: list[str]
    summary: str
    is_empty: bool


def headline_view(summary: AccountsSummary) -> HeadlineView:
    h = summary.headline
    return HeadlineView(format_money(h.billed_cents), _signed(h.collected_cents),
                        format_money(h.outstanding_cents), format_money(h.overdue_cents), h.open_invoices,
                        summary.dates.label, format_date(summary.today))


def _signed(cents: int) -> str:
    return format_money(cents)  # a net refund reads with a minus sign, like every amount


def _revenue_table(report: str, rows: list[RevenuePeriod], range_label: str, period: str) -> SummaryTable:
    billed, collected = sum(r.billed_cents for r in rows), sum(r.collected_cents for r in rows)
    busiest = max(rows, key=lambda r: (r.collected_cents, r.period), default=None)
    summary = _("{range}: billed {billed}, collected {collected}.").format(
        range=range_label, billed=format_money(billed), collected=_signed(collected))
    if busiest is not None and busiest.collected_cents > 0:
        summary += " " + _("Most collected on {period}: {amount}.").format(
            period=format_period(busiest.period), amount=format_money(busiest.collected_cents))
    return SummaryTable(report, _(finance.REPORTS[report].title), [period, _("Billed"), _("Collected")],
                        [[format_period(r.period), format_money(r.billed_cents), _signed(r.collected_cents)] for r in rows],
                        [_("Total"), format_money(billed), _signed(collected)], summary,
                        not any(r.billed_cents or r.collected_cents for r in rows))


def _share_table(report: str, names: list[str], charges: list[int], cents: list[int], label: str) -> SummaryTable:
    """What each department or kind of service billed, and its share of the total."""
    total = sum(cents)
    rows = [[name, format_number(n), format_money(c), format_percent(c, total)]
            for name, n, c in zip(names, charges, cents, strict=True)]
    top = max(zip(cents, names, strict=True), default=(0, ""))
    summary = ngettext("{total} billed in {n} charge; the most from {top} ({amount}).",
                       "{total} billed in {n} charges; the most from {top} ({amount}).", sum(charges)).format(
        total=format_money(total), n=format_number(sum(charges)), top=top[1], amount=format_money(top[0])) \
        if total else _("Nothing billed in this range.")
    return SummaryTable(report, _(finance.REPORTS[report].title), [label, _("Charges"), _("Billed"), _("Share")], rows,
                        [_("Total"), format_number(sum(charges)), format_money(total),
                         format_percent(1, 1) if total else "–"], summary,
                        not any(charges))


def summary_tables(summary: AccountsSummary) -> list[SummaryTable]:
    """The figures of every chart as text, in page order, so they are not only visual."""
    label = summary.dates.label
    departments, kinds, methods = summary.by_department, summary.by_kind, summary.by_method
    collected = sum(m.collected_cents for m in methods)
    refunded = sum(m.refunded_cents for m in methods)
    receivable = sum(b.outstanding_cents for b in summary.by_age)
    open_invoices = sum(b.invoices for b in summary.by_age)
    payers_owed = sum(p.outstanding_cents for p in summary.by_payer)
    insurers = [p for p in summary.by_payer if not _is_patients(p.payer) and p.outstanding_cents]
    return [
        _revenue_table("revenue-by-day", summary.by_day, label, _("Day")),
        _revenue_table("revenue-by-month", summary.by_month, label, _("Month")),
        _share_table("billed-by-department", [d.department for d in departments], [d.charges for d in departments],
                     [d.billed_cents for d in departments], _("Department")),
        _share_table("billed-by-kind", [k.kind for k in kinds], [k.charges for k in kinds],
                     [k.billed_cents for k in kinds], _("Kind of service")),
        SummaryTable(
            "collected-by-method", _(finance.REPORTS["collected-by-method"].title),
            [_("Method"), _("Payments"), _("Received"), _("Refunded"), _("Collected")],
            [[m.method, format_number(m.payments), format_money(m.received_cents),
              format_money(m.refunded_cents), _signed(m.collected_cents)] for m in methods],
            [_("Total"), format_number(sum(m.payments for m in methods)),
             format_money(sum(m.received_cents for m in methods)), format_money(refunded), _signed(collected)],
            _("{collected} collected after {refunded} refunded.").format(
                collected=_signed(collected), refunded=format_money(refunded)) if any(
                m.payments for m in methods) else _("No payments received in this range."),
            not any(m.payments for m in methods)),
        SummaryTable(
            "receivables-by-age", _(finance.REPORTS["receivables-by-age"].title),
            [_("Days since issue"), _("Invoices"), _("Outstanding")],
            [[b.age, format_number(b.invoices), format_money(b.outstanding_cents)] for b in summary.by_age],
            [_("Total"), format_number(open_invoices), format_money(receivable)],
            ngettext("{amount} outstanding on {n} open invoice; {overdue} of it overdue.",
                     "{amount} outstanding on {n} open invoices; {overdue} of it overdue.", open_invoices).format(
                amount=format_money(receivable), n=format_number(open_invoices),
                overdue=format_money(summary.headline.overdue_cents)) if open_invoices else
            _("No open invoices: everything issued is paid."),
            not open_invoices),
        SummaryTable(
            "outstanding-by-payer", _(finance.REPORTS["outstanding-by-payer"].title),
            [_("Payer"), _("Invoices"), _("Outstanding")],
            [[p.payer, format_number(p.invoices), format_money(p.outstanding_cents)]
             for p in summary.by_payer],
            [_("Total"), format_number(open_invoices), format_money(payers_owed)],
            ngettext("{insurers_owe} expected from {n} insurer, {patients_owe} from patients.",
                     "{insurers_owe} expected from {n} insurers, {patients_owe} from patients.", len(insurers)).format(
                insurers_owe=format_money(sum(p.outstanding_cents for p in insurers)),
                n=format_number(len(insurers)),
                patients_owe=format_money(summary.by_payer[-1].outstanding_cents)) if payers_owed else
            _("Nothing is owed by insurers or patients."),
            not payers_owed),
    ]

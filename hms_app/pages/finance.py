"""The accounts dashboard at ``/accounts``: headline figures, seven charts, each with its table and CSV."""

from __future__ import annotations

import reflex as rx

from hms_app import settings
from hms_app.components.charts import plotly_chart
from hms_app.components.figures import Figure
from hms_app.components.finance_figures import CHART_CONFIG
from hms_app.components.forms import field
from hms_app.components.i18n import t, tn
from hms_app.components.layout import page_shell
from hms_app.services.accounting.finance import REPORTS
from hms_app.services.core.language import N_
from hms_app.state.finance import AccountsDashboardState

_MUTED = "var(--gray-11)"
_REPORT_NAMES = list(REPORTS)

_EMPTY = {
    "revenue-by-day": N_("Nothing was billed or collected in this range. Choose an earlier start date: charges appear "
                         "as consultations, lab tests and medicines are completed, payments as they are recorded."),
    "revenue-by-month": N_("Nothing was billed or collected in this range. Choose a longer range to compare months."),
    "billed-by-department": N_("No charges in this range. Choose an earlier start date to see which departments "
                               "billed."),
    "billed-by-kind": N_("No charges in this range. Choose an earlier start date to see consultations, lab tests and "
                         "medicines."),
    "collected-by-method": N_("No payments were received in this range. Record payments on the Invoices page, or "
                              "choose an earlier start date."),
    "receivables-by-age": N_("No open invoices: everything issued is paid. Issue the draft invoices on the Invoices "
                             "page to bill them."),
    "outstanding-by-payer": N_("Nothing is owed by insurers or patients. Open invoices appear here once issued."),
}
"""What each chart says, and what to do, when it has nothing to show."""


def _figure(report: str) -> rx.Var[Figure]:
    s = AccountsDashboardState
    return {
        "revenue-by-day": s.day_figure, "revenue-by-month": s.month_figure,
        "billed-by-department": s.department_figure, "billed-by-kind": s.kind_figure,
        "collected-by-method": s.method_figure, "receivables-by-age": s.age_figure,
        "outstanding-by-payer": s.payer_figure,
    }[report]


def _tile(label: rx.Var, value: rx.Var, element_id: str, note: rx.Var) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.text(label, size="2", color=_MUTED, id=f"{element_id}-label"),
            rx.text(value, size="6", weight="bold", id=element_id, aria_describedby=f"{element_id}-label"),
            rx.text(note, size="1", color=_MUTED),
            spacing="1",
        ),
        min_width="12rem", flex="1",
    )


def _headline() -> rx.Component:
    h = AccountsDashboardState.headline
    return rx.flex(
        _tile(t("Collected"), h.collected, "collected-total", t("payments less refunds, in the range")),
        _tile(t("Billed"), h.billed, "billed-total", t("charges for services given in the range")),
        _tile(t("Outstanding now"), h.outstanding, "outstanding-total",
              tn("on {n} open invoice", "on {n} open invoices", h.open_invoices)),
        _tile(t("Overdue now"), h.overdue, "overdue-total", t("past the due date")),
        spacing="3", wrap="wrap", width="100%",
    )


def _range_form() -> rx.Component:
    s = AccountsDashboardState
    quick = [(7, N_("Last 7 days")), (30, N_("Last 30 days")), (90, N_("Last 90 days")), (365, N_("Last 12 months"))]
    return rx.card(
        rx.form(
            rx.flex(
                rx.box(field(N_("Start date"), "start", type="date", field_id="range-start", default_value=s.start,
                             key="start-" + s.start), width="11rem"),
                rx.box(field(N_("End date"), "end", type="date", field_id="range-end", default_value=s.end,
                             key="end-" + s.end), width="11rem"),
                rx.button(t("Show"), type="submit"),
                rx.separator(orientation="vertical", size="2", display=["none", "none", "block"]),
                *[rx.button(t(label), type="button", variant="soft", color_scheme="gray",
                            on_click=s.show_last_days(days)) for days, label in quick],
                spacing="3", align="end", wrap="wrap",
            ),
            on_submit=s.show_range, reset_on_submit=False, aria_label=t("Date range"),
        ),
        rx.text(
            rx.cond(s.loaded, t("Revenue for {range} (at most 366 days). Receivables and outstanding as of today, "
                                "{today}. Amounts in {currency}.", range=s.headline.range_label,
                                today=s.headline.today, currency=settings.CURRENCY),
                    t("Loading the figures…")),
            size="2", color=_MUTED, margin_top="0.75rem", aria_live="polite", id="range-shown",
        ),
        width="100%",
    )


def _table_row(cells: rx.Var, *, total: bool = False) -> rx.Component:
    return rx.table.row(rx.foreach(
        cells, lambda cell, index: rx.cond(
            index == 0, rx.table.row_header_cell(cell), rx.table.cell(cell, text_align="right", white_space="nowrap"))),
        font_weight="bold" if total else None)


def _figures_table(index: int) -> rx.Component:
    figures = AccountsDashboardState.tables[index]
    return rx.box(
        rx.table.root(
            rx.el.caption(t("{title} as a table", title=figures.title), class_name="visually-hidden"),
            rx.table.header(rx.table.row(rx.foreach(figures.columns, lambda label, i: rx.table.column_header_cell(
                label, scope="col", text_align=rx.cond(i == 0, "left", "right"))))),
            rx.table.body(rx.foreach(figures.rows, _table_row), _table_row(figures.total, total=True)),
            size="1", variant="ghost", width="100%",
        ),
        # A box that scrolls is reached by the keyboard too, and named for screen readers.
        width="100%", overflow_x="auto", max_height="24rem", overflow_y="auto", tab_index=0, role="region",
        aria_label=t("{title} as a table", title=figures.title),
    )


def _chart_card(report: str, *, long_table: bool = False) -> rx.Component:
    index = _REPORT_NAMES.index(report)
    title = t(REPORTS[report].title)
    figures = AccountsDashboardState.tables[index]
    table = _figures_table(index)
    return rx.card(
        rx.flex(
            rx.heading(title, as_="h2", size="4"),
            rx.button(rx.icon("download", size=14, aria_hidden="true"), t("Export CSV"), size="1", variant="soft",
                      on_click=AccountsDashboardState.export_csv(report), aria_label=t("Export CSV: {title}",
                                                                                       title=title)),
            justify="between", align="center", wrap="wrap", spacing="2", margin_bottom="0.5rem",
        ),
        rx.cond(
            ~AccountsDashboardState.loaded,
            rx.text(t("Loading…"), size="2", color=_MUTED),
            rx.cond(
                figures.is_empty,
                rx.callout(t(_EMPTY[report]), icon="info", color_scheme="gray", width="100%"),
                rx.vstack(
                    plotly_chart(_figure(report), config=CHART_CONFIG, width="100%"),
                    rx.text(figures.summary, size="2", class_name="chart-summary"),
                    rx.el.details(rx.el.summary(t("The figures, day by day"), class_name="figures-toggle"), table,
                                  width="100%") if long_table else table,
                    spacing="3", width="100%",
                ),
            ),
        ),
        id=f"chart-{report}", width="100%", min_width="0",
    )


def accounts_dashboard() -> rx.Component:
    return page_shell(
        t("Accounts dashboard"),
        _range_form(),
        _headline(),
        _chart_card("revenue-by-day", long_table=True),
        rx.grid(
            *[_chart_card(report) for report in _REPORT_NAMES[1:]],
            columns=rx.breakpoints(initial="1", lg="2"), spacing="4", width="100%",
        ),
    )

"""The accounts dashboard's figures and tables, from aggregates made up here, and the figures of the
demo hospital's billing history against the plotly.graph_objects builder they replaced."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from bench.figures_cpu import legacy_accounts_figures
from hms_app.components import finance_figures
from hms_app.components.finance_figures import accounts_figures, headline_view, summary_tables
from hms_app.db.engine import session_scope
from hms_app.db.enums import Role
from hms_app.services.accounting import finance
from hms_app.services.accounting.finance import (
    AccountsHeadline,
    AccountsSummary,
    AgeBucket,
    DepartmentBilled,
    KindBilled,
    MethodCollected,
    PayerOutstanding,
    RevenuePeriod,
)
from hms_app.services.core.periods import ReportRange
from tests.components.plotly_json import checked, sent, without_empty
from tests.conftest import DEMO_EMAIL, login_as, seed_demo_into


def _summary() -> AccountsSummary:
    dates = ReportRange(date(2025, 3, 30), date(2025, 3, 31), datetime(2025, 3, 30, tzinfo=UTC),
                        datetime(2025, 3, 31, 23, tzinfo=UTC), "day")
    return AccountsSummary(
        dates=dates, today=date(2025, 4, 2),
        headline=AccountsHeadline(billed_cents=1234567, collected_cents=-500, outstanding_cents=9000,
                                  overdue_cents=4000, open_invoices=3),
        by_day=[RevenuePeriod("2025-03-30", 1234567, 0), RevenuePeriod("2025-03-31", 0, -500)],
        by_month=[RevenuePeriod("2025-03", 1234567, -500)],
        by_department=[DepartmentBilled("Cardiology", 3, 1000000), DepartmentBilled("Dermatology", 1, 234567)],
        by_kind=[KindBilled("Consultation", 4, 1234567), KindBilled("Lab test", 0, 0), KindBilled("Medicine", 0, 0)],
        by_method=[MethodCollected("Cash", 1, 0, 500, -500), MethodCollected("Card", 0, 0, 0, 0),
                   MethodCollected("Bank transfer", 0, 0, 0, 0), MethodCollected("Insurance", 0, 0, 0, 0)],
        by_age=[AgeBucket("0–30 days", 1, 5000), AgeBucket("31–60 days", 2, 4000), AgeBucket("61–90 days", 0, 0),
                AgeBucket("Over 90 days", 0, 0)],
        by_payer=[PayerOutstanding("Northwind Health", 1, 3500), PayerOutstanding("Patients", 3, 5500)],
    )


def test_every_chart_has_a_figure_with_a_title_and_labelled_axes():
    figures = {name: checked(figure) for name, figure in accounts_figures(_summary(), "2 Apr 2025").items()}
    assert list(figures) == list(finance.REPORTS)
    for figure in figures.values():
        assert figure.layout.title.text
        money_axis = figure.layout.yaxis if figure.data[0].orientation != "h" else figure.layout.xaxis
        assert money_axis.title.text == "Amount (GBP)"
    day = figures["revenue-by-day"]
    assert [t.name for t in day.data] == ["Billed", "Collected"]
    assert list(day.data[0].y) == [12345.67, 0]
    assert list(day.data[1].y) == [0, -5]
    assert day.data[1].marker.pattern.shape == "/"  # collected is hatched: not told apart by colour alone
    assert not day.data[0].marker.pattern.shape
    assert day.layout.title.text == "30 Mar 2025 – 31 Mar 2025 · GBP"
    assert day.layout.margin.t > figures["billed-by-kind"].layout.margin.t  # the toolbar clear of the legend
    departments = figures["billed-by-department"].data[0]
    assert list(departments.y) == ["Cardiology", "Dermatology"]
    assert list(departments.text) == ["£10,000.00", "£2,345.67"]
    assert figures["receivables-by-age"].layout.title.text == "Open invoices on 2 Apr 2025, by days since issue"
    payer_colours = list(figures["outstanding-by-payer"].data[0].marker.color)
    assert payer_colours == [finance_figures.BILLED_COLOUR, finance_figures.COLLECTED_COLOUR]


def _contrast(colour: str) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (int(colour.lstrip("#")[i:i + 2], 16) for i in (0, 2, 4))
    luminance = 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)
    return 1.05 / (luminance + 0.05)


def test_every_colour_stands_out_from_the_white_background():
    colours = [finance_figures.BILLED_COLOUR, finance_figures.COLLECTED_COLOUR, *finance_figures.AGE_COLOURS]
    assert all(_contrast(c) >= 3 for c in colours), [(c, round(_contrast(c), 2)) for c in colours]


def test_the_tables_say_in_words_what_the_charts_show():
    tables = {t.report: t for t in summary_tables(_summary())}
    assert list(tables) == list(finance.REPORTS)
    day = tables["revenue-by-day"]
    assert day.columns == ["Day", "Billed", "Collected"]
    assert day.rows == [["30 Mar 2025", "£12,345.67", "£0.00"], ["31 Mar 2025", "£0.00", "−£5.00"]]
    assert day.total == ["Total", "£12,345.67", "−£5.00"]
    assert day.summary == "30 Mar 2025 – 31 Mar 2025: billed £12,345.67, collected −£5.00."
    assert not day.is_empty
    assert tables["billed-by-department"].rows == [["Cardiology", "3", "£10,000.00", "81%"],
                                                   ["Dermatology", "1", "£2,345.67", "19%"]]
    assert tables["billed-by-kind"].summary == "£12,345.67 billed in 4 charges; the most from Consultation (£12,345.67)."
    assert tables["collected-by-method"].summary == "−£5.00 collected after £5.00 refunded."
    assert tables["receivables-by-age"].summary == "£90.00 outstanding on 3 open invoices; £40.00 of it overdue."
    assert tables["outstanding-by-payer"].summary == "£35.00 expected from 1 insurer, £55.00 from patients."


def test_empty_charts_are_marked_so_the_page_says_what_to_do():
    quiet = _summary()
    quiet = AccountsSummary(quiet.dates, quiet.today, AccountsHeadline(0, 0, 0, 0, 0),
                            [RevenuePeriod(r.period, 0, 0) for r in quiet.by_day], [], [],
                            [KindBilled(k.kind, 0, 0) for k in quiet.by_kind],
                            [MethodCollected(m.method, 0, 0, 0, 0) for m in quiet.by_method],
                            [AgeBucket(b.age, 0, 0) for b in quiet.by_age], [PayerOutstanding("Patients", 0, 0)])
    tables = summary_tables(quiet)
    assert all(t.is_empty for t in tables), [t.report for t in tables if not t.is_empty]
    assert tables[4].summary == "No payments received in this range."


def test_the_headline_in_money_format():
    view = headline_view(_summary())
    assert (view.billed, view.collected, view.outstanding, view.overdue, view.open_invoices) == (
        "£12,345.67", "−£5.00", "£90.00", "£40.00", 3)
    assert view.today == "2 Apr 2025"


@pytest.fixture
def billed_hospital(engine, _demo_templates):
    """The demo hospital with its months of billing history: every chart has bars."""
    return seed_demo_into(engine, _demo_templates, billing_history=True)


def test_the_browser_gets_the_same_figures_as_from_the_graph_objects_builder(billed_hospital):
    # The accounts dashboard's default range on the demo hospital: the JSON the state sends for
    # each figure is what it sent when the figures were plotly.graph_objects (bench/figures_cpu.py
    # keeps that builder as its baseline), but for the empty ``yaxis.title`` that builder wrote and
    # the room above the legend made since for Plotly's toolbar.
    accounts = login_as(billed_hospital, DEMO_EMAIL[Role.ACCOUNTS])
    start, end = finance.default_range()
    with session_scope(write=False, engine=billed_hospital) as s:
        summary = finance.accounts_summary(session=s, actor=accounts, start=start, end=end)
    today = headline_view(summary).today
    before, now = legacy_accounts_figures(summary, today), accounts_figures(summary, today)
    assert list(now) == list(before)
    for name, figure in now.items():
        expected = without_empty(sent(before[name]))
        if expected["layout"]["showlegend"]:
            expected["layout"]["margin"]["t"] = finance_figures.LEGEND_TOP_MARGIN
        assert sent(figure) == expected, name
        assert len(checked(figure).data[0].x) > 0, name
    assert sum(sent(now["revenue-by-day"])["data"][0]["y"]) > 0

"""The accounts dashboard: revenue, receivables and what is owed, with a date range and CSV exports."""

from __future__ import annotations

import reflex as rx

from hms_app.components.figures import Figure, blank_figure
from hms_app.components.finance_figures import (
    HeadlineView,
    SummaryTable,
    accounts_figures,
    headline_view,
    summary_tables,
)
from hms_app.services.accounting import finance
from hms_app.services.accounting.finance import AccountsSummary
from hms_app.services.core.language import _
from hms_app.state.auth import SessionState
from hms_app.state.forms import form_text

_NO_HEADLINE = HeadlineView("", "", "", "", 0, "", "")
_NO_TABLES = [SummaryTable(name, report.title, [], [], [], "", True) for name, report in finance.REPORTS.items()]


class AccountsDashboardState(SessionState):
    """What the accounts dashboard shows for the chosen range; re-loaded live on every billing change."""

    start: str = ""
    end: str = ""
    loaded: bool = False
    headline: HeadlineView = _NO_HEADLINE
    tables: list[SummaryTable] = _NO_TABLES
    """One per chart, in ``finance.REPORTS`` order."""
    day_figure: Figure = blank_figure()
    month_figure: Figure = blank_figure()
    department_figure: Figure = blank_figure()
    kind_figure: Figure = blank_figure()
    method_figure: Figure = blank_figure()
    age_figure: Figure = blank_figure()
    payer_figure: Figure = blank_figure()

    async def _show(self, summary: AccountsSummary) -> None:
        headline = headline_view(summary)
        # Plain dicts: the seven figures take about 3 ms of CPU (bench/figures_cpu.py), less than a
        # hop to a thread and back would save the event loop.
        figures = accounts_figures(summary, headline.today)
        self.headline, self.tables = headline, summary_tables(summary)
        self.day_figure, self.month_figure = figures["revenue-by-day"], figures["revenue-by-month"]
        self.department_figure, self.kind_figure = figures["billed-by-department"], figures["billed-by-kind"]
        self.method_figure, self.age_figure = figures["collected-by-method"], figures["receivables-by-age"]
        self.payer_figure = figures["outstanding-by-payer"]
        self.loaded = True

    async def _load(self):
        """Fetch the figures of the range shown (the live watcher's loader too)."""
        if not self.start or not self.end:
            self.start, self.end = finance.default_range()
        answer = await self._act(finance.accounts_summary, write=False, start=self.start, end=self.end)
        if not answer.refused:
            await self._show(answer.result)
        return answer

    @rx.event
    async def load_dashboard(self):
        return await self._load()

    @rx.event
    async def show_range(self, form_data: dict):
        """The date-range form: the figures of the new range, or a toast saying what is wrong."""
        start, end = form_text(form_data, "start", 20), form_text(form_data, "end", 20)
        answer = await self._act(finance.accounts_summary, write=False, start=start, end=end)
        if not answer.refused:
            self.start, self.end = start.strip(), end.strip()
            await self._show(answer.result)
        return answer

    @rx.event
    async def show_last_days(self, days: int):
        """A quick range: the last ``days`` days, today included (7, 30, 90 or 365)."""
        if days not in (7, 30, 90, 365):
            return rx.toast.error(_("Choose one of the ranges on the page."))
        self.start, self.end = finance.default_range(days)
        return await self._load()

    @rx.event
    async def export_csv(self, report: str):
        """One chart's figures over the range shown, as a CSV download."""
        name = str(report)[:40]
        return await self._act(finance.export_accounts_csv, report=name, start=self.start, end=self.end,
                               success=lambda text: [
                                   rx.download(data=text, filename=f"accounts-{name}-{self.start}-to-{self.end}.csv",
                                               mime_type="text/csv"),
                                   rx.toast.success(_("{report} exported.").format(report=_(finance.REPORTS[name].title)))])

"""Every chart on the page is drawn by Plotly's basic bundle, not the full one."""

from __future__ import annotations

import re
from pathlib import Path

from reflex_components_plotly.plotly import PlotlyBasic

from hms_app.components.charts import plotly_chart
from hms_app.state.finance import AccountsDashboardState

APP = Path(__file__).resolve().parents[2] / "hms_app"
ANY_OTHER_PLOTLY = re.compile(r"\brx\.plotly(\(|\.(?!basic\b))")


def test_a_chart_loads_the_basic_bundle():
    chart = plotly_chart(AccountsDashboardState.day_figure, width="100%")
    assert isinstance(chart, PlotlyBasic)
    assert any(dep.startswith("plotly.js-basic-dist-min@") for dep in chart.lib_dependencies)
    assert "day_figure" in str(chart)


def test_no_page_draws_a_chart_with_another_bundle():
    found = [f"{path.relative_to(APP)}:{number}: {line.strip()}" for path in sorted(APP.rglob("*.py"))
             for number, line in enumerate(path.read_text().splitlines(), start=1) if ANY_OTHER_PLOTLY.search(line)]
    assert found == []
    assert ANY_OTHER_PLOTLY.search('rx.plotly(data=figure)')  # what it looks for
    assert ANY_OTHER_PLOTLY.search('rx.plotly.cartesian(data=figure)')

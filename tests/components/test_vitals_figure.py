"""The vitals trend: one small chart per measure on a shared time axis, a pure function of the points."""

from __future__ import annotations

import json

import plotly.graph_objects as go

from hms_app.components.figures import blank_figure, vitals_figure
from hms_app.services.care.clinical import VitalsPoint
from tests.components.plotly_json import checked, sent

POINTS = [
    VitalsPoint("2026-10-01", 150, 95, 82, 36.8, 81.0, 97),
    VitalsPoint("2026-11-01", 142, 90, None, 37.9, 80.2, None),
    VitalsPoint("2026-12-01", 134, 84, 76, None, 79.5, 98),
]


def test_each_measure_gets_its_own_chart_and_unit_on_one_time_axis():
    figure = checked(vitals_figure(POINTS))
    by_name = {t.name: t for t in figure.data}
    assert list(by_name) == ["Systolic", "Diastolic", "Pulse", "SpO₂", "Weight", "Temperature"]
    # Systolic and diastolic share the blood-pressure chart; every other measure has its own.
    assert by_name["Systolic"].yaxis == by_name["Diastolic"].yaxis == "y"
    assert [by_name[n].yaxis for n in ("Pulse", "SpO₂", "Weight", "Temperature")] == ["y2", "y3", "y4", "y5"]
    titles = [figure.layout[f"yaxis{'' if i == 1 else i}"].title.text for i in range(1, 6)]
    assert titles == ["Blood pressure (mmHg)", "Pulse (/min)", "SpO₂ (%)", "Weight (kg)", "Temperature (°C)"]
    # One time axis: every lower chart's x axis follows the bottom one's.
    assert {figure.layout[f"xaxis{i}"].matches for i in range(1, 5)} == {"x5"}
    assert all(list(t.x) == ["2026-10-01", "2026-11-01", "2026-12-01"] for t in figure.data)
    assert list(by_name["Pulse"].y) == [82, None, 76]
    assert figure.layout.height == 5 * 120 + 50


def test_only_measures_with_values_are_drawn():
    only_weight = [VitalsPoint("2026-12-01", None, None, None, None, 70.0, None)]
    figure = checked(vitals_figure(only_weight))
    assert [t.name for t in figure.data] == ["Weight"]
    assert figure.layout.yaxis.title.text == "Weight (kg)"
    assert figure.layout.yaxis.domain == (0.0, 1.0)
    assert checked(vitals_figure([])).data == ()


def test_the_figure_stays_light():
    figure = checked(vitals_figure(POINTS))
    assert figure.layout.template.layout.to_plotly_json() == {}  # no copy of a theme in every update
    assert len(json.dumps(sent(vitals_figure(POINTS)))) < 8_000


def test_the_blank_figure_is_what_plotly_writes_for_an_empty_one():
    assert sent(blank_figure()) == sent(go.Figure(layout={"template": go.layout.Template()}))

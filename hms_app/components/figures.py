"""Pure functions that turn aggregates into Plotly figures (no queries here).

A figure is a plain dict, ``{"data": [...], "layout": {...}}``, the JSON the browser's Plotly
takes. Built as ``plotly.graph_objects`` figures, the same JSON cost over 10 ms of server CPU per
chart, spent validating every property (bench/figures_cpu.py); the tests validate instead.
"""

from __future__ import annotations

from typing import Any

from hms_app.services.care.clinical import VitalsPoint

Figure = dict[str, Any]
"""A Plotly figure as JSON: ``data`` (the traces) and ``layout``."""

NO_TEMPLATE: dict[str, Any] = {"data": {"scatter": [{"type": "scatter"}]}}
"""The template every figure carries: none. ``rx.plotly`` applies the theme's Plotly template in
the browser, where it is compiled into the page once; a figure on Plotly's default template would
carry a second copy of it, about 7 KB of JSON, in every state update. This one stub trace is how
plotly.py writes an empty template, so Plotly does not swap its own default in."""


def blank_figure() -> Figure:
    """An empty figure, for a state var's default (defaults are compiled into the page's JavaScript)."""
    return {"data": [], "layout": {"template": NO_TEMPLATE}}


_PANELS = [
    ("Blood pressure", "mmHg", [("bp_systolic", "Systolic", "#3e63dd"), ("bp_diastolic", "Diastolic", "#0d74ce")]),
    ("Pulse", "/min", [("pulse", "Pulse", "#ce2c31")]),
    ("SpO₂", "%", [("spo2", "SpO₂", "#218358")]),
    ("Weight", "kg", [("weight_kg", "Weight", "#ab6400")]),
    ("Temperature", "°C", [("temperature_c", "Temperature", "#8e4ec6")]),
]
_PANEL_HEIGHT = 120


def _stacked_domains(rows: int, spacing: float) -> list[list[float]]:
    """Each row's vertical extent, top row first, ``spacing`` apart: Plotly's ``make_subplots``
    arithmetic, so the panels sit where they always did."""
    heights = [(1.0 - spacing * (rows - 1)) / rows] * rows
    domains = []
    for row in range(rows):
        below = rows - 1 - row
        start = sum(heights[:below]) + below * spacing
        domains.append([min(max(start, 0.0), 1.0), min(max(start + heights[below], 0.0), 1.0)])
    return domains


def vitals_figure(points: list[VitalsPoint]) -> Figure:
    """One small chart per measure that has values, stacked on one shared time axis, oldest to
    newest; each y axis carries its own unit. Blood pressure draws systolic and diastolic together."""
    dates = [p.at for p in points]
    panels = [(title, unit, [(label, colour, [getattr(p, name) for p in points]) for name, label, colour in series])
              for title, unit, series in _PANELS]
    panels = [panel for panel in panels if any(v is not None for _, _, values in panel[2] for v in values)]
    if not panels:
        return blank_figure()
    rows = len(panels)
    data: list[dict[str, Any]] = []
    layout: dict[str, Any] = {"template": NO_TEMPLATE}
    for row, ((title, unit, series), domain) in enumerate(zip(panels, _stacked_domains(rows, 0.04 if rows > 1 else 0),
                                                              strict=True), start=1):
        n = "" if row == 1 else str(row)
        data += [{"type": "scatter", "x": dates, "y": values, "name": label, "mode": "lines+markers",
                  "line": {"color": colour}, "connectgaps": True, "showlegend": False,
                  "hovertemplate": f"%{{x}}<br>{label}: %{{y}} {unit}<extra></extra>", "xaxis": f"x{n}",
                  "yaxis": f"y{n}"} for label, colour, values in series]
        # One time axis: every chart's x axis follows the bottom one's, whose labels alone show.
        shared = {"matches": f"x{rows}", "showticklabels": False} if row < rows else {}
        layout[f"xaxis{n}"] = {"anchor": f"y{n}", "domain": [0.0, 1.0], **shared, "type": "category",
                               "gridcolor": "#e0e1e6"}
        layout[f"yaxis{n}"] = {"anchor": f"x{n}", "domain": domain,
                               "title": {"text": f"{title} ({unit})", "font": {"size": 11}},
                               "gridcolor": "#e0e1e6", "nticks": 4}
    layout.update(margin={"l": 70, "r": 10, "t": 10, "b": 40}, height=_PANEL_HEIGHT * rows + 50,
                  paper_bgcolor="white", plot_bgcolor="white", font={"color": "#1c2024"}, hovermode="x unified")
    return {"data": data, "layout": layout}

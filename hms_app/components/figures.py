"""Pure functions that turn aggregates into Plotly figures (no queries here).

A figure is a plain dict, ``{"data": [...], "layout": {...}}``, the JSON the browser's Plotly
takes. Built as ``plotly.graph_objects`` figures, the same JSON cost over 10 ms of server CPU per
chart, spent validating every property (bench/figures_cpu.py); the tests validate instead.
"""

from __future__ import annotations

from typing import Any

from hms_app.services.care.clinical import VitalsPoint
from hms_app.services.core.language import N_, _, text_direction

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
    (N_("Blood pressure"), "mmHg", [("bp_systolic", N_("Systolic"), "#3e63dd"),
                                    ("bp_diastolic", N_("Diastolic"), "#0d74ce")]),
    (N_("Pulse"), "/min", [("pulse", N_("Pulse"), "#ce2c31")]),
    ("SpO₂", "%", [("spo2", "SpO₂", "#218358")]),
    (N_("Weight"), "kg", [("weight_kg", N_("Weight"), "#ab6400")]),
    (N_("Temperature"), "°C", [("temperature_c", N_("Temperature"), "#8e4ec6")]),
]
"""Each panel's title and unit, and its series: the field, the label and the colour (English
labels, the catalogue's ids, translated as the figure is built)."""
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
    panels = [(_(title), unit, [(_(label), colour, [getattr(p, name) for p in points])
                                for name, label, colour in series])
              for title, unit, series in _PANELS]
    panels = [panel for panel in panels if any(v is not None for _label, _colour, values in panel[2] for v in values)]
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
                               "title": {"text": _("{measure} ({unit})").format(measure=title, unit=unit),
                                         "font": {"size": 11}},
                               "gridcolor": "#e0e1e6", "nticks": 4}
    layout.update(margin={"l": 70, "r": 10, "t": 10, "b": 40}, height=_PANEL_HEIGHT * rows + 50,
                  paper_bgcolor="white", plot_bgcolor="white", font={"color": "#1c2024"}, hovermode="x unified")
    return in_reading_direction({"data": data, "layout": layout})


def in_reading_direction(figure: Figure) -> Figure:
    """``figure`` laid out in the current language's direction; every figure builder ends here.

    Left to right it is unchanged. Right to left it is mirrored: the x axes run from the right
    (a time or category axis starts at the right edge, a horizontal bar grows leftwards from it),
    the y axes stand on the other side (the first on the right), the title, the legend and the
    hover labels are anchored right, a horizontal legend lists the traces from the right, and
    the side margins swap, so the y axis's labels keep their room.
    """
    if text_direction() != "rtl":
        return figure
    layout = dict(figure["layout"])
    for key in ("xaxis", "yaxis"):
        layout.setdefault(key, {})
    for key, axis in list(layout.items()):
        # Arabic tick labels and axis titles run longer than English ones: the axes make room for
        # them rather than draw over them (automargin).
        if key.startswith("xaxis"):
            layout[key] = {**_reversed(axis), "automargin": True}
        elif key.startswith("yaxis"):
            layout[key] = {**axis, "side": "left" if axis.get("side") == "right" else "right", "automargin": True}
    if isinstance(layout.get("title"), dict):
        layout["title"] = {**layout["title"], "x": 1, "xanchor": "right"}
    legend = layout.get("legend", {})
    layout["legend"] = {**legend, "x": 1, "xanchor": "right",
                        **({"traceorder": "reversed"} if legend.get("orientation") == "h" else {})}
    layout["hoverlabel"] = {**layout.get("hoverlabel", {}), "align": "right"}
    if "margin" in layout:
        margin = layout["margin"]
        layout["margin"] = {**margin, "l": margin.get("r", 80), "r": margin.get("l", 80)}
    return {**figure, "layout": layout}


def _reversed(axis: dict[str, Any]) -> dict[str, Any]:
    """An x axis that runs right to left: a set range turned round (Plotly ignores ``autorange``
    beside one), else a reversed autorange."""
    if "range" in axis:
        return {**axis, "range": list(reversed(axis["range"]))}
    return {**axis, "autorange": "reversed"}

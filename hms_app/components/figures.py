"""Pure functions that turn aggregates into Plotly figures (no queries here)."""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from hms_app.services.care.clinical import VitalsPoint

NO_TEMPLATE = go.layout.Template()
"""The template every figure carries: none. ``rx.plotly`` applies the theme's Plotly template in
the browser, where it is compiled into the page once; a figure built on Plotly's default template
would carry a second copy of it, about 7 KB of JSON, in every state update."""


def blank_figure() -> go.Figure:
    """An empty figure, for a state var's default (defaults are compiled into the page's JavaScript)."""
    return go.Figure(layout={"template": NO_TEMPLATE})

_PANELS = [
    ("Blood pressure", "mmHg", [("bp_systolic", "Systolic", "#3e63dd"), ("bp_diastolic", "Diastolic", "#0d74ce")]),
    ("Pulse", "/min", [("pulse", "Pulse", "#ce2c31")]),
    ("SpO₂", "%", [("spo2", "SpO₂", "#218358")]),
    ("Weight", "kg", [("weight_kg", "Weight", "#ab6400")]),
    ("Temperature", "°C", [("temperature_c", "Temperature", "#8e4ec6")]),
]
_PANEL_HEIGHT = 120


def vitals_figure(points: list[VitalsPoint]) -> go.Figure:
    """One small chart per measure that has values, stacked on one shared time axis, oldest to
    newest; each y axis carries its own unit. Blood pressure draws systolic and diastolic together."""
    dates = [p.at for p in points]
    panels = [(title, unit, [(label, colour, [getattr(p, name) for p in points]) for name, label, colour in series])
              for title, unit, series in _PANELS]
    panels = [panel for panel in panels if any(v is not None for _, _, values in panel[2] for v in values)]
    if not panels:
        return blank_figure()
    figure = make_subplots(rows=len(panels), cols=1, shared_xaxes=True, vertical_spacing=0.04 if len(panels) > 1 else 0)
    for row, (title, unit, series) in enumerate(panels, start=1):
        for label, colour, values in series:
            figure.add_trace(go.Scatter(x=dates, y=values, name=label, mode="lines+markers", line={"color": colour},
                                        connectgaps=True, showlegend=False,
                                        hovertemplate=f"%{{x}}<br>{label}: %{{y}} {unit}<extra></extra>"),
                             row=row, col=1)
        figure.update_yaxes(title_text=f"{title} ({unit})", title_font={"size": 11}, gridcolor="#e0e1e6",
                            nticks=4, row=row, col=1)
    figure.update_xaxes(type="category", gridcolor="#e0e1e6")
    figure.update_layout(
        template=NO_TEMPLATE, margin={"l": 70, "r": 10, "t": 10, "b": 40}, height=_PANEL_HEIGHT * len(panels) + 50,
        paper_bgcolor="white", plot_bgcolor="white", font={"color": "#1c2024"}, hovermode="x unified",
    )
    return figure

"""Pure functions that turn aggregates into Plotly figures (no queries here)."""

from __future__ import annotations

import plotly.graph_objects as go

from hms_app.services.care.clinical import VitalsPoint

NO_TEMPLATE = go.layout.Template()
"""The template every figure carries: none. ``rx.plotly`` applies the theme's Plotly template in
the browser, where it is compiled into the page once; a figure built on Plotly's default template
would carry a second copy of it, about 7 KB of JSON, in every state update."""


def blank_figure() -> go.Figure:
    """An empty figure, for a state var's default (defaults are compiled into the page's JavaScript)."""
    return go.Figure(layout={"template": NO_TEMPLATE})

_SERIES = [
    ("bp_systolic", "Systolic BP (mmHg)", "#3e63dd"),
    ("bp_diastolic", "Diastolic BP (mmHg)", "#0d74ce"),
    ("pulse", "Pulse (/min)", "#ce2c31"),
    ("spo2", "SpO₂ (%)", "#218358"),
    ("weight_kg", "Weight (kg)", "#ab6400"),
    ("temperature_c", "Temperature (°C)", "#8e4ec6"),
]


def vitals_figure(points: list[VitalsPoint]) -> go.Figure:
    """One line per vital sign over the patient's encounters, oldest to newest."""
    figure = go.Figure()
    dates = [p.at for p in points]
    for field, label, colour in _SERIES:
        values = [getattr(p, field) for p in points]
        if any(v is not None for v in values):
            figure.add_trace(go.Scatter(x=dates, y=values, name=label, mode="lines+markers",
                                        line={"color": colour}, connectgaps=True))
    figure.update_layout(
        template=NO_TEMPLATE, margin={"l": 40, "r": 10, "t": 10, "b": 40}, height=300, legend={"orientation": "h", "y": -0.25},
        paper_bgcolor="white", plot_bgcolor="white", font={"color": "#1c2024"},
        xaxis={"type": "category", "gridcolor": "#e0e1e6"}, yaxis={"gridcolor": "#e0e1e6"},
    )
    return figure

"""A Plotly chart on the page, drawn from a figure the state holds as a plain dict."""

from __future__ import annotations

import reflex as rx
from plotly.graph_objs import Figure as PlotlyFigure

BASIC_BUNDLE_TRACES = frozenset({"scatter", "bar", "pie"})
"""The trace types Plotly's basic bundle registers (``plotly.js-basic-dist-min``, its
``plotly-basic.min.js`` header lists them): every figure the app builds keeps to these."""


def plotly_chart(figure: rx.Var, **props) -> rx.Component:
    """``figure`` (a state var holding ``{"data": [...], "layout": {...}}``) on Plotly's basic
    bundle: about a quarter of the full one's bytes, which every page with a chart downloads."""
    # ``rx.plotly`` types its ``data`` as a plotly.py Figure; the state sends the same JSON as a dict.
    return rx.plotly.basic(data=figure.to(PlotlyFigure), **props)

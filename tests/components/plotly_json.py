"""The check every figure test makes: a figure built as a plain dict is valid Plotly, and is
already the JSON plotly.py would send for it."""

from __future__ import annotations

import json

import plotly.graph_objects as go
from reflex_base.utils.serializers import serialize

from hms_app.components.charts import BASIC_BUNDLE_TRACES


def sent(figure) -> dict:
    """What the state sends the browser for ``figure`` (a dict, or a ``go.Figure``), as JSON."""
    return json.loads(json.dumps(serialize(figure)))


def without_empty(value):
    """``value`` without its empty objects: an empty ``{}`` sets nothing, Plotly's defaults apply."""
    if isinstance(value, dict):
        kept = {key: without_empty(item) for key, item in value.items()}
        return {key: item for key, item in kept.items() if item != {}}
    if isinstance(value, list):
        return [without_empty(item) for item in value]
    return value


def checked(figure: dict) -> go.Figure:
    """``figure`` as a ``go.Figure``, once plotly.py has accepted every property in it (it raises
    on a misspelt or invalid one) and written back the same JSON (no value it would coerce, such
    as a number where Plotly keeps text), with only trace types Plotly's basic bundle draws."""
    validated = go.Figure(figure)
    assert sent(figure) == sent(validated)
    assert {trace["type"] for trace in figure["data"]} <= BASIC_BUNDLE_TRACES
    return validated

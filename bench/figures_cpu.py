"""Server CPU to build the accounts dashboard's seven figures, and to serialise them as the state
does, for the demo hospital's default range: plotly.graph_objects figures (the builder before
issue 18, kept here only as the baseline) against the plain dicts the app builds now, in the
same process and run.

Each load of the dashboard builds the seven figures and Reflex serialises them into the state
update (``plotly.io.to_json`` for a ``go.Figure``, ``json`` for a dict). CPU time
(``time.process_time``), the best of three rounds, moves much less than wall-clock time when
other work shares the machine.

    .venv/bin/python -m bench.figures_cpu --loads 50
"""

from __future__ import annotations

import os
import tempfile

# Before the app's settings are read: a data folder of the run's own, and the test suite's
# bcrypt cost (the login before the loop is not measured).
os.environ.setdefault("HMS_BCRYPT_ROUNDS", "4")
os.environ.setdefault("HMS_DATA_DIR", tempfile.mkdtemp(prefix="hms-bench-data-"))

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

import plotly.graph_objects as go
from reflex_base.utils.serializers import serialize

from bench.harness import DEMO_PASSWORD, demo_sqlite, machine_note, table
from hms_app import settings
from hms_app.components.finance_figures import (
    AGE_COLOURS,
    BILLED_COLOUR,
    COLLECTED_COLOUR,
    GRID,
    INK,
    _bar_text,
    _money_axis,
    _signed,
    _units,
    accounts_figures,
    headline_view,
)
from hms_app.db import engine as db_engine
from hms_app.services.accounting import finance
from hms_app.services.accounting.finance import PATIENTS_PAYER, AccountsSummary, RevenuePeriod
from hms_app.services.administration import auth, second_factor
from hms_app.services.core.actor import Anonymous
from hms_app.services.core.localtime import format_period
from hms_app.services.core.numbers import money_axis

# --- the baseline: the accounts figures as plotly.graph_objects built them before issue 18 --------

_LEGACY_NO_TEMPLATE = go.layout.Template()


def _legacy_layout(figure: go.Figure, title: str, *, height: int = 320, legend: bool = False, **axes) -> go.Figure:
    figure.update_layout(
        template=_LEGACY_NO_TEMPLATE,
        title={"text": title, "font": {"size": 13, "color": "#60646c"}, "x": 0, "xanchor": "left"},
        height=height, margin={"l": 60, "r": 16, "t": 36, "b": 48}, showlegend=legend,
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 1, "xanchor": "right"},
        paper_bgcolor="white", plot_bgcolor="white", font={"color": INK, "family": "system-ui, sans-serif"},
        hoverlabel={"bgcolor": "white"}, separators=money_axis()["separators"], **axes,
    )
    return figure


def _legacy_revenue_bars(rows: list[RevenuePeriod]) -> list[go.Bar]:
    periods = [format_period(r.period) for r in rows]
    return [
        go.Bar(x=periods, y=[_units(r.billed_cents) for r in rows], name="Billed", marker={"color": BILLED_COLOUR},
               customdata=_bar_text([r.billed_cents for r in rows]), hovertemplate="%{x}<br>Billed %{customdata}<extra></extra>"),
        go.Bar(x=periods, y=[_units(r.collected_cents) for r in rows], name="Collected",
               marker={"color": COLLECTED_COLOUR, "pattern": {"shape": "/", "fgcolor": "white", "solidity": 0.25}},
               customdata=[_signed(r.collected_cents) for r in rows],
               hovertemplate="%{x}<br>Collected %{customdata}<extra></extra>"),
    ]


def _legacy_horizontal_bars(names: list[str], cents: list[int], title: str, colours: str | list[str],
                            what: str) -> go.Figure:
    figure = go.Figure(go.Bar(
        y=names, x=[_units(c) for c in cents], orientation="h", marker={"color": colours},
        text=_bar_text(cents), textposition="auto", insidetextfont={"color": "white"},
        outsidetextfont={"color": INK}, customdata=_bar_text(cents),
        hovertemplate=f"%{{y}}<br>{what} %{{customdata}}<extra></extra>",
    ))
    return _legacy_layout(figure, title, height=max(200, 70 + 44 * len(names)),
                          xaxis=_money_axis(), yaxis={"autorange": "reversed", "automargin": True, "title": None})


def legacy_accounts_figures(summary: AccountsSummary, today: str) -> dict[str, go.Figure]:
    """The seven figures as ``go.Figure``s, exactly as the app built them before issue 18."""
    label = summary.dates.label
    day = _legacy_layout(go.Figure(_legacy_revenue_bars(summary.by_day)), f"{label} · {settings.CURRENCY}",
                         legend=True, barmode="group", bargap=0.25,
                         xaxis={"title": {"text": "Day"}, "type": "category", "gridcolor": GRID},
                         yaxis=_money_axis())
    month = go.Figure(_legacy_revenue_bars(summary.by_month))
    for trace, amounts in zip(month.data, ([r.billed_cents for r in summary.by_month],
                                           [r.collected_cents for r in summary.by_month]), strict=True):
        trace.update(text=_bar_text(amounts), textposition="outside")
    month = _legacy_layout(month, f"{label} · {settings.CURRENCY}", legend=True, barmode="group",
                           uniformtext={"minsize": 9, "mode": "hide"},
                           xaxis={"title": {"text": "Month"}, "type": "category"}, yaxis=_money_axis())
    payer_colours = [COLLECTED_COLOUR if r.payer == PATIENTS_PAYER else BILLED_COLOUR for r in summary.by_payer]
    return {
        "revenue-by-day": day,
        "revenue-by-month": month,
        "billed-by-department": _legacy_horizontal_bars(
            [r.department for r in summary.by_department], [r.billed_cents for r in summary.by_department],
            f"Billed, {label}", BILLED_COLOUR, "Billed"),
        "billed-by-kind": _legacy_horizontal_bars([r.kind for r in summary.by_kind],
                                                  [r.billed_cents for r in summary.by_kind],
                                                  f"Billed, {label}", BILLED_COLOUR, "Billed"),
        "collected-by-method": _legacy_horizontal_bars(
            [r.method for r in summary.by_method], [r.collected_cents for r in summary.by_method],
            f"Collected less refunds, {label}", COLLECTED_COLOUR, "Collected"),
        "receivables-by-age": _legacy_horizontal_bars(
            [r.age for r in summary.by_age], [r.outstanding_cents for r in summary.by_age],
            f"Open invoices on {today}, by days since issue", AGE_COLOURS[:len(summary.by_age)], "Outstanding"),
        "outstanding-by-payer": _legacy_horizontal_bars(
            [r.payer for r in summary.by_payer], [r.outstanding_cents for r in summary.by_payer],
            f"Still owed on {today}", payer_colours, "Owed"),
    }


# --- the measurement -------------------------------------------------------------------------------


def demo_accounts_summary() -> AccountsSummary:
    """The accounts dashboard's aggregate for its default range, on a new SQLite demo hospital
    with its billing history."""
    engine = demo_sqlite("hms-bench-figures-", billing_history=True)
    with db_engine.session_scope() as session:
        second_factor.console_set_requirement(session, "accounts", False)
    with db_engine.session_scope() as session:
        token = auth.login(session=session, visitor=Anonymous("198.51.100.9"), email="accounts@hms.example",
                           password=DEMO_PASSWORD).token
    start, end = finance.default_range()
    with db_engine.session_scope(write=False) as session:
        actor = auth.resolve_session(session=session, token=token, ip_address="198.51.100.9")
        summary = finance.accounts_summary(session=session, actor=actor, start=start, end=end)
    engine.dispose()
    return summary


def _best_ms(work: Callable[[], Any], loads: int) -> float:
    work()
    rounds = []
    for _ in range(3):
        started = time.process_time()
        for _ in range(loads):
            work()
        rounds.append((time.process_time() - started) / loads)
    return 1000 * min(rounds)


def measure(loads: int) -> list[tuple[str, float, float]]:
    """Per builder: CPU ms per dashboard load to build the seven figures, and to build and serialise them."""
    summary = demo_accounts_summary()
    today = headline_view(summary).today
    results = []
    for name, build in (("go.Figure (before)", legacy_accounts_figures), ("plain dicts (now)", accounts_figures)):
        built = _best_ms(lambda build=build: build(summary, today), loads)
        sent = _best_ms(lambda build=build: [json.dumps(serialize(f)) for f in build(summary, today).values()], loads)
        results.append((name, built, sent))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loads", type=int, default=50, help="dashboard loads per round (three rounds)")
    args = parser.parse_args()
    results = measure(args.loads)
    baseline = results[0][2]
    rows = [(name, f"{built:.2f}", f"{sent:.2f}", f"{sent / baseline:.3f}") for name, built, sent in results]
    print(table(("accounts figures (7)", "build CPU ms per load", "build + serialise CPU ms per load",
                 "× before (build + serialise)"), rows))
    print(f"\n{machine_note()}")


if __name__ == "__main__":
    main()

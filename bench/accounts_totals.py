"""The accounts dashboard over twelve months: read from the daily totals against the former sum of every row.

On each scale database given (``hms seed --scale N``, README "Data at scale"), alternately, in
the same run:

- ``accounts_summary`` as the dashboard's state calls it (its own read session, the accounts
  actor resolved from a session token as a page resolves it), which now reads the billed and
  collected money from ``daily_billed`` / ``daily_collected`` and the receivables (by age and
  by payer) from ``open_balance``;
- ``finance.recounted_summary``: the same figures with billed and collected summed from every
  invoice line and payment of the range and the receivables from every open invoice and its
  insurance payments, the queries the dashboard ran before the totals.

Each is called ``--runs`` times after two warm-up calls (fewer, but at least five, when the
baseline would pass ``--budget`` seconds); it prints the medians, their ratio and whether the
two answers are equal (they must be: the totals are only worth having if exact).

    .venv/bin/python -m bench.accounts_totals \\
        --db 1=sqlite:////tmp/hms-scale/scale1.db \\
        --db 1=postgresql+psycopg://postgres@127.0.0.1:5432/hms_scale1
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from bench.harness import machine_note, table
from bench.hot_reads import Context, _actor, _year
from hms_app.db import engine as db_engine
from hms_app.services.accounting import finance

ACCOUNTS = "accounts@hms.example"
TARGET_MS = 20.0
MIN_RUNS = 5


@dataclass(frozen=True)
class Figure:
    scale: str
    dialect: str
    totals_ms: float
    rows_ms: float
    runs: int
    same: bool

    @property
    def ratio(self) -> float:
        return self.totals_ms / self.rows_ms


def measure(scale: str, url: str, runs: int, budget: float) -> Figure:
    engine = db_engine.create_engine(url)
    ctx = Context(engine, engine.dialect.name == "sqlite")
    actor = _actor(ctx, ACCOUNTS)
    start, end = _year()

    def from_totals() -> finance.AccountsSummary:
        with db_engine.session_scope(write=False, engine=engine) as session:
            return finance.accounts_summary(session=session, actor=actor, start=start, end=end)

    def from_rows() -> finance.AccountsSummary:
        with db_engine.session_scope(write=False, engine=engine) as session:
            return finance.recounted_summary(session, start, end)

    def timed(read: Callable[[], finance.AccountsSummary], into: list[float]) -> None:
        started = time.perf_counter()
        read()
        into.append(time.perf_counter() - started)

    try:
        for _ in range(2):  # warm-up: the pool, the statement caches, the database's pages
            same = from_totals() == from_rows()
        totals_times: list[float] = []
        rows_times: list[float] = []
        deadline = time.monotonic() + budget
        while len(totals_times) < runs and (len(totals_times) < MIN_RUNS or time.monotonic() < deadline):
            timed(from_totals, totals_times)
            timed(from_rows, rows_times)
    finally:
        engine.dispose()
    figure = Figure(scale, engine.dialect.name, 1000 * statistics.median(totals_times),
                    1000 * statistics.median(rows_times), len(totals_times), same)
    print(f"  {scale:>5} {figure.dialect:<10} totals {figure.totals_ms:.1f} ms, rows {figure.rows_ms:.1f} ms"
          f"{'' if same else ' (ANSWERS DIFFER)'}", flush=True)
    return figure


def report(figures: list[Figure], window: tuple[str, str]) -> str:
    rows = [(f.scale, "SQLite" if f.dialect == "sqlite" else "PostgreSQL", f"{f.totals_ms:.1f}", f"{f.rows_ms:.1f}",
             f"{f.ratio:.3f}", f.runs, "equal" if f.same else "DIFFER",
             "met" if f.totals_ms <= TARGET_MS and f.same else "not met") for f in figures]
    return "\n".join([
        f"The accounts dashboard from {window[0]} to {window[1]} (12 months), median ms:\n",
        table(("scale", "database", "from the daily totals", "summed from the rows", "ratio", "runs", "answers",
               f"≤ {TARGET_MS:.0f} ms"), rows),
        "",
        f"- {machine_note()}",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", action="append", metavar="SCALE=URL", required=True,
                        help="a scale database; repeat for several")
    parser.add_argument("--runs", type=int, default=20, help="timed calls of each (after two warm-up calls)")
    parser.add_argument("--budget", type=float, default=60,
                        help=f"seconds after which the runs stop short of --runs (at least {MIN_RUNS} runs)")
    args = parser.parse_args()
    figures = []
    for spec in args.db:
        scale, _, url = spec.partition("=")
        if not url:
            parser.error(f"--db wants SCALE=URL, not {spec!r}")
        figures.append(measure(scale, url, args.runs, args.budget))
    print()
    print(report(figures, _year()))


if __name__ == "__main__":
    main()

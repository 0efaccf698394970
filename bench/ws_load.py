"""Websocket load: simulated browser tabs of many roles, against a trivial handler in the same app.

Starts the real app (one worker in memory on SQLite, and two workers on PostgreSQL sharing
state through Redis), opens N Socket.IO clients that speak Reflex's event protocol (as
``tests/ws_client.py``), logs each in as a demo user over the websocket (bcrypt, before any
timing), then runs two closed-loop workloads for a fixed time, each client sending its next
action as soon as the last one finished:

- **trivial**: Reflex's built-in ``OnLoadInternalState.set_is_hydrated``, the event every page
  sends when it has loaded; it flips one boolean and touches no database. The baseline.
- **realistic mix**: each client follows its role's round of page loads and clicks. A page
  load is what the browser sends on navigation: ``on_load_internal`` for the path, which runs
  the page's ``on_load`` handlers (the session guard, then the page's loader) and ends with
  ``set_is_hydrated(True)``; its latency runs from the send to that last delta, the moment the
  browser shows the page as loaded. A click (paging, searching, choosing a day, listing free
  slots) is one handler; its latency runs from the send to its last delta (a trivial
  ``set_is_hydrated`` sent right behind it marks the end; the tab's events run one after the
  other on the server).

Tabs are 10 patients, 5 doctors, 2 lab, 2 pharmacy and 1 accounts in every 20 (the demo has one
accounts, one lab and one pharmacy user, so several tabs share those accounts). The load
generator runs on the same machine as the server: the server's own CPU time per event is
printed beside the wall-clock figures, and the ratios against the trivial handler, measured
in the same run with the same clients, are what to compare across machines.

    .venv/bin/python -m bench.ws_load --clients 1,50,200 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa

from bench.harness import (
    DEMO_PASSWORD,
    cpu_seconds,
    machine_note,
    percentile,
    process_tree,
    running_app,
    setups_of,
    table,
)
from hms_app.state.appointments import BookingState, DoctorAppointmentsState
from hms_app.state.auth import LoginState
from hms_app.state.billing import AccountsInvoicesState
from hms_app.state.lab import LabWorklistState
from hms_app.state.pharmacy import InventoryState, PharmacyQueueState
from tests.ws_client import ROOT_STATE, EventResult, ReflexSocket

_ON_LOAD_STATE = f"{ROOT_STATE}.reflex___state____on_load_internal_state"
ON_LOAD_INTERNAL = f"{_ON_LOAD_STATE}.on_load_internal"
SET_IS_HYDRATED = f"{_ON_LOAD_STATE}.set_is_hydrated"
HYDRATED = "is_hydrated_rx_state_"
TRIVIAL = "trivial: set_is_hydrated"
ROLE_CYCLE = ("patient", "doctor", "patient", "lab", "patient", "doctor", "patient", "pharmacy", "patient", "doctor",
              "patient", "accounts", "patient", "doctor", "patient", "lab", "patient", "doctor", "patient", "pharmacy")
HOME = {"patient": "/patient", "doctor": "/doctor", "lab": "/lab", "pharmacy": "/pharmacy", "accounts": "/accounts"}
TIMEOUT = 120.0


@dataclass(frozen=True)
class Step:
    """A page load (``state`` empty) or one click on a page."""

    label: str
    path: str
    state: type | None = None
    handler: str = ""
    payload: dict[str, Any] = field(default_factory=dict)


def page_step(path: str) -> Step:
    return Step(f"page {path}", path)


def click_step(path: str, state: type, handler: str, payload: dict[str, Any] | None = None, note: str = "") -> Step:
    return Step(f"{state.__name__}.{handler}{note}", path, state, handler, payload or {})


def _next_weekday(after_days: int) -> str:
    day = date.today() + timedelta(days=after_days)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day.isoformat()


def rounds_of(cardiology_id: int) -> dict[str, list[Step]]:
    """What each role does, in order, again and again."""
    book, week_ahead = "/patient/book", _next_weekday(7)
    return {
        "patient": [
            page_step("/patient"), page_step("/patient/appointments"), page_step(book),
            click_step(book, BookingState, "choose_department", {"department_id": str(cardiology_id)}),
            click_step(book, BookingState, "choose_day", {"day": week_ahead}, " (free slots)"),
            page_step("/patient/invoices"), page_step("/patient/prescriptions"), page_step("/patient/results"),
        ],
        "doctor": [
            page_step("/doctor"), page_step("/doctor/appointments"),
            click_step("/doctor/appointments", DoctorAppointmentsState, "choose_day", {"day": _next_weekday(1)}),
            click_step("/doctor/appointments", DoctorAppointmentsState, "show_week", {"week": True}),
            click_step("/doctor/appointments", DoctorAppointmentsState, "show_week", {"week": False}),
            page_step("/doctor/results"), page_step("/doctor/schedule"),
        ],
        "lab": [
            page_step("/lab"), page_step("/lab/worklist"),
            click_step("/lab/worklist", LabWorklistState, "next_page"),
            click_step("/lab/worklist", LabWorklistState, "apply_filters", {"form_data": {"status": "completed"}}),
            click_step("/lab/worklist", LabWorklistState, "apply_filters", {"form_data": {}}),
        ],
        "pharmacy": [
            page_step("/pharmacy"), page_step("/pharmacy/queue"),
            click_step("/pharmacy/queue", PharmacyQueueState, "search_rows", {"text": "a"}),
            page_step("/pharmacy/stock"),
            click_step("/pharmacy/stock", InventoryState, "search_rows", {"text": "amox"}),
            click_step("/pharmacy/stock", InventoryState, "search_rows", {"text": ""}),
            click_step("/pharmacy/stock", InventoryState, "next_page"),
        ],
        "accounts": [
            page_step("/accounts"), page_step("/accounts/invoices"),
            click_step("/accounts/invoices", AccountsInvoicesState, "next_page"),
            click_step("/accounts/invoices", AccountsInvoicesState, "search_rows", {"text": "smith"}),
            click_step("/accounts/invoices", AccountsInvoicesState, "search_rows", {"text": ""}),
        ],
    }


def router_data(path: str) -> dict[str, str]:
    """What the browser sends as the page of an event: the route (which picks the page's
    ``on_load``) apart from the address with its query (which the page's handlers read)."""
    return {"pathname": path.partition("?")[0], "asPath": path}


class BenchSocket(ReflexSocket):
    """A tab that times its events."""

    def __init__(self, base_url: str, role: str, email: str) -> None:
        super().__init__(base_url)
        self.role = role
        self.email = email
        self.last_updates: list[dict[str, Any]] = []

    async def log_in(self, email: str) -> tuple[float, bool]:
        """One login over the websocket; how long it took and whether it succeeded."""
        t0 = time.perf_counter()
        result = await self.call(LoginState, "log_in", {"form_data": {"email": email, "password": DEMO_PASSWORD}},
                                 pathname="/login", timeout=TIMEOUT)
        return time.perf_counter() - t0, any(level == "success" for level, _ in result.toasts)

    async def _until(self, done, t0: float) -> tuple[float, bool]:
        """Read updates until ``done(root_delta)``; the time of the last update before it (or of
        that one, if none came before), and whether none carried an error toast or a redirect to
        the login page."""
        last, updates = None, []
        while True:
            update = await self._updates.get()
            arrived = time.perf_counter()
            root = (update.get("delta") or {}).get(ROOT_STATE) or {}
            if HYDRATED in root:
                self.hydrated = bool(root[HYDRATED])
            if done(update, root):
                if root.keys() - {HYDRATED} or len(update.get("delta") or {}) > 1 or update.get("events"):
                    updates.append(update)
                    last = arrived
                break
            updates.append(update)
            last = arrived
        self.last_updates = updates
        result = EventResult(updates)
        ok = not any(level == "error" for level, _ in result.toasts) and not any(
            r.startswith("/login") for r in result.redirects)
        return (last or time.perf_counter()) - t0, ok

    async def page_load(self, path: str) -> tuple[float, bool]:
        t0 = time.perf_counter()
        await self._emit(ON_LOAD_INTERNAL, {}, router_data(path))
        return await self._until(lambda _u, root: root.get(HYDRATED) is True, t0)

    async def click(self, step: Step) -> tuple[float, bool]:
        router = router_data(step.path)
        target = not self.hydrated
        t0 = time.perf_counter()
        await self._emit(f"{step.state.get_full_name()}.{step.handler}", step.payload, router)
        await self._emit(SET_IS_HYDRATED, {"value": target}, router)
        return await self._until(lambda _u, root: root.get(HYDRATED) is target, t0)

    async def trivial(self, path: str) -> tuple[float, bool]:
        target = not self.hydrated
        t0 = time.perf_counter()
        await self._emit(SET_IS_HYDRATED, {"value": target}, {"pathname": path, "asPath": path})
        return await self._until(lambda _u, root: root.get(HYDRATED) is target, t0)

    async def run(self, step: Step) -> tuple[float, bool]:
        if step.label == TRIVIAL:
            return await self.trivial(step.path)
        if step.state is None:
            return await self.page_load(step.path)
        return await self.click(step)


@dataclass
class Phase:
    """One workload at one number of clients."""

    setup: str
    clients: int
    workload: str
    seconds: float
    samples: list[tuple[str, float]]
    errors: int
    server_cpu: float
    client_cpu: float
    received: dict[str, int] = field(default_factory=dict)
    """Bytes of the updates of each kind of action, as JSON (from its first run)."""

    @property
    def rate(self) -> float:
        return len(self.samples) / self.seconds

    def quantile(self, q: float, label: str | None = None) -> float:
        return percentile([s for name, s in self.samples if label is None or name == label], q) * 1000


def _client_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def drive(clients: list[BenchSocket], rounds: dict[str, list[Step]], workload: str, *, seconds: float,
                warmup: float, server_pids: list[int], setup: str) -> Phase:
    """Every client runs its round (or the trivial event) until the time is up; only actions that
    finish inside the measured window count."""
    samples: list[tuple[str, float]] = []
    received: dict[str, int] = {}
    errors = 0
    start = time.perf_counter()
    window_start, window_end = start + warmup, start + warmup + seconds
    cpu: dict[str, float] = {}

    async def meter() -> None:
        await asyncio.sleep(max(0.0, window_start - time.perf_counter()))
        cpu["server0"], cpu["client0"] = cpu_seconds(server_pids), _client_cpu()
        await asyncio.sleep(max(0.0, window_end - time.perf_counter()))
        cpu["server1"], cpu["client1"] = cpu_seconds(server_pids), _client_cpu()

    async def loop(client: BenchSocket) -> None:
        nonlocal errors
        home = HOME[client.role]
        steps = [Step(TRIVIAL, home)] if workload == "trivial" else rounds[client.role]
        i = random.randrange(len(steps))
        while time.perf_counter() < window_end:
            step = steps[i % len(steps)]
            i += 1
            try:
                elapsed, ok = await asyncio.wait_for(client.run(step), TIMEOUT)
            except TimeoutError:
                errors += 1
                return  # its stale updates would confuse the next measurement: this tab stops
            finished = time.perf_counter()
            if window_start <= finished <= window_end:
                if ok:
                    samples.append((step.label, elapsed))
                    if step.label not in received:
                        received[step.label] = len(json.dumps(client.last_updates, default=str))
                else:
                    errors += 1

    await asyncio.gather(meter(), *(loop(c) for c in clients))
    return Phase(setup, len(clients), workload, seconds, samples, errors,
                 cpu["server1"] - cpu["server0"], cpu["client1"] - cpu["client0"], received)


def demo_accounts(database_url: str) -> tuple[dict[str, list[str]], int]:
    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        emails: dict[str, list[str]] = defaultdict(list)
        for email, role in conn.execute(sa.text('SELECT email, role FROM "user" WHERE is_active ORDER BY id')):
            emails[role].append(email)
        cardiology = conn.execute(sa.text("SELECT id FROM department WHERE name = 'Cardiology'")).scalar_one()
    engine.dispose()
    return emails, cardiology


@dataclass
class Logins:
    """How the tabs' logins went: each tab tries up to three times, as a user would."""

    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    failures: int = 0


async def open_tabs(url: str, count: int, emails: dict[str, list[str]], concurrency: int,
                    first: int = 0) -> tuple[list[BenchSocket], Logins]:
    """``count`` connected tabs, each logged in as the next user of its role, ``concurrency`` at a time;
    ``first`` tabs were opened before (the roles go on in their cycle)."""
    gate = asyncio.Semaphore(concurrency)
    taken: dict[str, int] = defaultdict(int)
    for i in range(first):
        taken[ROLE_CYCLE[i % len(ROLE_CYCLE)]] += 1
    clients = []
    for i in range(first, first + count):
        role = ROLE_CYCLE[i % len(ROLE_CYCLE)]
        clients.append(BenchSocket(url, role, emails[role][taken[role] % len(emails[role])]))
        taken[role] += 1
    logins = Logins()

    async def open_one(client: BenchSocket) -> None:
        async with gate:
            await client.connect(timeout=TIMEOUT)
            for _ in range(3):
                try:
                    seconds, ok = await client.log_in(client.email)
                except TimeoutError:
                    seconds, ok = TIMEOUT, False
                logins.latencies.append(seconds)
                if ok:
                    return
                logins.failures += 1
            raise RuntimeError(f"{client.email} could not log in three times in a row")

    started = time.perf_counter()
    await asyncio.gather(*(open_one(c) for c in clients))
    logins.seconds = time.perf_counter() - started
    return clients, logins


async def measure_setup(server, setup: str, counts: list[int], seconds: float, warmup: float,
                        login_concurrency: int) -> list[Phase]:
    emails, cardiology = demo_accounts(server.database_url)
    rounds = rounds_of(cardiology)
    clients, logins = await open_tabs(server.url, max(counts), emails, login_concurrency)
    print(f"# {setup}: {len(clients)} tabs logged in, {login_concurrency} at a time, in {logins.seconds:.1f} s "
          f"({len(clients) / logins.seconds:.1f} logins/s, p50 {1000 * percentile(logins.latencies, 0.5):.0f} ms, "
          f"p95 {1000 * percentile(logins.latencies, 0.95):.0f} ms, {logins.failures} failed and retried)", flush=True)
    pids = process_tree(server.process.pid)
    phases = []
    try:
        for count in counts:
            for workload in ("trivial", "mix"):
                phase = await drive(clients[:count], rounds, workload, seconds=seconds, warmup=warmup,
                                    server_pids=pids, setup=setup)
                print(f"# {setup}, {count} clients, {workload}: {phase.rate:.1f} events/s, "
                      f"p95 {phase.quantile(0.95):.0f} ms, {phase.errors} errors", flush=True)
                phases.append(phase)
    finally:
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
    return phases


def _ms(value: float) -> str:
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}"


def report(phases: list[Phase]) -> str:
    out = []
    rows = []
    baseline = {(p.setup, p.clients): p for p in phases if p.workload == "trivial"}
    for p in phases:
        base = baseline[(p.setup, p.clients)]
        ratios = ("" if p is base else
                  f"{p.rate / base.rate:.2f} × / {p.quantile(0.95) / base.quantile(0.95):.1f} ×")
        rows.append((p.setup, p.clients, TRIVIAL if p.workload == "trivial" else "realistic mix", len(p.samples),
                     f"{p.rate:.0f}", _ms(p.quantile(0.5)), _ms(p.quantile(0.95)), _ms(p.quantile(0.99)),
                     f"{1000 * p.server_cpu / max(1, len(p.samples)):.1f}",
                     f"{p.server_cpu / p.seconds:.2f} / {p.client_cpu / p.seconds:.2f}", p.errors, ratios))
    out.append(table(("setup", "clients", "workload", "events", "events/s", "p50 ms", "p95 ms", "p99 ms",
                      "server CPU ms/event", "CPU cores: server / load generator", "errors",
                      "vs trivial: events/s, p95"), rows))
    for setup in dict.fromkeys(p.setup for p in phases):
        mixes = [p for p in phases if p.setup == setup and p.workload == "mix"]
        labels = sorted({name for p in mixes for name, _ in p.samples})
        per_event = []
        for label in labels:
            cells = []
            for p in mixes:
                n = sum(1 for name, _ in p.samples if name == label)
                cells.append(f"{n}: {_ms(p.quantile(0.5, label))} / {_ms(p.quantile(0.95, label))} / "
                             f"{_ms(p.quantile(0.99, label))}" if n else "–")
            size = next((p.received[label] for p in mixes if label in p.received), 0)
            per_event.append((label, f"{size / 1024:.1f}", *cells))
        out.append(f"\nPer event, {setup} (count: p50 / p95 / p99 ms)\n")
        out.append(table(("event", "KB received", *(f"{p.clients} clients" for p in mixes)), per_event))
    targets = []
    for (setup, clients), base in baseline.items():
        if clients != 50:
            continue
        mix = next(p for p in phases if p.setup == setup and p.clients == clients and p.workload == "mix")
        rate, p95 = mix.rate / base.rate, mix.quantile(0.95) / base.quantile(0.95)
        targets.append(f"- {setup}, 50 clients: events/s {mix.rate:.0f} vs {base.rate:.0f} trivial = {rate:.2f} × "
                       f"(target ≥ 0.5: {'met' if rate >= 0.5 else 'not met'}); p95 {_ms(mix.quantile(0.95))} ms vs "
                       f"{_ms(base.quantile(0.95))} ms = {p95:.1f} × (target ≤ 2: {'met' if p95 <= 2 else 'not met'})")
    if targets:
        out.append("\nIssue 8's targets\n")
        out += targets
    out += issue_18(phases, baseline)
    return "\n".join(out)


def issue_18(phases: list[Phase], baseline: dict[tuple[str, int], Phase]) -> list[str]:
    """Issue 18's targets: a realistic event's server CPU at most 3× the trivial event's (with the
    most clients measured, where the server is busiest), and at 50 tabs throughput at least 0.3×
    and p95 at most 5× the trivial event's, each in the same run."""
    lines = []
    for (setup, clients), base in baseline.items():
        mix = next((p for p in phases if p.setup == setup and p.clients == clients and p.workload == "mix"), None)
        if mix is None or not mix.samples or not base.samples:
            continue
        cpu_mix, cpu_base = mix.server_cpu / len(mix.samples), base.server_cpu / len(base.samples)
        cpu = cpu_mix / cpu_base
        line = (f"- {setup}, {clients} clients: server CPU {1000 * cpu_mix:.2f} ms per realistic event vs "
                f"{1000 * cpu_base:.2f} ms trivial = {cpu:.1f} × (target ≤ 3: {'met' if cpu <= 3 else 'not met'})")
        if clients == 50:
            rate, p95 = mix.rate / base.rate, mix.quantile(0.95) / base.quantile(0.95)
            line += (f"; events/s {rate:.2f} × (target ≥ 0.3: {'met' if rate >= 0.3 else 'not met'}); "
                     f"p95 {p95:.1f} × (target ≤ 5: {'met' if p95 <= 5 else 'not met'})")
        lines.append(line)
    return ["\nIssue 18's targets\n", *lines] if lines else []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", default="1,50,200", help="numbers of clients, comma-separated")
    parser.add_argument("--seconds", type=float, default=10, help="measured seconds per workload")
    parser.add_argument("--warmup", type=float, default=2, help="seconds before measuring")
    parser.add_argument("--setups", default="one,two", help="one (SQLite, memory), two (PostgreSQL, Redis)")
    parser.add_argument("--login-concurrency", type=int, default=8, help="tabs logging in at once (before timing)")
    args = parser.parse_args()
    counts = sorted({int(c) for c in args.clients.split(",")})
    random.seed(8)
    phases: list[Phase] = []
    for setup in setups_of(args.setups):
        with running_app(setup) as server:
            phases += asyncio.run(measure_setup(server, setup.label, counts, args.seconds, args.warmup,
                                                args.login_concurrency))
    print(report(phases))
    print(f"\n{machine_note()}")


if __name__ == "__main__":
    main()

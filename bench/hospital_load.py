"""A hospital's day as think-time load: how many users one worker serves within the limits.

The model is the one the OpenMRS and Bahmni load tests use: simulated users of each persona,
each in a closed loop that waits a random 5 to 10 s ("think time") before its next action, so a
user acts every 5 to 10 s plus the server's answer. Per 100 users:

- 50 **patients**: dashboard, book a slot (booking page, choose a department, a day 3 to 30
  days ahead, pick a free time, request it), my appointments, cancel that booking (so the
  hospital's free slots stay as they were), results, invoices;
- 20 **doctors**: desk, the day list, today, open the chart of a patient with 1,000 encounters
  (``bench/hot_reads.py``'s top-up) and page its timeline, open today's encounter, save notes
  and vitals, choose a medicine (the safety check) and sign a prescription, lab results;
- 8 **lab**, 8 **pharmacy**, 4 **accounts**: the rounds of ``bench/ws_load.py`` (worklist,
  prescription queue and stock, invoices: page loads, paging, filters, searches);
- 10 **front desk**: there is no front-desk role yet (issue 21 adds it) nor a booking on a
  patient's behalf, so the front desk is the admin's appointments list (today's, a department's
  week, paging) and the doctors' schedules, as the admin account.

Every action is the websocket event the page sends (``bench.ws_load.BenchSocket``): a page load
is ``on_load_internal`` (the session guard and the page's loaders), timed to its last update; a
click is its handler, timed to its last update. A booking that finds its slot just taken, or a
time the account has booked already, is the app answering right (counted as a conflict, not an
error); any other error toast, a redirect to the login page or a 120 s timeout is an error.

Logins: bcrypt at cost 12 makes hundreds of logins slow, and the demo hospital has 20 patients,
10 doctors and one each of lab, pharmacy, accounts and admin. So each distinct account logs in
once over the websocket (before any timing) and its simulated users share that session: each is
a tab of its own (its own socket and Reflex state) whose handshake carries the session cookie, as
a second tab of the same browser does. About 12 patient users share each patient account at 500
users, 10 doctor users each doctor account.

Before the users start, each doctor gets a confirmed appointment early today (00:30, 00:45, ...)
with the chart's patient (the encounter they write in, and the care relationship that opens the
chart without breaking the glass), written directly to the database as ``bench/hot_reads.py``
writes its top-up.

Users are added in steps (default 50, 100, 200, 300, 400, 500); the users of a step keep running
through the next. Each step starts its new users over one think time, waits ``--ramp`` seconds,
then measures ``--seconds``: actions/s, p50/p95/max per kind of action, the chart's p95, errors,
the server's CPU (% of one core, all its processes; PostgreSQL and Redis not counted), the
server's CPU per action (which the machine's other load leaves alone, unlike the latencies), its
workers' RSS, and the load generator's own CPU (it runs on the same machine). A step holds when every kind of action has a
p95 under 300 ms, except opening the 1,000-encounter chart, under 1 s, with no errors; stepping
stops after the first step whose latency breaks a limit (errors are reported, the run goes on).

    .venv/bin/python -m bench.hospital_load                       # one worker, SQLite (make run)
    .venv/bin/python -m bench.hospital_load --setups two          # two workers, PostgreSQL + Redis
    .venv/bin/python -m bench.hospital_load --steps 5 --seconds 5 --ramp 2   # a quick look
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as clock
from typing import Any

import sqlalchemy as sa

from bench.harness import (
    cpu_seconds,
    machine_note,
    percentile,
    process_tree,
    rss_mb,
    running_app,
    setups_of,
    table,
    worker_pids,
)
from bench.ws_load import TIMEOUT, BenchSocket, Step, click_step, page_step, rounds_of
from hms_app import settings
from hms_app.services.booking.appointments import SLOT_TAKEN
from hms_app.state.appointments import (
    AdminAppointmentsState,
    BookingState,
    DoctorAppointmentsState,
    PatientAppointmentsState,
    ScheduleState,
)
from hms_app.state.clinical import ChartState, EncounterState
from tests.ws_client import EventResult, state_name

SHARE = {"patient": 50, "doctor": 20, "lab": 8, "pharmacy": 8, "accounts": 4, "front desk": 10}
"""Users of each persona per 100."""
ACCOUNT_ROLE = {"front desk": "admin"}
"""The role whose accounts a persona uses, where it is not its own."""
THINK_SECONDS = (5.0, 10.0)
ACTION_P95_MS, CHART_P95_MS = 300.0, 1000.0
CHART = "page /doctor/patient (chart, 1,000 encounters)"
BOOKING_REASON = "Check-up (load test)"
CONFLICTS = (SLOT_TAKEN, "You already have an appointment at that time.", "A cancelled appointment cannot be cancelled.")
"""Refusals a busy hospital gives rightly: two users chose the same time, or another user of a
shared account booked that time or cancelled that booking first."""


def persona_cycle(size: int = 50) -> list[str]:
    """Personas in an order whose every prefix is close to the mix (the steps take prefixes)."""
    order: list[str] = []
    counts: Counter[str] = Counter()
    for i in range(size):
        persona = max(SHARE, key=lambda p: SHARE[p] * (i + 1) / 100 - counts[p])
        order.append(persona)
        counts[persona] += 1
    return order


# --- the hospital, prepared in the server's data folder --------------------------------------


def prepare_hospital(chart_encounters: int) -> dict[str, Any]:
    """Top up the chart, give each doctor today's encounter with its patient; what the users need.

    Runs in a process of its own started with the server's ``HMS_DATA_DIR`` and
    ``HMS_DATABASE_URL`` (``_prepared``), so the notes it writes are encrypted with the server's key.
    """
    from bench.hot_reads import Context, add_visit, top_up_chart
    from hms_app.db import engine as db_engine
    from hms_app.db.enums import AppointmentStatus
    from hms_app.services.core.localtime import local_today

    engine = db_engine.create_engine(settings.DATABASE_URL)
    db_engine.use_engine(engine)
    with engine.connect() as conn:
        patient = conn.execute(sa.text(
            "SELECT patient_id FROM encounter GROUP BY patient_id ORDER BY count(*) DESC, 1 LIMIT 1")).scalar_one()
        chart_doctor, chart_department = conn.execute(sa.text(
            "SELECT doctor_id, department_id FROM appointment WHERE patient_id = :p AND status = 'completed' "
            "GROUP BY doctor_id, department_id ORDER BY count(*) DESC, 1 LIMIT 1"), {"p": patient}).one()
    top_up_chart(Context(engine, engine.dialect.name == "sqlite"), patient, chart_doctor, chart_department,
                 chart_encounters)
    today = local_today()
    first = datetime.combine(today, clock(0, 30), tzinfo=settings.TIMEZONE).astimezone(UTC)
    encounters: dict[str, int] = {}
    with db_engine.session_scope(engine=engine) as session:
        doctors = session.execute(sa.text(
            'SELECT u.id, u.email, dp.department_id FROM "user" u JOIN doctor_profile dp ON dp.user_id = u.id '
            "WHERE u.is_active AND u.role = 'doctor' ORDER BY u.id")).all()
        for i, (doctor_id, email, department_id) in enumerate(doctors):
            # One after the other: a patient's appointments may not overlap (on PostgreSQL, by constraint).
            starts = first + timedelta(minutes=15 * i)
            encounters[email] = add_visit(session, patient, doctor_id, department_id, starts,
                                          AppointmentStatus.CONFIRMED, "Review (hospital load benchmark)").id
        session.commit()
    with engine.connect() as conn:
        emails: dict[str, list[str]] = {}
        for email, role in conn.execute(sa.text('SELECT email, role FROM "user" WHERE is_active ORDER BY id')):
            emails.setdefault(str(role), []).append(email)
        departments = list(conn.execute(sa.text(
            "SELECT DISTINCT dp.department_id FROM doctor_profile dp JOIN doctor_availability av "
            "ON av.doctor_id = dp.user_id ORDER BY 1")).scalars())
        have = conn.execute(sa.text("SELECT count(*) FROM encounter WHERE patient_id = :p"),
                            {"p": patient}).scalar_one()
    engine.dispose()
    return {"today": today.isoformat(), "chart_patient": patient, "chart_encounters": have,
            "encounters": encounters, "emails": emails, "departments": departments,
            "doctors": [d[0] for d in doctors]}


def _prepared(server, chart_encounters: int) -> dict[str, Any]:
    env = {**os.environ, "HMS_DATA_DIR": str(server.data_dir), "HMS_DATABASE_URL": server.database_url}
    done = subprocess.run([sys.executable, "-m", "bench.hospital_load", "--prepare", str(chart_encounters)],  # noqa: S603
                          env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"preparing the hospital failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- the users ------------------------------------------------------------------------------


class UserTab(BenchSocket):
    """One simulated user: a tab of its own, logged in through its account's session cookie."""

    def __init__(self, base_url: str, persona: str, email: str, cookie: str) -> None:
        super().__init__(base_url, persona, email)
        self.cookie = cookie
        self.seen: dict[str, dict[str, Any]] = {}
        """Every state's vars as the page last showed them (what a user reads before clicking)."""

    def drop_pushed(self) -> None:
        """Forget the live updates pushed while the user was thinking (the page shows them at once;
        they are no part of the next action's answer)."""
        while not self._updates.empty():
            self._remember(EventResult([self._updates.get_nowait()]))

    def _remember(self, result: EventResult) -> None:
        for delta in result.deltas:
            for name, values in delta.items():
                if isinstance(values, dict):
                    self.seen.setdefault(name, {}).update(
                        {k.removesuffix("_rx_state_"): v for k, v in values.items()})
        root = self.seen.get("reflex___state____state", {})
        if "is_hydrated" in root:
            self.hydrated = bool(root["is_hydrated"])

    def var(self, state: type, name: str, default: Any = None) -> Any:
        return self.seen.get(state_name(state), {}).get(name, default)


@dataclass
class Sample:
    label: str
    seconds: float
    finished: float
    outcome: str  # "ok", "conflict" or "error"


@dataclass
class Run:
    """What every user did, and whether it is time to stop."""

    samples: list[Sample] = field(default_factory=list)
    error_messages: Counter[str] = field(default_factory=Counter)
    stopping: bool = False
    stopped_tabs: int = 0


class Stop(Exception):
    """The run is over: the user leaves."""


Act = Callable[[Step], Awaitable[EventResult]]


def outcome_of(ok: bool, result: EventResult) -> tuple[str, str]:
    errors = [message for level, message in result.toasts if level == "error"]
    if ok:
        return "ok", ""
    if errors and all(m in CONFLICTS for m in errors):
        return "conflict", ""
    return "error", (errors or result.redirects or ["?"])[0][:120]


def actor_of(tab: UserTab, run: Run) -> Act:
    async def act(step: Step) -> EventResult:
        await asyncio.sleep(random.uniform(*THINK_SECONDS))
        if run.stopping:
            raise Stop
        tab.drop_pushed()
        try:
            elapsed, ok = await asyncio.wait_for(tab.run(step), TIMEOUT)
        except TimeoutError:
            run.samples.append(Sample(step.label, TIMEOUT, time.perf_counter(), "error"))
            run.error_messages[f"{step.label}: timed out"] += 1
            raise Stop from None  # its late updates would confuse its next action: this user leaves
        result = EventResult(tab.last_updates)
        tab._remember(result)
        outcome, message = outcome_of(ok, result)
        run.samples.append(Sample(step.label, elapsed, time.perf_counter(), outcome))
        if message:
            run.error_messages[f"{step.label}: {message}"] += 1
        return result
    return act


def _day_ahead(rng: random.Random) -> str:
    day = datetime.now(settings.TIMEZONE).date() + timedelta(days=rng.randint(3, 30))
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day.isoformat()


async def patient_round(tab: UserTab, act: Act, hospital: dict[str, Any]) -> None:
    book = "/patient/book"
    await act(page_step("/patient"))
    await act(page_step(book))
    await act(click_step(book, BookingState, "choose_department",
                         {"department_id": str(random.choice(hospital["departments"]))}))
    await act(click_step(book, BookingState, "choose_day", {"day": _day_ahead(random)}, " (free slots)"))
    slots = tab.var(BookingState, "slots", [])
    if slots:
        slot = random.choice(slots)["starts_at"]
        await act(click_step(book, BookingState, "pick_slot", {"starts_at": slot}))
        await act(click_step(book, BookingState, "request_appointment", {"form_data": {
            "reason": BOOKING_REASON, "request_key": tab.var(BookingState, "form_key", "")}}))
    await act(page_step("/patient/appointments"))
    mine = [row for row in tab.var(PatientAppointmentsState, "upcoming", [])
            if row.get("reason") == BOOKING_REASON and row.get("status") == "requested"]
    if mine:
        await act(click_step("/patient/appointments", PatientAppointmentsState, "cancel",
                             {"appointment_id": random.choice(mine)["id"]}))
    await act(page_step("/patient/results"))
    await act(page_step("/patient/invoices"))


async def doctor_round(tab: UserTab, act: Act, hospital: dict[str, Any]) -> None:
    chart = f"/doctor/patient?id={hospital['chart_patient']}"
    encounter = f"/doctor/encounter?appointment={hospital['encounters'][tab.email]}"
    await act(page_step("/doctor"))
    await act(page_step("/doctor/appointments"))
    await act(click_step("/doctor/appointments", DoctorAppointmentsState, "choose_day", {"day": hospital["today"]}))
    await act(Step(CHART, chart))
    await act(click_step(chart, ChartState, "next_page", note=" (timeline)"))
    await act(Step("page /doctor/encounter", encounter))
    await act(click_step(encounter, EncounterState, "save_notes", {"form_data": {
        "subjective": "Feels well; occasional headaches.", "objective": "No distress.",
        "assessment": "Hypertension, controlled.", "plan": "Continue; review in 3 months.",
        "diagnosis": "Essential hypertension", "bp_systolic": str(random.randint(110, 150)),
        "bp_diastolic": str(random.randint(70, 95)), "pulse": str(random.randint(55, 95))}}))
    medicines = tab.var(EncounterState, "medicines", [])
    if medicines:
        medicine = str(random.choice(medicines)["id"])
        await act(click_step(encounter, EncounterState, "check_medicine", {"medicine_id": medicine}))
        await act(click_step(encounter, EncounterState, "prescribe", {"form_data": {
            "medicine_id": medicine, "dose": "1 tablet", "route": "oral", "frequency": "twice daily", "days": "5",
            "quantity": "10", "instructions": "After food.", "override_reason": "Reviewed; benefit outweighs risk.",
            "request_key": tab.var(EncounterState, "prescribe_key", "")}}))
    await act(page_step("/doctor/results"))


async def front_desk_round(_tab: UserTab, act: Act, hospital: dict[str, Any]) -> None:
    listing, today = "/admin/appointments", hospital["today"]
    week = (datetime.fromisoformat(today) + timedelta(days=6)).date().isoformat()
    await act(page_step(listing))
    await act(click_step(listing, AdminAppointmentsState, "apply_filters",
                         {"form_data": {"date_from": today, "date_to": today}}, " (today)"))
    await act(click_step(listing, AdminAppointmentsState, "apply_filters", {"form_data": {
        "department": str(random.choice(hospital["departments"])), "date_from": today, "date_to": week}},
        " (a department's week)"))
    await act(click_step(listing, AdminAppointmentsState, "next_page"))
    await act(page_step("/admin/schedules"))
    await act(click_step("/admin/schedules", ScheduleState, "choose_doctor",
                         {"doctor_id": str(random.choice(hospital["doctors"]))}))


def fixed_round(role: str, hospital: dict[str, Any]) -> Callable[[UserTab, Act, dict[str, Any]], Awaitable[None]]:
    """``bench/ws_load.py``'s round of ``role``, step by step."""
    steps = rounds_of(hospital["departments"][0])[role]

    async def round_of(_tab: UserTab, act: Act, _hospital: dict[str, Any]) -> None:
        for step in steps:
            await act(step)
    return round_of


def rounds(hospital: dict[str, Any]) -> dict[str, Callable[[UserTab, Act, dict[str, Any]], Awaitable[None]]]:
    return {"patient": patient_round, "doctor": doctor_round, "front desk": front_desk_round,
            **{role: fixed_round(role, hospital) for role in ("lab", "pharmacy", "accounts")}}


async def live(tab: UserTab, run: Run, hospital: dict[str, Any]) -> None:
    """A user's day: round after round until the run ends (the first wait spreads the starts)."""
    round_of = rounds(hospital)[tab.role]
    act = actor_of(tab, run)
    await asyncio.sleep(random.uniform(0, THINK_SECONDS[1]))
    try:
        while not run.stopping:
            await round_of(tab, act, hospital)
    except Stop:
        run.stopped_tabs += 1


# --- logins and steps -----------------------------------------------------------------------


async def session_cookies(url: str, emails: list[str], concurrency: int = 4) -> dict[str, str]:
    """Each account logged in once over the websocket: its session cookie, as a handshake sends it."""
    gate = asyncio.Semaphore(concurrency)
    cookies: dict[str, str] = {}

    async def log_in(email: str) -> None:
        async with gate:
            tab = BenchSocket(url, "", email)
            await tab.connect(timeout=TIMEOUT)
            try:
                _seconds, ok = await tab.log_in(email)
                if not ok or not tab.session_cookie:
                    raise RuntimeError(f"{email} could not log in")
                cookies[email] = f"{settings.SESSION_COOKIE_NAME}={tab.session_cookie}"
            finally:
                await tab.close()

    await asyncio.gather(*(log_in(e) for e in emails))
    return cookies


async def connect_all(tabs: list[UserTab], concurrency: int = 16) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def connect(tab: UserTab) -> None:
        async with gate:
            await tab.connect(timeout=TIMEOUT)
    await asyncio.gather(*(connect(t) for t in tabs))


@dataclass
class StepFigures:
    users: int
    seconds: float
    samples: list[Sample]
    server_cpu: float
    generator_cpu: float
    rss_mb: float
    errors: Counter[str]

    def of(self, label: str | None = None) -> list[float]:
        return [s.seconds * 1000 for s in self.samples if label is None or s.label == label]

    @property
    def labels(self) -> list[str]:
        return sorted({s.label for s in self.samples})

    def count(self, outcome: str) -> int:
        return sum(s.outcome == outcome for s in self.samples)

    def p95(self, label: str | None = None) -> float:
        return percentile(self.of(label), 0.95)

    def worst(self) -> tuple[str, float]:
        """The kind of action (the chart apart) with the highest p95."""
        others = [(label, self.p95(label)) for label in self.labels if label != CHART]
        return max(others, key=lambda pair: pair[1]) if others else ("", float("nan"))

    @property
    def rate(self) -> float:
        return len(self.samples) / self.seconds

    @property
    def cpu_ms_per_action(self) -> float:
        """The server's CPU time per action: what the machine's other load does not change."""
        return 1000 * self.server_cpu / len(self.samples) if self.samples else float("nan")

    @property
    def saturating_users(self) -> float:
        """The users at which one core would be busy all the time at this CPU per action and this
        rate per user: an upper bound of one worker's capacity on an idle core (latency grows
        long before it)."""
        return self.users * self.seconds / self.server_cpu if self.server_cpu else float("nan")

    @property
    def within_latency(self) -> bool:
        """Every kind of action's p95 within its limit (stepping stops after the first step that is not)."""
        chart = self.of(CHART)
        return self.worst()[1] < ACTION_P95_MS and (not chart or self.p95(CHART) < CHART_P95_MS)

    @property
    def holds(self) -> bool:
        return self.within_latency and self.count("error") == 0


async def measure_setup(server, setup: str, steps: list[int], seconds: float, ramp: float, chart_encounters: int,
                        *, through: bool = False) -> tuple[dict[str, Any], list[StepFigures]]:
    hospital = await asyncio.to_thread(_prepared, server, chart_encounters)
    emails = hospital["emails"]
    cycle, taken = persona_cycle(), Counter()
    users_of: list[tuple[str, str]] = []  # (persona, account) of each user, in the order they join
    for i in range(max(steps)):
        persona = cycle[i % len(cycle)]
        pool = emails[ACCOUNT_ROLE.get(persona, persona)]
        users_of.append((persona, pool[taken[persona] % len(pool)]))
        taken[persona] += 1
    started = time.perf_counter()
    cookies = await session_cookies(server.url, sorted({email for _, email in users_of}))
    print(f"# {setup}: {len(cookies)} accounts logged in in {time.perf_counter() - started:.1f} s; chart of patient "
          f"{hospital['chart_patient']} with {hospital['chart_encounters']} encounters", flush=True)
    everything, workers = process_tree(server.process.pid), worker_pids(server)
    run, tabs, lives, figures = Run(), [], [], []
    try:
        for users in steps:
            new = [UserTab(server.url, persona, email, cookies[email]) for persona, email in users_of[len(tabs):users]]
            await connect_all(new)
            tabs += new
            lives += [asyncio.create_task(live(t, run, hospital)) for t in new]
            await asyncio.sleep(ramp)
            window_start, cpu0, gen0 = time.perf_counter(), cpu_seconds(everything), time.process_time()
            errors0, rss = Counter(run.error_messages), 0.0
            while (left := window_start + seconds - time.perf_counter()) > 0:
                await asyncio.sleep(min(5.0, left))
                rss = max(rss, rss_mb(workers))
            window_end = time.perf_counter()
            step = StepFigures(users, window_end - window_start,
                               [s for s in run.samples if window_start <= s.finished <= window_end],
                               cpu_seconds(everything) - cpu0, time.process_time() - gen0, rss,
                               run.error_messages - errors0)
            figures.append(step)
            label, worst = step.worst()
            print(f"# {setup}, {users} users: {step.rate:.1f} actions/s, p95 "
                  f"{step.p95():.0f} ms, worst p95 {worst:.0f} ms ({label}), chart p95 {step.p95(CHART):.0f} ms, "
                  f"{step.count('error')} errors, {step.count('conflict')} conflicts, server CPU "
                  f"{100 * step.server_cpu / step.seconds:.0f} % ({step.cpu_ms_per_action:.0f} ms an action), generator CPU "
                  f"{100 * step.generator_cpu / step.seconds:.0f} %, workers' RSS {step.rss_mb:.0f} MB, "
                  f"load {os.getloadavg()[0]:.1f}", flush=True)
            if not step.within_latency and not through:
                break
    finally:
        run.stopping = True
        for task in lives:
            task.cancel()
        await asyncio.gather(*lives, return_exceptions=True)
        await asyncio.gather(*(t.close() for t in tabs), return_exceptions=True)
    return hospital, figures


# --- the report -----------------------------------------------------------------------------


def _ms(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:.0f}"


def report(setup: str, hospital: dict[str, Any], figures: list[StepFigures]) -> str:
    rows = []
    for f in figures:
        label, worst = f.worst()
        rows.append((f.users, f"{f.rate:.1f}", _ms(percentile(f.of(), 0.5)), _ms(f.p95()),
                     f"{_ms(worst)} ({label})", _ms(f.p95(CHART)), f.count("error"), f.count("conflict"),
                     f"{100 * f.server_cpu / f.seconds:.0f}", _ms(f.cpu_ms_per_action), _ms(f.saturating_users),
                     f"{f.rss_mb:.0f}", f"{100 * f.generator_cpu / f.seconds:.0f}", "yes" if f.holds else "no"))
    out = [f"## {setup}\n", table(("users", "actions/s", "p50 ms", "p95 ms", "worst p95 ms (action)",
                                   "chart p95 ms", "errors", "conflicts", "server CPU % of a core",
                                   "server CPU ms / action", "users at a full core", "workers' RSS MB",
                                   "generator CPU %", "holds"), rows)]
    labels = sorted({label for f in figures for label in f.labels})
    kinds = [(label, *(f"{_ms(percentile(f.of(label), 0.5))} / {_ms(f.p95(label))} / "
                       f"{_ms(max(f.of(label), default=float('nan')))} ({len(f.of(label))})" for f in figures))
             for label in labels]
    out += ["\np50 / p95 / max ms (samples) of each kind of action, by users\n",
            table(("action", *(str(f.users) for f in figures)), kinds)]
    held = [f.users for f in figures if f.holds]
    out.append(f"\nLargest step within both limits (every action's p95 < {ACTION_P95_MS:.0f} ms, the chart's "
               f"< {CHART_P95_MS:.0f} ms, no errors): {max(held) if held else 'none'} users. Chart: patient "
               f"{hospital['chart_patient']}, {hospital['chart_encounters']} encounters.")
    errors = sum((f.errors for f in figures), Counter())
    if errors:
        out.append("Errors: " + "; ".join(f"{n} × {m}" for m, n in errors.most_common(8)))
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", default="50,100,200,300,400,500", help="numbers of users, comma-separated")
    parser.add_argument("--seconds", type=float, default=60, help="measured seconds per step")
    parser.add_argument("--ramp", type=float, default=15, help="seconds between a step's start and its measuring")
    parser.add_argument("--setups", default="one", help="one (SQLite, memory), two (PostgreSQL, Redis), or one,two")
    parser.add_argument("--chart-encounters", type=int, default=1000, help="encounters of the chart doctors open")
    parser.add_argument("--through", action="store_true",
                        help="go on stepping after a step breaks a limit (the whole curve)")
    parser.add_argument("--seed", type=int, default=18, help="the random choices' seed")
    parser.add_argument("--prepare", type=int, metavar="ENCOUNTERS", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.prepare is not None:  # the server's data folder's side of the run (``_prepared``)
        print(json.dumps(prepare_hospital(args.prepare)))
        return
    random.seed(args.seed)
    steps = sorted({int(s) for s in args.steps.split(",")})
    print(f"load average at the start: {os.getloadavg()[0]:.1f}; persona mix per 100 users: "
          + ", ".join(f"{n} {p}" for p, n in SHARE.items()), flush=True)
    for setup in setups_of(args.setups):
        with running_app(setup) as server:
            hospital, figures = asyncio.run(measure_setup(server, setup.label, steps, args.seconds, args.ramp,
                                                          args.chart_encounters, through=args.through))
        print(f"\n{report(setup.label, hospital, figures)}\n\n{machine_note()}\n", flush=True)


if __name__ == "__main__":
    main()

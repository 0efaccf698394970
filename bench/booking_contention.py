"""Booking contention: many patients racing for one day's slots of one doctor.

Through the booking service, as the app's handlers call it: each client is a patient of its
own, in a thread of its own with a database session of its own per call (as a handler's worker
thread has). For each day all clients are released together; each lists the doctor's free
slots that day (``appointments.free_slots``), picks one at random and books it
(``appointments.book_appointment``); told the slot was just taken, it lists again; it stops
once it has its appointment or no slot is left. Run on SQLite (writers queue on its write lock)
and on PostgreSQL (a database created for the run and dropped afterwards).

With ``--websocket`` the same race runs through the real app as well (one worker, SQLite):
each client is a logged-in tab sending the booking page's events (choose the department, the
doctor and the day, pick a slot, request it) over Reflex's websocket.

Afterwards the database is checked: no two active appointments of the doctor at one start or
overlapping in time, no patient in two at once, and exactly the bookings the clients were told
succeeded.

    .venv/bin/python -m bench.booking_contention --clients 50 --days 5
"""

from __future__ import annotations

import os
import tempfile

# Before the app's settings are read: the racers' own passwords are hashed at the test suite's
# bcrypt cost (their logins are not what is measured), and the data key lives in a folder of
# the run's own, never in data/.
os.environ.setdefault("HMS_BCRYPT_ROUNDS", "4")
os.environ.setdefault("HMS_DATA_DIR", tempfile.mkdtemp(prefix="hms-bench-data-"))

import argparse
import asyncio
import contextlib
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import sqlalchemy as sa

from bench.harness import SETUPS, machine_note, percentile, postgres_database, running_app, table
from hms_app.db import engine as db_engine
from hms_app.db.migrate import upgrade
from hms_app.operations import demo
from hms_app.services.administration import auth
from hms_app.services.booking import appointments
from hms_app.services.booking.scheduling import free_slots_for
from hms_app.services.core.actor import Actor, Anonymous
from hms_app.services.core.errors import Conflict, HMSError
from hms_app.state.appointments import BookingState
from hms_app.state.auth import LoginState
from tests.ws_client import ReflexSocket

RACER_PASSWORD = "Racing-For-Slots-2026"  # noqa: S105  (accounts of a throwaway database)
DEPARTMENT = "Cardiology"


@dataclass
class Race:
    """What happened in one setup, over all its days."""

    setup: str
    clients: int
    days: int = 0
    slots: int = 0
    seconds: float = 0.0
    outcomes: Counter = field(default_factory=Counter)
    booking_latencies: list[float] = field(default_factory=list)
    won: list[int] = field(default_factory=list)
    check: dict[str, int] = field(default_factory=dict)

    @property
    def attempts(self) -> int:
        return sum(self.outcomes.values())


# --- the database --------------------------------------------------------------------------


def _weekdays(count: int) -> list[date]:
    day, found = date.today() + timedelta(days=7), []
    while len(found) < count:
        if day.weekday() < 5:
            found.append(day)
        day += timedelta(days=1)
    return found


def _register_racers(engine: sa.Engine, count: int) -> list[str]:
    emails = [f"racer{i}@bench.example" for i in range(count)]
    for email in emails:
        form = auth.Registration(full_name="Bench Racer", email=email, password=RACER_PASSWORD,
                                 birth_date="1980-01-01", phone="+44 20 7946 0000")
        with db_engine.session_scope(engine=engine) as session:
            auth.register_patient(session=session, visitor=Anonymous("198.51.100.8"), form=form)
    return emails


def _target(engine: sa.Engine) -> tuple[int, int]:
    """The department and the doctor everyone wants: the first of Cardiology."""
    with engine.connect() as conn:
        department = conn.execute(sa.text("SELECT id FROM department WHERE name = :n"), {"n": DEPARTMENT}).scalar_one()
        doctor = conn.execute(sa.text("SELECT user_id FROM doctor_profile WHERE department_id = :d ORDER BY user_id"),
                              {"d": department}).scalars().first()
    return department, doctor


def check_bookings(engine: sa.Engine, told: list[int] | int) -> dict[str, int]:
    """Counts that must all be zero: double bookings of a doctor (same start, or overlapping),
    patients in two places at once, and bookings the database holds but the clients were not
    told of, or the other way round. ``told``: the ids the clients were given, or their number."""
    with engine.connect() as conn:
        same_start = conn.execute(sa.text(
            "SELECT count(*) FROM (SELECT doctor_id, starts_at FROM appointment "
            "WHERE status IN ('requested', 'confirmed') GROUP BY doctor_id, starts_at HAVING count(*) > 1) AS clashes"
        )).scalar_one()
        doctor_overlaps = conn.execute(sa.text(
            "SELECT count(*) FROM appointment a JOIN appointment b ON a.doctor_id = b.doctor_id AND a.id < b.id "
            "AND a.starts_at < b.ends_at AND b.starts_at < a.ends_at "
            "WHERE a.status IN ('requested', 'confirmed') AND b.status IN ('requested', 'confirmed')")).scalar_one()
        patient_overlaps = conn.execute(sa.text(
            "SELECT count(*) FROM appointment a JOIN appointment b ON a.patient_id = b.patient_id AND a.id < b.id "
            "AND a.starts_at < b.ends_at AND b.starts_at < a.ends_at "
            "WHERE a.status IN ('requested', 'confirmed') AND b.status IN ('requested', 'confirmed')")).scalar_one()
        booked = set(conn.execute(sa.text(
            'SELECT a.id FROM appointment a JOIN "user" u ON u.id = a.patient_id '
            "WHERE a.status IN ('requested', 'confirmed') AND u.email LIKE 'racer%@bench.example'")).scalars())
    if isinstance(told, int):
        mismatch = abs(len(booked) - told)
    else:
        mismatch = len(booked ^ set(told)) + len(told) - len(set(told))
    return {"same start": same_start, "overlapping (doctor)": doctor_overlaps,
            "overlapping (patient)": patient_overlaps, "told ≠ stored": mismatch}


# --- through the service, with threads -----------------------------------------------------


def race_service(engine: sa.Engine, setup: str, clients: int, days: int) -> Race:
    db_engine.use_engine(engine)
    emails = _register_racers(engine, clients)
    actors: list[Actor] = []
    for email in emails:
        with db_engine.session_scope(engine=engine) as session:
            token = auth.login(session=session, visitor=Anonymous("198.51.100.8"), email=email,
                               password=RACER_PASSWORD).token
        with db_engine.session_scope(engine=engine) as session:
            actors.append(auth.resolve_session(session=session, token=token, ip_address="198.51.100.8"))
    department, doctor = _target(engine)
    race = Race(setup, clients)
    lock = threading.Lock()

    def free(actor: Actor, day: date) -> list[str]:
        with db_engine.session_scope(engine=engine, write=False) as session:
            return [s.starts_at for s in appointments.free_slots(
                session=session, actor=actor, department_id=department, doctor_id=doctor, day=day.isoformat())]

    def racer(actor: Actor, day: date, barrier: threading.Barrier) -> None:
        rng = random.Random(actor.user_id * 1000 + day.toordinal())
        barrier.wait(timeout=120)
        while slots := free(actor, day):
            t0 = time.perf_counter()
            try:
                with db_engine.session_scope(engine=engine) as session:
                    new_id = appointments.book_appointment(
                        session=session, actor=actor, department_id=department, doctor_id=doctor,
                        starts_at=rng.choice(slots), reason="Bench race")
            except Conflict as error:
                outcome = "taken" if error.message == appointments.SLOT_TAKEN else f"refused: {error.message}"
                new_id = None
            except HMSError as error:
                outcome, new_id = f"refused: {error.message}", None
            else:
                outcome = "booked"
            with lock:
                race.outcomes[outcome] += 1
                race.booking_latencies.append(time.perf_counter() - t0)
                if new_id is not None:
                    race.won.append(new_id)
            if new_id is not None:
                return

    with ThreadPoolExecutor(max_workers=clients) as pool:
        for day in _weekdays(days):
            race.slots += len(free(actors[0], day))
            barrier = threading.Barrier(clients)
            t0 = time.perf_counter()
            list(pool.map(lambda a, d=day, b=barrier: racer(a, d, b), actors))
            race.seconds += time.perf_counter() - t0
            race.days += 1
    race.check = check_bookings(engine, race.won)
    db_engine.use_engine(None)
    return race


@contextlib.contextmanager
def demo_database(kind: str, clients: int) -> Iterator[sa.Engine]:
    """A migrated database with the demo hospital (without its billing history)."""
    with contextlib.ExitStack() as stack:
        if kind == "sqlite":
            folder = Path(tempfile.mkdtemp(prefix="hms-bench-race-"))
            url = f"sqlite:///{folder / 'hms.db'}"
        else:
            url = stack.enter_context(postgres_database())
        upgrade(url)
        engine = db_engine.create_engine(url, pool_size=clients)
        stack.callback(engine.dispose)
        with db_engine.session_scope(engine=engine) as session:
            demo.seed_demo(session, billing_history=False)
        yield engine


# --- through the websocket -----------------------------------------------------------------


async def _ws_racer(url: str, email: str, department: int, doctor: int, day: date, race: Race,
                    prepared: list[ReflexSocket], start: asyncio.Event) -> None:
    tab = ReflexSocket(url)
    try:
        await tab.connect(timeout=60)
        result = await tab.call(LoginState, "log_in", {"form_data": {"email": email, "password": RACER_PASSWORD}},
                                pathname="/login", timeout=60)
        if not any(level == "success" for level, _ in result.toasts):
            raise RuntimeError(f"{email} could not log in: {result.toasts}")
        book = "/patient/book"
        await tab.call(BookingState, "choose_department", {"department_id": str(department)}, pathname=book)
        await tab.call(BookingState, "choose_doctor", {"doctor_id": str(doctor)}, pathname=book)
        prepared.append(tab)
        await start.wait()
        slots = (await tab.call(BookingState, "choose_day", {"day": day.isoformat()}, pathname=book)
                 ).state(BookingState).get("slots", [])
        rng = random.Random(email + day.isoformat())
        while slots:
            t0 = time.perf_counter()
            await tab.call(BookingState, "pick_slot", {"starts_at": rng.choice(slots)["starts_at"]}, pathname=book)
            result = await tab.call(BookingState, "request_appointment", {"form_data": {"reason": "Bench race"}},
                                    pathname=book)
            race.booking_latencies.append(time.perf_counter() - t0)
            if any(level == "success" for level, _ in result.toasts):
                race.outcomes["booked"] += 1
                return
            message = next((m for level, m in result.toasts if level == "error"), "no answer")
            race.outcomes["taken" if message == appointments.SLOT_TAKEN else f"refused: {message}"] += 1
            # A refused request reloads the page's free slots: the next try picks from those.
            slots = result.state(BookingState).get("slots", [])
    finally:
        await tab.close()


async def _ws_day(url: str, emails: list[str], department: int, doctor: int, day: date, race: Race) -> None:
    """Every tab logs in and opens the doctor's booking form; then all choose the day at once."""
    prepared: list[ReflexSocket] = []
    start = asyncio.Event()
    tasks = [asyncio.create_task(_ws_racer(url, e, department, doctor, day, race, prepared, start)) for e in emails]
    while len(prepared) < len(tasks) and not any(t.done() for t in tasks):
        await asyncio.sleep(0.05)
    t0 = time.perf_counter()
    start.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    race.seconds += time.perf_counter() - t0
    if errors := [r for r in results if isinstance(r, BaseException)]:
        raise errors[0]


def race_websocket(clients: int, days: int) -> Race:
    race = Race("websocket, one worker, SQLite", clients)
    with running_app(SETUPS["one"]) as server:
        engine = db_engine.create_engine(server.database_url)
        emails = _register_racers(engine, clients)
        department, doctor = _target(engine)
        for day in _weekdays(days):
            with db_engine.session_scope(engine=engine, write=False) as session:
                race.slots += len(free_slots_for(session, doctor, day))
            asyncio.run(_ws_day(server.url, emails, department, doctor, day, race))
            race.days += 1
        race.check = check_bookings(engine, race.outcomes["booked"])
        engine.dispose()
    return race


def report(races: list[Race]) -> str:
    rows = []
    for r in races:
        refused = sum(n for k, n in r.outcomes.items() if k.startswith("refused"))
        rows.append((r.setup, r.clients, r.days, r.slots, r.outcomes["booked"], r.outcomes["taken"], refused,
                     f"{r.outcomes['booked'] / r.seconds:.1f}", f"{r.attempts / r.seconds:.1f}",
                     f"{1000 * percentile(r.booking_latencies, 0.5):.0f} / {1000 * percentile(r.booking_latencies, 0.95):.0f}",
                     sum(r.check.values()) if r.check else "?"))
    out = [table(("setup", "clients", "days", "free slots", "booked", "told taken", "other refusals", "bookings/s",
                  "attempts/s", "attempt p50 / p95 ms", "double bookings and mismatches"), rows)]
    for r in races:
        out.append(f"- {r.setup}: " + ", ".join(f"{k} {v}" for k, v in r.check.items())
                   + "".join(f"; {k}: {v}" for k, v in r.outcomes.items() if k.startswith("refused")))
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=50, help="patients racing (more than a day's slots)")
    parser.add_argument("--days", type=int, default=5, help="days raced for, one after the other")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--websocket", action="store_true", help="also race through the real app's websocket")
    args = parser.parse_args()
    races = []
    for kind in args.databases.split(","):
        with demo_database(kind, args.clients) as engine:
            races.append(race_service(engine, f"service, threads, {kind}", args.clients, args.days))
            print(f"# {races[-1].setup}: {races[-1].outcomes['booked']} booked", flush=True)
    if args.websocket:
        races.append(race_websocket(args.clients, args.days))
    print(report(races))
    print(f"\n{machine_note()}")
    if any(sum(r.check.values()) for r in races):
        raise SystemExit("double bookings or mismatches: see above")


if __name__ == "__main__":
    main()

"""Crash safety of the real app server: killed with SIGKILL while users book, take payments and
dispense over the websocket, restarted, it has lost no write it told a user about and holds
nothing half-written.

The app's backend (granian serving ``hms_app.hms_app:app``, as ``reflex run --env prod`` runs
it, without the front end) runs on the test's database and data folder. Five clients speak
Reflex's event protocol to it, as the browser does (``tests/ws_client.py``): three patients
book through the booking form's handlers, accounts issue invoices and record payments in the
invoice dialog, the pharmacist dispenses from the queue's dispensing dialog, all at once. A
write counts as acknowledged when its success toast reached the client. The server's process
group is killed with SIGKILL a moment after a client sent a write, so writes are in flight;
then the test checks the database (``tests/services/crash_checks.py``) and starts a new server
on it, three times. ``pytestmark`` includes ``db``: ``make test-postgres`` runs it on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import subprocess
import threading
import time
import traceback
from collections import Counter as Tally
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from hms_app import settings
from hms_app.db.engine import session_scope
from hms_app.db.enums import InvoiceStatus, PrescriptionStatus, Role
from hms_app.db.models import (
    DoctorProfile,
    Invoice,
    InvoiceLine,
    Prescription,
    PrescriptionItem,
    User,
)
from hms_app.operations import demo
from hms_app.services.accounting import billing
from hms_app.services.booking import scheduling
from hms_app.services.core import localtime
from hms_app.state.appointments import BookingState
from hms_app.state.auth import LoginState
from hms_app.state.billing import AccountsInvoicesState
from hms_app.state.pharmacy import QUANTITY_PREFIX, PharmacyQueueState
from tests.e2e.server import free_port, launch_backend, private_web_dir, server_env
from tests.services.clinical_helpers import use_private_data_dir
from tests.services.crash_checks import (
    BOOKING_REASON,
    PATIENTS,
    PAYMENT_REFERENCE,
    acknowledged_writes_missing,
    half_writes,
    prepare_work,
)
from tests.ws_client import ReflexSocket, WsClient

pytestmark = [pytest.mark.db, pytest.mark.timeout(900)]

KILLS = 3
CALL_TIMEOUT = 30


@pytest.fixture(autouse=True)
def _private_data(monkeypatch, tmp_path):
    yield from use_private_data_dir(monkeypatch, tmp_path)


# --- clients that notice the server die --------------------------------------------------------------


class _DyingSocket(ReflexSocket):
    """A tab whose calls fail at once when the server goes away, instead of waiting out their timeout."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._calls: set[asyncio.Task] = set()
        self._sio.on("disconnect", self._gone, namespace="/_event")

    def _gone(self, *_reason) -> None:
        for task in self._calls:
            task.cancel()

    async def call(self, *args, **kwargs):
        task = asyncio.current_task()
        self._calls.add(task)
        try:
            return await super().call(*args, **kwargs)
        finally:
            self._calls.discard(task)


class _Tab(WsClient):
    @staticmethod
    async def _make(base_url: str, origin: str | None, token: str | None) -> ReflexSocket:
        return _DyingSocket(base_url, origin=origin, token=token)


# --- the server ----------------------------------------------------------------------------------


def start_backend(database_url: str, web_dir: Path, log: Path) -> tuple[subprocess.Popen, str]:
    """The app's backend on a free port, on the test's database and data folder; waits until it answers."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = server_env(settings.DATA_DIR, port, {
        "HMS_DATABASE_URL": database_url, "HMS_PUBLIC_URL": url, "HMS_WORKERS": "1",
        "REFLEX_WEB_WORKDIR": str(web_dir),
    })
    env.pop("HMS_DATA_KEY", None)  # the key file of the data folder, as in production
    return launch_backend(env, port, log), url


# --- the users -------------------------------------------------------------------------------------


class Person(threading.Thread):
    """One person at work on their own tabs until the server dies; collects acknowledgements."""

    def __init__(self, name: str, url: str, emails: list[str], work: Callable, rng: random.Random,
                 killed: threading.Event, sent: threading.Event) -> None:
        super().__init__(name=name, daemon=True)
        self.url, self.emails, self.work, self.rng = url, emails, work, rng
        self.killed, self.sent = killed, sent
        self.ready = threading.Event()
        self.acks: list[list[str]] = []
        self.pending: str | None = None
        """The write sent and not yet answered."""
        self.error = ""
        self.tabs: list[_Tab] = []

    def run(self) -> None:
        try:
            for email in self.emails:
                tab = _Tab(self.url).connect()
                self.tabs.append(tab)
                result = tab.call(LoginState, "log_in", {"form_data": {"email": email,
                                                                       "password": demo.DEMO_PASSWORD}},
                                  pathname="/login", timeout=CALL_TIMEOUT)
                assert [level for level, _ in result.toasts] == ["success"], result.toasts
            self.ready.set()
            while not self.killed.is_set():
                self.work(self)
        except BaseException:  # a failure after the kill is the kill; before it, a finding
            if not self.killed.is_set():
                self.error = traceback.format_exc()
        finally:
            self.ready.set()
            for tab in self.tabs:
                tab.close()

    def read(self, tab: _Tab, state: type, handler: str, payload: dict | None = None, **where) -> None:
        result = tab.call(state, handler, payload, timeout=CALL_TIMEOUT, **where)
        errors = [message for level, message in result.toasts if level == "error"]
        assert not errors, f"{handler}: {errors}"

    def write(self, tab: _Tab, state: type, handler: str, payload: dict | None, **where) -> str | None:
        """Send one write; the success toast's text, or None when the service refused it."""
        self.pending = handler
        self.sent.set()
        result = tab.call(state, handler, payload, timeout=CALL_TIMEOUT, **where)
        self.pending = None
        levels = [level for level, _ in result.toasts]
        if "success" in levels:
            return next(message for level, message in result.toasts if level == "success")
        assert levels == ["error"], f"{handler}: {result.toasts}"
        return None


def _db(engine: sa.Engine, query):
    with engine.connect() as conn:
        return conn.execute(query).all()


def patients_book(engine: sa.Engine, doctors: dict[int, int], patient_ids: list[int]) -> Callable[[Person], None]:
    counter = iter(range(1, 10**6))

    def work(user: Person) -> None:
        which = user.rng.randrange(len(user.tabs))
        tab, patient = user.tabs[which], patient_ids[which]
        doctor = user.rng.choice(sorted(doctors))
        day = localtime.local_today() + timedelta(days=user.rng.randint(1, scheduling.MAX_SEARCH_DAYS - 1))
        with session_scope(write=False, engine=engine) as s:
            free = scheduling.free_slots_for(s, doctor, day)
        if not free:
            return
        slot = user.rng.choice(free).starts_at.isoformat()
        page = {"pathname": "/patient/book"}
        user.read(tab, BookingState, "choose_department", {"department_id": str(doctors[doctor])}, **page)
        user.read(tab, BookingState, "choose_doctor", {"doctor_id": str(doctor)}, **page)
        user.read(tab, BookingState, "choose_day", {"day": day.isoformat()}, **page)
        tab.call(BookingState, "pick_slot", {"starts_at": slot}, timeout=CALL_TIMEOUT, **page)
        reason = f"{BOOKING_REASON} {user.name}-{next(counter)}"
        if user.write(tab, BookingState, "request_appointment", {"form_data": {"reason": reason}}, **page):
            user.acks.append(["booked", reason.replace(" ", "_"), str(patient), str(doctor), slot])

    return work


def accounts_bill(engine: sa.Engine) -> Callable[[Person], None]:
    counter = iter(range(1, 10**6))

    def work(user: Person) -> None:
        [tab] = user.tabs
        drafts = [i for (i,) in _db(engine, sa.select(Invoice.id).where(
            Invoice.status == InvoiceStatus.DRAFT.value, sa.exists().where(InvoiceLine.invoice_id == Invoice.id)))]
        open_ = _db(engine, sa.select(Invoice.id, Invoice.total_cents - Invoice.paid_cents)
                    .where(Invoice.status.in_(billing.OPEN_STATUSES)))
        page = {"pathname": "/accounts/invoices"}
        if drafts and (not open_ or user.rng.random() < 0.3):
            invoice_id = user.rng.choice(drafts)
            user.read(tab, AccountsInvoicesState, "open_invoice", {"invoice_id": invoice_id}, **page)
            if said := user.write(tab, AccountsInvoicesState, "issue", None, **page):
                user.acks.append(["issue", str(invoice_id), re.search(r"INV-\d{4}-\d{6}", said).group()])
        elif open_:
            invoice_id, balance = user.rng.choice(open_)
            cents = min(balance, user.rng.randint(100, 4000))
            reference = f"{PAYMENT_REFERENCE}{user.name}-{next(counter)}"
            user.read(tab, AccountsInvoicesState, "open_invoice", {"invoice_id": invoice_id}, **page)
            form = {"amount": f"{cents // 100}.{cents % 100:02d}", "method": "cash", "reference": reference}
            if user.write(tab, AccountsInvoicesState, "record_payment", {"form_data": form}, **page):
                user.acks.append(["pay", str(invoice_id), str(cents), reference])
        else:
            time.sleep(0.05)

    return work


def pharmacist_dispenses(engine: sa.Engine, prescriptions: list[int]) -> Callable[[Person], None]:
    def work(user: Person) -> None:
        [tab] = user.tabs
        owed = _db(engine, sa.select(PrescriptionItem.prescription_id, PrescriptionItem.id,
                                     PrescriptionItem.quantity - PrescriptionItem.dispensed_quantity,
                                     PrescriptionItem.dispensed_quantity)
                   .join(Prescription, Prescription.id == PrescriptionItem.prescription_id)
                   .where(Prescription.id.in_(prescriptions),
                          Prescription.status.in_([PrescriptionStatus.VERIFIED.value,
                                                   PrescriptionStatus.PARTLY_DISPENSED.value]),
                          PrescriptionItem.dispensed_quantity < PrescriptionItem.quantity))
        if not owed:
            time.sleep(0.05)
            return
        prescription_id, item_id, remaining, before = user.rng.choice(owed)
        units = user.rng.randint(1, min(3, remaining))
        page = {"pathname": "/pharmacy"}
        user.read(tab, PharmacyQueueState, "open_dispense", {"prescription_id": prescription_id}, **page)
        form = {f"{QUANTITY_PREFIX}{item_id}": str(units)}
        if user.write(tab, PharmacyQueueState, "dispense", {"form_data": form}, **page):
            # Only this user dispenses these prescriptions, so the item now holds before + units.
            user.acks.append(["dispense", str(prescription_id), str(item_id), str(before + units)])

    return work


# --- the test --------------------------------------------------------------------------------------


def test_a_killed_app_server_loses_no_acknowledged_write_and_leaves_nothing_half_written(
        seeded, actors, database_url, tmp_path):
    engine = seeded
    prescriptions = prepare_work(engine, actors)
    with engine.connect() as conn:
        doctors = dict(conn.execute(sa.select(DoctorProfile.user_id, DoctorProfile.department_id)).all())
        emails = dict(conn.execute(sa.select(User.email, User.id).where(User.role == Role.PATIENT.value)).all())
    bookers = PATIENTS[14:17]
    rng = random.Random()
    seed = rng.randrange(1 << 30)
    rng.seed(seed)
    log = tmp_path / "server.log"
    web_dir = private_web_dir(tmp_path)  # the project's npm packages hard-linked in: no install
    acks: list[list[str]] = []
    in_flight: list[list[str]] = []
    started: list[float] = []
    noticed: list[float] = []
    for kill in range(KILLS):
        engine.dispose()
        began = time.monotonic()
        process, url = start_backend(database_url, web_dir, log)
        started.append(time.monotonic() - began)
        killed, sent = threading.Event(), threading.Event()
        people = [
            Person(f"book{kill}", url, bookers, patients_book(engine, doctors, [emails[e] for e in bookers]),
                  random.Random(rng.random()), killed, sent),
            Person(f"bill{kill}", url, ["accounts@hms.example"], accounts_bill(engine), random.Random(rng.random()),
                  killed, sent),
            Person(f"dispense{kill}", url, ["pharmacy@hms.example"], pharmacist_dispenses(engine, prescriptions),
                  random.Random(rng.random()), killed, sent),
        ]
        try:
            for person in people:
                person.start()
            for person in people:
                assert person.ready.wait(120), f"{person.name} could not log in"
            time.sleep(rng.uniform(0.5, 2.0))
            sent.clear()
            assert sent.wait(60), f"nobody wrote:\n{log.read_text()[-3000:]}"
            time.sleep(rng.uniform(0, 0.02))  # the write reaches the server and starts its transaction
        finally:
            killed.set()
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        gone = time.monotonic()
        for person in people:
            person.join(CALL_TIMEOUT + 10)
            assert not person.is_alive(), f"{person.name} hung after the kill"
            assert not person.error, f"{person.name} failed before the kill (seed {seed}):\n{person.error}"
        round_acks = [ack for person in people for ack in person.acks]
        assert round_acks, f"the server (start {kill + 1}) acknowledged no write"
        acks += round_acks
        in_flight.append(sorted(f"{p.name}:{p.pending}" for p in people if p.pending))
        noticed.append(time.monotonic() - gone)
        with engine.connect() as conn:
            assert acknowledged_writes_missing(conn, acks) == [], f"seed {seed}, after kill {kill + 1}"
            assert half_writes(conn) == [], f"seed {seed}, after kill {kill + 1}"

    kinds = Tally(ack[0] for ack in acks)
    print(f"\n{engine.dialect.name}: {KILLS} kills of the server (seed {seed}), {len(acks)} acknowledged writes "
          f"{dict(kinds)}; writes in flight at each kill: {in_flight}; server starts took "
          f"{', '.join(f'{s:.1f}' for s in started)} s; the users noticed each kill within "
          f"{', '.join(f'{s:.2f}' for s in noticed)} s")
    assert set(kinds) == {"booked", "pay", "issue", "dispense"}, kinds
    assert sum(1 for writes in in_flight if writes) >= KILLS - 1, "the kills landed while writes were in flight"

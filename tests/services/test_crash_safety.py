"""Crash safety: a backend killed with SIGKILL in the middle of bookings, payments and
dispensings loses no write it acknowledged and leaves nothing half-written.

A writer process (``tests/services/crash_writer.py``) runs the services the app's handlers
run, in three threads at once, on the test's database, and says ``ack`` after each commit.
The test kills it with SIGKILL just after one of its transactions sends its first change (so
inside a transaction, with changes the database holds uncommitted), starts a new one on the
same database and data folder — a restart — and does that again and again. After every kill
it checks, with a fresh connection (``tests/services/crash_checks.py``):

* every acknowledged booking, payment, card payment, invoice number and dispensing is there;
* every invoice's total is its lines less the discount, its paid amount the sum of its
  payments, and its status fits them; invoice numbers are gap-free and their counter equals
  the count; the medical record number counter is ahead of every number given;
* each dispensing has its one stock movement and its one invoice line, each item's
  dispensed quantity is the sum of its dispensings, and every lot's ledger sums to its stock;
* no two active appointments of a doctor or of a patient overlap;
* the audit chain is intact, and each kind of write has exactly as many audit rows as rows.

Run on SQLite by ``make test`` and on PostgreSQL by ``make test-postgres`` (a database of
the test's own, created and dropped around it). A process kill loses nothing on SQLite
whatever ``synchronous`` says; what FULL adds (surviving a power cut) is not something a
test on one machine can show.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter as Tally
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from hms_app import settings
from hms_app.db.engine import session_scope
from hms_app.db.enums import Role
from hms_app.db.models import (
    Appointment,
    Dispensation,
    Invoice,
    InvoiceLine,
    Payment,
    PrescriptionItem,
    StockBatch,
)
from hms_app.operations import demo
from tests.services.clinical_helpers import use_private_data_dir
from tests.services.crash_checks import (
    PATIENTS,
    acknowledged_writes_missing,
    half_writes,
    prepare_work,
)

pytestmark = pytest.mark.db

ROOT = Path(__file__).resolve().parents[2]
KILLS = 6
MAX_KILLS = 18


@pytest.fixture(autouse=True)
def _private_data(monkeypatch, tmp_path):
    yield from use_private_data_dir(monkeypatch, tmp_path)


@pytest.fixture
def busy_hospital(seeded, actors, tmp_path) -> tuple[sa.Engine, Path]:
    """The demo hospital with work for the writer, and the writer's settings."""
    prescriptions = prepare_work(seeded, actors)
    config = tmp_path / "writer.json"
    config.write_text(json.dumps({
        "patients": PATIENTS, "accounts": "accounts@hms.example", "pharmacist": "pharmacy@hms.example",
        "password": demo.DEMO_PASSWORD, "prescriptions": prescriptions, "seconds": 120,
    }))
    return seeded, config


@dataclass
class Run:
    """One writer process, from its start to the kill."""

    acks: list[list[str]] = field(default_factory=list)
    lines: list[list[str]] = field(default_factory=list)
    in_flight: list[str] = field(default_factory=list)
    """The threads that had begun a write and not finished it when the process died."""
    uncommitted: list[str] = field(default_factory=list)
    """Of those, the ones whose transaction had already sent an INSERT, UPDATE or DELETE."""


def run_until_killed(config: Path, database_url: str, rng: random.Random, tag: str, log: Path) -> Run:
    """Start a writer, let it work a random while, then SIGKILL it just after a transaction's first change."""
    settings_for_run = json.loads(config.read_text()) | {"tag": tag, "seed": rng.randrange(1 << 30)}
    run_config = config.with_name(f"writer-{tag}.json")
    run_config.write_text(json.dumps(settings_for_run))
    env = {k: v for k, v in os.environ.items() if k != "HMS_DATA_KEY"}
    # The same database and data folder (so the same key file) as the app it stands for.
    env.update(HMS_DATABASE_URL=database_url, HMS_DATA_DIR=str(settings.DATA_DIR), HMS_WORKERS="1",
               PYTHONPATH=str(ROOT))
    run, ready, wrote = Run(), threading.Event(), threading.Event()
    with log.open("ab") as stderr:
        process = subprocess.Popen([sys.executable, "-m", "tests.services.crash_writer", str(run_config)],
                                   cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=stderr)

    def read() -> None:
        for raw in process.stdout:
            words = raw.decode().split()
            run.lines.append(words)
            if words[:1] == ["ready"]:
                ready.set()
            elif words[:1] == ["wrote"]:
                wrote.set()
            elif words[:1] == ["ack"]:
                run.acks.append(words)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        assert ready.wait(120), f"the writer did not start:\n{log.read_text()[-3000:]}"
        time.sleep(rng.uniform(0.4, 1.6))
        wrote.clear()
        assert wrote.wait(20), f"the writer stopped writing:\n{log.read_text()[-3000:]}"
        time.sleep(rng.uniform(0, 0.004))
        assert process.poll() is None, f"the writer died by itself:\n{log.read_text()[-3000:]}"
        os.kill(process.pid, signal.SIGKILL)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        reader.join()
    assert process.returncode == -signal.SIGKILL, f"the writer failed:\n{log.read_text()[-3000:]}"
    last: dict[str, str] = {}
    for words in run.lines:
        if words[0] in ("begin", "wrote", "ack", "refused"):
            last[words[1]] = words[0]
    run.in_flight = sorted(thread for thread, word in last.items() if word in ("begin", "wrote"))
    run.uncommitted = sorted(thread for thread, word in last.items() if word == "wrote")
    return run


# --- the test --------------------------------------------------------------------------------------


def test_a_killed_backend_loses_no_acknowledged_write_and_leaves_nothing_half_written(busy_hospital, database_url,
                                                                                      tmp_path):
    engine, config = busy_hospital
    rng = random.Random()
    seed = rng.randrange(1 << 30)
    rng.seed(seed)
    log = tmp_path / "writer.log"
    acks: list[list[str]] = []
    runs: list[Run] = []
    kill = 0
    # At least KILLS kills, and more (up to MAX_KILLS) until half of KILLS landed inside a
    # transaction: on a busy machine the writer's timing shifts and fewer kills land there.
    while kill < KILLS or (sum(1 for r in runs if r.uncommitted) < KILLS // 2 and kill < MAX_KILLS):
        engine.dispose()  # the killed writer was the database's only user: the next one recovers it
        run = run_until_killed(config, database_url, rng, f"k{kill}", log)
        runs.append(run)
        acks += [words[2:] for words in run.acks]
        with engine.connect() as conn:
            assert acknowledged_writes_missing(conn, acks) == [], f"seed {seed}, after kill {kill + 1}"
            assert half_writes(conn) == [], f"seed {seed}, after kill {kill + 1}"
        kill += 1

    kinds = Tally(words[0] for words in acks)
    print(f"\n{engine.dialect.name}: {kill} kills (seed {seed}), {len(acks)} acknowledged writes {dict(kinds)}; "
          f"calls in flight at each kill: {[r.in_flight for r in runs]}, of which with changes sent and not "
          f"committed: {[r.uncommitted for r in runs]}")
    assert all(r.acks for r in runs[1:]), "every restarted writer got writes through"
    assert set(kinds) == {"book", "pay", "paycard", "issue", "dispense"}, kinds
    assert sum(1 for r in runs if r.uncommitted) >= KILLS // 2, f"fewer than {KILLS // 2} of {kill} kills landed inside a transaction"


# --- the checks themselves --------------------------------------------------------------------------


def _a_payment_without_its_invoice(s: Session, ids: dict) -> None:
    s.add(Payment(invoice_id=ids["invoice"], amount_cents=500, method="cash", reference="crash-half",
                  recorded_by=ids["accounts"]))


def _a_charge_without_its_invoice_total(s: Session, ids: dict) -> None:
    s.add(InvoiceLine(invoice_id=ids["invoice"], kind="consultation", source_type="appointment", source_id=10**9,
                      description="Half-billed consultation", unit_price_cents=900, amount_cents=900))


def _a_dispensation_without_stock_or_charge(s: Session, ids: dict) -> None:
    s.add(Dispensation(prescription_id=ids["prescription"], prescription_item_id=ids["item"], batch_id=ids["batch"],
                       quantity=2, unit_price_cents=125, dispensed_by=ids["pharmacist"]))


def _a_booking_without_its_audit_row(s: Session, ids: dict) -> None:
    starts = datetime.fromisoformat("2031-01-06T09:00:00+00:00")
    s.add(Appointment(patient_id=ids["patient"], doctor_id=ids["doctor"], department_id=ids["department"],
                      starts_at=starts, ends_at=starts.replace(minute=20), reason="Crash test half"))


def _a_number_without_its_counter(s: Session, ids: dict) -> None:
    invoice = s.get(Invoice, ids["invoice"])
    year, sequence = invoice.number.split("-")[1:]
    invoice.number = f"INV-{year}-{int(sequence) + 100:06d}"


def test_the_checks_find_what_half_a_transaction_would_leave(busy_hospital, actors):
    """The checks above are not vacuous: each half of a write, committed alone, is caught."""
    engine, config = busy_hospital
    with engine.connect() as conn:
        prescription = json.loads(config.read_text())["prescriptions"][0]
        item, medicine = conn.execute(sa.select(PrescriptionItem.id, PrescriptionItem.medicine_id)
                                      .where(PrescriptionItem.prescription_id == prescription)).first()
        ids = {
            "invoice": conn.execute(sa.select(sa.func.min(Invoice.id))).scalar_one(),
            "prescription": prescription, "item": item,
            "batch": conn.execute(sa.select(sa.func.min(StockBatch.id)).where(StockBatch.medicine_id == medicine)
                                  ).scalar_one(),
            "accounts": actors[Role.ACCOUNTS].user_id, "pharmacist": actors[Role.PHARMACY].user_id,
            "patient": actors[Role.PATIENT].user_id, "doctor": actors[Role.DOCTOR].user_id,
            "department": conn.execute(sa.select(Appointment.department_id)
                                       .where(Appointment.doctor_id == actors[Role.DOCTOR].user_id)).first()[0],
        }
        found = set(half_writes(conn))
    assert found == set()
    for corrupt in (_a_payment_without_its_invoice, _a_charge_without_its_invoice_total,
                    _a_dispensation_without_stock_or_charge, _a_booking_without_its_audit_row,
                    _a_number_without_its_counter):
        with session_scope(engine=engine) as s:
            corrupt(s, ids)
            s.commit()
        with engine.connect() as conn:
            now = set(half_writes(conn))
        assert now - found, f"{corrupt.__name__} went unnoticed"
        found = now

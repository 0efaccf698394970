"""A backend at work, to be killed: books, takes payments and dispenses in a loop, and says so.

``test_crash_safety`` starts this as a process of its own (``python -m tests.services.crash_writer
CONFIG``) on the test's database and kills it with SIGKILL while it works. Three threads run
what the app's handlers run, each call in a session of its own as a handler does:

* ``book``: a patient books a free slot with a doctor (``appointments.book_appointment``);
* ``money``: accounts issue a draft invoice (``billing.issue_invoice``), record a payment
  (``billing.record_payment``), or a patient pays by card (``billing.pay_online``);
* ``dispense``: the pharmacist dispenses a few units of a verified prescription (``pharmacy.dispense``).

Each writes one line on stdout, unbuffered, before a call (``begin <thread> <kind>``), one when
the call's transaction has sent its first INSERT, UPDATE or DELETE (``wrote <thread>``: from
then until the commit, a kill leaves uncommitted changes behind), and one after the call
returned, that is after its commit (``ack <thread> <kind> <fields>``, or ``refused`` for a
refusal the service meant, like a slot just taken). An acknowledged write is one whose
``ack`` line was written: it must be in the database after the kill.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import sys
import threading
import time
import traceback
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from hms_app.db.engine import session_scope
from hms_app.db.enums import InvoiceStatus, PrescriptionStatus
from hms_app.db.models import DoctorProfile, Invoice, InvoiceLine, Prescription, PrescriptionItem
from hms_app.services.accounting import billing
from hms_app.services.administration import auth
from hms_app.services.booking import appointments, scheduling
from hms_app.services.core import localtime
from hms_app.services.core.actor import Actor, Anonymous
from hms_app.services.core.errors import Conflict, ValidationError
from hms_app.services.medicines import pharmacy
from tests.services.crash_checks import BOOKING_REASON, PAYMENT_REFERENCE

CARD = "4242 4242 4242 4242"
IP = "198.51.100.40"
_out = threading.Lock()
_WRITES = ("INSERT", "UPDATE", "DELETE")


def say(*words: object) -> None:
    line = " ".join(str(w) for w in words) + "\n"
    with _out:
        os.write(1, line.encode())  # one write per line, unbuffered: what is said is on its way


@sa.event.listens_for(sa.Engine, "after_cursor_execute")
def _said_wrote(conn, _cursor, statement, _parameters, _context, _many) -> None:
    if threading.current_thread() is threading.main_thread():
        return  # the logins before the work starts
    if not conn.info.get("wrote") and statement.lstrip()[:6].upper() in _WRITES:
        conn.info["wrote"] = True
        say("wrote", threading.current_thread().name)


@sa.event.listens_for(sa.Engine, "commit")
@sa.event.listens_for(sa.Engine, "rollback")
def _transaction_over(conn) -> None:
    conn.info.pop("wrote", None)


def log_in(email: str, password: str) -> Actor:
    with session_scope() as s:
        token = auth.login(session=s, visitor=Anonymous(IP), email=email, password=password).token
    with session_scope() as s:
        return auth.resolve_session(session=s, token=token, ip_address=IP)


def attempt(thread: str, kind: str, work: Callable[[], tuple]) -> None:
    say("begin", thread, kind)
    try:
        fields = work()
    except (Conflict, ValidationError) as refusal:
        say("refused", thread, kind, refusal.message.replace("\n", " ")[:120])
        return
    say("ack", thread, kind, *fields)


def book_forever(rng: random.Random, tag: str, patients: list[Actor], doctors: dict[int, int]) -> None:
    count = 0
    while True:
        patient, doctor = rng.choice(patients), rng.choice(sorted(doctors))
        day = localtime.local_today() + timedelta(days=rng.randint(1, scheduling.MAX_SEARCH_DAYS - 1))
        with session_scope(write=False) as s:
            free = scheduling.free_slots_for(s, doctor, day)
        if not free:
            continue
        slot = rng.choice(free)
        count += 1

        def book(slot=slot, patient=patient, doctor=doctor, count=count) -> tuple:
            with session_scope() as s:
                appointment_id = appointments.book_appointment(
                    session=s, actor=patient, department_id=doctors[doctor], doctor_id=doctor,
                    starts_at=slot.starts_at.isoformat(), reason=f"{BOOKING_REASON} {tag}-{count}")
            return appointment_id, patient.user_id, doctor, slot.starts_at.isoformat()

        attempt("book", "book", book)


def money_forever(rng: random.Random, tag: str, accounts: Actor, patients: dict[int, Actor]) -> None:
    count = 0
    expiry = f"12/{(localtime.local_today().year + 2) % 100:02d}"
    while True:
        with session_scope(write=False) as s:
            drafts = s.execute(sa.select(Invoice.id).where(
                Invoice.status == InvoiceStatus.DRAFT.value,
                sa.exists().where(InvoiceLine.invoice_id == Invoice.id))).scalars().all()
            open_ = s.execute(sa.select(Invoice.id, Invoice.patient_id, Invoice.total_cents - Invoice.paid_cents)
                              .where(Invoice.status.in_(billing.OPEN_STATUSES))).all()
        count += 1
        if drafts and (not open_ or rng.random() < 0.3):
            invoice_id = rng.choice(drafts)

            def issue(invoice_id=invoice_id) -> tuple:
                with session_scope() as s:
                    return invoice_id, billing.issue_invoice(session=s, actor=accounts, invoice_id=invoice_id)

            attempt("money", "issue", issue)
        elif open_:
            invoice_id, patient_id, balance = rng.choice(open_)
            if patient_id in patients and rng.random() < 0.3:
                key = secrets.token_urlsafe(24)

                def pay_by_card(invoice_id=invoice_id, patient=patients[patient_id], key=key) -> tuple:
                    with session_scope() as s:
                        billing.pay_online(session=s, actor=patient, invoice_id=invoice_id, card_number=CARD,
                                           expiry=expiry, cvc="123", idempotency_key=key)
                    return invoice_id, key

                attempt("money", "paycard", pay_by_card)
            else:
                cents = min(balance, rng.randint(100, 4000))
                reference = f"{PAYMENT_REFERENCE}{tag}-{count}"

                def pay(invoice_id=invoice_id, cents=cents, reference=reference) -> tuple:
                    with session_scope() as s:
                        billing.record_payment(session=s, actor=accounts, invoice_id=invoice_id,
                                               amount=f"{cents // 100}.{cents % 100:02d}", method="cash",
                                               reference=reference)
                    return invoice_id, cents, reference

                attempt("money", "pay", pay)
        else:
            time.sleep(0.05)


def dispense_forever(rng: random.Random, pharmacist: Actor, prescription_ids: list[int]) -> None:
    while True:
        with session_scope(write=False) as s:
            owed = s.execute(
                sa.select(PrescriptionItem.prescription_id, PrescriptionItem.id,
                          PrescriptionItem.quantity - PrescriptionItem.dispensed_quantity,
                          PrescriptionItem.dispensed_quantity)
                .join(Prescription, Prescription.id == PrescriptionItem.prescription_id)
                .where(Prescription.id.in_(prescription_ids),
                       Prescription.status.in_([PrescriptionStatus.VERIFIED.value,
                                                PrescriptionStatus.PARTLY_DISPENSED.value]),
                       PrescriptionItem.dispensed_quantity < PrescriptionItem.quantity)).all()
        if not owed:
            time.sleep(0.05)
            continue
        prescription_id, item_id, remaining, before = rng.choice(owed)
        units = rng.randint(1, min(3, remaining))

        def dispense(prescription_id=prescription_id, item_id=item_id, units=units, before=before) -> tuple:
            with session_scope() as s:
                pharmacy.dispense(session=s, actor=pharmacist, prescription_id=prescription_id,
                                  quantities={str(item_id): str(units)})
            # Only this thread dispenses these prescriptions, so it knows what the item holds now.
            return prescription_id, item_id, before + units

        attempt("dispense", "dispense", dispense)


def guarded(work: Callable[[], None]) -> Callable[[], None]:
    """A thread that fails unexpectedly stops the whole process with exit code 3."""

    def run() -> None:
        try:
            work()
        except BaseException:
            traceback.print_exc()
            sys.stderr.flush()
            os._exit(3)

    return run


def main() -> None:
    config = json.loads(Path(sys.argv[1]).read_text())
    seed, tag, password = config["seed"], config["tag"], config["password"]
    patients = [log_in(email, password) for email in config["patients"]]
    accounts, pharmacist = log_in(config["accounts"], password), log_in(config["pharmacist"], password)
    with session_scope(write=False) as s:
        doctors = dict(s.execute(sa.select(DoctorProfile.user_id, DoctorProfile.department_id)).all())
    threads = [
        threading.Thread(name="book", daemon=True,
                         target=guarded(lambda: book_forever(random.Random(seed), tag, patients, doctors))),
        threading.Thread(name="money", daemon=True,
                         target=guarded(lambda: money_forever(random.Random(seed + 1), tag, accounts,
                                                              {p.user_id: p for p in patients}))),
        threading.Thread(name="dispense", daemon=True,
                         target=guarded(lambda: dispense_forever(random.Random(seed + 2), pharmacist,
                                                                 config["prescriptions"]))),
    ]
    say("ready")
    for thread in threads:
        thread.start()
    time.sleep(config["seconds"])  # the test kills it long before; this only bounds a forgotten one
    say("done")
    os._exit(0)


if __name__ == "__main__":
    main()

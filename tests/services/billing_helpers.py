"""Helpers for the billing tests: charges made the way the services make them, invoices issued
and paid through accounts, a second accounts clerk, card details, and what the database holds.

A charge for a test's set-up is a completed consultation billed through
``billing.charge_consultation`` itself (the appointment row is written directly, since the
completing service refuses appointments that have not started); the tests of the hooks
complete real appointments, lab tests and dispensings instead.
"""

from __future__ import annotations

import itertools
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from hms_app.db.engine import session_scope
from hms_app.db.enums import AppointmentStatus
from hms_app.db.models import (
    Appointment,
    Counter,
    DoctorProfile,
    Invoice,
    InvoiceLine,
    Payment,
)
from hms_app.services.accounting import billing
from hms_app.services.administration import auth, users
from hms_app.services.core.actor import Actor
from hms_app.services.core.localtime import local_today
from tests.services.appointment_helpers import call, user_id
from tests.services.helpers import STRONG_PASSWORD, login_token, resolve

HART = "amelia.hart@hms.example"  # Cardiology, fee 150.00
MEHTA = "rohan.mehta@hms.example"  # Cardiology, fee 140.00
ORTEGA = "lucas.ortega@hms.example"  # Orthopedics, fee 120.00
CHEN = "olivia.chen@hms.example"  # General Medicine, fee 60.00

JAMES = "james.smith@patients.example"  # Northwind Health, policy POL-100001
AISHA = "aisha.khan@patients.example"  # Contoso Mutual, policy POL-100002

VALID_CARD = "4242 4242 4242 4242"
OTHER_VALID_CARD = "5555-5555-5555-4444"
CVC = "123"

_starts = itertools.count(1)


def expiry(years_ahead: int = 2) -> str:
    """A card expiry (MM/YY) ``years_ahead`` years from now."""
    return f"12/{(local_today().year + years_ahead) % 100:02d}"


def completed_appointment(engine: sa.Engine, doctor_email: str, patient_id: int) -> Appointment:
    """A completed appointment in the past, written directly (each at a start of its own)."""
    doctor_id = user_id(engine, doctor_email)
    starts = datetime(2026, 1, 5, 9, 0, tzinfo=UTC) - timedelta(hours=next(_starts))
    with session_scope(engine=engine) as s:
        department = s.get(DoctorProfile, doctor_id).department_id
        row = Appointment(patient_id=patient_id, doctor_id=doctor_id, department_id=department, starts_at=starts,
                          ends_at=starts + timedelta(minutes=20), status=AppointmentStatus.COMPLETED,
                          reason="Billing test")
        s.add(row)
        s.commit()
        return row


def charge(engine: sa.Engine, patient_id: int, *doctor_emails: str) -> int:
    """Bill one consultation per doctor to the patient; returns the id of the draft they land on."""
    for email in doctor_emails or (HART,):
        appointment = completed_appointment(engine, email, patient_id)
        with session_scope(engine=engine) as s:
            assert billing.charge_consultation(s, appointment) is not None
            s.commit()
    draft = draft_of(engine, patient_id)
    assert draft is not None
    return draft.id


def issued(engine: sa.Engine, accounts: Actor, patient_id: int, *doctor_emails: str) -> int:
    """An issued invoice of the patient's consultations with the doctors (Dr Hart by default)."""
    invoice_id = charge(engine, patient_id, *doctor_emails)
    call(engine, billing.issue_invoice, actor=accounts, invoice_id=invoice_id)
    return invoice_id


def fee(engine: sa.Engine, doctor_email: str) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(DoctorProfile.consultation_fee_cents)
                            .where(DoctorProfile.user_id == user_id(engine, doctor_email))).scalar_one()


def invoice(engine: sa.Engine, invoice_id: int) -> Invoice:
    with session_scope(write=False, engine=engine) as s:
        return s.get(Invoice, invoice_id)


def invoices_of(engine: sa.Engine, patient_id: int) -> list[Invoice]:
    with session_scope(write=False, engine=engine) as s:
        return list(s.execute(sa.select(Invoice).where(Invoice.patient_id == patient_id).order_by(Invoice.id)).scalars())


def draft_of(engine: sa.Engine, patient_id: int) -> Invoice | None:
    drafts = [i for i in invoices_of(engine, patient_id) if str(i.status) == "draft"]
    assert len(drafts) <= 1, "more than one draft invoice for one patient"
    return drafts[0] if drafts else None


def lines(engine: sa.Engine, invoice_id: int) -> list[InvoiceLine]:
    with session_scope(write=False, engine=engine) as s:
        return list(s.execute(sa.select(InvoiceLine).where(InvoiceLine.invoice_id == invoice_id)
                              .order_by(InvoiceLine.id)).scalars())


def all_lines(engine: sa.Engine) -> list[tuple[str, int, int]]:
    """(source type, source id, amount) of every invoice line in the database."""
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(InvoiceLine.source_type, InvoiceLine.source_id,
                                                         InvoiceLine.amount_cents).order_by(InvoiceLine.id))]


def payments(engine: sa.Engine, invoice_id: int) -> list[Payment]:
    with session_scope(write=False, engine=engine) as s:
        return list(s.execute(sa.select(Payment).where(Payment.invoice_id == invoice_id).order_by(Payment.id)).scalars())


def amounts_paid(engine: sa.Engine, invoice_id: int) -> list[tuple[int, str]]:
    """(signed cents, method) of every payment of the invoice, in order."""
    return [(p.amount_cents, str(p.method)) for p in payments(engine, invoice_id)]


def money(engine: sa.Engine, invoice_id: int) -> tuple[int, int, int, int, str]:
    """(subtotal, discount, total, paid, status) of the invoice."""
    row = invoice(engine, invoice_id)
    return row.subtotal_cents, row.discount_cents, row.total_cents, row.paid_cents, str(row.status)


def counter_value(engine: sa.Engine, name: str) -> int | None:
    with engine.connect() as conn:
        return conn.execute(sa.select(Counter.value).where(Counter.name == name)).scalar_one_or_none()


def year_prefix() -> str:
    return f"INV-{local_today().year}-"


def new_accounts_clerk(engine: sa.Engine, admin: Actor, email: str = "jo.ledger@hms.example") -> Actor:
    """A second accounts account, created by the admin and past its first-login password change."""
    call(engine, users.create_staff_user, actor=admin, form=users.StaffForm(
        full_name="Jo Ledger", email=email, role="accounts", password=STRONG_PASSWORD))
    token = login_token(engine, email, STRONG_PASSWORD)
    call(engine, auth.change_password, actor=resolve(engine, token), current_password=STRONG_PASSWORD,
         new_password=STRONG_PASSWORD + "x")
    return resolve(engine, token)


def all_at_once(*works):
    """Run each work in its own thread, released together by a barrier; results or errors."""
    barrier = threading.Barrier(len(works))

    def run(work):
        barrier.wait(timeout=30)
        try:
            return work()
        except Exception as error:  # collected and checked by the test
            return error

    with ThreadPoolExecutor(max_workers=len(works)) as pool:
        return list(pool.map(run, works))


def in_own_session(service, **kwargs):
    """A service call in a session and connection of its own, as a handler on another worker runs it."""
    def work():
        with session_scope() as s:
            return service(session=s, **kwargs)
    return work

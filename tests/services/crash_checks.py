"""What must hold after a crash, and the work for the process that is crashed.

Shared by ``test_crash_safety`` (a process running the services, killed) and
``tests/e2e/test_server_crash.py`` (the app server itself, killed while clients use it).

An acknowledgement is a list of words: the kind of write, then what identifies it:

* ``book APPOINTMENT_ID PATIENT DOCTOR STARTS_AT`` or ``booked REASON PATIENT DOCTOR STARTS_AT``
  (the reason with ``_`` for spaces, unique to the booking);
* ``pay INVOICE CENTS REFERENCE``, ``paycard INVOICE IDEMPOTENCY_KEY``, ``issue INVOICE NUMBER``;
* ``dispense PRESCRIPTION ITEM DISPENSED_AFTER`` (the item's dispensed quantity after the call).
"""

from __future__ import annotations

import re
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from hms_app.db.engine import session_scope
from hms_app.db.enums import ACTIVE_APPOINTMENT_STATUSES, InvoiceStatus, PrescriptionStatus, Role
from hms_app.db.models import (
    Appointment,
    AuditEvent,
    Counter,
    Dispensation,
    Invoice,
    InvoiceLine,
    PatientProfile,
    Payment,
    Prescription,
    PrescriptionItem,
    StockBatch,
    StockMovement,
    User,
)
from hms_app.operations import demo
from hms_app.services.core import audit
from hms_app.services.core.actor import Actor
from hms_app.services.medicines import inventory
from tests.services.billing_helpers import issued
from tests.services.clinical_helpers import open_visit, with_reference_data
from tests.services.pharmacy_helpers import in_days, new_medicine, prescribe, receive, verify

PATIENTS = [email for role, email, _ in demo.demo_accounts() if role == "patient"]
BOOKING_REASON = "Crash test"
"""Every booking made by the crashed process starts its reason with this."""
PAYMENT_REFERENCE = "crash-"
"""Every payment recorded by the crashed process starts its reference with this."""


def prepare_work(engine: sa.Engine, actors: dict[Role, Actor]) -> list[int]:
    """Stock, six verified prescriptions to dispense and eight issued invoices to pay; the prescriptions' ids.

    The demo hospital (``seeded``) gives the patients and the doctors' hours to book.
    """
    with_reference_data(engine)
    doctor, pharmacist, accounts = actors[Role.DOCTOR], actors[Role.PHARMACY], actors[Role.ACCOUNTS]
    medicines = [new_medicine(engine, pharmacist, price=price) for price in ("1.25", "3.40")]
    for medicine in medicines:
        for lot, days in (("A", 60), ("B", 200), ("C", 400)):
            receive(engine, pharmacist, medicine, f"CRASH-{medicine}-{lot}", in_days(days), 300)
    with engine.connect() as conn:
        patient_ids = dict(conn.execute(sa.select(User.email, User.id).where(User.role == Role.PATIENT.value)).all())
    prescriptions = []
    for email in PATIENTS[:6]:
        encounter_id = open_visit(engine, doctor, patient_ids[email])
        prescriptions.append(verify(engine, pharmacist, prescribe(
            engine, doctor, encounter_id, (medicines[0], 60), (medicines[1], 60))))
    for email in PATIENTS[6:14]:
        issued(engine, accounts, patient_ids[email])
    return prescriptions


def acknowledged_writes_missing(conn: sa.Connection, acks: list[list[str]]) -> list[str]:
    missing = []
    for kind, *fields in acks:
        if kind in ("book", "booked"):
            key, patient_id, doctor_id, starts_at = fields
            which = Appointment.id == int(key) if kind == "book" else Appointment.reason == key.replace("_", " ")
            rows = conn.execute(sa.select(Appointment.patient_id, Appointment.doctor_id, Appointment.starts_at,
                                          Appointment.status).where(which)).all()
            row = rows[0] if len(rows) == 1 else None
            found = row is not None and (row.patient_id, row.doctor_id, row.status) == (
                int(patient_id), int(doctor_id), "requested") and (
                row.starts_at.replace(tzinfo=None) == datetime.fromisoformat(starts_at).replace(tzinfo=None))
        elif kind == "pay":
            invoice_id, cents, reference = fields
            found = conn.execute(sa.select(Payment.invoice_id, Payment.amount_cents)
                                 .where(Payment.reference == reference)).all() == [(int(invoice_id), int(cents))]
        elif kind == "paycard":
            invoice_id, key = fields
            found = conn.execute(sa.select(Payment.invoice_id).where(Payment.idempotency_key == key)
                                 ).scalar_one_or_none() == int(invoice_id)
        elif kind == "issue":
            invoice_id, number = fields
            found = conn.execute(sa.select(Invoice.number).where(Invoice.id == int(invoice_id))).scalar_one() == number
        elif kind == "dispense":
            _prescription_id, item_id, dispensed = fields
            found = conn.execute(sa.select(PrescriptionItem.dispensed_quantity)
                                 .where(PrescriptionItem.id == int(item_id))).scalar_one() >= int(dispensed)
        else:
            raise AssertionError(f"unknown acknowledgement {kind}")
        if not found:
            missing.append(" ".join([kind, *fields]))
    return missing


def half_writes(conn: sa.Connection) -> list[str]:
    """Every invariant a half-written transaction would break, as sentences; empty when whole."""
    found = []
    scalar = lambda query: conn.execute(query).scalar_one()  # noqa: E731
    # Invoices: total = lines less discount, paid = payments, a status that fits, numbers gap-free.
    lines = dict(conn.execute(sa.select(InvoiceLine.invoice_id, sa.func.sum(InvoiceLine.amount_cents))
                              .group_by(InvoiceLine.invoice_id)).all())
    paid = dict(conn.execute(sa.select(Payment.invoice_id, sa.func.sum(Payment.amount_cents))
                             .group_by(Payment.invoice_id)).all())
    numbers = []
    for invoice in conn.execute(sa.select(Invoice)).all():
        if invoice.subtotal_cents != lines.get(invoice.id, 0):
            found.append(f"invoice {invoice.id}: subtotal {invoice.subtotal_cents}, lines {lines.get(invoice.id, 0)}")
        if invoice.total_cents != invoice.subtotal_cents - invoice.discount_cents:
            found.append(f"invoice {invoice.id}: total is not subtotal less discount")
        if invoice.paid_cents != paid.get(invoice.id, 0):
            found.append(f"invoice {invoice.id}: paid {invoice.paid_cents}, payments {paid.get(invoice.id, 0)}")
        expected = {InvoiceStatus.DRAFT: invoice.number is None and invoice.paid_cents == 0,
                    InvoiceStatus.ISSUED: invoice.paid_cents == 0 < invoice.total_cents,
                    InvoiceStatus.PARTLY_PAID: 0 < invoice.paid_cents < invoice.total_cents,
                    InvoiceStatus.PAID: invoice.paid_cents == invoice.total_cents,
                    InvoiceStatus.VOID: invoice.paid_cents == 0}[InvoiceStatus(invoice.status)]
        if not expected:
            found.append(f"invoice {invoice.id}: status {invoice.status} with {invoice.paid_cents} of "
                         f"{invoice.total_cents} paid")
        if invoice.number:
            numbers.append(invoice.number)
    for year in {n.split("-")[1] for n in numbers}:
        taken = sorted(int(n.split("-")[2]) for n in numbers if n.split("-")[1] == year)
        counter = scalar(sa.select(Counter.value).where(Counter.name == f"invoice-{year}"))
        if taken != list(range(1, len(taken) + 1)) or counter != len(taken):
            found.append(f"invoice numbers of {year}: {len(taken)} given, highest {taken[-1]}, counter {counter}")
    mrns = [int(m.split("-")[1]) for m in conn.execute(sa.select(PatientProfile.mrn)).scalars() if m]
    if mrns and scalar(sa.select(Counter.value).where(Counter.name == "mrn")) < max(mrns):
        found.append("the medical record number counter is behind the numbers given")
    # Dispensing: each dispensation has its one ledger row and its one invoice line.
    per_item = dict(conn.execute(sa.select(Dispensation.prescription_item_id, sa.func.sum(Dispensation.quantity))
                                 .group_by(Dispensation.prescription_item_id)).all())
    for item_id, dispensed in conn.execute(sa.select(PrescriptionItem.id, PrescriptionItem.dispensed_quantity)).all():
        if dispensed != per_item.get(item_id, 0):
            found.append(f"prescription item {item_id}: {dispensed} dispensed, dispensations say "
                         f"{per_item.get(item_id, 0)}")
    for prescription in conn.execute(sa.select(Prescription.id, Prescription.status)).all():
        owed = conn.execute(sa.select(PrescriptionItem.quantity, PrescriptionItem.dispensed_quantity)
                            .where(PrescriptionItem.prescription_id == prescription.id)).all()
        if prescription.status == PrescriptionStatus.DISPENSED and any(d < q for q, d in owed):
            found.append(f"prescription {prescription.id}: dispensed with units still owed")
        if prescription.status == PrescriptionStatus.PARTLY_DISPENSED and not any(d for _, d in owed):
            found.append(f"prescription {prescription.id}: partly dispensed with nothing dispensed")
    movement = aliased(StockMovement)
    line = aliased(InvoiceLine)
    unmatched = scalar(sa.select(sa.func.count()).select_from(Dispensation).where(
        ~sa.exists().where(movement.dispensation_id == Dispensation.id, movement.quantity == -Dispensation.quantity)
        | ~sa.exists().where(line.source_type == "dispensation", line.source_id == Dispensation.id,
                             line.amount_cents == Dispensation.quantity * Dispensation.unit_price_cents)))
    if unmatched:
        found.append(f"{unmatched} dispensations lack their stock movement or invoice line")
    movements = scalar(sa.select(sa.func.count()).select_from(StockMovement)
                       .where(StockMovement.dispensation_id.is_not(None)))
    if movements != scalar(sa.select(sa.func.count()).select_from(Dispensation)):
        found.append("stock movements of dispensings and dispensations differ in number")
    with session_scope(write=False, engine=conn.engine) as s:
        if mismatches := inventory.ledger_mismatches(s):
            found.append(f"stock ledger disagrees with the stock on hand: {mismatches[:3]}")
        chain = audit.verify_chain(s)
    if scalar(sa.select(sa.func.count()).select_from(StockBatch).where(StockBatch.quantity_on_hand < 0)):
        found.append("negative stock")
    # No two active appointments of one doctor, or of one patient, overlap.
    first, second = aliased(Appointment), aliased(Appointment)
    active = [s.value for s in ACTIVE_APPOINTMENT_STATUSES]
    for who in ("doctor_id", "patient_id"):
        overlaps = scalar(sa.select(sa.func.count()).select_from(first).join(second, sa.and_(
            getattr(first, who) == getattr(second, who), first.id < second.id,
            first.starts_at < second.ends_at, second.starts_at < first.ends_at)).where(
            first.status.in_(active), second.status.in_(active)))
        if overlaps:
            found.append(f"{overlaps} pairs of active appointments overlap for one {who.split('_')[0]}")
    # The audit trail: intact, and one row for each write of each kind.
    if not chain.ok:
        found.append(f"audit chain broken at row {chain.first_bad_id}: {chain.reason}")

    def audited(action: str) -> int:
        return scalar(sa.select(sa.func.count()).select_from(AuditEvent)
                      .where(AuditEvent.action == action, AuditEvent.outcome == "success"))

    expectations = {
        "appointment.book": scalar(sa.select(sa.func.count()).select_from(Appointment)
                                   .where(Appointment.reason.like(f"{BOOKING_REASON} %"))),
        "payment.record": scalar(sa.select(sa.func.count()).select_from(Payment)
                                 .where(Payment.reference.like(f"{PAYMENT_REFERENCE}%"))),
        "invoice.pay_online": scalar(sa.select(sa.func.count()).select_from(Payment)
                                     .where(Payment.idempotency_key.is_not(None))),
        "invoice.issue": scalar(sa.select(sa.func.count()).select_from(Invoice).where(Invoice.number.is_not(None))),
    }
    for action, rows in expectations.items():
        if audited(action) != rows:
            found.append(f"{audited(action)} audit rows for {action}, {rows} rows written")
    units_audited = sum(int(n) for detail in conn.execute(
        sa.select(AuditEvent.detail).where(AuditEvent.action == "prescription.dispense")).scalars()
        for n in re.findall(r"(\d+) × ", detail))
    units = scalar(sa.select(sa.func.coalesce(sa.func.sum(Dispensation.quantity), 0)))
    if units_audited != units:
        found.append(f"the audit trail records {units_audited} units dispensed, the dispensations {units}")
    return found

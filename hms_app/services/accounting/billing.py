"""Billing: charges become invoice lines, invoices are issued and paid, insurers claimed.

**Charges.** Every billable service adds its line in the transaction that completes it: a
completed consultation bills the doctor's fee, a completed lab test the catalog price, each
dispensation (one per lot drawn on) its units × the medicine's price when dispensed. A line
names its source (``appointment`` 12, ``lab_order`` 7, ``dispensation`` 31) and that pair is
unique, so a service is never billed twice, however often its event repeats.

**Grouping.** Lines gather on the patient's one draft invoice (a partial unique index allows
one draft per patient); the patient sees it as "being prepared". Accounts issue it, which
numbers it (``INV-2026-000123``, gap-free in sequence per local year), sets the due date and
takes the patient's insurer and policy; a charge arriving after that opens a new draft.

**Money.** Integer cents. ``total = subtotal − discount``; ``paid`` is the sum of the
payments; refunds are negative payments with a reason. CHECK constraints hold 0 ≤ paid ≤
total, so no balance goes below zero. The invoice row is locked (``FOR UPDATE``; SQLite's
writers queue) before money moves, so two payments of one balance cannot both succeed.

**Insurance.** Accounts set the insurer's expected share; the claim goes submitted →
approved or rejected → paid (paying records the insurer's payment). The patient owes the
balance less the share still expected from the insurer (nothing is expected once a claim
is rejected).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import date, timedelta

import sqlalchemy as sa
from sqlmodel import Session

from hms_app import settings
from hms_app.db.enums import ChargeKind, ClaimStatus, InvoiceStatus, PaymentMethod, Permission, Role
from hms_app.db.models import (
    Appointment,
    DoctorProfile,
    Invoice,
    InvoiceLine,
    LabOrder,
    LabTest,
    PatientProfile,
    Payment,
    User,
)
from hms_app.db.types import utcnow
from hms_app.services.accounting import totals
from hms_app.services.core import audit, counters, events, receipts
from hms_app.services.core.access import access_by_id, require
from hms_app.services.core.actor import Actor
from hms_app.services.core.errors import Conflict, ValidationError
from hms_app.services.core.files import DownloadedFile
from hms_app.services.core.language import N_, _, default_language, use_language
from hms_app.services.core.localtime import format_date, format_local, local_today
from hms_app.services.core.numbers import format_money, format_number, parse_money
from hms_app.services.core.paging import Page, clamp_page, fetch_page, order_by
from hms_app.services.core.pdf import closing_note, field, letterhead, phrase, table_row
from hms_app.services.core.text import one_line, storable
from hms_app.services.messaging import mail, notifications

BILLING_TOPIC = "billing"
PAYMENT_TERMS_DAYS = 30
PATIENT_INVOICES_LINK = "/patient/invoices"
OPEN_STATUSES = totals.OPEN_STATUSES
METHOD_LABELS = {PaymentMethod.CASH: N_("Cash"), PaymentMethod.CARD: N_("Card"),
                 PaymentMethod.BANK_TRANSFER: N_("Bank transfer"), PaymentMethod.INSURANCE: N_("Insurance")}
KIND_LABELS = {ChargeKind.CONSULTATION: N_("Consultation"), ChargeKind.LAB: N_("Lab test"),
               ChargeKind.MEDICINE: N_("Medicine")}
STATUS_LABELS = {InvoiceStatus.DRAFT: N_("being prepared"), InvoiceStatus.ISSUED: N_("issued"),
                 InvoiceStatus.PARTLY_PAID: N_("partly paid"), InvoiceStatus.PAID: N_("paid"),
                 InvoiceStatus.VOID: N_("void")}
CLAIM_LABELS = {ClaimStatus.NONE: N_("not submitted"), ClaimStatus.SUBMITTED: N_("submitted"),
                ClaimStatus.APPROVED: N_("approved"), ClaimStatus.REJECTED: N_("rejected"), ClaimStatus.PAID: N_("paid")}
"""The labels of each vocabulary, in English: translated where shown (``_``, or ``t`` on a page)."""


def status_label(status: object) -> str:
    status = InvoiceStatus(str(status))
    return _(STATUS_LABELS[status]) if status in STATUS_LABELS else str(status)


def claim_label(status: object) -> str:
    return _(CLAIM_LABELS[ClaimStatus(str(status))])


def _publish(session: Session, invoice: Invoice) -> None:
    events.publish(session, BILLING_TOPIC, roles=[Role.ACCOUNTS.value, Role.ADMIN.value], user_ids=[invoice.patient_id])


# --- charges: called by the services that complete the work, in their transaction ---------------


def _draft_for(session: Session, patient_id: int) -> Invoice:
    """The patient's draft invoice, locked; created when there is none."""
    find = (sa.select(Invoice).where(Invoice.patient_id == patient_id, Invoice.status == InvoiceStatus.DRAFT.value)
            .with_for_update().execution_options(populate_existing=True))
    invoice = session.execute(find).scalar_one_or_none()
    if invoice is not None:
        return invoice
    profile = session.get(PatientProfile, patient_id)
    try:
        with session.begin_nested():  # a concurrent first charge may create it first
            invoice = Invoice(patient_id=patient_id, insurer=profile.insurer if profile else "",
                              policy_number=profile.policy_number if profile else "")
            session.add(invoice)
            session.flush()
    except sa.exc.IntegrityError:
        invoice = session.execute(find).scalar_one()
    return invoice


def _add_line(session: Session, *, patient_id: int, kind: ChargeKind, source_type: str, source_id: int,
              description: str, quantity: int, unit_price_cents: int, department_id: int | None) -> int | None:
    """Bill one service unless it is billed already. Returns the line's id, or None if it was."""
    billed = session.execute(sa.select(InvoiceLine.id).where(
        InvoiceLine.source_type == source_type, InvoiceLine.source_id == source_id)).first()
    if billed:
        return None
    invoice = _draft_for(session, patient_id)
    amount = quantity * unit_price_cents
    line = InvoiceLine(invoice_id=invoice.id, kind=kind, source_type=source_type, source_id=source_id,
                       description=description[:200], quantity=quantity, unit_price_cents=unit_price_cents,
                       amount_cents=amount, department_id=department_id)
    session.add(line)
    session.flush()
    totals.charge_added(session, line)
    session.execute(sa.update(Invoice).where(Invoice.id == invoice.id).values(
        subtotal_cents=Invoice.subtotal_cents + amount, total_cents=Invoice.total_cents + amount,
        updated_at=utcnow()).execution_options(synchronize_session=False))
    session.expire(invoice)
    _publish(session, invoice)
    return line.id


def charge_consultation(session: Session, appointment: Appointment) -> int | None:
    """The doctor's fee for a completed consultation."""
    doctor = session.get(DoctorProfile, appointment.doctor_id)
    name = session.execute(sa.select(User.full_name).where(User.id == appointment.doctor_id)).scalar_one()
    # A charge's description is kept on the invoice: in the hospital's language, as its other records are.
    with use_language(default_language()):
        description = _("Consultation with {doctor}, {day}").format(doctor=name,
                                                                    day=format_date(appointment.starts_at))
    return _add_line(session, patient_id=appointment.patient_id, kind=ChargeKind.CONSULTATION,
                     source_type="appointment", source_id=appointment.id, description=description,
                     quantity=1, unit_price_cents=doctor.consultation_fee_cents if doctor else 0,
                     department_id=appointment.department_id)


def charge_lab_test(session: Session, order: LabOrder) -> int | None:
    """The catalog price of a completed lab test, billed to the ordering doctor's department."""
    test = session.get(LabTest, order.test_id)
    doctor = session.get(DoctorProfile, order.doctor_id)
    with use_language(default_language()):
        description = _("Lab test: {test}").format(test=test.name)
    return _add_line(session, patient_id=order.patient_id, kind=ChargeKind.LAB, source_type="lab_order",
                     source_id=order.id, description=description, quantity=1,
                     unit_price_cents=test.price_cents, department_id=doctor.department_id if doctor else None)


def charge_dispensation(session: Session, *, dispensation_id: int, patient_id: int, doctor_id: int, medicine: str,
                        quantity: int, unit_price_cents: int) -> int | None:
    """Units of a medicine dispensed from one lot, at the price when dispensed."""
    doctor = session.get(DoctorProfile, doctor_id)
    return _add_line(session, patient_id=patient_id, kind=ChargeKind.MEDICINE, source_type="dispensation",
                     source_id=dispensation_id, description=f"{medicine} × {quantity}", quantity=quantity,
                     unit_price_cents=unit_price_cents, department_id=doctor.department_id if doctor else None)


# --- reading -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class InvoiceRow:
    id: int
    number: str
    patient: str
    mrn: str
    status: str
    status_value: str
    issued: str
    due: str
    total: str
    paid: str
    balance: str
    patient_due: str
    patient_due_cents: int
    insurer: str
    insurer_share: str
    claim_status: str
    overdue: bool
    paid_cents: int = 0
    insurer_share_cents: int = 0
    """The amounts the page decides on (which forms to offer); the texts above are for reading."""
    claim_label: str = ""
    """The claim's status in words ("not submitted" when there is none); ``claim_status`` is its value."""


def _insurance_paid(session: Session, invoice_ids: list[int]) -> dict[int, int]:
    if not invoice_ids:
        return {}
    return dict(session.execute(
        sa.select(Payment.invoice_id, sa.func.sum(Payment.amount_cents))
        .where(Payment.invoice_id.in_(invoice_ids), Payment.method == PaymentMethod.INSURANCE.value)
        .group_by(Payment.invoice_id)).all())


def insurer_outstanding(invoice: Invoice, insurance_paid: int) -> int:
    """What the insurer is still expected to pay on the invoice."""
    if str(invoice.claim_status) == ClaimStatus.REJECTED:
        return 0
    return max(0, invoice.insurer_share_cents - insurance_paid)


def patient_due_cents(invoice: Invoice, insurance_paid: int) -> int:
    """What the patient owes now: the balance less what the insurer is still expected to pay."""
    if str(invoice.status) not in OPEN_STATUSES:
        return 0
    balance = invoice.total_cents - invoice.paid_cents
    return max(0, balance - insurer_outstanding(invoice, insurance_paid))


def _number(invoice: Invoice) -> str:
    return invoice.number or _("Draft {id}").format(id=invoice.id)


def _row(invoice: Invoice, name: str, mrn: str | None, insurance_paid: int, today: date) -> InvoiceRow:
    due = patient_due_cents(invoice, insurance_paid)
    return InvoiceRow(
        id=invoice.id, number=_number(invoice), patient=name, mrn=mrn or "", status=status_label(invoice.status),
        status_value=str(invoice.status), issued=format_date(invoice.issued_at),
        due=format_date(invoice.due_date), total=format_money(invoice.total_cents),
        paid=format_money(invoice.paid_cents), balance=format_money(invoice.total_cents - invoice.paid_cents),
        patient_due=format_money(due), patient_due_cents=due, insurer=invoice.insurer,
        insurer_share=format_money(invoice.insurer_share_cents),
        claim_status="" if str(invoice.claim_status) == ClaimStatus.NONE else str(invoice.claim_status),
        overdue=bool(invoice.due_date and invoice.due_date < today and str(invoice.status) in OPEN_STATUSES),
        paid_cents=invoice.paid_cents, insurer_share_cents=invoice.insurer_share_cents,
        claim_label=claim_label(invoice.claim_status),
    )


def _rows(session: Session, rows: list) -> list[InvoiceRow]:
    paid = _insurance_paid(session, [i.id for i, *_rest in rows])
    today = local_today()
    return [_row(i, name, mrn, int(paid.get(i.id) or 0), today) for i, name, mrn in rows]


INVOICE_FILTERS = ("", "draft", "open", "overdue", "paid", "void")


def list_invoices(*, session: Session, actor: Actor, search: str = "", show: str = "", sort: str = "created",
                  descending: bool = True, page: int = 1, page_size: int = 20) -> Page[InvoiceRow]:
    """Every invoice for accounts: searched by number, patient or MRN, filtered, sorted and paged in SQL."""
    require(session, actor, Permission.BILLING_MANAGE, action="invoice.list")
    page, page_size = clamp_page(page, page_size)
    query = (sa.select(Invoice, User.full_name, PatientProfile.mrn).join(User, User.id == Invoice.patient_id)
             .outerjoin(PatientProfile, PatientProfile.user_id == Invoice.patient_id))
    term = storable(str(search or "").strip().lower()[:60], _("search"))
    if term:
        query = query.where(sa.or_(sa.func.lower(User.full_name).contains(term, autoescape=True),
                                   sa.func.lower(sa.func.coalesce(Invoice.number, "")).contains(term, autoescape=True),
                                   sa.func.lower(PatientProfile.mrn).contains(term, autoescape=True)))
    show = str(show or "")
    if show == "open":
        query = query.where(Invoice.status.in_(OPEN_STATUSES))
    elif show == "overdue":
        query = query.where(Invoice.status.in_(OPEN_STATUSES), Invoice.due_date < local_today())
    elif show in ("draft", "paid", "void"):
        query = query.where(Invoice.status == show)
    balance = Invoice.total_cents - Invoice.paid_cents
    columns = {"created": Invoice.id, "number": Invoice.number, "patient": User.full_name, "due": Invoice.due_date,
               "total": Invoice.total_cents, "balance": balance, "status": Invoice.status}
    query = query.order_by(order_by(columns, sort, descending, "created"), Invoice.id.desc())
    total, rows = fetch_page(session, query, page=page, page_size=page_size)
    return Page(_rows(session, rows), total, page, page_size)


def my_invoices(*, session: Session, actor: Actor, page: int = 1, page_size: int = 20) -> Page[InvoiceRow]:
    """The patient's own invoices, newest first, drafts included (shown as being prepared)."""
    require(session, actor, Permission.BILLING_PAY_OWN, action="invoice.own")
    page, page_size = clamp_page(page, page_size)
    query = (sa.select(Invoice, User.full_name, PatientProfile.mrn).join(User, User.id == Invoice.patient_id)
             .outerjoin(PatientProfile, PatientProfile.user_id == Invoice.patient_id)
             .where(Invoice.patient_id == actor.user_id, Invoice.status != InvoiceStatus.VOID.value)
             .order_by(Invoice.id.desc()))
    total, rows = fetch_page(session, query, page=page, page_size=page_size)
    return Page(_rows(session, rows), total, page, page_size)


@dataclass(frozen=True)
class LineView:
    id: int
    kind: str
    description: str
    quantity: int
    unit_price: str
    amount: str
    service_date: str


@dataclass(frozen=True)
class PaymentView:
    id: int
    received: str
    method: str
    amount: str
    amount_cents: int
    reference: str
    reason: str
    received_day: str = ""
    """The day alone, for the invoice PDF's narrow column."""


@dataclass(frozen=True)
class InvoiceDetail:
    invoice: InvoiceRow
    subtotal: str
    discount: str
    discount_reason: str
    void_reason: str
    claim_note: str
    policy_number: str
    refundable_cents: int
    lines: list[LineView]
    payments: list[PaymentView]
    discount_cents: int = 0


def _invoice_for(session: Session, actor: Actor, invoice_id: object, action: str, *, lock: bool = False,
                 own: bool = False) -> Invoice:
    """The invoice, for accounts (any) or, where ``own`` (reading, paying online), its patient;
    "does not exist" alike otherwise. Everything else on an invoice is for accounts only."""
    if own and getattr(actor, "role", None) == Role.PATIENT:
        require(session, actor, Permission.BILLING_PAY_OWN, action=action)
    else:
        require(session, actor, Permission.BILLING_MANAGE, action=action)
    return access_by_id(session, actor, Invoice, invoice_id, action=action, lock=lock,
                        missing=N_("That invoice does not exist."), entity_type="invoice",
                        allowed=lambda i: actor.role != Role.PATIENT or i.patient_id == actor.user_id)


def invoice_detail(*, session: Session, actor: Actor, invoice_id: int) -> InvoiceDetail:
    """An invoice with its lines and payments, for accounts or the patient it belongs to; audited."""
    invoice = _invoice_for(session, actor, invoice_id, "invoice.view", own=True)
    patient = session.get(User, invoice.patient_id)
    profile = session.get(PatientProfile, invoice.patient_id)
    lines = [LineView(line.id, _(KIND_LABELS[ChargeKind(line.kind)]), line.description, line.quantity,
                      format_money(line.unit_price_cents), format_money(line.amount_cents),
                      format_date(line.service_at))
             for line in session.execute(sa.select(InvoiceLine).where(InvoiceLine.invoice_id == invoice.id)
                                         .order_by(InvoiceLine.service_at, InvoiceLine.id)).scalars()]
    records = session.execute(sa.select(Payment).where(Payment.invoice_id == invoice.id)
                              .order_by(Payment.received_at, Payment.id)).scalars().all()
    payments = [PaymentView(p.id, format_local(p.received_at), _(METHOD_LABELS[PaymentMethod(p.method)]),
                            format_money(p.amount_cents),
                            p.amount_cents, p.reference, p.reason, format_date(p.received_at)) for p in records]
    insurance_paid = sum(p.amount_cents for p in records if str(p.method) == PaymentMethod.INSURANCE)
    audit.record(session, actor, "invoice.view", entity_type="invoice", entity_id=invoice.id,
                 patient_id=invoice.patient_id)
    session.commit()
    return InvoiceDetail(
        _row(invoice, patient.full_name, profile.mrn if profile else "", insurance_paid, local_today()),
        format_money(invoice.subtotal_cents), format_money(invoice.discount_cents), invoice.discount_reason,
        invoice.void_reason, invoice.claim_note, invoice.policy_number,
        invoice.paid_cents, lines, payments, invoice.discount_cents)


# --- accounts: issue, discount, void -------------------------------------------------------------


def _refuse(invoice: Invoice, refusal: str) -> None:
    """Raise ``refusal`` (an ``N_`` text naming the invoice's {number} and {status}) as a ``Conflict``."""
    raise Conflict(_(refusal).format(number=_number(invoice), status=status_label(invoice.status)))


def issue_invoice(*, session: Session, actor: Actor, invoice_id: int) -> str:
    """Number a draft invoice and send it to the patient: draft → issued. Returns the number."""
    invoice = _invoice_for(session, actor, invoice_id, "invoice.issue", lock=True)
    before = totals.open_part(session, invoice)
    if str(invoice.status) != InvoiceStatus.DRAFT:
        _refuse(invoice, N_("Invoice {number} is {status}; it cannot be issued again."))
    if not session.execute(sa.select(InvoiceLine.id).where(InvoiceLine.invoice_id == invoice.id)).first():
        raise ValidationError(_("This invoice has no charges yet; there is nothing to issue."))
    today = local_today()
    profile = session.get(PatientProfile, invoice.patient_id)
    invoice.number = f"INV-{today.year}-{counters.next_value(session, f'invoice-{today.year}'):06d}"
    invoice.status = InvoiceStatus.PAID if invoice.total_cents == 0 else InvoiceStatus.ISSUED
    invoice.issued_at, invoice.due_date = utcnow(), today + timedelta(days=PAYMENT_TERMS_DAYS)
    invoice.insurer = profile.insurer if profile else invoice.insurer
    invoice.policy_number = profile.policy_number if profile else invoice.policy_number
    invoice.updated_at = utcnow()
    audit.record(session, actor, "invoice.issue", entity_type="invoice", entity_id=invoice.id,
                 patient_id=invoice.patient_id, detail=f"{invoice.number} {format_money(invoice.total_cents)}")
    notifications.notify(session, invoice.patient_id, lambda: _("New invoice"),
                         lambda: _("Invoice {number} for {amount} is due by {day}.").format(
                             number=invoice.number, amount=format_money(invoice.total_cents),
                             day=format_date(invoice.due_date)),
                         PATIENT_INVOICES_LINK)
    mail.queue_email(session, user_id=invoice.patient_id, kind="invoice.issued", event_key=f"invoice.issued:{invoice.id}")
    totals.open_part_changed(session, invoice, before)
    _publish(session, invoice)
    session.commit()
    return invoice.number


_REASON_RULES = {
    "discount": (N_("Give the reason for the discount (at least 5 characters)."),
                 N_("Keep the reason for the discount under 300 characters.")),
    "void": (N_("Give the reason for the void (at least 5 characters)."),
             N_("Keep the reason for the void under 300 characters.")),
    "refund": (N_("Give the reason for the refund (at least 5 characters)."),
               N_("Keep the reason for the refund under 300 characters.")),
    "rejection": (N_("Give the reason for the rejection (at least 5 characters)."),
                  N_("Keep the reason for the rejection under 300 characters.")),
}
"""What a reason too short and too long is told, for each thing that needs one."""


def _reason(text: object, what: str) -> str:
    too_short, too_long = _REASON_RULES[what]
    reason = one_line(text, _("reason"))
    if len(reason) < 5:
        raise ValidationError(_(too_short))
    if len(reason) > 300:
        raise ValidationError(_(too_long))
    return reason


def _settle_status(invoice: Invoice) -> None:
    if invoice.paid_cents >= invoice.total_cents:
        invoice.status = InvoiceStatus.PAID
    elif invoice.paid_cents > 0:
        invoice.status = InvoiceStatus.PARTLY_PAID
    else:
        invoice.status = InvoiceStatus.ISSUED


def apply_discount(*, session: Session, actor: Actor, invoice_id: int, amount: str, reason: str) -> None:
    """Set the invoice's discount (replacing any earlier one); a reason is required."""
    invoice = _invoice_for(session, actor, invoice_id, "invoice.discount", lock=True)
    before = totals.open_part(session, invoice)
    if str(invoice.status) not in (InvoiceStatus.DRAFT, *OPEN_STATUSES):
        _refuse(invoice, N_("Invoice {number} is {status}; it cannot be discounted."))
    cents = parse_money(amount, _("discount"))
    reason = _reason(reason, "discount") if cents else ""
    if cents > invoice.subtotal_cents:
        raise ValidationError(_("The discount cannot exceed the charges ({amount}).")
                              .format(amount=format_money(invoice.subtotal_cents)))
    total = invoice.subtotal_cents - cents
    if total < invoice.paid_cents:
        raise ValidationError(_("{amount} is paid already; the total cannot go below that.")
                              .format(amount=format_money(invoice.paid_cents)))
    if total < invoice.insurer_share_cents:
        raise ValidationError(_("The total cannot go below the insurer's share; lower the share first."))
    invoice.discount_cents, invoice.discount_reason, invoice.total_cents = cents, reason, total
    if str(invoice.status) != InvoiceStatus.DRAFT:
        _settle_status(invoice)
    invoice.updated_at = utcnow()
    audit.record(session, actor, "invoice.discount", entity_type="invoice", entity_id=invoice.id,
                 patient_id=invoice.patient_id, detail=f"{format_money(cents)}: {reason}")
    totals.open_part_changed(session, invoice, before)
    _publish(session, invoice)
    session.commit()


def void_invoice(*, session: Session, actor: Actor, invoice_id: int, reason: str) -> None:
    """Cancel an invoice on which nothing is paid (refund first); its charges stay on record with it."""
    invoice = _invoice_for(session, actor, invoice_id, "invoice.void", lock=True)
    before = totals.open_part(session, invoice)
    if str(invoice.status) == InvoiceStatus.VOID:
        _refuse(invoice, N_("Invoice {number} is {status}; it cannot be voided again."))
    if invoice.paid_cents:
        raise Conflict(_("Money has been paid on this invoice; refund it before voiding."))
    reason = _reason(reason, "void")
    invoice.status, invoice.void_reason, invoice.updated_at = InvoiceStatus.VOID, reason, utcnow()
    totals.invoice_voided(session, invoice.id)
    audit.record(session, actor, "invoice.void", entity_type="invoice", entity_id=invoice.id,
                 patient_id=invoice.patient_id, detail=reason)
    totals.open_part_changed(session, invoice, before)
    _publish(session, invoice)
    session.commit()


# --- payments ------------------------------------------------------------------------------------


def _pay(session: Session, actor: Actor, invoice: Invoice, cents: int, method: PaymentMethod, reference: str,
         reason: str = "", idempotency_key: str | None = None) -> Payment:
    """Move money on a locked invoice: the conditional UPDATE is the last guard against overpaying."""
    moved = session.execute(
        sa.update(Invoice).where(Invoice.id == invoice.id, Invoice.paid_cents + cents <= Invoice.total_cents,
                                 Invoice.paid_cents + cents >= 0)
        .values(paid_cents=Invoice.paid_cents + cents, updated_at=utcnow()).execution_options(synchronize_session=False)
    ).rowcount
    if moved != 1:
        raise Conflict(_("The balance changed meanwhile; nothing was recorded. Reload and try again."))
    payment = Payment(invoice_id=invoice.id, amount_cents=cents, method=method, reference=reference, reason=reason,
                      idempotency_key=idempotency_key, recorded_by=actor.user_id)
    session.add(payment)
    session.flush()
    totals.payment_added(session, payment)
    session.refresh(invoice)
    _settle_status(invoice)
    return payment


PAYMENT_METHODS = [(m.value, METHOD_LABELS[m]) for m in PaymentMethod]
"""The payment form's choices: (value, label); the page translates the label."""


def _repeated(session: Session, actor: Actor, invoice: Invoice, request_key: str | None, action: str) -> str | None:
    """The answer of an earlier request with this form's key (see ``receipts``), or None: this one goes on."""
    earlier = receipts.claim(session, actor, key=request_key, action=action)
    if earlier is None:
        return None
    if earlier.object_id != invoice.id:
        raise ValidationError(_(receipts.EXPIRED))
    return earlier.result


def record_payment(*, session: Session, actor: Actor, invoice_id: int, amount: str, method: str,
                   reference: str = "", request_key: str | None = None) -> str:
    """Accounts record money received, in part or in whole; never more than the balance. Returns the new status.

    ``request_key`` is the payment form's key (``receipts``): a repeat of the request records
    nothing more and answers as the first did.
    """
    invoice = _invoice_for(session, actor, invoice_id, "payment.record", lock=True)
    before = totals.open_part(session, invoice)
    if (earlier := _repeated(session, actor, invoice, request_key, "payment.record")) is not None:
        return earlier
    if str(invoice.status) not in OPEN_STATUSES:
        _refuse(invoice, N_("Invoice {number} is {status}; it cannot be paid.") if str(invoice.status) !=
                InvoiceStatus.PAID else N_("Invoice {number} is {status}; it cannot be paid again."))
    if not isinstance(method, str) or method not in {m.value for m in PaymentMethod}:
        raise ValidationError(_("Choose how it was paid: cash, card, bank transfer or insurance."))
    cents = parse_money(amount, _("amount paid"))
    if cents <= 0:
        raise ValidationError(_("Enter the amount paid, more than 0."))
    balance = invoice.total_cents - invoice.paid_cents
    if cents > balance:
        raise ValidationError(_("That is more than the balance of {amount}; record at most the balance.")
                              .format(amount=format_money(balance)))
    reference = one_line(reference, _("reference"))
    if len(reference) > 80:
        raise ValidationError(_("Keep the reference under 80 characters."))
    _pay(session, actor, invoice, cents, PaymentMethod(method), reference)
    audit.record(session, actor, "payment.record", entity_type="invoice", entity_id=invoice.id,
                 patient_id=invoice.patient_id, detail=f"{method} {format_money(cents)} {reference}".strip())
    receipts.fulfil(session, key=request_key, object_id=invoice.id, result=status_label(invoice.status))
    totals.open_part_changed(session, invoice, before)
    _publish(session, invoice)
    session.commit()
    return status_label(invoice.status)


def refund_payment(*, session: Session, actor: Actor, invoice_id: int, amount: str, reason: str,
                   method: str = PaymentMethod.CASH.value, request_key: str | None = None) -> str:
    """Give money back: a negative payment with a reason, at most what was paid.

    ``request_key`` as for ``record_payment``: a repeated refund gives nothing back twice.
    """
    invoice = _invoice_for(session, actor, invoice_id, "payment.refund", lock=True)
    before = totals.open_part(session, invoice)
    if (earlier := _repeated(session, actor, invoice, request_key, "payment.refund")) is not None:
        return earlier
    if str(invoice.status) not in (*OPEN_STATUSES, InvoiceStatus.PAID):
        _refuse(invoice, N_("Invoice {number} is {status}; it cannot be refunded."))
    if not isinstance(method, str) or method not in {m.value for m in PaymentMethod}:
        raise ValidationError(_("Choose how the refund is paid back."))
    cents = parse_money(amount, _("refund"))
    if cents <= 0:
        raise ValidationError(_("Enter the amount to refund, more than 0."))
    if cents > invoice.paid_cents:
        raise ValidationError(_("Only {amount} has been paid; refund at most that.")
                              .format(amount=format_money(invoice.paid_cents)))
    reason = _reason(reason, "refund")
    # A payment's reference is kept with it: in the hospital's language, as its other records are.
    with use_language(default_language()):
        reference = _("refund")
    _pay(session, actor, invoice, -cents, PaymentMethod(method), reference, reason)
    audit.record(session, actor, "payment.refund", entity_type="invoice", entity_id=invoice.id,
                 patient_id=invoice.patient_id, detail=f"{format_money(cents)}: {reason}")
    receipts.fulfil(session, key=request_key, object_id=invoice.id, result=status_label(invoice.status))
    totals.open_part_changed(session, invoice, before)
    _publish(session, invoice)
    session.commit()
    return status_label(invoice.status)


# --- the patient pays online (a simulated card gateway) ------------------------------------------


DECLINED_TEST_CARD = "4000000000000002"
"""The gateway's test card that is always declined."""


def _luhn_ok(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _check_card(number: object, expiry: object, cvc: object) -> str:
    """The card number's digits if the card passes the gateway's checks."""
    digits = re.sub(r"[\s-]", "", str(number or ""))
    if not digits.isdigit() or not 12 <= len(digits) <= 19 or not _luhn_ok(digits):
        raise ValidationError(_("Check the card number: it is not a valid card number."))
    match = re.fullmatch(r"\s*(\d{1,2})\s*/\s*(\d{2}|\d{4})\s*", str(expiry or ""))
    if not match:
        raise ValidationError(_("Enter the card's expiry as MM/YY."))
    month, year = int(match.group(1)), int(match.group(2))
    year += 2000 if year < 100 else 0
    today = local_today()
    if not 1 <= month <= 12 or (year, month) < (today.year, today.month):
        raise ValidationError(_("The card has expired, or the expiry date is not a real month."))
    if not re.fullmatch(r"\d{3,4}", str(cvc or "").strip()):
        raise ValidationError(_("Enter the 3 or 4 digit security code from the back of the card."))
    if digits == DECLINED_TEST_CARD:
        raise ValidationError(_("The card was declined by the bank. Nothing was charged; try another card."))
    return digits


@dataclass(frozen=True)
class OnlinePayment:
    amount: str
    reference: str
    status: str
    repeated: bool
    """True when this request repeated one already paid (same key): nothing was charged again."""


def new_payment_key() -> str:
    return receipts.new_request_key()


def pay_online(*, session: Session, actor: Actor, invoice_id: int, card_number: str, expiry: str, cvc: str,
               idempotency_key: str) -> OnlinePayment:
    """The patient pays what they owe on an issued invoice by card.

    ``idempotency_key`` comes from the server when the payment form opens; a repeated
    request with it (a double click, a retry) finds the payment already made and charges
    nothing more. Only the last four digits of the card are kept.
    """
    if getattr(actor, "role", None) != Role.PATIENT:
        require(session, actor, Permission.BILLING_PAY_OWN, action="invoice.pay_online")
        audit.deny(session, actor, "invoice.pay_online", N_("Only the patient pays their invoices online."))
    key = str(idempotency_key or "")
    if not receipts.KEY_PATTERN.fullmatch(key):  # the server's token_urlsafe, nothing else
        raise ValidationError(_("This payment form has expired; close it and open it again."))
    invoice = _invoice_for(session, actor, invoice_id, "invoice.pay_online", lock=True, own=True)
    before = totals.open_part(session, invoice)
    earlier = session.execute(sa.select(Payment).where(Payment.idempotency_key == key)).scalar_one_or_none()
    if earlier is not None:
        if earlier.invoice_id != invoice.id:
            raise ValidationError(_("This payment form has expired; close it and open it again."))
        return OnlinePayment(format_money(earlier.amount_cents), earlier.reference, status_label(invoice.status), True)
    if str(invoice.status) not in OPEN_STATUSES:
        raise Conflict(_("This invoice is paid already.") if str(invoice.status) == InvoiceStatus.PAID else
                       _("This invoice cannot be paid online now."))
    due = patient_due_cents(invoice, int(_insurance_paid(session, [invoice.id]).get(invoice.id) or 0))
    if due <= 0:
        raise Conflict(_("Nothing is due from you on this invoice; the rest is expected from your insurer."))
    digits = _check_card(card_number, expiry, cvc)
    with use_language(default_language()):
        reference = _("{gateway_reference} card ending {last_four}").format(
            gateway_reference=f"SIM-{secrets.token_hex(5).upper()}", last_four=digits[-4:])
    _pay(session, actor, invoice, due, PaymentMethod.CARD, reference, idempotency_key=key)
    audit.record(session, actor, "invoice.pay_online", entity_type="invoice", entity_id=invoice.id,
                 patient_id=invoice.patient_id, detail=f"{format_money(due)} {reference}")
    totals.open_part_changed(session, invoice, before)
    _publish(session, invoice)
    session.commit()
    return OnlinePayment(format_money(due), reference, status_label(invoice.status), False)


# --- insurance -----------------------------------------------------------------------------------


def set_insurer_share(*, session: Session, actor: Actor, invoice_id: int, amount: str) -> None:
    """The part of the invoice the insurer is expected to pay, before the claim is submitted."""
    invoice = _invoice_for(session, actor, invoice_id, "invoice.insurer_share", lock=True)
    before = totals.open_part(session, invoice)
    if str(invoice.status) not in (InvoiceStatus.DRAFT, *OPEN_STATUSES):
        _refuse(invoice, N_("Invoice {number} is {status}; it cannot be changed."))
    if not invoice.insurer:
        raise ValidationError(_("The patient has no insurer on record; add one to their profile first."))
    if str(invoice.claim_status) not in (ClaimStatus.NONE,):
        raise Conflict(_("The claim is already submitted; the insurer's share can no longer change."))
    cents = parse_money(amount, _("insurer's share"))
    if cents > invoice.total_cents - invoice.paid_cents:
        raise ValidationError(_("The share cannot exceed the balance of {amount}.")
                              .format(amount=format_money(invoice.total_cents - invoice.paid_cents)))
    invoice.insurer_share_cents, invoice.updated_at = cents, utcnow()
    audit.record(session, actor, "invoice.insurer_share", entity_type="invoice", entity_id=invoice.id,
                 patient_id=invoice.patient_id, detail=f"{invoice.insurer} {format_money(cents)}")
    totals.open_part_changed(session, invoice, before)
    _publish(session, invoice)
    session.commit()


_CLAIM_MOVES = {
    ClaimStatus.SUBMITTED: (ClaimStatus.NONE,),
    ClaimStatus.APPROVED: (ClaimStatus.SUBMITTED,),
    ClaimStatus.REJECTED: (ClaimStatus.SUBMITTED,),
    ClaimStatus.PAID: (ClaimStatus.APPROVED,),
}
CLAIM_ACTIONS = [(ClaimStatus.SUBMITTED.value, N_("Submitted")), (ClaimStatus.APPROVED.value, N_("Approved")),
                 (ClaimStatus.REJECTED.value, N_("Rejected")), (ClaimStatus.PAID.value, N_("Paid"))]
"""The claim form's choices, one per move: (value, label); the page translates the label."""


def move_claim(*, session: Session, actor: Actor, invoice_id: int, to_status: str, note: str = "") -> None:
    """Track the insurance claim; marking it paid records the insurer's payment of its share."""
    invoice = _invoice_for(session, actor, invoice_id, "invoice.claim", lock=True)
    before = totals.open_part(session, invoice)
    try:
        target = ClaimStatus(str(to_status))
    except ValueError:
        raise ValidationError(_("Choose submitted, approved, rejected or paid.")) from None
    if target not in _CLAIM_MOVES:
        raise ValidationError(_("Choose submitted, approved, rejected or paid."))
    current = ClaimStatus(str(invoice.claim_status))
    if current not in _CLAIM_MOVES[target]:
        raise Conflict(_("The claim is {current}; it cannot be marked {target} now.")
                       .format(current=claim_label(current), target=claim_label(target)))
    if str(invoice.status) not in OPEN_STATUSES and target != ClaimStatus.REJECTED:
        _refuse(invoice, N_("Invoice {number} is {status}; it cannot be claimed."))
    note = one_line(note, _("note"))
    if target == ClaimStatus.SUBMITTED and invoice.insurer_share_cents <= 0:
        raise ValidationError(_("Set the insurer's share before submitting the claim."))
    if target == ClaimStatus.REJECTED:
        note = _reason(note, "rejection")
    if len(note) > 300:
        raise ValidationError(_("Keep the note under 300 characters."))
    if target == ClaimStatus.PAID:
        owed = insurer_outstanding(invoice, int(_insurance_paid(session, [invoice.id]).get(invoice.id) or 0))
        owed = min(owed, invoice.total_cents - invoice.paid_cents)
        if owed > 0:
            with use_language(default_language()):
                reference = _("claim {number}").format(number=invoice.number)[:80]
            _pay(session, actor, invoice, owed, PaymentMethod.INSURANCE, reference)
    invoice.claim_status, invoice.claim_note, invoice.updated_at = target, note or invoice.claim_note, utcnow()
    audit.record(session, actor, "invoice.claim", entity_type="invoice", entity_id=invoice.id,
                 patient_id=invoice.patient_id, detail=f"{current.value} → {target.value} {note}".strip())
    if target == ClaimStatus.REJECTED:
        notifications.notify(session, invoice.patient_id, lambda: _("Insurance claim rejected"),
                             lambda: _("Your insurer rejected the claim on invoice {number}: {reason}. "
                                       "The balance is now due from you.").format(number=_number(invoice),
                                                                                  reason=note),
                             PATIENT_INVOICES_LINK)
    totals.open_part_changed(session, invoice, before)
    _publish(session, invoice)
    session.commit()


# --- the invoice PDF -----------------------------------------------------------------------------


def invoice_pdf(*, session: Session, actor: Actor, invoice_id: int) -> DownloadedFile:
    """The invoice as a PDF, for its patient or accounts; every download is audited."""
    detail = invoice_detail(session=session, actor=actor, invoice_id=invoice_id)
    data = _render_invoice(detail)
    audit.record(session, actor, "invoice.download", entity_type="invoice", entity_id=detail.invoice.id,
                 patient_id=session.get(Invoice, detail.invoice.id).patient_id)
    session.commit()
    return DownloadedFile(f"{detail.invoice.number.replace(' ', '-')}.pdf", "application/pdf", data)


def _render_invoice(detail: InvoiceDetail) -> bytes:
    row = detail.invoice
    title = phrase(_("Invoice {number}"), number=row.number)
    pdf = letterhead(title, title)
    pdf.ln(3)

    def pair(label: str, value: str) -> None:
        field(pdf, label, value, label_width=40)

    pair(_("Patient"), f"{row.patient} ({row.mrn})")
    pair(_("Status"), row.status)
    pair(_("Issued"), row.issued)
    pair(_("Due"), row.due)
    if row.insurer:
        pair(_("Insurer"), phrase(_("{insurer}, policy {policy}"), insurer=row.insurer, policy=detail.policy_number))
    pdf.ln(4)
    widths = (24, 92, 14, 28, 28)
    aligns = ("L", "L", "R", "R", "R")
    headings = (_("Date"), _("Service"), _("Qty"), _("Unit price"), _("Amount"))
    table_row(pdf, zip(widths, headings, aligns, strict=True), size=9, bold=True, height=7, border="B")
    for line in detail.lines:
        cells = (line.service_date, line.description[:60], format_number(line.quantity), line.unit_price, line.amount)
        table_row(pdf, zip(widths, cells, aligns, strict=True), size=9)
    pdf.ln(2)

    def total(label: str, value: str, *, bold: bool = False) -> None:
        table_row(pdf, ((sum(widths[:-1]), label, "R"), (widths[-1], value, "R")), size=10, bold=bold)

    total(_("Charges"), detail.subtotal)
    if detail.discount_cents:
        total(phrase(_("Discount ({reason})"), reason=detail.discount_reason[:60]),
              _hyphen_minus(format_money(-detail.discount_cents)))
    total(_("Total"), row.total, bold=True)
    for payment in detail.payments:
        total(f"{payment.method} {payment.received_day} {payment.reference}"[:70], _hyphen_minus(payment.amount))
    total(_("Paid"), row.paid)
    if row.insurer and row.insurer_share_cents:
        total(phrase(_("Expected from {insurer}"), insurer=row.insurer), row.insurer_share)
    total(_("Balance"), row.balance, bold=True)
    return closing_note(pdf, phrase(_("Amounts in {currency}. Printed {time} ({zone})."), currency=settings.CURRENCY,
                                    time=format_local(utcnow()), zone=settings.TIMEZONE.key))


def _hyphen_minus(amount: str) -> str:
    """A credit on the invoice (the discount, a refund) with the hyphen-minus the PDF has always
    printed, where the formatter writes the minus sign U+2212."""
    return amount.replace("\u2212", "-")

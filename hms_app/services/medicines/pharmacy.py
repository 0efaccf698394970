"""The pharmacy's prescription queue: verify or reject, then dispense from stock.

A prescription moves issued → verified → partly dispensed → dispensed, or is rejected with
a reason (from issued or verified, before anything is handed out); the prescriber is
notified of a rejection. Only pharmacy staff (``Permission.PHARMACY_DISPENSE``) move it.

Dispensing takes, item by item, any quantity up to what is still owed. Units come from the
medicine's usable batches, first to expire first (FEFO); an expired batch is never used.
Each batch drawn on gives one ``dispensation`` row and one ledger row. The prescription and
then the batches are locked (``FOR UPDATE`` on PostgreSQL; SQLite's writers queue on its
write lock), so two pharmacists dispensing the last units at once cannot both succeed: the
second finds the stock gone and is told so, and nothing of theirs is written.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session

from hms_app.db.enums import Permission, PrescriptionStatus, Role, StockMovementKind
from hms_app.db.models import (
    Dispensation,
    Medicine,
    PatientProfile,
    Prescription,
    PrescriptionItem,
    StockBatch,
    User,
)
from hms_app.db.types import utcnow
from hms_app.services.accounting import billing
from hms_app.services.core import audit, events, receipts
from hms_app.services.core.access import access_by_id, require
from hms_app.services.core.actor import Actor
from hms_app.services.core.errors import Conflict, ValidationError
from hms_app.services.core.ids import parse_id
from hms_app.services.core.language import N_, _, ngettext
from hms_app.services.core.localtime import format_date, format_local, local_today
from hms_app.services.core.numbers import format_money
from hms_app.services.core.paging import Page, clamp_page
from hms_app.services.core.text import one_line, storable
from hms_app.services.medicines.inventory import (
    STOCK_TOPIC,
    is_usable,
    medicine_label,
    record_movement,
)
from hms_app.services.messaging import notifications

OPEN_STATUSES = [PrescriptionStatus.ISSUED.value, PrescriptionStatus.VERIFIED.value,
                 PrescriptionStatus.PARTLY_DISPENSED.value]
QUEUE_FILTERS = {
    "": OPEN_STATUSES,
    "issued": [PrescriptionStatus.ISSUED.value],
    "verified": [PrescriptionStatus.VERIFIED.value, PrescriptionStatus.PARTLY_DISPENSED.value],
    "done": [PrescriptionStatus.DISPENSED.value, PrescriptionStatus.REJECTED.value],
}
PRESCRIPTIONS_TOPIC = "prescriptions"
PATIENT_PRESCRIPTIONS_LINK = "/patient/prescriptions"
# The users a query joins in their roles, aliased once: building an alias costs more CPU
# than running a short query (about 1.4 ms per statement), and every list page joins them.
_PATIENT = sa.orm.aliased(User, name="patient")
_DOCTOR = sa.orm.aliased(User, name="doctor")


STATUS_LABELS = {
    PrescriptionStatus.ISSUED: N_("issued"),
    PrescriptionStatus.VERIFIED: N_("verified"),
    PrescriptionStatus.PARTLY_DISPENSED: N_("partly dispensed"),
    PrescriptionStatus.DISPENSED: N_("dispensed"),
    PrescriptionStatus.REJECTED: N_("rejected"),
}


def status_label(status: object) -> str:
    label = STATUS_LABELS.get(str(status))
    return _(label) if label else str(status).replace("_", " ")


def directions_text(item: PrescriptionItem) -> str:
    """How the item is taken, as the pharmacy reads it: "1 tablet oral twice daily for 5 days"."""
    # The English reads "for 1 days" as it always has; the catalogues give each language its forms.
    return ngettext("{dose} {route} {frequency} for {n} days", "{dose} {route} {frequency} for {n} days",
                    item.days).format(dose=item.dose, route=item.route, frequency=item.frequency, n=item.days)


def _progress(item: QueueItem) -> str:
    """An item of a prescription and how much of it is handed out, for the queue and the patient."""
    return _("{medicine} — {directions} · {dispensed} of {quantity} dispensed").format(
        medicine=item.medicine, directions=item.directions, dispensed=item.dispensed, quantity=item.quantity)


@dataclass(frozen=True)
class QueueItem:
    medicine: str
    directions: str
    quantity: int
    dispensed: int
    warnings: str
    override_reason: str


@dataclass(frozen=True)
class QueueRow:
    id: int
    issued: str
    patient: str
    mrn: str
    prescriber: str
    status: str
    status_value: str
    status_reason: str
    items: list[QueueItem]
    items_text: str
    overrides_text: str


def _items_of(session: Session, ids: list[int]) -> dict[int, list[QueueItem]]:
    items: dict[int, list[QueueItem]] = {}
    for item, medicine in session.execute(
        sa.select(PrescriptionItem, Medicine).join(Medicine, Medicine.id == PrescriptionItem.medicine_id)
        .where(PrescriptionItem.prescription_id.in_(ids)).order_by(PrescriptionItem.id)
    ):
        items.setdefault(item.prescription_id, []).append(QueueItem(
            medicine_label(medicine), directions_text(item),
            item.quantity, item.dispensed_quantity, item.warnings, item.override_reason))
    return items


def _oldest_first(statuses: list[str], offset: int, limit: int) -> sa.Select:
    """The ids of one page of prescriptions in ``statuses``, oldest first, read off the index.

    ``status IN (...) ORDER BY created_at`` makes the database collect and sort every
    prescription in those statuses; one ordered walk of ``ix_prescription_status_created`` per
    status, each stopping after ``offset + limit`` rows, merged, reads only those rows.
    """
    walks = [sa.select(Prescription.id, Prescription.created_at).where(Prescription.status == status)
             .order_by(Prescription.created_at, Prescription.id).limit(offset + limit).subquery()
             for status in statuses]
    merged = sa.union_all(*[sa.select(walk.c.id, walk.c.created_at) for walk in walks]).subquery()
    return sa.select(merged.c.id).order_by(merged.c.created_at, merged.c.id).offset(offset).limit(limit)


def prescription_queue(*, session: Session, actor: Actor, show: str = "", search: str = "", page: int = 1,
                       page_size: int = 20) -> Page[QueueRow]:
    """Prescriptions to work, oldest first (open ones by default), with items and any safety override."""
    require(session, actor, Permission.PHARMACY_DISPENSE, action="pharmacy.queue")
    page, page_size = clamp_page(page, page_size)
    statuses = QUEUE_FILTERS.get(str(show or ""), OPEN_STATUSES)
    patient, doctor = _PATIENT, _DOCTOR
    query = (
        sa.select(Prescription, patient.full_name, PatientProfile.mrn, doctor.full_name)
        .join(patient, patient.id == Prescription.patient_id)
        .join(PatientProfile, PatientProfile.user_id == Prescription.patient_id)
        .join(doctor, doctor.id == Prescription.doctor_id)
        .where(Prescription.status.in_(statuses))
    )
    term = storable(str(search or "").strip().lower()[:60], _("search"))
    newest_first = statuses == QUEUE_FILTERS["done"]
    order = (Prescription.updated_at.desc(), Prescription.id.desc()) if newest_first else \
        (Prescription.created_at, Prescription.id)
    if term:
        query = query.where(sa.or_(sa.func.lower(patient.full_name).contains(term, autoescape=True),
                                   sa.func.lower(PatientProfile.mrn).contains(term, autoescape=True)))
        total = session.execute(sa.select(sa.func.count()).select_from(query.subquery())).scalar_one()
    else:
        # Every prescription has its patient, profile and prescriber (foreign keys; a chart needs
        # a profile), so without a search the joins cannot change the count: counting the
        # status index alone spares joining every open prescription (21,000 at scale 1).
        total = session.execute(sa.select(sa.func.count()).select_from(Prescription)
                                .where(Prescription.status.in_(statuses))).scalar_one()
    if term or newest_first:
        rows = session.execute(query.order_by(*order).offset((page - 1) * page_size).limit(page_size)).all()
    else:
        ids = _oldest_first(statuses, (page - 1) * page_size, page_size)
        rows = session.execute(query.where(Prescription.id.in_(ids)).order_by(*order)).all()
    ids = [p.id for p, *_names in rows]
    items = _items_of(session, ids)
    if ids:
        audit.record(session, actor, "pharmacy.queue", detail=f"{len(ids)} prescriptions shown")  # i18n: not shown (audit)
        session.commit()
    return Page([_queue_row(p, name, mrn, prescriber, items.get(p.id, [])) for p, name, mrn, prescriber in rows],
                total, page, page_size)


def _queue_row(p: Prescription, name: str, mrn: str | None, prescriber: str, items: list[QueueItem]) -> QueueRow:
    return QueueRow(
        id=p.id, issued=format_local(p.created_at), patient=name, mrn=mrn or "", prescriber=prescriber,
        status=status_label(p.status), status_value=str(p.status), status_reason=p.status_reason, items=items,
        items_text="\n".join(_progress(i) if i.dispensed else
                             _("{medicine} — {directions} · quantity {quantity}").format(
                                 medicine=i.medicine, directions=i.directions, quantity=i.quantity)
                             for i in items),
        overrides_text="\n".join(_("{medicine}: {warnings} Override reason: {reason}").format(
            medicine=i.medicine, warnings=i.warnings, reason=i.override_reason) for i in items if i.override_reason),
    )


@dataclass(frozen=True)
class QueueCounts:
    to_verify: int
    to_dispense: int
    """Verified or partly dispensed: units still owed."""


def queue_counts(*, session: Session, actor: Actor) -> QueueCounts:
    """How many prescriptions wait for each step, for the dashboard's tiles."""
    require(session, actor, Permission.PHARMACY_DISPENSE, action="pharmacy.queue")
    counts = dict(session.execute(
        sa.select(Prescription.status, sa.func.count()).where(Prescription.status.in_(OPEN_STATUSES))
        .group_by(Prescription.status)).all())
    return QueueCounts(counts.get(PrescriptionStatus.ISSUED.value, 0),
                       counts.get(PrescriptionStatus.VERIFIED.value, 0)
                       + counts.get(PrescriptionStatus.PARTLY_DISPENSED.value, 0))


def refusal_message(move: str, status: str) -> str:
    """Why ``move`` (verify, reject, dispense) cannot happen to a prescription in ``status``."""
    status = str(status)
    if status == PrescriptionStatus.REJECTED:
        return _("This prescription was rejected; it can no longer change.")
    if status == PrescriptionStatus.DISPENSED:
        return _("This prescription is already fully dispensed.")
    return _({
        ("verify", PrescriptionStatus.VERIFIED): N_("This prescription is already verified."),
        ("verify", PrescriptionStatus.PARTLY_DISPENSED): N_("This prescription is already verified and being dispensed."),
        ("reject", PrescriptionStatus.PARTLY_DISPENSED):
            N_("Part of this prescription is already dispensed, so it can no longer be rejected."),
        ("dispense", PrescriptionStatus.ISSUED): N_("Verify the prescription before dispensing it."),
    }.get((move, status), N_("This prescription cannot be changed that way now.")))


_MOVES = {
    "verify": [PrescriptionStatus.ISSUED.value],
    "reject": [PrescriptionStatus.ISSUED.value, PrescriptionStatus.VERIFIED.value],
    "dispense": [PrescriptionStatus.VERIFIED.value, PrescriptionStatus.PARTLY_DISPENSED.value],
}


def _prescription_for(session: Session, actor: Actor, prescription_id: object, move: str) -> Prescription:
    """The prescription, locked for the rest of the transaction, if ``move`` may start from its status."""
    action = f"prescription.{move}"
    require(session, actor, Permission.PHARMACY_DISPENSE, action=action)
    prescription = access_by_id(session, actor, Prescription, prescription_id, action=action, lock=True,
                                missing=N_("That prescription does not exist."), entity_type="prescription")
    if str(prescription.status) not in _MOVES[move]:
        raise Conflict(refusal_message(move, prescription.status))
    return prescription


def _publish(session: Session, prescription: Prescription, *, stock: bool = False) -> None:
    events.publish(session, PRESCRIPTIONS_TOPIC, roles=[Role.PHARMACY.value],
                   user_ids=[prescription.patient_id, prescription.doctor_id])
    if stock:
        events.publish(session, STOCK_TOPIC, roles=[Role.PHARMACY.value])


def verify_prescription(*, session: Session, actor: Actor, prescription_id: int) -> None:
    """The pharmacist has checked the prescription: issued → verified."""
    prescription = _prescription_for(session, actor, prescription_id, "verify")
    prescription.status = PrescriptionStatus.VERIFIED
    prescription.checked_by, prescription.checked_at = actor.user_id, utcnow()
    prescription.updated_at = utcnow()
    audit.record(session, actor, "prescription.verify", entity_type="prescription", entity_id=prescription.id,
                 patient_id=prescription.patient_id)
    _publish(session, prescription)
    session.commit()


def reject_prescription(*, session: Session, actor: Actor, prescription_id: int, reason: str) -> None:
    """Refuse to dispense, with a reason the prescriber and the patient are told."""
    prescription = _prescription_for(session, actor, prescription_id, "reject")
    reason = one_line(reason, _("reason"))
    if len(reason) < 5:
        raise ValidationError(_("Say why the prescription is rejected (for example: dose exceeds the maximum)."))
    if len(reason) > 500:
        raise ValidationError(_("Keep the reason under 500 characters."))
    prescription.status = PrescriptionStatus.REJECTED
    prescription.status_reason = reason
    prescription.checked_by, prescription.checked_at = actor.user_id, utcnow()
    prescription.updated_at = utcnow()
    patient = session.get(User, prescription.patient_id)
    audit.record(session, actor, "prescription.reject", entity_type="prescription", entity_id=prescription.id,
                 patient_id=prescription.patient_id, detail=reason)
    notifications.notify(session, prescription.doctor_id, lambda: _("Prescription rejected by the pharmacy"),
                         lambda: _("Prescription {id} for {patient}: {reason}").format(
                             id=prescription.id, patient=patient.full_name, reason=reason),
                         f"/doctor/patient?id={prescription.patient_id}")
    notifications.notify(session, prescription.patient_id, lambda: _("Your prescription was not dispensed"),
                         lambda: _("The pharmacy could not dispense prescription {id}: {reason} "
                                   "Your doctor has been told.").format(id=prescription.id, reason=reason),
                         PATIENT_PRESCRIPTIONS_LINK)
    _publish(session, prescription)
    session.commit()


# --- dispensing ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DispenseLine:
    item_id: int
    medicine: str
    directions: str
    quantity: int
    dispensed: int
    remaining: int
    in_stock: int
    """Usable units on hand now."""
    next_lot: str
    """The batch FEFO would take from first, with its expiry."""


@dataclass(frozen=True)
class DispenseView:
    id: int
    patient: str
    mrn: str
    prescriber: str
    status: str
    status_value: str
    lines: list[DispenseLine]


def dispense_view(*, session: Session, actor: Actor, prescription_id: int) -> DispenseView:
    """The prescription's items with what is still owed and what stock can cover it."""
    require(session, actor, Permission.PHARMACY_DISPENSE, action="prescription.view")
    prescription = access_by_id(session, actor, Prescription, prescription_id, action="prescription.view",
                                missing=N_("That prescription does not exist."), entity_type="prescription")
    patient = session.get(User, prescription.patient_id)
    profile = session.get(PatientProfile, prescription.patient_id)
    doctor = session.get(User, prescription.doctor_id)
    today = local_today()
    lines = []
    for item, medicine in session.execute(
        sa.select(PrescriptionItem, Medicine).join(Medicine, Medicine.id == PrescriptionItem.medicine_id)
        .where(PrescriptionItem.prescription_id == prescription.id).order_by(PrescriptionItem.id)
    ):
        batches = _usable_batches(session, medicine.id, today)
        first = next((b for b in batches if b.quantity_on_hand > 0), None)
        lines.append(DispenseLine(
            item.id, medicine_label(medicine), directions_text(item),
            item.quantity, item.dispensed_quantity, item.quantity - item.dispensed_quantity,
            sum(b.quantity_on_hand for b in batches),
            _("lot {lot}, expires {day}").format(lot=first.lot, day=format_date(first.expiry_date)) if first
            else _("none in stock")))
    audit.record(session, actor, "prescription.view", entity_type="prescription", entity_id=prescription.id,
                 patient_id=prescription.patient_id)
    session.commit()
    return DispenseView(prescription.id, patient.full_name, profile.mrn if profile else "", doctor.full_name,
                        status_label(prescription.status), str(prescription.status), lines)


def _usable_batches(session: Session, medicine_id: int, today, *, lock: bool = False) -> list[StockBatch]:
    query = (sa.select(StockBatch).where(StockBatch.medicine_id == medicine_id, StockBatch.quantity_on_hand > 0)
             .order_by(StockBatch.expiry_date, StockBatch.id))
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    return [b for b in session.execute(query).scalars() if is_usable(b.expiry_date, today)]


def fefo_plan(batches: list[StockBatch], wanted: int) -> list[tuple[StockBatch, int]]:
    """Take ``wanted`` units from ``batches`` (already in FEFO order): (batch, units) pairs."""
    plan = []
    for batch in batches:
        if wanted <= 0:
            break
        units = min(wanted, batch.quantity_on_hand)
        if units > 0:
            plan.append((batch, units))
            wanted -= units
    return plan


def _quantities(items: dict[int, PrescriptionItem], names: dict[int, str], quantities: object) -> dict[int, int]:
    if not isinstance(quantities, dict):
        raise ValidationError(_("Enter a quantity for each medicine to dispense."))
    wanted: dict[int, int] = {}
    for key, value in quantities.items():
        item_id = parse_id(key)
        if item_id not in items:
            raise ValidationError(_("Dispense only the medicines on this prescription."))
        text = str(value if value is not None else "").strip()
        if not text:
            continue
        try:
            units = int(text)
        except ValueError:
            raise ValidationError(_("Enter each quantity as a whole number of units.")) from None
        if units < 0:
            raise ValidationError(_("A quantity to dispense cannot be negative."))
        item = items[item_id]
        remaining = item.quantity - item.dispensed_quantity
        if units > remaining:
            # The English reads "1 units" as it always has; the catalogues give each language its forms.
            raise ValidationError(ngettext("Only {n} units of {medicine} are still owed; {wanted} is more than that.",
                                           "Only {n} units of {medicine} are still owed; {wanted} is more than that.",
                                           remaining).format(n=remaining, medicine=names[item.medicine_id],
                                                             wanted=units))
        if units:
            wanted[item_id] = units
    if not wanted:
        raise ValidationError(_("Enter how many units to dispense of at least one medicine."))
    return wanted


@dataclass(frozen=True)
class DispenseResult:
    status: str
    summary: str


def dispense(*, session: Session, actor: Actor, prescription_id: int, quantities: dict,
             request_key: str | None = None) -> DispenseResult:
    """Dispense ``quantities`` (item id → units) of a verified prescription, first-expiring batch first.

    ``request_key`` is the dispensing form's key (``receipts``): a repeat of the request (a
    double click) hands out nothing more and answers as the first did.

    Raises:
        Conflict: when usable stock cannot cover a quantity; nothing at all is dispensed then.
    """
    require(session, actor, Permission.PHARMACY_DISPENSE, action="prescription.dispense")
    # Claimed before the prescription's status is checked: a repeat finds it dispensed already.
    if (earlier := receipts.claim(session, actor, key=request_key, action="prescription.dispense")) is not None:
        if earlier.object_id != parse_id(prescription_id):
            raise ValidationError(_(receipts.EXPIRED))
        status, _newline, summary = earlier.result.partition("\n")
        return DispenseResult(status, summary)
    prescription = _prescription_for(session, actor, prescription_id, "dispense")
    items = {i.id: i for i in session.execute(
        sa.select(PrescriptionItem).where(PrescriptionItem.prescription_id == prescription.id)
        .order_by(PrescriptionItem.id).execution_options(populate_existing=True)).scalars()}
    medicines = {m.id: m for m in session.execute(
        sa.select(Medicine).where(Medicine.id.in_({i.medicine_id for i in items.values()}))).scalars()}
    wanted = _quantities(items, {k: medicine_label(m) for k, m in medicines.items()}, quantities)
    today = local_today()
    needed: dict[int, int] = {}
    for item_id, units in wanted.items():
        needed[items[item_id].medicine_id] = needed.get(items[item_id].medicine_id, 0) + units
    # Lock every batch of these medicines in one statement, in id order, so that two
    # dispensings never wait on each other's locks in opposite orders.
    locked = session.execute(
        sa.select(StockBatch).where(StockBatch.medicine_id.in_(needed)).order_by(StockBatch.id)
        .with_for_update().execution_options(populate_existing=True)).scalars().all()
    usable: dict[int, list[StockBatch]] = {}
    for batch in sorted(locked, key=lambda b: (b.expiry_date, b.id)):
        if batch.quantity_on_hand > 0 and is_usable(batch.expiry_date, today):
            usable.setdefault(batch.medicine_id, []).append(batch)
    for medicine_id, units in needed.items():
        available = sum(b.quantity_on_hand for b in usable.get(medicine_id, []))
        if available < units:
            name = medicine_label(medicines[medicine_id])
            session.rollback()
            # The English reads "1 usable units" as it always has; the catalogues give each language its forms.
            raise Conflict(ngettext("Not enough {medicine} in stock: {n} usable units on hand, {needed} needed. "
                                    "Nothing was dispensed.",
                                    "Not enough {medicine} in stock: {n} usable units on hand, {needed} needed. "
                                    "Nothing was dispensed.", available).format(medicine=name, n=available,
                                                                                needed=units)
                           if available else
                           _("{medicine} has run out: no usable units on hand. Nothing was dispensed.")
                           .format(medicine=name))
    lines: list[tuple[int, str, str]] = []
    for item_id, units in wanted.items():
        item = items[item_id]
        medicine = medicines[item.medicine_id]
        for batch, taken in fefo_plan(usable[item.medicine_id], units):
            record = Dispensation(prescription_id=prescription.id, prescription_item_id=item.id, batch_id=batch.id,
                                  quantity=taken, unit_price_cents=medicine.unit_price_cents,
                                  dispensed_by=actor.user_id)
            session.add(record)
            session.flush()
            # The batch's quantity is reloaded when next read, so a second item of the same
            # medicine plans from what this one left.
            record_movement(session, actor, batch, StockMovementKind.DISPENSE, -taken,
                            note=f"prescription {prescription.id}", dispensation_id=record.id)
            billing.charge_dispensation(session, dispensation_id=record.id, patient_id=prescription.patient_id,
                                        doctor_id=prescription.doctor_id, medicine=medicine_label(medicine),
                                        quantity=taken, unit_price_cents=medicine.unit_price_cents)
            lines.append((taken, medicine_label(medicine), batch.lot))
        item.dispensed_quantity += units
    complete = all(i.dispensed_quantity >= i.quantity for i in items.values())
    prescription.status = PrescriptionStatus.DISPENSED if complete else PrescriptionStatus.PARTLY_DISPENSED
    prescription.updated_at = utcnow()
    audit.record(session, actor, "prescription.dispense", entity_type="prescription", entity_id=prescription.id,
                 patient_id=prescription.patient_id,
                 detail="; ".join(f"{n} × {name} (lot {lot})" for n, name, lot in lines))  # i18n: not shown (audit)
    if complete:
        notifications.notify(session, prescription.patient_id, lambda: _("Your prescription is ready"),
                             lambda: _("Prescription {id} has been dispensed.").format(id=prescription.id),
                             PATIENT_PRESCRIPTIONS_LINK)
    handed_out = "; ".join(_("{units} × {medicine} (lot {lot})").format(units=n, medicine=name, lot=lot)
                           for n, name, lot in lines)
    result = DispenseResult(status_label(prescription.status), _("Dispensed {lines}.").format(lines=handed_out))
    receipts.fulfil(session, key=request_key, object_id=prescription.id, result=f"{result.status}\n{result.summary}")
    _publish(session, prescription, stock=True)
    session.commit()
    return result


# --- what the patient sees -----------------------------------------------------------------------


@dataclass(frozen=True)
class PatientPrescription:
    id: int
    issued: str
    prescriber: str
    status: str
    status_value: str
    status_reason: str
    items_text: str
    charge: str
    """What the dispensed units cost, at the prices when dispensed."""
    charge_cents: int = 0


def my_prescriptions(*, session: Session, actor: Actor, page: int = 1, page_size: int = 20) -> Page[PatientPrescription]:
    """The patient's own prescriptions, newest first, with each one's status."""
    require(session, actor, Permission.RECORD_READ_OWN, action="prescription.own")
    if actor.role != Role.PATIENT:
        audit.deny(session, actor, "prescription.own", N_("Only patients have a prescriptions page."))
    page, page_size = clamp_page(page, page_size)
    query = (sa.select(Prescription, User.full_name).join(User, User.id == Prescription.doctor_id)
             .where(Prescription.patient_id == actor.user_id))
    total = session.execute(sa.select(sa.func.count()).select_from(query.subquery())).scalar_one()
    rows = session.execute(query.order_by(Prescription.created_at.desc(), Prescription.id.desc())
                           .offset((page - 1) * page_size).limit(page_size)).all()
    ids = [p.id for p, _doctor in rows]
    items = _items_of(session, ids)
    charges = dict(session.execute(
        sa.select(Dispensation.prescription_id, sa.func.sum(Dispensation.quantity * Dispensation.unit_price_cents))
        .where(Dispensation.prescription_id.in_(ids)).group_by(Dispensation.prescription_id)).all())
    return Page([
        PatientPrescription(
            p.id, format_local(p.created_at), doctor, status_label(p.status), str(p.status), p.status_reason,
            "\n".join(_progress(i) for i in items.get(p.id, [])),
            format_money(int(charges.get(p.id) or 0)), int(charges.get(p.id) or 0))
        for p, doctor in rows
    ], total, page, page_size)

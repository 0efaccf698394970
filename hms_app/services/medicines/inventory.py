"""Pharmacy stock: medicines, batches, the stock ledger and the alerts.

A batch is one lot of a medicine with an expiry date and a quantity on hand. Every change
to that quantity is one ``stock_movement`` row (received, dispensed, or adjusted as damaged,
expired or a count correction), written in the same transaction as the change, so the
ledger of a batch always sums to its quantity on hand (``ledger_mismatches`` checks it).
A quantity never goes below zero: each decrement is a conditional UPDATE, and the database
refuses a negative value with a CHECK constraint besides.

A batch is usable until the day before its expiry date: from its expiry date on it is
"expired", is never dispensed, and shows in the alerts until it is written off. "Low
stock" is usable stock at or below the medicine's reorder level; "expiring" is a usable
batch whose expiry date falls within ``EXPIRY_WARNING_DAYS``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import sqlalchemy as sa
from sqlmodel import Session

from hms_app.db.enums import ADJUSTMENT_KINDS, Permission, Role, StockMovementKind
from hms_app.db.models import Medicine, StockBatch, StockMovement, User
from hms_app.db.types import utcnow
from hms_app.services.core import audit, events
from hms_app.services.core.access import access_by_id, require
from hms_app.services.core.actor import Actor
from hms_app.services.core.errors import Conflict, ValidationError
from hms_app.services.core.language import N_, _, default_language, ngettext, use_language
from hms_app.services.core.localtime import format_date, format_local, local_today
from hms_app.services.core.numbers import format_money, parse_int, parse_money
from hms_app.services.core.paging import Page, clamp_page, fetch_page, order_by
from hms_app.services.core.text import one_line, storable

EXPIRY_WARNING_DAYS = 90
MAX_UNITS = 100_000
STOCK_TOPIC = "stock"
KIND_LABELS = {
    StockMovementKind.RECEIVE: N_("Received"),
    StockMovementKind.DISPENSE: N_("Dispensed"),
    StockMovementKind.DAMAGED: N_("Damaged"),
    StockMovementKind.EXPIRED: N_("Expired"),
    StockMovementKind.COUNT_CORRECTION: N_("Count correction"),
}
"""Each kind of stock movement with its label (translated where shown)."""


def is_usable(expiry: date, today: date) -> bool:
    """A batch may be dispensed only before its expiry date."""
    return expiry > today


def medicine_label(medicine: Medicine) -> str:
    return f"{medicine.name} {medicine.strength} {medicine.form}"


def _publish(session: Session) -> None:
    events.publish(session, STOCK_TOPIC, roles=[Role.PHARMACY.value])


def _clean(value: object, label: str, *, low: int, high: int) -> str:
    text = one_line(value, label)
    if len(text) < low:
        raise ValidationError(_("Enter the {label}.").format(label=label) if low <= 1 else
                              ngettext("The {label} needs at least {n} character.",
                                       "The {label} needs at least {n} characters.", low).format(label=label, n=low))
    if len(text) > high:
        raise ValidationError(ngettext("Keep the {label} under {n} character.", "Keep the {label} under {n} characters.",
                                       high + 1).format(label=label, n=high + 1))
    return text


def _parse_date(value: object, label: str) -> date:
    try:
        return date.fromisoformat(str(value or "").strip())
    except ValueError:
        raise ValidationError(_("Enter the {label} as a date (YYYY-MM-DD).").format(label=label)) from None


# --- reading: the stock list, batches, alerts, the ledger ------------------------------------------


@dataclass(frozen=True)
class StockRow:
    id: int
    name: str
    strength: str
    form: str
    unit_price: str
    reorder_level: int
    on_hand: int
    """Usable units (batches not yet expired)."""
    expired_on_hand: int
    next_expiry: str
    low: bool
    state: str
    """"Low stock", "Out of stock", "In stock" or "Inactive", in English: the badge's colour."""
    ingredients: str = ""
    drug_class: str = ""
    is_active: bool = True
    price_input: str = ""
    """The unit price as the edit form takes it (``12.50``)."""
    state_label: str = ""
    """``state`` in the reader's language, for the badge's text."""


def _stock_columns(today: date):
    usable = sa.func.coalesce(sa.func.sum(sa.case((StockBatch.expiry_date > today, StockBatch.quantity_on_hand),
                                                  else_=0)), 0)
    expired = sa.func.coalesce(sa.func.sum(sa.case((StockBatch.expiry_date <= today, StockBatch.quantity_on_hand),
                                                   else_=0)), 0)
    next_expiry = sa.func.min(sa.case(
        (sa.and_(StockBatch.expiry_date > today, StockBatch.quantity_on_hand > 0), StockBatch.expiry_date)))
    return usable.label("usable"), expired.label("expired"), next_expiry.label("next_expiry")


def _stock_query(today: date, *, active: bool = True) -> sa.Select:
    usable, expired, next_expiry = _stock_columns(today)
    totals = (sa.select(StockBatch.medicine_id, usable, expired, next_expiry)
              .group_by(StockBatch.medicine_id).subquery("totals"))
    on_hand = sa.func.coalesce(totals.c.usable, 0)
    return (
        sa.select(Medicine, on_hand.label("on_hand"), sa.func.coalesce(totals.c.expired, 0).label("expired"),
                  totals.c.next_expiry)
        .outerjoin(totals, totals.c.medicine_id == Medicine.id)
        .where(Medicine.is_active if active else sa.not_(Medicine.is_active))
    ), on_hand


def _stock_row(medicine: Medicine, on_hand: int, expired: int, next_expiry: date | None) -> StockRow:
    low = on_hand <= medicine.reorder_level
    state = (N_("Inactive") if not medicine.is_active else N_("Out of stock") if on_hand == 0
             else (N_("Low stock") if low else N_("In stock")))
    return StockRow(
        id=medicine.id, name=medicine.name, strength=medicine.strength, form=medicine.form,
        unit_price=format_money(medicine.unit_price_cents), reorder_level=medicine.reorder_level,
        on_hand=int(on_hand), expired_on_hand=int(expired),
        next_expiry=format_date(next_expiry),
        low=low, state=state,
        ingredients=medicine.ingredients, drug_class=medicine.drug_class, is_active=medicine.is_active,
        price_input=f"{medicine.unit_price_cents // 100}.{medicine.unit_price_cents % 100:02d}",
        state_label=_(state),
    )


STOCK_FILTERS = ("", "low", "expiring", "expired", "inactive")


def stock_list(*, session: Session, actor: Actor, search: str = "", show: str = "", sort: str = "name",
               descending: bool = False, page: int = 1, page_size: int = 20) -> Page[StockRow]:
    """Every active medicine (or, shown "inactive", every medicine taken off the formulary) with its
    usable and expired stock, searched, filtered, sorted and paged in SQL."""
    require(session, actor, Permission.INVENTORY_MANAGE, action="stock.list")
    page, page_size = clamp_page(page, page_size)
    today = local_today()
    show = str(show or "")
    query, on_hand = _stock_query(today, active=show != "inactive")
    term = storable(str(search or "").strip().lower()[:60], _("search"))
    if term:
        query = query.where(sa.func.lower(Medicine.name).contains(term, autoescape=True))
    if show == "low":
        query = query.where(on_hand <= Medicine.reorder_level)
    elif show in ("expiring", "expired"):
        query = query.where(Medicine.id.in_(_alert_batches(today, show).with_only_columns(StockBatch.medicine_id)))
    columns = {"name": Medicine.name, "on_hand": on_hand, "reorder_level": Medicine.reorder_level,
               "unit_price": Medicine.unit_price_cents, "next_expiry": sa.literal_column("next_expiry")}
    query = query.order_by(order_by(columns, sort, descending, "name"), Medicine.strength, Medicine.id)
    total, rows = fetch_page(session, query, page=page, page_size=page_size)
    return Page([_stock_row(*row) for row in rows], total, page, page_size)


@dataclass(frozen=True)
class BatchRow:
    id: int
    medicine_id: int
    medicine: str
    lot: str
    expiry: str
    on_hand: int
    unit_cost: str
    supplier: str
    state: str
    """"Usable", "Expiring" (within 90 days) or "Expired", in English: the badge's colour."""
    state_label: str = ""
    """``state`` in the reader's language, for the badge's text."""


def _batch_state(expiry: date, today: date) -> str:
    if not is_usable(expiry, today):
        return N_("Expired")
    return N_("Expiring") if expiry <= today + timedelta(days=EXPIRY_WARNING_DAYS) else N_("Usable")


def _batch_row(batch: StockBatch, medicine: Medicine, today: date) -> BatchRow:
    state = _batch_state(batch.expiry_date, today)
    return BatchRow(batch.id, medicine.id, medicine_label(medicine), batch.lot, format_date(batch.expiry_date),
                    batch.quantity_on_hand, format_money(batch.unit_cost_cents), batch.supplier, state, _(state))


def _medicine(session: Session, actor: Actor, medicine_id: object, action: str) -> Medicine:
    return access_by_id(session, actor, Medicine, medicine_id, action=action,
                        missing=N_("That medicine is not in the formulary."), entity_type="medicine",
                        allowed=lambda m: m.is_active)


def medicine_batches(*, session: Session, actor: Actor, medicine_id: int) -> list[BatchRow]:
    """The medicine's batches that still hold stock, first to expire first."""
    require(session, actor, Permission.INVENTORY_MANAGE, action="stock.batches")
    medicine = _medicine(session, actor, medicine_id, "stock.batches")
    today = local_today()
    batches = session.execute(
        sa.select(StockBatch).where(StockBatch.medicine_id == medicine.id, StockBatch.quantity_on_hand > 0)
        .order_by(StockBatch.expiry_date, StockBatch.id)
    ).scalars()
    return [_batch_row(b, medicine, today) for b in batches]


def _alert_batches(today: date, which: str) -> sa.Select:
    query = sa.select(StockBatch, Medicine).join(Medicine, Medicine.id == StockBatch.medicine_id).where(
        StockBatch.quantity_on_hand > 0, Medicine.is_active)
    if which == "expired":
        return query.where(StockBatch.expiry_date <= today)
    return query.where(StockBatch.expiry_date > today,
                       StockBatch.expiry_date <= today + timedelta(days=EXPIRY_WARNING_DAYS))


@dataclass(frozen=True)
class StockAlerts:
    low_count: int
    expiring_count: int
    expired_count: int
    stock_value: str
    """Usable stock at cost."""
    expired_value: str
    low: list[StockRow]
    expiring: list[BatchRow]
    expired: list[BatchRow]


def stock_alerts(*, session: Session, actor: Actor, limit: int = 10) -> StockAlerts:
    """Counts and the first few of each alert, and the value of the stock, for the dashboard."""
    require(session, actor, Permission.INVENTORY_MANAGE, action="stock.alerts")
    limit = max(1, min(int(limit) if isinstance(limit, int) else 10, 50))
    today = local_today()
    query, on_hand = _stock_query(today)
    low_query = query.where(on_hand <= Medicine.reorder_level)
    low_count = session.execute(sa.select(sa.func.count()).select_from(low_query.subquery())).scalar_one()
    low = [_stock_row(*row) for row in session.execute(
        low_query.order_by(on_hand - Medicine.reorder_level, Medicine.name).limit(limit))]
    lists: dict[str, tuple[int, list[BatchRow]]] = {}
    for which in ("expiring", "expired"):
        batches = _alert_batches(today, which)
        count = session.execute(sa.select(sa.func.count()).select_from(batches.subquery())).scalar_one()
        rows = [_batch_row(b, m, today) for b, m in session.execute(
            batches.order_by(StockBatch.expiry_date, StockBatch.id).limit(limit))]
        lists[which] = (count, rows)
    value = sa.func.coalesce(sa.func.sum(StockBatch.quantity_on_hand * StockBatch.unit_cost_cents), 0)
    usable_value = session.execute(sa.select(value).where(StockBatch.expiry_date > today)).scalar_one()
    expired_value = session.execute(sa.select(value).where(StockBatch.expiry_date <= today)).scalar_one()
    return StockAlerts(low_count, lists["expiring"][0], lists["expired"][0], format_money(int(usable_value)),
                       format_money(int(expired_value)), low, lists["expiring"][1], lists["expired"][1])


@dataclass(frozen=True)
class MovementRow:
    id: int
    when: str
    medicine: str
    lot: str
    kind: str
    quantity: int
    change: str
    """The signed quantity as shown: "+100", "−3"."""
    note: str
    by: str


def stock_ledger(*, session: Session, actor: Actor, search: str = "", sort: str = "when", descending: bool = True,
                 page: int = 1, page_size: int = 20) -> Page[MovementRow]:
    """The stock ledger, newest first, searched by medicine name or lot."""
    require(session, actor, Permission.INVENTORY_MANAGE, action="stock.ledger")
    page, page_size = clamp_page(page, page_size)
    query = (sa.select(StockMovement, Medicine, StockBatch.lot, User.full_name)
             .join(Medicine, Medicine.id == StockMovement.medicine_id)
             .join(StockBatch, StockBatch.id == StockMovement.batch_id)
             .outerjoin(User, User.id == StockMovement.actor_id))
    term = storable(str(search or "").strip().lower()[:60], _("search"))
    if term:
        query = query.where(sa.or_(sa.func.lower(Medicine.name).contains(term, autoescape=True),
                                   sa.func.lower(StockBatch.lot).contains(term, autoescape=True)))
    columns = {"when": StockMovement.id, "medicine": Medicine.name, "kind": StockMovement.kind,
               "quantity": StockMovement.quantity}
    query = query.order_by(order_by(columns, sort, descending, "when"), StockMovement.id.desc())
    total, rows = fetch_page(session, query, page=page, page_size=page_size)
    return Page([
        MovementRow(m.id, format_local(m.created_at), medicine_label(medicine), lot,
                    _(KIND_LABELS[StockMovementKind(m.kind)]), m.quantity,
                    f"+{m.quantity}" if m.quantity > 0 else f"−{-m.quantity}", m.note, by or _("system"))
        for m, medicine, lot, by in rows
    ], total, page, page_size)


def ledger_mismatches(session: Session) -> list[tuple[int, int, int]]:
    """(batch id, on hand, ledger sum) of every batch whose ledger does not sum to its stock."""
    ledger = (sa.select(StockMovement.batch_id, sa.func.sum(StockMovement.quantity).label("total"))
              .group_by(StockMovement.batch_id).subquery())
    total = sa.func.coalesce(ledger.c.total, 0)
    return [tuple(row) for row in session.execute(
        sa.select(StockBatch.id, StockBatch.quantity_on_hand, total)
        .outerjoin(ledger, ledger.c.batch_id == StockBatch.id)
        .where(StockBatch.quantity_on_hand != total).order_by(StockBatch.id))]


# --- writing: receive, adjust, medicines ---------------------------------------------------------


def record_movement(session: Session, actor: Actor | None, batch: StockBatch, kind: StockMovementKind, quantity: int,
                    note: str = "", dispensation_id: int | None = None) -> None:
    """Change the batch's stock by ``quantity`` and write its ledger row, in the caller's transaction.

    Raises:
        Conflict: when taking ``-quantity`` would leave less than nothing; nothing is written.
    """
    changed = session.execute(
        sa.update(StockBatch).where(StockBatch.id == batch.id, StockBatch.quantity_on_hand + quantity >= 0)
        .values(quantity_on_hand=StockBatch.quantity_on_hand + quantity).execution_options(synchronize_session=False)
    ).rowcount
    if changed != 1:
        # The English reads "1 units" as it always has; the catalogues give each language its forms.
        raise Conflict(ngettext("Lot {lot} no longer holds {n} units; nothing was changed.",
                                "Lot {lot} no longer holds {n} units; nothing was changed.", -quantity)
                       .format(lot=batch.lot, n=-quantity))
    session.add(StockMovement(batch_id=batch.id, medicine_id=batch.medicine_id, kind=kind, quantity=quantity,
                              note=note, dispensation_id=dispensation_id,
                              actor_id=actor.user_id if actor else None))
    session.expire(batch, ["quantity_on_hand"])


@dataclass(frozen=True)
class ReceiveForm:
    medicine_id: object
    lot: str
    expiry: str
    quantity: object
    unit_cost: str
    supplier: str


def receive_stock(*, session: Session, actor: Actor, form: ReceiveForm) -> int:
    """Book a delivery into stock. Returns the batch id.

    A lot already on record is topped up (its cost becomes the average of old and new
    units); the same lot with another expiry date is refused as a likely typing error.
    """
    require(session, actor, Permission.INVENTORY_MANAGE, action="stock.receive")
    medicine = _medicine(session, actor, form.medicine_id, "stock.receive")
    batch = book_delivery(session, actor, medicine, form)
    _publish(session)
    session.commit()
    return batch.id


def read_lot(value: object) -> str:
    """A lot number as it is kept: trimmed, upper case."""
    return _clean(value, _("lot number"), low=1, high=40).upper()


def lot_on_record(session: Session, medicine_id: int, lot: str) -> StockBatch | None:
    return session.execute(sa.select(StockBatch).where(StockBatch.medicine_id == medicine_id,
                                                       StockBatch.lot == lot)).scalar_one_or_none()


def book_delivery(session: Session, actor: Actor | None, medicine: Medicine, form: ReceiveForm) -> StockBatch:
    """``receive_stock``'s rules and writes (the batch, its ledger row, the audit row) in the
    caller's transaction, for a medicine the caller has checked; the CSV import receives lots here."""
    lot = read_lot(form.lot)
    expiry = _parse_date(form.expiry, _("expiry date"))
    today = local_today()
    if not is_usable(expiry, today):
        raise ValidationError(_("That lot is already expired; expired stock cannot be received."))
    if expiry > today + timedelta(days=365 * 10):
        raise ValidationError(_("Check the expiry date: it is more than ten years away."))
    quantity = parse_int(form.quantity, _("quantity received"), low=1, high=MAX_UNITS)
    unit_cost = parse_money(form.unit_cost, _("unit cost"))
    supplier = _clean(form.supplier, _("supplier"), low=2, high=120)
    on_record = sa.select(StockBatch).where(StockBatch.medicine_id == medicine.id, StockBatch.lot == lot).with_for_update()
    batch = session.execute(on_record).scalar_one_or_none()
    if batch is None:
        batch = StockBatch(medicine_id=medicine.id, lot=lot, expiry_date=expiry, quantity_on_hand=0,
                           unit_cost_cents=unit_cost, supplier=supplier)
        try:
            with session.begin_nested():
                session.add(batch)
        except sa.exc.IntegrityError:
            # A lot not yet on record locks no row, so another delivery of it booked at this
            # moment got past the query too and made the batch first: top that one up.
            batch = session.execute(on_record.execution_options(populate_existing=True)).scalar_one()
    if batch.expiry_date != expiry:
        raise ValidationError(_("Lot {lot} of {medicine} is on record with expiry {day}; "
                                "check the lot number and the expiry date.")
                              .format(lot=lot, medicine=medicine.name, day=format_date(batch.expiry_date)))
    held = batch.quantity_on_hand
    batch.unit_cost_cents = round((held * batch.unit_cost_cents + quantity * unit_cost) / (held + quantity))
    batch.supplier = supplier
    batch.received_at = utcnow()
    # The ledger's note is kept with the movement: in the hospital's language, as its other records are.
    with use_language(default_language()):
        note = _("from {supplier} at {cost} a unit").format(supplier=supplier, cost=format_money(unit_cost))
    record_movement(session, actor, batch, StockMovementKind.RECEIVE, quantity, note=note)
    audit.record(session, actor, "stock.receive", entity_type="stock_batch", entity_id=batch.id,
                 detail=f"{medicine_label(medicine)} lot {lot} +{quantity}")
    return batch


ADJUSTMENT_REASONS = [(k.value, KIND_LABELS[k]) for k in ADJUSTMENT_KINDS]
"""The adjustment form's choices: (value, label); the page translates the label."""


def adjust_stock(*, session: Session, actor: Actor, batch_id: int, reason: str, change: object, note: str = "") -> int:
    """Correct a batch's quantity with a reason. Returns the new quantity on hand.

    Damaged and expired stock can only be taken out; a count correction goes either way.
    """
    require(session, actor, Permission.INVENTORY_MANAGE, action="stock.adjust")
    batch = access_by_id(session, actor, StockBatch, batch_id, action="stock.adjust",
                         missing=N_("That batch does not exist."), entity_type="stock_batch")
    if not isinstance(reason, str) or reason not in {k.value for k in ADJUSTMENT_KINDS}:
        raise ValidationError(_("Choose why the stock changes: damaged, expired or a count correction."))
    kind = StockMovementKind(reason)
    text = str(change if change is not None else "").strip().replace("−", "-")
    try:
        units = int(text)
    except ValueError:
        raise ValidationError(_("Enter the change in units as a whole number, like -3 or 5.")) from None
    if units == 0 or abs(units) > MAX_UNITS:
        raise ValidationError(_("The change must be between -{limit} and {limit}, and not 0.").format(limit=MAX_UNITS))
    if kind != StockMovementKind.COUNT_CORRECTION and units > 0:
        raise ValidationError(_("Damaged or expired stock can only be taken out: enter a negative number, like -3."))
    note = _clean(note, _("note"), low=0, high=300)
    if kind == StockMovementKind.COUNT_CORRECTION and len(note) < 3:
        raise ValidationError(_("Say what the count found, for example: shelf count 40, system said 42."))
    session.refresh(batch)
    if batch.quantity_on_hand + units < 0:
        # The English reads "1 units" as it always has; the catalogues give each language its forms.
        raise ValidationError(ngettext("Lot {lot} holds only {n} units; you cannot take out {taken}.",
                                       "Lot {lot} holds only {n} units; you cannot take out {taken}.",
                                       batch.quantity_on_hand).format(lot=batch.lot, n=batch.quantity_on_hand,
                                                                      taken=-units))
    record_movement(session, actor, batch, kind, units, note=note)
    audit.record(session, actor, "stock.adjust", entity_type="stock_batch", entity_id=batch.id,
                 detail=f"{kind.value} {units:+d}" + (f": {note}" if note else ""))
    _publish(session)
    session.commit()
    return batch.quantity_on_hand


@dataclass(frozen=True)
class MedicineForm:
    name: str
    form: str
    strength: str
    unit_price: str
    reorder_level: object
    ingredients: str = ""
    drug_class: str = ""


@dataclass(frozen=True)
class CheckedMedicine:
    """A ``MedicineForm`` that passed every rule, in ``Medicine`` fields."""

    name: str
    form: str
    strength: str
    unit_price_cents: int
    reorder_level: int
    ingredients: str
    drug_class: str

    def values(self) -> dict:
        return dict(self.__dict__)


def check_medicine(form: MedicineForm) -> CheckedMedicine:
    """Every rule of a formulary entry, or ``ValidationError`` naming the field. Its active
    ingredients are required: the allergy check at prescribing time matches on them."""
    name = _clean(form.name, _("medicine name"), low=2, high=120)
    dosage_form = _clean(form.form, _("form (tablet, capsule, syrup...)"), low=2, high=40).lower()
    strength = _clean(form.strength, _("strength"), low=1, high=60)
    price = parse_money(form.unit_price, _("unit price"))
    reorder = parse_int(form.reorder_level, _("reorder level"), low=0, high=MAX_UNITS)
    ingredients = ", ".join(t for t in (" ".join(p.split()).lower() for p in str(form.ingredients or "").split(",")) if t)
    storable(ingredients, _("ingredients"))
    if not ingredients:
        raise ValidationError(_("List the active ingredients (comma-separated): the allergy check needs them."))
    if len(ingredients) > 300:
        raise ValidationError(_("Keep the ingredients under 300 characters."))
    drug_class = _clean(form.drug_class, _("drug class"), low=0, high=80).lower()
    return CheckedMedicine(name, dosage_form, strength, price, reorder, ingredients, drug_class)


def find_medicine(session: Session, name: str, strength: str, *, except_id: int | None = None) -> Medicine | None:
    """The formulary's entry of ``name`` and ``strength``, in any letter case (they are its key)."""
    query = sa.select(Medicine).where(sa.func.lower(Medicine.name) == name.lower(),
                                      sa.func.lower(Medicine.strength) == strength.lower())
    if except_id is not None:
        query = query.where(Medicine.id != except_id)
    return session.execute(query.limit(1)).scalar_one_or_none()


_MEDICINE_LABELS = {"unit_price_cents": "price", "reorder_level": "reorder level", "drug_class": "drug class"}  # i18n: not shown (audit)


def write_medicine(session: Session, actor: Actor | None, checked: CheckedMedicine,
                   medicine: Medicine | None = None) -> tuple[Medicine, list[str]]:
    """Add or change a formulary entry that passed ``check_medicine``, audited with what changed
    (old → new), in the caller's transaction: the stock page and the CSV import write through here.

    Returns:
        The medicine and its changes (empty when nothing changed and nothing was written).
    """
    if find_medicine(session, checked.name, checked.strength, except_id=medicine.id if medicine else None):
        raise Conflict(_("{name} {strength} is already in the formulary.").format(name=checked.name,
                                                                                    strength=checked.strength))
    if medicine is None:
        medicine = Medicine(**checked.values())
        session.add(medicine)
        session.flush()
        audit.record(session, actor, "medicine.create", entity_type="medicine", entity_id=medicine.id,
                     detail=f"{medicine_label(medicine)}, price {format_money(medicine.unit_price_cents)}")
        return medicine, ["created"]
    changes = []
    for name, value in checked.values().items():
        old = getattr(medicine, name)
        if old != value:
            shown_old, shown_new = ((format_money(old), format_money(value)) if name == "unit_price_cents"
                                    else (old, value))
            changes.append(f"{_MEDICINE_LABELS.get(name, name)} {shown_old} → {shown_new}")
            setattr(medicine, name, value)
    if changes:
        session.add(medicine)
        audit.record(session, actor, "medicine.update", entity_type="medicine", entity_id=medicine.id,
                     detail=f"{medicine_label(medicine)}: " + "; ".join(changes))
    return medicine, changes


def add_medicine(*, session: Session, actor: Actor, form: MedicineForm) -> int:
    """Add a medicine to the formulary."""
    require(session, actor, Permission.INVENTORY_MANAGE, action="medicine.create")
    medicine, _changes = write_medicine(session, actor, check_medicine(form))
    _publish(session)
    session.commit()
    return medicine.id


def edit_medicine(*, session: Session, actor: Actor, medicine_id: int, form: MedicineForm) -> bool:
    """Change a medicine's name, form, strength, ingredients, drug class, price and reorder level.

    Prescriptions and dispensations already made keep what they recorded; a new price applies
    to what is dispensed from now on. Returns whether anything changed.
    """
    require(session, actor, Permission.INVENTORY_MANAGE, action="medicine.update")
    medicine = _medicine(session, actor, medicine_id, "medicine.update")
    _medicine_row, changes = write_medicine(session, actor, check_medicine(form), medicine)
    if changes:
        _publish(session)
    session.commit()
    return bool(changes)


def set_medicine_price(*, session: Session, actor: Actor, medicine_id: int, unit_price: str) -> None:
    """Change a medicine's unit price only (the price list's edit); what was dispensed keeps its price."""
    require(session, actor, Permission.INVENTORY_MANAGE, action="medicine.price")
    medicine = _medicine(session, actor, medicine_id, "medicine.price")
    price = parse_money(unit_price, _("unit price"))
    if price != medicine.unit_price_cents:
        audit.record(session, actor, "medicine.price", entity_type="medicine", entity_id=medicine.id,
                     detail=f"{medicine_label(medicine)}: price {format_money(medicine.unit_price_cents)} → "
                            f"{format_money(price)}")
        medicine.unit_price_cents = price
        session.add(medicine)
        _publish(session)
    session.commit()


def set_medicine_active(*, session: Session, actor: Actor, medicine_id: int, active: bool) -> None:
    """Take a medicine off the formulary (no new prescriptions; its stock and history stay), or put it back."""
    action = "medicine.reactivate" if active else "medicine.deactivate"
    require(session, actor, Permission.INVENTORY_MANAGE, action=action)
    medicine = access_by_id(session, actor, Medicine, medicine_id, action=action,
                            missing=N_("That medicine is not in the formulary."), entity_type="medicine")
    if medicine.is_active == bool(active):
        raise Conflict((_("{name} is already active.") if active else _("{name} is already inactive."))
                       .format(name=medicine_label(medicine)))
    medicine.is_active = bool(active)
    session.add(medicine)
    audit.record(session, actor, action, entity_type="medicine", entity_id=medicine.id,
                 detail=medicine_label(medicine))
    _publish(session)
    session.commit()


def update_medicine(*, session: Session, actor: Actor, medicine_id: int, unit_price: str, reorder_level: object) -> None:
    """Change a medicine's unit price and reorder level."""
    require(session, actor, Permission.INVENTORY_MANAGE, action="medicine.update")
    medicine = _medicine(session, actor, medicine_id, "medicine.update")
    price = parse_money(unit_price, _("unit price"))
    reorder = parse_int(reorder_level, _("reorder level"), low=0, high=MAX_UNITS)
    before = f"{format_money(medicine.unit_price_cents)}/{medicine.reorder_level}"
    medicine.unit_price_cents, medicine.reorder_level = price, reorder
    audit.record(session, actor, "medicine.update", entity_type="medicine", entity_id=medicine.id,
                 detail=f"price/reorder {before} → {format_money(price)}/{reorder}")
    _publish(session)
    session.commit()


@dataclass(frozen=True)
class MedicineChoice:
    id: int
    label: str


def medicine_choices(*, session: Session, actor: Actor) -> list[MedicineChoice]:
    """Every active medicine, for the receive form's list."""
    require(session, actor, Permission.INVENTORY_MANAGE, action="stock.medicines")
    return [MedicineChoice(m.id, medicine_label(m)) for m in session.execute(
        sa.select(Medicine).where(Medicine.is_active).order_by(Medicine.name, Medicine.strength)).scalars()]

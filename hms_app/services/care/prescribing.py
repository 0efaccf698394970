"""Prescriptions from the formulary, with safety checks at prescribing time, and lab orders.

Each item is checked against the patient's active allergies (by ingredient and by class)
and against the drug-drug interaction table, both with the other items and with the
patient's current medicines. A warning stops the prescription unless the doctor gives a
reason to override it; the reason is stored with the item and shown to the pharmacist. The
override counts only for the warnings the doctor read: the signature carries them, and the
service refuses it when the items as they now stand raise any other set (the doctor changed a
medicine after reading, an allergy was recorded meanwhile, or a client never showed them).
A test the patient already has open is ordered again only when the doctor confirms it.
A signed prescription and a new lab order reach the pharmacy's and the lab's open pages
at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from sqlmodel import Session

from hms_app.db.enums import (
    ClinicalStatus,
    EncounterStatus,
    LabOrderStatus,
    LabPriority,
    Permission,
    PrescriptionStatus,
)
from hms_app.db.models import (
    Allergy,
    LabOrder,
    LabTest,
    Medicine,
    Prescription,
    PrescriptionItem,
    User,
)
from hms_app.db.types import utcnow
from hms_app.services.care.clinical import encounter_for_doctor, status_label
from hms_app.services.core import audit, events, receipts
from hms_app.services.core.access import require
from hms_app.services.core.actor import Actor
from hms_app.services.core.errors import Conflict, ValidationError
from hms_app.services.core.ids import get_by_id, parse_id
from hms_app.services.core.language import N_, _, ngettext
from hms_app.services.core.localtime import format_date
from hms_app.services.core.text import one_line, storable
from hms_app.services.reference.allergens import allergy_matches
from hms_app.services.reference.interactions import interactions_between

FREQUENCIES = {
    N_("once daily"): 1,
    N_("twice daily"): 2,
    N_("three times daily"): 3,
    N_("four times daily"): 4,
    N_("every 8 hours"): 3,
    N_("every 12 hours"): 2,
    N_("at night"): 1,
    N_("once weekly"): 1 / 7,
}
"""Times a day of each frequency; the keys are the stored values, in English, translated where shown."""
ROUTES = (N_("oral"), N_("sublingual"), N_("topical"), N_("inhaled"), N_("intravenous"), N_("intramuscular"),
          N_("subcutaneous"), N_("rectal"))
CURRENT_MEDICINE_DAYS = 90
"""Prescriptions of the last 90 days that were not rejected count as current medicines."""


class SafetyWarning(ValidationError):
    """The prescription raised warnings; it may be signed only with an override reason given
    for exactly those warnings.

    Attributes:
        warnings: the warnings of the items as they stand now (empty when an override was
            given for warnings the items no longer raise).
    """

    def __init__(self, warnings: list[str], *, stale: bool = False) -> None:
        if not warnings:
            message = _("The medicines changed since you overrode their warnings, and they raise none now. "
                        "Sign again without an override.")
        elif stale:
            message = _("Safety check: the medicines changed since you read the warnings. {warnings} "
                        "Give a reason to prescribe anyway.").format(warnings=" ".join(warnings))
        else:
            message = _("Safety check: {warnings} Give a reason to prescribe anyway.").format(warnings=" ".join(warnings))
        super().__init__(message)
        self.warnings = warnings


class DuplicateOrder(Conflict):
    """A test the patient already has open; it is ordered again only when confirmed.

    Attributes:
        open_orders: one line per open order, like "Troponin I is already open, ordered
            07 Dec by Dr. Amelia Hart".
    """

    def __init__(self, open_orders: list[str]) -> None:
        super().__init__(_("{orders} — order again?").format(orders="; ".join(open_orders)))
        self.open_orders = open_orders


@dataclass(frozen=True)
class MedicineOption:
    id: int
    label: str
    form: str


def formulary(*, session: Session, actor: Actor, search: str = "") -> list[MedicineOption]:
    require(session, actor, Permission.CLINICAL_WRITE, action="formulary.search")
    query = sa.select(Medicine).where(Medicine.is_active).order_by(Medicine.name, Medicine.strength)
    term = storable(str(search or "").strip().lower()[:60], _("search"))
    if term:
        query = query.where(sa.func.lower(Medicine.name).contains(term, autoescape=True))
    return [MedicineOption(m.id, f"{m.name} {m.strength} ({m.form})", m.form) for m in session.execute(query).scalars()]


@dataclass(frozen=True)
class ItemForm:
    medicine_id: object
    dose: str
    route: str
    frequency: str
    days: object
    quantity: object = ""
    instructions: str = ""


@dataclass(frozen=True)
class CheckedItem:
    medicine: Medicine
    dose: str
    route: str
    frequency: str
    days: int
    quantity: int
    instructions: str
    warnings: list[str]


def suggested_quantity(dose: str, frequency: str, days: int) -> int:
    """Units to dispense: the dose's leading number × times a day × days, at least 1."""
    try:
        per_dose = float(str(dose).strip().split()[0].replace(",", "."))
    except (ValueError, IndexError):
        per_dose = 1.0
    if not math.isfinite(per_dose) or per_dose <= 0:  # "inf tablets", "nan ml", "1e308 drops"
        per_dose = 1.0
    per_day = FREQUENCIES.get(frequency, 1)
    return max(1, round(per_dose * per_day * days + 0.4999))


def _terms(medicine: Medicine) -> set[str]:
    terms = {t.strip() for t in medicine.ingredients.split(",") if t.strip()}
    if medicine.drug_class:
        terms.add(medicine.drug_class)
    return terms


def _current_medicines(session: Session, patient_id: int) -> list[Medicine]:
    since = utcnow() - timedelta(days=CURRENT_MEDICINE_DAYS)
    return list(session.execute(
        sa.select(Medicine).join(PrescriptionItem, PrescriptionItem.medicine_id == Medicine.id)
        .join(Prescription, Prescription.id == PrescriptionItem.prescription_id)
        .where(Prescription.patient_id == patient_id, Prescription.created_at >= since,
               Prescription.status != PrescriptionStatus.REJECTED.value).distinct()
    ).scalars())


def _check_items(session: Session, patient_id: int, forms: list[ItemForm]) -> list[CheckedItem]:
    if not isinstance(forms, list) or not all(isinstance(f, ItemForm) for f in forms):
        raise ValidationError(_("Add the medicines from the formulary."))
    if not forms:
        raise ValidationError(_("Add at least one medicine."))
    if len(forms) > 20:
        raise ValidationError(_("A prescription holds at most 20 medicines."))
    safety = _SafetyCheck(session, patient_id)
    checked: list[CheckedItem] = []
    for number, form in enumerate(forms, start=1):
        medicine = get_by_id(session, Medicine, form.medicine_id)
        if medicine is None or not medicine.is_active:
            raise ValidationError(_("Medicine {number}: choose a medicine from the formulary.").format(number=number))
        dose = one_line(form.dose, _("dose"))
        if not dose or len(dose) > 60:
            raise ValidationError(_("{medicine}: enter the dose, like '1 tablet' or '5 ml'.").format(medicine=medicine.name))
        if not isinstance(form.route, str) or form.route not in ROUTES:
            raise ValidationError(_("{medicine}: choose a route from the list.").format(medicine=medicine.name))
        if not isinstance(form.frequency, str) or form.frequency not in FREQUENCIES:
            raise ValidationError(_("{medicine}: choose a frequency from the list.").format(medicine=medicine.name))
        try:
            days = int(str(form.days).strip())
        except (TypeError, ValueError):
            days = 0
        if not 1 <= days <= 365:
            raise ValidationError(_("{medicine}: the number of days must be between 1 and 365.").format(
                medicine=medicine.name))
        quantity_text = str(form.quantity or "").strip()
        if quantity_text:
            try:
                quantity = int(quantity_text)
            except ValueError:
                quantity = 0
            if not 1 <= quantity <= 10_000:
                raise ValidationError(_("{medicine}: the quantity must be a whole number from 1 to 10000.").format(
                    medicine=medicine.name))
        else:
            quantity = suggested_quantity(dose, form.frequency, days)
            if quantity > 10_000:
                raise ValidationError(_("{medicine}: that dose comes to more than 10000 units; check the dose "
                                        "or enter the quantity.").format(medicine=medicine.name))
        instructions = storable(str(form.instructions or "").strip(), _("instructions"))
        if len(instructions) > 500:
            raise ValidationError(_("{medicine}: keep the instructions under 500 characters.").format(
                medicine=medicine.name))
        checked.append(CheckedItem(medicine, dose, form.route, form.frequency, days, quantity, instructions,
                                   safety.warnings_for(medicine)))
    return checked


class _SafetyCheck:
    """The warnings of a prescription's medicines, item by item in order: the patient's active
    allergies, and interactions with the earlier items and the patient's current medicines."""

    def __init__(self, session: Session, patient_id: int) -> None:
        self.allergies = [a.substance for a in session.execute(
            sa.select(Allergy).where(Allergy.patient_id == patient_id, Allergy.status == ClinicalStatus.ACTIVE.value)
        ).scalars()]
        self.current = _current_medicines(session, patient_id)
        self.earlier: list[Medicine] = []

    def warnings_for(self, medicine: Medicine) -> list[str]:
        warnings = []
        ingredients = {t.strip() for t in medicine.ingredients.split(",") if t.strip()}
        for allergy in self.allergies:
            if why := allergy_matches(allergy, ingredients, medicine.drug_class):
                warnings.append(_("{medicine}: {why}").format(medicine=medicine.name, why=why))
        for other in self.earlier + self.current:
            if other.id == medicine.id:
                continue
            for hit in interactions_between(_terms(medicine), _terms(other)):
                warnings.append(_("{medicine} with {other}: {effect} ({severity}; {source}).").format(
                    medicine=medicine.name, other=other.name, effect=hit.effect, severity=hit.severity,
                    source=hit.source))
        self.earlier.append(medicine)
        return list(dict.fromkeys(warnings))


def check_prescription(*, session: Session, actor: Actor, encounter_id: int, items: list[ItemForm]) -> list[str]:
    """The safety warnings the items would raise, without writing anything."""
    encounter = encounter_for_doctor(session, actor, encounter_id, "prescription.check")
    return [w for item in _check_items(session, encounter.patient_id, items) for w in item.warnings]


def check_medicines(*, session: Session, actor: Actor, encounter_id: int, medicine_ids: list[object]) -> list[str]:
    """The safety warnings of these medicines, in this order, for the encounter's patient.

    The encounter page asks on every change of its items, before dose and days are filled in:
    the warnings depend only on the medicines. Unknown or inactive ids raise nothing here;
    signing refuses them.
    """
    encounter = encounter_for_doctor(session, actor, encounter_id, "prescription.check")
    parsed = [parse_id(m) for m in (medicine_ids if isinstance(medicine_ids, list) else [])][:20]
    found = {m.id: m for m in session.execute(
        sa.select(Medicine).where(Medicine.id.in_([m for m in parsed if m is not None]), Medicine.is_active)).scalars()}
    safety = _SafetyCheck(session, encounter.patient_id)
    return [w for m in parsed if m in found for w in safety.warnings_for(found[m])]


def _acknowledged(value: object) -> set[str]:
    if value is None:
        return set()
    if not isinstance(value, (list, tuple)) or len(value) > 100 or not all(
            isinstance(w, str) and len(w) <= 2_000 for w in value):
        raise ValidationError(_("Read the safety warnings again and sign."))
    return set(value)


def prescribe(*, session: Session, actor: Actor, encounter_id: int, items: list[ItemForm], override_reason: str = "",
              acknowledged_warnings: list[str] | None = None, request_key: str | None = None) -> int:
    """Sign a prescription for the encounter's patient. Returns its id.

    Args:
        request_key: the prescribing form's key (``receipts``): a repeat of the request (a
            double click) answers with the prescription the first one signed and signs no second.
        override_reason: why to prescribe despite the warnings (at least 10 characters).
        acknowledged_warnings: the warnings the doctor read and overrides, exactly as
            ``check_medicines`` or a ``SafetyWarning`` gave them. The items are checked again
            here; an override counts only when they raise exactly these warnings.

    Raises:
        SafetyWarning: when the items warn and no override reason is given, or the override
            was given for other warnings than the items raise now.
    """
    encounter = encounter_for_doctor(session, actor, encounter_id, "prescription.sign")
    if encounter.status == EncounterStatus.COMPLETED:
        raise Conflict(_("This encounter is completed; start from a new appointment to prescribe."))
    checked = _check_items(session, encounter.patient_id, items)
    warnings = [w for item in checked for w in item.warnings]
    acknowledged = _acknowledged(acknowledged_warnings)
    reason = one_line(override_reason, _("override reason"))
    if acknowledged != set(warnings) or (warnings and len(reason) < 10):
        audit.record(session, actor, "prescription.warning", entity_type="encounter", entity_id=encounter.id,
                     patient_id=encounter.patient_id,
                     detail=f"{len(warnings)} warning(s); not signed"  # i18n: not shown
                     + ("; the override was given for other warnings" if acknowledged != set(warnings)  # i18n: not shown
                        and (acknowledged or reason) else ""))
        session.commit()
        raise SafetyWarning(warnings, stale=bool(acknowledged) and acknowledged != set(warnings))
    if len(reason) > 500:
        raise ValidationError(_("Keep the override reason under 500 characters."))
    if (earlier := receipts.claim(session, actor, key=request_key, action="prescription.sign")) is not None:
        signed = session.get(Prescription, earlier.object_id)
        if signed is None or signed.encounter_id != encounter.id:
            raise ValidationError(_(receipts.EXPIRED))
        return signed.id
    prescription = Prescription(patient_id=encounter.patient_id, doctor_id=actor.user_id, encounter_id=encounter.id)
    session.add(prescription)
    session.flush()
    for item in checked:
        session.add(PrescriptionItem(
            prescription_id=prescription.id, medicine_id=item.medicine.id, dose=item.dose, route=item.route,
            frequency=item.frequency, days=item.days, quantity=item.quantity, instructions=item.instructions,
            warnings=" ".join(item.warnings), override_reason=reason if item.warnings else "",
        ))
    audit.record(session, actor, "prescription.sign", entity_type="prescription", entity_id=prescription.id,
                 patient_id=encounter.patient_id,
                 detail=f"{len(checked)} item(s)" + (f"; {len(warnings)} warning(s) overridden" if warnings else ""))
    events.publish(session, "prescriptions", roles=["pharmacy"], user_ids=[encounter.patient_id, actor.user_id])
    receipts.fulfil(session, key=request_key, object_id=prescription.id)
    session.commit()
    return prescription.id


# --- lab orders --------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabTestOption:
    id: int
    label: str


def lab_catalog(*, session: Session, actor: Actor) -> list[LabTestOption]:
    require(session, actor, Permission.CLINICAL_WRITE, action="lab_catalog.list")
    return [LabTestOption(t.id, f"{t.name}{'' if f'({t.code})' in t.name else f' ({t.code})'} — {t.specimen}")
            for t in session.execute(
                sa.select(LabTest).where(LabTest.is_active).order_by(LabTest.name)).scalars()]


OPEN_LAB_STATUSES = (LabOrderStatus.REQUESTED.value, LabOrderStatus.COLLECTED.value, LabOrderStatus.IN_PROGRESS.value)


def _open_duplicates(session: Session, patient_id: int, test_ids: list[int]) -> list[str]:
    """One line per open order of the patient for one of these tests, oldest first."""
    return [_("{test} is already open, ordered {day} by {doctor}").format(test=name, day=format_date(ordered_at),
                                                                          doctor=doctor)
            for name, ordered_at, doctor in session.execute(
                sa.select(LabTest.name, LabOrder.ordered_at, User.full_name)
                .join(LabTest, LabTest.id == LabOrder.test_id).join(User, User.id == LabOrder.doctor_id)
                .where(LabOrder.patient_id == patient_id, LabOrder.test_id.in_(test_ids),
                       LabOrder.status.in_(OPEN_LAB_STATUSES))
                .order_by(LabOrder.ordered_at, LabOrder.id))]


def order_lab_tests(*, session: Session, actor: Actor, encounter_id: int, test_ids: list[object], priority: str,
                    note: str = "", confirm_duplicate: bool = False, request_key: str | None = None) -> list[int]:
    """Order one or more tests for the encounter's patient; they reach the lab's worklist at once.

    Args:
        request_key: the order form's key (``receipts``): a repeat of the request (a double
            click) answers with the orders the first one made, orders nothing more and is not
            taken for a duplicate of them.
        confirm_duplicate: order even the tests the patient already has open (requested,
            collected or in progress); without it such an order is refused.

    Raises:
        DuplicateOrder: a test is already open and ``confirm_duplicate`` is not ``True``.
    """
    encounter = encounter_for_doctor(session, actor, encounter_id, "lab_order.create")
    if encounter.status == EncounterStatus.COMPLETED:
        raise Conflict(_("This encounter is completed; order tests from a new appointment."))
    if not isinstance(priority, str) or priority not in {p.value for p in LabPriority}:
        raise ValidationError(_("Choose routine, urgent or stat."))
    parsed = [parse_id(t) for t in (test_ids if isinstance(test_ids, list) else [])]
    if None in parsed:
        raise ValidationError(_("Choose tests from the catalog."))
    ids = sorted(set(parsed))
    if not ids:
        raise ValidationError(_("Choose at least one test."))
    if len(ids) > 20:
        raise ValidationError(_("Order at most 20 tests at once."))
    tests = session.execute(sa.select(LabTest).where(LabTest.id.in_(ids), LabTest.is_active)).scalars().all()
    if len(tests) != len(ids):
        raise ValidationError(_("Choose tests from the catalog."))
    note = one_line(note, _("note"))
    if len(note) > 500:
        raise ValidationError(_("Keep the note for the lab under 500 characters."))
    if (earlier := receipts.claim(session, actor, key=request_key, action="lab_order.create")) is not None:
        first = session.get(LabOrder, earlier.object_id)
        if first is None or first.encounter_id != encounter.id:
            raise ValidationError(_(receipts.EXPIRED))
        return [int(order_id) for order_id in earlier.result.split(",")]
    if confirm_duplicate is not True and (duplicates := _open_duplicates(session, encounter.patient_id, ids)):
        raise DuplicateOrder(duplicates)
    orders = []
    for test in tests:
        order = LabOrder(patient_id=encounter.patient_id, doctor_id=actor.user_id, encounter_id=encounter.id,
                         test_id=test.id, priority=priority, note=note)
        session.add(order)
        session.flush()
        orders.append(order.id)
        audit.record(session, actor, "lab_order.create", entity_type="lab_order", entity_id=order.id,
                     patient_id=encounter.patient_id, detail=f"{test.code} {priority}")
    events.publish(session, "lab", roles=["lab"], user_ids=[encounter.patient_id, actor.user_id])
    receipts.fulfil(session, key=request_key, object_id=orders[0], result=",".join(map(str, orders)))
    session.commit()
    return orders


@dataclass(frozen=True)
class OrderedItem:
    kind: str
    id: int
    text: str
    status: str


def encounter_orders(*, session: Session, actor: Actor, encounter_id: int) -> list[OrderedItem]:
    """What the encounter prescribed and ordered, for the encounter page."""
    encounter = encounter_for_doctor(session, actor, encounter_id, "encounter.orders")
    rows: list[OrderedItem] = []
    for item, medicine, status in session.execute(
        sa.select(PrescriptionItem, Medicine, Prescription.status)
        .join(Prescription, Prescription.id == PrescriptionItem.prescription_id)
        .join(Medicine, Medicine.id == PrescriptionItem.medicine_id)
        .where(Prescription.encounter_id == encounter.id).order_by(PrescriptionItem.id)
    ):
        text = ngettext("{medicine}: {dose} {route} {frequency}, {n} day, qty {quantity}",
                        "{medicine}: {dose} {route} {frequency}, {n} days, qty {quantity}", item.days).format(
            medicine=f"{medicine.name} {medicine.strength}", dose=item.dose,
            # An imported item may carry a route or frequency of its own: shown as it came.
            route=_(item.route) if item.route in ROUTES else item.route,
            frequency=_(item.frequency) if item.frequency in FREQUENCIES else item.frequency,
            n=item.days, quantity=item.quantity)
        if item.override_reason:
            text = _("{item} — override: {reason}").format(item=text, reason=item.override_reason)
        rows.append(OrderedItem("prescription", item.prescription_id, text, status_label(str(status))))
    for order, test in session.execute(
        sa.select(LabOrder, LabTest).join(LabTest, LabTest.id == LabOrder.test_id)
        .where(LabOrder.encounter_id == encounter.id).order_by(LabOrder.id)
    ):
        rows.append(OrderedItem("lab", order.id, f"{test.name} ({status_label(str(order.priority))})",
                                status_label(str(order.status))))
    return rows

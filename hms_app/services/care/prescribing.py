"""Prescriptions from the formulary, with safety checks at prescribing time, and lab orders.

Each item is checked against the patient's active allergies (by ingredient and by class)
and against the drug-drug interaction table, both with the other items and with the
patient's current medicines. A warning stops the prescription unless the doctor gives a
reason to override it; the reason is stored with the item and shown to the pharmacist.
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
    LabPriority,
    Permission,
    PrescriptionStatus,
)
from hms_app.db.models import Allergy, LabOrder, LabTest, Medicine, Prescription, PrescriptionItem
from hms_app.db.types import utcnow
from hms_app.services.care.clinical import encounter_for_doctor
from hms_app.services.core import audit, events
from hms_app.services.core.access import require
from hms_app.services.core.actor import Actor
from hms_app.services.core.errors import Conflict, ValidationError
from hms_app.services.core.ids import get_by_id, parse_id
from hms_app.services.core.text import one_line, storable
from hms_app.services.reference.allergens import allergy_matches
from hms_app.services.reference.interactions import interactions_between

FREQUENCIES = {
    "once daily": 1,
    "twice daily": 2,
    "three times daily": 3,
    "four times daily": 4,
    "every 8 hours": 3,
    "every 12 hours": 2,
    "at night": 1,
    "once weekly": 1 / 7,
}
ROUTES = ("oral", "sublingual", "topical", "inhaled", "intravenous", "intramuscular", "subcutaneous", "rectal")
CURRENT_MEDICINE_DAYS = 90
"""Prescriptions of the last 90 days that were not rejected count as current medicines."""


class SafetyWarning(ValidationError):
    """The prescription raised warnings; it may be signed only with an override reason."""

    def __init__(self, warnings: list[str]) -> None:
        super().__init__("Safety check: " + " ".join(warnings) + " Give a reason to prescribe anyway.")
        self.warnings = warnings


@dataclass(frozen=True)
class MedicineOption:
    id: int
    label: str
    form: str


def formulary(*, session: Session, actor: Actor, search: str = "") -> list[MedicineOption]:
    require(session, actor, Permission.CLINICAL_WRITE, action="formulary.search")
    query = sa.select(Medicine).where(Medicine.is_active).order_by(Medicine.name, Medicine.strength)
    term = storable(str(search or "").strip().lower()[:60], "search")
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
        raise ValidationError("Add the medicines from the formulary.")
    if not forms:
        raise ValidationError("Add at least one medicine.")
    if len(forms) > 20:
        raise ValidationError("A prescription holds at most 20 medicines.")
    allergies = [a.substance for a in session.execute(
        sa.select(Allergy).where(Allergy.patient_id == patient_id, Allergy.status == ClinicalStatus.ACTIVE.value)
    ).scalars()]
    current = _current_medicines(session, patient_id)
    medicines: list[Medicine] = []
    checked: list[CheckedItem] = []
    for number, form in enumerate(forms, start=1):
        medicine = get_by_id(session, Medicine, form.medicine_id)
        if medicine is None or not medicine.is_active:
            raise ValidationError(f"Medicine {number}: choose a medicine from the formulary.")
        dose = one_line(form.dose, "dose")
        if not dose or len(dose) > 60:
            raise ValidationError(f"{medicine.name}: enter the dose, like '1 tablet' or '5 ml'.")
        if not isinstance(form.route, str) or form.route not in ROUTES:
            raise ValidationError(f"{medicine.name}: choose a route from the list.")
        if not isinstance(form.frequency, str) or form.frequency not in FREQUENCIES:
            raise ValidationError(f"{medicine.name}: choose a frequency from the list.")
        try:
            days = int(str(form.days).strip())
        except (TypeError, ValueError):
            days = 0
        if not 1 <= days <= 365:
            raise ValidationError(f"{medicine.name}: the number of days must be between 1 and 365.")
        quantity_text = str(form.quantity or "").strip()
        if quantity_text:
            try:
                quantity = int(quantity_text)
            except ValueError:
                quantity = 0
            if not 1 <= quantity <= 10_000:
                raise ValidationError(f"{medicine.name}: the quantity must be a whole number from 1 to 10000.")
        else:
            quantity = suggested_quantity(dose, form.frequency, days)
            if quantity > 10_000:
                raise ValidationError(f"{medicine.name}: that dose comes to more than 10000 units; check the dose "
                                      "or enter the quantity.")
        instructions = storable(str(form.instructions or "").strip(), "instructions")
        if len(instructions) > 500:
            raise ValidationError(f"{medicine.name}: keep the instructions under 500 characters.")
        warnings = []
        ingredients = {t.strip() for t in medicine.ingredients.split(",") if t.strip()}
        for allergy in allergies:
            if why := allergy_matches(allergy, ingredients, medicine.drug_class):
                warnings.append(f"{medicine.name}: {why}")
        for other in medicines + current:
            if other.id == medicine.id:
                continue
            for hit in interactions_between(_terms(medicine), _terms(other)):
                warnings.append(f"{medicine.name} with {other.name}: {hit.effect} ({hit.severity}; {hit.source}).")
        medicines.append(medicine)
        checked.append(CheckedItem(medicine, dose, form.route, form.frequency, days, quantity, instructions,
                                   list(dict.fromkeys(warnings))))
    return checked


def check_prescription(*, session: Session, actor: Actor, encounter_id: int, items: list[ItemForm]) -> list[str]:
    """The safety warnings the items would raise, without writing anything."""
    encounter = encounter_for_doctor(session, actor, encounter_id, "prescription.check")
    return [w for item in _check_items(session, encounter.patient_id, items) for w in item.warnings]


def prescribe(*, session: Session, actor: Actor, encounter_id: int, items: list[ItemForm], override_reason: str = "") -> int:
    """Sign a prescription for the encounter's patient. Returns its id.

    Raises:
        SafetyWarning: when a check warns and no override reason is given.
    """
    encounter = encounter_for_doctor(session, actor, encounter_id, "prescription.sign")
    if encounter.status == EncounterStatus.COMPLETED:
        raise Conflict("This encounter is completed; start from a new appointment to prescribe.")
    checked = _check_items(session, encounter.patient_id, items)
    warnings = [w for item in checked for w in item.warnings]
    reason = one_line(override_reason, "override reason")
    if warnings and len(reason) < 10:
        audit.record(session, actor, "prescription.warning", entity_type="encounter", entity_id=encounter.id,
                     patient_id=encounter.patient_id, detail=f"{len(warnings)} warning(s); not signed")
        session.commit()
        raise SafetyWarning(warnings)
    if len(reason) > 500:
        raise ValidationError("Keep the override reason under 500 characters.")
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


def order_lab_tests(*, session: Session, actor: Actor, encounter_id: int, test_ids: list[object], priority: str,
                    note: str = "") -> list[int]:
    """Order one or more tests for the encounter's patient; they reach the lab's worklist at once."""
    encounter = encounter_for_doctor(session, actor, encounter_id, "lab_order.create")
    if encounter.status == EncounterStatus.COMPLETED:
        raise Conflict("This encounter is completed; order tests from a new appointment.")
    if not isinstance(priority, str) or priority not in {p.value for p in LabPriority}:
        raise ValidationError("Choose routine, urgent or stat.")
    parsed = [parse_id(t) for t in (test_ids if isinstance(test_ids, list) else [])]
    if None in parsed:
        raise ValidationError("Choose tests from the catalog.")
    ids = sorted(set(parsed))
    if not ids:
        raise ValidationError("Choose at least one test.")
    if len(ids) > 20:
        raise ValidationError("Order at most 20 tests at once.")
    tests = session.execute(sa.select(LabTest).where(LabTest.id.in_(ids), LabTest.is_active)).scalars().all()
    if len(tests) != len(ids):
        raise ValidationError("Choose tests from the catalog.")
    note = one_line(note, "note")
    if len(note) > 500:
        raise ValidationError("Keep the note for the lab under 500 characters.")
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
        text = f"{medicine.name} {medicine.strength}: {item.dose} {item.route} {item.frequency}, {item.days} days, qty {item.quantity}"
        if item.override_reason:
            text += f" — override: {item.override_reason}"
        rows.append(OrderedItem("prescription", item.prescription_id, text, str(status).replace("_", " ")))
    for order, test in session.execute(
        sa.select(LabOrder, LabTest).join(LabTest, LabTest.id == LabOrder.test_id)
        .where(LabOrder.encounter_id == encounter.id).order_by(LabOrder.id)
    ):
        rows.append(OrderedItem("lab", order.id, f"{test.name} ({order.priority})", str(order.status).replace("_", " ")))
    return rows

"""Helpers for the stock and pharmacy tests: medicines of the test's own, deliveries, a
settable "today", prescriptions written the way a doctor writes them, and what the
database holds afterwards.

The demo seed may stock the formulary, so the tests that count units add medicines of
their own (``new_medicine``) and never rely on the demo's stock.
"""

from __future__ import annotations

import itertools
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta

import sqlalchemy as sa

from hms_app.db.engine import session_scope
from hms_app.db.models import Dispensation, PrescriptionItem, StockBatch, StockMovement
from hms_app.services.administration import auth, users
from hms_app.services.care import prescribing
from hms_app.services.care.prescribing import ItemForm
from hms_app.services.core.actor import Actor
from hms_app.services.core.localtime import local_today
from hms_app.services.medicines import inventory, pharmacy
from hms_app.services.medicines.inventory import MedicineForm, ReceiveForm
from tests.services.appointment_helpers import call
from tests.services.helpers import STRONG_PASSWORD, login_token, resolve

SUPPLIER = "Northern Medical Supplies"
_names = itertools.count(1)


class Today:
    """A stand-in for ``local_today`` in the stock and pharmacy services; starts at the real day."""

    def __init__(self) -> None:
        self.day = local_today()

    def __call__(self) -> date:
        return self.day

    def advance(self, days: int) -> date:
        self.day += timedelta(days=days)
        return self.day


def freeze_today(monkeypatch) -> Today:
    today = Today()
    monkeypatch.setattr(inventory, "local_today", today)
    monkeypatch.setattr(pharmacy, "local_today", today)
    return today


def in_days(days: int, today: Today | None = None) -> str:
    return ((today() if today else local_today()) + timedelta(days=days)).isoformat()


def new_medicine(engine, pharmacist: Actor, *, name: str = "", strength: str = "10 mg", price: str = "2.50",
                 reorder: object = 10, form: str = "tablet") -> int:
    """A formulary entry of the test's own, with a made-up ingredient no allergy or interaction knows."""
    number = next(_names)
    name = name or f"Testamycin {number}"
    return call(engine, inventory.add_medicine, actor=pharmacist, form=MedicineForm(
        name=name, form=form, strength=strength, unit_price=price, reorder_level=reorder,
        ingredients=f"testamycin-{number}", drug_class="test class"))


def receive(engine, pharmacist: Actor, medicine_id: int, lot: str, expiry: str, quantity: object, *,
            unit_cost: str = "1.00", supplier: str = SUPPLIER) -> int:
    return call(engine, inventory.receive_stock, actor=pharmacist, form=ReceiveForm(
        medicine_id=medicine_id, lot=lot, expiry=expiry, quantity=quantity, unit_cost=unit_cost, supplier=supplier))


def adjust(engine, pharmacist: Actor, batch_id: int, reason: str, change: object, note: str = "") -> int:
    return call(engine, inventory.adjust_stock, actor=pharmacist, batch_id=batch_id, reason=reason, change=change,
                note=note)


def batches(engine, medicine_id: int) -> list[StockBatch]:
    """Every batch of the medicine, empty ones too, in id order."""
    with session_scope(write=False, engine=engine) as s:
        return list(s.execute(sa.select(StockBatch).where(StockBatch.medicine_id == medicine_id)
                              .order_by(StockBatch.id)).scalars())


def on_hand(engine, medicine_id: int) -> dict[str, int]:
    """Lot -> units on hand, for every batch of the medicine."""
    return {b.lot: b.quantity_on_hand for b in batches(engine, medicine_id)}


def movements(engine, medicine_id: int) -> list[tuple[str, str, int]]:
    """(lot, kind, signed quantity) of every ledger row of the medicine, in order."""
    with engine.connect() as conn:
        return [(lot, str(kind), quantity) for lot, kind, quantity in conn.execute(
            sa.select(StockBatch.lot, StockMovement.kind, StockMovement.quantity)
            .join(StockBatch, StockBatch.id == StockMovement.batch_id)
            .where(StockMovement.medicine_id == medicine_id).order_by(StockMovement.id))]


def dispensations(engine, prescription_id: int) -> list[tuple[int, str, int]]:
    """(prescription item, lot, units) of every dispensation of the prescription, in order."""
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(
            sa.select(Dispensation.prescription_item_id, StockBatch.lot, Dispensation.quantity)
            .join(StockBatch, StockBatch.id == Dispensation.batch_id)
            .where(Dispensation.prescription_id == prescription_id).order_by(Dispensation.id))]


def mismatches(engine) -> list[tuple[int, int, int]]:
    with session_scope(write=False, engine=engine) as s:
        return inventory.ledger_mismatches(s)


def negative_batches(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(StockBatch)
                            .where(StockBatch.quantity_on_hand < 0)).scalar_one()


def prescribe(engine, doctor: Actor, encounter_id: int, *lines: tuple[int, int], override_reason: str = "") -> int:
    """A prescription of (medicine id, units) lines, signed through the doctor's service."""
    items = [ItemForm(medicine_id=medicine_id, dose="1 tablet", route="oral", frequency="twice daily", days=5,
                      quantity=str(units)) for medicine_id, units in lines]
    # An override is given for the warnings the doctor read: those the items raise now.
    read = call(engine, prescribing.check_prescription, actor=doctor, encounter_id=encounter_id,
                items=items) if override_reason else []
    return call(engine, prescribing.prescribe, actor=doctor, encounter_id=encounter_id, items=items,
                override_reason=override_reason, acknowledged_warnings=read)


def item_ids(engine, prescription_id: int) -> list[int]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(PrescriptionItem.id).where(PrescriptionItem.prescription_id == prescription_id)
                                 .order_by(PrescriptionItem.id)).scalars())


def dispensed_quantities(engine, prescription_id: int) -> list[int]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(PrescriptionItem.dispensed_quantity)
                                 .where(PrescriptionItem.prescription_id == prescription_id)
                                 .order_by(PrescriptionItem.id)).scalars())


def verify(engine, pharmacist: Actor, prescription_id: int) -> int:
    call(engine, pharmacy.verify_prescription, actor=pharmacist, prescription_id=prescription_id)
    return prescription_id


def dispense(engine, pharmacist: Actor, prescription_id: int, quantities: dict) -> pharmacy.DispenseResult:
    return call(engine, pharmacy.dispense, actor=pharmacist, prescription_id=prescription_id, quantities=quantities)


def new_pharmacist(engine, admin: Actor, email: str = "robin.pill@hms.example") -> Actor:
    """A second pharmacy account, created by the admin and past its first-login password change."""
    call(engine, users.create_staff_user, actor=admin, form=users.StaffForm(
        full_name="Robin Pill", email=email, role="pharmacy", password=STRONG_PASSWORD))
    token = login_token(engine, email, STRONG_PASSWORD)
    call(engine, auth.change_password, actor=resolve(engine, token), current_password=STRONG_PASSWORD,
         new_password=STRONG_PASSWORD + "x")
    return resolve(engine, token)


def all_at_once(*works):
    """Run each work in a thread of its own, all released together by a barrier; returns each
    one's result or the error it raised. Each work opens its own session, so its own connection."""
    barrier = threading.Barrier(len(works))

    def run(work):
        barrier.wait(timeout=30)
        try:
            return work()
        except Exception as error:  # collected and checked by the test
            return error

    with ThreadPoolExecutor(max_workers=len(works)) as pool:
        return list(pool.map(run, works))

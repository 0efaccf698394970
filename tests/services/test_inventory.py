"""Pharmacy stock: receiving deliveries, adjusting batches, the alerts, the stock list and the
ledger, who may touch any of it, and a property test that no sequence of operations ever
unbalances the ledger or takes a batch below zero."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import date, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hms_app.db.engine import session_scope
from hms_app.db.enums import PrescriptionStatus, Role, StockMovementKind
from hms_app.db.models import Dispensation, Medicine, Prescription, StockBatch, StockMovement
from hms_app.services.core.errors import (
    Conflict,
    NotFound,
    PermissionDenied,
    SessionExpired,
    ValidationError,
)
from hms_app.services.core.localtime import format_date
from hms_app.services.core.numbers import parse_money
from hms_app.services.medicines import inventory
from hms_app.services.medicines.inventory import MAX_UNITS, MedicineForm, ReceiveForm
from tests.conftest import login_as
from tests.services.appointment_helpers import call
from tests.services.clinical_helpers import STRANGER_EMAIL, open_visit, use_private_data_dir
from tests.services.helpers import assert_refused, audit_events, snapshot, table_count
from tests.services.pharmacy_helpers import (
    SUPPLIER,
    adjust,
    all_at_once,
    batches,
    dispense,
    dispensed_quantities,
    freeze_today,
    in_days,
    item_ids,
    mismatches,
    movements,
    negative_batches,
    new_medicine,
    new_pharmacist,
    on_hand,
    prescribe,
    receive,
    verify,
)

pytestmark = pytest.mark.db

NOT_PHARMACY = [Role.DOCTOR, Role.PATIENT, Role.LAB, Role.ACCOUNTS]
"""Admin keeps stock too (``inventory.manage``), so that a hospital can set up its formulary at go-live."""


@pytest.fixture(autouse=True)
def _private_data(monkeypatch, tmp_path):
    yield from use_private_data_dir(monkeypatch, tmp_path)


@pytest.fixture
def today(monkeypatch):
    return freeze_today(monkeypatch)


@pytest.fixture
def pharmacist(actors):
    return actors[Role.PHARMACY]


@pytest.fixture
def medicine(seeded, pharmacist):
    return new_medicine(seeded, pharmacist)


def _cents(money: str) -> int:
    return parse_money(money, "amount")  # reads what format_money wrote


def _refused(engine, error, call_service) -> str:
    """Run a call that must fail with ``error`` and change no table; returns its message."""
    before = snapshot(engine)
    with session_scope(engine=engine) as s, pytest.raises(error) as raised:
        call_service(s)
    assert snapshot(engine) == before, "a refused call changed the database"
    return raised.value.message


def test_a_batch_is_usable_until_the_day_before_it_expires():
    day = date(2027, 5, 10)
    assert inventory.is_usable(date(2027, 5, 11), day)
    assert not inventory.is_usable(day, day)
    assert not inventory.is_usable(date(2027, 5, 9), day)


# --- receiving ------------------------------------------------------------------------------------


def test_receiving_a_new_lot_makes_a_batch_with_one_ledger_row(seeded, pharmacist, medicine, today):
    expiry = in_days(200, today)
    batch_id = receive(seeded, pharmacist, medicine, "  ab-1234 ", expiry, " 100 ", unit_cost="1.25")
    [batch] = batches(seeded, medicine)
    assert (batch.id, batch.lot, batch.expiry_date.isoformat(), batch.quantity_on_hand, batch.unit_cost_cents,
            batch.supplier) == (batch_id, "AB-1234", expiry, 100, 125, SUPPLIER)
    assert movements(seeded, medicine) == [("AB-1234", "receive", 100)]
    with seeded.connect() as conn:
        movement = conn.execute(sa.select(StockMovement).where(StockMovement.medicine_id == medicine)).one()
    assert (movement.note, movement.actor_id) == (f"from {SUPPLIER} at £1.25 a unit", pharmacist.user_id)
    [event] = audit_events(seeded, action="stock.receive")
    assert (event.actor_id, event.entity_id, str(event.outcome)) == (pharmacist.user_id, str(batch_id), "success")
    assert event.detail.endswith("lot AB-1234 +100")
    [row] = call(seeded, inventory.medicine_batches, actor=pharmacist, medicine_id=medicine)
    assert (row.id, row.lot, row.on_hand, row.unit_cost, row.state) == (batch_id, "AB-1234", 100, "£1.25", "Usable")
    assert mismatches(seeded) == []


def test_topping_up_a_lot_adds_to_it_and_averages_the_cost(seeded, pharmacist, medicine, today):
    expiry = in_days(300, today)
    first = receive(seeded, pharmacist, medicine, "LOT-7", expiry, 100, unit_cost="1.00")
    second = receive(seeded, pharmacist, medicine, "lot-7", expiry, 50, unit_cost="2.00", supplier="Other Pharma")
    assert second == first
    [batch] = batches(seeded, medicine)
    # (100 x 1.00 + 50 x 2.00) / 150 = 1.3333 → 1.33
    assert (batch.quantity_on_hand, batch.unit_cost_cents, batch.supplier) == (150, 133, "Other Pharma")
    assert movements(seeded, medicine) == [("LOT-7", "receive", 100), ("LOT-7", "receive", 50)]
    assert mismatches(seeded) == []


def test_the_same_lot_with_another_expiry_is_refused(seeded, pharmacist, medicine, today):
    receive(seeded, pharmacist, medicine, "LOT-9", in_days(100, today), 10)
    message = _refused(seeded, ValidationError, lambda s: inventory.receive_stock(session=s, actor=pharmacist, form=ReceiveForm(
        medicine_id=medicine, lot="lot-9", expiry=in_days(101, today), quantity=5, unit_cost="1", supplier=SUPPLIER)))
    name = call(seeded, inventory.stock_list, actor=pharmacist, search="testamycin").rows[0].name
    assert message == (f"Lot LOT-9 of {name} is on record with expiry {format_date(date.fromisoformat(in_days(100, today)))}; "
                       "check the lot number and the expiry date.")
    assert on_hand(seeded, medicine) == {"LOT-9": 10}
    # The same lot number of another medicine is another batch.
    other = new_medicine(seeded, pharmacist)
    receive(seeded, pharmacist, other, "LOT-9", in_days(101, today), 5)
    assert on_hand(seeded, other) == {"LOT-9": 5}


@pytest.mark.parametrize("days", [0, -1, -400])
def test_expired_stock_cannot_be_received(seeded, pharmacist, medicine, today, days):
    message = _refused(seeded, ValidationError, lambda s: inventory.receive_stock(session=s, actor=pharmacist, form=ReceiveForm(
        medicine_id=medicine, lot="OLD-1", expiry=in_days(days, today), quantity=5, unit_cost="1", supplier=SUPPLIER)))
    assert message == "That lot is already expired; expired stock cannot be received."
    assert batches(seeded, medicine) == []
    # The day before its expiry date a lot is still usable, and is received.
    receive(seeded, pharmacist, medicine, "OLD-1", in_days(1, today), 5)
    assert on_hand(seeded, medicine) == {"OLD-1": 5}


@pytest.mark.parametrize(("change", "message"), [
    ({"lot": "  "}, "Enter the lot number."),
    ({"lot": "L" * 41}, "Keep the lot number under 41 characters."),
    ({"expiry": "31/12/2030"}, "Enter the expiry date as a date (YYYY-MM-DD)."),
    ({"expiry": ""}, "Enter the expiry date as a date (YYYY-MM-DD)."),
    ({"expiry": "ten years"}, "Enter the expiry date as a date (YYYY-MM-DD)."),
    ({"expiry": 365 * 10 + 1}, "Check the expiry date: it is more than ten years away."),
    ({"quantity": 0}, f"The quantity received must be between 1 and {MAX_UNITS}."),
    ({"quantity": "-5"}, f"The quantity received must be between 1 and {MAX_UNITS}."),
    ({"quantity": MAX_UNITS + 1}, f"The quantity received must be between 1 and {MAX_UNITS}."),
    ({"quantity": "ten"}, "Enter the quantity received as a whole number."),
    ({"quantity": "2.5"}, "Enter the quantity received as a whole number."),
    ({"quantity": None}, "Enter the quantity received as a whole number."),
    ({"unit_cost": "-1"}, "Enter the unit cost as an amount like 120 or 120.50."),
    ({"unit_cost": "1.234"}, "Enter the unit cost as an amount like 120 or 120.50."),
    ({"unit_cost": "cheap"}, "Enter the unit cost as an amount like 120 or 120.50."),
    ({"supplier": "X"}, "The supplier needs at least 2 characters."),
    ({"supplier": "S" * 121}, "Keep the supplier under 121 characters."),
])
def test_bad_deliveries_are_refused_with_a_message_and_change_nothing(seeded, pharmacist, medicine, today, change,
                                                                       message):
    if isinstance(change.get("expiry"), int):
        change = {"expiry": in_days(change["expiry"], today)}
    form = dataclasses.replace(ReceiveForm(medicine_id=medicine, lot="GOOD-1", expiry=in_days(200, today), quantity=10,
                                           unit_cost="1.00", supplier=SUPPLIER), **change)
    assert _refused(seeded, ValidationError,
                    lambda s: inventory.receive_stock(session=s, actor=pharmacist, form=form)) == message
    assert batches(seeded, medicine) == []
    # The same form with the field put right is received.
    receive(seeded, pharmacist, medicine, "GOOD-1", in_days(200, today), 10)
    assert on_hand(seeded, medicine) == {"GOOD-1": 10}


@pytest.mark.parametrize("medicine_id", [999_999, "abc", None])
def test_receiving_an_unknown_medicine_is_not_found_and_audited(seeded, pharmacist, today, medicine_id):
    form = ReceiveForm(medicine_id=medicine_id, lot="A1", expiry=in_days(30, today), quantity=1, unit_cost="1",
                       supplier=SUPPLIER)
    error = assert_refused(seeded, pharmacist, "stock.receive", lambda s: inventory.receive_stock(
        session=s, actor=pharmacist, form=form), error=NotFound)
    assert error.message == "That medicine is not in the formulary."


def test_a_medicine_taken_out_of_the_formulary_takes_no_deliveries(seeded, pharmacist, medicine, today):
    with seeded.begin() as conn:
        conn.execute(sa.update(Medicine).where(Medicine.id == medicine).values(is_active=False))
    assert_refused(seeded, pharmacist, "stock.receive", lambda s: inventory.receive_stock(
        session=s, actor=pharmacist, form=ReceiveForm(medicine, "A1", in_days(30, today), 1, "1", SUPPLIER)),
        error=NotFound)


# --- adjusting ------------------------------------------------------------------------------------


@pytest.mark.parametrize("reason", ["damaged", "expired"])
def test_damaged_and_expired_stock_only_goes_out(seeded, pharmacist, medicine, today, reason):
    batch_id = receive(seeded, pharmacist, medicine, "D-1", in_days(100, today), 20)
    for upward in ("3", 3, "+3"):
        assert _refused(seeded, ValidationError, lambda s, up=upward: inventory.adjust_stock(
            session=s, actor=pharmacist, batch_id=batch_id, reason=reason, change=up)) == (
            "Damaged or expired stock can only be taken out: enter a negative number, like -3.")
    assert adjust(seeded, pharmacist, batch_id, reason, "-3") == 17
    assert adjust(seeded, pharmacist, batch_id, reason, " −2 ", note="  dropped   on the floor ") == 15
    assert on_hand(seeded, medicine) == {"D-1": 15}
    assert movements(seeded, medicine) == [("D-1", "receive", 20), ("D-1", reason, -3), ("D-1", reason, -2)]
    with seeded.connect() as conn:
        notes = conn.execute(sa.select(StockMovement.note).order_by(StockMovement.id)).scalars().all()
    assert notes[-2:] == ["", "dropped on the floor"]
    assert [e.detail for e in audit_events(seeded, action="stock.adjust")] == [
        f"{reason} -3", f"{reason} -2: dropped on the floor"]
    assert mismatches(seeded) == []


def test_a_count_correction_goes_either_way_but_needs_a_note(seeded, pharmacist, medicine, today):
    batch_id = receive(seeded, pharmacist, medicine, "C-1", in_days(100, today), 40)
    for note in ("", "  ", "ok"):
        assert _refused(seeded, ValidationError, lambda s, n=note: inventory.adjust_stock(
            session=s, actor=pharmacist, batch_id=batch_id, reason="count_correction", change="5", note=n)) == (
            "Say what the count found, for example: shelf count 40, system said 42.")
    assert adjust(seeded, pharmacist, batch_id, "count_correction", "+5", note="shelf count 45, system said 40") == 45
    assert adjust(seeded, pharmacist, batch_id, "count_correction", -12, note="shelf count 33") == 33
    assert movements(seeded, medicine) == [("C-1", "receive", 40), ("C-1", "count_correction", 5),
                                           ("C-1", "count_correction", -12)]
    assert on_hand(seeded, medicine) == {"C-1": 33}
    assert mismatches(seeded) == []


def test_an_adjustment_never_takes_a_batch_below_zero(seeded, pharmacist, medicine, today):
    batch_id = receive(seeded, pharmacist, medicine, "Z-1", in_days(100, today), 5)
    for reason, note in (("damaged", ""), ("expired", ""), ("count_correction", "shelf is empty")):
        assert _refused(seeded, ValidationError, lambda s, r=reason, n=note: inventory.adjust_stock(
            session=s, actor=pharmacist, batch_id=batch_id, reason=r, change=-6, note=n)) == (
            "Lot Z-1 holds only 5 units; you cannot take out 6.")
    assert adjust(seeded, pharmacist, batch_id, "damaged", -5) == 0
    assert _refused(seeded, ValidationError, lambda s: inventory.adjust_stock(
        session=s, actor=pharmacist, batch_id=batch_id, reason="count_correction", change=-1,
        note="recount")) == "Lot Z-1 holds only 0 units; you cannot take out 1."
    assert on_hand(seeded, medicine) == {"Z-1": 0}
    assert movements(seeded, medicine) == [("Z-1", "receive", 5), ("Z-1", "damaged", -5)]
    assert mismatches(seeded) == []


@pytest.mark.parametrize(("reason", "change", "note", "message"), [
    ("stolen", "-1", "", "Choose why the stock changes: damaged, expired or a count correction."),
    ("receive", "5", "", "Choose why the stock changes: damaged, expired or a count correction."),
    ("dispense", "-1", "", "Choose why the stock changes: damaged, expired or a count correction."),
    ("damaged", "0", "", f"The change must be between -{MAX_UNITS} and {MAX_UNITS}, and not 0."),
    ("damaged", str(-MAX_UNITS - 1), "", f"The change must be between -{MAX_UNITS} and {MAX_UNITS}, and not 0."),
    ("damaged", "abc", "", "Enter the change in units as a whole number, like -3 or 5."),
    ("damaged", "-1.5", "", "Enter the change in units as a whole number, like -3 or 5."),
    ("damaged", None, "", "Enter the change in units as a whole number, like -3 or 5."),
    ("damaged", "", "", "Enter the change in units as a whole number, like -3 or 5."),
    ("damaged", "-1", "n" * 301, "Keep the note under 301 characters."),
])
def test_bad_adjustments_are_refused_with_a_message_and_change_nothing(seeded, pharmacist, medicine, today, reason,
                                                                        change, note, message):
    batch_id = receive(seeded, pharmacist, medicine, "B-1", in_days(100, today), 10)
    assert _refused(seeded, ValidationError, lambda s: inventory.adjust_stock(
        session=s, actor=pharmacist, batch_id=batch_id, reason=reason, change=change, note=note)) == message
    assert on_hand(seeded, medicine) == {"B-1": 10}


@pytest.mark.parametrize("batch_id", [999_999, "abc", None])
def test_adjusting_an_unknown_batch_is_not_found_and_audited(seeded, pharmacist, batch_id):
    error = assert_refused(seeded, pharmacist, "stock.adjust", lambda s: inventory.adjust_stock(
        session=s, actor=pharmacist, batch_id=batch_id, reason="damaged", change=-1), error=NotFound)
    assert error.message == "That batch does not exist."


def test_the_ledger_refuses_to_take_what_a_batch_no_longer_holds(seeded, pharmacist, medicine, today):
    batch_id = receive(seeded, pharmacist, medicine, "R-1", in_days(100, today), 10)
    with session_scope(engine=seeded) as s:
        stale = s.get(StockBatch, batch_id)
        assert stale.quantity_on_hand == 10
        # Someone else takes 8 meanwhile: the batch in hand still says 10.
        s.execute(sa.update(StockBatch).where(StockBatch.id == batch_id).values(quantity_on_hand=2))
        with pytest.raises(Conflict) as raised:
            inventory.record_movement(s, pharmacist, stale, StockMovementKind.DAMAGED, -5)
        assert raised.value.message == "Lot R-1 no longer holds 5 units; nothing was changed."
        s.rollback()
    assert on_hand(seeded, medicine) == {"R-1": 10}
    assert len(movements(seeded, medicine)) == 1


def test_the_database_itself_refuses_a_negative_quantity(seeded, pharmacist, medicine, today):
    batch_id = receive(seeded, pharmacist, medicine, "N-1", in_days(100, today), 3)
    with pytest.raises(sa.exc.IntegrityError), seeded.begin() as conn:
        conn.execute(sa.update(StockBatch).where(StockBatch.id == batch_id).values(quantity_on_hand=-1))
    assert on_hand(seeded, medicine) == {"N-1": 3}


# --- medicines ------------------------------------------------------------------------------------


def test_adding_and_updating_a_medicine(seeded, pharmacist):
    form = MedicineForm(name="  Zyxamol  Forte ", form="Tablet", strength="250 mg", unit_price="1.20",
                        reorder_level="15", ingredients=" Zyxamol ,  Caffeine ,", drug_class="Analgesic")
    medicine_id = call(seeded, inventory.add_medicine, actor=pharmacist, form=form)
    with session_scope(write=False, engine=seeded) as s:
        stored = s.get(Medicine, medicine_id)
        assert (stored.name, stored.form, stored.strength, stored.unit_price_cents, stored.reorder_level,
                stored.ingredients, stored.drug_class, stored.is_active) == (
            "Zyxamol Forte", "tablet", "250 mg", 120, 15, "zyxamol, caffeine", "analgesic", True)
    assert "Zyxamol Forte 250 mg tablet" in [c.label for c in call(seeded, inventory.medicine_choices,
                                                                    actor=pharmacist)]
    assert _refused(seeded, Conflict, lambda s: inventory.add_medicine(session=s, actor=pharmacist, form=dataclasses.replace(
        form, name="zyxamol forte", strength="250 MG"))) == "zyxamol forte 250 MG is already in the formulary."
    assert _refused(seeded, ValidationError, lambda s: inventory.add_medicine(
        session=s, actor=pharmacist, form=dataclasses.replace(form, strength="500 mg", ingredients=" , "))) == (
        "List the active ingredients (comma-separated): the allergy check needs them.")

    call(seeded, inventory.update_medicine, actor=pharmacist, medicine_id=medicine_id, unit_price="1.45",
         reorder_level=" 30 ")
    with session_scope(write=False, engine=seeded) as s:
        stored = s.get(Medicine, medicine_id)
        assert (stored.unit_price_cents, stored.reorder_level) == (145, 30)
    [event] = audit_events(seeded, action="medicine.update")
    assert event.detail == "price/reorder £1.20/15 → £1.45/30"
    assert _refused(seeded, ValidationError, lambda s: inventory.update_medicine(
        session=s, actor=pharmacist, medicine_id=medicine_id, unit_price="1.45", reorder_level=-1)) == (
        f"The reorder level must be between 0 and {MAX_UNITS}.")


# --- alerts, the stock list, batches, the ledger ----------------------------------------------------


def test_alerts_count_low_expiring_and_expired_stock_and_value_usable_stock_at_cost(seeded, pharmacist, today):
    def alerts():
        return call(seeded, inventory.stock_alerts, actor=pharmacist, limit=50)

    # The counts are compared with those of the same day before this test's stock arrives,
    # so demo stock, if any, does not matter.
    start = today()
    today.advance(1)
    before = alerts()
    today.day = start

    at_level = new_medicine(seeded, pharmacist, name="Qzlow", reorder=20)
    above_level = new_medicine(seeded, pharmacist, name="Qzplenty", reorder=20)
    none_left = new_medicine(seeded, pharmacist, name="Qzgone", reorder=0)
    expiring = new_medicine(seeded, pharmacist, name="Qzsoon", reorder=0)
    expired = new_medicine(seeded, pharmacist, name="Qzpast", reorder=5)
    receive(seeded, pharmacist, at_level, "L-1", in_days(400, today), 20, unit_cost="2.00")
    receive(seeded, pharmacist, above_level, "P-1", in_days(400, today), 21, unit_cost="1.00")
    gone = receive(seeded, pharmacist, none_left, "G-1", in_days(400, today), 4, unit_cost="9.99")
    adjust(seeded, pharmacist, gone, "damaged", -4)
    # After the day passes: 90 days left is "expiring", 91 is not.
    receive(seeded, pharmacist, expiring, "S-90", in_days(91, today), 10, unit_cost="0.50")
    receive(seeded, pharmacist, expiring, "S-91", in_days(92, today), 10, unit_cost="0.50")
    past = receive(seeded, pharmacist, expired, "X-1", in_days(1, today), 7, unit_cost="3.00")
    today.advance(1)

    after = alerts()
    assert after.low_count - before.low_count == 3
    assert after.expiring_count - before.expiring_count == 1
    assert after.expired_count - before.expired_count == 1
    # The alert lists the lowest first (the formulary's unstocked medicines may fill it), so
    # which medicines are low is read from the stock list's "low" filter.
    gaps = [r.on_hand - r.reorder_level for r in after.low]
    assert gaps == sorted(gaps)
    assert len(after.low) == min(50, after.low_count)
    assert all(r.low and r.on_hand <= r.reorder_level for r in after.low)
    low = {r.name: (r.on_hand, r.expired_on_hand, r.low, r.state)
           for r in call(seeded, inventory.stock_list, actor=pharmacist, show="low", search="qz",
                         page_size=100).rows}
    assert low == {"Qzlow": (20, 0, True, "Low stock"), "Qzgone": (0, 0, True, "Out of stock"),
                   "Qzpast": (0, 7, True, "Out of stock")}, "expired units are not stock"
    assert [(b.lot, b.state, b.on_hand) for b in after.expiring if b.medicine_id == expiring] == [
        ("S-90", "Expiring", 10)]
    assert [(b.lot, b.state, b.on_hand) for b in after.expired if b.medicine_id == expired] == [("X-1", "Expired", 7)]
    # At cost: 20 x 2.00 + 21 x 1.00 + 20 x 0.50; the 7 expired units are valued apart.
    assert _cents(after.stock_value) - _cents(before.stock_value) == 4000 + 2100 + 1000
    assert _cents(after.expired_value) - _cents(before.expired_value) == 7 * 300

    # Writing the expired lot off clears its alert and its value.
    adjust(seeded, pharmacist, past, "expired", -7)
    cleared = alerts()
    assert cleared.expired_count == before.expired_count
    assert cleared.expired_value == before.expired_value
    assert cleared.low_count == after.low_count


def test_the_stock_list_searches_filters_sorts_and_pages_in_sql(seeded, pharmacist, today):
    names = {}
    for name, price, reorder in (("Zyxamol", "3.00", 50), ("Zyxbutin", "1.00", 5), ("Zyxcodone", "2.00", 0)):
        names[name] = new_medicine(seeded, pharmacist, name=name, price=price, reorder=reorder)
    receive(seeded, pharmacist, names["Zyxamol"], "A-1", in_days(300, today), 30)
    receive(seeded, pharmacist, names["Zyxamol"], "A-2", in_days(60, today), 10)
    receive(seeded, pharmacist, names["Zyxbutin"], "B-1", in_days(200, today), 100)
    receive(seeded, pharmacist, names["Zyxcodone"], "C-1", in_days(1, today), 12)
    receive(seeded, pharmacist, names["Zyxcodone"], "C-2", in_days(500, today), 3)
    today.advance(1)

    def listed(**kwargs):
        page = call(seeded, inventory.stock_list, actor=pharmacist, search="ZYX", **kwargs)
        return page.total, [r.name for r in page.rows]

    page = call(seeded, inventory.stock_list, actor=pharmacist, search="  zyx ")
    assert page.total == 3
    rows = {r.name: r for r in page.rows}
    assert (rows["Zyxamol"].on_hand, rows["Zyxamol"].next_expiry, rows["Zyxamol"].state,
            rows["Zyxamol"].unit_price) == (40, format_date(date.fromisoformat(in_days(59, today))), "Low stock", "£3.00")
    assert (rows["Zyxbutin"].on_hand, rows["Zyxbutin"].low, rows["Zyxbutin"].state) == (100, False, "In stock")
    assert (rows["Zyxcodone"].on_hand, rows["Zyxcodone"].expired_on_hand, rows["Zyxcodone"].next_expiry) == (
        3, 12, format_date(date.fromisoformat(in_days(499, today))))

    assert listed() == (3, ["Zyxamol", "Zyxbutin", "Zyxcodone"])
    assert listed(sort="name", descending=True) == (3, ["Zyxcodone", "Zyxbutin", "Zyxamol"])
    assert listed(sort="on_hand") == (3, ["Zyxcodone", "Zyxamol", "Zyxbutin"])
    assert listed(sort="on_hand", descending=True) == (3, ["Zyxbutin", "Zyxamol", "Zyxcodone"])
    assert listed(sort="unit_price") == (3, ["Zyxbutin", "Zyxcodone", "Zyxamol"])
    assert listed(sort="reorder_level", descending=True) == (3, ["Zyxamol", "Zyxbutin", "Zyxcodone"])
    assert listed(sort="next_expiry") == (3, ["Zyxamol", "Zyxbutin", "Zyxcodone"])
    assert listed(sort="password_hash") == (3, ["Zyxamol", "Zyxbutin", "Zyxcodone"])
    assert listed(show="low") == (1, ["Zyxamol"])
    assert listed(show="expiring") == (1, ["Zyxamol"])
    assert listed(show="expired") == (1, ["Zyxcodone"])
    assert listed(show="nonsense") == (3, ["Zyxamol", "Zyxbutin", "Zyxcodone"])
    assert listed(page_size=2) == (3, ["Zyxamol", "Zyxbutin"])
    assert listed(page_size=2, page=2) == (3, ["Zyxcodone"])
    assert listed(page_size=2, page=3) == (3, [])
    assert listed(page="x", page_size="y") == (3, ["Zyxamol", "Zyxbutin", "Zyxcodone"])
    assert call(seeded, inventory.stock_list, actor=pharmacist, search="zyxb").total == 1
    assert call(seeded, inventory.stock_list, actor=pharmacist, search="zyx%").total == 0


def test_a_medicines_batches_come_first_to_expire_first(seeded, pharmacist, medicine, today):
    late = receive(seeded, pharmacist, medicine, "LATE", in_days(400, today), 5)
    soon = receive(seeded, pharmacist, medicine, "SOON", in_days(30, today), 5)
    empty = receive(seeded, pharmacist, medicine, "EMPTY", in_days(10, today), 5)
    adjust(seeded, pharmacist, empty, "damaged", -5)
    gone = receive(seeded, pharmacist, medicine, "GONE", in_days(1, today), 5)
    today.advance(1)
    rows = call(seeded, inventory.medicine_batches, actor=pharmacist, medicine_id=medicine)
    assert [(r.id, r.lot, r.state, r.on_hand) for r in rows] == [
        (gone, "GONE", "Expired", 5), (soon, "SOON", "Expiring", 5), (late, "LATE", "Usable", 5)]
    with pytest.raises(NotFound):
        call(seeded, inventory.medicine_batches, actor=pharmacist, medicine_id=999_999)


@pytest.fixture
def prescriber(actors):
    return actors[Role.DOCTOR]


@pytest.fixture
def visit(seeded, prescriber):
    """An open encounter of Aisha Khan's with Dr Hart."""
    return open_visit(seeded, prescriber, login_as(seeded, STRANGER_EMAIL).user_id)


def test_the_ledger_lists_every_movement_newest_first(seeded, pharmacist, prescriber, visit, today):
    medicine = new_medicine(seeded, pharmacist, name="Ledgermycin", strength="5 mg")
    other = new_medicine(seeded, pharmacist, name="Otheramol")
    batch_id = receive(seeded, pharmacist, medicine, "LG-1", in_days(100, today), 100, unit_cost="0.40")
    adjust(seeded, pharmacist, batch_id, "damaged", -3, note="crushed box")
    prescription_id = verify(seeded, pharmacist, prescribe(seeded, prescriber, visit, (medicine, 10)))
    dispense(seeded, pharmacist, prescription_id, {item_ids(seeded, prescription_id)[0]: 4})
    receive(seeded, pharmacist, other, "OT-1", in_days(100, today), 7)

    page = call(seeded, inventory.stock_ledger, actor=pharmacist, search="ledgermycin")
    assert page.total == 3
    assert [(r.medicine, r.lot, r.kind, r.quantity, r.change, r.note, r.by) for r in page.rows] == [
        ("Ledgermycin 5 mg tablet", "LG-1", "Dispensed", -4, "−4", f"prescription {prescription_id}",
         "Pat Pharmacist"),
        ("Ledgermycin 5 mg tablet", "LG-1", "Damaged", -3, "−3", "crushed box", "Pat Pharmacist"),
        ("Ledgermycin 5 mg tablet", "LG-1", "Received", 100, "+100", f"from {SUPPLIER} at £0.40 a unit",
         "Pat Pharmacist"),
    ]
    assert [r.lot for r in call(seeded, inventory.stock_ledger, actor=pharmacist, search="ot-1").rows] == ["OT-1"]
    everything = call(seeded, inventory.stock_ledger, actor=pharmacist, page_size=100)
    assert everything.total == table_count(seeded, StockMovement)
    ids = [r.id for r in everything.rows]
    assert ids == sorted(ids, reverse=True)
    oldest = call(seeded, inventory.stock_ledger, actor=pharmacist, search="ledgermycin", descending=False,
                  page_size=2, page=1)
    assert [r.kind for r in oldest.rows] == ["Received", "Damaged"]
    by_quantity = call(seeded, inventory.stock_ledger, actor=pharmacist, search="ledgermycin", sort="quantity",
                       descending=False)
    assert [r.quantity for r in by_quantity.rows] == [-4, -3, 100]
    assert mismatches(seeded) == []


# --- who may ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", NOT_PHARMACY)
def test_only_the_pharmacy_writes_stock(seeded, actors, pharmacist, medicine, today, role):
    actor = actors[role]
    batch_id = receive(seeded, pharmacist, medicine, "P-1", in_days(100, today), 10)
    form = ReceiveForm(medicine_id=medicine, lot="P-1", expiry=in_days(100, today), quantity=5, unit_cost="1",
                       supplier=SUPPLIER)
    writes = [
        ("stock.receive", lambda s: inventory.receive_stock(session=s, actor=actor, form=form)),
        ("stock.adjust", lambda s: inventory.adjust_stock(session=s, actor=actor, batch_id=batch_id,
                                                          reason="damaged", change=-1)),
        ("medicine.create", lambda s: inventory.add_medicine(session=s, actor=actor, form=MedicineForm(
            "Sneakamol", "tablet", "5 mg", "1.00", 5, ingredients="sneakamol"))),
        ("medicine.update", lambda s: inventory.update_medicine(session=s, actor=actor, medicine_id=medicine,
                                                                unit_price="0.01", reorder_level=0)),
    ]
    for action, write in writes:
        error = assert_refused(seeded, actor, action, write)
        assert error.message == "You do not have permission to do that."
    denied = audit_events(seeded, outcome="denied")
    assert [e.action for e in denied][-4:] == [a for a, _ in writes]
    assert all(e.detail == f"role {role} lacks inventory.manage" for e in denied[-4:])
    assert on_hand(seeded, medicine) == {"P-1": 10}


@pytest.mark.parametrize("role", NOT_PHARMACY)
def test_only_the_pharmacy_reads_stock(seeded, actors, pharmacist, medicine, today, role):
    actor = actors[role]
    receive(seeded, pharmacist, medicine, "P-1", in_days(100, today), 10)
    reads = [
        ("stock.list", lambda s: inventory.stock_list(session=s, actor=actor)),
        ("stock.batches", lambda s: inventory.medicine_batches(session=s, actor=actor, medicine_id=medicine)),
        ("stock.alerts", lambda s: inventory.stock_alerts(session=s, actor=actor)),
        ("stock.ledger", lambda s: inventory.stock_ledger(session=s, actor=actor)),
        ("stock.medicines", lambda s: inventory.medicine_choices(session=s, actor=actor)),
    ]
    for action, read in reads:
        assert isinstance(assert_refused(seeded, actor, action, read), PermissionDenied)


def test_a_call_without_a_session_is_refused(seeded):
    assert_refused(seeded, None, "stock.list", lambda s: inventory.stock_list(session=s, actor=None),
                   error=SessionExpired)


def test_two_deliveries_of_one_new_lot_booked_at_once_both_go_into_one_batch(seeded, actors, pharmacist, today):
    second = new_pharmacist(seeded, actors[Role.ADMIN])

    def delivery(actor, medicine, lot, quantity, unit_cost):
        def work():
            with session_scope() as s:
                return inventory.receive_stock(session=s, actor=actor, form=ReceiveForm(
                    medicine_id=medicine, lot=lot, expiry=in_days(100, today), quantity=quantity, unit_cost=unit_cost,
                    supplier=SUPPLIER))
        return work

    for _ in range(3):
        medicine = new_medicine(seeded, pharmacist)
        outcomes = all_at_once(delivery(pharmacist, medicine, "NEW-1", 10, "1.00"),
                               delivery(second, medicine, "new-1", 30, "2.00"))
        [batch] = batches(seeded, medicine)
        assert outcomes == [batch.id, batch.id]
        # (10 x 1.00 + 30 x 2.00) / 40, whichever came first
        assert (batch.quantity_on_hand, batch.unit_cost_cents) == (40, 175)
        assert sorted(movements(seeded, medicine)) == [("NEW-1", "receive", 10), ("NEW-1", "receive", 30)]
    assert mismatches(seeded) == []


# --- the ledger always balances ----------------------------------------------------------------------

LOTS = ("A", "B", "C")
LOT_EXPIRY_DAYS = {"A": 40, "B": 200, "C": 400}
PRESCRIBED = 400

# Mostly valid operations, with every kind of invalid one mixed in.
receive_ops = st.tuples(st.just("receive"), st.sampled_from(LOTS), st.integers(-2, 150),
                        st.sampled_from(("same", "same", "same", "other", "expired", "garbage")),
                        st.sampled_from(("1.00", "0.35", "2.10", "abc")))
adjust_ops = st.tuples(st.just("adjust"), st.integers(0, 2),
                       st.sampled_from(("damaged", "expired", "count_correction", "count_correction", "stolen")),
                       st.integers(-60, 30))
dispense_ops = st.tuples(st.just("dispense"), st.integers(-2, 90))
operations = st.lists(st.one_of(receive_ops, adjust_ops, dispense_ops), min_size=3, max_size=15)
_examples = itertools.count(1)


class StockModel:
    """What the stock of one medicine should be, worked out in plain Python."""

    def __init__(self, today: date) -> None:
        self.today = today
        self.lots: dict[str, dict] = {}
        """lot -> expiry, on hand, unit cost in cents, and the order the batches were made in."""
        self.received = self.dispensed = self.removed = 0
        self.owed = PRESCRIBED

    def receive(self, lot: str, quantity: int, expiry_choice: str, cost: str) -> tuple[str, bool]:
        expiry = self.today + timedelta(days=LOT_EXPIRY_DAYS[lot])
        if expiry_choice == "other":
            expiry += timedelta(days=7)
        elif expiry_choice == "expired":
            expiry = self.today
        text = "31/12/2031" if expiry_choice == "garbage" else expiry.isoformat()
        held = self.lots.get(lot)
        valid = (expiry_choice != "garbage" and expiry > self.today and quantity >= 1 and cost != "abc"
                 and (held is None or held["expiry"] == expiry))
        if valid:
            cents = round(float(Decimal(cost) * 100))
            if held is None:
                self.lots[lot] = {"expiry": expiry, "on_hand": quantity, "cost": cents, "order": len(self.lots)}
            else:
                total = held["on_hand"] + quantity
                held["cost"] = round((held["on_hand"] * held["cost"] + quantity * cents) / total)
                held["on_hand"] = total
            self.received += quantity
        return text, valid

    def adjust(self, lot: str, reason: str, change: int) -> bool:
        held = self.lots[lot]
        valid = (reason in ("damaged", "expired", "count_correction") and change != 0
                 and (reason == "count_correction" or change < 0) and held["on_hand"] + change >= 0)
        if valid:
            held["on_hand"] += change
            self.removed -= change
        return valid

    def dispense(self, units: int) -> type[Exception] | None:
        """None when the dispensing succeeds, else the error it must raise."""
        if self.owed == 0:
            return Conflict
        if not 1 <= units <= self.owed:
            return ValidationError
        if units > sum(h["on_hand"] for h in self.lots.values()):
            return Conflict
        wanted = units
        for held in sorted(self.lots.values(), key=lambda h: (h["expiry"], h["order"])):
            taken = min(wanted, held["on_hand"])
            held["on_hand"] -= taken
            wanted -= taken
        self.dispensed += units
        self.owed -= units
        return None


@settings(max_examples=25, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ops=operations)
def test_any_sequence_of_stock_operations_keeps_the_ledger_balanced(seeded, pharmacist, prescriber, visit, ops):
    """Receive, adjust and dispense in any order, valid or not: the ledger of every batch sums
    to its quantity, no batch goes below zero, and what is on hand is what came in less what
    went out; refused operations change nothing."""
    medicine = new_medicine(seeded, pharmacist, name=f"Propertamol {next(_examples)}")
    prescription_id = verify(seeded, pharmacist, prescribe(seeded, prescriber, visit, (medicine, PRESCRIBED)))
    [item_id] = item_ids(seeded, prescription_id)
    model = StockModel(inventory.local_today())
    batch_ids: dict[str, int] = {}

    for op in ops:
        if op[0] == "receive":
            _, lot, quantity, expiry_choice, cost = op
            expiry, valid = model.receive(lot, quantity, expiry_choice, cost)
            form = ReceiveForm(medicine_id=medicine, lot=lot, expiry=expiry, quantity=quantity, unit_cost=cost,
                               supplier=SUPPLIER)
            if valid:
                batch_ids[lot] = call(seeded, inventory.receive_stock, actor=pharmacist, form=form)
            else:
                with pytest.raises(ValidationError):
                    call(seeded, inventory.receive_stock, actor=pharmacist, form=form)
        elif op[0] == "adjust":
            _, index, reason, change = op
            if not batch_ids:
                continue
            lot = list(batch_ids)[index % len(batch_ids)]
            valid = model.adjust(lot, reason, change)
            kwargs = {"actor": pharmacist, "batch_id": batch_ids[lot], "reason": reason, "change": str(change),
                      "note": "shelf count"}
            if valid:
                assert call(seeded, inventory.adjust_stock, **kwargs) == model.lots[lot]["on_hand"]
            else:
                with pytest.raises(ValidationError):
                    call(seeded, inventory.adjust_stock, **kwargs)
        else:
            units = op[1]
            error = model.dispense(units)
            if error is None:
                dispense(seeded, pharmacist, prescription_id, {item_id: units})
            else:
                with pytest.raises(error):
                    dispense(seeded, pharmacist, prescription_id, {item_id: units})

        stored = {b.lot: (b.quantity_on_hand, b.expiry_date, b.unit_cost_cents) for b in batches(seeded, medicine)}
        assert stored == {lot: (h["on_hand"], h["expiry"], h["cost"]) for lot, h in model.lots.items()}, op
        assert mismatches(seeded) == [], op
        assert negative_batches(seeded) == 0, op

    on_hand_now = sum(on_hand(seeded, medicine).values())
    assert on_hand_now == model.received - model.dispensed - model.removed
    ledger = movements(seeded, medicine)
    assert sum(q for _, kind, q in ledger if kind == "receive") == model.received
    assert -sum(q for _, kind, q in ledger if kind == "dispense") == model.dispensed
    assert -sum(q for _, kind, q in ledger if kind not in ("receive", "dispense")) == model.removed
    with seeded.connect() as conn:
        handed_out = conn.execute(sa.select(sa.func.coalesce(sa.func.sum(Dispensation.quantity), 0))
                                  .where(Dispensation.prescription_id == prescription_id)).scalar_one()
        status = conn.execute(sa.select(Prescription.status).where(Prescription.id == prescription_id)).scalar_one()
    assert handed_out == model.dispensed
    assert dispensed_quantities(seeded, prescription_id) == [model.dispensed]
    expected_status = (PrescriptionStatus.VERIFIED if model.dispensed == 0 else
                       PrescriptionStatus.DISPENSED if model.owed == 0 else PrescriptionStatus.PARTLY_DISPENSED)
    assert status == expected_status.value

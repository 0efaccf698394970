"""The reference lists' CSV kinds, one row at a time through ``import_row`` as the import engine
calls it: good rows, bad rows with the column and value named, a repeated row unchanged, an
edited row updated, lots received once, and who may import."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from hms_app.db.engine import session_scope
from hms_app.db.enums import LineOutcome, Role
from hms_app.db.models import (
    DoctorProfile,
    LabTest,
    Medicine,
    ServicePrice,
    StockBatch,
    StockMovement,
)
from hms_app.services.core.errors import HMSError, PermissionDenied, ValidationError
from hms_app.services.golive import kinds
from tests.services.appointment_helpers import user_id
from tests.services.billing_helpers import HART
from tests.services.helpers import audit_events, snapshot
from tests.services.lab_helpers import with_reference_data
from tests.services.pharmacy_helpers import in_days

pytestmark = pytest.mark.db

POTASSIUM = {"code": "K2", "name": "Potassium (point of care)", "specimen": "Whole blood", "unit": "mmol/L",
             "price": "7.50", "ranges": "any 0-18: 3.4-4.7; any 18-200: 3.5-5.3", "critical_low": "2.5",
             "critical_high": "6.5", "active": "yes"}
MEDICINE = {"name": "Importamycin", "form": "tablet", "strength": "250 mg", "ingredients": "importamycin",
            "drug_class": "test class", "unit_price": "0.80", "reorder_level": "10"}
ECG = {"code": "ECG", "name": "Electrocardiogram", "price": "35", "department": "cardiology", "active": ""}


@pytest.fixture
def hospital(seeded):
    return with_reference_data(seeded)


def run(engine, kind: str, actor, row: dict) -> tuple[LineOutcome, str]:
    """One line, in its own transaction as the engine's savepoint would leave it."""
    with session_scope(engine=engine) as s:
        result = kinds.csv_kinds()[kind].import_row(session=s, actor=actor, row=row, job_id=None)
        s.commit()
    return result.outcome, result.record


def refused(engine, kind: str, actor, row: dict, error: type[HMSError] = ValidationError) -> str:
    before = snapshot(engine)
    with session_scope(engine=engine) as s, pytest.raises(error) as raised:
        kinds.csv_kinds()[kind].import_row(session=s, actor=actor, row=row, job_id=None)
    assert {k: v for k, v in snapshot(engine).items() if k != "audit_event"} == {
        k: v for k, v in before.items() if k != "audit_event"}
    return raised.value.message


def test_the_three_kinds_are_registered_with_their_owning_permissions():
    registered = kinds.csv_kinds()
    assert {name: str(registered[name].permission) for name in ("lab_catalog", "medicines", "prices")} == {
        "lab_catalog": "lab.catalog", "medicines": "inventory.manage", "prices": "prices.manage"}
    assert "SEX AGE_MIN-AGE_MAX: LOW-HIGH" in next(c for c in registered["lab_catalog"].columns
                                                   if c.name == "ranges").description


def test_a_lab_test_is_created_then_unchanged_then_updated(hospital, actors):
    lab_staff = actors[Role.LAB]
    assert run(hospital, "lab_catalog", lab_staff, POTASSIUM) == (LineOutcome.CREATED, "K2")
    assert run(hospital, "lab_catalog", lab_staff, POTASSIUM) == (LineOutcome.UNCHANGED, "K2")
    assert run(hospital, "lab_catalog", lab_staff, {**POTASSIUM, "price": "8", "active": "no"}) == (
        LineOutcome.UPDATED, "K2")
    with session_scope(engine=hospital, write=False) as s:
        test = s.execute(sa.select(LabTest).where(LabTest.code == "K2")).scalar_one()
        assert (test.price_cents, test.is_active, test.numeric, test.critical_high) == (800, False, True, 6.5)
    assert [e.detail for e in audit_events(hospital, action="import.lab_test.update")] == [
        "K2: price £7.50 → £8.00", "K2: deactivated"]
    text_test = {**POTASSIUM, "code": "SWAB", "unit": "", "ranges": "", "critical_low": "", "critical_high": ""}
    assert run(hospital, "lab_catalog", lab_staff, text_test) == (LineOutcome.CREATED, "SWAB")


@pytest.mark.parametrize(("change", "message"), [
    ({"code": "K 2"}, "Column code ('K 2'): Write the code"),
    ({"price": "seven"}, "Column price ('seven'): Enter the price as an amount"),
    ({"ranges": "any 0-18: 3.4-4.7"}, "No range covers female patients aged 18 and over."),
    ({"ranges": "any 0-200 3-5"}, "Column ranges ('any 0-200 3-5'): Write each range as SEX AGES: LOW-HIGH"),
    ({"critical_low": "x"}, "Column critical_low ('x'): Enter the critical low as a number"),
    ({"critical_high": "5"}, "The critical high (5) must be above every range's high"),
    ({"active": "maybe"}, "Column active ('maybe'): Write yes or no."),
    ({"release_rule": "never"}, "Column release_rule ('never'): Choose when results reach the patient"),
    ({"name": ""}, "Enter the test name."),
])
def test_a_bad_lab_row_is_refused_naming_the_column_and_value(hospital, actors, change, message):
    assert message in refused(hospital, "lab_catalog", actors[Role.LAB], {**POTASSIUM, **change})


def test_a_medicine_with_a_lot_is_received_once_and_a_repeat_changes_no_stock(hospital, actors):
    pharmacist = actors[Role.PHARMACY]
    lot = {**MEDICINE, "lot": "imp-1", "expiry": in_days(200), "quantity": "40", "unit_cost": "0.20",
           "supplier": "Northern Medical Supplies"}
    assert run(hospital, "medicines", pharmacist, lot) == (LineOutcome.CREATED, "Importamycin 250 mg lot IMP-1")
    assert run(hospital, "medicines", pharmacist, lot) == (LineOutcome.UNCHANGED, "Importamycin 250 mg lot IMP-1")
    assert run(hospital, "medicines", pharmacist, {**lot, "quantity": "99"})[0] == LineOutcome.UNCHANGED
    assert run(hospital, "medicines", pharmacist, {**lot, "lot": "IMP-2"})[0] == LineOutcome.UPDATED
    assert run(hospital, "medicines", pharmacist, {**MEDICINE, "unit_price": "0.95"})[0] == LineOutcome.UPDATED
    with session_scope(engine=hospital, write=False) as s:
        medicine = s.execute(sa.select(Medicine).where(Medicine.name == "Importamycin")).scalar_one()
        assert medicine.unit_price_cents == 95
        stock = s.execute(sa.select(StockBatch.lot, StockBatch.quantity_on_hand)
                          .where(StockBatch.medicine_id == medicine.id).order_by(StockBatch.lot)).all()
        assert [tuple(r) for r in stock] == [("IMP-1", 40), ("IMP-2", 40)]
        ledger = s.execute(sa.select(StockMovement.kind, StockMovement.quantity)
                           .where(StockMovement.medicine_id == medicine.id)).all()
        assert sorted((str(k), q) for k, q in ledger) == [("receive", 40), ("receive", 40)]


@pytest.mark.parametrize(("change", "message"), [
    ({"unit_price": "abc"}, "Column unit_price ('abc'): Enter the unit price as an amount"),
    ({"reorder_level": "-3"}, "Column reorder_level ('-3'): The reorder level must be between 0"),
    ({"ingredients": ""}, "List the active ingredients"),
    ({"lot": "L1"}, "Column expiry is empty"),
    ({"lot": "L1", "expiry": "2001-01-01", "quantity": "5", "unit_cost": "1", "supplier": "Acme"},
     "Column lot ('L1'): That lot is already expired"),
])
def test_a_bad_medicine_row_is_refused_naming_the_column_and_value(hospital, actors, change, message):
    assert message in refused(hospital, "medicines", actors[Role.PHARMACY], {**MEDICINE, **change})


def test_prices_of_services_lab_tests_and_doctors_by_kind(hospital, actors):
    admin = actors[Role.ADMIN]  # holds prices.manage and lab.catalog
    assert run(hospital, "prices", admin, ECG) == (LineOutcome.CREATED, "ECG")
    assert run(hospital, "prices", admin, ECG) == (LineOutcome.UNCHANGED, "ECG")
    assert run(hospital, "prices", admin, {**ECG, "price": "40"}) == (LineOutcome.UPDATED, "ECG")
    assert run(hospital, "prices", admin, {"kind": "lab", "code": "na", "price": "6"}) == (LineOutcome.UPDATED, "NA")
    assert run(hospital, "prices", admin, {"kind": "lab", "code": "NA", "price": "6"})[0] == LineOutcome.UNCHANGED
    assert run(hospital, "prices", admin, {"kind": "consultation", "code": HART.upper(), "price": "160"}) == (
        LineOutcome.UPDATED, HART)
    with session_scope(engine=hospital, write=False) as s:
        assert s.execute(sa.select(ServicePrice.price_cents).where(ServicePrice.code == "ECG")).scalar_one() == 4000
        assert s.execute(sa.select(LabTest.price_cents).where(LabTest.code == "NA")).scalar_one() == 600
        assert s.get(DoctorProfile, user_id(hospital, HART)).consultation_fee_cents == 16000
    assert audit_events(hospital, action="import.doctor.fee")[0].detail.endswith("£150.00 → £160.00")


@pytest.mark.parametrize(("row", "message"), [
    ({**ECG, "department": "Astrology"}, "Column department ('Astrology'): There is no active department"),
    ({**ECG, "kind": "bed"}, "Column kind ('bed'): write service, lab or consultation."),
    ({**ECG, "name": ""}, "Column name (''): Enter the service name."),
    ({"kind": "lab", "code": "NOPE", "price": "1"}, "Column code ('NOPE'): no lab test has this code"),
    ({"kind": "consultation", "code": "nobody@hms.example", "price": "1"}, "no doctor has this e-mail address"),
])
def test_a_bad_price_row_is_refused_naming_the_column_and_value(hospital, actors, row, message):
    assert message in refused(hospital, "prices", actors[Role.ADMIN], row)


@pytest.mark.parametrize(("kind", "role", "row"), [
    ("lab_catalog", Role.ACCOUNTS, POTASSIUM),
    ("medicines", Role.LAB, MEDICINE),
    ("prices", Role.PHARMACY, ECG),
    ("prices", Role.ACCOUNTS, {"kind": "lab", "code": "NA", "price": "1"}),
])
def test_a_row_is_imported_only_by_a_role_that_owns_the_list(hospital, actors, kind, role, row):
    refused(hospital, kind, actors[role], row, PermissionDenied)

"""The lab catalog edited by the laboratory: the band rules, critical limits, the code fixed once
ordered, the old → new audit of prices and ranges, who may edit, and that a changed range or
price applies to what comes after it only."""

from __future__ import annotations

import dataclasses
import json

import pytest
import sqlalchemy as sa

from hms_app.db.engine import session_scope
from hms_app.db.enums import Role
from hms_app.db.models import Invoice, InvoiceLine, LabTest
from hms_app.services.core.errors import Conflict, ValidationError
from hms_app.services.laboratory import catalog, lab
from hms_app.services.laboratory.catalog import LabTestForm
from hms_app.services.reference.lab_catalog import LAB_TESTS
from tests.services.appointment_helpers import call
from tests.services.helpers import assert_refused, audit_events
from tests.services.lab_helpers import (
    lab_test_id,
    open_visit,
    order,
    result_of,
    running,
    set_patient,
    today,
    use_private_data_dir,
    with_reference_data,
    years_before,
)

pytestmark = pytest.mark.db

NOT_CATALOG = [Role.DOCTOR, Role.PHARMACY, Role.PATIENT, Role.ACCOUNTS]
POTASSIUM = LabTestForm(code="k2", name="Potassium (point of care)", specimen="Whole blood", unit="mmol/L",
                        price="7.50", numeric=True, ranges="any 0-18: 3.4-4.7; any 18-200: 3.5-5.3",
                        critical_low="2.5", critical_high="6.5")


@pytest.fixture(autouse=True)
def _private_data(monkeypatch, tmp_path):
    yield from use_private_data_dir(monkeypatch, tmp_path)


@pytest.fixture
def hospital(seeded):
    return with_reference_data(seeded)


def _refusal(form: LabTestForm) -> str:
    with pytest.raises(ValidationError) as raised:
        catalog.check_test(form)
    return raised.value.message


# --- the rules, without a database ----------------------------------------------------------------


def test_every_test_of_the_starting_catalog_passes_the_rules_and_its_bands_read_back_from_text():
    for spec in LAB_TESTS:
        checked = catalog.check_test(LabTestForm(
            code=spec["code"], name=spec["name"], specimen=spec["specimen"], unit=spec["unit"],
            price=str(spec["price_cents"] / 100), numeric=spec["numeric"], ranges=spec["ranges"],
            critical_low="" if spec["critical_low"] is None else spec["critical_low"],
            critical_high="" if spec["critical_high"] is None else spec["critical_high"]))
        bands = catalog.read_bands(spec["ranges"])
        assert catalog.read_bands(catalog.bands_text(bands)) == bands, spec["code"]
        assert checked.numeric == spec["numeric"]


@pytest.mark.parametrize(("ranges", "message"), [
    ("female 0-18: 1-2; male 0-200: 1-2", "No range covers female patients aged 18 and over."),
    ("any 0-18: 1-2; any 30-200: 1-2", "No range covers female patients aged 18 to 29."),
    ("any 5-200: 1-2", "No range covers female patients aged 0 to 4."),
    ("male 0-200: 1-2", "No range covers female patients of every age."),
    ("any 0-100: 1-2; any 50-200: 1-3", "Two ranges apply to female patients aged 50 to 99"),
    ("any: 1-2; female 18-200: 1-3", "Two ranges apply to female patients aged 18 and over"),
    ("any: 5-2", "the low (5) is above the high (2)"),
    ("any 18-18: 1-2", "the age limit (18) must be above the lowest age (18)"),
    ("any 0-201: 1-2", "from 0 to 200"),
    ("unknown 0-200: 1-2", "any, female or male"),
    ("any 0-200: one-2", "range's low as a number"),
    ("any 0-200 3-5", "SEX AGES: LOW-HIGH"),
    ("", "needs its reference ranges"),
])
def test_bands_that_break_a_rule_are_refused_with_the_age_and_sex_named(ranges, message):
    assert message in _refusal(dataclasses.replace(POTASSIUM, ranges=ranges, critical_low="", critical_high=""))


def test_bands_as_rows_from_the_page_follow_the_same_rules():
    rows = [{"sex": "female", "age_min": "0", "age_max": "200", "low": "1", "high": "2"},
            {"sex": "male", "age_min": "0", "age_max": "60", "low": "1", "high": "2"}]
    assert _refusal(dataclasses.replace(POTASSIUM, ranges=rows, critical_low="", critical_high="")) == (
        "No range covers male patients aged 60 and over.")
    rows[1]["age_max"] = "200"
    checked = catalog.check_test(dataclasses.replace(POTASSIUM, ranges=rows, critical_low="", critical_high=""))
    assert [b["sex"] for b in catalog.read_bands(catalog.bands_text(json.loads(checked.ranges)))] == [
        "female", "male"]


@pytest.mark.parametrize(("low", "high", "message"), [
    ("3.4", "", "The critical low (3.4) must be below every range's low (the lowest is 3.4)."),
    ("", "5.3", "The critical high (5.3) must be above every range's high (the highest is 5.3)."),
    ("abc", "", "Enter the critical low as a number"),
])
def test_critical_limits_lie_outside_every_normal_range(low, high, message):
    assert message in _refusal(dataclasses.replace(POTASSIUM, critical_low=low, critical_high=high))


def test_a_text_test_takes_no_ranges_nor_limits_and_a_numeric_one_needs_a_unit():
    text = dataclasses.replace(POTASSIUM, numeric=False, ranges="", critical_low="", critical_high="", unit="")
    assert catalog.check_test(text).ranges == "[]"
    assert "takes no reference ranges" in _refusal(dataclasses.replace(text, ranges="any: 1-2"))
    assert "takes no critical limits" in _refusal(dataclasses.replace(text, critical_high="9"))
    assert "Enter the unit" in _refusal(dataclasses.replace(POTASSIUM, unit=""))
    assert "capital letters" in _refusal(dataclasses.replace(POTASSIUM, code="K 2"))
    assert "when results reach the patient" in _refusal(dataclasses.replace(POTASSIUM, release_rule="never"))


# --- the services -------------------------------------------------------------------------------


def test_lab_staff_add_a_test_and_the_catalog_lists_searches_and_sorts_it(hospital, actors):
    lab_staff = actors[Role.LAB]
    test_id = call(hospital, catalog.add_lab_test, actor=lab_staff, form=POTASSIUM)
    with session_scope(engine=hospital, write=False) as s:
        test = s.get(LabTest, test_id)
        assert (test.code, test.price_cents, test.critical_low, test.is_active) == ("K2", 750, 2.5, True)
    page = call(hospital, catalog.list_lab_tests, actor=lab_staff, search="point of care")
    assert [(r.code, r.ranges, r.price_input) for r in page.rows] == [
        ("K2", "any 0-18: 3.4-4.7; any 18-200: 3.5-5.3", "7.50")]
    by_price = call(hospital, catalog.list_lab_tests, actor=lab_staff, sort="price", descending=True, page_size=3)
    assert by_price.total == len(LAB_TESTS) + 1
    assert by_price.rows[0].code == "TROP"
    [created] = audit_events(hospital, action="lab_test.create")
    assert "K2 Potassium (point of care), price £7.50" in created.detail
    with pytest.raises(Conflict, match="already in the catalog"):
        call(hospital, catalog.add_lab_test, actor=lab_staff, form=dataclasses.replace(POTASSIUM, name="Again"))


def test_an_edit_is_audited_old_to_new_and_an_edit_that_changes_nothing_writes_nothing(hospital, actors):
    admin = actors[Role.ADMIN]  # admin holds lab.catalog too
    test_id = call(hospital, catalog.add_lab_test, actor=admin, form=POTASSIUM)
    changed = dataclasses.replace(POTASSIUM, price="8", ranges="any 0-18: 3.4-4.7; any 18-200: 3.5-5.1")
    assert call(hospital, catalog.update_lab_test, actor=admin, test_id=test_id, form=changed) is True
    [event] = audit_events(hospital, action="lab_test.update")
    assert event.detail == ("K2: price £7.50 → £8.00; ranges [any 0-18: 3.4-4.7; any 18-200: 3.5-5.3] → "
                            "[any 0-18: 3.4-4.7; any 18-200: 3.5-5.1]")
    assert call(hospital, catalog.update_lab_test, actor=admin, test_id=test_id, form=changed) is False
    assert len(audit_events(hospital, action="lab_test.update")) == 1


def test_deactivating_takes_a_test_off_the_order_list_and_twice_is_refused(hospital, actors):
    lab_staff = actors[Role.LAB]
    test_id = lab_test_id(hospital, "CRP")
    call(hospital, catalog.set_lab_test_active, actor=lab_staff, test_id=test_id, active=False)
    with pytest.raises(Conflict, match="already inactive"):
        call(hospital, catalog.set_lab_test_active, actor=lab_staff, test_id=test_id, active=False)
    inactive = call(hospital, catalog.list_lab_tests, actor=lab_staff, show="inactive")
    assert [r.code for r in inactive.rows] == ["CRP"]
    call(hospital, catalog.set_lab_test_active, actor=lab_staff, test_id=test_id, active=True)
    assert [e.action for e in audit_events(hospital, action=None) if e.action.startswith("lab_test.")][-2:] == [
        "lab_test.deactivate", "lab_test.reactivate"]


@pytest.mark.parametrize("role", NOT_CATALOG)
def test_only_lab_staff_and_admin_edit_the_catalog(hospital, actors, role):
    actor = actors[role]
    test_id = lab_test_id(hospital, "NA")
    for action, attempt in [
        ("lab_test.list", lambda s: catalog.list_lab_tests(session=s, actor=actor)),
        ("lab_test.create", lambda s: catalog.add_lab_test(session=s, actor=actor, form=POTASSIUM)),
        ("lab_test.update", lambda s: catalog.update_lab_test(session=s, actor=actor, test_id=test_id, form=POTASSIUM)),
        ("lab_test.price", lambda s: catalog.set_lab_test_price(session=s, actor=actor, test_id=test_id, price="1")),
        ("lab_test.deactivate", lambda s: catalog.set_lab_test_active(session=s, actor=actor, test_id=test_id,
                                                                       active=False)),
    ]:
        assert_refused(hospital, actor, action, attempt)


# --- changes apply to what comes after them only ----------------------------------------------


@pytest.fixture
def visit(hospital, actors):
    patient = actors[Role.PATIENT]
    set_patient(hospital, patient.user_id, sex="male", birth_date=years_before(today(), 40))
    return open_visit(hospital, actors[Role.DOCTOR], patient.user_id)


def _resulted(hospital, actors, visit, code, value):
    order_id = running(hospital, actors[Role.LAB], order(hospital, actors[Role.DOCTOR], visit, code))
    call(hospital, lab.enter_result, actor=actors[Role.LAB], order_id=order_id, value=value, comment="")
    return order_id


def _form_of(test: LabTest, **changes) -> LabTestForm:
    """The test as the edit dialog shows it, with ``changes``."""
    form = LabTestForm(code=test.code, name=test.name, specimen=test.specimen, unit=test.unit,
                       price=f"{test.price_cents / 100:.2f}", numeric=test.numeric, ranges=json.loads(test.ranges),
                       critical_low="" if test.critical_low is None else test.critical_low,
                       critical_high="" if test.critical_high is None else test.critical_high,
                       release_rule=str(test.release_rule))
    return dataclasses.replace(form, **changes)


def test_a_changed_range_and_price_apply_to_results_and_charges_after_the_change_only(hospital, actors, visit):
    lab_staff = actors[Role.LAB]
    first = _resulted(hospital, actors, visit, "NA", "140")
    assert (result_of(hospital, first).range_low, result_of(hospital, first).range_high) == (133, 146)
    with session_scope(engine=hospital, write=False) as s:
        sodium = s.get(LabTest, lab_test_id(hospital, "NA"))
        line = s.execute(sa.select(InvoiceLine).where(InvoiceLine.source_id == first,
                                                      InvoiceLine.source_type == "lab_order")).scalar_one()
        old_price, invoice_id = line.unit_price_cents, line.invoice_id
        total_before = s.get(Invoice, invoice_id).total_cents
    assert old_price == sodium.price_cents
    call(hospital, catalog.update_lab_test, actor=lab_staff, test_id=sodium.id,
         form=_form_of(sodium, ranges="any: 135-145", price="9.99"))

    with session_scope(engine=hospital, write=False) as s:
        kept = s.execute(sa.select(InvoiceLine).where(InvoiceLine.source_id == first,
                                                      InvoiceLine.source_type == "lab_order")).scalar_one()
        assert (kept.unit_price_cents, kept.amount_cents) == (old_price, old_price)
        assert s.get(Invoice, invoice_id).total_cents == total_before
    assert (result_of(hospital, first).range_low, result_of(hospital, first).range_high) == (133, 146)

    second = _resulted(hospital, actors, visit, "NA", "134")
    assert (result_of(hospital, second).range_low, result_of(hospital, second).flag) == (135, "low")
    with session_scope(engine=hospital, write=False) as s:
        new_line = s.execute(sa.select(InvoiceLine).where(InvoiceLine.source_id == second,
                                                          InvoiceLine.source_type == "lab_order")).scalar_one()
        assert new_line.unit_price_cents == 999
        assert s.get(Invoice, new_line.invoice_id).total_cents == total_before + 999


def test_the_code_of_an_ordered_test_is_fixed(hospital, actors, visit):
    order(hospital, actors[Role.DOCTOR], visit, "NA")
    with session_scope(engine=hospital, write=False) as s:
        sodium = s.get(LabTest, lab_test_id(hospital, "NA"))
    with pytest.raises(Conflict, match="cannot change from NA: 1 orders use it"):
        call(hospital, catalog.update_lab_test, actor=actors[Role.LAB], test_id=sodium.id,
             form=_form_of(sodium, code="NA2"))

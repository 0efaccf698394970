"""The formulary edited at go-live: a medicine's every field, audited old → new, deactivation and
reactivation, admin's reach, and a changed price applying to later dispensing only."""

from __future__ import annotations

import dataclasses

import pytest

from hms_app.db.engine import session_scope
from hms_app.db.enums import Role
from hms_app.db.models import Medicine
from hms_app.services.core.errors import Conflict, NotFound, ValidationError
from hms_app.services.medicines import inventory
from hms_app.services.medicines.inventory import MedicineForm
from tests.services.appointment_helpers import call
from tests.services.billing_helpers import draft_of, lines, money
from tests.services.clinical_helpers import open_visit
from tests.services.helpers import assert_refused, audit_events
from tests.services.pharmacy_helpers import dispense, in_days, item_ids, prescribe, receive, verify

pytestmark = pytest.mark.db

NOT_STOCK = [Role.DOCTOR, Role.PATIENT, Role.LAB, Role.ACCOUNTS]
FORM = MedicineForm(name="Editamycin", form="tablet", strength="250 mg", unit_price="0.80", reorder_level=10,
                    ingredients="editamycin", drug_class="test class")


def test_admin_adds_and_edits_every_field_of_a_medicine_audited_old_to_new(seeded, actors):
    admin = actors[Role.ADMIN]
    medicine_id = call(seeded, inventory.add_medicine, actor=admin, form=FORM)
    edited = dataclasses.replace(FORM, name="Editamycin SR", form="Capsule", strength="500 mg", unit_price="1.10",
                                 ingredients="Editamycin, Lactose", drug_class="", reorder_level="12")
    assert call(seeded, inventory.edit_medicine, actor=admin, medicine_id=medicine_id, form=edited) is True
    with session_scope(engine=seeded, write=False) as s:
        medicine = s.get(Medicine, medicine_id)
        assert (medicine.name, medicine.form, medicine.strength, medicine.unit_price_cents, medicine.ingredients,
                medicine.drug_class, medicine.reorder_level) == (
            "Editamycin SR", "capsule", "500 mg", 110, "editamycin, lactose", "", 12)
    [event] = audit_events(seeded, action="medicine.update")
    assert event.detail == ("Editamycin SR 500 mg capsule: name Editamycin → Editamycin SR; form tablet → capsule; "
                            "strength 250 mg → 500 mg; price £0.80 → £1.10; reorder level 10 → 12; "
                            "ingredients editamycin → editamycin, lactose; drug class test class → ")
    assert call(seeded, inventory.edit_medicine, actor=admin, medicine_id=medicine_id, form=edited) is False
    assert len(audit_events(seeded, action="medicine.update")) == 1


def test_an_edit_is_refused_when_it_would_duplicate_or_drop_the_ingredients(seeded, actors):
    pharmacist = actors[Role.PHARMACY]
    first = call(seeded, inventory.add_medicine, actor=pharmacist, form=FORM)
    call(seeded, inventory.add_medicine, actor=pharmacist, form=dataclasses.replace(FORM, strength="500 mg"))
    with pytest.raises(Conflict, match="Editamycin 500 MG is already in the formulary"):
        call(seeded, inventory.edit_medicine, actor=pharmacist, medicine_id=first,
             form=dataclasses.replace(FORM, strength="500 MG"))
    with pytest.raises(ValidationError, match="List the active ingredients"):
        call(seeded, inventory.edit_medicine, actor=pharmacist, medicine_id=first,
             form=dataclasses.replace(FORM, ingredients=" , "))


def test_a_deactivated_medicine_leaves_the_stock_list_and_comes_back(seeded, actors):
    pharmacist = actors[Role.PHARMACY]
    medicine_id = call(seeded, inventory.add_medicine, actor=pharmacist, form=FORM)
    call(seeded, inventory.set_medicine_active, actor=pharmacist, medicine_id=medicine_id, active=False)
    assert not call(seeded, inventory.stock_list, actor=pharmacist, search="editamycin").rows
    [row] = call(seeded, inventory.stock_list, actor=pharmacist, search="editamycin", show="inactive").rows
    assert (row.state, row.is_active) == ("Inactive", False)
    with pytest.raises(NotFound):
        call(seeded, inventory.edit_medicine, actor=pharmacist, medicine_id=medicine_id, form=FORM)
    with pytest.raises(Conflict, match="already inactive"):
        call(seeded, inventory.set_medicine_active, actor=pharmacist, medicine_id=medicine_id, active=False)
    call(seeded, inventory.set_medicine_active, actor=pharmacist, medicine_id=medicine_id, active=True)
    assert [r.id for r in call(seeded, inventory.stock_list, actor=pharmacist, search="editamycin").rows] == [
        medicine_id]


def test_a_changed_price_applies_to_later_dispensing_only(seeded, actors):
    pharmacist, doctor, patient = actors[Role.PHARMACY], actors[Role.DOCTOR], actors[Role.PATIENT]
    medicine = call(seeded, inventory.add_medicine, actor=pharmacist, form=FORM)
    receive(seeded, pharmacist, medicine, "LOT-1", in_days(200), 30)
    prescription_id = verify(seeded, pharmacist, prescribe(seeded, doctor, open_visit(seeded, doctor, patient.user_id),
                                                           (medicine, 10)))
    [item_id] = item_ids(seeded, prescription_id)
    dispense(seeded, pharmacist, prescription_id, {item_id: 4})
    draft = draft_of(seeded, patient.user_id)
    before = money(seeded, draft.id)

    call(seeded, inventory.set_medicine_price, actor=actors[Role.ADMIN], medicine_id=medicine, unit_price="1.50")
    [event] = audit_events(seeded, action="medicine.price")
    assert event.detail == "Editamycin 250 mg tablet: price £0.80 → £1.50"
    assert money(seeded, draft.id) == before
    assert [(x.unit_price_cents, x.amount_cents) for x in lines(seeded, draft.id)] == [(80, 320)]

    dispense(seeded, pharmacist, prescription_id, {item_id: 6})
    assert [(x.unit_price_cents, x.amount_cents) for x in lines(seeded, draft.id)] == [(80, 320), (150, 900)]
    assert money(seeded, draft.id)[0] == before[0] + 900


@pytest.mark.parametrize("role", NOT_STOCK)
def test_only_pharmacy_and_admin_edit_the_formulary(seeded, actors, role):
    actor = actors[role]
    medicine_id = call(seeded, inventory.add_medicine, actor=actors[Role.PHARMACY], form=FORM)
    for action, attempt in [
        ("medicine.update", lambda s: inventory.edit_medicine(session=s, actor=actor, medicine_id=medicine_id,
                                                               form=FORM)),
        ("medicine.price", lambda s: inventory.set_medicine_price(session=s, actor=actor, medicine_id=medicine_id,
                                                                   unit_price="1")),
        ("medicine.deactivate", lambda s: inventory.set_medicine_active(session=s, actor=actor,
                                                                         medicine_id=medicine_id, active=False)),
    ]:
        assert_refused(seeded, actor, action, attempt)

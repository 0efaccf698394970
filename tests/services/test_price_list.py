"""The price list: every price the hospital charges in one searchable list, each editable by the
role that owns it, services charged by code and doctors' fees kept by accounts, every change
audited old → new, and a changed fee applying to later consultations only."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from hms_app.db.engine import session_scope
from hms_app.db.enums import Role
from hms_app.db.models import Department, ServicePrice
from hms_app.services.accounting import prices
from hms_app.services.accounting.prices import ServicePriceForm
from hms_app.services.core.errors import Conflict, NotFound, ValidationError
from hms_app.services.reference.lab_catalog import LAB_TESTS
from tests.services.appointment_helpers import call, user_id
from tests.services.billing_helpers import HART, charge, draft_of, fee, lines, money
from tests.services.helpers import assert_refused, audit_events
from tests.services.lab_helpers import with_reference_data

pytestmark = pytest.mark.db

NOT_PRICES = [Role.DOCTOR, Role.PHARMACY, Role.PATIENT, Role.LAB]
ECG = ServicePriceForm(code="ecg", name="Electrocardiogram (12-lead)", price="35")


@pytest.fixture
def hospital(seeded):
    return with_reference_data(seeded)


def _department(engine, name: str) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(Department.id).where(Department.name == name)).scalar_one()


def test_accounts_put_a_service_on_the_price_list_and_edit_it_old_to_new(hospital, actors):
    accounts = actors[Role.ACCOUNTS]
    cardiology = _department(hospital, "Cardiology")
    price_id = call(hospital, prices.add_service_price, actor=accounts,
                    form=ServicePriceForm(code="ecg", name=ECG.name, price="35", department_id=str(cardiology)))
    with session_scope(engine=hospital, write=False) as s:
        row = s.get(ServicePrice, price_id)
        assert (row.code, row.price_cents, row.department_id, row.updated_by) == ("ECG", 3500, cardiology,
                                                                                   accounts.user_id)
    assert call(hospital, prices.update_service_price, actor=accounts, price_id=price_id,
                form=ServicePriceForm(code="ECG", name=ECG.name, price="38.50", department_id="")) is True
    [event] = audit_events(hospital, action="service_price.update")
    assert event.detail == "ECG: price £35.00 → £38.50; department Cardiology → none"
    call(hospital, prices.set_service_price, actor=accounts, price_id=price_id, price="40")
    assert audit_events(hospital, action="service_price.update")[-1].detail == "ECG: price £38.50 → £40.00"
    with session_scope(engine=hospital, write=False) as s:
        assert prices.service_price_cents(s, "ECG") == 4000

    call(hospital, prices.set_service_price_active, actor=accounts, price_id=price_id, active=False)
    with session_scope(engine=hospital, write=False) as s, pytest.raises(NotFound, match="No active price"):
        prices.service_price_cents(s, "ECG")
    with pytest.raises(Conflict, match="already inactive"):
        call(hospital, prices.set_service_price_active, actor=accounts, price_id=price_id, active=False)


@pytest.mark.parametrize(("form", "message"), [
    (ServicePriceForm(code="E C G", name="x", price="1"), "capital letters"),
    (ServicePriceForm(code="ECG", name="", price="1"), "Enter the service name."),
    (ServicePriceForm(code="ECG", name="ECG", price="-1"), "Enter the price as an amount"),
    (ServicePriceForm(code="ECG", name="ECG", price="1", department_id="999999"), "Choose the department"),
])
def test_a_bad_service_price_is_refused_with_what_to_fix(hospital, actors, form, message):
    with pytest.raises(ValidationError, match=message):
        call(hospital, prices.add_service_price, actor=actors[Role.ACCOUNTS], form=form)


def test_a_code_is_on_the_list_once(hospital, actors):
    call(hospital, prices.add_service_price, actor=actors[Role.ADMIN], form=ECG)
    with pytest.raises(Conflict, match="code ECG is already on the price list"):
        call(hospital, prices.add_service_price, actor=actors[Role.ACCOUNTS], form=ECG)


def test_the_list_holds_every_price_the_hospital_charges_each_editable_by_its_owner(hospital, actors):
    accounts, admin = actors[Role.ACCOUNTS], actors[Role.ADMIN]
    call(hospital, prices.add_service_price, actor=accounts, form=ECG)
    everything = call(hospital, prices.list_prices, actor=accounts, page_size=100)
    kinds = {r.kind for r in everything.rows}
    assert kinds == {"service", "consultation", "lab", "medicine"}
    assert sum(r.kind == "lab" for r in everything.rows) == len(LAB_TESTS)
    editable = {r.kind: r.editable for r in everything.rows}
    assert editable == {"service": True, "consultation": True, "lab": False, "medicine": False}
    as_admin = call(hospital, prices.list_prices, actor=admin, page_size=100)
    assert all(r.editable for r in as_admin.rows)  # admin holds every owning permission at go-live

    hart = call(hospital, prices.list_prices, actor=accounts, search="amelia")
    assert [(r.kind_label, r.name, r.department, r.price) for r in hart.rows] == [
        ("Consultation", "Dr. Amelia Hart", "Cardiology", "£150.00")]
    tests = call(hospital, prices.list_prices, actor=accounts, show="lab", sort="price", descending=True)
    assert tests.total == len(LAB_TESTS)
    assert tests.rows[0].price == "£25.00"
    assert call(hospital, prices.list_prices, actor=accounts, search="electro").rows[0].code == "ECG"


def test_a_changed_fee_applies_to_later_consultations_only(hospital, actors):
    accounts = actors[Role.ACCOUNTS]
    patient = actors[Role.PATIENT].user_id
    invoice_id = charge(hospital, patient, HART)
    before = money(hospital, invoice_id)
    assert [x.unit_price_cents for x in lines(hospital, invoice_id)] == [15000]

    call(hospital, prices.set_consultation_fee, actor=accounts, doctor_id=user_id(hospital, HART), price="175")
    assert fee(hospital, HART) == 17500
    [event] = audit_events(hospital, action="doctor.fee")
    assert event.detail == "Dr. Amelia Hart: consultation fee £150.00 → £175.00"
    assert money(hospital, invoice_id) == before
    assert [x.amount_cents for x in lines(hospital, invoice_id)] == [15000]

    charge(hospital, patient, HART)
    assert draft_of(hospital, patient).id == invoice_id
    assert [x.unit_price_cents for x in lines(hospital, invoice_id)] == [15000, 17500]
    assert money(hospital, invoice_id)[0] == before[0] + 17500


def test_a_fee_of_someone_who_is_no_doctor_is_not_found(hospital, actors):
    with pytest.raises(NotFound, match="That doctor does not exist"):
        call(hospital, prices.set_consultation_fee, actor=actors[Role.ACCOUNTS],
             doctor_id=actors[Role.PATIENT].user_id, price="1")


@pytest.mark.parametrize("role", NOT_PRICES)
def test_only_accounts_and_admin_keep_the_price_list(hospital, actors, role):
    actor = actors[role]
    accounts_id = call(hospital, prices.add_service_price, actor=actors[Role.ACCOUNTS], form=ECG)
    hart = user_id(hospital, HART)
    for action, attempt in [
        ("price.list", lambda s: prices.list_prices(session=s, actor=actor)),
        ("service_price.create", lambda s: prices.add_service_price(session=s, actor=actor, form=ECG)),
        ("service_price.update", lambda s: prices.update_service_price(session=s, actor=actor, price_id=accounts_id,
                                                                        form=ECG)),
        ("service_price.update", lambda s: prices.set_service_price(session=s, actor=actor, price_id=accounts_id,
                                                                     price="1")),
        ("service_price.deactivate", lambda s: prices.set_service_price_active(session=s, actor=actor,
                                                                                price_id=accounts_id, active=False)),
        ("doctor.fee", lambda s: prices.set_consultation_fee(session=s, actor=actor, doctor_id=hart, price="1")),
    ]:
        assert_refused(hospital, actor, action, attempt)

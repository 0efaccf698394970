"""The sort, filter and search parameters of every list service cannot be turned into SQL.

A client chooses the sort column and types the search text, and can send anything in their
place. A sort that is not one of the list's columns falls back to the list's default order
(``paging.order_by``); search text is matched literally, ``%`` and ``_`` included, never as
a LIKE pattern; and no payload changes a table or fails the query.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from hms_app.db.enums import Role
from hms_app.db.models import User
from hms_app.services.accounting import billing
from hms_app.services.administration import audit_trail, auth, users
from hms_app.services.administration.audit_trail import AuditFilter
from hms_app.services.administration.auth import Registration
from hms_app.services.booking.appointments import AppointmentFilter, all_appointments
from hms_app.services.care import prescribing
from hms_app.services.core.actor import Actor, Anonymous
from hms_app.services.core.errors import LoginFailed
from hms_app.services.medicines import inventory, pharmacy
from hms_app.services.medicines.inventory import MedicineForm, ReceiveForm
from tests.conftest import login_as
from tests.services.appointment_helpers import call
from tests.services.billing_helpers import charge
from tests.services.clinical_helpers import open_visit, use_private_data_dir
from tests.services.helpers import STRONG_PASSWORD, snapshot
from tests.services.pharmacy_helpers import in_days, prescribe

pytestmark = pytest.mark.db

SORT_PAYLOADS: list[Any] = [
    'id; DROP TABLE "user"; --',
    "(SELECT 1)",
    "full_name DESC",
    "created desc, (select password_hash from \"user\")",
    "1",
    "name--",
    "__class__",
    "",
    None,
    7,
    ["when"],
    {"when": 1},
]
SEARCH_PAYLOADS = ["' OR '1'='1", "%' --", "'; DROP TABLE \"user\"; --", "\\", "\\%", "[a-z]*", "*"]

# Two of everything whose names differ only where the other has "_" or "%": a search for
# "_" or "%" as LIKE patterns would find both, as literal text only the first.
LITERAL = "Ann_Lee 10% Sure"
LOOKALIKE = "AnnxLee 10x Sure"


@pytest.fixture(autouse=True)
def _private_data(monkeypatch, tmp_path):
    yield from use_private_data_dir(monkeypatch, tmp_path)


def _register(engine: sa.Engine, name: str, email: str) -> Actor:
    call(engine, auth.register_patient, visitor=Anonymous("203.0.113.5"), form=Registration(
        full_name=name, email=email, password=STRONG_PASSWORD, birth_date="1990-05-01", phone="+44 20 7946 0000"))
    return login_as(engine, email, STRONG_PASSWORD)


@pytest.fixture
def hospital(seeded, actors):
    """The demo hospital plus a patient, a medicine, a lot, an invoice and a prescription each
    for the literal name and for its look-alike, and failed logins with such emails."""
    pharmacist, doctor = actors[Role.PHARMACY], actors[Role.DOCTOR]
    medicines = {}
    for label, name in (("literal", "Zinc_oxide 10% paste"), ("lookalike", "Zincxoxide 10x paste")):
        patient = _register(seeded, LITERAL if label == "literal" else LOOKALIKE,
                            "ann_lee@patients.example" if label == "literal" else "annxlee@patients.example")
        charge(seeded, patient.user_id)
        medicines[label] = call(seeded, inventory.add_medicine, actor=pharmacist, form=MedicineForm(
            name=name, form="paste", strength="10 g", unit_price="1.00", reorder_level=5,
            ingredients="zinc oxide"))
        call(seeded, inventory.receive_stock, actor=pharmacist, form=ReceiveForm(
            medicine_id=medicines[label], lot="LOT_1%" if label == "literal" else "LOTX1X", expiry=in_days(300),
            quantity=50, unit_cost="0.50", supplier="Northern Medical Supplies"))
        prescribe(seeded, doctor, open_visit(seeded, doctor, patient.user_id), (medicines[label], 2))
    for email in ("a_b%@visitors.example", "axbx@visitors.example"):
        with pytest.raises(LoginFailed):
            call(seeded, auth.login, visitor=Anonymous("203.0.113.5"), email=email, password="Not-the-password-1")
    return seeded


# --- sorting ----------------------------------------------------------------------------------------

ListCall = Callable[[sa.Engine, dict[Role, Actor], Any], list[int]]


def _ids(page) -> list[int]:
    return [row.id for row in page.rows]


SORTED_LISTS: dict[str, tuple[Role, str, ListCall]] = {
    "users.list_users": (Role.ADMIN, "full_name", lambda e, a, sort: _ids(call(
        e, users.list_users, actor=a[Role.ADMIN], sort=sort, descending=False, page_size=100))),
    "appointments.all_appointments": (Role.ADMIN, "when", lambda e, a, sort: _ids(call(
        e, all_appointments, actor=a[Role.ADMIN], filters=AppointmentFilter(), sort=sort, descending=False,
        page_size=100))),
    "billing.list_invoices": (Role.ACCOUNTS, "created", lambda e, a, sort: _ids(call(
        e, billing.list_invoices, actor=a[Role.ACCOUNTS], sort=sort, descending=False, page_size=100))),
    "inventory.stock_list": (Role.PHARMACY, "name", lambda e, a, sort: _ids(call(
        e, inventory.stock_list, actor=a[Role.PHARMACY], sort=sort, descending=False, page_size=100))),
    "inventory.stock_ledger": (Role.PHARMACY, "when", lambda e, a, sort: _ids(call(
        e, inventory.stock_ledger, actor=a[Role.PHARMACY], sort=sort, descending=False, page_size=100))),
}


@pytest.mark.parametrize("service", sorted(SORTED_LISTS))
def test_a_sort_that_is_no_column_falls_back_to_the_default_order(hospital, actors, service, subtests):
    _role, default, listing = SORTED_LISTS[service]
    expected = listing(hospital, actors, default)
    before = snapshot(hospital)
    for sort in SORT_PAYLOADS:
        with subtests.test(sort=repr(sort)):
            assert listing(hospital, actors, sort) == expected
    assert snapshot(hospital) == before


# --- searching --------------------------------------------------------------------------------------


def _names_of_users(page) -> list[str]:
    return [row.full_name for row in page.rows]


def _invoice_patients(page) -> list[str]:
    return [row.patient for row in page.rows]


SEARCHES: dict[str, tuple[Callable[..., list[str]], str]] = {
    # service: (search(engine, actors, term) -> the text each found row was found by, what it is)
    "users.list_users": (lambda e, a, term: _names_of_users(call(
        e, users.list_users, actor=a[Role.ADMIN], search=term, page_size=100)), "full name"),
    "billing.list_invoices": (lambda e, a, term: _invoice_patients(call(
        e, billing.list_invoices, actor=a[Role.ACCOUNTS], search=term, page_size=100)), "patient"),
    "inventory.stock_list": (lambda e, a, term: [r.name for r in call(
        e, inventory.stock_list, actor=a[Role.PHARMACY], search=term, page_size=100).rows], "medicine"),
    "inventory.stock_ledger": (lambda e, a, term: [r.lot for r in call(
        e, inventory.stock_ledger, actor=a[Role.PHARMACY], search=term, page_size=100).rows], "lot"),
    "pharmacy.prescription_queue": (lambda e, a, term: [r.patient for r in call(
        e, pharmacy.prescription_queue, actor=a[Role.PHARMACY], search=term, page_size=100).rows], "patient"),
    "prescribing.formulary": (lambda e, a, term: [m.label for m in call(
        e, prescribing.formulary, actor=a[Role.DOCTOR], search=term)], "medicine"),
    "audit_trail.search_audit (user)": (lambda e, a, term: [r.actor for r in call(
        e, audit_trail.search_audit, actor=a[Role.ADMIN], filters=AuditFilter(user=term), page_size=100).rows],
        "email"),
}

# For each search: a term with "_" and "%" that the literal record holds, and the literal text.
LITERAL_TERMS = {
    "users.list_users": ("n_lee 10%", LITERAL),
    "billing.list_invoices": ("n_lee 10%", LITERAL),
    "inventory.stock_list": ("c_oxide 10%", "Zinc_oxide"),
    "inventory.stock_ledger": ("t_1%", "LOT_1%"),
    "pharmacy.prescription_queue": ("n_lee 10%", LITERAL),
    "prescribing.formulary": ("c_oxide 10%", "Zinc_oxide"),
    "audit_trail.search_audit (user)": ("a_b%", "a_b%@visitors.example"),
}


@pytest.mark.parametrize("service", sorted(SEARCHES))
def test_percent_and_underscore_are_searched_for_as_themselves(hospital, actors, service):
    search, what = SEARCHES[service]
    term, literal = LITERAL_TERMS[service]
    found = search(hospital, actors, term)
    assert found, f"searching {term!r} found no {what} holding it"
    assert all(literal in text for text in found), f"{term!r} matched as a pattern: {found}"
    # Alone, each wildcard finds only what holds it.
    for wildcard in ("%", "_"):
        assert all(wildcard in text for text in search(hospital, actors, wildcard)), wildcard


@pytest.mark.parametrize("service", sorted(SEARCHES))
def test_sql_in_a_search_is_only_text_that_matches_nothing(hospital, actors, service, subtests):
    search, _what = SEARCHES[service]
    before = snapshot(hospital)
    for term in SEARCH_PAYLOADS:
        with subtests.test(term=term):
            assert search(hospital, actors, term) == []
    assert snapshot(hospital) == before


def test_an_audit_action_filter_is_a_literal_prefix(hospital, actors):
    """"login%" would find every login event as a pattern; as text it finds none."""
    def actions(prefix: str) -> list[str]:
        return [r.action for r in call(hospital, audit_trail.search_audit, actor=actors[Role.ADMIN],
                                       filters=AuditFilter(action=prefix), page_size=100).rows]

    assert actions("login.")
    assert actions("login%") == []
    assert actions("login_failed") == []


def test_the_users_table_is_still_there(hospital, actors):
    for sort in SORT_PAYLOADS:
        call(hospital, users.list_users, actor=actors[Role.ADMIN], sort=sort, search="'; DROP TABLE \"user\"; --")
    with hospital.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(User)).scalar_one() > 30

"""CSV kinds of the reference lists: medicines with lots, the lab catalog, the price list (registered into ``kinds.CSV_KINDS``).

Each ``import_row`` checks a line by the same rules as the page that edits the list
(``laboratory.catalog.check_test``, ``medicines.inventory.check_medicine`` and
``book_delivery``, ``accounting.prices.check_price``) and writes through the same functions, so
every change is audited old → new. A refused cell is named with its column and value.

- ``lab_catalog``, keyed by ``code``. ``ranges`` holds the bands in one cell, separated by
  ``;``, each ``SEX AGE_MIN-AGE_MAX: LOW-HIGH`` (``any 0-18: 3.4-4.7; any 18-200: 3.5-5.3``);
  an empty cell makes a test with text results.
- ``medicines``, keyed by ``name`` and ``strength`` (the formulary's own key). With a ``lot``,
  the line also receives that lot through the pharmacy's receive rules (stock ledger and all)
  unless the medicine has that lot on record already: a lot is never received twice, so a
  repeated file changes no stock.
- ``prices``, keyed by ``code``. ``kind`` is ``service`` (the default: a service charged by
  code), ``lab`` (the price of the lab test with that code) or ``consultation`` (the fee of the
  doctor whose e-mail address is in ``code``); ``name``, ``department`` and ``active`` apply to
  services only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import sqlalchemy as sa
from sqlmodel import Session

from hms_app.db.enums import LabReleaseRule, LineOutcome, Permission, Role
from hms_app.db.models import DoctorProfile, LabTest, ServicePrice, User
from hms_app.services.accounting import prices
from hms_app.services.accounting.prices import CheckedPrice
from hms_app.services.core import audit
from hms_app.services.core.access import require
from hms_app.services.core.actor import Actor
from hms_app.services.core.errors import ValidationError
from hms_app.services.core.language import N_, _
from hms_app.services.core.numbers import parse_int, parse_money
from hms_app.services.core.text import checked_line, one_line, reference_code
from hms_app.services.golive.kinds import Column, CsvKind, RowResult, register
from hms_app.services.laboratory import catalog
from hms_app.services.laboratory.catalog import LabTestForm
from hms_app.services.medicines import inventory
from hms_app.services.medicines.inventory import MedicineForm, ReceiveForm

T = TypeVar("T")
_YES = ("", "1", "true", "yes", "y", "active")
_NO = ("0", "false", "no", "n", "inactive")


def _value(row: dict[str, str], column: str) -> str:
    if not isinstance(row, dict):
        raise ValidationError(_("A line must be a row of named cells."))
    value = row.get(column)
    return "" if value is None else str(value).strip()[:4000]


@contextmanager
def _cell(column: str, value: str) -> Iterator[None]:
    """Name the column and its value in a refusal of what is checked inside."""
    try:
        yield
    except ValidationError as refusal:
        raise ValidationError(_("Column {column} ({value}): {problem}").format(
            column=column, value=repr(value[:60]), problem=refusal.message)) from None


def _read(row: dict[str, str], column: str, check: Callable[[str], T]) -> T:
    value = _value(row, column)
    with _cell(column, value):
        return check(value)


def _reference_code(value: str) -> str:
    return reference_code(value, _("code"))


def _active(value: str) -> bool:
    if value.lower() in _YES:
        return True
    if value.lower() in _NO:
        return False
    raise ValidationError(_("Write yes or no."))


def _outcome(created: bool, changed: bool) -> LineOutcome:
    return LineOutcome.CREATED if created else LineOutcome.UPDATED if changed else LineOutcome.UNCHANGED


# --- the lab catalog ----------------------------------------------------------------------------


def import_lab_test(*, session: Session, actor: Actor, row: dict[str, str], job_id: int | None) -> RowResult:
    """One test of the catalog, added or brought up to date by its code."""
    require(session, actor, Permission.LAB_CATALOG_MANAGE, action="import.lab_catalog")
    code = _read(row, "code", _reference_code)
    _read(row, "price", lambda v: parse_money(v, _("price")))
    ranges = _read(row, "ranges", catalog.read_bands)
    for column, label in (("critical_low", N_("critical low")), ("critical_high", N_("critical high"))):
        _read(row, column, lambda v, label=label: catalog.read_limit(v, _(label)))
    active = _read(row, "active", _active)
    test = session.execute(sa.select(LabTest).where(LabTest.code == code)).scalar_one_or_none()
    rule = _value(row, "release_rule") or (str(test.release_rule) if test else LabReleaseRule.NORMAL_AT_ONCE.value)
    form = LabTestForm(code=code, name=_value(row, "name"), specimen=_value(row, "specimen"), unit=_value(row, "unit"),
                       price=_value(row, "price"), numeric=bool(ranges), ranges=ranges,
                       critical_low=_value(row, "critical_low"), critical_high=_value(row, "critical_high"),
                       release_rule=rule)
    with _cell("release_rule", rule):
        checked = catalog.check_test(form)
    test, changes = catalog.write_test(session, actor, checked, test, action_prefix="import.lab_test")
    if test.is_active != active:
        test.is_active = active
        session.add(test)
        audit.record(session, actor, "import.lab_test.update", entity_type="lab_test", entity_id=test.id,
                     detail=f"{test.code}: {'reactivated' if active else 'deactivated'}")
        changes = [*changes, "active"]
    session.flush()
    return RowResult(_outcome(changes == ["created"], bool(changes)), code)


register(CsvKind(
    name="lab_catalog",
    label=N_("Lab catalog"),
    permission=Permission.LAB_CATALOG_MANAGE,
    columns=(
        Column("code", True, N_("The test's code: up to 20 capital letters, digits, '-' or '_' (K, HBA1C).")),
        Column("name", True, N_("The test's name, as doctors order it.")),
        Column("specimen", True, N_("What is sampled: Serum, Blood (EDTA), Urine...")),
        Column("unit", False, N_("The unit of numeric results (mmol/L); required when there are ranges.")),
        Column("price", True, N_("The price, like 12.50.")),
        Column("ranges", False, N_("Reference ranges, separated by ';', each SEX AGE_MIN-AGE_MAX: LOW-HIGH, sex any, "
                                   "female or male, ages in whole years with 200 for no limit: 'female 18-200: 115-165; "
                                   "male 18-200: 130-180; any 0-18: 105-160'. Empty for a test with text results.")),
        Column("critical_low", False, N_("A value below this is critical (telephoned); below every range's low.")),
        Column("critical_high", False, N_("A value above this is critical; above every range's high.")),
        Column("active", False, N_("yes (the default) or no: an inactive test cannot be ordered.")),
        Column("release_rule", False, N_("When results reach the patient: at_once, normal_at_once (the default) or "
                                         "after_review.")),
    ),
    key="code",
    import_row=import_lab_test,
))


# --- medicines with lots ------------------------------------------------------------------------


def import_medicine(*, session: Session, actor: Actor, row: dict[str, str], job_id: int | None) -> RowResult:
    """One medicine, added or brought up to date by name and strength, and its lot if new."""
    require(session, actor, Permission.INVENTORY_MANAGE, action="import.medicines")
    name, strength = _value(row, "name"), _value(row, "strength")
    medicine = inventory.find_medicine(session, name, strength) if name and strength else None
    _read(row, "unit_price", lambda v: parse_money(v, _("unit price")))
    reorder = _value(row, "reorder_level") or (str(medicine.reorder_level) if medicine else "0")
    with _cell("reorder_level", reorder):
        parse_int(reorder, _("reorder level"), low=0, high=inventory.MAX_UNITS)
    form = MedicineForm(name=name, form=_value(row, "form"), strength=strength, unit_price=_value(row, "unit_price"),
                        reorder_level=reorder, ingredients=_value(row, "ingredients"),
                        drug_class=_value(row, "drug_class"))
    checked = inventory.check_medicine(form)
    medicine, changes = inventory.write_medicine(session, actor, checked, medicine)
    record = f"{checked.name} {checked.strength}"
    lot = _value(row, "lot")
    if lot:
        lot = _read(row, "lot", inventory.read_lot)
        if inventory.lot_on_record(session, medicine.id, lot) is None:
            if not medicine.is_active:
                raise ValidationError(_("{medicine} is inactive: reactivate it on the Stock page before receiving "
                                        "lot {lot}.").format(medicine=record, lot=lot))
            delivery = ReceiveForm(medicine_id=medicine.id, lot=lot, expiry=_value(row, "expiry"),
                                   quantity=_value(row, "quantity"), unit_cost=_value(row, "unit_cost"),
                                   supplier=_value(row, "supplier"))
            for column in ("expiry", "quantity", "unit_cost", "supplier"):
                if not _value(row, column):
                    raise ValidationError(_("Column {column} is empty: a line with a lot needs its expiry, quantity, "
                                            "unit_cost and supplier.").format(column=column))
            with _cell("lot", lot):
                inventory.book_delivery(session, actor, medicine, delivery)
            changes = [*changes, f"lot {lot}"]
        record = f"{record} lot {lot}"
    session.flush()
    return RowResult(_outcome(bool(changes) and changes[0] == "created", bool(changes)), record)


register(CsvKind(
    name="medicines",
    label=N_("Medicines and stock"),
    permission=Permission.INVENTORY_MANAGE,
    columns=(
        Column("name", True, N_("The medicine's name; with strength, what identifies it across imports.")),
        Column("strength", True, N_("Its strength, like 500 mg.")),
        Column("form", True, N_("Tablet, capsule, syrup...")),
        Column("ingredients", True, N_("Active ingredients, comma-separated: the allergy check matches on them.")),
        Column("drug_class", False, N_("Its class, like penicillins.")),
        Column("unit_price", True, N_("What a patient is charged per unit, like 0.45.")),
        Column("reorder_level", False, N_("Usable units at or below which it shows as low stock (0 by default).")),
        Column("lot", False, N_("A lot to receive into stock; a lot already on record is left as it is.")),
        Column("expiry", False, N_("The lot's expiry date, YYYY-MM-DD.")),
        Column("quantity", False, N_("Units received in the lot.")),
        Column("unit_cost", False, N_("What a unit of the lot cost, like 0.12.")),
        Column("supplier", False, N_("Who delivered the lot.")),
    ),
    key="name + strength (and lot)",
    import_row=import_medicine,
))


# --- the price list -----------------------------------------------------------------------------

PRICE_KINDS = ("service", "lab", "consultation")


def _service_row(session: Session, actor: Actor, row: dict[str, str]) -> RowResult:
    require(session, actor, Permission.PRICES_MANAGE, action="import.prices")
    code = _read(row, "code", _reference_code)
    cents = _read(row, "price", lambda v: parse_money(v, _("price")))
    name = _read(row, "name", lambda v: checked_line(v, _("service name"), limit=120))
    department_id = _read(row, "department", lambda v: prices.department_named(session, v))
    active = _read(row, "active", _active)
    existing = session.execute(sa.select(ServicePrice).where(ServicePrice.code == code)).scalar_one_or_none()
    __, changes = prices.write_service_price(session, actor, CheckedPrice(code, name, cents, department_id), existing,
                                            active=active)
    session.flush()
    return RowResult(_outcome(changes == ["created"], bool(changes)), code)


def _lab_price_row(session: Session, actor: Actor, row: dict[str, str]) -> RowResult:
    require(session, actor, Permission.LAB_CATALOG_MANAGE, action="import.prices")
    code = _read(row, "code", _reference_code)
    cents = _read(row, "price", lambda v: parse_money(v, _("price")))
    test = session.execute(sa.select(LabTest).where(LabTest.code == code)).scalar_one_or_none()
    if test is None:
        raise ValidationError(_("Column code ({code}): no lab test has this code; import the lab catalog first.")
                              .format(code=repr(code)))
    changed = catalog.write_test_price(session, actor, test, cents, action="import.lab_test.price")
    session.flush()
    return RowResult(LineOutcome.UPDATED if changed else LineOutcome.UNCHANGED, code)


def _fee_row(session: Session, actor: Actor, row: dict[str, str]) -> RowResult:
    require(session, actor, Permission.PRICES_MANAGE, action="import.prices")
    email = _read(row, "code", lambda v: one_line(v, _("doctor's e-mail address")).lower())
    cents = _read(row, "price", lambda v: parse_money(v, _("consultation fee")))
    found = session.execute(sa.select(DoctorProfile).join(User, User.id == DoctorProfile.user_id)
                            .where(sa.func.lower(User.email) == email, User.role == Role.DOCTOR.value)).first()
    if found is None:
        raise ValidationError(_("Column code ({email}): no doctor has this e-mail address.").format(
            email=repr(email[:60])))
    changed = prices.write_fee(session, actor, found[0], cents, action="import.doctor.fee")
    session.flush()
    return RowResult(LineOutcome.UPDATED if changed else LineOutcome.UNCHANGED, email)


def import_price(*, session: Session, actor: Actor, row: dict[str, str], job_id: int | None) -> RowResult:
    """One price: a service's (added or brought up to date by its code), a lab test's or a doctor's fee."""
    kind = _value(row, "kind").lower() or "service"
    if kind not in PRICE_KINDS:
        raise ValidationError(_("Column kind ({kind}): write service, lab or consultation.").format(
            kind=repr(kind[:20])))
    return {"service": _service_row, "lab": _lab_price_row, "consultation": _fee_row}[kind](session, actor, row)


register(CsvKind(
    name="prices",
    label=N_("Price list"),
    permission=Permission.PRICES_MANAGE,
    columns=(
        Column("code", True, N_("A service's code (ECG, BED-DAY); for kind lab the test's code; for kind "
                                "consultation the doctor's e-mail address.")),
        Column("price", True, N_("The price, like 35.00. Charges already made keep their price.")),
        Column("name", False, N_("The service's name (services only; required for a new one).")),
        Column("department", False, N_("The department that provides it, by name (services only; optional).")),
        Column("active", False, N_("yes (the default) or no: an inactive service is no longer charged.")),
        Column("kind", False, N_("service (the default), lab or consultation.")),
    ),
    key="code (with kind)",
    import_row=import_price,
))

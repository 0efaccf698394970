"""The lab catalog, edited by the laboratory (``lab.catalog``: lab staff and admin).

A test has a code, a name, a specimen, a unit, a price, and either numeric results with
reference ranges (bands by sex and age, see ``services/reference/lab_catalog.py``) and
critical limits, or text results. The rules for bands live here, once, for the page and the
CSV import alike (``check_bands``, ``read_bands``):

- a band's ``low`` is at most its ``high``; ages are whole years from 0 to 200, ``age_min``
  inclusive and ``age_max`` exclusive;
- for each sex, no two bands that apply to it (its own and "any") overlap in age, and for a
  numeric test every age from 0 to 200 is covered for both female and male patients;
- a critical low is below every band's low, a critical high above every band's high.

A result keeps the range it was flagged against (``lab_result.range_low``/``range_high``), so a
changed range applies to results entered after the change only. A test's code is fixed once it
has been ordered: orders, reports and exports name it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlmodel import Session

from hms_app.db.enums import LabReleaseRule, Permission
from hms_app.db.models import LabOrder, LabTest
from hms_app.services.core import audit
from hms_app.services.core.access import access_by_id, require
from hms_app.services.core.actor import Actor
from hms_app.services.core.errors import Conflict, ValidationError
from hms_app.services.core.language import N_, _, ngettext
from hms_app.services.core.numbers import format_money, parse_money
from hms_app.services.core.paging import Page, clamp_page, fetch_page, order_by
from hms_app.services.core.text import checked_line, reference_code, storable
from hms_app.services.laboratory.lab import critical_limits_text, parse_result_value
from hms_app.services.reference.lab_catalog import NO_AGE_LIMIT

SEXES = ("any", "female", "male")
MAX_BANDS = 40
RELEASE_RULES = {
    LabReleaseRule.AT_ONCE.value: N_("Every result at once"),
    LabReleaseRule.NORMAL_AT_ONCE.value: N_("Normal results at once, others after the doctor's review"),
    LabReleaseRule.AFTER_REVIEW.value: N_("Every result after the doctor's review"),
}
"""The release rules by value, each with its label (translated where shown)."""
_BAND_TEXT = re.compile(
    r"(?P<sex>[a-z]+)\s*(?:(?P<age_min>\d+)\s*-\s*(?P<age_max>\d+))?\s*:\s*(?P<low>[^-\s]+)\s*-\s*(?P<high>\S+)")


# --- the rules of a band, one place for the page and the CSV import -------------------------------


def _number(value: object, label: str) -> float:
    """A range limit as typed, by the rule of a result value (digits and a decimal point)."""
    try:
        return parse_result_value(value)
    except ValidationError:
        raise ValidationError(_("Enter the {label} as a number like 3.5 (not {value}).")
                              .format(label=label, value=repr(str(value)[:20]))) from None


def _age(value: object, label: str) -> int:
    text = str(value if value is not None else "").strip()
    if isinstance(value, bool) or not text.isdigit() or not 0 <= int(text) <= NO_AGE_LIMIT:
        raise ValidationError(_("Enter the {label} as a whole number of years from 0 to {limit} (not {value}).")
                              .format(label=label, limit=NO_AGE_LIMIT, value=repr(text[:20])))
    return int(text)


def _number_text(value: float) -> str:
    return f"{value:.10g}"


def _age_span(age_min: int, age_max: int) -> str:
    if age_max >= NO_AGE_LIMIT:
        return _("of every age") if age_min == 0 else _("aged {low} and over").format(low=age_min)
    return _("aged {low} to {high}").format(low=age_min, high=age_max - 1)


_BAND_NAMES = {
    "any": N_("the range for either sex {ages}"),
    "female": N_("the female range {ages}"),
    "male": N_("the male range {ages}"),
}


def _band_name(band: dict) -> str:
    return _(_BAND_NAMES[band["sex"]]).format(ages=_age_span(band["age_min"], band["age_max"]))


def read_bands(value: object) -> list[dict]:
    """Bands as a client or a CSV cell gives them, as ``{sex, age_min, age_max, low, high}`` dicts.

    Takes a list of dicts (the page's rows, each value as typed) or the text of a CSV cell:
    bands separated by ``;``, each ``SEX AGE_MIN-AGE_MAX: LOW-HIGH`` (``any 0-200: 3.5-5.3;
    female 18-200: 115-165``); without the ages a band is for every age (``any: 133-146``).
    Only the form is checked here; ``check_bands`` checks the rules.
    """
    if isinstance(value, str):
        parts = [p.strip() for p in value.split(";") if p.strip()]
        rows = []
        for part in parts:
            found = _BAND_TEXT.fullmatch(part.lower())
            if not found:
                raise ValidationError(_("Write each range as SEX AGES: LOW-HIGH, like 'female 18-200: 115-165' "
                                        "(not {value}).").format(value=repr(part[:40])))
            rows.append({"sex": found["sex"], "age_min": found["age_min"] or 0,
                         "age_max": found["age_max"] or NO_AGE_LIMIT, "low": found["low"], "high": found["high"]})
        value = rows
    if not isinstance(value, list | tuple) or not all(isinstance(row, dict) for row in value):
        raise ValidationError(_("Give the reference ranges as rows of sex, ages, low and high."))
    if len(value) > MAX_BANDS:
        raise ValidationError(ngettext("A test takes at most {n} reference range.",
                                       "A test takes at most {n} reference ranges.", MAX_BANDS).format(n=MAX_BANDS))
    bands = []
    for row in value:
        sex = str(row.get("sex") or "").strip().lower()
        if sex not in SEXES:
            raise ValidationError(_("Choose the sex of a range as any, female or male (not {value}).")
                                  .format(value=repr(sex[:20])))
        age_min, age_max = _age(row.get("age_min"), _("lowest age")), _age(row.get("age_max"), _("age limit"))
        low, high = _number(row.get("low"), _("range's low")), _number(row.get("high"), _("range's high"))
        bands.append({"sex": sex, "age_min": age_min, "age_max": age_max, "low": low, "high": high})
    return bands


_SEX_RULES = (
    ("female", N_("Two ranges apply to female patients {ages}: {first} and {second}. "
                  "Make them meet without overlapping."), N_("No range covers female patients {ages}.")),
    ("male", N_("Two ranges apply to male patients {ages}: {first} and {second}. "
                "Make them meet without overlapping."), N_("No range covers male patients {ages}.")),
)
"""Each sex a numeric test must cover, with what an overlap and a gap in its ranges are told."""


def check_bands(bands: list[dict], *, numeric: bool) -> list[dict]:
    """``bands`` sorted, or ``ValidationError`` naming the band, age or sex that breaks a rule."""
    if not numeric:
        if bands:
            raise ValidationError(_("A test with text results takes no reference ranges: remove them, "
                                    "or make the results numeric."))
        return []
    if not bands:
        raise ValidationError(_("A test with numeric results needs its reference ranges."))
    for band in bands:
        if band["age_min"] >= band["age_max"]:
            raise ValidationError(_("In a range the age limit ({limit}) must be above the lowest age ({lowest}).")
                                  .format(limit=band["age_max"], lowest=band["age_min"]))
        if band["low"] > band["high"]:
            raise ValidationError(_("In {range} the low ({low}) is above the high ({high}).").format(
                range=_band_name(band), low=_number_text(band["low"]), high=_number_text(band["high"])))
    for sex, overlap, gap in _SEX_RULES:
        mine = sorted((b for b in bands if b["sex"] in ("any", sex)), key=lambda b: (b["age_min"], b["age_max"]))
        covered = 0
        for before, band in zip([None, *mine], mine, strict=False):
            if before is not None and band["age_min"] < before["age_max"]:
                raise ValidationError(_(overlap).format(
                    ages=_age_span(band["age_min"], min(before["age_max"], band["age_max"])),
                    first=_band_name(before), second=_band_name(band)))
            if band["age_min"] > covered:
                raise ValidationError(_(gap).format(ages=_age_span(covered, band["age_min"])))
            covered = max(covered, band["age_max"])
        if covered < NO_AGE_LIMIT:
            raise ValidationError(_(gap).format(ages=_age_span(covered, NO_AGE_LIMIT)))
    return sorted(bands, key=lambda b: (b["age_min"], SEXES.index(b["sex"])))


def check_critical(critical_low: float | None, critical_high: float | None, bands: list[dict], *,
                   numeric: bool) -> None:
    """Critical limits lie outside every normal range; a text test has none."""
    if not numeric:
        if critical_low is not None or critical_high is not None:
            raise ValidationError(_("A test with text results takes no critical limits."))
        return
    lowest = min(b["low"] for b in bands)
    highest = max(b["high"] for b in bands)
    if critical_low is not None and critical_low >= lowest:
        raise ValidationError(_("The critical low ({limit}) must be below every range's low (the lowest is {lowest}).")
                              .format(limit=_number_text(critical_low), lowest=_number_text(lowest)))
    if critical_high is not None and critical_high <= highest:
        raise ValidationError(_("The critical high ({limit}) must be above every range's high "
                                "(the highest is {highest}).")
                              .format(limit=_number_text(critical_high), highest=_number_text(highest)))


def bands_text(bands: list[dict]) -> str:
    """Bands in the CSV cell's words (``read_bands`` reads them back)."""
    return "; ".join(f"{b['sex']} {b['age_min']}-{b['age_max']}: {_number_text(b['low'])}-{_number_text(b['high'])}"
                     for b in bands)


def read_limit(value: object, label: str) -> float | None:
    """A critical limit as typed; None when left empty."""
    text = str(value if value is not None else "").strip()
    return None if text == "" else _number(value, label)


def _flag(value: object, label: str) -> bool:
    """A yes/no as a checkbox, a client or a CSV cell gives it."""
    if isinstance(value, bool):
        return value
    text = str(value if value is not None else "").strip().lower()
    if text in ("1", "true", "yes", "y", "on"):
        return True
    if text in ("0", "false", "no", "n", "off", ""):
        return False
    raise ValidationError(_("Answer the {label} with yes or no (not {value}).").format(label=label,
                                                                                    value=repr(text[:20])))


# --- the form a test is added or edited with ---------------------------------------------------


@dataclass(frozen=True)
class LabTestForm:
    """A test as typed. ``ranges``: the rows of bands, or their text (see ``read_bands``)."""

    code: str
    name: str
    specimen: str
    unit: str
    price: str
    numeric: object
    ranges: object
    critical_low: object = ""
    critical_high: object = ""
    release_rule: str = LabReleaseRule.NORMAL_AT_ONCE.value


@dataclass(frozen=True)
class CheckedTest:
    """A ``LabTestForm`` that passed every rule, in ``LabTest`` fields."""

    code: str
    name: str
    specimen: str
    unit: str
    price_cents: int
    numeric: bool
    ranges: str
    critical_low: float | None
    critical_high: float | None
    release_rule: str

    def values(self) -> dict:
        return dict(self.__dict__)


def check_test(form: LabTestForm) -> CheckedTest:
    """Every rule of a catalog test, or ``ValidationError`` naming the field and the value."""
    code = reference_code(form.code, _("code"))
    name = checked_line(form.name, _("test name"), limit=120)
    specimen = checked_line(form.specimen, _("specimen"), limit=60)
    unit = checked_line(form.unit, _("unit"), limit=30, required=False)
    price = parse_money(form.price, _("price"))
    numeric = _flag(form.numeric, _("numeric results"))
    if numeric and not unit:
        raise ValidationError(_("Enter the unit the results are in, like mmol/L."))
    bands = check_bands(read_bands(form.ranges if form.ranges not in (None, "") else []), numeric=numeric)
    critical_low = read_limit(form.critical_low, _("critical low"))
    critical_high = read_limit(form.critical_high, _("critical high"))
    check_critical(critical_low, critical_high, bands, numeric=numeric)
    rule = str(form.release_rule or "").strip().lower()
    if rule not in RELEASE_RULES:
        raise ValidationError(_("Choose when results reach the patient from the list."))
    ranges = json.dumps(bands)
    if len(ranges) > 4000:
        raise ValidationError(_("The reference ranges are too many to store; merge some bands."))
    return CheckedTest(code, name, specimen, unit, price, numeric, ranges, critical_low, critical_high, rule)


# --- reading ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BandRow:
    """One band as the edit dialog shows it: every value as text."""

    sex: str
    age_min: str
    age_max: str
    low: str
    high: str


@dataclass(frozen=True)
class LabTestRow:
    id: int
    code: str
    name: str
    specimen: str
    unit: str
    price: str
    results: str
    """"Number" or "Text"."""
    ranges: str
    """The bands in the CSV cell's words."""
    critical: str
    release_rule: str
    release_label: str
    is_active: bool
    status: str
    ordered: bool
    """Whether orders use the test (its code is then fixed)."""
    numeric: bool = True
    price_input: str = ""
    critical_low: str = ""
    critical_high: str = ""
    bands: list[BandRow] = field(default_factory=list)


def _band_rows(bands: list[dict]) -> list[BandRow]:
    return [BandRow(b["sex"], str(b["age_min"]), str(b["age_max"]), _number_text(b["low"]), _number_text(b["high"]))
            for b in bands]


def _row(test: LabTest, ordered: bool) -> LabTestRow:
    bands = json.loads(test.ranges or "[]")
    return LabTestRow(
        id=test.id, code=test.code, name=test.name, specimen=test.specimen, unit=test.unit,
        price=format_money(test.price_cents), results=_("Number") if test.numeric else _("Text"),
        ranges=bands_text(bands), critical=critical_limits_text(test), release_rule=str(test.release_rule),
        release_label=_(RELEASE_RULES[str(test.release_rule)]) if str(test.release_rule) in RELEASE_RULES else "",
        is_active=test.is_active, status=_("Active") if test.is_active else _("Inactive"), ordered=ordered,
        numeric=test.numeric,
        price_input=f"{test.price_cents // 100}.{test.price_cents % 100:02d}",
        critical_low="" if test.critical_low is None else _number_text(test.critical_low),
        critical_high="" if test.critical_high is None else _number_text(test.critical_high),
        bands=_band_rows(bands),
    )


CATALOG_FILTERS = ("", "active", "inactive")


def list_lab_tests(*, session: Session, actor: Actor, search: str = "", show: str = "", sort: str = "name",
                   descending: bool = False, page: int = 1, page_size: int = 20) -> Page[LabTestRow]:
    """The catalog, searched by code or name, filtered by state, sorted and paged in SQL."""
    require(session, actor, Permission.LAB_CATALOG_MANAGE, action="lab_test.list")
    page, page_size = clamp_page(page, page_size)
    ordered = sa.exists().where(LabOrder.test_id == LabTest.id).label("ordered")
    query = sa.select(LabTest, ordered)
    term = storable(str(search or "").strip().lower()[:60], _("search"))
    if term:
        query = query.where(sa.or_(sa.func.lower(LabTest.name).contains(term, autoescape=True),
                                   sa.func.lower(LabTest.code).contains(term, autoescape=True)))
    if show == "active":
        query = query.where(LabTest.is_active)
    elif show == "inactive":
        query = query.where(sa.not_(LabTest.is_active))
    columns = {"name": LabTest.name, "code": LabTest.code, "specimen": LabTest.specimen,
               "price": LabTest.price_cents, "status": LabTest.is_active}
    query = query.order_by(order_by(columns, sort, descending, "name"), LabTest.id)
    total, rows = fetch_page(session, query, page=page, page_size=page_size)
    return Page([_row(test, bool(used)) for test, used in rows], total, page, page_size)


# --- writing ------------------------------------------------------------------------------------


def _test(session: Session, actor: Actor, test_id: object, action: str) -> LabTest:
    return access_by_id(session, actor, LabTest, test_id, action=action,
                        missing=N_("That test is not in the catalog."), entity_type="lab_test", lock=True)


def _code_taken(session: Session, code: str, except_id: int | None = None) -> None:
    query = sa.select(LabTest.id).where(LabTest.code == code)
    if except_id is not None:
        query = query.where(LabTest.id != except_id)
    if session.execute(query).first():
        raise Conflict(_("A test with the code {code} is already in the catalog.").format(code=code))


def _changes(test: LabTest, checked: CheckedTest) -> list[str]:
    """What an edit changes, old → new, in words the audit trail keeps."""
    changes = []
    for name, value in checked.values().items():
        old = getattr(test, name)
        old = str(old) if name == "release_rule" else old
        if old == value:
            continue
        if name == "price_cents":
            changes.append(f"price {format_money(old)} → {format_money(value)}")
        elif name == "ranges":
            changes.append(f"ranges [{bands_text(json.loads(old or '[]'))}] → [{bands_text(json.loads(value))}]")
        else:
            changes.append(f"{name.replace('_', ' ')} {old!s:.60} → {value!s:.60}")
    return changes


def write_test(session: Session, actor: Actor | None, checked: CheckedTest, test: LabTest | None = None,
               *, action_prefix: str = "lab_test") -> tuple[LabTest, list[str]]:
    """Add or change a test that passed ``check_test``, audited with what changed, in the caller's
    transaction (the page's services and the CSV import both write through here).

    Returns:
        The test and its changes, old → new (empty when nothing changed and nothing was written).
    """
    if test is None:
        _code_taken(session, checked.code)
        test = LabTest(**checked.values())
        session.add(test)
        session.flush()
        audit.record(session, actor, f"{action_prefix}.create", entity_type="lab_test", entity_id=test.id,
                     detail=f"{checked.code} {checked.name}, price {format_money(checked.price_cents)}, "
                            f"ranges [{bands_text(json.loads(checked.ranges))}]")
        return test, ["created"]
    changes = _changes(test, checked)
    if not changes:
        return test, []
    if checked.code != test.code:
        used = session.execute(sa.select(sa.func.count()).where(LabOrder.test_id == test.id)).scalar_one()
        if used:
            # The English reads "1 orders" as it always has; the catalogues give each language its forms.
            raise Conflict(ngettext("The code of {test} cannot change from {code}: {n} orders use it.",
                                    "The code of {test} cannot change from {code}: {n} orders use it.", used)
                           .format(test=test.name, code=test.code, n=used))
        _code_taken(session, checked.code, except_id=test.id)
    for name, value in checked.values().items():
        setattr(test, name, value)
    session.add(test)
    session.flush()
    audit.record(session, actor, f"{action_prefix}.update", entity_type="lab_test", entity_id=test.id,
                 detail=f"{test.code}: " + "; ".join(changes))
    return test, changes


def add_lab_test(*, session: Session, actor: Actor, form: LabTestForm) -> int:
    """Add a test to the catalog. Returns its id."""
    require(session, actor, Permission.LAB_CATALOG_MANAGE, action="lab_test.create")
    test, _changes = write_test(session, actor, check_test(form))
    session.commit()
    return test.id


def update_lab_test(*, session: Session, actor: Actor, test_id: int, form: LabTestForm) -> bool:
    """Change a test. Results already entered keep the range they were flagged against.

    Returns:
        Whether anything changed.
    """
    require(session, actor, Permission.LAB_CATALOG_MANAGE, action="lab_test.update")
    test = _test(session, actor, test_id, "lab_test.update")
    _test_row, changes = write_test(session, actor, check_test(form), test)
    session.commit()
    return bool(changes)


def set_lab_test_price(*, session: Session, actor: Actor, test_id: int, price: str) -> None:
    """Change a test's price only (the price list's edit); later charges use it, earlier ones keep theirs."""
    require(session, actor, Permission.LAB_CATALOG_MANAGE, action="lab_test.price")
    test = _test(session, actor, test_id, "lab_test.price")
    write_test_price(session, actor, test, parse_money(price, _("price")))
    session.commit()


def write_test_price(session: Session, actor: Actor | None, test: LabTest, cents: int, *,
                     action: str = "lab_test.price") -> bool:
    """Set a test's price, audited old → new, in the caller's transaction. Returns whether it changed."""
    if cents == test.price_cents:
        return False
    audit.record(session, actor, action, entity_type="lab_test", entity_id=test.id,
                 detail=f"{test.code}: price {format_money(test.price_cents)} → {format_money(cents)}")
    test.price_cents = cents
    session.add(test)
    return True


def set_lab_test_active(*, session: Session, actor: Actor, test_id: int, active: bool) -> None:
    """Take a test off the order list (its past orders and results stay), or put it back."""
    action = "lab_test.reactivate" if active else "lab_test.deactivate"
    require(session, actor, Permission.LAB_CATALOG_MANAGE, action=action)
    test = _test(session, actor, test_id, action)
    if test.is_active == bool(active):
        raise Conflict((_("{name} is already active.") if active else _("{name} is already inactive."))
                       .format(name=test.name))
    test.is_active = bool(active)
    session.add(test)
    audit.record(session, actor, action, entity_type="lab_test", entity_id=test.id, detail=f"{test.code} {test.name}")
    session.commit()

"""The hospital's price list: every price it charges, and the prices accounts owns.

One list shows the consultation fee of each doctor, the lab catalog's tests, the formulary's
medicines and the other services charged by code (``service_price``: a dressing, an ECG, a
bed-day). Each price is edited by the role that owns it: accounts (``prices.manage``) the
services and the doctors' fees, here; the laboratory its tests (``laboratory.catalog``); the
pharmacy its medicines (``medicines.inventory``). A charge copies the price when it is made
(``invoice_line.unit_price_cents``), so a change applies to future charges only.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session

from hms_app.db.enums import Permission, Role
from hms_app.db.models import Department, DoctorProfile, LabTest, Medicine, ServicePrice, User
from hms_app.db.types import utcnow
from hms_app.services.core import audit
from hms_app.services.core.access import access_by_id, require
from hms_app.services.core.actor import Actor
from hms_app.services.core.errors import Conflict, NotFound, ValidationError
from hms_app.services.core.language import N_, _
from hms_app.services.core.numbers import format_money, parse_money
from hms_app.services.core.paging import Page, clamp_page, fetch_page, order_by
from hms_app.services.core.text import checked_line, one_line, reference_code, storable

KIND_LABELS = {"service": N_("Service"), "consultation": N_("Consultation"), "lab": N_("Lab test"),
               "medicine": N_("Medicine")}
"""Each kind of price by value, with its label (translated where shown)."""
OWNERS = {"service": Permission.PRICES_MANAGE, "consultation": Permission.PRICES_MANAGE,
          "lab": Permission.LAB_CATALOG_MANAGE, "medicine": Permission.INVENTORY_MANAGE}
"""Which permission edits each kind of price."""
PRICE_FILTERS = ("", *KIND_LABELS)


def price_input(cents: int) -> str:
    """An amount as a form takes it back (``12.50``), whatever the locale shows."""
    return f"{cents // 100}.{cents % 100:02d}"


@dataclass(frozen=True)
class PriceRow:
    kind: str
    kind_label: str
    item_id: int
    code: str
    name: str
    department: str
    price: str
    price_input: str
    is_active: bool
    status: str
    editable: bool
    """Whether the actor holds the permission that owns this price."""


def _price_lines() -> sa.Subquery:
    """Every price the hospital charges, one row each, as one query (sorted and paged in SQL)."""
    doctor_department = sa.orm.aliased(Department)
    services = (sa.select(sa.literal("service").label("kind"), ServicePrice.id.label("item_id"),
                          ServicePrice.code.label("code"), ServicePrice.name.label("name"),
                          sa.func.coalesce(Department.name, "").label("department"),
                          ServicePrice.price_cents.label("price_cents"), ServicePrice.is_active.label("is_active"))
                .outerjoin(Department, Department.id == ServicePrice.department_id))
    fees = (sa.select(sa.literal("consultation"), User.id, sa.literal(""), User.full_name,
                      sa.func.coalesce(doctor_department.name, ""), DoctorProfile.consultation_fee_cents,
                      User.is_active)
            .join(DoctorProfile, DoctorProfile.user_id == User.id)
            .outerjoin(doctor_department, doctor_department.id == DoctorProfile.department_id)
            .where(User.role == Role.DOCTOR.value))
    # The lab's and the pharmacy's prices name them as their department, in the reader's words (searched too).
    tests = sa.select(sa.literal("lab"), LabTest.id, LabTest.code, LabTest.name, sa.literal(_("Laboratory")),
                      LabTest.price_cents, LabTest.is_active)
    medicines = sa.select(sa.literal("medicine"), Medicine.id, sa.literal(""),
                          Medicine.name + " " + Medicine.strength + " " + Medicine.form, sa.literal(_("Pharmacy")),
                          Medicine.unit_price_cents, Medicine.is_active)
    return sa.union_all(services, fees, tests, medicines).subquery("prices")


def list_prices(*, session: Session, actor: Actor, search: str = "", show: str = "", sort: str = "name",
                descending: bool = False, page: int = 1, page_size: int = 20) -> Page[PriceRow]:
    """Every price the hospital charges, searched by code or name, filtered by kind, sorted and paged in SQL."""
    require(session, actor, Permission.PRICES_MANAGE, action="price.list")
    page, page_size = clamp_page(page, page_size)
    lines = _price_lines()
    query = sa.select(lines)
    term = storable(str(search or "").strip().lower()[:60], _("search"))
    if term:
        query = query.where(sa.or_(sa.func.lower(lines.c.name).contains(term, autoescape=True),
                                   sa.func.lower(lines.c.code).contains(term, autoescape=True),
                                   sa.func.lower(lines.c.department).contains(term, autoescape=True)))
    show = str(show or "")
    if show in KIND_LABELS:
        query = query.where(lines.c.kind == show)
    columns = {"name": lines.c.name, "kind": lines.c.kind, "code": lines.c.code, "department": lines.c.department,
               "price": lines.c.price_cents, "status": lines.c.is_active}
    query = query.order_by(order_by(columns, sort, descending, "name"), lines.c.kind, lines.c.item_id)
    total, rows = fetch_page(session, query, page=page, page_size=page_size)
    return Page([PriceRow(kind=r.kind, kind_label=_(KIND_LABELS[r.kind]), item_id=r.item_id, code=r.code,
                          name=r.name, department=r.department, price=format_money(r.price_cents),
                          price_input=price_input(r.price_cents), is_active=bool(r.is_active),
                          status=_("Active") if r.is_active else _("Inactive"), editable=actor.can(OWNERS[r.kind]))
                 for r in rows], total, page, page_size)


# --- the services charged by code -----------------------------------------------------------------


@dataclass(frozen=True)
class ServicePriceForm:
    code: str
    name: str
    price: str
    department_id: object = ""
    """A department's id, or "" for none."""


@dataclass(frozen=True)
class CheckedPrice:
    code: str
    name: str
    price_cents: int
    department_id: int | None

    def values(self) -> dict:
        return dict(self.__dict__)


def department_named(session: Session, name: object) -> int | None:
    """The id of the active department called ``name`` in any letter case; None for an empty name."""
    text = one_line(name, _("department"))
    if not text:
        return None
    found = session.execute(sa.select(Department.id).where(sa.func.lower(Department.name) == text.lower(),
                                                           Department.is_active)).scalar_one_or_none()
    if found is None:
        raise ValidationError(_("There is no active department named {name}; add it under Departments first.")
                              .format(name=repr(text[:80])))
    return found


def check_price(session: Session, form: ServicePriceForm) -> CheckedPrice:
    """Every rule of a service price, or ``ValidationError`` naming the field and value."""
    code = reference_code(form.code, _("code"))
    name = checked_line(form.name, _("service name"), limit=120)
    price = parse_money(form.price, _("price"))
    department_id = None
    text = str(form.department_id if form.department_id is not None else "").strip()
    if text:
        department = session.get(Department, int(text)) if text.isdigit() and len(text) < 10 else None
        if department is None or not department.is_active:
            raise ValidationError(_("Choose the department from the list, or none."))
        department_id = department.id
    return CheckedPrice(code, name, price, department_id)


def _department_name(session: Session, department_id: int | None) -> str:
    return session.get(Department, department_id).name if department_id else "none"


def write_service_price(session: Session, actor: Actor | None, checked: CheckedPrice,
                        price: ServicePrice | None = None, *, active: bool | None = None) -> tuple[ServicePrice, list[str]]:
    """Add or change a service price that passed ``check_price``, audited old → new, in the caller's
    transaction (the page and the CSV import write through here). Returns it and what changed."""
    taken = sa.select(ServicePrice.id).where(ServicePrice.code == checked.code)
    if price is not None:
        taken = taken.where(ServicePrice.id != price.id)
    if session.execute(taken).first():
        raise Conflict(_("A service with the code {code} is already on the price list.").format(code=checked.code))
    by = actor.user_id if isinstance(actor, Actor) else None
    if price is None:
        price = ServicePrice(**checked.values(), is_active=True if active is None else active, updated_by=by)
        session.add(price)
        session.flush()
        audit.record(session, actor, "service_price.create", entity_type="service_price", entity_id=price.id,
                     detail=f"{price.code} {price.name}: {format_money(price.price_cents)}")
        return price, ["created"]
    changes = []
    if price.code != checked.code:
        changes.append(f"code {price.code} → {checked.code}")
    if price.name != checked.name:
        changes.append(f"name {price.name} → {checked.name}")
    if price.price_cents != checked.price_cents:
        changes.append(f"price {format_money(price.price_cents)} → {format_money(checked.price_cents)}")
    if price.department_id != checked.department_id:
        changes.append(f"department {_department_name(session, price.department_id)} → "
                       f"{_department_name(session, checked.department_id)}")
    if active is not None and price.is_active != active:
        changes.append("reactivated" if active else "deactivated")
        price.is_active = active
    if changes:
        for name, value in checked.values().items():
            setattr(price, name, value)
        price.updated_at, price.updated_by = utcnow(), by
        session.add(price)
        audit.record(session, actor, "service_price.update", entity_type="service_price", entity_id=price.id,
                     detail=f"{price.code}: " + "; ".join(changes))
    return price, changes


def _service_price(session: Session, actor: Actor, price_id: object, action: str) -> ServicePrice:
    return access_by_id(session, actor, ServicePrice, price_id, action=action, lock=True,
                        missing=N_("That service is not on the price list."), entity_type="service_price")


def add_service_price(*, session: Session, actor: Actor, form: ServicePriceForm) -> int:
    """Put a service charged by code on the price list. Returns its id."""
    require(session, actor, Permission.PRICES_MANAGE, action="service_price.create")
    price, _changes = write_service_price(session, actor, check_price(session, form))
    session.commit()
    return price.id


def update_service_price(*, session: Session, actor: Actor, price_id: int, form: ServicePriceForm) -> bool:
    """Change a service's code, name, price or department; charges already made keep their price."""
    require(session, actor, Permission.PRICES_MANAGE, action="service_price.update")
    price = _service_price(session, actor, price_id, "service_price.update")
    _price_row, changes = write_service_price(session, actor, check_price(session, form), price)
    session.commit()
    return bool(changes)


def set_service_price(*, session: Session, actor: Actor, price_id: int, price: str) -> None:
    """Change a service's price only (the price list's edit)."""
    require(session, actor, Permission.PRICES_MANAGE, action="service_price.update")
    row = _service_price(session, actor, price_id, "service_price.update")
    checked = CheckedPrice(row.code, row.name, parse_money(price, _("price")), row.department_id)
    write_service_price(session, actor, checked, row)
    session.commit()


def set_service_price_active(*, session: Session, actor: Actor, price_id: int, active: bool) -> None:
    """Stop charging a service (its past charges stay), or start again."""
    action = "service_price.reactivate" if active else "service_price.deactivate"
    require(session, actor, Permission.PRICES_MANAGE, action=action)
    row = _service_price(session, actor, price_id, action)
    if row.is_active == bool(active):
        raise Conflict((_("{name} is already active.") if active else _("{name} is already inactive."))
                       .format(name=row.name))
    row.is_active = bool(active)
    row.updated_at, row.updated_by = utcnow(), actor.user_id
    session.add(row)
    audit.record(session, actor, action, entity_type="service_price", entity_id=row.id, detail=f"{row.code} {row.name}")
    session.commit()


def service_price_cents(session: Session, code: str) -> int:
    """The current price of an active service, by code, for the service that charges it (a bed-day)."""
    cents = session.execute(sa.select(ServicePrice.price_cents).where(
        ServicePrice.code == code, ServicePrice.is_active)).scalar_one_or_none()
    if cents is None:
        raise NotFound(_("No active price for the service {code}; add it on the price list.").format(code=code))
    return cents


# --- doctors' consultation fees --------------------------------------------------------------


def set_consultation_fee(*, session: Session, actor: Actor, doctor_id: int, price: str) -> None:
    """Change a doctor's consultation fee; consultations already charged keep theirs."""
    require(session, actor, Permission.PRICES_MANAGE, action="doctor.fee")
    profile = access_by_id(session, actor, DoctorProfile, doctor_id, action="doctor.fee", lock=True,
                           missing=N_("That doctor does not exist."), entity_type="doctor_profile")
    write_fee(session, actor, profile, parse_money(price, _("consultation fee")))
    session.commit()


def write_fee(session: Session, actor: Actor | None, profile: DoctorProfile, cents: int, *,
              action: str = "doctor.fee") -> bool:
    """Set a doctor's consultation fee, audited old → new, in the caller's transaction. Returns whether it changed."""
    if cents == profile.consultation_fee_cents:
        return False
    name = session.get(User, profile.user_id).full_name
    audit.record(session, actor, action, entity_type="doctor_profile", entity_id=profile.user_id,
                 detail=f"{name}: consultation fee {format_money(profile.consultation_fee_cents)} → "  # i18n: not shown
                        f"{format_money(cents)}")
    profile.consultation_fee_cents = cents
    session.add(profile)
    return True

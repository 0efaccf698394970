"""The lab: its worklist, the order's progress, results with computed flags, report files,
and what patients and ordering doctors see of it.

An order moves requested → collected → in progress → completed, or is cancelled with a
reason from any open state; only lab staff (``Permission.LAB_WORK``) move it. Lab staff see
what they need to run a test (patient identity, test, priority, the doctor's note for the
lab) and never the encounter's notes or diagnoses: no function here reads them.

Flags are computed, never typed. For a numeric test the reference range is the catalog's
band for the patient's sex and age on the day of the result (``range_for``); the boundary
rule is in ``compute_flag``. A critical value notifies the ordering doctor separately and
stays first in the doctor's results until that doctor acknowledges it (audited).

Patients see their own completed results and download their files once released to them (by
the test's ``release_rule``: at entry, or when the ordering doctor marks it reviewed; until then
the patient sees only that it awaits review); doctors see what they
ordered, and a doctor who may open the patient's chart sees that patient's results. Every
read of a result and every download is audited.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Session

from hms_app import settings
from hms_app.db.enums import LabOrderStatus, LabPriority, LabReleaseRule, Permission, Role
from hms_app.db.models import LabOrder, LabReportFile, LabResult, LabTest, PatientProfile, User
from hms_app.db.types import utcnow
from hms_app.services.accounting import billing
from hms_app.services.care.clinical import age_in_years, chart_patient
from hms_app.services.core import audit, events, files
from hms_app.services.core.access import access_by_id, require
from hms_app.services.core.actor import Actor
from hms_app.services.core.errors import Conflict, NotFound, ValidationError
from hms_app.services.core.files import DownloadedFile
from hms_app.services.core.ids import parse_id
from hms_app.services.core.language import N_, _, ngettext
from hms_app.services.core.localtime import day_span_utc, format_date, format_local, local_date
from hms_app.services.core.paging import Page, clamp_page
from hms_app.services.core.pdf import closing_note, field, letterhead, phrase, sex_label
from hms_app.services.core.text import one_line, storable
from hms_app.services.messaging import mail, notifications
from hms_app.services.reference.lab_catalog import range_for, range_from_bands

OPEN_STATUSES = [LabOrderStatus.REQUESTED.value, LabOrderStatus.COLLECTED.value, LabOrderStatus.IN_PROGRESS.value]
MAX_TEXT_RESULT = 2000
MAX_COMMENT = 1000
MAX_VALUE = 1e9
MAX_REVIEW_NOTE = 1000
AWAITING_REVIEW = N_("Awaiting review by your doctor")
# The users a query joins in their roles, aliased once: building an alias costs more CPU
# than running a short query (about 1.4 ms per statement), and every list page joins them.
_PATIENT = sa.orm.aliased(User, name="patient")
_DOCTOR = sa.orm.aliased(User, name="doctor")
_VERIFIER = sa.orm.aliased(User, name="verifier")
PATIENT_RESULTS_LINK = "/patient/results"
DOCTOR_RESULTS_LINK = "/doctor/results"


class ResultFlag(StrEnum):
    """The computed flag of a result; a text result (or a number with no range) has none ("")."""

    CRITICAL_LOW = "critical_low"
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    CRITICAL_HIGH = "critical_high"

    @property
    def label(self) -> str:
        return _(FLAG_LABELS[self])


FLAG_LABELS = {
    ResultFlag.CRITICAL_LOW: N_("Critical low"),
    ResultFlag.LOW: N_("Low"),
    ResultFlag.NORMAL: N_("Normal"),
    ResultFlag.HIGH: N_("High"),
    ResultFlag.CRITICAL_HIGH: N_("Critical high"),
}
CRITICAL_FLAGS = (ResultFlag.CRITICAL_LOW.value, ResultFlag.CRITICAL_HIGH.value)


def flag_label(flag: str) -> str:
    return ResultFlag(flag).label if flag else ""


# --- flags ---------------------------------------------------------------------------------------


def compute_flag(value: float, reference: tuple[float, float] | None, critical_low: float | None = None,
                 critical_high: float | None = None) -> str:
    """The flag of a numeric result.

    The boundary rule: the reference limits are inside the range (``low <= value <= high``
    is normal) and the critical limits are not critical themselves (only ``value <
    critical_low`` is critical low, only ``value > critical_high`` critical high). So with
    haemoglobin 130-180 g/L and critical limits 70 and 200: 129.9 is low, 130 and 180 normal,
    180.1 high, 70 low, 69.9 critical low, 200 high, 200.1 critical high. Critical limits
    apply even where no reference range does; with neither, the flag is "".
    """
    if critical_low is not None and value < critical_low:
        return ResultFlag.CRITICAL_LOW.value
    if critical_high is not None and value > critical_high:
        return ResultFlag.CRITICAL_HIGH.value
    if reference is None:
        return ""
    low, high = reference
    if value < low:
        return ResultFlag.LOW.value
    if value > high:
        return ResultFlag.HIGH.value
    return ResultFlag.NORMAL.value


def reference_range(test: LabTest, sex: str, birth_date: date | None, on: date) -> tuple[float, float] | None:
    """The range that applies to a patient of ``sex`` born on ``birth_date``, on the day ``on``.

    Without a birth date the range spans the bands of every age (as ``range_from_bands``
    spans both sexes for an unknown sex), so that no result is flagged on a guessed age.
    """
    if not test.numeric:
        return None
    bands = json.loads(test.ranges or "[]")
    if birth_date is None:
        found = [r for age in sorted({b["age_min"] for b in bands}) if (r := range_from_bands(bands, sex, age))]
        return (min(r[0] for r in found), max(r[1] for r in found)) if found else None
    age = age_in_years(birth_date, on)
    if age is None or age < 0:
        return None
    return range_for({"numeric": True, "ranges": bands}, str(sex), age)


_NUMBER = re.compile(r"\+?(\d+(\.\d*)?|\.\d+)")


def parse_result_value(value: object) -> float:
    """A numeric result as typed: digits with an optional decimal point, finite, not negative.

    Commas are refused rather than guessed at: "1,200" could be twelve hundred or 1.2.
    """
    if isinstance(value, bool):
        raise ValidationError(_("This test takes a number, like 5.4."))
    if isinstance(value, int | float):
        number = float(value)
    else:
        text = str(value if value is not None else "").strip()
        if not text:
            raise ValidationError(_("Enter the result value."))
        if "," in text:
            raise ValidationError(
                _("Write the number with a decimal point and no thousands separator, like 1200 or 5.4."))
        if text.startswith("-"):
            raise ValidationError(_("A result cannot be negative."))
        if len(text) > 20 or not _NUMBER.fullmatch(text):
            raise ValidationError(_("This test takes a number, like 5.4 (digits and a decimal point only)."))
        number = float(text)
    if not math.isfinite(number):
        raise ValidationError(_("The result must be a finite number."))
    if number < 0:
        raise ValidationError(_("A result cannot be negative."))
    if number >= MAX_VALUE:
        raise ValidationError(_("That number is too large to be a result; check the value."))
    return number


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.10g}"


def range_text(low: float | None, high: float | None) -> str:
    """The range as printed: "3.5 - 5.3", or "up to 5" where the catalog sets no lower limit."""
    if low is None or high is None:
        return ""
    return _("up to {high}").format(high=_number(high)) if low == 0 else f"{_number(low)} - {_number(high)}"


def critical_limits_text(test: LabTest) -> str:
    """The test's critical limits as the lab reads them: "below 70, above 200 g/L"."""
    parts = [_("below {low}").format(low=_number(test.critical_low)) if test.critical_low is not None else "",
             _("above {high}").format(high=_number(test.critical_high)) if test.critical_high is not None else ""]
    text = ", ".join(p for p in parts if p)
    return f"{text} {test.unit}".strip() if text else ""


def _patient_range(test: LabTest, profile: PatientProfile, on: date) -> str:
    reference = reference_range(test, str(profile.sex), profile.birth_date, on)
    return f"{range_text(*reference)} {test.unit}".strip() if reference else ""


# --- the worklist --------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorklistRow:
    """What lab staff need to run a test: no encounter notes, no diagnoses."""

    id: int
    patient: str
    mrn: str
    birth_date: str
    sex: str
    test: str
    specimen: str
    priority: str
    status: str
    ordered_by: str
    waiting: str
    note: str
    status_value: str = ""
    """The raw status (requested, collected, in_progress...), for choosing the buttons."""
    test_id: int = 0
    numeric: bool = True
    """Whether the result is a number (with ``unit``) or text."""
    unit: str = ""
    ordered_at: str = ""
    has_report: bool = False
    reference_range: str = ""
    """This patient's range (by sex and age today) as printed, before a value is typed; "" for none."""
    critical_limits: str = ""
    """The test's critical limits in words ("below 70, above 200"); "" for none."""


@dataclass(frozen=True)
class LabTestChoice:
    id: int
    label: str


def duration_text(minutes: int) -> str:
    """A span of minutes as the lab reads it: "42 min", or "2 h 5 min" from two hours on."""
    if minutes < 120:
        return _("{minutes} min").format(minutes=minutes)
    return _("{hours} h {minutes} min").format(hours=minutes // 60, minutes=minutes % 60)


ORDER_STATUS_LABELS = {
    LabOrderStatus.REQUESTED: N_("requested"),
    LabOrderStatus.COLLECTED: N_("collected"),
    LabOrderStatus.IN_PROGRESS: N_("in progress"),
    LabOrderStatus.COMPLETED: N_("completed"),
    LabOrderStatus.CANCELLED: N_("cancelled"),
}
"""An order's status as the worklist writes it."""


def _choice(value: object, allowed: type[StrEnum], refusal: str) -> str:
    """``value`` if it is one of ``allowed`` (or empty); else ``refusal`` (an ``N_`` text) is raised."""
    text = str(value or "").strip().lower()
    if text and text not in {v.value for v in allowed}:
        raise ValidationError(_(refusal))
    return text


class WorklistShow(StrEnum):
    """Which orders the worklist lists."""

    OPEN = "open"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


MAX_RANGE_DAYS = 366
DEFAULT_RANGE_DAYS = 7


def _day(value: object, refusal: str) -> date | None:
    text = str(value or "").strip()
    if not text:
        return None
    try:
        if len(text) != 10:
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise ValidationError(_(refusal)) from None


def closed_range(date_from: object, date_to: object) -> tuple[date, date]:
    """The days (local, both included) over which completed or cancelled orders are listed:
    as given, or the last week up to today; at most a year, and not backwards."""
    last = _day(date_to, N_("Enter the to date as a calendar date, like 2026-12-07.")) or local_date(utcnow())
    first = _day(date_from, N_("Enter the from date as a calendar date, like 2026-12-07.")) or \
        last - timedelta(days=DEFAULT_RANGE_DAYS - 1)
    if first > last:
        raise ValidationError(_("The 'from' date must not be after the 'to' date."))
    if (last - first).days >= MAX_RANGE_DAYS:
        raise ValidationError(ngettext("Choose a range of at most {n} day.", "Choose a range of at most {n} days.",
                                       MAX_RANGE_DAYS).format(n=MAX_RANGE_DAYS))
    return first, last


def worklist(*, session: Session, actor: Actor, status: str = "", priority: str = "", test_id: object = None,
             show: str = WorklistShow.OPEN.value, date_from: object = "", date_to: object = "",
             page: int = 1, page_size: int = 25) -> Page[WorklistRow]:
    """Lab orders: the open ones stat first, then urgent, then routine, oldest first within each;
    or the completed or cancelled ones of a date range, newest first.

    Args:
        status: one ``LabOrderStatus`` value; empty means every open order (requested,
            collected, in progress). Only for the open orders.
        priority: one ``LabPriority`` value, or empty for all.
        test_id: a catalog test's id, or empty for all.
        show: ``open`` (the default), ``completed`` or ``cancelled``.
        date_from, date_to: for completed and cancelled orders, the local days (ISO dates,
            both included) on which they were resulted or cancelled; the last week by default.
    """
    require(session, actor, Permission.LAB_WORK, action="lab.worklist")
    page, page_size = clamp_page(page, page_size)
    show = _choice(show, WorklistShow, N_("Choose a list to show from the list.")) or WorklistShow.OPEN.value
    status = _choice(status, LabOrderStatus, N_("Choose a status from the list.")) if show == WorklistShow.OPEN else ""
    priority = _choice(priority, LabPriority, N_("Choose a priority from the list."))
    wanted_test = None
    if test_id not in (None, "", 0):
        wanted_test = parse_id(test_id)
        if wanted_test is None:
            raise ValidationError(_("Choose a test from the list."))
    patient, doctor = _PATIENT, _DOCTOR
    urgency = sa.case({LabPriority.STAT.value: 0, LabPriority.URGENT.value: 1}, value=LabOrder.priority, else_=2)
    if show == WorklistShow.OPEN:
        wanted = [LabOrder.status == status if status else LabOrder.status.in_(OPEN_STATUSES)]
        order = (urgency, LabOrder.ordered_at, LabOrder.id)
    else:
        first, last = closed_range(date_from, date_to)
        start, end = day_span_utc(first)[0], day_span_utc(last)[1]
        if show == WorklistShow.CANCELLED:
            closed_at = LabOrder.cancelled_at
        else:
            closed_at = (sa.select(LabResult.resulted_at).where(LabResult.order_id == LabOrder.id)
                         .correlate(LabOrder).scalar_subquery())
        wanted = [LabOrder.status == show, closed_at >= start, closed_at < end]
        order = (closed_at.desc(), LabOrder.id.desc())
    if priority:
        wanted.append(LabOrder.priority == priority)
    if wanted_test is not None:
        wanted.append(LabOrder.test_id == wanted_test)
    # The filters are all on the order, and every order has its test, patient, profile and
    # doctor (foreign keys; an order needs a chart): the count and the page's ids come from the
    # orders alone, and only the page's rows are joined to the rest.
    total = session.execute(sa.select(sa.func.count()).select_from(LabOrder).where(*wanted)).scalar_one()
    ids = session.execute(sa.select(LabOrder.id).where(*wanted).order_by(*order)
                          .offset((page - 1) * page_size).limit(page_size)).scalars().all()
    now = utcnow()
    today = local_date(now)
    rows = session.execute(
        sa.select(LabOrder, LabTest, patient.full_name, PatientProfile, doctor.full_name,
                  LabReportFile.id.is_not(None).label("has_report"))
        .join(LabTest, LabTest.id == LabOrder.test_id)
        .join(patient, patient.id == LabOrder.patient_id)
        .join(PatientProfile, PatientProfile.user_id == LabOrder.patient_id)
        .join(doctor, doctor.id == LabOrder.doctor_id)
        .outerjoin(LabReportFile, LabReportFile.order_id == LabOrder.id)
        .where(LabOrder.id.in_(ids)).order_by(*order)
    ).all() if ids else []
    return Page(
        [WorklistRow(o.id, name, profile.mrn, format_date(profile.birth_date),
                     str(profile.sex), f"{t.name} ({t.code})", t.specimen, str(o.priority),
                     _(ORDER_STATUS_LABELS[LabOrderStatus(str(o.status))]), doctor_name,
                     duration_text(int((now - o.ordered_at).total_seconds() // 60)) if show == WorklistShow.OPEN else "",
                     o.note,
                     status_value=str(o.status), test_id=t.id, numeric=t.numeric, unit=t.unit,
                     ordered_at=format_local(o.ordered_at), has_report=bool(has_report),
                     reference_range=_patient_range(t, profile, today), critical_limits=critical_limits_text(t))
         for o, t, name, profile, doctor_name, has_report in rows],
        total, page, page_size,
    )


def worklist_tests(*, session: Session, actor: Actor) -> list[LabTestChoice]:
    """The catalog's tests, for the worklist's test filter."""
    require(session, actor, Permission.LAB_WORK, action="lab.worklist")
    return [LabTestChoice(t.id, f"{t.name} ({t.code})")
            for t in session.execute(sa.select(LabTest).order_by(LabTest.name)).scalars()]


# --- moving an order -----------------------------------------------------------------------------


_MOVES: dict[str, tuple[tuple[str, ...], str]] = {
    "collect": ((LabOrderStatus.REQUESTED.value,), LabOrderStatus.COLLECTED.value),
    "start": ((LabOrderStatus.COLLECTED.value,), LabOrderStatus.IN_PROGRESS.value),
    "result": ((LabOrderStatus.IN_PROGRESS.value,), LabOrderStatus.COMPLETED.value),
    "cancel": (tuple(OPEN_STATUSES), LabOrderStatus.CANCELLED.value),
}


def refusal_message(move: str, status: str) -> str:
    """Why ``move`` (collect, start, result, cancel) cannot happen to an order in ``status``."""
    status = str(status)
    if status == LabOrderStatus.CANCELLED:
        return _("This order is already cancelled.") if move == "cancel" else \
            _("This order was cancelled; it can no longer change.")
    if status == LabOrderStatus.COMPLETED:
        return _("A completed order cannot be cancelled.") if move == "cancel" else \
            _("This order is completed; its result is already entered.")
    return _({
        ("collect", LabOrderStatus.COLLECTED): N_("The sample for this order is already collected."),
        ("collect", LabOrderStatus.IN_PROGRESS): N_("This test is already in progress; its sample was collected."),
        ("start", LabOrderStatus.REQUESTED): N_("Collect the sample before starting the test."),
        ("start", LabOrderStatus.IN_PROGRESS): N_("This test is already in progress."),
        ("result", LabOrderStatus.REQUESTED): N_("Collect the sample and start the test before entering a result."),
        ("result", LabOrderStatus.COLLECTED): N_("Start the test before entering its result."),
    }.get((move, status), N_("This order cannot be changed that way now.")))


def _order_for_lab(session: Session, actor: Actor, order_id: object, action: str) -> LabOrder:
    require(session, actor, Permission.LAB_WORK, action=action)
    return access_by_id(session, actor, LabOrder, order_id, action=action, missing=N_("That lab order does not exist."),
                        entity_type="lab_order")


def _move(session: Session, order: LabOrder, move: str, **values: object) -> None:
    """Change the order's status only if it is still in a state the move starts from.

    The conditional UPDATE makes two lab staff acting at once safe: one of them wins and
    the other is told what happened instead of overwriting it.
    """
    allowed, target = _MOVES[move]
    if str(order.status) not in allowed:
        raise Conflict(refusal_message(move, order.status))
    now = utcnow()
    moved = session.execute(
        sa.update(LabOrder).where(LabOrder.id == order.id, LabOrder.status.in_(allowed))
        .values(status=target, updated_at=now, **values).execution_options(synchronize_session=False)
    ).rowcount
    if moved != 1:
        session.rollback()
        session.refresh(order)
        raise Conflict(refusal_message(move, order.status))
    session.expire(order)


def _publish(session: Session, order: LabOrder) -> None:
    events.publish(session, "lab", roles=[Role.LAB.value], user_ids=[order.patient_id, order.doctor_id])


def collect_sample(*, session: Session, actor: Actor, order_id: int) -> None:
    """Record that the specimen was taken: requested → collected."""
    order = _order_for_lab(session, actor, order_id, "lab_order.collect")
    _move(session, order, "collect", collected_at=utcnow())
    audit.record(session, actor, "lab_order.collect", entity_type="lab_order", entity_id=order.id,
                 patient_id=order.patient_id)
    _publish(session, order)
    session.commit()


def start_test(*, session: Session, actor: Actor, order_id: int) -> None:
    """Put the collected sample on the analyser: collected → in progress."""
    order = _order_for_lab(session, actor, order_id, "lab_order.start")
    _move(session, order, "start", started_at=utcnow())
    audit.record(session, actor, "lab_order.start", entity_type="lab_order", entity_id=order.id,
                 patient_id=order.patient_id)
    _publish(session, order)
    session.commit()


def cancel_order(*, session: Session, actor: Actor, order_id: int, reason: str) -> None:
    """Cancel an open order with a reason (haemolysed sample, duplicate order...); the
    ordering doctor is notified."""
    order = _order_for_lab(session, actor, order_id, "lab_order.cancel")
    reason = one_line(reason, _("reason"))
    if len(reason) < 3:
        raise ValidationError(_("Say why the order is cancelled (for example: sample haemolysed)."))
    if len(reason) > 300:
        raise ValidationError(_("Keep the reason under 300 characters."))
    _move(session, order, "cancel", cancelled_at=utcnow(), cancel_reason=reason)
    test = session.get(LabTest, order.test_id)
    patient = session.get(User, order.patient_id)
    audit.record(session, actor, "lab_order.cancel", entity_type="lab_order", entity_id=order.id,
                 patient_id=order.patient_id, detail=reason)
    notifications.notify(session, order.doctor_id, lambda: _("Lab order cancelled"),
                         lambda: _("{test} for {patient}: {reason}").format(test=test.name, patient=patient.full_name,
                                                                            reason=reason),
                         DOCTOR_RESULTS_LINK)
    _publish(session, order)
    session.commit()


# --- results -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EnteredResult:
    result_id: int
    flag: str
    flag_label: str
    is_critical: bool
    reference_range: str
    """As printed ("3.5 - 5.3"); empty for a text result or where no range applies."""
    released: bool = True
    """False: held until the ordering doctor reviews it."""


def _text(value: object, label: str, limit: int, *, required: bool) -> str:
    text = storable(str(value if value is not None else "").strip(), label)
    if required and not text:
        raise ValidationError(_("Enter the {label}.").format(label=label))
    if len(text) > limit:
        raise ValidationError(ngettext("The {label} must be at most {limit} character.",
                                       "The {label} must be at most {limit} characters.", limit)
                              .format(label=label, limit=limit))
    return text


def enter_result(*, session: Session, actor: Actor, order_id: int, value: object, comment: str = "") -> EnteredResult:
    """Enter the result of an order in progress, which completes it.

    A numeric test takes a number (see ``parse_result_value``) and gets its flag from the
    catalog's range for the patient's sex and age on the day of the result; a text test
    takes text and has no flag. The patient and the ordering doctor are notified; a critical
    value sends the doctor a separate, urgent notification.
    """
    order = _order_for_lab(session, actor, order_id, "lab_result.enter")
    if str(order.status) != LabOrderStatus.IN_PROGRESS:
        raise Conflict(refusal_message("result", order.status))
    test = session.get(LabTest, order.test_id)
    profile = session.get(PatientProfile, order.patient_id)
    comment = _text(comment, _("comment"), MAX_COMMENT, required=False)
    now = utcnow()
    if test.numeric:
        number = parse_result_value(value)
        reference = reference_range(test, profile.sex if profile else "unknown",
                                    profile.birth_date if profile else None, local_date(now))
        flag = compute_flag(number, reference, test.critical_low, test.critical_high)
        result = LabResult(order_id=order.id, value_numeric=number, unit=test.unit, flag=flag,
                           range_low=reference[0] if reference else None, range_high=reference[1] if reference else None)
    else:
        result = LabResult(order_id=order.id, value_text=_text(value, _("result"), MAX_TEXT_RESULT, required=True))
    result.comment, result.verified_by, result.resulted_at = comment, actor.user_id, now
    result.turnaround_seconds = max(0, int((now - order.ordered_at).total_seconds()))
    result.released_at = now if releases_at_once(test.release_rule, result.flag) else None
    _move(session, order, "result")
    session.add(result)
    try:
        session.flush()
    except sa.exc.IntegrityError:
        session.rollback()
        raise Conflict(refusal_message("result", LabOrderStatus.COMPLETED)) from None
    billing.charge_lab_test(session, order)
    audit.record(session, actor, "lab_result.enter", entity_type="lab_result", entity_id=result.id,
                 patient_id=order.patient_id, detail=f"order {order.id}, {test.code}, flag {result.flag or 'none'}")
    patient = session.get(User, order.patient_id)
    if result.released_at is not None:
        _tell_patient_ready(session, order, test)
        notifications.notify(session, order.doctor_id, lambda: _("Lab result ready"),
                             lambda: _("{test} for {patient}.").format(test=test.name, patient=patient.full_name),
                             DOCTOR_RESULTS_LINK)
    else:
        notifications.notify(session, order.doctor_id, lambda: _("Lab result to review"),
                             lambda: _("{test} for {patient}: the patient sees it once you mark it reviewed.")
                             .format(test=test.name, patient=patient.full_name),
                             DOCTOR_RESULTS_LINK)
    critical = result.flag in CRITICAL_FLAGS
    if critical:
        alert = (N_("{test} for {patient} ({mrn}) is critical low. Review it and acknowledge it now.")
                 if result.flag == ResultFlag.CRITICAL_LOW else
                 N_("{test} for {patient} ({mrn}) is critical high. Review it and acknowledge it now."))
        notifications.notify(session, order.doctor_id, lambda: _("URGENT: critical lab result"),
                             lambda: _(alert).format(test=test.name, patient=patient.full_name,
                                                     mrn=profile.mrn if profile else ""),
                             DOCTOR_RESULTS_LINK)
    _publish(session, order)
    session.commit()
    return EnteredResult(result.id, result.flag, flag_label(result.flag), critical,
                         range_text(result.range_low, result.range_high), result.released_at is not None)


def releases_at_once(rule: str, flag: str) -> bool:
    """Whether a result with ``flag`` reaches the patient as soon as the lab enters it.

    Under the default rule (normal at once) only a result flagged normal does: an abnormal or
    critical number, a number with no reference range to judge it by, and a text result (which
    has no flag, so nothing says it is normal) wait for the ordering doctor's review.
    """
    rule = str(rule)
    if rule == LabReleaseRule.AT_ONCE:
        return True
    if rule == LabReleaseRule.AFTER_REVIEW:
        return False
    return flag == ResultFlag.NORMAL


def _tell_patient_ready(session: Session, order: LabOrder, test: LabTest) -> None:
    """Tell the patient a result is ready: only ever once it is released to them."""
    notifications.notify(session, order.patient_id, lambda: _("Your results are ready"),
                         lambda: _("{test}: open Lab results to see them.").format(test=test.name),
                         PATIENT_RESULTS_LINK)
    mail.queue_email(session, user_id=order.patient_id, kind="lab.results_ready",
                     event_key=f"lab.results_ready:{order.id}")


def review_result(*, session: Session, actor: Actor, result_id: int, note: str = "") -> None:
    """The ordering doctor marks a held result reviewed, with an optional note to the patient,
    which releases it to the patient (audited, published, the patient notified).

    Only the ordering doctor may review: for anyone else the result answers like a missing one.
    A result is reviewed once; a second review (or a review of a result released at once) is
    refused and changes nothing.
    """
    action = "lab_result.review"
    require(session, actor, Permission.CLINICAL_READ, action=action)
    result = access_by_id(session, actor, LabResult, result_id, action=action,
                          missing=N_("That result does not exist."), entity_type="lab_result",
                          allowed=lambda r: session.get(LabOrder, r.order_id).doctor_id == actor.user_id)
    note = _text(note, _("note to the patient"), MAX_REVIEW_NOTE, required=False)
    order = session.get(LabOrder, result.order_id)
    if result.reviewed_at is not None:
        raise Conflict(_("You reviewed this result at {when}; the patient can see it.")
                       .format(when=format_local(result.reviewed_at)))
    if result.released_at is not None:
        raise Conflict(_("This result was released to the patient when it was entered; it needs no review."))
    now = utcnow()
    reviewed = session.execute(
        sa.update(LabResult).where(LabResult.id == result.id, LabResult.reviewed_at.is_(None),
                                   LabResult.released_at.is_(None))
        .values(reviewed_at=now, reviewed_by=actor.user_id, released_at=now, review_note=note or None)
        .execution_options(synchronize_session=False)
    ).rowcount
    if reviewed != 1:
        session.rollback()
        raise Conflict(_("This result was reviewed a moment ago; the patient can see it."))
    test = session.get(LabTest, order.test_id)
    audit.record(session, actor, action, entity_type="lab_result", entity_id=result.id, patient_id=order.patient_id,
                 detail=f"order {order.id}, released{', with a note' if note else ''}")
    _tell_patient_ready(session, order, test)
    events.publish(session, "lab", user_ids=[order.patient_id, actor.user_id])
    session.commit()


def results_to_review_count(*, session: Session, actor: Actor) -> int:
    """How many results the doctor ordered still wait for their review (for the desk)."""
    require(session, actor, Permission.CLINICAL_READ, action="lab_result.count")
    return session.execute(
        sa.select(sa.func.count()).select_from(LabResult).join(LabOrder, LabOrder.id == LabResult.order_id)
        .where(LabOrder.doctor_id == actor.user_id, LabResult.released_at.is_(None))
    ).scalar_one()


def acknowledge_critical(*, session: Session, actor: Actor, result_id: int) -> None:
    """The ordering doctor confirms they have seen a critical result (audited)."""
    action = "lab_result.acknowledge"
    require(session, actor, Permission.CLINICAL_READ, action=action)
    result = access_by_id(session, actor, LabResult, result_id, action=action,
                          missing=N_("That result does not exist."), entity_type="lab_result",
                          allowed=lambda r: session.get(LabOrder, r.order_id).doctor_id == actor.user_id)
    order = session.get(LabOrder, result.order_id)
    if result.flag not in CRITICAL_FLAGS:
        raise Conflict(_("Only a critical result needs acknowledging."))
    if result.critical_acknowledged_at is not None:
        raise Conflict(_("You acknowledged this result at {when}.")
                       .format(when=format_local(result.critical_acknowledged_at)))
    acknowledged = session.execute(
        sa.update(LabResult).where(LabResult.id == result.id, LabResult.critical_acknowledged_at.is_(None))
        .values(critical_acknowledged_at=utcnow(), critical_acknowledged_by=actor.user_id)
        .execution_options(synchronize_session=False)
    ).rowcount
    if acknowledged != 1:
        session.rollback()
        raise Conflict(_("This result was acknowledged a moment ago."))
    audit.record(session, actor, action, entity_type="lab_result", entity_id=result.id,
                 patient_id=order.patient_id, detail=f"order {order.id}, {result.flag}")
    events.publish(session, "lab", user_ids=[actor.user_id])
    session.commit()


# --- report files --------------------------------------------------------------------------------


def upload_report_file(*, session: Session, actor: Actor, order_id: int, file_name: str, data: bytes) -> int:
    """Attach the analyser's or the lab's report (PDF, PNG or JPEG, checked by content, at most
    10 MB, stored encrypted) to a collected, running or completed order; a new upload
    replaces the old file. Returns the file record's id."""
    order = _order_for_lab(session, actor, order_id, "lab_report.upload")
    if str(order.status) == LabOrderStatus.CANCELLED:
        raise Conflict(refusal_message("upload", order.status))
    if str(order.status) == LabOrderStatus.REQUESTED:
        raise Conflict(_("Collect the sample before attaching a report."))
    checked = files.check_upload(file_name, data)
    replaced = ""
    with files.stored_encrypted(checked.data) as storage_name:
        row = session.execute(sa.select(LabReportFile).where(LabReportFile.order_id == order.id)).scalar_one_or_none()
        if row is None:
            row = LabReportFile(order_id=order.id, storage_name=storage_name, file_name=checked.file_name,
                                content_type=checked.content_type, size_bytes=len(checked.data),
                                uploaded_by=actor.user_id)
        else:
            replaced = row.storage_name
            row.storage_name, row.file_name, row.content_type = storage_name, checked.file_name, checked.content_type
            row.size_bytes, row.uploaded_by, row.uploaded_at = len(checked.data), actor.user_id, utcnow()
        session.add(row)
        session.flush()
        audit.record(session, actor, "lab_report.upload", entity_type="lab_order", entity_id=order.id,
                     patient_id=order.patient_id,
                     detail=f"{checked.content_type}, {len(checked.data)} bytes{', replaced' if replaced else ''}")
        _publish(session, order)
        session.commit()
    if replaced:
        files.remove_stored(replaced)
    return row.id


# --- what patients and doctors see ---------------------------------------------------------------


@dataclass(frozen=True)
class ResultView:
    """A completed order's result as the patient or a doctor sees it."""

    order_id: int
    result_id: int
    patient_id: int
    patient: str
    mrn: str
    test: str
    test_code: str
    specimen: str
    priority: str
    ordered_by: str
    value: str
    """The number (as entered, without trailing zeros) or the text result."""
    unit: str
    reference_range: str
    flag: str
    flag_label: str
    is_critical: bool
    critical_acknowledged: bool
    acknowledged_at: str
    comment: str
    verified_by: str
    ordered_at: str
    resulted_at: str
    turnaround_minutes: int
    has_report_file: bool
    report_file_name: str
    needs_acknowledgement: bool
    """Critical and not yet acknowledged by the ordering doctor: show it first, loudly."""
    held: bool = False
    """Not yet released to the patient: waiting for the ordering doctor's review."""
    status: str = ""
    """What the row's state says in words: "Awaiting review by your doctor", "Reviewed"..."""
    review_note: str = ""
    """The reviewing doctor's note to the patient."""
    reviewed_at: str = ""
    can_review: bool = False
    """Held, and the viewer is the ordering doctor: the row offers "Mark reviewed"."""
    withheld: bool = False
    """Held and seen by the patient: no value, flag, range, comment or file to show or download."""


def _results_query() -> sa.Select:
    patient, doctor, verifier = _PATIENT, _DOCTOR, _VERIFIER
    return (
        sa.select(LabOrder, LabResult, LabTest, patient.full_name, PatientProfile.mrn, doctor.full_name,
                  verifier.full_name, LabReportFile.file_name)
        .join(LabResult, LabResult.order_id == LabOrder.id)
        .join(LabTest, LabTest.id == LabOrder.test_id)
        .join(patient, patient.id == LabOrder.patient_id)
        .join(PatientProfile, PatientProfile.user_id == LabOrder.patient_id)
        .join(doctor, doctor.id == LabOrder.doctor_id)
        .join(verifier, verifier.id == LabResult.verified_by)
        .outerjoin(LabReportFile, LabReportFile.order_id == LabOrder.id)
        .where(LabOrder.status == LabOrderStatus.COMPLETED.value)
    )


def _result_view(row: sa.Row, *, viewer: Actor | None = None) -> ResultView:
    """The row as ``viewer`` may see it: a patient sees a held result's test and dates but no
    value, flag, range, comment or file, only that it awaits the doctor's review."""
    order, result, test, patient, mrn, doctor, verifier, report_name = row
    held = result.released_at is None
    if held and viewer is not None and viewer.role == Role.PATIENT:
        return ResultView(
            order_id=order.id, result_id=result.id, patient_id=order.patient_id, patient=patient, mrn=mrn,
            test=test.name, test_code=test.code, specimen=test.specimen, priority=str(order.priority),
            ordered_by=doctor, value="", unit="", reference_range="", flag="", flag_label="", is_critical=False,
            critical_acknowledged=False, acknowledged_at="", comment="", verified_by="",
            ordered_at=format_local(order.ordered_at), resulted_at=format_local(result.resulted_at),
            turnaround_minutes=0, has_report_file=False, report_file_name="", needs_acknowledgement=False,
            held=True, status=_(AWAITING_REVIEW), withheld=True)
    critical = result.flag in CRITICAL_FLAGS
    mine = viewer is not None and viewer.user_id == order.doctor_id
    if held:
        status = (_("Held for your review: the patient does not see it yet") if mine else
                  _("Held for the ordering doctor's review: the patient does not see it yet"))
    elif result.reviewed_at is not None:
        status = _("Reviewed")
    else:
        status = ""
    return ResultView(
        order_id=order.id, result_id=result.id, patient_id=order.patient_id, patient=patient, mrn=mrn,
        test=test.name, test_code=test.code, specimen=test.specimen, priority=str(order.priority),
        ordered_by=doctor, value=_number(result.value_numeric) if result.value_numeric is not None else result.value_text,
        unit=result.unit, reference_range=range_text(result.range_low, result.range_high), flag=result.flag,
        flag_label=flag_label(result.flag), is_critical=critical,
        critical_acknowledged=result.critical_acknowledged_at is not None,
        acknowledged_at=format_local(result.critical_acknowledged_at), comment=result.comment, verified_by=verifier,
        ordered_at=format_local(order.ordered_at), resulted_at=format_local(result.resulted_at),
        turnaround_minutes=result.turnaround_seconds // 60, has_report_file=report_name is not None,
        report_file_name=report_name or "",
        needs_acknowledgement=critical and result.critical_acknowledged_at is None,
        held=held, status=status, review_note=result.review_note or "", reviewed_at=format_local(result.reviewed_at),
        can_review=held and mine,
    )


def results_for_patient(*, session: Session, actor: Actor, page: int = 1, page_size: int = 20) -> Page[ResultView]:
    """The patient's own completed results, newest first; a result held for the doctor's review
    shows as awaiting review, with no value, flag, range, comment or file."""
    require(session, actor, Permission.RECORD_READ_OWN, action="lab_result.list")
    if actor.role != Role.PATIENT:
        audit.deny(session, actor, "lab_result.list", N_("Only patients have a results page of their own."))
    page, page_size = clamp_page(page, page_size)
    query = _results_query().where(LabOrder.patient_id == actor.user_id)
    total = session.execute(sa.select(sa.func.count()).select_from(query.subquery())).scalar_one()
    rows = session.execute(query.order_by(LabResult.resulted_at.desc(), LabResult.id.desc())
                           .offset((page - 1) * page_size).limit(page_size)).all()
    audit.record(session, actor, "lab_result.list", entity_type="patient", entity_id=actor.user_id,
                 patient_id=actor.user_id, detail=f"page {page}")
    session.commit()
    return Page([_result_view(r, viewer=actor) for r in rows], total, page, page_size)


def results_for_doctor(*, session: Session, actor: Actor, patient_id: object = None, critical_only: bool = False,
                       page: int = 1, page_size: int = 20) -> Page[ResultView]:
    """The results of tests the doctor ordered: unacknowledged critical ones first, then those
    held for the doctor's review (oldest first: the patient has waited longest), then the rest,
    newest first.

    Args:
        patient_id: only this patient's (an id as the client sent it); empty for all.
        critical_only: only the critical results not yet acknowledged.
    """
    require(session, actor, Permission.CLINICAL_READ, action="lab_result.list")
    page, page_size = clamp_page(page, page_size)
    query = _results_query().where(LabOrder.doctor_id == actor.user_id)
    unacknowledged = sa.and_(LabResult.flag.in_(CRITICAL_FLAGS), LabResult.critical_acknowledged_at.is_(None))
    if patient_id not in (None, "", 0):
        wanted = parse_id(patient_id)
        if wanted is None:
            raise ValidationError(_("Choose a patient from the list."))
        query = query.where(LabOrder.patient_id == wanted)
    if critical_only:
        query = query.where(unacknowledged)
    total = session.execute(sa.select(sa.func.count()).select_from(query.subquery())).scalar_one()
    held = LabResult.released_at.is_(None)
    rows = session.execute(query.order_by(sa.case((unacknowledged, 0), (held, 1), else_=2),
                                          sa.case((held, LabResult.resulted_at)), LabResult.resulted_at.desc(),
                                          LabResult.id.desc())
                           .offset((page - 1) * page_size).limit(page_size)).all()
    audit.record(session, actor, "lab_result.list", detail=f"ordered by me, page {page}"  # i18n: not shown (audit)
                 + (f", patient {patient_id}" if patient_id not in (None, "", 0) else ""))
    session.commit()
    return Page([_result_view(r, viewer=actor) for r in rows], total, page, page_size)


def unacknowledged_critical_count(*, session: Session, actor: Actor) -> int:
    """How many of the doctor's critical results still wait for acknowledgement (for a badge)."""
    require(session, actor, Permission.CLINICAL_READ, action="lab_result.count")
    return session.execute(
        sa.select(sa.func.count()).select_from(LabResult).join(LabOrder, LabOrder.id == LabResult.order_id)
        .where(LabOrder.doctor_id == actor.user_id, LabResult.flag.in_(CRITICAL_FLAGS),
               LabResult.critical_acknowledged_at.is_(None))
    ).scalar_one()


def _order_for_reader(session: Session, actor: Actor, order_id: object, action: str) -> LabOrder:
    """A lab order whose results the actor may read: the patient's own once completed, the
    ordering doctor's, or one of a patient whose chart the doctor may open. Refusals are
    audited; for a patient another's order answers exactly like a missing one."""
    if actor.role == Role.PATIENT:
        require(session, actor, Permission.RECORD_READ_OWN, action=action)
        return access_by_id(session, actor, LabOrder, order_id, action=action,
                            missing=N_("That result does not exist."), entity_type="lab_order",
                            allowed=lambda o: o.patient_id == actor.user_id
                            and str(o.status) == LabOrderStatus.COMPLETED and _released(session, o.id))
    require(session, actor, Permission.CLINICAL_READ, action=action)
    order = access_by_id(session, actor, LabOrder, order_id, action=action,
                         missing=N_("That result does not exist."), entity_type="lab_order")
    if order.doctor_id != actor.user_id:
        chart_patient(session, actor, order.patient_id, action)
    return order


def _released(session: Session, order_id: int) -> bool:
    """Whether the order's result has reached the patient (a held one is, to them, no result)."""
    return session.execute(sa.select(LabResult.id).where(LabResult.order_id == order_id,
                                                         LabResult.released_at.is_not(None))).first() is not None


def _completed_row(session: Session, order: LabOrder) -> sa.Row | None:
    return session.execute(_results_query().where(LabOrder.id == order.id)).first()


def result_for_order(*, session: Session, actor: Actor, order_id: int) -> ResultView:
    """One completed order's result, for its patient or a doctor (audited)."""
    order = _order_for_reader(session, actor, order_id, "lab_result.view")
    row = _completed_row(session, order)
    if row is None:
        raise NotFound(_("This order has no result yet."))
    audit.record(session, actor, "lab_result.view", entity_type="lab_order", entity_id=order.id,
                 patient_id=order.patient_id)
    session.commit()
    return _result_view(row, viewer=actor)


def download_result_file(*, session: Session, actor: Actor, order_id: int, which: str = "report") -> DownloadedFile:
    """The uploaded report (``which="report"``) or the generated PDF report (``"pdf"``), for the
    patient (their own, completed orders) or a doctor; each download is audited."""
    action = "lab_result.download"
    if which not in ("report", "pdf"):
        raise ValidationError(_("Choose the uploaded report or the PDF report."))
    order = _order_for_reader(session, actor, order_id, action)
    if which == "report":
        stored = session.execute(sa.select(LabReportFile).where(LabReportFile.order_id == order.id)).scalar_one_or_none()
        if stored is None:
            raise NotFound(_("No report file has been uploaded for this order."))
        data = files.read_for_download(session, actor, stored.storage_name, action=action, entity_type="lab_order",
                                       entity_id=order.id, patient_id=order.patient_id)
        download = DownloadedFile(files.download_name(stored.file_name), stored.content_type, data)
    else:
        row = _completed_row(session, order)
        if row is None:
            raise NotFound(_("This order has no result yet, so there is no report to print."))
        download = DownloadedFile(f"lab-report-{order.id}.pdf", "application/pdf", _render_pdf(session, row))
    audit.record(session, actor, action, entity_type="lab_order", entity_id=order.id, patient_id=order.patient_id,
                 detail=which)
    session.commit()
    return download


def generate_report_pdf(*, session: Session, actor: Actor, order_id: int) -> bytes:
    """The PDF lab report of a completed order, for lab staff (to print or send) and for
    whoever may read the result; audited."""
    action = "lab_report.generate"
    if actor.can(Permission.LAB_WORK):
        order = _order_for_lab(session, actor, order_id, action)
    else:
        order = _order_for_reader(session, actor, order_id, action)
    row = _completed_row(session, order)
    if row is None:
        raise Conflict(_("Enter the result before printing the report."))
    data = _render_pdf(session, row)
    audit.record(session, actor, action, entity_type="lab_order", entity_id=order.id, patient_id=order.patient_id)
    session.commit()
    return data


# --- the PDF report ------------------------------------------------------------------------------


_PRIORITY_WORDS = {LabPriority.ROUTINE: N_("routine"), LabPriority.URGENT: N_("urgent"), LabPriority.STAT: N_("stat")}
"""An order's priority as the report prints it."""


def _when(instant: datetime | None) -> str:
    return format_local(instant, zone=True)


def _render_pdf(session: Session, row: sa.Row) -> bytes:
    order, result, test, patient, mrn, doctor, verifier, _file = row
    profile = session.get(PatientProfile, order.patient_id)
    view = _result_view(row)
    pdf = letterhead(phrase(_("Lab report {number}"), number=order.id), _("Laboratory report"))
    pdf.ln(4)

    def line(label: str, value: str, *, bold: bool = False) -> None:
        field(pdf, label, value, label_width=45, bold=bold, wrap=True)

    line(_("Patient"), patient)
    line(_("Medical record no."), mrn)
    line(_("Birth date"), format_date(profile.birth_date) if profile else "")
    line(_("Sex"), sex_label(profile.sex) if profile else "")
    pdf.ln(3)
    line(_("Test"), f"{test.name} ({test.code})")
    line(_("Specimen"), test.specimen)
    line(_("Priority"), _(_PRIORITY_WORDS[LabPriority(order.priority)]))
    line(_("Ordered by"), doctor)
    pdf.ln(3)
    line(_("Result"), f"{view.value} {view.unit}".strip(), bold=True)
    if test.numeric:
        line(_("Reference range"), f"{view.reference_range} {view.unit}".strip() if view.reference_range else
             _("No reference range for this patient"))
        line(_("Flag"), view.flag_label or _("None"), bold=view.is_critical)
    if result.comment:
        line(_("Comment"), result.comment)
    pdf.ln(3)
    line(_("Ordered"), _when(order.ordered_at))
    line(_("Collected"), _when(order.collected_at))
    line(_("Resulted"), _when(result.resulted_at))
    line(_("Verified by"), verifier)
    return closing_note(pdf, phrase(_("Printed {time}. Times are {zone} local time. Reference ranges are for the "
                                      "patient's sex and age on the day of the result."),
                                    time=_when(utcnow()), zone=settings.TIMEZONE.key))

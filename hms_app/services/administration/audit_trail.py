"""The admin's view of the audit trail: search it, export it as CSV, verify its chain.

The trail itself (appending rows, recording refusals, the hash chain) is ``core.audit``;
these are the services of the audit page, each checked against ``Permission.AUDIT_VIEW``.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session

from hms_app.db.enums import AuditOutcome, Permission
from hms_app.db.models import AuditEvent, PatientProfile
from hms_app.services.core import audit
from hms_app.services.core.access import require
from hms_app.services.core.actor import Actor
from hms_app.services.core.audit import ChainReport
from hms_app.services.core.errors import ValidationError
from hms_app.services.core.ids import parse_id
from hms_app.services.core.language import N_, _, ngettext
from hms_app.services.core.localtime import format_local, local_midnight
from hms_app.services.core.numbers import format_number
from hms_app.services.core.paging import clamp_page
from hms_app.services.core.spreadsheet import csv_safe
from hms_app.services.core.text import escape_like, storable


@dataclass(frozen=True)
class AuditFilter:
    user: str = ""
    patient: str = ""
    action: str = ""
    outcome: str = ""
    date_from: str = ""
    date_to: str = ""


@dataclass(frozen=True)
class AuditRow:
    id: int
    occurred_at: str
    actor: str
    action: str
    record: str
    patient: str
    ip_address: str
    outcome: str
    detail: str


@dataclass(frozen=True)
class AuditPage:
    """One page of the trail, newest first, and whether there are newer and older rows to page to.

    Pages are taken by keyset (the ids either side), so no page counts the rows before it or
    all of them: the unfiltered trail holds millions. ``size_note`` is the only figure for the
    whole trail, and says what kind of figure it is.
    """

    rows: list[AuditRow]
    page_size: int
    has_newer: bool
    has_older: bool
    size_note: str = ""


def _local_day_start(text: str, malformed: str) -> datetime:
    """Local midnight at the start of the day ``text`` (ISO); ``malformed`` (marked) if it is none."""
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise ValidationError(_(malformed)) from None
    return local_midnight(day)


def _clean_filters(filters: AuditFilter) -> AuditFilter:
    """The filters as text, whatever a client put in them."""
    return AuditFilter(*(storable(str(getattr(filters, name, "") or ""), "filter")
                         for name in AuditFilter.__dataclass_fields__))


def _filtered(session: Session, filters: AuditFilter) -> sa.Select:
    query = sa.select(AuditEvent)
    if filters.user.strip():
        term = filters.user.strip()
        if term.isdigit():
            query = query.where(AuditEvent.actor_id == (parse_id(term) or -1))
        else:
            query = query.where(AuditEvent.actor_email.ilike(f"%{escape_like(term)}%", escape="\\"))
    if filters.patient.strip():
        term = filters.patient.strip()
        # Record numbers are issued in capitals (counters.next_mrn): comparing the column itself,
        # not upper(mrn), lets its unique index answer instead of a scan of every patient.
        patient_id = parse_id(term) if term.isdigit() else session.execute(
            sa.select(PatientProfile.user_id).where(PatientProfile.mrn == term.upper())
        ).scalar_one_or_none()
        query = query.where(AuditEvent.patient_id == (patient_id if patient_id is not None else -1))
    if filters.action.strip():
        query = query.where(AuditEvent.action.like(f"{escape_like(filters.action.strip())}%", escape="\\"))
    if filters.outcome.strip():
        if filters.outcome not in {o.value for o in AuditOutcome}:
            raise ValidationError(_("Choose an outcome from the list."))
        query = query.where(AuditEvent.outcome == filters.outcome)
    start = (_local_day_start(filters.date_from, N_("The start date must look like 2026-01-31."))
             if filters.date_from.strip() else None)
    end = (_local_day_start(filters.date_to, N_("The end date must look like 2026-01-31.")) + timedelta(days=1)
           if filters.date_to.strip() else None)
    if start and end and start >= end:
        raise ValidationError(_("The start date must not be after the end date."))
    if start:
        query = query.where(AuditEvent.occurred_at >= start)
    if end:
        query = query.where(AuditEvent.occurred_at < end)
    return query


def _to_row(event: AuditEvent) -> AuditRow:
    return AuditRow(
        id=event.id or 0,
        occurred_at=format_local(event.occurred_at, seconds=True),
        actor=event.actor_email or _("(visitor)"),
        action=event.action,
        record=f"{event.entity_type} {event.entity_id}".strip(),
        patient="" if event.patient_id is None else str(event.patient_id),
        ip_address=event.ip_address,
        outcome=str(event.outcome),
        detail=event.detail,
    )


def _require_audit_view(session: Session, actor: Actor, action: str) -> None:
    require(session, actor, Permission.AUDIT_VIEW, action=action)


def search_audit(
    *, session: Session, actor: Actor, filters: AuditFilter, older_than: object = None, newer_than: object = None,
    page_size: int = 25,
) -> AuditPage:
    """One page of audit rows, newest first, filtered in SQL and paged by id.

    Args:
        older_than: the id of the last (oldest) row shown: the page after it.
        newer_than: the id of the first (newest) row shown: the page before it. Without either,
            the newest page. An id that is no id (a client's) counts as not given.
        page_size: rows per page, clamped as every table's are.
    """
    _require_audit_view(session, actor, "audit.search")
    page_size = clamp_page(1, page_size)[1]
    filters = _clean_filters(filters)
    query = _filtered(session, filters)
    older_than, newer_than = parse_id(older_than), parse_id(newer_than)
    # One row more than the page tells whether there is a page beyond it, without counting.
    if newer_than is not None:
        events = list(session.execute(
            query.where(AuditEvent.id > newer_than).order_by(AuditEvent.id.asc()).limit(page_size + 1)).scalars())
        has_newer, has_older = len(events) > page_size, True
        events = events[:page_size][::-1]
    else:
        if older_than is not None:
            query = query.where(AuditEvent.id < older_than)
        events = list(session.execute(query.order_by(AuditEvent.id.desc()).limit(page_size + 1)).scalars())
        has_newer, has_older = older_than is not None, len(events) > page_size
        events = events[:page_size]
    if not events and newer_than is not None:  # nothing newer any more: show the newest page
        return search_audit(session=session, actor=actor, filters=filters, page_size=page_size)
    size_note = _trail_size_note(session) if filters == AuditFilter() else ""
    return AuditPage([_to_row(e) for e in events], page_size, has_newer, has_older, size_note)


def _trail_size_note(session: Session) -> str:
    """How big the whole trail is, from what the database knows without counting, said as what it is:
    PostgreSQL's planner estimate (``pg_class.reltuples``, kept by ANALYZE and autovacuum), or on
    SQLite the span of its ids, an upper bound (a rolled-back insert leaves no row, and on SQLite
    the rows are never deleted, so the span is never short). Empty when there is no figure."""
    if session.get_bind().dialect.name == "postgresql":
        estimate = session.execute(sa.text(
            "SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass('audit_event')")).scalar_one_or_none()
        if not estimate or estimate <= 0:
            return ""
        return ngettext("about {n} event in all (the database's estimate)",
                        "about {n} events in all (the database's estimate)", estimate).format(n=format_number(estimate))
    # Two subqueries: SQLite reads min() or max() alone off the index's ends, both at once by a full scan.
    low, high = session.execute(sa.select(sa.select(sa.func.min(AuditEvent.id)).scalar_subquery(),
                                          sa.select(sa.func.max(AuditEvent.id)).scalar_subquery())).one()
    if low is None:
        return ""
    return ngettext("at most {n} event in all (from the first and last ids)",
                    "at most {n} events in all (from the first and last ids)", high - low + 1).format(
        n=format_number(high - low + 1))


EXPORT_LIMIT = 100_000
_EXPORT_HEADERS = (N_("id"), N_("occurred_at_utc"), N_("actor_id"), N_("actor_email"), N_("action"), N_("entity_type"),
                   N_("entity_id"), N_("patient_id"), N_("ip_address"), N_("outcome"), N_("detail"), N_("prev_hash"),
                   N_("row_hash"))
"""The export's column names, in the reader's language (the rows are the trail as recorded)."""


def export_audit_csv(*, session: Session, actor: Actor, filters: AuditFilter) -> str:
    """The filtered trail as CSV text (at most ``EXPORT_LIMIT`` rows); the export is audited."""
    _require_audit_view(session, actor, "audit.export")
    filters = _clean_filters(filters)
    query = _filtered(session, filters).order_by(AuditEvent.id).limit(EXPORT_LIMIT)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([_(header) for header in _EXPORT_HEADERS])
    count = 0
    for event in _iter(session, query):
        count += 1
        # Every text cell is defused, not only the detail: a typed login email, an id sent
        # to a handler or a forwarded address reach the trail as given.
        writer.writerow(
            [event.id, event.occurred_at.isoformat(), event.actor_id or "", csv_safe(event.actor_email),
             csv_safe(event.action), csv_safe(event.entity_type), csv_safe(event.entity_id),
             event.patient_id or "", csv_safe(event.ip_address), event.outcome, csv_safe(event.detail),
             event.prev_hash, event.row_hash]
        )
    audit.record(session, actor, "audit.export", detail=f"{count} rows; filters {json.dumps(filters.__dict__)}")
    session.commit()
    return buffer.getvalue()


def _iter(session: Session, query: sa.Select) -> Iterator[AuditEvent]:
    yield from session.execute(query.execution_options(yield_per=2000)).scalars()


def verify_audit_chain(*, session: Session, actor: Actor) -> ChainReport:
    """The admin's check of the chain, itself audited."""
    _require_audit_view(session, actor, "audit.verify")
    report = audit.verify_chain(session)
    audit.record(
        session,
        actor,
        "audit.verify",
        outcome=AuditOutcome.SUCCESS if report.ok else AuditOutcome.FAILED,
        detail=f"{report.rows_checked} rows checked"  # i18n: not shown
               + ("" if report.ok else f"; first altered row {report.first_bad_id}"),  # i18n: not shown
    )
    session.commit()
    return report

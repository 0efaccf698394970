"""The append-only audit trail, chained by hashes.

Every write service and every login event appends one row here in the same transaction
as the change it records. A refused call is recorded by ``deny`` in a transaction of its
own after the refused work is rolled back, so a refusal leaves exactly one trace.
Each row's hash covers its fields and the hash of the row before, so an edit, a deletion
or an insertion in the middle is found by ``verify_chain``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, select

from hms_app.db.engine import begin_write
from hms_app.db.enums import AuditOutcome, Permission
from hms_app.db.models import AuditEvent, PatientProfile
from hms_app.db.types import utcnow
from hms_app.services.core.actor import Actor, Anonymous
from hms_app.services.core.errors import PermissionDenied, ValidationError
from hms_app.services.core.ids import parse_id
from hms_app.services.core.localtime import format_local, local_midnight
from hms_app.services.core.paging import clamp_page
from hms_app.services.core.spreadsheet import csv_safe
from hms_app.services.core.text import shown, storable

GENESIS_HASH = "0" * 64
_PG_AUDIT_LOCK = 7_310_421  # advisory lock key that serialises appends on PostgreSQL


def _row_digest(prev_hash: str, event: AuditEvent) -> str:
    fields = [
        event.occurred_at.isoformat(timespec="microseconds"),
        event.actor_id,
        event.actor_email,
        event.action,
        event.entity_type,
        event.entity_id,
        event.patient_id,
        event.ip_address,
        str(event.outcome),
        event.detail,
    ]
    payload = prev_hash + json.dumps(fields, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


def record(
    session: Session,
    actor: Actor | Anonymous | None,
    action: str,
    *,
    entity_type: str = "",
    entity_id: object = "",
    patient_id: int | None = None,
    outcome: AuditOutcome = AuditOutcome.SUCCESS,
    detail: str = "",
    actor_email: str | None = None,
) -> AuditEvent:
    """Append one audit row in the session's transaction (the caller commits)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_AUDIT_LOCK})
    prev_hash = session.execute(
        sa.select(AuditEvent.row_hash).order_by(AuditEvent.id.desc()).limit(1)
    ).scalar_one_or_none()
    event = AuditEvent(
        occurred_at=utcnow(),
        actor_id=actor.user_id if isinstance(actor, Actor) else None,
        actor_email=actor_email if actor_email is not None else getattr(actor, "email", ""),
        action=action,
        entity_type=entity_type,
        # Ids and text a client sent are recorded as sent, less what no database can hold.
        entity_id=shown(str(entity_id)[:64]),
        patient_id=patient_id,
        ip_address=getattr(actor, "ip_address", "") or "",
        outcome=outcome,
        detail=shown(detail[:2000]),
        prev_hash=prev_hash or GENESIS_HASH,
        row_hash="",
    )
    event.row_hash = _row_digest(event.prev_hash, event)
    session.add(event)
    session.flush()
    return event


def deny(
    session: Session,
    actor: Actor | Anonymous | None,
    action: str,
    message: str = "You do not have permission to do that.",
    *,
    error: type[Exception] = PermissionDenied,
    entity_type: str = "",
    entity_id: object = "",
    patient_id: int | None = None,
    detail: str = "",
) -> None:
    """Roll back the refused work, record the refusal in its own transaction, and raise.

    That transaction takes the write lock first: the refused work was often a read (a page
    loader, a session check), and another user may write meanwhile.
    """
    session.rollback()
    begin_write(session)
    record(
        session,
        actor,
        action,
        entity_type=entity_type,
        entity_id=entity_id,
        patient_id=patient_id,
        outcome=AuditOutcome.DENIED,
        detail=detail or message,
    )
    session.commit()
    raise error(message)


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    rows_checked: int
    first_bad_id: int | None = None
    reason: str = ""


def verify_chain(session: Session) -> ChainReport:
    """Recompute every hash in order; report the first row that does not match."""
    prev = GENESIS_HASH
    count = 0
    rows = session.execute(select(AuditEvent).order_by(AuditEvent.id).execution_options(yield_per=2000))
    for (event,) in rows:
        count += 1
        if event.prev_hash != prev:
            return ChainReport(False, count, event.id, "its link to the row before was broken (a row was removed or inserted)")
        if _row_digest(prev, event) != event.row_hash:
            return ChainReport(False, count, event.id, "its contents were altered after it was written")
        prev = event.row_hash
    return ChainReport(True, count)


def verify_audit_chain(*, session: Session, actor: Actor) -> ChainReport:
    """The admin's check of the chain, itself audited."""
    _require_audit_view(session, actor, "audit.verify")
    report = verify_chain(session)
    record(
        session,
        actor,
        "audit.verify",
        outcome=AuditOutcome.SUCCESS if report.ok else AuditOutcome.FAILED,
        detail=f"{report.rows_checked} rows checked" + ("" if report.ok else f"; first altered row {report.first_bad_id}"),
    )
    session.commit()
    return report


# --- searching -------------------------------------------------------------------------


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
    rows: list[AuditRow]
    total: int
    page: int
    page_size: int


def _local_day_start(text: str, label: str) -> datetime:
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise ValidationError(f"The {label} date must look like 2026-01-31.") from None
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
            query = query.where(AuditEvent.actor_email.ilike(f"%{_escape_like(term)}%", escape="\\"))
    if filters.patient.strip():
        term = filters.patient.strip()
        # Record numbers are issued in capitals (counters.next_mrn): comparing the column itself,
        # not upper(mrn), lets its unique index answer instead of a scan of every patient.
        patient_id = parse_id(term) if term.isdigit() else session.execute(
            sa.select(PatientProfile.user_id).where(PatientProfile.mrn == term.upper())
        ).scalar_one_or_none()
        query = query.where(AuditEvent.patient_id == (patient_id if patient_id is not None else -1))
    if filters.action.strip():
        query = query.where(AuditEvent.action.like(f"{_escape_like(filters.action.strip())}%", escape="\\"))
    if filters.outcome.strip():
        if filters.outcome not in {o.value for o in AuditOutcome}:
            raise ValidationError("Choose an outcome from the list.")
        query = query.where(AuditEvent.outcome == filters.outcome)
    start = _local_day_start(filters.date_from, "start") if filters.date_from.strip() else None
    end = _local_day_start(filters.date_to, "end") + timedelta(days=1) if filters.date_to.strip() else None
    if start and end and start >= end:
        raise ValidationError("The start date must not be after the end date.")
    if start:
        query = query.where(AuditEvent.occurred_at >= start)
    if end:
        query = query.where(AuditEvent.occurred_at < end)
    return query


def _escape_like(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _to_row(event: AuditEvent) -> AuditRow:
    return AuditRow(
        id=event.id or 0,
        occurred_at=format_local(event.occurred_at, "%Y-%m-%d %H:%M:%S"),
        actor=event.actor_email or "(visitor)",
        action=event.action,
        record=f"{event.entity_type} {event.entity_id}".strip(),
        patient="" if event.patient_id is None else str(event.patient_id),
        ip_address=event.ip_address,
        outcome=str(event.outcome),
        detail=event.detail,
    )


def _require_audit_view(session: Session, actor: Actor, action: str) -> None:
    from hms_app.services.core.access import require

    require(session, actor, Permission.AUDIT_VIEW, action=action)


def search_audit(
    *, session: Session, actor: Actor, filters: AuditFilter, page: int = 1, page_size: int = 25
) -> AuditPage:
    """One page of audit rows, newest first, filtered in SQL."""
    _require_audit_view(session, actor, "audit.search")
    page, page_size = clamp_page(page, page_size)
    filters = _clean_filters(filters)
    query = _filtered(session, filters)
    total = session.execute(sa.select(sa.func.count()).select_from(query.subquery())).scalar_one()
    events = session.execute(
        query.order_by(AuditEvent.id.desc()).offset((page - 1) * page_size).limit(page_size)
    ).scalars()
    return AuditPage([_to_row(e) for e in events], total, page, page_size)


EXPORT_LIMIT = 100_000


def export_audit_csv(*, session: Session, actor: Actor, filters: AuditFilter) -> str:
    """The filtered trail as CSV text (at most ``EXPORT_LIMIT`` rows); the export is audited."""
    _require_audit_view(session, actor, "audit.export")
    filters = _clean_filters(filters)
    query = _filtered(session, filters).order_by(AuditEvent.id).limit(EXPORT_LIMIT)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        ["id", "occurred_at_utc", "actor_id", "actor_email", "action", "entity_type", "entity_id",
         "patient_id", "ip_address", "outcome", "detail", "prev_hash", "row_hash"]
    )
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
    record(session, actor, "audit.export", detail=f"{count} rows; filters {json.dumps(filters.__dict__)}")
    session.commit()
    return buffer.getvalue()


def _iter(session: Session, query: sa.Select) -> Iterator[AuditEvent]:
    yield from session.execute(query.execution_options(yield_per=2000)).scalars()

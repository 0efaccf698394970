"""The append-only audit trail, chained by hashes.

Every write service and every login event appends one row here in the same transaction
as the change it records. A refused call is recorded by ``deny`` in a transaction of its
own after the refused work is rolled back, so a refusal leaves exactly one trace.
Each row's hash covers its fields and the hash of the row before it in its lane, so an edit,
a deletion or an insertion in the middle is found by ``verify_chain``. The admin's search,
export and check of the trail are services of ``administration.audit_trail``.

Lanes: the trail is ``settings.AUDIT_LANES`` independent chains on PostgreSQL, each appended to
behind an advisory lock of its own, so that many audited transactions commit at once where one
global chain made every audited write in the hospital wait for the one before (bench/
audit_append.py). A transaction takes lane 0 when it is free, else any free lane, else waits
for one; every row of the transaction goes to that lane. Within a lane, rows are appended one
at a time and their ids (taken at the insert, under the lane's lock) rise in chain order.
SQLite has one writer at a time anyway: everything goes to lane 0 there.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session, select

from hms_app import settings
from hms_app.db.engine import begin_write
from hms_app.db.enums import AuditOutcome
from hms_app.db.models import AuditEvent
from hms_app.db.types import utcnow
from hms_app.services.core.actor import Actor, Anonymous
from hms_app.services.core.errors import PermissionDenied
from hms_app.services.core.language import N_, _
from hms_app.services.core.text import shown

GENESIS_HASH = "0" * 64
PG_AUDIT_LOCK = 7_310_421  # advisory lock key (with the lane as the second key) of a lane on PostgreSQL
_LANE_KEY = "hms_audit_lane"  # session.info: (the transaction, the lane it holds)
_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def chain_digest(prev_hash: str, occurred_at: str, actor_id: int | None, actor_email: str, action: str,
                 entity_type: str, entity_id: str, patient_id: int | None, ip_address: str, outcome: str,
                 detail: str) -> str:
    """The hash of one audit row: its fields (``occurred_at`` in ISO form to the microsecond)
    after the hash of the row before. The scale seed, which writes rows without the ORM,
    chains them with this same function."""
    fields = [occurred_at, actor_id, actor_email, action, entity_type, entity_id, patient_id, ip_address, outcome,
              detail]
    return hashlib.sha256((prev_hash + _ENCODE(fields)).encode()).hexdigest()


def row_digest(prev_hash: str, event: AuditEvent) -> str:
    """``chain_digest`` of a stored or new ``AuditEvent``."""
    return chain_digest(prev_hash, event.occurred_at.isoformat(timespec="microseconds"), event.actor_id,
                        event.actor_email, event.action, event.entity_type, event.entity_id, event.patient_id,
                        event.ip_address, str(event.outcome), event.detail)


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
    lane = _take_lane(session)
    prev_hash = session.execute(
        sa.select(AuditEvent.row_hash).where(AuditEvent.lane == lane).order_by(AuditEvent.id.desc()).limit(1)
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
        lane=lane,
    )
    event.row_hash = row_digest(event.prev_hash, event)
    session.add(event)
    session.flush()
    return event


def _take_lane(session: Session) -> int:
    """The lane this transaction appends to, locked until it ends (PostgreSQL); 0 on SQLite.

    A transaction that appended already keeps its lane: holding two would let two transactions
    wait on each other's. Lane 0 is tried first, then the others in a random order, in one
    statement that stops at the first lock it gets; with none free it waits on a random lane.
    """
    if session.get_bind().dialect.name != "postgresql":
        return 0
    session.connection()  # begins the transaction if no statement has yet: its identity is the key
    transaction = session.get_transaction()
    held = session.info.get(_LANE_KEY)
    if held is not None and held[0] is transaction:
        return held[1]
    lanes = settings.AUDIT_LANES
    if lanes == 1:
        lane = 0
        session.execute(sa.text("SELECT pg_advisory_xact_lock(:key, 0)"), {"key": PG_AUDIT_LOCK})
    else:
        others = random.sample(range(1, lanes), lanes - 1)
        # One function scan under a LIMIT: the filter runs row by row and stops at the first
        # lock taken, so the transaction holds exactly one lane.
        lane = session.execute(
            sa.text("SELECT lane FROM unnest(CAST(:lanes AS integer[])) AS lane "
                    "WHERE pg_try_advisory_xact_lock(:key, lane) LIMIT 1"),
            {"lanes": [0, *others], "key": PG_AUDIT_LOCK},
        ).scalar_one_or_none()
        if lane is None:
            lane = others[0]
            session.execute(sa.text("SELECT pg_advisory_xact_lock(:key, :lane)"), {"key": PG_AUDIT_LOCK, "lane": lane})
    session.info[_LANE_KEY] = (transaction, lane)
    return lane


def deny(
    session: Session,
    actor: Actor | Anonymous | None,
    action: str,
    message: str = N_("You do not have permission to do that."),
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

    ``message`` is the English text, marked where it is written (``N_("Only patients ...")``):
    the trail records it as written (unless ``detail`` says more) and the error carries it in
    the reader's language. A message already translated (``_(...)``) reads the same.
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
    raise error(_(message))


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    rows_checked: int
    first_bad_id: int | None = None
    reason: str = ""


def verify_chain(session: Session) -> ChainReport:
    """Recompute every hash in id order, each lane's chain apart; report the first row that does
    not match. Ids are the table's primary key, so unique across lanes."""
    last: dict[int, str] = {}
    count = 0
    rows = session.execute(select(AuditEvent).order_by(AuditEvent.id).execution_options(yield_per=2000))
    for (event,) in rows:
        count += 1
        if not 0 <= event.lane < settings.AUDIT_MAX_LANES:
            return ChainReport(False, count, event.id,
                               _("it claims lane {lane}, which no append uses").format(lane=event.lane))
        prev = last.get(event.lane, GENESIS_HASH)
        if event.prev_hash != prev:
            return ChainReport(False, count, event.id,
                               _("its link to the row before was broken (a row was removed or inserted)"))
        if row_digest(prev, event) != event.row_hash:
            return ChainReport(False, count, event.id, _("its contents were altered after it was written"))
        last[event.lane] = event.row_hash
    return ChainReport(True, count)


def chain_ends(connection: sa.Connection) -> str:
    """One digest of every lane's last hash: it changes when a row is appended to any lane,
    and a trail that lost rows at the end of a lane no longer ends where it did. With one lane
    it is that lane's last hash, as backups made before lanes recorded it."""
    ends = connection.execute(sa.text(
        "SELECT a.lane, a.row_hash FROM audit_event a JOIN (SELECT lane, max(id) AS id FROM audit_event GROUP BY lane)"
        " AS last ON last.id = a.id ORDER BY a.lane")).all()
    if not ends:
        return GENESIS_HASH
    if len(ends) == 1 and ends[0][0] == 0:
        return ends[0][1]
    return hashlib.sha256(_ENCODE([[lane, row_hash] for lane, row_hash in ends]).encode()).hexdigest()

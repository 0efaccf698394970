"""The append-only, hash-chained audit trail: integrity, searching, export, the CLI check."""

from __future__ import annotations

import csv
import io
import json
import threading
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from hms_app import cli, settings
from hms_app.db.engine import session_scope
from hms_app.db.enums import Role
from hms_app.db.models import AuditEvent, PatientProfile
from hms_app.db.types import utcnow
from hms_app.services.administration import audit_trail, departments, users
from hms_app.services.core import audit, spreadsheet
from hms_app.services.core.errors import LoginFailed, NotFound, PermissionDenied, ValidationError
from hms_app.services.core.localtime import format_local
from tests.conftest import DEMO_EMAIL
from tests.services.helpers import assert_refused, audit_events, login_token, resolve, table_count

pytestmark = pytest.mark.db

NON_ADMIN = [Role.PATIENT, Role.DOCTOR, Role.LAB, Role.PHARMACY, Role.ACCOUNTS]


def _verify(engine) -> audit.ChainReport:
    with session_scope(write=False, engine=engine) as s:
        return audit.verify_chain(s)


def _search(engine, actor, older_than=None, newer_than=None, page_size=100, **filters) -> audit_trail.AuditPage:
    with session_scope(write=False, engine=engine) as s:
        return audit_trail.search_audit(session=s, actor=actor, filters=audit_trail.AuditFilter(**filters),
                                        older_than=older_than, newer_than=newer_than, page_size=page_size)


def _found(engine, actor, **filters) -> int:
    """How many rows match: the test trails fit on one page of the largest size, so no count is needed."""
    page = _search(engine, actor, **filters)
    assert not page.has_older, "more rows than one page holds"
    return len(page.rows)


def _export(engine, actor, **filters) -> list[dict[str, str]]:
    with session_scope(engine=engine) as s:
        text = audit_trail.export_audit_csv(session=s, actor=actor, filters=audit_trail.AuditFilter(**filters))
    return list(csv.DictReader(io.StringIO(text)))


def _drop_guards(engine) -> None:
    """What an attacker with raw database access would do first."""
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("DROP TRIGGER audit_event_no_update")
            conn.exec_driver_sql("DROP TRIGGER audit_event_no_delete")
        else:
            conn.exec_driver_sql("DROP TRIGGER audit_event_append_only ON audit_event")


def _ids(engine) -> list[int]:
    with engine.connect() as conn:
        return conn.execute(sa.select(AuditEvent.id).order_by(AuditEvent.id)).scalars().all()


def _busy_day(engine, actors, ward: str = "Oncology") -> None:
    """A spread of audited work: logins, failures, refusals, admin changes, clinical reads."""
    admin = actors[Role.ADMIN]
    with pytest.raises(LoginFailed):
        login_token(engine, DEMO_EMAIL[Role.PATIENT], "Wrong-password-1")
    with pytest.raises(LoginFailed):
        login_token(engine, "nobody@example.org", "Wrong-password-1")
    with session_scope(engine=engine) as s:
        department_id = departments.create_department(session=s, actor=admin, name=ward)
    with session_scope(engine=engine) as s:
        departments.rename_department(session=s, actor=admin, department_id=department_id, name=f"{ward} Unit")
    with session_scope(engine=engine) as s:
        users.get_own_profile(session=s, actor=actors[Role.PATIENT])
    with pytest.raises(Exception), session_scope(engine=engine) as s:  # noqa: B017
        users.list_users(session=s, actor=actors[Role.LAB])
    with session_scope(engine=engine) as s:
        users.deactivate_user(session=s, actor=admin, user_id=actors[Role.PATIENT].user_id)


# --- integrity ----------------------------------------------------------------------------


def test_a_fresh_chain_starts_at_genesis(seeded):
    [first] = audit_events(seeded)
    assert first.action == "demo.seed"
    assert first.prev_hash == audit.GENESIS_HASH
    assert len(first.row_hash) == 64
    assert _verify(seeded) == audit.ChainReport(True, 1)


def test_the_chain_verifies_after_many_operations(actors, seeded):
    for role in Role:
        login_token(seeded, DEMO_EMAIL[role])
    _busy_day(seeded, actors)
    other_patient = resolve(seeded, login_token(seeded, "aisha.khan@patients.example"))
    _busy_day(seeded, {**actors, Role.PATIENT: other_patient}, ward="Radiology")
    events = audit_events(seeded)
    assert len(events) >= 25
    assert [e.prev_hash for e in events[1:]] == [e.row_hash for e in events[:-1]]
    report = _verify(seeded)
    assert report.ok
    assert report.rows_checked == len(events)
    assert report.first_bad_id is None


def test_the_database_refuses_updates_and_deletes_of_audit_rows(actors, seeded):
    _busy_day(seeded, actors)
    target = _ids(seeded)[3]
    statements = [
        sa.update(AuditEvent).where(AuditEvent.id == target).values(detail="nothing happened"),
        sa.update(AuditEvent).values(outcome="success"),
        sa.delete(AuditEvent).where(AuditEvent.id == target),
        sa.delete(AuditEvent),
    ]
    if seeded.dialect.name == "postgresql":
        statements.append(sa.text("TRUNCATE audit_event"))
    before = audit_events(seeded)
    for statement in statements:
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), seeded.begin() as conn:
            conn.execute(statement)
    after = audit_events(seeded)
    assert [(e.id, e.detail, e.row_hash) for e in after] == [(e.id, e.detail, e.row_hash) for e in before]
    assert _verify(seeded).ok


def test_the_orm_cannot_edit_an_audit_row_either(seeded):
    with session_scope(engine=seeded) as s:
        event = s.get(AuditEvent, _ids(seeded)[0])
        event.detail = "edited"
        s.add(event)
        with pytest.raises(sa.exc.DBAPIError):
            s.commit()
    assert audit_events(seeded)[0].detail != "edited"


def test_an_altered_row_is_reported_by_id(actors, seeded):
    _busy_day(seeded, actors)
    ids = _ids(seeded)
    target = ids[len(ids) // 2]
    _drop_guards(seeded)
    with seeded.begin() as conn:
        conn.execute(sa.update(AuditEvent).where(AuditEvent.id == target).values(detail="nothing to see"))
    report = _verify(seeded)
    assert not report.ok
    assert report.first_bad_id == target
    assert report.rows_checked == ids.index(target) + 1
    assert "altered" in report.reason


def test_an_altered_time_or_actor_is_found_too(actors, seeded):
    _busy_day(seeded, actors)
    ids = _ids(seeded)
    _drop_guards(seeded)
    with seeded.begin() as conn:
        conn.execute(sa.update(AuditEvent).where(AuditEvent.id == ids[-2]).values(actor_id=None))
        conn.execute(sa.update(AuditEvent).where(AuditEvent.id == ids[-1])
                     .values(occurred_at=utcnow() - timedelta(days=3)))
    assert _verify(seeded).first_bad_id == ids[-2]


def test_a_deleted_middle_row_is_reported(actors, seeded):
    _busy_day(seeded, actors)
    ids = _ids(seeded)
    removed = ids[4]
    _drop_guards(seeded)
    with seeded.begin() as conn:
        conn.execute(sa.delete(AuditEvent).where(AuditEvent.id == removed))
    report = _verify(seeded)
    assert not report.ok
    assert report.first_bad_id == ids[5]  # the row whose link points at the missing one
    assert "removed" in report.reason


def test_a_rewritten_chain_tail_is_still_caught_at_the_edit(actors, seeded):
    # Recomputing the edited row's own hash is not enough: the next row still links to the old one.
    _busy_day(seeded, actors)
    ids = _ids(seeded)
    target = ids[2]
    _drop_guards(seeded)
    with session_scope(engine=seeded) as s:
        event = s.get(AuditEvent, target)
        event.detail = "forged"
        event.row_hash = audit.row_digest(event.prev_hash, event)
        s.add(event)
        s.commit()
    report = _verify(seeded)
    assert report.first_bad_id == ids[3]


# --- lanes: several chains, appended at once on PostgreSQL ------------------------------------


def _append_to_lane(engine, lane: int, detail: str, *, skip_id: bool = False) -> int:
    """An audit row written into ``lane`` as an append would chain it; ``skip_id`` leaves the id
    before it unused (a rolled-back insert leaves such gaps on PostgreSQL)."""
    with engine.begin() as conn:
        prev = conn.execute(sa.select(AuditEvent.row_hash).where(AuditEvent.lane == lane)
                            .order_by(AuditEvent.id.desc()).limit(1)).scalar_one_or_none() or audit.GENESIS_HASH
        new_id = conn.execute(sa.select(sa.func.max(AuditEvent.id))).scalar_one() + (2 if skip_id else 1)
        return _insert_row(conn, new_id, lane, prev, detail)


def _insert_row(conn, row_id: int, lane: int, prev: str, detail: str) -> int:
    event = AuditEvent(id=row_id, occurred_at=utcnow(), actor_email="", action="test.lane", outcome="success",
                       detail=detail, prev_hash=prev, row_hash="", lane=lane)
    event.row_hash = audit.row_digest(prev, event)
    conn.execute(sa.insert(AuditEvent).values(
        id=row_id, occurred_at=event.occurred_at, actor_email="", action="test.lane", outcome="success",
        detail=detail, prev_hash=prev, row_hash=event.row_hash, lane=lane))
    if conn.dialect.name == "postgresql":  # rows given an id by hand: the sequence moves past them
        conn.execute(sa.text("SELECT setval('audit_event_id_seq', (SELECT max(id) FROM audit_event))"))
    return row_id


def _interleaved_lanes(engine) -> dict[int, list[int]]:
    """Rows of lanes 0, 2 and 5 mixed in id order, as concurrent appends leave them."""
    ids: dict[int, list[int]] = {0: [], 2: [], 5: []}
    for n, lane in enumerate([2, 0, 5, 2, 2, 0, 5, 2, 0, 2]):
        ids[lane].append(_append_to_lane(engine, lane, f"row {n}"))
    return ids


def test_lanes_are_chains_of_their_own_that_verify_together(seeded):
    ids = _interleaved_lanes(seeded)
    events = {e.id: e for e in audit_events(seeded)}
    for lane_ids in ids.values():
        chain = [events[i] for i in lane_ids]
        assert [e.prev_hash for e in chain[1:]] == [e.row_hash for e in chain[:-1]]
    assert events[ids[2][0]].prev_hash == audit.GENESIS_HASH  # a lane's first row starts at genesis
    assert _verify(seeded) == audit.ChainReport(True, len(events))


def test_an_altered_row_of_a_lane_is_reported_by_id(seeded):
    ids = _interleaved_lanes(seeded)
    target = ids[2][2]
    _drop_guards(seeded)
    with seeded.begin() as conn:
        conn.execute(sa.update(AuditEvent).where(AuditEvent.id == target).values(detail="nothing to see"))
    report = _verify(seeded)
    assert (report.ok, report.first_bad_id) == (False, target)
    assert "altered" in report.reason


def test_a_deleted_row_of_a_lane_is_reported_at_the_next_row_of_that_lane(seeded):
    ids = _interleaved_lanes(seeded)
    _drop_guards(seeded)
    with seeded.begin() as conn:
        conn.execute(sa.delete(AuditEvent).where(AuditEvent.id == ids[2][1]))
    report = _verify(seeded)
    assert (report.ok, report.first_bad_id) == (False, ids[2][2])  # rows of lanes 0 and 5 between are fine
    assert "removed" in report.reason


def test_an_inserted_row_in_a_lane_is_reported_at_the_next_row_of_that_lane(seeded):
    # A forged row slipped into a gap in the ids, linked to the lane's row before it with a
    # correct hash of its own: the lane's next row still links past it.
    first = _append_to_lane(seeded, 2, "before")
    after = _append_to_lane(seeded, 2, "after", skip_id=True)
    _append_to_lane(seeded, 0, "elsewhere")
    _drop_guards(seeded)
    with seeded.begin() as conn:
        prev = conn.execute(sa.select(AuditEvent.row_hash).where(AuditEvent.id == first)).scalar_one()
        _insert_row(conn, after - 1, 2, prev, "forged")
    report = _verify(seeded)
    assert (report.ok, report.first_bad_id) == (False, after)
    assert "inserted" in report.reason


def test_a_row_claiming_a_lane_no_append_uses_is_reported(seeded):
    _append_to_lane(seeded, 0, "fine")
    forged = _append_to_lane(seeded, settings.AUDIT_MAX_LANES, "a chain of its own")
    report = _verify(seeded)
    assert (report.ok, report.first_bad_id) == (False, forged)
    assert f"lane {settings.AUDIT_MAX_LANES}" in report.reason


def test_sqlite_appends_to_lane_zero_only(seeded):
    if seeded.dialect.name != "sqlite":
        pytest.skip("SQLite only: PostgreSQL spreads appends over lanes")
    _busy_day_for_lanes(seeded)
    assert {e.lane for e in audit_events(seeded)} == {0}
    assert _verify(seeded).ok


def _busy_day_for_lanes(engine) -> None:
    for n in range(3):
        with session_scope(engine=engine) as s:
            audit.record(s, None, "test.append", detail=f"append {n}")
            s.commit()


def _postgres_only(engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("lanes are locked with PostgreSQL's advisory locks; SQLite has one writer and one lane")


@contextmanager
def _lanes_held(engine, lanes):
    """Another transaction holding the advisory locks of ``lanes``, as concurrent appends do."""
    with engine.connect() as conn:
        for lane in lanes:
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key, :lane)"), {"key": audit.PG_AUDIT_LOCK, "lane": lane})
        yield
        conn.rollback()


def test_an_append_takes_lane_zero_when_it_is_free(seeded):
    _postgres_only(seeded)
    _busy_day_for_lanes(seeded)
    assert {e.lane for e in audit_events(seeded)} == {0}


def test_with_lane_zero_busy_an_append_takes_another_lane_and_keeps_it(seeded, monkeypatch):
    _postgres_only(seeded)
    monkeypatch.setattr(settings, "AUDIT_LANES", 4)
    with _lanes_held(seeded, [0]), session_scope(engine=seeded) as s:
        first = audit.record(s, None, "test.first")
        second = audit.record(s, None, "test.second")  # the same transaction: the same lane
        s.commit()
    assert first.lane == second.lane != 0
    assert second.prev_hash == first.row_hash
    assert _verify(seeded).ok


def test_with_every_lane_busy_an_append_waits_for_one(seeded, monkeypatch):
    _postgres_only(seeded)
    monkeypatch.setattr(settings, "AUDIT_LANES", 2)
    done = threading.Event()

    def append():
        with session_scope(engine=seeded) as s:
            audit.record(s, None, "test.waited")
            s.commit()
        done.set()

    with _lanes_held(seeded, [0, 1]):
        waiter = threading.Thread(target=append)
        waiter.start()
        assert not done.wait(1.0)  # both lanes held: it waits rather than write beside a lock
    waiter.join(timeout=30)
    assert done.is_set()
    [event] = audit_events(seeded, action="test.waited")
    assert event.lane == 1  # it waits on a lane other than 0, chosen at random among the others
    assert _verify(seeded).ok


def test_chain_ends_move_with_every_lane(seeded):
    with seeded.connect() as conn:
        one_lane = audit.chain_ends(conn)
        assert one_lane == conn.execute(sa.text("SELECT row_hash FROM audit_event ORDER BY id DESC LIMIT 1")).scalar_one()
    _append_to_lane(seeded, 3, "a second lane")
    with seeded.connect() as conn:
        two_lanes = audit.chain_ends(conn)
    _append_to_lane(seeded, 3, "its next row")
    with seeded.connect() as conn:
        assert len({one_lane, two_lanes, audit.chain_ends(conn)}) == 3


def test_a_refusal_in_a_read_only_session_takes_the_write_lock_first(seeded):
    # A page loader reads in a read-only session, and its refusal writes the audit row. Another
    # user's write commits between the refusal's read of the chain's last hash and its insert:
    # on SQLite a transaction that began by reading cannot write after that, and the refusal
    # failed with "database is locked" instead of being recorded and shown.
    interloper_committed = []

    def another_user_writes(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("INSERT INTO AUDIT_EVENT") and not interloper_committed:
            with seeded.connect() as other:
                if seeded.dialect.name == "sqlite":
                    other.exec_driver_sql("PRAGMA busy_timeout=200")
                try:
                    other.execute(sa.text("UPDATE department SET name = name WHERE id = (SELECT min(id) FROM department)"))
                    other.commit()
                    interloper_committed.append(True)
                except sa.exc.OperationalError:
                    interloper_committed.append(False)  # it waits for the refusal's write lock instead

    sa.event.listen(seeded, "before_cursor_execute", another_user_writes)
    try:
        with session_scope(write=False, engine=seeded) as session, pytest.raises(PermissionDenied):
            audit.deny(session, None, "users.list", detail="no session")
    finally:
        sa.event.remove(seeded, "before_cursor_execute", another_user_writes)

    assert interloper_committed
    assert [(e.action, e.outcome) for e in audit_events(seeded)][-1:] == [("users.list", "denied")]
    assert _verify(seeded).ok


def test_verify_audit_chain_service_is_audited(actors, seeded):
    admin = actors[Role.ADMIN]
    with session_scope(engine=seeded) as s:
        report = audit_trail.verify_audit_chain(session=s, actor=admin)
    assert report.ok
    [event] = audit_events(seeded, action="audit.verify")
    assert (event.actor_id, str(event.outcome), event.detail) == (
        admin.user_id, "success", f"{report.rows_checked} rows checked")

    ids = _ids(seeded)
    _drop_guards(seeded)
    with seeded.begin() as conn:
        conn.execute(sa.update(AuditEvent).where(AuditEvent.id == ids[1]).values(ip_address="10.0.0.1"))
    with session_scope(engine=seeded) as s:
        report = audit_trail.verify_audit_chain(session=s, actor=admin)
    assert (report.ok, report.first_bad_id) == (False, ids[1])
    event = audit_events(seeded, action="audit.verify")[-1]
    assert str(event.outcome) == "failed"
    assert f"first altered row {ids[1]}" in event.detail


def _only_audit_viewers_verify_search_and_export(seeded, actors, role):
    actor = actors[role]
    assert_refused(seeded, actor, "audit.verify", lambda s: audit_trail.verify_audit_chain(session=s, actor=actor))
    assert_refused(seeded, actor, "audit.search",
                   lambda s: audit_trail.search_audit(session=s, actor=actor, filters=audit_trail.AuditFilter()))
    assert_refused(seeded, actor, "audit.export",
                   lambda s: audit_trail.export_audit_csv(session=s, actor=actor, filters=audit_trail.AuditFilter()))


def test_only_audit_viewers_verify_search_and_export(actors, seeded, subtests):
    for role in NON_ADMIN:
        with subtests.test(role=role.value):
            _only_audit_viewers_verify_search_and_export(seeded, actors, role)


# --- the hms verify-audit command ---------------------------------------------------------


def test_verify_audit_command_exit_codes(actors, seeded, capsys):
    _busy_day(seeded, actors)
    assert cli.main(["verify-audit"]) == 0
    rows = table_count(seeded, AuditEvent)
    assert f"audit chain intact: {rows} rows" in capsys.readouterr().out

    target = _ids(seeded)[6]
    _drop_guards(seeded)
    with seeded.begin() as conn:
        conn.execute(sa.update(AuditEvent).where(AuditEvent.id == target).values(detail="tampered"))
    assert cli.main(["verify-audit"]) == 2
    assert f"BROKEN at row {target}" in capsys.readouterr().err


def test_verify_audit_command_on_an_empty_trail(empty_hospital, capsys):
    assert cli.main(["verify-audit"]) == 0
    assert "intact: 0 rows" in capsys.readouterr().out


# --- searching --------------------------------------------------------------------------


def test_search_filters(actors, seeded):
    _busy_day(seeded, actors)
    admin = actors[Role.ADMIN]
    patient = actors[Role.PATIENT]
    everything = _search(seeded, admin)
    assert (len(everything.rows), everything.has_newer, everything.has_older) == (table_count(seeded, AuditEvent), False, False)
    assert [r.id for r in everything.rows] == sorted((r.id for r in everything.rows), reverse=True)

    by_admin_id = _search(seeded, admin, user=str(admin.user_id))
    assert by_admin_id.rows
    assert {r.actor for r in by_admin_id.rows} == {admin.email}
    by_email = _search(seeded, admin, user="ADMIN@hms")
    assert {r.id for r in by_email.rows} == {r.id for r in by_admin_id.rows}
    assert _found(seeded, admin, user="nobody@example") == 1  # the failed login of an unknown email

    mrn = _mrn(seeded, patient.user_id)
    by_patient = _search(seeded, admin, patient=str(patient.user_id))
    assert {r.action for r in by_patient.rows} == {"profile.view", "user.deactivate"}
    assert {r.patient for r in by_patient.rows} == {str(patient.user_id)}
    assert [r.id for r in _search(seeded, admin, patient=mrn).rows] == [r.id for r in by_patient.rows]
    assert [r.id for r in _search(seeded, admin, patient=mrn.lower()).rows] == [r.id for r in by_patient.rows]
    assert _found(seeded, admin, patient="MRN-999999") == 0
    assert _found(seeded, admin, patient="%") == 0

    logins = _search(seeded, admin, action="login.")
    assert {r.action for r in logins.rows} == {"login.success", "login.failed"}
    assert _found(seeded, admin, action="login") == len(logins.rows)  # prefix; logout would match too
    assert _found(seeded, admin, action="login%") == 0  # wildcards are literal
    assert _found(seeded, admin, action="_ogin") == 0
    assert {r.action for r in _search(seeded, admin, action="department.").rows} == {
        "department.create", "department.rename"}

    denied = _search(seeded, admin, outcome="denied")
    assert [(r.action, r.actor) for r in denied.rows] == [("user.list", DEMO_EMAIL[Role.LAB])]
    assert {r.outcome for r in _search(seeded, admin, outcome="failed").rows} == {"failed"}
    with pytest.raises(ValidationError):
        _search(seeded, admin, outcome="maybe")

    combined = _search(seeded, admin, action="login.", outcome="failed", user="nobody")
    assert len(combined.rows) == 1
    assert combined.rows[0].actor == "nobody@example.org"


def _mrn(engine, user_id) -> str:
    with engine.connect() as conn:
        return conn.execute(sa.select(PatientProfile.mrn).where(PatientProfile.user_id == user_id)).scalar_one()


def test_search_by_date_range(actors, seeded):
    admin = actors[Role.ADMIN]
    total = table_count(seeded, AuditEvent)
    today = utcnow().astimezone(settings.TIMEZONE).date()
    yesterday, tomorrow = today - timedelta(days=1), today + timedelta(days=1)
    assert _found(seeded, admin, date_from=today.isoformat()) == total
    assert _found(seeded, admin, date_to=today.isoformat()) == total
    assert _found(seeded, admin, date_from=today.isoformat(), date_to=today.isoformat()) == total
    assert _found(seeded, admin, date_from=tomorrow.isoformat()) == 0
    assert _found(seeded, admin, date_to=yesterday.isoformat()) == 0
    assert _found(seeded, admin, date_from=yesterday.isoformat(), date_to=yesterday.isoformat()) == 0


@pytest.mark.parametrize(
    "filters",
    [
        {"date_from": "yesterday"},
        {"date_from": "2026-13-01"},
        {"date_to": "31/01/2026"},
        {"date_from": "2026-02-30"},
        {"date_from": "2026-03-02", "date_to": "2026-03-01"},
    ],
)
def test_bad_dates_are_a_validation_error(actors, seeded, filters):
    with pytest.raises(ValidationError):
        _search(seeded, actors[Role.ADMIN], **filters)
    with pytest.raises(ValidationError):
        _export(seeded, actors[Role.ADMIN], **filters)


def test_search_pages_newest_first_by_id_either_way(actors, seeded):
    _busy_day(seeded, actors)
    admin = actors[Role.ADMIN]
    every_id = [r.id for r in _search(seeded, admin).rows]
    first = _search(seeded, admin, page_size=5)
    second = _search(seeded, admin, older_than=first.rows[-1].id, page_size=5)
    assert [r.id for r in first.rows + second.rows] == every_id[:10]
    assert (first.has_newer, first.has_older, second.has_newer, second.has_older) == (False, True, True, True)
    back = _search(seeded, admin, newer_than=second.rows[0].id, page_size=5)
    assert [r.id for r in back.rows] == [r.id for r in first.rows]
    assert (back.has_newer, back.has_older) == (False, True)

    oldest = _search(seeded, admin, older_than=every_id[-3], page_size=5)
    assert [r.id for r in oldest.rows] == every_id[-2:]
    assert (oldest.has_newer, oldest.has_older) == (True, False)
    # Back from the oldest page: the five rows just newer, still newest first.
    assert [r.id for r in _search(seeded, admin, newer_than=every_id[-2], page_size=5).rows] == every_id[-7:-2]


def test_search_pages_by_id_within_a_filter(actors, seeded):
    for role in Role:
        login_token(seeded, DEMO_EMAIL[role])
    _busy_day(seeded, actors)
    admin = actors[Role.ADMIN]
    every_login = [r.id for r in _search(seeded, admin, action="login.").rows]
    assert len(every_login) > 4
    first = _search(seeded, admin, action="login.", page_size=2)
    second = _search(seeded, admin, action="login.", older_than=first.rows[-1].id, page_size=2)
    assert [r.id for r in first.rows + second.rows] == every_login[:4]
    assert {r.action for r in second.rows} <= {"login.success", "login.failed"}
    assert [r.id for r in _search(seeded, admin, action="login.", newer_than=second.rows[0].id,
                                  page_size=2).rows] == every_login[:2]


def test_a_page_newer_than_the_newest_row_is_the_newest_page(actors, seeded):
    admin = actors[Role.ADMIN]
    newest = _search(seeded, admin, page_size=5)
    page = _search(seeded, admin, newer_than=newest.rows[0].id, page_size=5)
    assert [r.id for r in page.rows] == [r.id for r in newest.rows]
    assert not page.has_newer


def test_search_clamps_paging_from_a_client(actors, seeded):
    admin = actors[Role.ADMIN]
    assert _search(seeded, admin, page_size=0).page_size == 1
    assert _search(seeded, admin, page_size=5000).page_size == 100
    clamped = _search(seeded, admin, page_size="y", older_than="x", newer_than=1.5)
    assert 1 <= clamped.page_size <= 100
    assert [r.id for r in clamped.rows] == [r.id for r in _search(seeded, admin, page_size=clamped.page_size).rows]
    assert _search(seeded, admin, older_than=10**30).rows == _search(seeded, admin).rows  # no id at all: not given


def test_the_trail_size_is_shown_only_unfiltered_and_labelled_as_what_it_is(actors, seeded):
    admin = actors[Role.ADMIN]
    note = _search(seeded, admin).size_note
    if seeded.dialect.name == "postgresql":
        with seeded.begin() as conn:
            conn.exec_driver_sql("ANALYZE audit_event")
        note = _search(seeded, admin).size_note
        assert note.startswith("about "), note
        assert note.endswith("(the database's estimate)"), note
    else:
        with seeded.connect() as conn:
            low, high = conn.execute(sa.select(sa.func.min(AuditEvent.id), sa.func.max(AuditEvent.id))).one()
        assert note == f"at most {high - low + 1} events in all (from the first and last ids)"
    assert _search(seeded, admin, action="login.").size_note == ""


def test_search_rows_show_time_in_the_hospital_zone(actors, seeded):
    row = _search(seeded, actors[Role.ADMIN], action="demo.seed").rows[0]
    event = audit_events(seeded, action="demo.seed")[0]
    assert row.occurred_at == format_local(event.occurred_at, seconds=True)  # on the hospital's clock
    assert row.actor == "system"


# --- export ------------------------------------------------------------------------------


def test_export_contains_the_filtered_rows_and_is_itself_audited(actors, seeded):
    _busy_day(seeded, actors)
    admin = actors[Role.ADMIN]
    before = audit_events(seeded)
    rows = _export(seeded, admin)
    assert [int(r["id"]) for r in rows] == [e.id for e in before]
    assert list(rows[0]) == ["id", "occurred_at_utc", "actor_id", "actor_email", "action", "entity_type",
                             "entity_id", "patient_id", "ip_address", "outcome", "detail", "prev_hash", "row_hash"]
    by_id = {e.id: e for e in before}
    for row in rows:
        event = by_id[int(row["id"])]
        assert row["row_hash"] == event.row_hash
        assert row["prev_hash"] == event.prev_hash
        assert row["action"] == event.action
        assert row["outcome"] == str(event.outcome)
        assert row["patient_id"] == ("" if event.patient_id is None else str(event.patient_id))

    [export_event] = audit_events(seeded, action="audit.export")
    assert export_event.actor_id == admin.user_id
    assert export_event.detail.startswith(f"{len(rows)} rows; filters ")
    assert json.loads(export_event.detail.split("filters ", 1)[1])["action"] == ""

    denied = _export(seeded, admin, outcome="denied")
    assert [(r["action"], r["actor_email"]) for r in denied] == [("user.list", DEMO_EMAIL[Role.LAB])]
    assert '"outcome": "denied"' in audit_events(seeded, action="audit.export")[-1].detail
    assert _verify(seeded).ok


def test_export_defuses_spreadsheet_formulas(actors, seeded):
    admin = actors[Role.ADMIN]
    # Free text a visitor or a client can put into the trail: a department name, a typed
    # login email, an id sent to a handler.
    with session_scope(engine=seeded) as s:
        departments.create_department(session=s, actor=admin, name='=HYPERLINK("http://evil.example","x")')
    with pytest.raises(LoginFailed):
        login_token(seeded, "=cmd|'/c calc'!a1@x.example", "Wrong-password-1")
    with pytest.raises(NotFound), session_scope(engine=seeded) as s:
        users.deactivate_user(session=s, actor=admin, user_id="+SUM(1,2)")
    with pytest.raises(NotFound), session_scope(engine=seeded) as s:
        users.reset_password(session=s, actor=admin, user_id="@SUM(1,2)")

    rows = _export(seeded, admin)
    dangerous = ("=", "+", "-", "@", "\t", "\r")
    for row in rows:
        for column, value in row.items():
            assert not value.startswith(dangerous) or (column == "occurred_at_utc"), (column, value)
    details = [r["detail"] for r in rows if r["action"] == "department.create"]
    assert details == ["'=HYPERLINK(\"http://evil.example\",\"x\")"]
    emails = [r["actor_email"] for r in rows if r["action"] == "login.failed"]
    assert emails == ["'=cmd|'/c calc'!a1@x.example"]
    entity_ids = [r["entity_id"] for r in rows if r["action"] in ("user.deactivate", "user.reset_password")]
    assert entity_ids == ["'+SUM(1,2)", "'@SUM(1,2)"]
    # The stored trail itself keeps the text as it was.
    assert audit_events(seeded, action="department.create")[0].detail.startswith("=HYPERLINK")


def test_csv_safe_leaves_ordinary_text_alone():
    assert spreadsheet.csv_safe("3 sessions ended") == "3 sessions ended"
    assert spreadsheet.csv_safe("") == ""
    assert spreadsheet.csv_safe("a=b") == "a=b"
    assert spreadsheet.csv_safe("-5") == "'-5"


def test_one_hash_for_rows_made_by_the_orm_and_by_the_scale_seed():
    # The digest of rows already in every database must not change: this value was computed
    # by the hash before it moved into core.audit.chain_digest.
    event = AuditEvent(occurred_at=datetime(2026, 3, 29, 0, 30, 1, 5, tzinfo=UTC), actor_id=7,
                       actor_email="zoë@hms.example", action="invoice.issue", entity_type="invoice", entity_id="12",
                       patient_id=None, ip_address="203.0.113.9", outcome="success",
                       detail="INV-2026-000001 “issued”", prev_hash="", row_hash="")
    expected = "f00ecea56fbd8412c2baa1bee08faf33837795341e4888c2708dfc436a354bc4"
    assert audit.row_digest("a" * 64, event) == expected
    assert audit.chain_digest("a" * 64, "2026-03-29T00:30:01.000005+00:00", 7, "zoë@hms.example", "invoice.issue",
                              "invoice", "12", None, "203.0.113.9", "success", "INV-2026-000001 “issued”") == expected
    assert audit.chain_digest("b" * 64, "2026-03-29T00:30:01.000005+00:00", 7, "zoë@hms.example", "invoice.issue",
                              "invoice", "12", None, "203.0.113.9", "success", "INV-2026-000001 “issued”") != expected

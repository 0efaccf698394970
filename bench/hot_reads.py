"""Hot reads on a hospital-sized database: each page's service call against hand-written SQL.

For each read a page makes often (the patient's dashboard, a doctor's day, the free-slot
search, a long chart, the lab worklist, the pharmacy queue, the accounts dashboard over twelve
months, an audit search) it times, on each database given:

- the service, called as the page's state calls it: its own session (a write session where
  the state asks for one), the actor resolved by ``auth.resolve_session`` from a session
  opened beforehand, the page's arguments;
- the same result fetched by hand-written SQL on a plain connection of the same engine, with
  the encrypted columns the page shows decrypted as the service does;

alternately, ``--runs`` times each after a warm-up (fewer, but at least five, for a read that
would take more than ``--budget`` seconds), and prints the medians, their ratio, the
growth from scale 0.1 to scale 1 and issue 8's targets (at scale 1: at most 20 ms and 1.5 ×
the hand-written SQL; at most 1.5 × the scale-0.1 time). Each pair's results are compared
(ids, totals or sums), and a read whose two answers differ is marked.

The databases are those of ``hms seed --scale N`` (README, "Data at scale"), named
``SCALE=URL``. The seed makes no patient with 1,000 encounters, so before timing the chart this
tops up the patient with the most encounters to ``--chart-encounters`` (default 1,000), the
same way on every database: completed 06:00 visits with the doctor who saw them most, one a day
on the past days the patient has none, each with its encounter (vitals, a diagnosis). It writes
them once (a database that has them already is left alone), opens a session per account it reads
as (a session row, as a login writes it), and the reads that audit (the dashboard, the chart, the
pharmacy queue) append audit rows as they would for a user.

    .venv/bin/python -m bench.hot_reads \\
        --db 0.1=postgresql+psycopg://postgres@127.0.0.1:5432/hms_scale0_1 \\
        --db 1=postgresql+psycopg://postgres@127.0.0.1:5432/hms_scale1 --runs 20
"""

# The hand-written queries build their IN lists from integer ids the database gave: no user text.
# ruff: noqa: S608

from __future__ import annotations

import argparse
import secrets
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.harness import machine_note, table
from hms_app import settings
from hms_app.db import engine as db_engine
from hms_app.db.crypto import cipher
from hms_app.db.enums import AppointmentStatus, EncounterStatus
from hms_app.db.models import Appointment, Encounter
from hms_app.services.accounting import finance
from hms_app.services.accounting.billing import OPEN_STATUSES as OPEN_INVOICES
from hms_app.services.accounting.finance import _AGE_LIMITS
from hms_app.services.administration import audit_trail, auth, users
from hms_app.services.booking import appointments
from hms_app.services.booking.scheduling import open_slots
from hms_app.services.care import clinical
from hms_app.services.core.actor import Actor
from hms_app.services.core.localtime import day_span_utc, local_today
from hms_app.services.core.periods import utc_offset_pieces
from hms_app.services.laboratory import lab
from hms_app.services.laboratory.lab import OPEN_STATUSES as OPEN_LAB
from hms_app.services.medicines import pharmacy
from hms_app.services.medicines.pharmacy import OPEN_STATUSES as OPEN_PRESCRIPTIONS
from hms_app.services.messaging import notifications

IP = "198.51.100.7"
ACCOUNTS = {"patient": "maria.garcia@patients.example", "lab": "lab@hms.example", "pharmacy": "pharmacy@hms.example",
            "accounts": "accounts@hms.example", "admin": "admin@hms.example"}
DEFAULT_DBS = [
    "0.01=sqlite:////tmp/hms-scale/scale0_01.db", "0.1=sqlite:////tmp/hms-scale/scale0_1.db",
    "1=sqlite:////tmp/hms-scale/scale1.db",
    "0.01=postgresql+psycopg://postgres@127.0.0.1:5432/hms_scale0_01",
    "0.1=postgresql+psycopg://postgres@127.0.0.1:5432/hms_scale0_1",
    "1=postgresql+psycopg://postgres@127.0.0.1:5432/hms_scale1",
]
TARGET_MS, TARGET_RATIO, TARGET_GROWTH = 20.0, 1.5, 1.5
MIN_RUNS = 5


@dataclass
class Context:
    """What the reads need to know about one database, found before timing."""

    engine: sa.Engine
    sqlite: bool
    actors: dict[str, Actor] = field(default_factory=dict)
    day: date = date.min
    doctor_id: int = 0
    department_id: int = 0
    chart_patient: int = 0
    chart_mrn: str = ""
    chart_encounters: int = 0
    chart_note: str = ""

    def ts(self, instant: datetime) -> object:
        """A UTC instant as this database compares it: naive text on SQLite (as ``UTCDateTime``
        stores it), an aware datetime on PostgreSQL."""
        instant = instant.astimezone(UTC)
        return instant.strftime("%Y-%m-%d %H:%M:%S.%f") if self.sqlite else instant

    def decrypt(self, token: str | None) -> str:
        return "" if token is None else cipher().decrypt(token.encode()).decode()


# --- the service calls, as the pages' states make them -------------------------------------------


def _service(ctx: Context, role: str, service: Callable[..., Any], *, write: bool, **kwargs: Any) -> Any:
    with db_engine.session_scope(write=write, engine=ctx.engine) as session:
        return service(session=session, actor=ctx.actors[role], **kwargs)


def svc_dashboard(ctx: Context) -> tuple:
    # SessionState.guard counts the bell's unread notifications; ProfileState.load_profile reads the profile.
    unread = _service(ctx, "patient", notifications.unread_count, write=False)
    profile = _service(ctx, "patient", users.get_own_profile, write=True)
    return unread, profile.mrn, profile.phone


def svc_doctor_day(ctx: Context) -> tuple:
    rows = _service(ctx, "doctor", appointments.doctor_schedule, write=False, first_day=ctx.day.isoformat(), days=1)
    return tuple(r.id for r in rows)


def svc_free_slots(ctx: Context) -> tuple:
    slots = _service(ctx, "patient", appointments.free_slots, write=False, department_id=ctx.department_id,
                     doctor_id="any", day=ctx.day.isoformat())
    return tuple((s.starts_at, s.doctors) for s in slots)


def svc_chart(ctx: Context) -> tuple:
    # ChartState: open_chart (header, allergies, problems, vitals), then the timeline's first page.
    chart = _service(ctx, "doctor_of_chart", clinical.open_chart, write=True, patient_id=ctx.chart_patient)
    page = _service(ctx, "doctor_of_chart", clinical.chart_timeline, write=True, patient_id=ctx.chart_patient,
                    page=1, page_size=15)
    return len(chart.allergies), len(chart.problems), len(chart.vitals), page.total, tuple(r.id for r in page.rows)


def svc_worklist(ctx: Context) -> tuple:
    page = _service(ctx, "lab", lab.worklist, write=False, status="", priority="", test_id=None, page=1,
                    page_size=25)
    return page.total, tuple(r.id for r in page.rows)


def svc_pharmacy(ctx: Context) -> tuple:
    page = _service(ctx, "pharmacy", pharmacy.prescription_queue, write=True, show="", search="", page=1,
                    page_size=20)
    return page.total, tuple(r.id for r in page.rows), sum(len(r.items) for r in page.rows)


def _year() -> tuple[str, str]:
    today = local_today()
    return (today - timedelta(days=364)).isoformat(), today.isoformat()


def svc_revenue(ctx: Context) -> tuple:
    start, end = _year()
    s = _service(ctx, "accounts", finance.accounts_summary, write=False, start=start, end=end)
    return (sum(r.billed_cents for r in s.by_month), sum(r.collected_cents for r in s.by_month),
            sum(r.charges for r in s.by_department), s.headline.outstanding_cents, s.headline.overdue_cents,
            sum(p.outstanding_cents for p in s.by_payer))


def svc_audit_patient(ctx: Context) -> tuple:
    page = _service(ctx, "admin", audit_trail.search_audit, write=False, filters=audit_trail.AuditFilter(patient=ctx.chart_mrn),
                    page_size=25)
    return page.has_older, tuple(r.id for r in page.rows)


def svc_audit_open(ctx: Context) -> tuple:
    page = _service(ctx, "admin", audit_trail.search_audit, write=False, filters=audit_trail.AuditFilter(), page_size=25)
    return page.has_older, tuple(r.id for r in page.rows)


# --- the same results by hand-written SQL ----------------------------------------------------------


def _q(conn: sa.Connection, sql: str, **params: Any) -> list[sa.Row]:
    return conn.execute(sa.text(sql), params).all()


def sql_dashboard(ctx: Context, conn: sa.Connection) -> tuple:
    user_id = ctx.actors["patient"].user_id
    unread = _q(conn, "SELECT count(*) FROM notification WHERE user_id = :u AND read_at IS NULL", u=user_id)[0][0]
    row = _q(conn, 'SELECT u.full_name, u.email, p.mrn, p.birth_date, p.sex, p.phone, p.address, '
                   'p.emergency_contact_name, p.emergency_contact_phone, p.insurer, p.policy_number '
                   'FROM "user" u JOIN patient_profile p ON p.user_id = u.id WHERE u.id = :u', u=user_id)[0]
    return unread, row.mrn, row.phone


def sql_doctor_day(ctx: Context, conn: sa.Connection) -> tuple:
    start, end = day_span_utc(ctx.day)
    rows = _q(conn, 'SELECT a.id, a.starts_at, a.ends_at, a.status, a.reason, a.status_reason, a.patient_id, '
                    'p.full_name, pp.mrn, d.full_name, dep.name FROM appointment a '
                    'JOIN "user" p ON p.id = a.patient_id LEFT JOIN patient_profile pp ON pp.user_id = a.patient_id '
                    'JOIN "user" d ON d.id = a.doctor_id JOIN department dep ON dep.id = a.department_id '
                    "WHERE a.doctor_id = :d AND a.starts_at >= :s AND a.starts_at < :e "
                    "AND a.status NOT IN ('cancelled', 'declined') ORDER BY a.starts_at",
              d=ctx.doctor_id, s=ctx.ts(start), e=ctx.ts(end))
    return tuple(r.id for r in rows)


def _aware(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _clock(value: Any) -> clock:
    return clock.fromisoformat(value) if isinstance(value, str) else value


def sql_free_slots(ctx: Context, conn: sa.Connection) -> tuple:
    start, end = day_span_utc(ctx.day)
    hours: dict[int, tuple[int, list]] = {}
    for doctor, minutes, begins, ends in _q(
        conn, "SELECT dp.user_id, dp.slot_minutes, av.start_time, av.end_time FROM doctor_profile dp "
              'JOIN "user" u ON u.id = dp.user_id JOIN doctor_availability av ON av.doctor_id = dp.user_id '
              "WHERE dp.department_id = :dep AND u.is_active AND u.role = 'doctor' AND av.weekday = :wd",
        dep=ctx.department_id, wd=ctx.day.weekday()):
        hours.setdefault(doctor, (minutes, []))[1].append((_clock(begins), _clock(ends)))
    busy: dict[int, list] = {d: [] for d in hours}
    if hours:
        ids = ", ".join(str(d) for d in hours)
        for doctor, begins, ends in _q(
            conn, f"SELECT doctor_id, starts_at, ends_at FROM doctor_leave WHERE doctor_id IN ({ids}) "
                  "AND starts_at < :e AND ends_at > :s UNION ALL "
                  f"SELECT doctor_id, starts_at, ends_at FROM appointment WHERE doctor_id IN ({ids}) "
                  "AND status IN ('requested', 'confirmed') AND starts_at < :e AND ends_at > :s",
            s=ctx.ts(start), e=ctx.ts(end)):
            busy[doctor].append((_aware(begins), _aware(ends)))
    now = datetime.now(UTC)
    by_start: dict[datetime, int] = {}
    for doctor, (minutes, blocks) in hours.items():
        for slot in open_slots(ctx.day, blocks, minutes, busy[doctor]):
            if slot.starts_at > now:
                by_start[slot.starts_at] = by_start.get(slot.starts_at, 0) + 1
    return tuple((s.isoformat(), n) for s, n in sorted(by_start.items()))


def sql_chart(ctx: Context, conn: sa.Connection) -> tuple:
    patient = ctx.chart_patient
    _q(conn, 'SELECT u.full_name, p.* FROM patient_profile p JOIN "user" u ON u.id = p.user_id WHERE p.user_id = :p',
       p=patient)
    allergies = [(r.id, ctx.decrypt(r.substance), ctx.decrypt(r.reaction)) for r in _q(
        conn, "SELECT id, substance, reaction, severity, status, recorded_at FROM allergy WHERE patient_id = :p "
              "ORDER BY status, recorded_at DESC", p=patient)]
    problems = [(r.id, ctx.decrypt(r.description), ctx.decrypt(r.icd10_code)) for r in _q(
        conn, "SELECT id, description, icd10_code, status, recorded_at FROM problem WHERE patient_id = :p "
              "ORDER BY status, recorded_at DESC", p=patient)]
    vitals = _q(conn, "SELECT started_at, bp_systolic, bp_diastolic, pulse, temperature_c, weight_kg, spo2 "
                      "FROM encounter WHERE patient_id = :p AND (bp_systolic IS NOT NULL OR pulse IS NOT NULL "
                      "OR weight_kg IS NOT NULL OR temperature_c IS NOT NULL OR spo2 IS NOT NULL) "
                      "ORDER BY started_at DESC LIMIT 30", p=patient)
    timeline = ("SELECT 'encounter' AS kind, id, started_at AS at FROM encounter WHERE patient_id = :p UNION ALL "
                "SELECT 'prescription', id, created_at FROM prescription WHERE patient_id = :p UNION ALL "
                "SELECT 'lab', id, ordered_at FROM lab_order WHERE patient_id = :p UNION ALL "
                "SELECT 'document', id, created_at FROM document WHERE patient_id = :p")
    total = _q(conn, f"SELECT count(*) FROM ({timeline}) t", p=patient)[0][0]
    # The first page: each kind's 15 latest off its (patient, time) index, merged.
    latest = " UNION ALL ".join(
        f"SELECT * FROM (SELECT '{kind}' AS kind, id, {at} AS at FROM {table} WHERE patient_id = :p "
        f"ORDER BY {at} DESC, id DESC LIMIT 15)" + ("" if ctx.sqlite else f" {kind}")
        for kind, table, at in (("encounter", "encounter", "started_at"), ("prescription", "prescription", "created_at"),
                                ("lab", "lab_order", "ordered_at"), ("document", "document", "created_at")))
    keys = _q(conn, f"SELECT kind, id FROM ({latest}) t ORDER BY at DESC, id DESC LIMIT 15", p=patient)
    wanted: dict[str, list[int]] = {}
    for kind, id_ in keys:
        wanted.setdefault(kind, []).append(id_)
    if ids := wanted.get("encounter"):
        for r in _q(conn, 'SELECT e.id, e.icd10_code, e.diagnosis, e.assessment, u.full_name FROM encounter e '
                          f'JOIN "user" u ON u.id = e.doctor_id WHERE e.id IN ({", ".join(map(str, ids))})'):
            ctx.decrypt(r.icd10_code), ctx.decrypt(r.diagnosis), ctx.decrypt(r.assessment)
    if ids := wanted.get("prescription"):
        listed = ", ".join(map(str, ids))
        _q(conn, "SELECT i.prescription_id, m.name, m.strength, i.dose, i.frequency, i.days FROM prescription_item i "
                 f"JOIN medicine m ON m.id = i.medicine_id WHERE i.prescription_id IN ({listed})")
        _q(conn, f"SELECT id, created_at, status FROM prescription WHERE id IN ({listed})")
    if ids := wanted.get("lab"):
        _q(conn, "SELECT o.id, o.ordered_at, o.priority, o.status, t.name FROM lab_order o "
                 f"JOIN lab_test t ON t.id = o.test_id WHERE o.id IN ({', '.join(map(str, ids))})")
    if ids := wanted.get("document"):
        _q(conn, f"SELECT id, created_at, title, file_name FROM document WHERE id IN ({', '.join(map(str, ids))})")
    return len(allergies), len(problems), len(vitals), total, tuple(id_ for _, id_ in keys)


def sql_worklist(ctx: Context, conn: sa.Connection) -> tuple:
    where = "WHERE o.status IN ('requested', 'collected', 'in_progress')"
    assert sorted(OPEN_LAB) == ["collected", "in_progress", "requested"]
    joins = ('FROM lab_order o JOIN lab_test t ON t.id = o.test_id JOIN "user" p ON p.id = o.patient_id '
             'JOIN patient_profile pp ON pp.user_id = o.patient_id JOIN "user" d ON d.id = o.doctor_id '
             "LEFT JOIN lab_report_file f ON f.order_id = o.id ")
    order = "CASE o.priority WHEN 'stat' THEN 0 WHEN 'urgent' THEN 1 ELSE 2 END, o.ordered_at, o.id"
    total = _q(conn, f"SELECT count(*) FROM lab_order o {where}")[0][0]
    # The page's 25 orders first, from the orders alone; then only they are joined.
    rows = _q(conn, "SELECT o.id, o.priority, o.status, o.note, o.ordered_at, t.name, t.code, t.specimen, t.unit, "
                    "t.numeric, p.full_name, pp.mrn, pp.birth_date, pp.sex, d.full_name, f.id IS NOT NULL "
                    f"{joins}WHERE o.id IN (SELECT o.id FROM lab_order o {where} ORDER BY {order} LIMIT 25) "
                    f"ORDER BY {order}")
    for r in rows:
        ctx.decrypt(r.note)
    return total, tuple(r.id for r in rows)


def sql_pharmacy(ctx: Context, conn: sa.Connection) -> tuple:
    assert sorted(OPEN_PRESCRIPTIONS) == ["issued", "partly_dispensed", "verified"]
    where = "WHERE r.status IN ('issued', 'verified', 'partly_dispensed')"
    total = _q(conn, f"SELECT count(*) FROM prescription r {where}")[0][0]
    # One ordered walk of the (status, created_at) index per open status, merged: no sort of them all.
    walks = " UNION ALL ".join(
        f"SELECT * FROM (SELECT id, created_at FROM prescription WHERE status = '{status}' "
        "ORDER BY created_at, id LIMIT 20)" + ("" if ctx.sqlite else f" {status}")
        for status in ("issued", "verified", "partly_dispensed"))
    rows = _q(conn, "SELECT r.id, r.created_at, r.status, r.status_reason, p.full_name, pp.mrn, d.full_name "
                    f"FROM (SELECT id FROM ({walks}) w ORDER BY created_at, id LIMIT 20) page "
                    'JOIN prescription r ON r.id = page.id JOIN "user" p ON p.id = r.patient_id '
                    'JOIN patient_profile pp ON pp.user_id = r.patient_id JOIN "user" d ON d.id = r.doctor_id '
                    "ORDER BY r.created_at, r.id")
    items = 0
    if rows:
        for r in _q(conn, "SELECT i.*, m.name, m.strength, m.form FROM prescription_item i "
                          "JOIN medicine m ON m.id = i.medicine_id "
                          f"WHERE i.prescription_id IN ({', '.join(str(r.id) for r in rows)}) ORDER BY i.id"):
            ctx.decrypt(r.warnings), ctx.decrypt(r.override_reason)
            items += 1
    return total, tuple(r.id for r in rows), items


def _local(ctx: Context, column: str, first: date, last: date) -> str:
    """The local day of a UTC timestamp column, as text (the month is its first seven characters)."""
    if not ctx.sqlite:
        return f"to_char(timezone('{settings.TIMEZONE.key}', {column}), 'YYYY-MM-DD')"
    starts_at, _ = day_span_utc(first)
    _, ends_at = day_span_utc(last)
    pieces = utc_offset_pieces(starts_at, ends_at)
    shifts = [f"'{offset:+d} seconds'" for _, offset in pieces]
    if len(pieces) == 1:
        return f"strftime('%Y-%m-%d', {column}, {shifts[0]})"
    cases = " ".join(f"WHEN {column} < '{ctx.ts(since)}' THEN {shift}"
                     for (since, _), shift in zip(pieces[1:], shifts, strict=False))
    return f"strftime('%Y-%m-%d', {column}, CASE {cases} ELSE {shifts[-1]} END)"


def sql_revenue(ctx: Context, conn: sa.Connection) -> tuple:
    first, last = (date.fromisoformat(d) for d in _year())
    starts_at, _ = day_span_utc(first)
    _, ends_at = day_span_utc(last)
    # One pass over the year's lines: per local day, department and kind (the months are the days' prefixes).
    lines = _q(conn, f"SELECT {_local(ctx, 'l.service_at', first, last)} AS day, l.department_id, l.kind, "
                     "count(*) AS n, sum(l.amount_cents) AS cents FROM invoice_line l "
                     "JOIN invoice i ON i.id = l.invoice_id WHERE i.status <> 'void' "
                     "AND l.service_at >= :s AND l.service_at < :e GROUP BY 1, 2, 3",
               s=ctx.ts(starts_at), e=ctx.ts(ends_at))
    paid = _q(conn, f"SELECT {_local(ctx, 'received_at', first, last)} AS day, method, count(*), "
                    "sum(CASE WHEN amount_cents > 0 THEN amount_cents ELSE 0 END), "
                    "sum(CASE WHEN amount_cents < 0 THEN -amount_cents ELSE 0 END), sum(amount_cents) AS cents "
                    "FROM payment WHERE received_at >= :s AND received_at < :e GROUP BY 1, 2",
              s=ctx.ts(starts_at), e=ctx.ts(ends_at))
    today = local_today()
    edges = [ctx.ts(day_span_utc(today - timedelta(days=days))[0]) for days in _AGE_LIMITS]
    assert OPEN_INVOICES == ("issued", "partly_paid")
    due_today = today.isoformat() if ctx.sqlite else today
    open_rows = _q(conn, """
        WITH ins AS (SELECT invoice_id, sum(amount_cents) AS paid FROM payment WHERE method = 'insurance'
                     GROUP BY invoice_id),
        parts AS (
          SELECT CASE WHEN i.issued_at >= :e0 THEN 0 WHEN i.issued_at >= :e1 THEN 1 WHEN i.issued_at >= :e2 THEN 2
                      ELSE 3 END AS bucket,
                 i.insurer, i.total_cents - i.paid_cents AS balance,
                 CASE WHEN i.due_date < :today THEN i.total_cents - i.paid_cents ELSE 0 END AS overdue,
                 CASE WHEN i.claim_status = 'rejected' THEN 0
                      ELSE i.insurer_share_cents - coalesce(ins.paid, 0) END AS expected
          FROM invoice i LEFT JOIN ins ON ins.invoice_id = i.id WHERE i.status IN ('issued', 'partly_paid')),
        split AS (
          SELECT bucket, insurer, balance, overdue,
                 CASE WHEN expected <= 0 THEN 0 WHEN expected > balance THEN balance ELSE expected END AS insurer_part
          FROM parts)
        SELECT bucket, insurer, count(*), sum(balance), sum(overdue),
               sum(CASE WHEN insurer_part > 0 THEN insurer_part ELSE 0 END),
               sum(CASE WHEN balance - insurer_part > 0 THEN balance - insurer_part ELSE 0 END)
        FROM split GROUP BY bucket, insurer""", e0=edges[0], e1=edges[1], e2=edges[2], today=due_today)
    outstanding = sum(int(r[3] or 0) for r in open_rows)
    overdue = sum(int(r[4] or 0) for r in open_rows)
    by_payer = sum(int(r[5] or 0) + int(r[6] or 0) for r in open_rows)
    return (sum(int(r.cents) for r in lines), sum(int(r.cents or 0) for r in paid), sum(int(r.n) for r in lines),
            outstanding, overdue, by_payer)


def sql_audit_patient(ctx: Context, conn: sa.Connection) -> tuple:
    patient = _q(conn, "SELECT user_id FROM patient_profile WHERE mrn = :mrn", mrn=ctx.chart_mrn)[0][0]
    rows = _q(conn, "SELECT * FROM audit_event WHERE patient_id = :p ORDER BY id DESC LIMIT 26", p=patient)
    return len(rows) > 25, tuple(r.id for r in rows[:25])


def sql_audit_open(ctx: Context, conn: sa.Connection) -> tuple:
    rows = _q(conn, "SELECT * FROM audit_event ORDER BY id DESC LIMIT 26")
    return len(rows) > 25, tuple(r.id for r in rows[:25])


@dataclass(frozen=True)
class Read:
    name: str
    service: Callable[[Context], tuple]
    sql: Callable[[Context, sa.Connection], tuple]
    growing: bool = False
    """Whether what it reads grows while the benchmark runs (the audit trail, which the other reads
    append to): its two answers are then compared by their rows, allowing one row of drift."""


READS = [
    Read("patient dashboard (unread count + own profile)", svc_dashboard, sql_dashboard),
    Read("a doctor's day", svc_doctor_day, sql_doctor_day),
    Read("free-slot search, any doctor of a department", svc_free_slots, sql_free_slots),
    Read("chart of a patient with 1,000 encounters (header + timeline page)", svc_chart, sql_chart),
    Read("lab worklist (open orders, first page)", svc_worklist, sql_worklist),
    Read("pharmacy queue (open prescriptions, first page)", svc_pharmacy, sql_pharmacy),
    Read("accounts dashboard, 12 months of revenue", svc_revenue, sql_revenue),
    Read("audit search: one patient's trail (by MRN)", svc_audit_patient, sql_audit_patient, growing=True),
    Read("audit trail opened, no filter", svc_audit_open, sql_audit_open, growing=True),
]


# --- finding the subjects and the actors -------------------------------------------------------------


def _actor(ctx: Context, email: str) -> Actor:
    """The account's actor as a page resolves it: from a session token, by ``auth.resolve_session``.

    The session row is written directly, as a login writes it, so the benchmark needs no
    password check (nor any second factor) to get there.
    """
    token = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    with ctx.engine.begin() as conn:
        user_id = conn.execute(sa.text('SELECT id FROM "user" WHERE email = :e'), {"e": email}).scalar_one()
        conn.execute(sa.text("INSERT INTO auth_session (user_id, token_hash, created_at, last_seen_at, expires_at, "
                             "ip_address) VALUES (:u, :h, :now, :now, :until, :ip)"),
                     {"u": user_id, "h": auth.hash_token(token), "now": ctx.ts(now),
                      "until": ctx.ts(now + timedelta(hours=8)), "ip": IP})
    with db_engine.session_scope(engine=ctx.engine) as session:
        return auth.resolve_session(session=session, token=token, ip_address=IP)


def add_visit(session: Any, patient_id: int, doctor_id: int, department_id: int, starts: datetime,
              status: AppointmentStatus, reason: str) -> Appointment:
    """A 15-minute appointment written as it stands (no booking rules), with its id."""
    visit = Appointment(patient_id=patient_id, doctor_id=doctor_id, department_id=department_id, starts_at=starts,
                        ends_at=starts + timedelta(minutes=15), status=status, reason=reason, created_at=starts,
                        updated_at=starts)
    session.add(visit)
    session.flush()
    return visit


def top_up_chart(ctx: Context, patient_id: int, doctor_id: int, department_id: int, wanted: int) -> int:
    """Completed 06:00 visits with their encounters until the patient has ``wanted`` encounters."""
    with db_engine.session_scope(engine=ctx.engine) as session:
        have = session.execute(sa.select(sa.func.count()).select_from(Encounter)
                               .where(Encounter.patient_id == patient_id)).scalar_one()
        booked = {_aware(s).astimezone(settings.TIMEZONE).date() for s in session.execute(
            sa.select(Appointment.starts_at).where(Appointment.patient_id == patient_id)).scalars()}
        day, added = local_today() - timedelta(days=1), 0
        while have + added < wanted:
            if day not in booked:
                starts = datetime.combine(day, clock(6, 0), tzinfo=settings.TIMEZONE).astimezone(UTC)
                visit = add_visit(session, patient_id, doctor_id, department_id, starts, AppointmentStatus.COMPLETED,
                                  "Review (hot-reads benchmark)")
                session.add(Encounter(appointment_id=visit.id, patient_id=patient_id, doctor_id=doctor_id,
                                      assessment="Stable.", diagnosis="Essential hypertension", icd10_code="I10",
                                      bp_systolic=120 + added % 25, bp_diastolic=80, pulse=60 + added % 30,
                                      status=EncounterStatus.COMPLETED, started_at=starts,
                                      completed_at=starts + timedelta(minutes=15)))
                added += 1
            day -= timedelta(days=1)
        session.commit()
    return added


def prepare(url: str, chart_encounters: int) -> Context:
    engine = db_engine.create_engine(url)
    db_engine.use_engine(engine)
    ctx = Context(engine, engine.dialect.name == "sqlite")
    with engine.connect() as conn:
        # A doctor's day: the next day with appointments, the doctor with the most that day.
        for ahead in range(1, 15):
            day = local_today() + timedelta(days=ahead)
            start, end = day_span_utc(day)
            row = conn.execute(sa.text(
                "SELECT doctor_id, department_id, count(*) FROM appointment WHERE starts_at >= :s AND starts_at < :e "
                "AND status NOT IN ('cancelled', 'declined') GROUP BY doctor_id, department_id "
                "ORDER BY 3 DESC, 1 LIMIT 1"), {"s": ctx.ts(start), "e": ctx.ts(end)}).first()
            if row:
                ctx.day, ctx.doctor_id, ctx.department_id = day, row[0], row[1]
                break
        patient, have = conn.execute(sa.text(
            "SELECT patient_id, count(*) FROM encounter GROUP BY patient_id ORDER BY 2 DESC, 1 LIMIT 1")).one()
        chart_doctor, chart_department = conn.execute(sa.text(
            "SELECT doctor_id, department_id FROM appointment WHERE patient_id = :p AND status = 'completed' "
            "GROUP BY doctor_id, department_id ORDER BY count(*) DESC, 1 LIMIT 1"), {"p": patient}).one()
        emails = dict(conn.execute(sa.text('SELECT id, email FROM "user" WHERE id IN (:a, :b)'),
                                   {"a": ctx.doctor_id, "b": chart_doctor}).all())
    ctx.chart_patient = patient
    if have < chart_encounters:
        added = top_up_chart(ctx, patient, chart_doctor, chart_department, chart_encounters)
        ctx.chart_note = f"the seed's busiest chart had {have} encounters; {added} added"
    with engine.connect() as conn:
        ctx.chart_encounters = conn.execute(sa.text("SELECT count(*) FROM encounter WHERE patient_id = :p"),
                                            {"p": patient}).scalar_one()
        ctx.chart_mrn = conn.execute(sa.text("SELECT mrn FROM patient_profile WHERE user_id = :p"),
                                     {"p": patient}).scalar_one()
    if not ctx.chart_note:
        ctx.chart_note = f"patient {patient}: {ctx.chart_encounters} encounters"
    for role, email in ACCOUNTS.items():
        ctx.actors[role] = _actor(ctx, email)
    ctx.actors["doctor"] = _actor(ctx, emails[ctx.doctor_id])
    ctx.actors["doctor_of_chart"] = _actor(ctx, emails[chart_doctor])
    return ctx


# --- timing ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    read: str
    dialect: str
    scale: str
    service_ms: float
    sql_ms: float
    same: bool

    @property
    def ratio(self) -> float:
        return self.service_ms / self.sql_ms if self.sql_ms else float("nan")


def _same(read: Read, a: tuple, b: tuple) -> bool:
    if read.growing:
        return a[1] == b[1] or a[1][1:] == b[1][:-1] or a[1][:-1] == b[1][1:]
    return a == b


def measure(scale: str, url: str, runs: int, budget: float, chart_encounters: int, only: set[str],
            ) -> tuple[Context, list[Figure]]:
    ctx = prepare(url, chart_encounters)
    figures = []
    for read in READS:
        if only and not any(word in read.name for word in only):
            continue
        for _ in range(2):  # warm-up: the pool, the statement caches, the database's pages
            service_answer = read.service(ctx)
            with ctx.engine.connect() as conn:
                sql_answer = read.sql(ctx, conn)
        service_times, sql_times = [], []
        deadline = time.monotonic() + budget
        while len(service_times) < runs and (len(service_times) < MIN_RUNS or time.monotonic() < deadline):
            started = time.perf_counter()
            read.service(ctx)
            service_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            with ctx.engine.connect() as conn:
                read.sql(ctx, conn)
            sql_times.append(time.perf_counter() - started)
        figures.append(Figure(read.name, ctx.engine.dialect.name, scale, 1000 * statistics.median(service_times),
                              1000 * statistics.median(sql_times), _same(read, service_answer, sql_answer)))
        if not figures[-1].same:
            print(f"  ! {read.name} on {scale} {ctx.engine.dialect.name}: service {service_answer!r:.300} "
                  f"vs SQL {sql_answer!r:.300}")
        print(f"  {scale:>5} {ctx.engine.dialect.name:<10} {read.name}: service {figures[-1].service_ms:.1f} ms, "
              f"SQL {figures[-1].sql_ms:.1f} ms", flush=True)
    return ctx, figures


def report(figures: list[Figure], notes: list[str]) -> str:
    rows = []
    for f in figures:
        rows.append((f.read, "SQLite" if f.dialect == "sqlite" else "PostgreSQL", f.scale, f"{f.service_ms:.1f}",
                     f"{f.sql_ms:.1f}", f"{f.ratio:.2f}" + ("" if f.same else " (answers differ)")))
    out = [table(("read", "database", "scale", "service ms (median)", "hand SQL ms (median)", "ratio"), rows)]
    by_key = {(f.read, f.dialect, f.scale): f for f in figures}
    growth_rows = []
    for f in figures:
        if f.scale not in ("1", "1.0"):
            continue
        small = by_key.get((f.read, f.dialect, "0.1"))
        growth = f.service_ms / small.service_ms if small else float("nan")
        met = [f.service_ms <= TARGET_MS, f.ratio <= TARGET_RATIO] + ([growth <= TARGET_GROWTH] if small else [])
        growth_rows.append((f.read, "SQLite" if f.dialect == "sqlite" else "PostgreSQL", f"{f.service_ms:.1f}",
                            f"{f.ratio:.2f}", f"{growth:.2f}" if small else "—",
                            "met" if all(met) else "not met"))
    if growth_rows:
        out.append("\nIssue 8's targets at scale 1 (≤ 20 ms, ≤ 1.5 × hand SQL, ≤ 1.5 × growth from 0.1):\n")
        out.append(table(("read", "database", "service ms", "× hand SQL", "growth 0.1 → 1", "targets"), growth_rows))
    out.append("")
    out.extend(f"- {note}" for note in notes)
    return "\n".join(out)


def _exists(url: str) -> bool:
    """Whether the scale database is there (only the default list is checked: a database named
    on the command line must exist)."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return bool(parsed.database) and Path(parsed.database).is_file()
    try:
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        with engine.connect():
            return True
    except sa.exc.OperationalError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", action="append", metavar="SCALE=URL",
                        help="a scale database; repeat for several (default: those of 0.01, 0.1 and 1 that exist, as "
                             "SQLite files /tmp/hms-scale/scaleN.db and PostgreSQL databases hms_scaleN, "
                             "with _ for the point)")
    parser.add_argument("--runs", type=int, default=20, help="timed calls of each read (after two warm-up calls)")
    parser.add_argument("--budget", type=float, default=60,
                        help=f"seconds a read may take before it stops short of --runs (at least {MIN_RUNS} runs)")
    parser.add_argument("--chart-encounters", type=int, default=1000,
                        help="top up the busiest chart to this many encounters before timing")
    parser.add_argument("--only", action="append", default=[], help="time only reads whose name contains this")
    args = parser.parse_args()
    figures, notes = [], []
    for spec in args.db or DEFAULT_DBS:
        scale, _, url = spec.partition("=")
        if not url:
            parser.error(f"--db wants SCALE=URL, not {spec!r}")
        if not args.db and not _exists(url):
            notes.append(f"scale {scale}: no database at {url} (README, 'Data at scale', makes it); skipped")
            continue
        ctx, found = measure(scale, url, args.runs, args.budget, args.chart_encounters, set(args.only))
        figures += found
        notes.append(f"scale {scale}, {ctx.engine.dialect.name}: doctor's day {ctx.day} (doctor {ctx.doctor_id}, "
                     f"department {ctx.department_id}); chart: {ctx.chart_note}")
        ctx.engine.dispose()
    notes.append(machine_note())
    print()
    print(report(figures, notes))


if __name__ == "__main__":
    main()

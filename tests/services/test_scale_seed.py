"""The hospital at scale (``hms seed --scale``), loaded at a small scale: its counts follow the
spec, every rule of the services holds in the generated rows, and the same seed gives the same
hospital."""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from hms_app import cli, settings
from hms_app.db import engine as db_engine
from hms_app.db.engine import session_scope
from hms_app.db.enums import Role
from hms_app.db.models import Department, Encounter, LabTest, SQLModel
from hms_app.operations import demo, scale_seed
from hms_app.services.accounting.totals import totals_mismatches
from hms_app.services.core import audit, counters
from hms_app.services.core.errors import Conflict
from hms_app.services.laboratory import lab
from hms_app.services.medicines.inventory import ledger_mismatches
from hms_app.services.reference.icd10 import ICD10
from tests.conftest import DEMO_EMAIL, POSTGRES_URL, _pg_admin_engine, login_as

pytestmark = pytest.mark.db

SCALE = 0.002
NOW = datetime.now(UTC).replace(second=0, microsecond=0)
"""The end of the generated history, the same for every load of this module (determinism)."""
FINGERPRINTS: dict[sa.URL, str] = {}
"""``_fingerprint`` of the shared hospital, taken as soon as it was loaded."""


@contextlib.contextmanager
def _fresh_database(template: str, folder: Path) -> Iterator[sa.Engine]:
    """A migrated, empty database of its own, as ``tests.conftest.database_url`` makes them."""
    name = f"hms_test_{uuid.uuid4().hex[:12]}"
    if POSTGRES_URL:
        admin = _pg_admin_engine()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        url = sa.make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    else:
        path = folder / f"{name}.db"
        shutil.copyfile(template, path)
        url = f"sqlite:///{path}"
    engine = db_engine.create_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()
        if POSTGRES_URL:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.dispose()


@pytest.fixture(scope="module")
def template(_template: str) -> str:
    """The migrated, empty database that ``tests.conftest`` copies for each test."""
    return _template


@pytest.fixture(scope="module")
def loaded(template: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[sa.Engine, scale_seed.ScaleReport]]:
    """One hospital at ``SCALE``, shared by the tests below (which add at most a few logins)."""
    with _fresh_database(template, tmp_path_factory.mktemp("scale")) as engine:
        db_engine.use_engine(engine)
        report = scale_seed.seed_scale(engine, scale=SCALE, now=NOW)
        FINGERPRINTS[engine.url] = _fingerprint(engine)
        yield engine, report
        db_engine.use_engine(None)


def _utc(value: datetime | str) -> datetime:
    """A timestamp as read with plain SQL: aware on PostgreSQL, naive UTC text on SQLite."""
    value = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _scalar(engine: sa.Engine, sql: str) -> object:
    with engine.connect() as conn:
        return conn.execute(sa.text(sql)).scalar_one()


def _rows(engine: sa.Engine, sql: str) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(sa.text(sql))]


def test_the_columns_written_are_the_tables_columns():
    for table, columns in scale_seed.COLUMNS.items():
        assert set(columns) == set(SQLModel.metadata.tables[table].columns.keys()), table


def test_counts_follow_the_spec(loaded):
    engine, report = loaded
    spec = scale_seed.expected_rows(SCALE)
    demo_patients, demo_appointments = len(demo.PATIENT_NAMES), 7
    assert report.rows["patient_profile"] == spec["patients"] == 200
    assert _scalar(engine, "SELECT count(*) FROM patient_profile") == spec["patients"] + demo_patients
    assert report.rows["appointment"] == spec["appointments"] == 2000
    assert _scalar(engine, "SELECT count(*) FROM appointment") == spec["appointments"] + demo_appointments
    assert report.rows["lab_order"] == _scalar(engine, "SELECT count(*) FROM lab_order") == spec["lab_orders"]
    assert report.rows["audit_event"] == spec["audit_events"]
    assert _scalar(engine, "SELECT count(*) FROM audit_event") == spec["audit_events"] + 1  # the demo's row
    assert report.rows["invoice_line"] == pytest.approx(spec["invoice_lines"], rel=0.03)
    # Deliveries and write-offs weigh more in a tiny pharmacy; within a few per cent from scale 0.1.
    assert spec["stock_movements"] * 0.9 <= report.rows["stock_movement"] <= spec["stock_movements"] * 1.5
    assert report.rows["lab_result"] >= 0.95 * spec["lab_orders"]
    completed = _scalar(engine, "SELECT count(*) FROM appointment WHERE status = 'completed'")
    assert 0.5 * spec["appointments"] < completed < 0.65 * spec["appointments"]
    assert report.peak_rss_mb > 0


def test_appointments_spread_over_five_years_with_statuses_by_date(loaded):
    engine, _report = loaded
    rows = _rows(engine, "SELECT starts_at, status FROM appointment")
    starts = [_utc(value) for value, _ in rows]
    assert (NOW - min(starts)).days >= 5 * 365 - 31
    assert 0 < (max(starts) - NOW).days <= scale_seed.BOOKING_HORIZON_DAYS
    generated = [(s, status) for s, (_, status) in zip(starts, rows, strict=True)]
    future = {status for s, status in generated if s > NOW + timedelta(days=21)}
    assert future <= {"requested", "confirmed", "cancelled"}
    past = {status for s, status in generated if s < NOW - timedelta(days=21)}
    assert past == {"completed", "cancelled", "declined", "no_show"}
    assert _scalar(engine, "SELECT count(*) FROM appointment a JOIN \"user\" u ON u.id = a.patient_id WHERE a.id > 7 "
                           "AND (a.created_at < u.created_at OR a.created_at >= a.starts_at "
                           "OR a.updated_at < a.created_at)") == 0
    assert _scalar(engine, "SELECT count(*) FROM lab_order o JOIN lab_result r ON r.order_id = o.id "
                           "WHERE NOT (o.ordered_at < o.collected_at AND o.collected_at < o.started_at "
                           "AND o.started_at < r.resulted_at)") == 0


def test_no_active_appointments_overlap_for_a_doctor_or_a_patient(loaded):
    engine, _report = loaded
    overlap = ("SELECT count(*) FROM appointment a JOIN appointment b ON a.{who}_id = b.{who}_id AND a.id < b.id "
               "AND a.starts_at < b.ends_at AND b.starts_at < a.ends_at {active}")
    active = "WHERE a.status IN ('requested', 'confirmed') AND b.status IN ('requested', 'confirmed')"
    for who in ("doctor", "patient"):
        assert _scalar(engine, overlap.format(who=who, active=active)) == 0, who
        assert _scalar(engine, overlap.format(who=who, active="")) == 0, f"{who}, any status"


def test_every_completed_visit_has_its_encounter_and_charge(loaded):
    engine, _report = loaded
    assert _scalar(engine, "SELECT count(*) FROM appointment a LEFT JOIN encounter e ON e.appointment_id = a.id "
                           "WHERE a.status = 'completed' AND e.id IS NULL AND a.id > 7") == 0
    assert _scalar(engine, "SELECT count(*) FROM encounter e JOIN appointment a ON a.id = e.appointment_id "
                           "WHERE a.status <> 'completed'") == 0
    assert _scalar(engine, "SELECT count(*) FROM appointment a LEFT JOIN invoice_line l ON l.source_type = "
                           "'appointment' AND l.source_id = a.id WHERE a.status = 'completed' AND a.id > 7 "
                           "AND l.id IS NULL") == 0
    with session_scope(engine=engine, write=False) as session:
        encounter = session.execute(sa.select(Encounter).order_by(Encounter.id.desc()).limit(1)).scalar_one()
        assert encounter.diagnosis == ICD10[encounter.icd10_code]  # the encrypted pool decrypts


def test_dispensing_matches_the_prescriptions_and_the_ledger(loaded):
    engine, _report = loaded
    with session_scope(engine=engine, write=False) as session:
        assert ledger_mismatches(session) == []
    assert _scalar(engine, "SELECT count(*) FROM stock_batch WHERE quantity_on_hand < 0") == 0
    # In time order, no lot's running balance ever went below zero.
    assert _scalar(engine, "SELECT coalesce(min(balance), 0) FROM (SELECT sum(quantity) OVER (PARTITION BY batch_id "
                           "ORDER BY created_at, id) AS balance FROM stock_movement) AS ledger") >= 0
    assert _scalar(engine, "SELECT count(*) FROM prescription_item i WHERE dispensed_quantity <> (SELECT "
                           "coalesce(sum(quantity), 0) FROM dispensation d WHERE d.prescription_item_id = i.id)") == 0
    for expiry, dispensed in _rows(engine, "SELECT b.expiry_date, d.dispensed_at FROM dispensation d "
                                           "JOIN stock_batch b ON b.id = d.batch_id"):
        expiry = expiry if isinstance(expiry, date) else date.fromisoformat(expiry)
        dispensed = _utc(dispensed)
        assert expiry > dispensed.astimezone(settings.TIMEZONE).date(), "dispensed from an expired lot"
    assert _scalar(engine, "SELECT count(*) FROM dispensation d LEFT JOIN invoice_line l ON l.source_type = "
                           "'dispensation' AND l.source_id = d.id WHERE l.id IS NULL") == 0


def test_invoices_add_up(loaded):
    engine, _report = loaded
    assert _scalar(engine, "SELECT count(*) FROM invoice i WHERE subtotal_cents <> (SELECT coalesce(sum(amount_cents), "
                           "0) FROM invoice_line l WHERE l.invoice_id = i.id)") == 0
    assert _scalar(engine, "SELECT count(*) FROM invoice_line WHERE amount_cents <> quantity * unit_price_cents") == 0
    assert _scalar(engine, "SELECT count(*) FROM invoice i WHERE paid_cents <> (SELECT coalesce(sum(amount_cents), 0) "
                           "FROM payment p WHERE p.invoice_id = i.id)") == 0
    assert _scalar(engine, "SELECT count(*) FROM invoice WHERE total_cents <> subtotal_cents - discount_cents "
                           "OR paid_cents > total_cents") == 0
    wrong_status = ("SELECT count(*) FROM invoice WHERE (status = 'paid' AND paid_cents < total_cents) "
                    "OR (status = 'partly_paid' AND (paid_cents = 0 OR paid_cents >= total_cents)) "
                    "OR (status IN ('issued', 'void', 'draft') AND paid_cents <> 0) "
                    "OR ((status = 'draft') <> (number IS NULL))")
    assert _scalar(engine, wrong_status) == 0
    statuses = dict(_rows(engine, "SELECT status, count(*) FROM invoice GROUP BY status"))
    assert statuses["paid"] > statuses.get("issued", 0) + statuses.get("partly_paid", 0)
    assert _scalar(engine, "SELECT count(*) FROM (SELECT patient_id FROM invoice WHERE status = 'draft' "
                           "GROUP BY patient_id HAVING count(*) > 1) AS drafts") == 0
    assert _scalar(engine, "SELECT count(*) FROM payment WHERE method = 'insurance' AND invoice_id IN "
                           "(SELECT id FROM invoice WHERE insurer = '')") == 0


def test_the_daily_totals_count_what_the_load_wrote(loaded):
    # The load writes lines and payments without the services: it recounts the dashboard's totals at its end.
    engine, _report = loaded
    with session_scope(write=False, engine=engine) as session:
        assert totals_mismatches(session) == []
    assert _scalar(engine, "SELECT sum(charges) FROM daily_billed") == _scalar(
        engine, "SELECT count(*) FROM invoice_line l JOIN invoice i ON i.id = l.invoice_id WHERE i.status <> 'void'")
    assert _scalar(engine, "SELECT sum(payments) FROM daily_collected") == _scalar(engine, "SELECT count(*) FROM payment")


def test_lab_results_carry_the_flags_the_lab_service_computes(loaded):
    engine, _report = loaded
    with session_scope(engine=engine, write=False) as session:
        tests = {t.id: t for t in session.execute(sa.select(LabTest)).scalars()}
        results = session.execute(sa.text(
            "SELECT o.test_id, r.value_numeric, r.flag, r.range_low, r.range_high, p.sex, p.birth_date, r.resulted_at "
            "FROM lab_result r JOIN lab_order o ON o.id = r.order_id JOIN patient_profile p ON p.user_id = o.patient_id"
        )).all()
        assert len(results) > 0.95 * scale_seed.expected_rows(SCALE)["lab_orders"]
        flags = set()
        for test_id, value, flag, low, high, sex, born, resulted in results:
            test = tests[test_id]
            if not test.numeric:
                assert value is None
                assert flag == ""
                continue
            born = born if isinstance(born, date) else date.fromisoformat(born)
            reference = lab.reference_range(test, sex, born, _utc(resulted).astimezone(settings.TIMEZONE).date())
            assert (low, high) == (reference or (None, None))
            assert flag == lab.compute_flag(value, reference, test.critical_low, test.critical_high)
            flags.add(flag)
        assert {"normal", "high", "low"} <= flags


def test_the_audit_chain_verifies(loaded):
    engine, _report = loaded
    with session_scope(engine=engine, write=False) as session:
        report = audit.verify_chain(session)
    assert report.ok, report
    assert report.rows_checked == scale_seed.expected_rows(SCALE)["audit_events"] + 1
    times = [row[0] for row in _rows(engine, "SELECT occurred_at FROM audit_event WHERE id > 1 ORDER BY id")]
    assert times == sorted(times)


def test_counters_and_sequences_are_ahead_of_the_data(loaded):
    engine, _report = loaded
    highest_mrn = _scalar(engine, "SELECT max(mrn) FROM patient_profile")
    for year, highest in _rows(engine, "SELECT substr(number, 5, 4), max(number) FROM invoice WHERE number IS NOT NULL "
                                       "GROUP BY substr(number, 5, 4)"):
        assert _scalar(engine, f"SELECT value FROM counter WHERE name = 'invoice-{year}'") == int(highest[-6:])
        assert _scalar(engine, f"SELECT count(*) FROM invoice WHERE number LIKE 'INV-{year}-%'") == int(highest[-6:])
    with session_scope(engine=engine) as session:
        mrn = counters.next_mrn(session)
        department = Department(name="Neurology")
        session.add(department)
        session.flush()
        assert department.id == _scalar(engine, "SELECT max(id) FROM department") + 1
        session.rollback()
    assert mrn > highest_mrn


def _indexes(engine: sa.Engine) -> set[tuple]:
    if engine.dialect.name == "postgresql":
        return set(_rows(engine, "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'")) | set(
            _rows(engine, "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
                          "WHERE connamespace = 'public'::regnamespace")) | set(
            _rows(engine, "SELECT tgrelid::regclass::text, tgname, pg_get_triggerdef(oid) FROM pg_trigger "
                          "WHERE NOT tgisinternal"))
    return set(_rows(engine, "SELECT tbl_name, name, sql FROM sqlite_master WHERE type IN ('index', 'trigger')"))


def test_the_indexes_constraints_and_triggers_are_the_migrations_own(loaded, template, tmp_path):
    """The PostgreSQL load drops plain indexes and builds them again at the end: exactly as they were."""
    engine, _report = loaded
    with _fresh_database(template, tmp_path) as migrated:
        assert _indexes(engine) == _indexes(migrated)
    if engine.dialect.name == "postgresql":
        assert _scalar(engine, "SELECT count(*) FROM pg_index WHERE NOT indisvalid") == 0


def test_demo_accounts_and_generated_patients_log_in(loaded):
    engine, _report = loaded
    for role, email in DEMO_EMAIL.items():
        assert login_as(engine, email).role is role
    generated = _scalar(engine, "SELECT email FROM \"user\" WHERE role = 'patient' ORDER BY id DESC LIMIT 1")
    assert login_as(engine, generated).role is Role.PATIENT


def _fingerprint(engine: sa.Engine) -> str:
    """A digest of the generated rows, leaving out Fernet tokens (random by design), the audit
    hashes, which chain from the demo's row, and the demo's own timestamps (the moment it was loaded)."""
    queries = (
        "SELECT id, email, full_name, role FROM \"user\" ORDER BY id",
        "SELECT user_id, mrn, birth_date, sex, insurer FROM patient_profile ORDER BY user_id",
        "SELECT id, patient_id, doctor_id, starts_at, ends_at, status, reason, status_reason, created_at, updated_at "
        "FROM appointment WHERE id > 7 ORDER BY id",
        "SELECT id, appointment_id, bp_systolic, weight_kg, started_at FROM encounter WHERE id > 2 ORDER BY id",
        "SELECT id, test_id, priority, status, ordered_at FROM lab_order ORDER BY id",
        "SELECT id, order_id, value_numeric, flag, range_low, range_high, resulted_at FROM lab_result ORDER BY id",
        "SELECT id, medicine_id, lot, expiry_date, quantity_on_hand FROM stock_batch ORDER BY id",
        "SELECT id, batch_id, kind, quantity, note, created_at FROM stock_movement WHERE note <> 'opening stock' "
        "ORDER BY id",
        "SELECT id, number, patient_id, status, subtotal_cents, discount_cents, paid_cents, insurer_share_cents, "
        "claim_status, issued_at FROM invoice ORDER BY id",
        "SELECT id, invoice_id, kind, source_id, description, amount_cents, service_at FROM invoice_line ORDER BY id",
        "SELECT id, invoice_id, amount_cents, method, reference, idempotency_key, received_at FROM payment ORDER BY id",
        "SELECT id, occurred_at, actor_id, actor_email, action, entity_id, patient_id, detail FROM audit_event "
        "WHERE id > 1 ORDER BY id",
    )
    digest = hashlib.sha256()
    for query in queries:
        for row in _rows(engine, query):
            digest.update(repr(row).encode())
    return digest.hexdigest()


def test_the_same_seed_gives_the_same_hospital(loaded, template, tmp_path):
    engine, report = loaded
    with _fresh_database(template, tmp_path) as again:
        second = scale_seed.seed_scale(again, scale=SCALE, now=NOW)
        assert second.rows == report.rows
        assert _fingerprint(again) == FINGERPRINTS[engine.url]
    with _fresh_database(template, tmp_path) as other:
        third = scale_seed.seed_scale(other, scale=SCALE, now=NOW, seed=scale_seed.DEFAULT_SEED + 1)
        assert third.rows["appointment"] == report.rows["appointment"]
        assert _fingerprint(other) != FINGERPRINTS[engine.url]


def test_a_database_with_users_is_refused(loaded):
    engine, _report = loaded
    with pytest.raises(Conflict):
        scale_seed.seed_scale(engine, scale=SCALE, now=NOW)


def test_the_seed_command_loads_a_scale_and_refuses_a_second_time(engine, capsys):
    assert cli.main(["seed", "--scale", "0.0005"]) == 0
    out = capsys.readouterr().out
    assert "scale 0.0005 loaded" in out
    assert "peak memory" in out
    assert _scalar(engine, "SELECT count(*) FROM patient_profile") == 50 + len(demo.PATIENT_NAMES)
    assert cli.main(["seed", "--scale", "0.0005"]) == 1
    assert cli.main(["seed", "--scale", "0.0005", "--if-empty"]) == 0

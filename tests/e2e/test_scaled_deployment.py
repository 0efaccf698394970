"""The scaled deployment: two backend workers behind one port, on PostgreSQL and Redis.

Patient tabs are opened until their websockets are held by both workers, which Reflex records
in Redis (each worker process has its own instance id); then a doctor's confirmation on one
worker reaches every tab, on either worker, without a reload.
"""

from __future__ import annotations

import os
import pickle
import time
import uuid
from datetime import date, timedelta

import pytest
import redis
import sqlalchemy as sa

from hms_app.db import postgres
from tests.e2e.helpers import log_in, wait_ready
from tests.e2e.server import start_app

REDIS_URL = "redis://127.0.0.1:6379/0"
POSTGRES_SERVER_URL = os.environ.get("HMS_TEST_POSTGRES_URL") or "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
WORKERS = 2
MAX_PATIENT_TABS = 30
"""Granian's workers share one listening socket and the kernel does not take turns: in trials
3 to 5 tabs were needed before the second worker took one, so allow many (at most two stay
open per worker)."""


@pytest.fixture(scope="module")
def redis_client():
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError as error:
        pytest.fail(f"Redis is needed at {REDIS_URL}: {error}")
    yield client
    client.close()


@pytest.fixture(scope="module")
def scaled_app(tmp_path_factory, redis_client):
    """The app with its own PostgreSQL database (created here, dropped afterwards), Reflex's
    state in Redis and two workers."""
    database_url = sa.make_url(POSTGRES_SERVER_URL).set(database=f"hms_e2e_{uuid.uuid4().hex[:12]}")
    url = database_url.render_as_string(hide_password=False)
    assert postgres.create_database(url)
    server = None
    try:
        server = start_app(tmp_path_factory.mktemp("e2e-scaled"), extra_env={
            "HMS_DATABASE_URL": url, "REFLEX_REDIS_URL": REDIS_URL, "HMS_WORKERS": str(WORKERS)})
        yield server
    finally:
        if server is not None:
            server.stop()
        admin = sa.create_engine(POSTGRES_SERVER_URL, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{database_url.database}" WITH (FORCE)')
        admin.dispose()


def _next_weekday() -> date:
    day = date.today() + timedelta(days=9)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def _worker_of(page, redis_client) -> str:
    """The instance id of the worker holding this tab's websocket, as Reflex records it in Redis
    to route a change made on another worker (``reflex.utils.token_manager.RedisTokenManager``:
    a pickled ``SocketRecord`` under ``token_manager_socket_record_<token>``)."""
    token = page.evaluate("() => window.sessionStorage.getItem('token')")
    assert token, "the tab has no Reflex client token"
    deadline = time.monotonic() + 5
    while (record := redis_client.get(f"token_manager_socket_record_{token}")) is None:
        assert time.monotonic() < deadline, f"no socket record in Redis for tab {token}"
        time.sleep(0.1)
    return pickle.loads(record).instance_id


def _open_appointments(page, url: str, appointment_id: int) -> None:
    page.goto(f"{url}/patient/appointments")
    wait_ready(page)
    page.locator(f"tr[data-appointment='{appointment_id}']").get_by_text("Pending").wait_for()


def test_confirmation_crosses_workers_on_postgres_and_redis(scaled_app, browser, redis_client):
    app = scaled_app
    patient_context, doctor_context = browser.new_context(), browser.new_context()
    try:
        first = patient_context.new_page()
        log_in(first, app.url, "zara.ahmed@patients.example")
        first.wait_for_url(f"{app.url}/patient")
        first.goto(f"{app.url}/patient/book")
        wait_ready(first)
        first.fill("#book-date", _next_weekday().isoformat())
        first.select_option("#book-department", label="Pediatrics")
        first.select_option("#book-doctor", label="Dr. Hannah Becker")
        first.get_by_role("group", name="Free times").get_by_role("button").first.click()
        first.fill("#book-reason", "Growth check")
        first.get_by_role("button", name="Request appointment").click()
        first.wait_for_url(f"{app.url}/patient/appointments")
        appointment_id = int(first.locator("tr[data-appointment]").first.get_attribute("data-appointment"))
        _open_appointments(first, app.url, appointment_id)

        # Each tab has its own websocket; open tabs until both workers hold some of them.
        tabs_by_worker = {_worker_of(first, redis_client): [first]}
        opened = 1
        while len(tabs_by_worker) < WORKERS and opened < MAX_PATIENT_TABS:
            tab = patient_context.new_page()
            _open_appointments(tab, app.url, appointment_id)
            opened += 1
            same_worker = tabs_by_worker.setdefault(_worker_of(tab, redis_client), [])
            if len(same_worker) < 2:
                same_worker.append(tab)
            else:
                tab.close()
        assert len(tabs_by_worker) == WORKERS, f"{opened} tabs all landed on one worker"
        patient_tabs = [tab for tabs in tabs_by_worker.values() for tab in tabs]
        tab_workers = [_worker_of(tab, redis_client) for tab in patient_tabs]

        doctor = doctor_context.new_page()
        log_in(doctor, app.url, "hannah.becker@hms.example")
        doctor.wait_for_url(f"{app.url}/doctor")
        doctor.goto(f"{app.url}/doctor/appointments")
        wait_ready(doctor)
        doctor_worker = _worker_of(doctor, redis_client)
        assert any(w != doctor_worker for w in tab_workers), "some patient tab is on the other worker"
        for tab in patient_tabs:
            tab.evaluate("() => { window.hmsNotReloaded = true; }")

        doctor.locator(f"tr[data-appointment='{appointment_id}']").first.get_by_role("button", name="Confirm").click()

        for tab in patient_tabs:
            tab.locator(f"tr[data-appointment='{appointment_id}']").get_by_text("Confirmed").wait_for(timeout=5_000)
            assert tab.evaluate("() => window.hmsNotReloaded === true"), "the tab was reloaded"
        # The tabs kept their websockets on the workers they started on.
        assert [_worker_of(tab, redis_client) for tab in patient_tabs] == tab_workers
    finally:
        patient_context.close()
        doctor_context.close()

    engine = sa.create_engine(app.database_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            status = conn.execute(sa.text("SELECT status FROM appointment WHERE id = :id"),
                                  {"id": appointment_id}).scalar_one()
            # Every worker's pool (5 kept, 5 more in a burst) bounds what the app holds open.
            held = conn.execute(sa.text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                                        " AND pid <> pg_backend_pid()")).scalar_one()
    finally:
        engine.dispose()
    assert status.lower() == "confirmed"
    assert held <= WORKERS * 10

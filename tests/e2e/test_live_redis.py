"""Live updates across backend workers: two workers share state through Redis, and a
doctor's confirmation reaches patient tabs connected to either worker."""

from __future__ import annotations

import sqlite3
from datetime import date, timedelta

import pytest
import redis

from tests.e2e.helpers import log_in, wait_ready
from tests.e2e.server import start_app

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="module")
def scaled_app(tmp_path_factory):
    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.RedisError as error:
        pytest.fail(f"Redis is needed at {REDIS_URL}: {error}")
    server = start_app(tmp_path_factory.mktemp("e2e-redis"),
                       extra_env={"REFLEX_REDIS_URL": REDIS_URL, "GRANIAN_WORKERS": "2"})
    yield server
    server.stop()


def _next_weekday() -> date:
    day = date.today() + timedelta(days=9)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def test_confirmation_reaches_tabs_on_every_worker(scaled_app, browser):
    app = scaled_app
    db = app.database_url.removeprefix("sqlite:///")
    contexts = [browser.new_context() for _ in range(4)]
    try:
        patient_tabs = [ctx.new_page() for ctx in contexts[:3]]
        doctor = contexts[3].new_page()
        first = patient_tabs[0]
        log_in(first, app.url, "zara.ahmed@patients.example")
        first.wait_for_url(f"{app.url}/patient")
        first.goto(f"{app.url}/patient/book")
        wait_ready(first)
        first.fill("#book-date", _next_weekday().isoformat())
        first.select_option("#book-department", label="Pediatrics")
        first.select_option("#book-doctor", label="Dr. Hannah Becker")
        slot = first.get_by_role("group", name="Free times").get_by_role("button").first
        slot.click()
        first.fill("#book-reason", "Growth check")
        first.get_by_role("button", name="Request appointment").click()
        first.wait_for_url(f"{app.url}/patient/appointments")
        appointment_id = int(first.locator("tr[data-appointment]").first.get_attribute("data-appointment"))
        # More tabs of the same patient, each with its own websocket (and likely worker).
        for tab in patient_tabs[1:]:
            log_in(tab, app.url, "zara.ahmed@patients.example")
            tab.wait_for_url(f"{app.url}/patient")
            tab.goto(f"{app.url}/patient/appointments")
            wait_ready(tab)
            tab.locator(f"tr[data-appointment='{appointment_id}']").get_by_text("Pending").wait_for()

        log_in(doctor, app.url, "hannah.becker@hms.example")
        doctor.wait_for_url(f"{app.url}/doctor")
        doctor.goto(f"{app.url}/doctor/appointments")
        wait_ready(doctor)
        doctor.locator(f"tr[data-appointment='{appointment_id}']").first.get_by_role("button", name="Confirm").click()

        for tab in patient_tabs:
            tab.locator(f"tr[data-appointment='{appointment_id}']").get_by_text("Confirmed").wait_for(timeout=5_000)
        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT status FROM appointment WHERE id=?", (appointment_id,)).fetchone()[0] == "confirmed"
    finally:
        for ctx in contexts:
            ctx.close()

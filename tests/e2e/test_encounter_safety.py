"""Issue 16 at the doctor's desk, in a real browser: the allergy warning follows the item as it
changes, the allergies and problems stay in view, an open test is ordered again only when
confirmed, the diagnosis is searched in the whole ICD-10-CM, and the vitals trend draws one
chart per measure."""

from __future__ import annotations

import sqlite3

from tests.e2e.helpers import (
    assert_accessible,
    expect_chart_drawn,
    log_in_to,
    screenshot,
    wait_charts_settled,
    wait_ready,
)
from tests.e2e.test_clinical_journey import DOCTOR, started_confirmed_appointment

MARIA = "maria.garcia@patients.example"  # penicillin allergy in the demo data
WEI = "wei.zhang@patients.example"  # no allergies or problems in the demo data
FATIMA = "fatima.ali@patients.example"
DESK = {"width": 1366, "height": 900}


def _open_encounter(browser, app_server, appointment_id: int):
    context = browser.new_context(viewport=DESK)
    page = context.new_page()
    log_in_to(page, app_server.url, DOCTOR, "/doctor")
    page.goto(f"{app_server.url}/doctor/encounter?appointment={appointment_id}")
    wait_ready(page)
    page.locator("#encounter-banner").wait_for()
    return context, page


def _count(db: str, sql: str, *params) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, params).fetchone()[0]


def _user_id(db: str, email: str) -> int:
    return _count(db, "SELECT id FROM user WHERE email=?", email)


def test_the_allergy_warning_follows_the_item_and_the_banner_stays_in_view(app_server, browser, screenshot_dir):
    db = app_server.database_url.removeprefix("sqlite:///")
    appointment_id = started_confirmed_appointment(db, MARIA, minutes_ago=14)
    context, page = _open_encounter(browser, app_server, appointment_id)
    try:
        banner = page.locator("#encounter-banner")
        allergies = page.locator("#banner-allergies")
        allergies.get_by_text("Penicillin").wait_for()
        assert "Hives and swelling" in allergies.inner_text()
        assert "severe" in allergies.inner_text()

        page.select_option("#rx-medicine", label="Amoxicillin 500 mg (capsule)")
        warning = page.locator("#rx-warnings")
        warning.wait_for()  # on choosing the medicine, before any click on sign
        assert "penicillin" in warning.inner_text().lower()
        page.get_by_role("button", name="Override and sign").wait_for()
        screenshot(page, screenshot_dir, "encounter-warning-amoxicillin")

        page.select_option("#rx-medicine", label="Aspirin 75 mg (dispersible tablet)")
        warning.wait_for(state="detached")
        assert page.locator("#rx-override").count() == 0
        page.fill("#rx-dose", "1 tablet")
        page.select_option("#rx-frequency", value="once daily")
        page.fill("#rx-days", "7")
        page.get_by_role("button", name="Sign prescription").click()
        page.get_by_text("Prescription signed").first.wait_for()
        assert _count(db, "SELECT count(*) FROM prescription p JOIN encounter e ON e.id = p.encounter_id "
                          "WHERE e.appointment_id = ?", appointment_id) == 1
        ordered = page.get_by_role("row").filter(has_text="Aspirin 75 mg")
        ordered.wait_for()
        assert "override" not in ordered.inner_text()  # the notes are encrypted: read them on the page

        # Scrolled down to the lab orders, the allergies are still on screen.
        page.get_by_role("button", name="Complete encounter").scroll_into_view_if_needed()
        box = banner.bounding_box()
        assert box is not None
        assert box["y"] >= 0, box
        assert box["y"] + box["height"] <= DESK["height"], box
        screenshot(page, screenshot_dir, "encounter-banner-scrolled")
        page.screenshot(path=str(screenshot_dir / "encounter-banner-viewport.png"))
        assert_accessible(page)
    finally:
        context.close()


def test_diagnosis_search_no_known_allergies_and_one_vitals_chart_per_measure(app_server, browser, screenshot_dir):
    db = app_server.database_url.removeprefix("sqlite:///")
    appointment_id = started_confirmed_appointment(db, WEI, minutes_ago=16)
    context, page = _open_encounter(browser, app_server, appointment_id)
    try:
        page.locator("#banner-allergies").get_by_text("No known allergies").wait_for()

        # A code outside the clinics' common ones, found by words, picked with the keyboard.
        page.locator("#enc-icd10-search").press_sequentially("angina microvasc", delay=30)
        option = page.locator("#enc-icd10-options").get_by_role("button", name="I20.81")
        option.wait_for()
        assert page.locator("#enc-icd10-options li").count() <= 20
        screenshot(page, screenshot_dir, "encounter-icd10-search")
        page.locator("#enc-icd10-search").focus()
        page.keyboard.press("Tab")
        for _ in range(20):
            if page.evaluate("document.activeElement.textContent").startswith("I20.81"):
                break
            page.keyboard.press("Tab")
        page.keyboard.press("Enter")
        page.locator("#enc-icd10-chosen").get_by_text("I20.81 — Angina pectoris with coronary microvascular").wait_for()

        page.fill("#enc-diagnosis", "Microvascular angina")
        for name, value in (("bp_systolic", "138"), ("bp_diastolic", "86"), ("pulse", "72"), ("spo2", "98"),
                            ("weight_kg", "71.5"), ("temperature_c", "36.9")):
            page.fill(f"#vital-{name}", value)
        page.get_by_role("button", name="Save notes and vitals").click()
        page.get_by_text("Notes and vitals saved").first.wait_for()
        stored = sqlite3.connect(db).execute("SELECT id FROM encounter WHERE appointment_id=?",
                                             (appointment_id,)).fetchone()
        assert stored is not None
        # The code is stored encrypted: read it back through the page after a reload.
        page.reload()
        wait_ready(page)
        page.locator("#enc-icd10-chosen").get_by_text("I20.81").wait_for()

        # No code fits: remove it; the free-text diagnosis stays.
        page.get_by_role("button", name="Remove code I20.81").click()
        page.locator("#enc-icd10-search").press_sequentially("zzqx", delay=30)
        page.get_by_text("No code matches").wait_for()
        page.fill("#enc-diagnosis", "Chest discomfort of unclear cause")
        page.get_by_role("button", name="Save notes and vitals").click()
        page.get_by_text("Notes and vitals saved").first.wait_for()  # the first toast went with the reload
        page.reload()
        wait_ready(page)
        page.get_by_text("No code chosen").wait_for()
        assert page.locator("#enc-diagnosis").input_value() == "Chest discomfort of unclear cause"
        assert_accessible(page)

        page.goto(f"{app_server.url}/doctor/patient?id={_user_id(db, WEI)}")
        wait_ready(page)
        chart = page.locator(".js-plotly-plot")
        chart.wait_for()
        wait_charts_settled(page)
        titles = page.evaluate("[...document.querySelectorAll('.js-plotly-plot text')]"
                               ".filter(t => /^y\\d*title$/.test(t.getAttribute('class'))).map(t => t.textContent)")
        assert titles == ["Blood pressure (mmHg)", "Pulse (/min)", "SpO₂ (%)", "Weight (kg)", "Temperature (°C)"]
        expect_chart_drawn(chart, traces=6)  # systolic and diastolic share the first panel
        screenshot(page, screenshot_dir, "chart-vitals-trend")
    finally:
        context.close()


def test_an_open_test_is_ordered_again_only_when_confirmed(app_server, browser, screenshot_dir):
    db = app_server.database_url.removeprefix("sqlite:///")
    appointment_id = started_confirmed_appointment(db, FATIMA, minutes_ago=18)
    patient = _user_id(db, FATIMA)
    context, page = _open_encounter(browser, app_server, appointment_id)

    def open_troponin() -> int:
        return _count(db, "SELECT count(*) FROM lab_order o JOIN lab_test t ON t.id = o.test_id WHERE o.patient_id=? "
                          "AND t.code='TROP' AND o.status IN ('requested', 'collected', 'in_progress')", patient)

    try:
        before = open_troponin()
        troponin = page.get_by_text("Troponin T (high-sensitivity)").first
        troponin.click()
        page.get_by_role("button", name="Order tests").click()
        if before == 0:
            page.get_by_text("test(s) ordered").first.wait_for()
            assert open_troponin() == 1
            troponin.click()
            page.get_by_role("button", name="Order tests").click()
        notice = page.locator("#lab-duplicates")
        notice.wait_for()
        assert "Troponin T (high-sensitivity) is already open, ordered " in notice.inner_text()
        assert "by Dr. Mateo Rossi" in notice.inner_text()
        assert open_troponin() == max(before, 1)
        screenshot(page, screenshot_dir, "encounter-lab-duplicate")
        assert_accessible(page)
        page.get_by_role("button", name="Order again").click()
        page.get_by_text("test(s) ordered").last.wait_for()
        notice.wait_for(state="detached")
        assert open_troponin() == max(before, 1) + 1
    finally:
        context.close()

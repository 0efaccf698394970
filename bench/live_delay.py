"""Live delay: from the doctor's click on Confirm to the change of the patient's badge.

Starts the real app (one worker in memory, and two workers sharing state through Redis),
opens the doctor's and the patient's pages in two browser contexts, and for each round
creates a pending request, lets the doctor confirm it and times, inside the browsers, the
moment of the click and the moment the patient's badge reads Confirmed (both clocks are
the same machine's). Prints p50/p95 per setup.

    .venv/bin/python -m bench.live_delay --rounds 20
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from tests.e2e.helpers import log_in, wait_ready
from tests.e2e.server import start_app

PATIENT = "ingrid.larsen@patients.example"
DOCTOR = "olivia.chen@hms.example"

WATCH_JS = """(id) => {
  window.__seen = null;
  const seen = () => {
    const row = document.querySelector(`tr[data-appointment='${id}']`);
    return row && row.textContent.includes('Confirmed');
  };
  const obs = new MutationObserver(() => { if (seen()) { obs.disconnect(); window.__seen = Date.now(); } });
  obs.observe(document.body, {subtree: true, childList: true, characterData: true});
}"""


def _create_request(database_url: str, round_no: int) -> int:
    """A pending appointment, written as the booking service would (one row)."""
    engine = sa.create_engine(database_url)
    with engine.begin() as conn:
        patient = conn.execute(sa.text("SELECT id FROM user WHERE email=:e"), {"e": PATIENT}).scalar_one()
        doctor, dept, minutes = conn.execute(sa.text(
            "SELECT u.id, d.department_id, d.slot_minutes FROM user u JOIN doctor_profile d ON d.user_id=u.id "
            "WHERE u.email=:e"), {"e": DOCTOR}).one()
        start = (datetime.now(UTC) + timedelta(days=30 + round_no)).replace(hour=10, minute=0, second=0, microsecond=0)
        conn.execute(sa.text(
            "INSERT INTO appointment (patient_id, doctor_id, department_id, starts_at, ends_at, status, reason, "
            "status_reason, created_at, updated_at) VALUES (:p, :d, :dep, :s, :e, 'requested', 'bench', '', :now, :now)"),
            {"p": patient, "d": doctor, "dep": dept, "s": start.replace(tzinfo=None),
             "e": (start + timedelta(minutes=minutes)).replace(tzinfo=None), "now": datetime.now(UTC).replace(tzinfo=None)})
        new_id = conn.execute(sa.text("SELECT max(id) FROM appointment")).scalar_one()
    engine.dispose()
    return new_id


def measure(extra_env: dict[str, str], rounds: int) -> list[float]:
    from playwright.sync_api import sync_playwright

    from tests.e2e.conftest import _chromium_path

    server = start_app(Path(tempfile.mkdtemp(prefix="hms-bench-")), extra_env=extra_env)
    delays: list[float] = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=_chromium_path(), args=["--no-sandbox", "--disable-gpu"])
            patient = browser.new_context().new_page()
            doctor = browser.new_context().new_page()
            log_in(patient, server.url, PATIENT)
            patient.wait_for_url(f"{server.url}/patient")
            log_in(doctor, server.url, DOCTOR)
            doctor.wait_for_url(f"{server.url}/doctor")
            for round_no in range(rounds):
                appointment_id = _create_request(server.database_url, round_no)
                patient.goto(f"{server.url}/patient/appointments")
                wait_ready(patient)
                doctor.goto(f"{server.url}/doctor/appointments")
                wait_ready(doctor)
                row = doctor.locator(f"tr[data-appointment='{appointment_id}']").first
                row.wait_for()
                patient.locator(f"tr[data-appointment='{appointment_id}']").first.wait_for()
                patient.evaluate(WATCH_JS, appointment_id)
                button = row.get_by_role("button", name="Confirm")
                button.evaluate("b => b.addEventListener('click', () => { window.__clicked = Date.now(); }, {once: true})")
                button.click()
                patient.wait_for_function("() => window.__seen !== null", timeout=10_000)
                seen_at = patient.evaluate("() => window.__seen")
                clicked_at = doctor.evaluate("() => window.__clicked")
                delays.append(seen_at - clicked_at)
            browser.close()
    finally:
        server.stop()
    return delays


def _summary(name: str, delays: list[float]) -> str:
    ordered = sorted(delays)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"| {name} | {len(delays)} | {statistics.median(delays):.0f} ms | {p95:.0f} ms | {max(delays):.0f} ms |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    rows = [
        _summary("one worker, state in memory", measure({}, args.rounds)),
        _summary("two workers, state in Redis", measure({"REFLEX_REDIS_URL": args.redis, "HMS_WORKERS": "2"},
                                                         args.rounds)),
    ]
    print("| setup | rounds | p50 | p95 | max |\n|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()

"""What the browser journeys do again and again: log in, check accessibility, take pictures."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

from playwright.sync_api import expect

from tests.e2e.conftest import AXE_JS

DEMO_PASSWORD = "Demo-Hospital-2026"


def wait_ready(page) -> None:
    """Wait until the page is hydrated: the websocket is up and on_load has run."""
    page.wait_for_load_state("networkidle")
    page.wait_for_function("() => document.querySelector('main') !== null")


def expect_chart_drawn(chart, traces: int | None = None) -> None:
    """``chart`` (a locator holding one Plotly chart) is drawn: Plotly's SVG, ``traces`` traces
    on its plot (at least one if not given), each with a mark (a bar or a point) in it."""
    expect(chart.locator(".main-svg").first).to_be_visible()
    drawn = chart.locator(".main-svg .cartesianlayer .trace")
    if traces is None:
        expect(drawn.first).to_be_attached()
    else:
        expect(drawn).to_have_count(traces)
    for index in range(drawn.count()):
        expect(drawn.nth(index).locator(".point").first).to_be_attached()


def wait_charts_settled(page) -> None:
    """Wait until every Plotly chart's picture stays the same from one frame to the next: its
    transitions (d3's, redrawn each frame) have finished."""
    page.wait_for_function(
        "() => { const now = [...document.querySelectorAll('.js-plotly-plot')].map(p => p.innerHTML).join('|');"
        " const same = now === window.__chartsLastFrame; window.__chartsLastFrame = now; return same; }",
        polling="raf",
    )


def log_in(page, base_url: str, email: str, password: str = DEMO_PASSWORD) -> None:
    page.goto(f"{base_url}/login")
    wait_ready(page)
    page.fill("#login-email", email)
    page.fill("#login-password", password)
    page.click("button[type=submit]")


def log_in_to(page, base_url: str, email: str, home: str, password: str = DEMO_PASSWORD,
              code: Callable[[], str] | None = None) -> None:
    """Log in and wait until the role's landing page has loaded.

    Args:
        code: for an account with a second factor, gives the code to type at the second step.
            The e2e server requires none by default (``server.start_app``); a test that switches
            a role's requirement on passes one.
    """
    log_in(page, base_url, email, password)
    if code is not None:
        enter_code(page, code())
    page.wait_for_url(f"{base_url}{home}")
    wait_ready(page)


def enter_code(page, code: str) -> None:
    """Type a one-time or recovery code at the login's second step and submit it."""
    page.locator("#login-code").fill(code)
    page.locator("#login-code").press("Enter")


def form_alert(page):
    """The error callout of the page's form (``form_error``), as screen readers get it.

    Toasts live outside the main landmark, so this never picks up one of those.
    """
    return page.get_by_role("main").get_by_role("alert")


def assert_apart(first, second, minimum: float = 8) -> None:
    """Two boxes side by side or one above the other, with at least ``minimum`` px between them."""
    a, b = first.bounding_box(), second.bounding_box()
    assert a, "the first box must be on screen"
    assert b, "the second box must be on screen"
    space = max(b["x"] - (a["x"] + a["width"]), b["y"] - (a["y"] + a["height"]))
    assert space >= minimum, f"only {space}px between {a} and {b}"


ALWAYS_REPORTED = ("empty-table-header", "scrollable-region-focusable")
"""Rules whose violations count whatever axe's impact: a table column no one can name, and a
region no keyboard can scroll, were found in the app once (issue 16)."""


def axe_violations(page, *, impacts: tuple[str, ...] = ("critical", "serious"),
                   rules: tuple[str, ...] = ALWAYS_REPORTED) -> list[dict]:
    """Run axe-core on the page; return the violations of the given impacts, and of ``rules``
    at any impact."""
    page.add_script_tag(path=str(AXE_JS))
    # Toasts fade in and out: caught mid-animation, their text is a pale tint of itself, so
    # they are checked once they have settled (wait for the animation to end), not mid-fade.
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-sonner-toast]')]"
        ".every(t => t.getAnimations({subtree: true}).every(a => a.playState !== 'running')"
        " && ['0', '1'].includes(getComputedStyle(t).opacity))",
        timeout=5_000,
    )
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        {"id": v["id"], "impact": v["impact"], "help": v["help"],
         "nodes": [n["target"] for n in v["nodes"]][:5],
         "why": v["nodes"][0].get("failureSummary", "") if v["nodes"] else "",
         "html": v["nodes"][0].get("html", "")[:200] if v["nodes"] else ""}
        for v in result["violations"]
        if v["impact"] in impacts or v["id"] in rules
    ]


def assert_accessible(page) -> None:
    violations = axe_violations(page)
    assert not violations, json.dumps(violations, indent=2)


def screenshot(page, directory: Path, name: str) -> Path:
    path = directory / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


# --- reading the server's database, and waiting for it --------------------------------


def db_rows(database_url: str, sql: str, params: tuple | dict = ()) -> list[tuple]:
    """Run one query against the app server's SQLite database, opened read-only."""
    path = database_url.removeprefix("sqlite:///")
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=15)) as conn:
        return conn.execute(sql, params).fetchall()


def db_value(database_url: str, sql: str, params: tuple | dict = ()):
    """The first column of the first row of ``sql`` (None when there is no row)."""
    rows = db_rows(database_url, sql, params)
    return rows[0][0] if rows else None


def wait_for_db(database_url: str, sql: str, params: tuple | dict = (), *,
                until: Callable[[object], bool] = bool, timeout: float = 10.0):
    """Poll ``sql`` until ``until(value)`` holds, for writes the browser cannot observe; return the value."""
    deadline = time.monotonic() + timeout
    while True:
        value = db_value(database_url, sql, params)
        if until(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting on {sql!r} {params!r}; last value {value!r}")
        time.sleep(0.1)


def user_id(database_url: str, email: str) -> int:
    return db_value(database_url, 'SELECT id FROM "user" WHERE email = ?', (email,))


# --- the app's own routes -----------------------------------------------------------------------


def routes_by_role() -> dict[str | None, list[str]]:
    """Every route the app registers, under the role its ``SessionState.guard`` lets in: "" for
    pages every signed-in user may open, None for visitors' pages (no guard). Read from the app
    itself, so a page added tomorrow is covered by the tests that walk them."""
    from hms_app.db.enums import DEFAULT_ROLE_PERMISSIONS
    from hms_app.hms_app import app

    found: dict[str | None, list[str]] = {}
    for route in sorted({*app._unevaluated_pages, *app._pages}):
        roles: list[str | None] = [None]
        for event in app._load_events.get(route, []):
            handler = getattr(event, "handler", None)
            if getattr(getattr(handler, "fn", None), "__name__", "") == "guard":
                args = {str(name): getattr(value, "_var_value", "") for name, value in event.args}
                roles = [args.get("role", "")]
                if args.get("permission"):  # a page of every role that holds the permission by default
                    roles = [role.value for role, granted in DEFAULT_ROLE_PERMISSIONS.items()
                             if args["permission"] in {p.value for p in granted}]
        for role in roles:
            found.setdefault(role, []).append("/" if route == "index" else f"/{route}")
    return found


def demo_account(database_url: str, role: str) -> str:
    """The e-mail of the demo's first active account of ``role`` (a patient's: the one with most
    appointments, so that their pages have rows to show)."""
    return db_value(database_url,
                    'SELECT u.email FROM "user" u WHERE u.role = ? AND u.is_active ORDER BY '
                    "(SELECT count(*) FROM appointment a WHERE a.patient_id = u.id) DESC, u.id", (role,))

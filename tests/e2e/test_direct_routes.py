"""Every route of the app opened directly, as a bookmark or a reload opens it, by the role it is for.

The routes come from the app itself (``helpers.routes_by_role``), so pages added later are
covered too. On each: no console error (a React hydration error such as #418 included), no
uncaught exception, no failed request (a 404 for the favicon included), the page's own sidebar
styled, and axe finds nothing serious, no empty table header and no scroll region that no
keyboard reaches (``helpers.ALWAYS_REPORTED``).
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from tests.e2e.helpers import (
    axe_violations,
    db_value,
    demo_account,
    log_in_to,
    routes_by_role,
    screenshot,
    user_id,
    wait_ready,
)

DESK = {"viewport": {"width": 1366, "height": 900}}
ROUTES = routes_by_role()
HOMES = {"patient": "/patient", "doctor": "/doctor", "lab": "/lab", "pharmacy": "/pharmacy",
         "accounts": "/accounts", "admin": "/admin"}


def _query(route: str, database_url: str, actor_id: int) -> str:
    """What a route is opened with in the app (a chart is one patient's, an encounter one visit's):
    one of the signed-in doctor's own; an encounter only of a finished visit, since opening a
    confirmed one starts it."""
    if route == "/doctor/patient":
        patient = db_value(database_url, "SELECT patient_id FROM appointment WHERE doctor_id = ? "
                           "ORDER BY status = 'completed' DESC, id", (actor_id,))
        return f"?id={patient}" if patient else ""
    if route == "/doctor/encounter":
        visit = db_value(database_url, "SELECT id FROM appointment WHERE doctor_id = ? AND status = 'completed' "
                         "ORDER BY id", (actor_id,))
        return f"?appointment={visit}" if visit else ""
    return ""


class _Problems:
    """Collects what the browser reports going wrong while a page loads."""

    def __init__(self, page) -> None:
        self.found: list[str] = []
        page.on("console", lambda m: self.found.append(f"console {m.type}: {m.text[:300]}")
                if m.type == "error" else None)
        page.on("pageerror", lambda e: self.found.append(f"uncaught: {str(e)[:300]}"))
        page.on("response", lambda r: self.found.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)
        page.on("requestfailed", lambda r: self.found.append(f"failed: {r.url} {r.failure}")
                if "ERR_ABORTED" not in (r.failure or "") else None)


def _open_directly(page, problems: _Problems, url: str, route: str, shots=None) -> None:
    problems.found.clear()
    page.goto(url)
    wait_ready(page)
    page.wait_for_timeout(300)  # a hydration error or a late request reports just after load
    assert urlsplit(page.url).path.rstrip("/") == route.rstrip("/"), f"{route} sent the browser to {page.url}"
    assert not problems.found, f"{route}:\n" + "\n".join(problems.found)
    violations = axe_violations(page)
    assert not violations, f"{route}:\n" + json.dumps(violations, indent=2)
    if shots is not None:
        screenshot(page, shots, "desk" + (route.replace("/", "-") if route != "/" else "-front"))


@pytest.mark.parametrize("role", sorted(role for role in ROUTES if role))
def test_every_page_of_a_role_opens_directly(app_server, new_context, screenshot_dir, role):
    page = new_context(**DESK).new_page()
    email = demo_account(app_server.database_url, role)
    log_in_to(page, app_server.url, email, HOMES.get(role, f"/{role}"))
    problems = _Problems(page)
    actor = user_id(app_server.database_url, email)
    # Pages for every role are opened by the role's account too.
    for route in ROUTES[role] + ROUTES.get("", []):
        _open_directly(page, problems, app_server.url + route + _query(route, app_server.database_url, actor), route,
                       screenshot_dir)
        sidebar = page.locator("nav[aria-label='Main navigation']")
        expect(sidebar).to_be_visible()
        assert sidebar.evaluate("n => getComputedStyle(n).width") == "240px", f"{route}: the sidebar lost its styling"
        current = sidebar.locator("a[aria-current='page']")
        if current.count():
            assert current.evaluate("a => getComputedStyle(a).backgroundColor") != "rgba(0, 0, 0, 0)"


def test_visitors_pages_open_directly(app_server, new_context):
    page = new_context(**DESK).new_page()
    problems = _Problems(page)
    for route in ROUTES[None]:
        expected = "/login" if route == "/" else route  # the front page sends a visitor to log in
        _open_directly(page, problems, app_server.url + route, expected)

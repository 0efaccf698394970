"""Security headers and origin checks over HTTP, and the front end working under its policy.

- Every response, page, asset or API, carries the content security policy, ``X-Frame-Options:
  DENY``, ``X-Content-Type-Options: nosniff`` and a referrer policy (``hms_app/http_headers.py``).
- CORS answers only the app's own origin: a preflight or a request from another origin gets no
  ``Access-Control-Allow-Origin``. (The websocket handshake from a foreign origin is refused in
  ``tests/e2e/test_websocket_security.py::test_a_foreign_origin_is_refused``.)
- The compiled front end works under the policy: pages of every role, with Plotly charts, toasts
  and a download (both run through Reflex's ``eval``), raise no CSP violation; and a page of
  another site cannot frame the app.
"""

from __future__ import annotations

import re
import urllib.error
import urllib.request

import pytest
from playwright.sync_api import expect

from hms_app.operations import demo
from tests.e2e.helpers import log_in, log_in_to, wait_ready

FOREIGN = "http://evil.example"

# Collects every CSP violation a page reports, from before its first script runs.
_CSP_WATCH = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', e => window.__cspViolations.push(
    `${e.violatedDirective} blocked ${e.blockedURI} (${e.sourceFile}:${e.lineNumber})`));
"""


def _request(url: str, method: str = "GET", headers: dict[str, str] | None = None):
    request = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers
    except urllib.error.HTTPError as error:
        return error.code, error.headers


def _an_asset(app_server) -> str:
    with urllib.request.urlopen(f"{app_server.url}/login/", timeout=10) as response:
        html = response.read().decode()
    return re.search(r'href="(/assets/[^"]+\.js)"', html).group(1)


@pytest.mark.parametrize("path", ["/", "/login/", "/admin/", "/api/health", "/hms.css", "asset", "/no-such-page"])
def test_every_response_carries_the_security_headers(app_server, path):
    path = _an_asset(app_server) if path == "asset" else path
    status, headers = _request(f"{app_server.url}{path}")
    assert status in (200, 404), (path, status)
    policy = headers.get("content-security-policy", "")
    for directive in ("default-src 'self'", "frame-ancestors 'none'", "object-src 'none'", "base-uri 'self'",
                      "form-action 'self'", f"connect-src 'self' ws://localhost:{app_server.port}"):
        assert directive in policy, f"{path}: {directive!r} missing from {policy!r}"
    assert headers.get("x-frame-options") == "DENY"
    assert headers.get("x-content-type-options") == "nosniff"
    assert headers.get("referrer-policy") == "same-origin"
    assert headers.get_all("content-security-policy") == [policy], "one policy, not two"


def test_cors_answers_only_the_apps_own_origin(app_server):
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    for path in ("/api/health", "/_upload", "/_event/"):
        _status, headers = _request(f"{app_server.url}{path}", "OPTIONS", {"Origin": FOREIGN, **preflight})
        assert headers.get("access-control-allow-origin") is None, path
        _status, headers = _request(f"{app_server.url}{path}", "OPTIONS", {"Origin": app_server.url, **preflight})
        assert headers.get("access-control-allow-origin") == app_server.url, path
    _status, headers = _request(f"{app_server.url}/api/health", headers={"Origin": FOREIGN})
    assert headers.get("access-control-allow-origin") is None


def _watched(page):
    page.add_init_script(_CSP_WATCH)
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text) if "Content Security Policy" in m.text else None)
    return console


def _assert_no_violation(page, console: list[str], where: str) -> None:
    violations = page.evaluate("() => window.__cspViolations || []")
    assert violations == [], f"{where}: {violations}"
    assert console == [], f"{where}: {console}"


def _hydrated(page, email: str) -> None:
    """Wait until the page's state came over the websocket: the shell names the user."""
    name = next(n for _role, e, n in demo.demo_accounts() if e == email)
    expect(page.get_by_role("banner")).to_contain_text(name)


ROLE_PAGES = [
    ("admin@hms.example", "/admin", ["/admin/users", "/admin/reports", "/admin/audit", "/admin/appointments"]),
    ("accounts@hms.example", "/accounts", ["/accounts/invoices"]),
    ("olivia.chen@hms.example", "/doctor", ["/doctor/appointments", "/doctor/results", "/doctor/schedule"]),
    ("lab@hms.example", "/lab", ["/lab/worklist"]),
    ("pharmacy@hms.example", "/pharmacy", ["/pharmacy/queue", "/pharmacy/stock", "/pharmacy/ledger"]),
    ("maria.garcia@patients.example", "/patient", ["/patient/appointments", "/patient/book", "/patient/history",
                                                   "/patient/invoices", "/notifications"]),
]


@pytest.mark.parametrize(("email", "home", "paths"), ROLE_PAGES, ids=[home for _, home, _ in ROLE_PAGES])
def test_every_roles_pages_work_under_the_policy(app_server, new_context, email, home, paths):
    page = new_context().new_page()
    console = _watched(page)
    log_in_to(page, app_server.url, email, home)
    _hydrated(page, email)
    _assert_no_violation(page, console, home)
    for path in paths:
        page.goto(f"{app_server.url}{path}")
        wait_ready(page)
        _hydrated(page, email)
        _assert_no_violation(page, console, path)


def test_charts_toasts_and_downloads_run_under_the_policy(app_server, page):
    console = _watched(page)
    # A failed login answers with a toast, which Reflex's front end runs through eval.
    log_in(page, app_server.url, "admin@hms.example", "Not-the-password-9")
    expect(page.locator("[data-sonner-toast]").first).to_be_visible()
    _assert_no_violation(page, console, "toast")
    log_in_to(page, app_server.url, "admin@hms.example", "/admin")
    page.goto(f"{app_server.url}/admin/reports")
    wait_ready(page)
    expect(page.locator(".js-plotly-plot").first).to_be_visible()
    _assert_no_violation(page, console, "charts")
    page.goto(f"{app_server.url}/admin/audit")
    wait_ready(page)
    with page.expect_download() as download:
        page.get_by_role("button", name=re.compile("Export", re.I)).first.click()
    assert download.value.suggested_filename.endswith(".csv")
    _assert_no_violation(page, console, "download")


def test_another_site_cannot_frame_the_app(app_server, page):
    # The page's load event waits for its frame's: the frame has loaded or been refused by now.
    page.set_content(f'<iframe id="app" src="{app_server.url}/login/" width="800" height="600"></iframe>',
                     wait_until="load")
    (child,) = page.main_frame.child_frames
    assert not child.url.startswith(app_server.url), f"the app's page loaded in the frame: {child.url}"
    frame = page.frame_locator("#app")
    expect(frame.get_by_role("heading", name="Log in")).to_have_count(0)
    expect(frame.locator("#login-email")).to_have_count(0)

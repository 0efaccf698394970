"""The session cookie in a real browser: set by the server, out of page scripts' reach.

- After login ``document.cookie`` holds no session token, and the browser keeps the cookie
  ``HttpOnly``, ``SameSite=Strict``, ``Path=/`` (``Secure`` and ``__Host-`` need https:
  ``tests/test_session_cookie.py``).
- A reload right after login, and a new tab, keep the session: the cookie is set before the
  page leaves the login.
- Logout clears the cookie, and the server refuses the old token in a websocket handshake; a
  session the server found ended is cleared from the browser too.
- ``/api/session`` trades a login's code for the cookie once, and only for a POST from the app's
  own origin.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import urllib.error
import urllib.request
from typing import Any

import sqlalchemy as sa
from playwright.sync_api import expect

from hms_app import session_cookie
from hms_app.db.engine import create_engine, session_scope
from hms_app.db.models import AuthSession
from hms_app.db.types import utcnow
from hms_app.state.auth import LoginState
from hms_app.state.dashboard import ProfileState
from tests.e2e.helpers import DEMO_PASSWORD, db_value, log_in_to, wait_ready
from tests.ws_client import ReflexSocket, WsClient

COOKIE = "hms_session"
LOGIN_URL = re.compile(r"/login/?(\?.*)?$")
PATIENT_HOME = re.compile(r"/patient/?$")
LOGGED_OUT_MESSAGE = "You have been logged out. Please log in again."  # a revoked session's refusal
PATIENT_EMAIL = "sofia.rossi@patients.example"
ROUTE_EMAIL = "daniel.cohen@patients.example"


def _session_cookies(context) -> list[dict[str, Any]]:
    return [c for c in context.cookies() if c["name"] == COOKIE and c["value"]]


def _active_session(app_server, token: str) -> int:
    return db_value(app_server.database_url, "SELECT count(*) FROM auth_session WHERE token_hash = ? "
                    "AND revoked_at IS NULL", (hashlib.sha256(token.encode()).hexdigest(),))


def test_the_cookie_is_httponly_strict_and_survives_a_reload_and_a_new_tab_and_logout_ends_it(
        app_server, page, context):
    log_in_to(page, app_server.url, PATIENT_EMAIL, "/patient")
    [cookie] = _session_cookies(context)
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert cookie["path"] == "/"
    assert cookie["secure"] is False  # plain http here
    assert _active_session(app_server, cookie["value"]) == 1
    readable = page.evaluate("document.cookie")
    assert cookie["value"] not in readable
    assert COOKIE not in readable

    page.reload()
    wait_ready(page)
    expect(page).to_have_url(PATIENT_HOME)
    expect(page.get_by_role("button", name="Log out")).to_be_visible()

    tab = context.new_page()
    tab.goto(f"{app_server.url}/patient")
    wait_ready(tab)
    expect(tab).to_have_url(PATIENT_HOME)
    expect(tab.get_by_role("button", name="Log out")).to_be_visible()
    tab.close()

    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(LOGIN_URL)
    expect(page.get_by_text("You have logged out.")).to_be_visible()
    assert _session_cookies(context) == []
    assert _active_session(app_server, cookie["value"]) == 0
    # The old token, shown in a websocket handshake as a copied cookie would be, opens nothing.
    with WsClient(app_server.url, cookie=f"{COOKIE}={cookie['value']}") as thief:
        refused = thief.call(ProfileState, "load_profile", pathname="/patient")
    assert refused.toasts == [("error", LOGGED_OUT_MESSAGE)]
    assert PATIENT_EMAIL not in refused.text()


def test_a_reload_at_once_after_login_keeps_the_session(app_server, page, context):
    log_in_to(page, app_server.url, PATIENT_EMAIL, "/patient")
    page.reload()
    wait_ready(page)
    expect(page).to_have_url(PATIENT_HOME)
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    assert len(_session_cookies(context)) == 1


def test_a_session_found_ended_clears_the_cookie(app_server, page, context):
    log_in_to(page, app_server.url, PATIENT_EMAIL, "/patient")
    [cookie] = _session_cookies(context)
    token_hash = hashlib.sha256(cookie["value"].encode()).hexdigest()
    engine = create_engine(app_server.database_url)
    try:
        with session_scope(engine=engine) as s:
            s.execute(sa.update(AuthSession).where(AuthSession.token_hash == token_hash).values(revoked_at=utcnow()))
            s.commit()
    finally:
        engine.dispose()

    page.reload()
    page.wait_for_url(LOGIN_URL)
    expect(page.get_by_role("heading", level=1, name="Log in")).to_be_visible()
    # The guard found the session ended and the page asked the server to clear the cookie.
    deadline = time.monotonic() + 10
    while _session_cookies(context) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _session_cookies(context) == []


class _CodeKeeper(ReflexSocket):
    """A tab that keeps the login's exchange code instead of trading it."""

    code = ""

    async def _run_session_script(self, script, result, router_data) -> None:
        if match := re.search(r'\\"code\\": \\"([^\\"]+)\\"', script["javascript_code"]):
            self.code = match.group(1)


class _CodeKeeperClient(WsClient):
    async def _make(self, base_url: str, origin: str | None, token: str | None) -> ReflexSocket:
        return _CodeKeeper(base_url)


def _post(url: str, body: object, *, origin: str | None, method: str = "POST") -> tuple[int, dict[str, str]]:
    data = None if method == "GET" else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", **({"Origin": origin} if origin else {})}
    request = urllib.request.Request(f"{url}{session_cookie.PATH}", data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, {k.lower(): v for k, v in answer.headers.items()}
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}


def test_the_exchange_route_refuses_a_foreign_origin_a_get_and_a_reused_code(app_server):
    with _CodeKeeperClient(app_server.url) as client:
        client.call(LoginState, "log_in", {"form_data": {"email": ROUTE_EMAIL, "password": DEMO_PASSWORD}},
                    pathname="/login")
        code = client.socket.code
    assert code

    for status, headers in [
        _post(app_server.url, {"code": code}, origin="https://evil.example"),
        _post(app_server.url, {"code": code}, origin=None),
        _post(app_server.url, {"code": code}, origin=app_server.url, method="GET"),
    ]:
        assert status in (403, 405), status
        assert "set-cookie" not in headers
        assert headers["cache-control"] == "no-store"

    status, headers = _post(app_server.url, {"code": code}, origin=app_server.url)
    assert status == 204
    assert headers["cache-control"] == "no-store"
    assert "content-security-policy" in headers  # the app's security headers, as on every answer
    name, _, token = headers["set-cookie"].split(";", 1)[0].partition("=")
    assert name == COOKIE
    assert _active_session(app_server, token) == 1
    assert {"httponly", "samesite=strict", "path=/"} <= {a.strip().lower() for a in headers["set-cookie"].split(";")}

    status, headers = _post(app_server.url, {"code": code}, origin=app_server.url)
    assert status == 400
    assert "set-cookie" not in headers

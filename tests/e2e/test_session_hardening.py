"""Sessions and login over the real server: what the service tests cannot show from inside.

- The login lockout counts per account and the audit trail records the connection's address:
  a client that forges ``X-Forwarded-For`` on every try neither escapes the lockout nor writes
  the address it chose (``HMS_TRUSTED_PROXY_HOPS`` is 0 here: no proxy is trusted).
- Idle and absolute expiry are enforced by the server at an open tab's next action, whatever
  the browser still holds: in tests/e2e/test_session_kept.py, with the tab's kept session.
- A session cookie planted before login (session fixation) is replaced by a new token.
- A closed tab's id (which the websocket's address carries, and so a proxy's access log) does
  not take over its session on a new connection; the session cookie in the handshake does.
- The server's log holds no password, no session token and no clinical text after a failed
  login, a login, a chart view and a saved note.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from typing import Any

import pytest
from playwright.sync_api import expect

from hms_app.services.administration.auth import LOGIN_FAILED_MESSAGE
from hms_app.state.auth import LoginState
from hms_app.state.dashboard import ProfileState
from tests.e2e.helpers import (
    DEMO_PASSWORD,
    db_rows,
    db_value,
    log_in,
    log_in_to,
    wait_for_db,
    wait_ready,
)
from tests.e2e.xss_seed import seed_on
from tests.ws_client import EVENT_PATH, ReflexSocket, WsClient

LOCKOUT_EMAIL = "kwame.mensah@patients.example"  # used by no other journey
FIXATION_EMAIL = "yusuf.demir@patients.example"  # used by no other journey
TAB_EMAIL = "noah.williams@patients.example"  # used by no other journey
STATE = "reflex___state____state"
FORGED = ["10.9.8.7", "203.0.113.250", "1.1.1.1, 8.8.8.8", "127.0.0.2", "::1"]


class _ForwardedSocket(ReflexSocket):
    """A tab whose handshake carries a forged ``X-Forwarded-For``."""

    def __init__(self, base_url: str, forwarded_for: str) -> None:
        super().__init__(base_url)
        self.forwarded_for = forwarded_for

    async def connect(self, timeout: float = 10) -> None:
        await self._sio.connect(
            f"{self.base_url}?token={self.token}", headers={"Origin": self.origin, "X-Forwarded-For": self.forwarded_for},
            transports=["websocket"], namespaces=[EVENT_PATH], socketio_path=EVENT_PATH, wait_timeout=timeout,
        )


class _ForwardedClient(WsClient):
    def __init__(self, base_url: str, forwarded_for: str) -> None:
        self._forwarded_for = forwarded_for
        super().__init__(base_url)

    async def _make(self, base_url: str, origin: str | None, token: str | None) -> ReflexSocket:
        return _ForwardedSocket(base_url, self._forwarded_for)


class _TabSocket(ReflexSocket):
    """A connection that presents a given tab id, and a ``Cookie`` header if given one."""

    def __init__(self, base_url: str, token: str, cookie: str) -> None:
        super().__init__(base_url, token=token)
        self.cookie = cookie

    async def connect(self, timeout: float = 10) -> None:
        headers = {"Origin": self.origin, **({"Cookie": self.cookie} if self.cookie else {})}
        await self._sio.connect(f"{self.base_url}?token={self.token}", headers=headers, transports=["websocket"],
                                namespaces=[EVENT_PATH], socketio_path=EVENT_PATH, wait_timeout=timeout)


class _TabClient(WsClient):
    def __init__(self, base_url: str, token: str, cookie: str = "") -> None:
        self._cookie = cookie
        super().__init__(base_url, token=token)

    async def _make(self, base_url: str, origin: str | None, token: str | None) -> ReflexSocket:
        return _TabSocket(base_url, token or "", self._cookie)


def _log_in(client: WsClient, email: str, password: str):
    return client.call(LoginState, "log_in", {"form_data": {"email": email, "password": password}}, pathname="/login")


def test_a_forged_x_forwarded_for_neither_escapes_the_lockout_nor_is_recorded(app_server):
    url = app_server.database_url
    for attempt, forged in enumerate(FORGED, start=1):
        with _ForwardedClient(app_server.url, forged) as client:
            result = _log_in(client, LOCKOUT_EMAIL, f"Wrong-password-{attempt}")
        assert ("error", LOGIN_FAILED_MESSAGE) in result.toasts
    assert db_value(url, 'SELECT locked_until IS NOT NULL FROM "user" WHERE email = ?', (LOCKOUT_EMAIL,)) == 1

    # The right password, from yet another "address", is refused while the lock holds.
    with _ForwardedClient(app_server.url, "192.0.2.77") as client:
        result = _log_in(client, LOCKOUT_EMAIL, DEMO_PASSWORD)
    assert ("error", LOGIN_FAILED_MESSAGE) in result.toasts
    assert not any(level == "success" for level, _ in result.toasts)
    assert db_value(url, 'SELECT count(*) FROM auth_session s JOIN "user" u ON u.id = s.user_id WHERE u.email = ?',
                    (LOCKOUT_EMAIL,)) == 0

    recorded = {ip for (ip,) in db_rows(url, "SELECT ip_address FROM audit_event WHERE actor_email = ? "
                                             "AND action LIKE 'login.%'", (LOCKOUT_EMAIL,))}
    assert recorded == {"127.0.0.1"}, recorded
    actions = [a for (a,) in db_rows(url, "SELECT action FROM audit_event WHERE actor_email = ? ORDER BY id",
                                     (LOCKOUT_EMAIL,))]
    assert actions == ["login.failed"] * 4 + ["login.lockout", "login.failed", "login.locked"]


def _token_of(client: WsClient, login) -> str:
    """The session cookie ``client`` was given by the login whose result is ``login``."""
    assert [level for level, _ in login.toasts][-1:] == ["success"], login.toasts
    token = client.session_cookie
    assert token, "the login set no session cookie"
    return token


def test_a_cookie_planted_before_login_is_replaced_by_a_new_token(app_server, page, context):
    planted = f"planted-{uuid.uuid4().hex}"
    context.add_cookies([{"name": "hms_session", "value": planted, "url": app_server.url}])
    log_in_to(page, app_server.url, FIXATION_EMAIL, "/patient")
    token = next(c["value"] for c in context.cookies() if c["name"] == "hms_session")
    assert token != planted
    url = app_server.database_url
    assert db_value(url, "SELECT count(*) FROM auth_session WHERE token_hash = ? AND revoked_at IS NULL",
                    (hashlib.sha256(token.encode()).hexdigest(),)) == 1
    assert db_value(url, "SELECT count(*) FROM auth_session WHERE token_hash = ?",
                    (hashlib.sha256(planted.encode()).hexdigest(),)) == 0


@pytest.fixture(scope="module")
def patient_record(app_server) -> dict[str, Any]:
    """A patient of Dr Okafor's with clinical text on record and a started visit to write notes in."""
    return seed_on(app_server)


def test_the_server_log_holds_no_password_token_or_clinical_text(app_server, page, context, patient_record):
    record, nonce = patient_record, uuid.uuid4().hex[:10]
    wrong_password = f"Wrong-Log-Canary-{nonce}"
    note = f"LogCanaryNote {nonce}: sharp pain on the medial side"

    log_in(page, app_server.url, record["doctor_email"], wrong_password)
    wait_for_db(app_server.database_url, "SELECT count(*) FROM audit_event WHERE action = 'login.failed' "
                                         "AND actor_email = ?", (record["doctor_email"],))
    log_in_to(page, app_server.url, record["doctor_email"], "/doctor")
    token = next(c["value"] for c in context.cookies() if c["name"] == "hms_session")

    page.goto(f"{app_server.url}/doctor/patient?id={record['patient']}")
    wait_ready(page)
    expect(page.get_by_text(record["payloads"]["allergy"]).first).to_be_visible()
    page.goto(f"{app_server.url}/doctor/encounter?appointment={record['open_visit']}")
    wait_ready(page)
    page.locator("textarea[name=subjective]").fill(note)
    page.get_by_role("button", name="Save notes and vitals").click()
    expect(page.get_by_text("Notes and vitals saved.")).to_be_visible()

    log = app_server.log_path.read_text(errors="replace")
    secrets = {
        "the wrong password": wrong_password, "the password": DEMO_PASSWORD, "the session token": token,
        "the session token's hash": hashlib.sha256(token.encode()).hexdigest(), "the note": note,
        "the patient's allergy": record["payloads"]["allergy"], "the patient's diagnosis": record["payloads"]["diagnosis"],
        "the patient's password": record["password"],
    }
    leaked = [what for what, secret in secrets.items() if secret in log or re.escape(secret) in log]
    assert not leaked, f"the server log holds {leaked}"


def test_a_closed_tabs_id_alone_neither_takes_over_its_session_nor_reads_its_state(app_server):
    with WsClient(app_server.url) as tab:
        session_token = _token_of(tab, _log_in(tab, TAB_EMAIL, DEMO_PASSWORD))
        tab_id = tab.token
        loaded = tab.call(ProfileState, "load_profile", pathname="/patient")
        assert loaded.toasts == []
        assert TAB_EMAIL in loaded.text()
    # The tab's connection closes without a logout; its state (the session token, the profile
    # just loaded) stays on the server under the tab's id.

    # Someone who read the id off an access log connects with it, without the cookie or with a wrong one.
    for cookie in ("", "hms_session=not-the-token"):
        with _TabClient(app_server.url, tab_id, cookie=cookie) as thief:
            hydrated = thief.call(STATE, "hydrate_and_load", {}, pathname="/patient")
            acted = thief.call(ProfileState, "load_profile", pathname="/patient")
        assert TAB_EMAIL not in hydrated.text(), "Reflex's hydration sent the closed tab's state"
        assert ("error", "Please log in.") in acted.toasts
        assert TAB_EMAIL not in acted.text()

    # The owner's browser reconnects (a reload) with its cookie: the session goes on.
    with _TabClient(app_server.url, tab_id, cookie=f"hms_session={session_token}") as owner:
        again = owner.call(ProfileState, "load_profile", pathname="/patient")
    assert again.toasts == []
    assert TAB_EMAIL in again.text()

"""A tab's kept session, over the real server's websocket.

A tab acts on the session it last resolved for up to a minute (``hms_app/state/auth.py``:
``SessionState._kept``), so the session row alone no longer decides every event. What the
README promises still holds at the very next action: a deactivation, a password reset, a
logout in another tab and a revoked permission each move an epoch before the service returns
(``hms_app/state/live.py``), which every tab compares at every event. Shown on one worker, and on
two workers sharing state through Redis, where the tabs sit on either worker.

Each server here is the backend alone (no browser, no front-end build), with the production
lifetime of a kept session (``HMS_SESSION_CACHE_SECONDS`` unset: 60 s), so a tab that missed a
change would go on acting for most of a minute; one more keeps sessions 2 s, to show a kept
session ending on its time.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
import redis
import sqlalchemy as sa

from hms_app import settings
from hms_app.db.engine import create_engine, session_scope
from hms_app.db.models import AuthSession
from hms_app.db.types import utcnow
from hms_app.services.core.passwords import hash_token
from hms_app.state.admin import AdminUsersState, PermissionsState
from hms_app.state.auth import LoginState, SessionState
from hms_app.state.dashboard import NotificationsState
from tests.e2e.helpers import DEMO_PASSWORD, db_value
from tests.e2e.server import AppServer, start_backend
from tests.ws_client import WsClient

REDIS_URL = "redis://127.0.0.1:6379/0"
ADMIN_EMAIL = "admin@hms.example"
REFUSED = ["/login?next=/patient"]
SHORT_SECONDS = 2


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[AppServer]:
    app = start_backend(tmp_path_factory.mktemp("kept-session"))
    yield app
    app.stop()


@pytest.fixture(scope="module")
def short_lived(tmp_path_factory) -> Iterator[AppServer]:
    """Tabs keep a resolved session for 2 s at most."""
    app = start_backend(tmp_path_factory.mktemp("kept-session-short"),
                        extra_env={"HMS_SESSION_CACHE_SECONDS": str(SHORT_SECONDS)})
    yield app
    app.stop()


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory) -> Iterator[AppServer]:
    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.RedisError as error:
        pytest.fail(f"Redis is needed at {REDIS_URL}: {error}")
    app = start_backend(tmp_path_factory.mktemp("kept-session-redis"), extra_env={"REFLEX_REDIS_URL": REDIS_URL},
                        workers=2)
    yield app
    app.stop()


def _tab(app: AppServer, email: str) -> WsClient:
    """A tab logged in as ``email``, with a session of its own."""
    tab = WsClient(app.url).connect()
    result = tab.call(LoginState, "log_in", {"form_data": {"email": email, "password": DEMO_PASSWORD}},
                      pathname="/login")
    assert result.toasts[-1][0] == "success", result.toasts
    return tab


def _page_load(tab: WsClient, role: str = "patient") -> list[str]:
    """The guard of a page of ``role``: the redirects it answered with ([] when it let the tab in)."""
    return tab.call(SessionState, "guard", {"role": role}, pathname=f"/{role}").redirects


def _warm(tab: WsClient) -> None:
    """Two page loads: the second keeps the session, with the user's epochs read first."""
    assert _page_load(tab) == []
    assert _page_load(tab) == []


def _user_id(app: AppServer, email: str) -> int:
    return db_value(app.database_url, 'SELECT id FROM "user" WHERE email = ?', (email,))


def _change_behind_the_apps_back(app: AppServer, token: str, **values) -> None:
    """Change the session row with no service: no epoch moves."""
    engine = create_engine(app.database_url)
    try:
        with session_scope(engine=engine) as s:
            s.execute(sa.update(AuthSession).where(AuthSession.token_hash == hash_token(token)).values(**values))
            s.commit()
    finally:
        engine.dispose()


def _admin_does(app: AppServer, handler: str, payload: dict, pathname: str = "/admin/users") -> None:
    admin = _tab(app, ADMIN_EMAIL)
    try:
        state = PermissionsState if handler == "toggle_permission" else AdminUsersState
        result = admin.call(state, handler, payload, pathname=pathname)
        assert [level for level, _ in result.toasts] == ["success"], result.toasts
    finally:
        admin.close()


def _load_notifications(tab: WsClient) -> list[tuple[str, str]]:
    return tab.call(NotificationsState, "load_rows", pathname="/notifications").toasts


def test_a_tab_keeps_its_session_on_its_connection_and_resolves_it_afresh_on_a_new_one(server):
    """What makes the tests below mean something: a session row ended behind the app's back (no
    service, so no epoch moves) still serves the open tab, which a missed change would too."""
    tab = _tab(server, "sofia.rossi@patients.example")
    try:
        _warm(tab)
        token = tab.session_cookie
        _change_behind_the_apps_back(server, token, revoked_at=utcnow())
        assert _page_load(tab) == []  # the kept session: the row is not read again yet
        # The same tab reloaded (a new connection with the cookie) resolves the session afresh.
        with WsClient(server.url, token=tab.token, cookie=f"{settings.SESSION_COOKIE_NAME}={token}") as reloaded:
            assert _page_load(reloaded) == REFUSED
    finally:
        tab.close()


@pytest.mark.parametrize("clock", ["idle", "absolute"])
def test_a_kept_session_ends_on_its_time_and_the_session_rows_clocks_rule_again(short_lived, clock):
    """The session's clocks moved past their limits (as time would) with no service: the tab acts on
    its kept session until its time is up, then the server finds the session expired, ends it and
    audits it once."""
    email = {"idle": "liam.brown@patients.example", "absolute": "emma.johnson@patients.example"}[clock]
    tab = _tab(short_lived, email)
    try:
        _warm(tab)
        token = tab.session_cookie
        values = ({"last_seen_at": utcnow() - timedelta(minutes=31)} if clock == "idle"
                  else {"expires_at": utcnow() - timedelta(seconds=1)})
        _change_behind_the_apps_back(short_lived, token, **values)
        time.sleep(SHORT_SECONDS + 0.5)
        assert _page_load(tab) == REFUSED
        url = short_lived.database_url
        assert db_value(url, "SELECT revoked_at IS NOT NULL FROM auth_session WHERE token_hash = ?",
                        (hash_token(token),)) == 1
        session_id = db_value(url, "SELECT id FROM auth_session WHERE token_hash = ?", (hash_token(token),))
        assert db_value(url, "SELECT count(*) FROM audit_event WHERE action = 'session.expired' AND entity_id = ?",
                        (str(session_id),)) == 1
    finally:
        tab.close()


@pytest.mark.parametrize(("handler", "email"), [("deactivate", "kenji.tanaka@patients.example"),
                                                ("reset_password", "ingrid.larsen@patients.example")])
def test_an_admins_deactivation_or_password_reset_refuses_the_users_open_tabs_at_their_next_action(
        server, handler, email):
    tabs = [_tab(server, email), _tab(server, email)]
    try:
        for tab in tabs:
            _warm(tab)
        _admin_does(server, handler, {"user_id": _user_id(server, email)})
        for tab in tabs:
            assert _page_load(tab) == REFUSED
    finally:
        for tab in tabs:
            tab.close()


def test_a_logout_in_one_tab_refuses_the_browsers_other_tab_at_its_next_action(server):
    first = _tab(server, "noah.williams@patients.example")
    token = first.session_cookie
    # Another tab of the same browser: its own tab id, the same session cookie.
    with WsClient(server.url, cookie=f"{settings.SESSION_COOKIE_NAME}={token}") as second:
        try:
            _warm(first)
            _warm(second)
            first.call(SessionState, "logout", pathname="/patient")
            assert db_value(server.database_url, "SELECT revoked_at IS NOT NULL FROM auth_session "
                                                 "WHERE token_hash = ?", (hash_token(token),)) == 1
            assert _page_load(second) == REFUSED
        finally:
            first.close()


def test_a_revoked_permission_is_refused_at_the_next_call_and_a_granted_one_allowed(server):
    tab = _tab(server, "yusuf.demir@patients.example")
    change = {"role": "patient", "permission": "notifications.own"}
    try:
        _warm(tab)
        assert _load_notifications(tab) == []
        _admin_does(server, "toggle_permission", {**change, "grant": False}, "/admin/permissions")
        assert ("error", "You do not have permission to do that.") in _load_notifications(tab)
    finally:
        _admin_does(server, "toggle_permission", {**change, "grant": True}, "/admin/permissions")
    try:
        assert _load_notifications(tab) == []
    finally:
        tab.close()


def test_on_two_workers_a_tab_keeps_its_session_too(two_workers):
    tab = _tab(two_workers, "daniel.cohen@patients.example")
    try:
        _warm(tab)
        _change_behind_the_apps_back(two_workers, tab.session_cookie, revoked_at=utcnow())
        assert _page_load(tab) == []
    finally:
        tab.close()


def test_on_two_workers_a_deactivation_refuses_the_users_tabs_on_either_worker(two_workers):
    email = "chloe.martin@patients.example"
    tabs = [_tab(two_workers, email) for _ in range(6)]  # connections spread over the two workers
    try:
        for tab in tabs:
            _warm(tab)
        _admin_does(two_workers, "deactivate", {"user_id": _user_id(two_workers, email)})
        assert [_page_load(tab) for tab in tabs] == [REFUSED] * len(tabs)
    finally:
        for tab in tabs:
            tab.close()


def test_on_two_workers_a_revoked_permission_is_refused_on_either_worker(two_workers):
    tabs = [_tab(two_workers, "zara.ahmed@patients.example") for _ in range(6)]
    change = {"role": "patient", "permission": "notifications.own"}
    try:
        for tab in tabs:
            _warm(tab)
            assert _load_notifications(tab) == []
        _admin_does(two_workers, "toggle_permission", {**change, "grant": False}, "/admin/permissions")
        for tab in tabs:
            assert ("error", "You do not have permission to do that.") in _load_notifications(tab)
    finally:
        _admin_does(two_workers, "toggle_permission", {**change, "grant": True}, "/admin/permissions")
        for tab in tabs:
            tab.close()

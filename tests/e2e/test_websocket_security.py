"""A hostile client on the websocket: admin handlers called directly, with real and with absurd arguments.

The browser only shows a patient the patient's pages, but any client can send any event to
any state. These tests skip the browser and speak Reflex's event protocol to the real app
(``tests/ws_client.py``), as a logged-in patient, as a visitor without a session and, for
arguments of the wrong type, as the admin. Each call must be refused by the service it
reaches (an error toast, a ``denied`` audit row naming who asked), change nothing in the
database, and send back no other user's data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import socketio
import sqlalchemy as sa

from hms_app.db.engine import create_engine, session_scope
from hms_app.db.models import Notification
from hms_app.state.admin import (
    AdminDashboardState,
    AdminUsersState,
    AuditState,
    DepartmentsState,
    PermissionsState,
)
from hms_app.state.auth import LoginState, PasswordState, RegisterState, SessionState
from hms_app.state.dashboard import NotificationsState, ProfileState
from tests.ws_client import EventResult, WsClient

PATIENT_EMAIL = "maria.garcia@patients.example"
ADMIN_EMAIL = "admin@hms.example"
OTHER_PATIENT_EMAIL = "james.smith@patients.example"
DOCTOR_EMAIL = "amelia.hart@hms.example"
DEMO_PASSWORD = "Demo-Hospital-2026"
CRASH_MESSAGE = "Something went wrong on our side"
STRONG_PASSWORD = "Intruder-Passw0rd-2026"
# Tables compared before and after each call; the audit trail is checked row by row instead,
# the throttle counts refused attempts per address, and a session's idle clock may move on any call.
NOT_COMPARED = {"audit_event": None, "throttle": None, "auth_session": {"last_seen_at"}}
HUGE = "9" * 200_000


# --- the app, its database and the clients ---------------------------------------------


@dataclass(frozen=True)
class Targets:
    """Real ids of other people's records, to aim the calls at."""

    admin: int
    doctor: int
    other_patient: int
    patient: int
    department: int
    notification: int


class Database:
    """The app server's database, read by the tests (the one write is the notification below)."""

    def __init__(self, url: str) -> None:
        self.engine = create_engine(url)
        meta = sa.MetaData()
        meta.reflect(self.engine)
        self.tables = [
            (name, [c for c in table.c if c.name not in (NOT_COMPARED.get(name) or ())])
            for name, table in sorted(meta.tables.items())
            if not (name in NOT_COMPARED and NOT_COMPARED[name] is None)
        ]

    def connect(self) -> sa.Connection:
        return self.engine.connect()

    def snapshot(self) -> dict[str, list[tuple]]:
        """Every row of every table but the audit trail, to compare before and after a call."""
        with self.engine.connect() as conn:
            return {name: conn.execute(sa.select(*columns).order_by(*columns)).all() for name, columns in self.tables}

    def audit_mark(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(sa.text("SELECT coalesce(max(id), 0) FROM audit_event")).scalar_one()

    def audit_since(self, mark: int) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT action, actor_id, actor_email, outcome, ip_address FROM audit_event WHERE id > :m ORDER BY id"
            ), {"m": mark})
            return [dict(r._mapping) for r in rows]


@pytest.fixture(scope="module")
def db(app_server) -> Iterator[Database]:
    database = Database(app_server.database_url)
    yield database
    database.engine.dispose()


def _user_id(db: Database, email: str) -> int:
    with db.connect() as conn:
        return conn.execute(sa.text('SELECT id FROM "user" WHERE email = :e'), {"e": email}).scalar_one()


@pytest.fixture(scope="module")
def targets(db) -> Targets:
    other_patient = _user_id(db, OTHER_PATIENT_EMAIL)
    with session_scope(engine=db.engine) as s:
        notification = Notification(user_id=other_patient, title="Your results are ready")
        s.add(notification)
        s.commit()
        notification_id = notification.id
    with db.connect() as conn:
        department = conn.execute(sa.text("SELECT min(id) FROM department WHERE is_active")).scalar_one()
    return Targets(
        admin=_user_id(db, ADMIN_EMAIL), doctor=_user_id(db, DOCTOR_EMAIL), other_patient=other_patient,
        patient=_user_id(db, PATIENT_EMAIL), department=department, notification=notification_id,
    )


def _logged_in(app_server, email: str) -> WsClient:
    client = WsClient(app_server.url).connect()
    result = client.call(LoginState, "log_in", {"form_data": {"email": email, "password": DEMO_PASSWORD}},
                         pathname="/login")
    assert result.toasts[-1][0] == "success", result.toasts
    return client


@pytest.fixture(scope="module")
def patient(app_server, targets) -> Iterator[WsClient]:
    client = _logged_in(app_server, PATIENT_EMAIL)
    yield client
    client.close()


@pytest.fixture(scope="module")
def admin(app_server, targets) -> Iterator[WsClient]:
    client = _logged_in(app_server, ADMIN_EMAIL)
    yield client
    client.close()


@pytest.fixture
def visitor(app_server, targets) -> Iterator[WsClient]:
    # A connection of its own for each test: the first refusal of a connection with no session
    # is audited at once, those after it within a minute as one row with their count.
    client = WsClient(app_server.url).connect()
    yield client
    client.close()


def _private_data(db: Database, *, except_user: int | None) -> set[str]:
    """Text that identifies a user other than ``except_user``, or that nobody may ever see."""
    with db.connect() as conn:
        users = conn.execute(sa.text('SELECT id, email, full_name, password_hash FROM "user"')).all()
        patients = conn.execute(sa.text("SELECT user_id, mrn, phone FROM patient_profile")).all()
        token_hashes = conn.execute(sa.text("SELECT token_hash FROM auth_session")).scalars().all()
    secret = {u.password_hash for u in users} | set(token_hashes)
    others = {value for u in users if u.id != except_user for value in (u.email, u.full_name)}
    others |= {value for p in patients if p.user_id != except_user for value in (p.mrn, p.phone) if value}
    return secret | others


@pytest.fixture(scope="module")
def private_to_patient(db, targets) -> set[str]:
    return _private_data(db, except_user=targets.patient)


@pytest.fixture(scope="module")
def private_to_all(db, targets) -> set[str]:
    return _private_data(db, except_user=None)


def _leaked(result: EventResult, private: set[str]) -> list[str]:
    text = result.text()
    return sorted(value for value in private if value in text)


def _assert_no_crash(result: EventResult) -> None:
    text = result.text()
    assert CRASH_MESSAGE not in text, f"the handler raised: {result.toasts}"
    assert "Traceback" not in text


# --- the calls ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Attack:
    id: str
    state: type
    handler: str
    payload: Callable[[Targets], dict[str, Any]]
    pathname: str = "/admin"


def _staff_form(role: str = "admin") -> dict[str, str]:
    return {"full_name": "Mallory Intruder", "email": "mallory@evil.example", "role": role,
            "password": STRONG_PASSWORD, "department_id": "", "specialty": "", "consultation_fee": "",
            "slot_minutes": "20"}


# Every privileged handler, aimed at other people's records. Each must be refused.
ATTACKS = [
    Attack("dashboard-figures", AdminDashboardState, "load_figures", lambda t: {}),
    Attack("users-load", AdminUsersState, "load_rows", lambda t: {}, "/admin/users"),
    Attack("users-search", AdminUsersState, "search_rows", lambda t: {"text": "a"}, "/admin/users"),
    Attack("users-sort", AdminUsersState, "sort_rows", lambda t: {"column": "email"}, "/admin/users"),
    Attack("users-next-page", AdminUsersState, "next_page", lambda t: {}, "/admin/users"),
    Attack("users-previous-page", AdminUsersState, "previous_page", lambda t: {}, "/admin/users"),
    Attack("users-filter-role", AdminUsersState, "filter_role", lambda t: {"role": "admin"}, "/admin/users"),
    Attack("users-deactivate-admin", AdminUsersState, "deactivate", lambda t: {"user_id": t.admin}, "/admin/users"),
    Attack("users-deactivate-doctor", AdminUsersState, "deactivate", lambda t: {"user_id": t.doctor}, "/admin/users"),
    Attack("users-reactivate-patient", AdminUsersState, "reactivate", lambda t: {"user_id": t.other_patient},
           "/admin/users"),
    Attack("users-reset-admin-password", AdminUsersState, "reset_password",
           lambda t: {"user_id": t.admin, "name": "Admin"}, "/admin/users"),
    Attack("users-reset-patient-password", AdminUsersState, "reset_password",
           lambda t: {"user_id": t.other_patient, "name": "James"}, "/admin/users"),
    Attack("users-create-admin", AdminUsersState, "create_user", lambda t: {"form_data": _staff_form()},
           "/admin/users"),
    Attack("departments-create", DepartmentsState, "create_department",
           lambda t: {"form_data": {"name": "Shadow Ward"}}, "/admin/departments"),
    Attack("departments-rename", DepartmentsState, "rename_department",
           lambda t: {"form_data": {"name": "Renamed Ward"}}, "/admin/departments"),
    Attack("departments-deactivate", DepartmentsState, "toggle_department",
           lambda t: {"department_id": t.department, "active": False}, "/admin/departments"),
    Attack("permissions-load", PermissionsState, "load_matrix", lambda t: {}, "/admin/permissions"),
    Attack("permissions-grant-users-manage-to-patient", PermissionsState, "toggle_permission",
           lambda t: {"role": "patient", "permission": "users.manage", "grant": True}, "/admin/permissions"),
    Attack("permissions-revoke-audit-view-from-admin", PermissionsState, "toggle_permission",
           lambda t: {"role": "admin", "permission": "audit.view", "grant": False}, "/admin/permissions"),
    Attack("audit-load", AuditState, "load_rows", lambda t: {}, "/admin/audit"),
    Attack("audit-older-page", AuditState, "next_page", lambda t: {}, "/admin/audit"),
    Attack("audit-newer-page", AuditState, "previous_page", lambda t: {}, "/admin/audit"),
    Attack("audit-filter", AuditState, "apply_filters", lambda t: {"form_data": {"user": "admin"}}, "/admin/audit"),
    Attack("audit-clear-filters", AuditState, "clear_filters", lambda t: {}, "/admin/audit"),
    Attack("audit-export", AuditState, "export_csv", lambda t: {}, "/admin/audit"),
    Attack("audit-verify", AuditState, "verify_chain", lambda t: {}, "/admin/audit"),
    Attack("notifications-mark-others-read", NotificationsState, "mark_read",
           lambda t: {"notification_id": t.notification}, "/notifications"),
]
# For a visitor the signed-in user's own pages are just as closed.
VISITOR_ATTACKS = [
    *ATTACKS,
    Attack("profile-load", ProfileState, "load_profile", lambda t: {}, "/patient"),
    Attack("notifications-load", NotificationsState, "load_rows", lambda t: {}, "/notifications"),
    Attack("notifications-mark-all-read", NotificationsState, "mark_all_read", lambda t: {}, "/notifications"),
    Attack("password-change", PasswordState, "change_password",
           lambda t: {"form_data": {"current_password": DEMO_PASSWORD, "new_password": STRONG_PASSWORD,
                                    "new_password_confirm": STRONG_PASSWORD}}, "/account/password"),
    Attack("departments-list", DepartmentsState, "load_departments", lambda t: {}, "/admin/departments"),
    Attack("users-open-create", AdminUsersState, "open_create", lambda t: {}, "/admin/users"),
]


def _attack(client: WsClient, db: Database, attack: Attack, targets: Targets) -> tuple[EventResult, list[dict]]:
    """Make the call; assert it changed nothing; return what came back and the new audit rows."""
    before = db.snapshot()
    mark = db.audit_mark()
    result = client.call(attack.state, attack.handler, attack.payload(targets), pathname=attack.pathname)
    assert db.snapshot() == before, f"{attack.id} changed the database"
    return result, db.audit_since(mark)


def _assert_refused(result: EventResult) -> None:
    _assert_no_crash(result)
    levels = [level for level, _ in result.toasts]
    assert "error" in levels, f"no refusal shown: {result.toasts}"
    assert "success" not in levels, result.toasts
    assert not result.downloads


@pytest.mark.parametrize("attack", ATTACKS, ids=lambda a: a.id)
def test_a_patient_calling_admin_handlers_is_refused_and_audited(patient, db, targets, private_to_patient, attack):
    if attack.handler == "rename_department":
        patient.call(DepartmentsState, "start_rename", {"department_id": targets.department})

    result, audit_rows = _attack(patient, db, attack, targets)

    _assert_refused(result)
    assert not _leaked(result, private_to_patient)
    assert audit_rows, "the refusal was not audited"
    for row in audit_rows:
        assert (row["outcome"], row["actor_id"], row["actor_email"]) == ("denied", targets.patient, PATIENT_EMAIL)
        assert row["ip_address"] == "127.0.0.1"


@pytest.mark.parametrize("attack", VISITOR_ATTACKS, ids=lambda a: a.id)
def test_a_visitor_without_session_is_refused_and_audited(visitor, db, targets, private_to_all, attack):
    result, audit_rows = _attack(visitor, db, attack, targets)

    _assert_refused(result)
    assert [path.partition("?")[0] for path in result.redirects] == ["/login"]
    assert not _leaked(result, private_to_all)
    assert audit_rows, "the refusal was not audited"
    for row in audit_rows:
        assert (row["outcome"], row["actor_id"], row["actor_email"]) == ("denied", None, "")
        assert row["ip_address"] == "127.0.0.1"


def test_the_patient_is_still_logged_in_and_still_a_patient(patient):
    assert not patient.call(ProfileState, "load_profile", pathname="/patient").toasts
    result = patient.call(AdminUsersState, "load_rows", pathname="/admin/users")
    assert result.toasts == [("error", "You do not have permission to do that.")]


# UI-only handlers and the lists every signed-in role may read: a patient may call them, but
# they change nothing and show nobody else.
HARMLESS = [
    Attack("users-open-create", AdminUsersState, "open_create", lambda t: {}, "/admin/users"),
    Attack("users-close-create", AdminUsersState, "close_create", lambda t: {}, "/admin/users"),
    Attack("users-choose-role", AdminUsersState, "choose_create_role", lambda t: {"role": "admin"}, "/admin/users"),
    Attack("users-dismiss-password", AdminUsersState, "dismiss_temporary_password", lambda t: {}, "/admin/users"),
    Attack("departments-list", DepartmentsState, "load_departments", lambda t: {}, "/admin/departments"),
    Attack("departments-start-rename", DepartmentsState, "start_rename",
           lambda t: {"department_id": t.department}, "/admin/departments"),
    Attack("departments-cancel-rename", DepartmentsState, "cancel_rename", lambda t: {}, "/admin/departments"),
    Attack("hydrate", SessionState.get_root_state(), "hydrate", lambda t: {}, "/patient"),
]


@pytest.mark.parametrize("attack", HARMLESS, ids=lambda a: a.id)
def test_handlers_a_patient_may_call_show_nobody_else(patient, db, targets, private_to_patient, attack):
    result, audit_rows = _attack(patient, db, attack, targets)

    _assert_no_crash(result)
    assert not _leaked(result, private_to_patient)
    assert all(r["actor_id"] == targets.patient for r in audit_rows), audit_rows


def test_the_full_state_a_tab_gets_holds_no_backend_only_var(patient):
    result = patient.call(SessionState.get_root_state(), "hydrate", pathname="/patient")
    names = {var for delta in result.deltas for state in delta.values() for var in state}
    assert names
    assert not [name for name in names if name.startswith("_")]


def test_setvar_cannot_promote_a_patient(patient, db, targets):
    before = db.snapshot()
    for var, value in (("user_role", "admin"), ("_token", "x"), ("role_label", "Administrator")):
        result = patient.call(SessionState, "setvar", {"var_name": var, "value": value}, pathname="/patient")
        assert SessionState.get_full_name() not in {name for d in result.deltas for name in d}
    assert db.snapshot() == before
    result = patient.call(AdminUsersState, "load_rows", pathname="/admin/users")
    assert ("error", "You do not have permission to do that.") in result.toasts


# --- arguments of the wrong type ---------------------------------------------------------

WRONG_IDS = ["1 OR 1=1", HUGE, -1, -(2**63), 2**70, {"id": 1}, [1, 2], None, "", 1.5]
WRONG_TEXT = [HUGE, {"$ne": ""}, ["admin"], None, 12345, -1, True]
WRONG_FORMS = [
    "not a form", ["a", "list"], None, 7, {"name": HUGE, "full_name": HUGE, "email": HUGE, "user": HUGE},
    {"name": {"$gt": ""}, "full_name": ["x"], "email": {"a": 1}, "role": ["admin"], "password": {"p": 1},
     "department_id": [1], "consultation_fee": "-1", "slot_minutes": "-5", "date_from": {"d": 1}},
]


@dataclass(frozen=True)
class Hostile:
    """One handler, and a function that turns each absurd value into its arguments."""

    state: type
    handler: str
    values: list[Any]
    payload: Callable[[Any], dict[str, Any]]
    pathname: str = "/admin"

    @property
    def id(self) -> str:
        return f"{self.state.__name__}.{self.handler}"


HOSTILE = [
    Hostile(AdminUsersState, "deactivate", WRONG_IDS, lambda v: {"user_id": v}, "/admin/users"),
    Hostile(AdminUsersState, "reactivate", WRONG_IDS, lambda v: {"user_id": v}, "/admin/users"),
    Hostile(AdminUsersState, "reset_password", WRONG_IDS, lambda v: {"user_id": v, "name": v}, "/admin/users"),
    Hostile(DepartmentsState, "toggle_department", WRONG_IDS, lambda v: {"department_id": v, "active": v},
            "/admin/departments"),
    Hostile(NotificationsState, "mark_read", WRONG_IDS, lambda v: {"notification_id": v}, "/notifications"),
    Hostile(AdminUsersState, "filter_role", WRONG_TEXT, lambda v: {"role": v}, "/admin/users"),
    Hostile(AdminUsersState, "search_rows", WRONG_TEXT, lambda v: {"text": v}, "/admin/users"),
    Hostile(AdminUsersState, "sort_rows", WRONG_TEXT, lambda v: {"column": v}, "/admin/users"),
    Hostile(PermissionsState, "toggle_permission", WRONG_TEXT,
            lambda v: {"role": v, "permission": v, "grant": v}, "/admin/permissions"),
    Hostile(AdminUsersState, "create_user", WRONG_FORMS, lambda v: {"form_data": v}, "/admin/users"),
    Hostile(DepartmentsState, "create_department", WRONG_FORMS, lambda v: {"form_data": v}, "/admin/departments"),
    Hostile(DepartmentsState, "rename_department", WRONG_FORMS, lambda v: {"form_data": v}, "/admin/departments"),
    Hostile(AuditState, "apply_filters", WRONG_FORMS, lambda v: {"form_data": v}, "/admin/audit"),
    Hostile(LoginState, "log_in", WRONG_FORMS, lambda v: {"form_data": v}, "/login"),
    Hostile(RegisterState, "register", WRONG_FORMS, lambda v: {"form_data": v}, "/register"),
    Hostile(PasswordState, "change_password", WRONG_FORMS, lambda v: {"form_data": v}, "/account/password"),
]


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) < 60 else text[:40] + f"... ({len(text)} chars)"


def _try_hostile(client: WsClient, db: Database, hostile: Hostile, *, refused: bool,
                 private: set[str] | None) -> list[str]:
    """Send each absurd value; return what went wrong, one line per value."""
    problems = []
    for value in hostile.values:
        before = db.snapshot()
        result = client.call(hostile.state, hostile.handler, hostile.payload(value), pathname=hostile.pathname)
        wrong = []
        if db.snapshot() != before:
            wrong.append("changed the database")
        if CRASH_MESSAGE in result.text() or "Traceback" in result.text():
            wrong.append("crashed")
        levels = [level for level, _ in result.toasts]
        if refused and ("error" not in levels or "success" in levels or result.downloads):
            wrong.append(f"was not refused: {result.toasts}")
        if private is not None and (leaked := _leaked(result, private)):
            wrong.append(f"leaked {leaked[:3]}")
        if wrong:
            problems.append(f"{hostile.id}({_short(value)}): {', '.join(wrong)}")
    return problems


@pytest.mark.parametrize("hostile", HOSTILE, ids=lambda h: h.id)
def test_hostile_arguments_from_a_patient_are_refused_without_a_crash(patient, db, private_to_patient, hostile):
    assert not _try_hostile(patient, db, hostile, refused=True, private=private_to_patient)


@pytest.mark.parametrize("hostile", HOSTILE, ids=lambda h: h.id)
def test_hostile_arguments_from_a_visitor_are_refused_without_a_crash(visitor, db, private_to_all, hostile):
    assert not _try_hostile(visitor, db, hostile, refused=True, private=private_to_all)


@pytest.mark.parametrize("hostile", HOSTILE, ids=lambda h: h.id)
def test_hostile_arguments_from_the_admin_change_nothing_and_do_not_crash(admin, db, hostile):
    assert not _try_hostile(admin, db, hostile, refused=False, private=None)


# --- the handshake -----------------------------------------------------------------------


@pytest.mark.parametrize("origin", ["http://evil.example", "{url}.evil.example", "null", "https://{host}"])
def test_a_foreign_origin_is_refused(app_server, origin):
    host = app_server.url.removeprefix("http://")
    client = WsClient(app_server.url, origin=origin.format(url=app_server.url, host=host))
    with pytest.raises(socketio.exceptions.ConnectionError):
        client.connect()


def test_the_apps_own_origin_is_accepted(app_server):
    with WsClient(app_server.url) as client:
        result = client.call(LoginState, "open_login", pathname="/login")
        _assert_no_crash(result)

"""Shared fixtures: a real, migrated database per test, on SQLite or PostgreSQL.

SQLite is the default. With ``HMS_TEST_POSTGRES_URL`` set (a server URL such as
``postgresql+psycopg://postgres@127.0.0.1:5432/postgres``) every database test runs on
PostgreSQL instead: the suite migrates a template database once, gives each test its own
copy, and drops them all at the end.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

os.environ.setdefault("HMS_BCRYPT_ROUNDS", "4")  # speed only; production keeps 12 (tested)
# The data key and stored files of the test run live in a folder of its own, never in data/.
os.environ.setdefault("HMS_DATA_DIR", tempfile.mkdtemp(prefix="hms-test-data-"))

from hms_app.db import engine as db_engine
from hms_app.db.enums import Role
from hms_app.db.migrate import upgrade
from hms_app.operations import demo
from hms_app.services.administration import auth, permissions
from hms_app.services.core.actor import Actor, Anonymous

POSTGRES_URL = os.environ.get("HMS_TEST_POSTGRES_URL", "")


def _pg_admin_engine() -> sa.Engine:
    return sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")


def _no_second_factor_by_default(url: str) -> None:
    """No role requires a second factor in the test databases.

    The migration makes admin, accounts and doctor accounts enrol; but the suite logs the demo
    staff in many times a minute, and a one-time code is accepted only once per 30 seconds. The
    second-factor tests switch the requirement on themselves (``tests/services/test_second_factor.py``).
    """
    eng = sa.create_engine(url)
    with eng.begin() as conn:
        conn.execute(sa.text("UPDATE role_login_policy SET second_factor_required = false"))
    eng.dispose()


@pytest.fixture(scope="session")
def _template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated, empty database that each test copies."""
    if not POSTGRES_URL:
        path = tmp_path_factory.mktemp("template") / "template.db"
        url = f"sqlite:///{path}"
        upgrade(url)
        _no_second_factor_by_default(url)
        yield str(path)
        return
    name = f"hms_tmpl_{uuid.uuid4().hex[:10]}"
    admin = _pg_admin_engine()
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    _no_second_factor_by_default(url)
    yield name
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture
def database_url(_template: str, tmp_path: Path) -> Iterator[str]:
    """The URL of a fresh, migrated database of this test's own."""
    if not POSTGRES_URL:
        path = tmp_path / "hms.db"
        shutil.copyfile(_template, path)
        yield f"sqlite:///{path}"
        return
    name = f"hms_test_{uuid.uuid4().hex[:12]}"
    admin = _pg_admin_engine()
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{_template}"')
    yield sa.make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    """The process-wide engine pointed at this test's database."""
    eng = db_engine.create_engine(database_url)
    db_engine.use_engine(eng)
    yield eng
    db_engine.use_engine(None)
    eng.dispose()


@pytest.fixture
def session(engine: sa.Engine):
    with db_engine.session_scope(engine=engine) as s:
        yield s


@pytest.fixture
def seeded(engine: sa.Engine) -> sa.Engine:
    """The database with the demo hospital loaded, without its billing history: tests count
    invoices, payments and invoice numbers from zero."""
    with db_engine.session_scope(engine=engine) as s:
        demo.seed_demo(s, billing_history=False)
    return engine


@pytest.fixture
def empty_hospital(engine: sa.Engine) -> sa.Engine:
    """Default permissions only: no users."""
    with db_engine.session_scope(engine=engine) as s:
        permissions.seed_default_permissions(s)
        s.commit()
    return engine


def login_as(engine: sa.Engine, email: str, password: str = demo.DEMO_PASSWORD, ip: str = "203.0.113.9") -> Actor:
    """Log in through the real service and return the resolved actor."""
    with db_engine.session_scope(engine=engine) as s:
        result = auth.login(session=s, visitor=Anonymous(ip), email=email, password=password)
    with db_engine.session_scope(engine=engine) as s:
        return auth.resolve_session(session=s, token=result.token, ip_address=ip)


DEMO_EMAIL = {
    Role.ADMIN: "admin@hms.example",
    Role.ACCOUNTS: "accounts@hms.example",
    Role.LAB: "lab@hms.example",
    Role.PHARMACY: "pharmacy@hms.example",
    Role.DOCTOR: "amelia.hart@hms.example",
    Role.PATIENT: "maria.garcia@patients.example",
}


@pytest.fixture
def actors(seeded: sa.Engine) -> dict[Role, Actor]:
    """One logged-in actor per role, from the demo data."""
    return {role: login_as(seeded, email) for role, email in DEMO_EMAIL.items()}

"""Shared fixtures: a real, migrated database per test, on SQLite or PostgreSQL.

SQLite is the default. With ``HMS_TEST_POSTGRES_URL`` set (a server URL such as
``postgresql+psycopg://postgres@127.0.0.1:5432/postgres``) every database test runs on
PostgreSQL instead: the suite migrates a template database once, gives each test its own
copy, and drops them all at the end.

The demo hospital is seeded once per run (per pytest-xdist worker) into a template of its own
too, and ``seeded`` copies it over the test's database: a file copy on SQLite, ``CREATE
DATABASE … TEMPLATE`` on PostgreSQL. On PostgreSQL, where making a database and dropping one
cost a quarter of a second or more each (files written and synced), both happen off the tests'
path: the next copy of a template is made while a test runs, taken by a rename, and dropped
after it in the background (``_PgDatabases``). A template is kept per seeding context (the hospital's
"today", which some tests freeze, the time zone, the bcrypt cost), and is encrypted with the
run's data key: a test with a data folder of its own and no key yet is given that key, and a
test whose key differs, or whose database was already written to, is seeded from scratch.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa

os.environ.setdefault("HMS_BCRYPT_ROUNDS", "4")  # speed only; production keeps 12 (tested)
# The data key and stored files of the test run live in a folder of its own, never in data/;
# each pytest-xdist worker (which inherits the controller's environment) gets one of its own.
if "PYTEST_XDIST_WORKER" in os.environ or "HMS_DATA_DIR" not in os.environ:
    os.environ["HMS_DATA_DIR"] = tempfile.mkdtemp(prefix="hms-test-data-")

from hms_app import settings
from hms_app.db import crypto
from hms_app.db import engine as db_engine
from hms_app.db.enums import Role
from hms_app.db.migrate import upgrade
from hms_app.operations import demo
from hms_app.services.administration import auth, permissions
from hms_app.services.core import localtime
from hms_app.services.core.actor import Actor, Anonymous

POSTGRES_URL = os.environ.get("HMS_TEST_POSTGRES_URL", "")


def _pg_admin_engine() -> sa.Engine:
    return sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")


@contextmanager
def _pg_admin() -> Iterator[sa.Connection]:
    admin = _pg_admin_engine()
    try:
        with admin.connect() as conn:
            yield conn
    finally:
        admin.dispose()


def _pg_url(name: str) -> str:
    return sa.make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)


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
    _databases.settle()
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


class _PgDatabases:
    """Copies of PostgreSQL templates made one ahead, and databases dropped behind, in threads.

    A copy is made under a name of its own and renamed to the test's when taken (a rename writes
    one catalog row), so a test waits for neither the copy nor the drop of the one before.
    """

    def __init__(self) -> None:
        self._threads = ThreadPoolExecutor(max_workers=2, thread_name_prefix="pg-databases")
        self._ahead: dict[str, list[Future[str]]] = defaultdict(list)
        self._behind: list[Future[None]] = []

    @staticmethod
    def _copy(template: str) -> str:
        name = f"hms_next_{uuid.uuid4().hex[:12]}"
        with _pg_admin() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return name

    @staticmethod
    def _drop(name: str) -> None:
        with _pg_admin() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def take(self, template: str, name: str) -> None:
        """Create ``name`` as a copy of ``template``: the one made ahead, and start the next."""
        ahead = self._ahead[template]
        made = ahead.pop(0) if ahead else self._threads.submit(self._copy, template)
        ahead.append(self._threads.submit(self._copy, template))
        with _pg_admin() as conn:
            conn.exec_driver_sql(f'ALTER DATABASE "{made.result()}" RENAME TO "{name}"')

    def drop(self, name: str) -> None:
        self._behind.append(self._threads.submit(self._drop, name))

    def settle(self) -> None:
        """Drop the copies made ahead that no test took, and wait for every drop: before a
        template is dropped, at the end of the run."""
        ahead = [made for waiting in self._ahead.values() for made in waiting]
        self._ahead.clear()
        self._behind.extend(self._threads.submit(self._drop, made.result()) for made in ahead)
        behind, self._behind = self._behind, []
        for dropped in behind:
            dropped.result()


_databases = _PgDatabases()


_unmade: dict[str, str] = {}
"""PostgreSQL databases named but not yet created, with the template they are to copy: a test
that asks for ``seeded`` has its database made once, from the demo template, not twice."""


def _make_database(name: str) -> None:
    """Create ``name`` from the migrated template if ``seeded`` has not made it yet."""
    template = _unmade.pop(name, None)
    if template is not None:
        _databases.take(template, name)


@pytest.fixture
def database_url(_template: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """The URL of a fresh, migrated database of this test's own."""
    if not POSTGRES_URL:
        path = tmp_path / "hms.db"
        shutil.copyfile(_template, path)
        yield f"sqlite:///{path}"
        return
    name = f"hms_test_{uuid.uuid4().hex[:12]}"
    _unmade[name] = _template
    if "seeded" not in request.fixturenames:
        _make_database(name)
    yield _pg_url(name)
    if _unmade.pop(name, None) is None:
        _databases.drop(name)


_connected: set[int] = set()
"""The ids of test engines that have opened a connection: their database may hold more than
the migrated template, so ``seeded`` must not replace it."""


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    """The process-wide engine pointed at this test's database."""
    eng = db_engine.create_engine(database_url)
    if POSTGRES_URL:  # made at the first connection, unless ``seeded`` made it first
        sa.event.listen(eng, "do_connect", lambda *_: _make_database(eng.url.database))
    sa.event.listen(eng, "connect", lambda *_: _connected.add(id(eng)))
    db_engine.use_engine(eng)
    yield eng
    db_engine.use_engine(None)
    eng.dispose()
    _connected.discard(id(eng))


@pytest.fixture
def session(engine: sa.Engine):
    with db_engine.session_scope(engine=engine) as s:
        yield s


@dataclass
class _DemoTemplates:
    """The demo hospital seeded once per seeding context, copied into each test's database."""

    migrated: str
    """The migrated, empty template (a file path on SQLite, a database name on PostgreSQL)."""
    directory: Path
    key: bytes
    """The data key every template is encrypted with: the run's own."""
    made: dict[tuple, str] = field(default_factory=dict)

    def template_for(self, *, billing_history: bool) -> str:
        context = (localtime.local_today(), str(settings.TIMEZONE), settings.BCRYPT_ROUNDS, billing_history)
        if context not in self.made:
            self.made[context] = self._seed(billing_history=billing_history)
        return self.made[context]

    def _seed(self, *, billing_history: bool) -> str:
        name = f"hms_demo_{uuid.uuid4().hex[:10]}"
        if POSTGRES_URL:
            with _pg_admin() as conn:
                conn.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{self.migrated}"')
            url, template = _pg_url(name), name
        else:
            template = str(self.directory / f"{name}.db")
            shutil.copyfile(self.migrated, template)
            url = f"sqlite:///{template}"
        # Seeded with the run's key whatever data folder the test that asked first has chosen.
        saved_key = settings.DATA_KEY
        settings.DATA_KEY = self.key.decode()
        crypto.reset_cipher()
        eng = db_engine.create_engine(url)
        try:
            with db_engine.session_scope(engine=eng) as s:
                demo.seed_demo(s, billing_history=billing_history, work_in_progress=False)
        finally:
            eng.dispose()  # on SQLite the last connection folds the WAL into the file
            settings.DATA_KEY = saved_key
            crypto.reset_cipher()
        return template

    def copy_into(self, engine: sa.Engine, template: str) -> None:
        """Replace the (untouched) database of ``engine`` by a copy of ``template``."""
        engine.dispose()
        if POSTGRES_URL:
            name = engine.url.database
            if _unmade.pop(name, None) is None:
                with _pg_admin() as conn:
                    conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            _databases.take(template, name)
            return
        path = Path(engine.url.database)
        for leftover in (Path(f"{path}-wal"), Path(f"{path}-shm")):
            leftover.unlink(missing_ok=True)
        shutil.copyfile(template, path)

    def drop(self) -> None:
        if POSTGRES_URL:
            _databases.settle()
            with _pg_admin() as conn:
                for name in self.made.values():
                    conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def _demo_templates(_template: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[_DemoTemplates]:
    templates = _DemoTemplates(_template, tmp_path_factory.mktemp("demo"), crypto.current_keys()[0])
    yield templates
    templates.drop()


def _test_key_matches(key: bytes) -> bool:
    """Whether this test reads and writes with ``key``; a data folder without a key gets it."""
    if settings.DATA_KEY:
        return crypto.current_keys()[0] == key
    path = crypto.key_file()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(key + b"\n")
        crypto.reset_cipher()
    return crypto.current_keys()[0] == key


def seed_demo_into(engine: sa.Engine, templates: _DemoTemplates, *, billing_history: bool) -> sa.Engine:
    """The demo hospital in this test's database, copied from its template when it can be."""
    if id(engine) not in _connected and _test_key_matches(templates.key):
        templates.copy_into(engine, templates.template_for(billing_history=billing_history))
        return engine
    with db_engine.session_scope(engine=engine) as s:
        demo.seed_demo(s, billing_history=billing_history, work_in_progress=False)
    return engine


@pytest.fixture
def seeded(engine: sa.Engine, _demo_templates: _DemoTemplates) -> sa.Engine:
    """The database with the demo hospital loaded, without its billing history: tests count
    invoices, payments and invoice numbers from zero."""
    return seed_demo_into(engine, _demo_templates, billing_history=False)


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


def _xdist_group(nodeid: str) -> str:
    """The work unit of a test under pytest-xdist's ``--dist loadgroup``.

    Every browser journey runs on one worker, so the session's app server and Chromium start
    once; the handler probe (its own backend, no browser, minutes of websocket calls) is a unit
    of its own, so it runs beside the journeys; every other test is a unit alone.
    """
    if nodeid.startswith("tests/e2e/test_handler_probe.py::"):
        return "probe"
    if nodeid.startswith("tests/e2e/"):
        return "e2e"
    return nodeid


def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """``--dist loadgroup`` by the groups above. pytest-xdist 3.8 groups by ``xdist_group``
    marks by renaming ``item._nodeid``, which pytest 9 no longer reads: the marks group nothing."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ByGroup(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _xdist_group(nodeid)

    return ByGroup(config, log)

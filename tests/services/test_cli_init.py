"""``hms init``, ``hms seed`` and ``hms migrate`` run in-process against a database of the test's own:
a fresh, migrated database becomes a real hospital; the demo never goes into it; the shipped
catalog reaches the demo and nothing else unless asked; ``make run-hospital`` never seeds."""

from __future__ import annotations

import io
import re
import subprocess
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from hms_app import cli, settings
from hms_app.db import engine as db_engine
from hms_app.db.models import Hospital, LabTest, Medicine, User
from hms_app.services.core import passwords
from hms_app.services.reference.formulary import MEDICINES
from hms_app.services.reference.lab_catalog import LAB_TESTS

pytestmark = pytest.mark.db

FLAGS = ["--admin-email", "Head@Hospital.example", "--name", "Harbour General", "--timezone", "America/Halifax",
         "--locale", "en-CA", "--currency", "CAD"]


class Terminal(io.StringIO):
    """What a person types at a terminal, one answer a line."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def fresh(tmp_path, monkeypatch):
    """A database file of the test's own that the ``hms`` command reaches, not yet migrated; the
    settings a loaded hospital changes are put back after the test."""
    for name in ("HOSPITAL_NAME", "TIMEZONE", "LOCALE", "CURRENCY"):
        monkeypatch.setattr(settings, name, getattr(settings, name))
    monkeypatch.setattr(settings, "DATABASE_URL", f"sqlite:///{tmp_path / 'hms.db'}")
    monkeypatch.setattr("sys.stdin", io.StringIO())
    db_engine.use_engine(None)
    yield tmp_path / "hms.db"
    db_engine.use_engine(None)


def _count(model) -> int:
    with db_engine.get_engine().connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(model)).scalar_one()


def _catalog() -> tuple[int, int]:
    return _count(Medicine), _count(LabTest)


def test_a_fresh_database_becomes_a_hospital_the_demo_never_enters(fresh, capsys):
    assert cli.main(["init", "--check"]) == 1
    assert "is not migrated: run `hms migrate`" in capsys.readouterr().err
    assert cli.main(["migrate"]) == 0
    assert _catalog() == (0, 0), "migrate loads no catalog into an empty database"
    assert cli.main(["init", "--check"]) == 1
    assert "holds no hospital yet: run `hms init --admin-email ADDRESS` first" in capsys.readouterr().err

    assert cli.main(["init", *FLAGS]) == 0
    out = capsys.readouterr().out
    password = re.search(r"one-time password: (\S+)", out).group(1)
    assert "head@hospital.example" in out
    assert "sets up an authenticator" in out.replace("\n", " ")
    with db_engine.get_engine().connect() as conn:
        admin = conn.execute(sa.select(User.password_hash, User.must_change_password)).one()
        assert conn.execute(sa.select(Hospital.name, Hospital.timezone)).one() == ("Harbour General", "America/Halifax")
    assert passwords.verify_password(password, admin.password_hash)
    assert admin.must_change_password
    assert _catalog() == (0, 0)

    assert cli.main(["migrate"]) == 0
    assert _catalog() == (0, 0), "migrate loads no catalog into a real hospital"
    capsys.readouterr()
    assert cli.main(["seed"]) == 1
    assert "the hospital Harbour General, set up by `hms init`: the demo is never loaded" in capsys.readouterr().err
    # `make run` seeds with --if-empty: no error, and no demo either.
    assert cli.main(["seed", "--if-empty"]) == 0
    assert "the demo is never loaded" in capsys.readouterr().out
    assert cli.main(["seed", "--scale", "0.001"]) == 1
    assert cli.main(["seed", "--scale", "0.001", "--if-empty"]) == 0
    assert _count(User) == 1

    assert cli.main(["init", *FLAGS]) == 1
    assert "already holds the hospital Harbour General" in capsys.readouterr().err
    assert cli.main(["init", "--check"]) == 0
    assert "serving the hospital Harbour General (America/Halifax, en-CA, CAD)" in capsys.readouterr().out
    # Every command but migrate works in the hospital's own settings.
    assert settings.HOSPITAL_NAME == "Harbour General"
    assert ZoneInfo("America/Halifax") == settings.TIMEZONE
    assert settings.CURRENCY == "CAD"


def test_the_starter_catalog_only_when_asked(fresh, capsys):
    assert cli.main(["migrate"]) == 0
    assert cli.main(["init", *FLAGS, "--starter-catalog"]) == 0
    assert f"{len(MEDICINES)} medicines and {len(LAB_TESTS)} lab tests" in capsys.readouterr().out
    assert _catalog() == (len(MEDICINES), len(LAB_TESTS))


def test_a_missing_flag_without_a_terminal_is_an_error_naming_it(fresh, capsys):
    assert cli.main(["migrate"]) == 0
    assert cli.main(["init", *FLAGS[:-2]]) == 1
    assert "--currency is missing" in capsys.readouterr().err
    assert _count(Hospital) == 0
    assert _count(User) == 0


def test_missing_values_are_asked_for_at_a_terminal_until_acceptable(fresh, capsys, monkeypatch):
    assert cli.main(["migrate"]) == 0
    monkeypatch.setattr("sys.stdin", Terminal("Harbour General\nAtlantis/Deep\nAmerica/Halifax\nen-CA\nloonies\n"
                                              "cad\nhead@hospital.example\n"))
    assert cli.main(["init"]) == 0
    captured = capsys.readouterr()
    assert "'Atlantis/Deep' is not a time zone" in captured.err
    assert "'loonies' is not a currency" in captured.err
    assert "one-time password:" in captured.out
    with db_engine.get_engine().connect() as conn:
        assert conn.execute(sa.select(Hospital.name, Hospital.timezone, Hospital.locale, Hospital.currency)).one() == (
            "Harbour General", "America/Halifax", "en-CA", "CAD")


def test_a_terminal_that_stops_answering_writes_nothing(fresh, capsys, monkeypatch):
    assert cli.main(["migrate"]) == 0
    monkeypatch.setattr("sys.stdin", Terminal("Harbour General\n"))
    assert cli.main(["init"]) == 1
    assert "--timezone is missing: nothing was answered" in capsys.readouterr().err
    assert _count(Hospital) == 0


def test_the_demo_gets_its_catalog_from_seed_and_migrate(fresh, capsys):
    assert cli.main(["migrate"]) == 0
    assert cli.main(["seed"]) == 0
    assert _catalog() == (len(MEDICINES), len(LAB_TESTS))
    with db_engine.get_engine().begin() as conn:
        conn.execute(sa.delete(LabTest).where(LabTest.code == LAB_TESTS[-1]["code"]))
    assert cli.main(["migrate"]) == 0
    assert "the demo's catalog gained 0 medicines and 1 lab tests" in capsys.readouterr().out
    assert _catalog() == (len(MEDICINES), len(LAB_TESTS))
    assert cli.main(["init", "--check"]) == 1
    assert "it is the demo" in capsys.readouterr().err


def test_make_run_hospital_never_seeds_and_checks_before_serving():
    recipe = subprocess.run(["make", "-n", "run-hospital"], cwd=settings.PROJECT_ROOT, capture_output=True,
                            text=True, check=True).stdout.splitlines()
    commands = [line.split("/.venv/bin/")[-1] for line in recipe if re.search(r"/\.venv/bin/(hms|reflex) ", line)]
    assert commands == ["hms migrate", "hms init --check", "reflex run --env prod"]
    demo = subprocess.run(["make", "-n", "run"], cwd=settings.PROJECT_ROOT, capture_output=True, text=True,
                          check=True).stdout
    assert "hms seed --if-empty" in demo

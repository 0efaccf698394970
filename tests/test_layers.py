"""Layers import one way: ``services/`` and ``db/`` never import Reflex (STYLE.md rule 1)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from hms_app import settings

PACKAGE = settings.PROJECT_ROOT / "hms_app"
LOWER_LAYERS = ("services", "db")
UPPER_LAYERS = ("state", "components", "pages", "hms_app.py")


def _python_files(layer: str) -> list[Path]:
    return sorted((PACKAGE / layer).rglob("*.py"))


def imported_modules(source: str) -> set[str]:
    """Every module a piece of source imports, at any depth (functions included)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
            "import_module", "__import__"
        ) and node.args and isinstance(node.args[0], ast.Constant):
            found.add(str(node.args[0].value))
    return found


def _forbidden(modules: set[str]) -> set[str]:
    """The modules a lower layer may not import: Reflex (and its parts) and the UI layers."""
    upper = {f"hms_app.{layer.removesuffix('.py')}" for layer in UPPER_LAYERS}
    return {
        m for m in modules
        if m.split(".")[0].startswith("reflex") or any(m == u or m.startswith(u + ".") for u in upper)
    }


def test_the_checker_sees_every_kind_of_import():
    source = (
        "import os\n"
        "import reflex as rx\n"
        "def later():\n"
        "    from reflex.state import State\n"
        "    import importlib; importlib.import_module('reflex_base')\n"
        "from hms_app.state.auth import AuthState\n"
        "from . import sibling\n"
    )
    modules = imported_modules(source)
    assert {"reflex", "reflex.state", "reflex_base", "hms_app.state.auth"} <= modules
    assert _forbidden(modules) == {"reflex", "reflex.state", "reflex.state.State", "reflex_base",
                                   "hms_app.state.auth", "hms_app.state.auth.AuthState"}
    assert _forbidden({"os", "sqlmodel", "hms_app.db.models", "hms_app.services.core.audit"}) == set()


@pytest.mark.parametrize("layer", LOWER_LAYERS)
def test_lower_layers_do_not_import_reflex_or_the_ui(layer):
    files = _python_files(layer)
    assert len(files) > 3
    offenders = {}
    for path in files:
        bad = _forbidden(imported_modules(path.read_text()))
        if bad:
            offenders[str(path.relative_to(PACKAGE))] = sorted(bad)
    assert offenders == {}


def test_db_does_not_import_services():
    offenders = {
        str(path.relative_to(PACKAGE)): sorted(m for m in imported_modules(path.read_text())
                                               if m.startswith("hms_app.services"))
        for path in _python_files("db")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def _module_names(layer: str) -> list[str]:
    names = []
    for path in _python_files(layer):
        relative = path.relative_to(settings.PROJECT_ROOT).with_suffix("")
        if "migrations" in relative.parts:  # run by Alembic only, not importable on their own
            continue
        parts = list(relative.parts)
        if parts[-1] == "__init__":
            parts.pop()
        names.append(".".join(parts))
    return names


def test_importing_services_and_db_loads_no_reflex():
    modules = _module_names("db") + _module_names("services")
    assert "hms_app.services.administration.auth" in modules
    assert "hms_app.db.models" in modules
    script = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0].startswith('reflex')"
        " or m.startswith(('hms_app.state', 'hms_app.components', 'hms_app.pages', 'hms_app.hms_app')))))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                            cwd=settings.PROJECT_ROOT, timeout=120)
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


def test_the_subprocess_check_would_see_reflex():
    # The same probe, run where Reflex is imported, must report it (so the test above can fail).
    script = "import sys, reflex\nprint('reflex' in sys.modules)\n"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                            cwd=settings.PROJECT_ROOT, timeout=120)
    assert result.stdout.strip().splitlines()[-1] == "True"

"""Layers import one way: ``services/`` and ``db/`` never import Reflex (STYLE.md rule 1); inside
the domain, packages import down their tiers, form no cycle and use no other module's private names."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from dataclasses import dataclass
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
    # A migration that rewrites stored data may use the domain's rule for it (0014 normalises the
    # stored email addresses with services/core/emails.py): Alembic runs it, the app never imports it.
    offenders = {
        str(path.relative_to(PACKAGE)): sorted(m for m in imported_modules(path.read_text())
                                               if m.startswith("hms_app.services"))
        for path in _python_files("db") if "migrations" not in path.parts
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


# --- packages inside the services layer -------------------------------------------------------
# Core below the domains, domains below the operations tools; no package imports another's
# private names, and the packages form no cycle (imports inside functions count).

TIERS = {
    "services.core": 0,
    "services.reference": 1,
    "services.messaging": 1,
    "services.accounting": 2,
    "services.booking": 2,
    "services.care": 2,
    "services.laboratory": 2,
    "services.medicines": 2,
    "services.administration": 2,
    "services.interop": 2,
    "services.reporting": 2,
    "services.golive": 2,
    "operations": 3,
}
"""Each package of the domain layer and its tier. A package imports only packages of a lower
tier, and, among the domains (tier 2), other domains as long as no cycle forms."""
DOMAIN_TIER = 2
CHECKED_LAYERS = ("services", "operations")


@dataclass(frozen=True)
class Reference:
    """One use of another module in a source file: the module, and the name taken from it
    (``None`` for the module itself)."""

    module: str
    name: str | None
    line: int


def modules_under(root: Path, layers: tuple[str, ...] = CHECKED_LAYERS) -> dict[str, Path]:
    """``hms_app.…`` module name → file, for every module of the given layers under ``root``
    (the folder that holds ``hms_app``)."""
    found = {}
    for layer in layers:
        for path in sorted((root / "hms_app" / layer).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def references(source: str, known: set[str]) -> list[Reference]:
    """Every module a source uses, at any depth, with the names it takes from it: ``from m import
    n`` (n a name, or a submodule when ``m.n`` is a known module), ``import m``, and attribute
    uses ``alias.n`` of a module bound to an alias."""
    found: list[Reference] = []
    aliases: dict[str, str] = {}
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.append(Reference(alias.name, None, node.lineno))
                if alias.asname:
                    aliases[alias.asname] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                if submodule in known:
                    found.append(Reference(submodule, None, node.lineno))
                    aliases[alias.asname or alias.name] = submodule
                else:
                    found.append(Reference(node.module, alias.name, node.lineno))
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in aliases):
            found.append(Reference(aliases[node.value.id], node.attr, node.lineno))
    return found


def package_of(module: str) -> str:
    """``hms_app.services.core.audit`` → ``services.core``; ``hms_app.operations.demo`` →
    ``operations``; anything else → its first part below ``hms_app``."""
    parts = module.split(".")[1:]
    if parts[:1] == ["services"] and len(parts) > 1:
        return ".".join(parts[:2])
    return parts[0] if parts else ""


def private_imports(modules: dict[str, Path]) -> list[str]:
    """Each use of another module's ``_private`` name (dunders aside)."""
    known = set(modules)
    offences = []
    for name, path in modules.items():
        for ref in references(path.read_text(), known):
            # ``_`` alone is the translation function (gettext's own name), public by convention.
            private = ref.name and ref.name.startswith("_") and not ref.name.startswith("__") and ref.name != "_"
            if private and ref.module != name and ref.module.startswith("hms_app."):
                offences.append(f"{name}:{ref.line} uses {ref.module}.{ref.name}")
    return offences


def package_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Package → the hms_app packages it imports (at any depth, itself left out)."""
    known = set(modules)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        if name == "hms_app.services":  # the layer's own docstring, no package of the domain
            continue
        own = package_of(name)
        used = graph.setdefault(own, set())
        for ref in references(path.read_text(), known):
            if ref.module.startswith("hms_app.") and package_of(ref.module) != own:
                used.add(package_of(ref.module))
    return graph


def tier_offences(graph: dict[str, set[str]]) -> list[str]:
    """Imports that go up a tier, sideways outside the domains, or into a package of no tier."""
    offences = [f"{package} has no tier: add it to TIERS" for package in graph if package not in TIERS]
    for package, used in graph.items():
        mine = TIERS.get(package)
        for other in sorted(used):
            theirs = TIERS.get(other)
            if mine is None or theirs is None:
                continue
            if theirs > mine or (theirs == mine and mine != DOMAIN_TIER):
                offences.append(f"{package} (tier {mine}) imports {other} (tier {theirs})")
    return sorted(offences)


def package_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The cycles among packages, each as the path that closes it (depth-first search)."""
    cycles, state = [], {}

    def visit(package: str, path: list[str]) -> None:
        state[package] = "open"
        for other in sorted(graph.get(package, ())):
            if other not in graph:
                continue
            if state.get(other) == "open":
                cycles.append([*path[path.index(other):], other])
            elif other not in state:
                visit(other, [*path, other])
        state[package] = "done"

    for package in sorted(graph):
        if package not in state:
            visit(package, [package])
    return cycles


def test_no_module_uses_another_modules_private_names():
    modules = modules_under(settings.PROJECT_ROOT, ("services", "operations", "state", "components",
                                                    "pages"))
    assert len(modules) > 60
    assert private_imports(modules) == []


def test_packages_import_down_the_tiers_only():
    graph = package_graph(modules_under(settings.PROJECT_ROOT))
    assert set(TIERS) <= set(graph), "a package of TIERS is gone: update TIERS"
    assert tier_offences(graph) == []


def test_packages_form_no_import_cycle():
    assert package_cycles(package_graph(modules_under(settings.PROJECT_ROOT))) == []


def _plant(root: Path, files: dict[str, str]) -> dict[str, Path]:
    """A small tree of services packages under ``root``, as the checkers see the real one."""
    for relative, source in files.items():
        path = root / "hms_app" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    return modules_under(root)


def test_the_checkers_catch_a_planted_private_import(tmp_path):
    modules = _plant(tmp_path, {
        "services/core/clock.py": "def _local(x):\n    return x\n",
        "services/care/clinical.py": "from hms_app.services.core import clock\nclock._local(1)\n",
        "services/accounting/billing.py": "def later():\n    from hms_app.services.core.clock import _local\n",
        "services/booking/appointments.py": "from hms_app.services.core import clock\nclock.__name__\n",
    })
    assert private_imports(modules) == [
        "hms_app.services.accounting.billing:2 uses hms_app.services.core.clock._local",
        "hms_app.services.care.clinical:2 uses hms_app.services.core.clock._local",
    ]


def test_the_checkers_catch_a_planted_cycle(tmp_path):
    modules = _plant(tmp_path, {
        "services/accounting/billing.py": "from hms_app.services.laboratory import lab\n",
        "services/laboratory/lab.py": "def later():\n    from hms_app.services.care.clinical import chart\n",
        "services/care/clinical.py": "import hms_app.services.accounting.billing\n",
        "services/booking/appointments.py": "from hms_app.services.care import clinical\n",
    })
    assert package_cycles(package_graph(modules)) == [
        ["services.accounting", "services.laboratory", "services.care", "services.accounting"],
    ]


def test_the_checkers_catch_a_planted_layer_violation(tmp_path):
    modules = _plant(tmp_path, {
        "services/core/audit.py": "from hms_app.services.accounting.billing import PAYMENT_TERMS\n",
        "services/messaging/mail.py": "from hms_app.services.reference import icd10\n",
        "services/accounting/billing.py": "def seed():\n    from hms_app.operations import demo\n",
        "services/wards/beds.py": "from hms_app.services.core import audit\n",
        "services/reference/icd10.py": "",
        "operations/demo.py": "from hms_app.services.accounting import billing\n",
    })
    assert tier_offences(package_graph(modules)) == [
        "services.accounting (tier 2) imports operations (tier 3)",
        "services.core (tier 0) imports services.accounting (tier 2)",
        "services.messaging (tier 1) imports services.reference (tier 1)",
        "services.wards has no tier: add it to TIERS",
    ]

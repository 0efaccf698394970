"""Every date, time and amount a user reads is written by the one locale formatter (STYLE.md rule 14):
``services/core/localtime.py`` and ``services/core/numbers.py``. Anywhere else in the app, formatting a
date with ``strftime`` or an f-string's ``%`` directives, or money and numbers by hand (``:,``,
``/ 100`` in an f-string, Plotly's ``%{y:,.2f}``), fails this test. Machines still get ISO 8601
(``isoformat``): audit details, CSV exports, FHIR, URLs and form values."""

from __future__ import annotations

import ast
import re

from hms_app import settings

PACKAGE = settings.PROJECT_ROOT / "hms_app"
FORMATTERS = {"services/core/localtime.py", "services/core/numbers.py"}
EXEMPT_FOLDERS = ("db/migrations/", "operations/", "cli.py")
"""Migrations, the operations tools (seeds, backups) and the ``hms`` command's console report write
data, file names and operators' progress lines, not what staff and patients read."""
PLOTLY_NUMBER_FORMAT = re.compile(r"%\{[^}]*:[^}]*[,.][^}]*\}")


def hand_formatting(source: str) -> list[str]:
    """Each place in ``source`` that formats a date, a time or an amount by hand, as ``line: what``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        line = getattr(node, "lineno", 0)
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "strftime"
                and not (isinstance(node.func.value, ast.Attribute) and node.func.value.attr == "func")):
            found.append(f"{line}: strftime")  # sa.func.strftime is SQL's, grouping rows, not a label
        elif isinstance(node, ast.FormattedValue):
            spec = "".join(v.value for v in getattr(node.format_spec, "values", []) if isinstance(v, ast.Constant))
            if "%" in spec:
                found.append(f"{line}: date format {spec!r} in an f-string")
            elif "," in spec or re.fullmatch(r"\.\d+f%?", spec):
                found.append(f"{line}: number format {spec!r} in an f-string")
            elif (isinstance(node.value, ast.BinOp) and isinstance(node.value.op, ast.Div)
                  and isinstance(node.value.right, ast.Constant) and node.value.right.value == 100):
                found.append(f"{line}: cents / 100 in an f-string")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and PLOTLY_NUMBER_FORMAT.search(node.value):
            found.append(f"{line}: Plotly number format in {node.value!r}")
    return found


def test_the_checker_finds_every_kind_of_hand_formatting():
    planted = (
        "from datetime import date\n"
        "import sqlalchemy as sa\n"
        "a = date.today().strftime('%d/%m/%Y')\n"
        "b = f'{date.today():%d %b %Y}'\n"
        "c = f'{cents / 100:.2f}'\n"
        "d = f'{total:,}'\n"
        "e = f'{share:.0f}%'\n"
        "f = {'hovertemplate': '%{x}<br>Billed %{y:,.2f}'}\n"
        "g = f'{cents / 100}'\n"
    )
    assert [entry.split(":")[0] for entry in hand_formatting(planted)] == ["3", "4", "5", "6", "7", "8", "9"]


def test_the_checker_lets_machine_formats_and_the_formatters_through():
    clean = (
        "import sqlalchemy as sa\n"
        "from hms_app.services.core.localtime import format_date\n"
        "a = format_date(day)\n"
        "b = day.isoformat()\n"
        "c = sa.func.strftime('%Y-%m', column)\n"
        "d = f'{year:04d}-{month:02d}'\n"
        "e = {'hovertemplate': '%{x}: %{customdata}'}\n"
        "f = cents / 100\n"
    )
    assert hand_formatting(clean) == []


def test_no_module_outside_the_formatters_formats_a_date_or_money_by_hand():
    offenders = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = path.relative_to(PACKAGE).as_posix()
        if name in FORMATTERS or name.startswith(EXEMPT_FOLDERS):
            continue
        found = hand_formatting(path.read_text())
        if found:
            offenders[name] = found
    assert offenders == {}, "format through hms_app/services/core/localtime.py and numbers.py"

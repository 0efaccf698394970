"""Finds texts a person would read that do not go through the translation function.

Read by ``tests/test_translations.py`` and runnable on its own while wrapping a module's texts:
``python -m tests.text_coverage hms_app/pages/lab.py`` lists each suspect with its line.

A suspect is a string literal that reads as words (two words, or one capitalised word) and is
not: a docstring; an argument of ``_``, ``N_``, ``ngettext``, ``t`` or ``tn``; a log line; a
dict key, a subscript, a comparison operand; a keyword argument that is not shown (``id``,
``href``, ``class_name``, a style); or on a line that ends ``# i18n: not shown`` (with the reason
before it when it is not plain). Modules that only operators or machines read are out of scope
(``OUT_OF_SCOPE``).
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "hms_app"

OUT_OF_SCOPE = (
    "cli.py",  # the operator's command line, in English
    "settings.py",  # start-up errors for the operator
    "db/",  # tables, migrations (enum labels are marked in db/enums.py, which is in scope)
    "operations/",  # demo data, backups, the catalogue tools: operators' work
    "fhir_routes.py",  # the FHIR API's HTTP answers
    "services/interop/fhir.py",  # the FHIR API: machines read it; its display texts are FHIR's
    "services/reference/",  # shipped reference data (allergens, formulary, ICD-10, interactions)
    "postgres.py",
)
IN_SCOPE_ANYWAY = ("db/enums.py",)

MARKERS = {"_", "N_", "ngettext", "pgettext", "t", "tn", "pt"}
LOG_CALLS = {"debug", "info", "warning", "error", "exception", "critical", "warn"}
"""Called on a logger (``log``, ``logger``, ``logging``) these write the server's log, not a page."""
LOGGERS = {"log", "logger", "logging", "_log", "LOG", "console"}
NOT_SHOWN_CALLS = {"getLogger", "getenv", "get",
                   "startswith", "endswith", "replace", "split", "join", "strip", "execute", "icon",
                   "Field", "Column", "Index", "UniqueConstraint", "CheckConstraint", "ForeignKey", "TypeVar",
                   "ContextVar", "add_page", "cast", "isinstance", "hasattr", "getattr", "setattr",
                   "redirect", "call_script", "Var", "alias", "label_column", "strftime", "strptime",
                   "format_skeleton", "namedtuple", "NewType", "compile", "fullmatch", "search",
                   "sub", "findall", "encode", "decode", "b64encode", "open", "Path", "ZoneInfo",
                   "field", "literal_column", "LocalStorage", "Cookie", "partition", "rpartition", "rstrip",
                   "lstrip", "removeprefix", "removesuffix", "setdefault", "pop", "add_column",
                   "with_for_update", "sha256", "hexdigest", "bind", "create_engine", "event",
                   "breakpoints", "color_mode_cond", "ImportVar", "VarData"}
NOT_SHOWN_KEYWORDS = {"id", "href", "class_name", "name", "key", "type", "color_scheme", "variant", "size",
                      "weight", "align", "justify", "direction", "spacing", "width", "height", "color",
                      "background", "padding", "margin", "display", "position", "as_", "role", "value",
                      "default_value", "mode", "method", "route", "to", "tag", "library", "autocomplete",
                      "input_mode", "pattern", "accept", "style", "wrap", "overflow", "cursor", "radius",
                      "high_contrast", "trim", "font_family", "font_size", "font_weight", "white_space",
                      "border", "border_radius", "min_width", "max_width", "min_height", "max_height",
                      "flex", "flex_wrap", "grid_template_columns", "columns", "gap", "text_align",
                      "border_bottom", "border_top", "border_left", "border_right", "box_shadow", "opacity",
                      "z_index", "transition", "on_click", "on_change", "on_submit", "upload_id",
                      "close_button", "side", "orientation", "loading", "state", "field_name", "topic",
                      "path", "rooms", "action", "entity", "entity_type", "event", "kind", "status",
                      "outcome", "sort", "order", "filename", "media_type", "mime", "content_type",
                      "headers", "encoding", "newline", "sep", "format", "locale", "zone", "timezone",
                      "currency", "code", "system", "unit", "template_columns", "item", "rows", "column",
                      "tab_index", "target", "rel", "download", "src", "alt_key", "data_testid",
                      "aria_controls", "aria_describedby", "aria_labelledby", "aria_live", "aria_current",
                      "html_for", "for_", "form", "enc_type", "auto_complete", "step", "min", "max",
                      "line_height", "letter_spacing", "text_transform", "vertical_align", "font_style",
                      "border_collapse", "table_layout", "grid_column", "grid_row", "inset", "top", "left",
                      "right", "bottom", "transform", "fill", "stroke", "stroke_width", "view_box",
                      "preserve_aspect_ratio", "xmlns", "template", "hovertemplate", "textposition",
                      "hoverinfo", "barmode", "tickformat", "xanchor", "yanchor", "anchor", "overlaying",
                      "nticks", "tickmode", "dtick", "ticklabelmode", "showlegend", "legend", "marker",
                      "line", "shape", "dash", "mode_bar", "config", "layout", "data", "lang", "dir",
                      "referrer_policy", "sandbox", "cross_origin", "integrity", "charset", "http_equiv",
                      "content", "property", "_hover", "_focus", "_active", "at", "sort_key", "param",
                      "request_key", "field_id", "element_id", "test_id", "path_template", "room",
                      "permission", "refused_action", "on_load"}
NOT_SHOWN_MARK = "# i18n: not shown"
WORDS = re.compile(r"[A-Za-z]{2,}[^\S\n]+[A-Za-z]{2,}|^[A-Z][a-z]{2,}[.!?:]?$")
CSS_RULE = re.compile(r"[a-z-]+\{[a-z-]+:[^;{}]+;")
CODE_LIKE = re.compile(r"^[\w.\-/:@#%{}()\[\]=,*+<>|&!? ]*$")


@dataclass(frozen=True)
class Suspect:
    path: str
    line: int
    text: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.text!r}"


def in_scope(path: Path) -> bool:
    relative = path.relative_to(APP).as_posix()
    if relative.startswith(IN_SCOPE_ANYWAY):
        return True
    return not any(relative == part or relative.startswith(part) for part in OUT_OF_SCOPE) and \
        "migrations" not in relative


def _reads_as_words(text: str) -> bool:
    if not WORDS.search(text):
        return False
    # SQL, CSS, paths, format strings of machines: no sentence in them.
    if CSS_RULE.search(text) or re.search(r"\b\d+(px|rem|em)\b|var\(--", text):
        return False  # a style sheet's rule or a CSS value ("1px solid var(--gray-5)")
    lowered = text.lower()
    if lowered.startswith(("select ", "insert ", "update ", "delete ", "create ", "alter ", "drop ", "with ")):
        return False
    return not (text.startswith(("var(", "calc(", "linear-gradient", "http", "/", "$", "%", "{", "<"))
                or "_" in text.split(" ")[0])


def _call_name(node: ast.Call) -> str:
    func = node.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


class _Scanner(ast.NodeVisitor):
    def __init__(self, source: str, path: str) -> None:
        self.lines = source.splitlines()
        self.path = path
        self.suspects: list[Suspect] = []
        self.skip: set[int] = set()

    def _skip_tree(self, node: ast.AST | None) -> None:
        if node is None:
            return
        for child in ast.walk(node):
            self.skip.add(id(child))

    def visit_Module(self, node: ast.Module) -> None:
        self._docstring(node)
        self.generic_visit(node)

    def _docstring(self, node: ast.AST) -> None:
        body = getattr(node, "body", [])
        for index, statement in enumerate(body):
            # A docstring, and a bare string after an assignment (an attribute's docstring).
            if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant) and \
                    isinstance(statement.value.value, str) and (index == 0 or isinstance(body[index - 1], (
                        ast.Assign, ast.AnnAssign))):
                self.skip.add(id(statement.value))

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._docstring(node)
        for default in [*node.args.defaults, *node.args.kw_defaults]:
            self._skip_tree(default)  # a parameter's default is checked where the caller passes text
        for decorator in node.decorator_list:
            self._skip_tree(decorator)
        self.generic_visit(node)

    visit_AsyncFunctionDef = visit_FunctionDef  # noqa: N815 (ast.NodeVisitor's name)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._docstring(node)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        name = _call_name(node)
        logged = (name in LOG_CALLS and isinstance(node.func, ast.Attribute)
                  and isinstance(node.func.value, ast.Name) and node.func.value.id in LOGGERS)
        if name in MARKERS and any(isinstance(arg, ast.JoinedStr) for arg in node.args):
            # An f-string's text is not in any catalogue: placeholders go in braces, filled by .format.
            self.suspects.append(Suspect(self.path, node.lineno, f"{name}(f-string)"))
        if name in MARKERS or name in NOT_SHOWN_CALLS or logged:
            self._skip_tree(node)
        for keyword in node.keywords:
            if keyword.arg in NOT_SHOWN_KEYWORDS or (keyword.arg or "").startswith(("on_", "_", "data_")):
                self._skip_tree(keyword.value)
        self.generic_visit(node)

    def visit_Dict(self, node: ast.Dict) -> None:
        for key in node.keys:
            self._skip_tree(key)
        self.generic_visit(node)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        self._skip_tree(node.slice)
        self.generic_visit(node)

    def visit_Compare(self, node: ast.Compare) -> None:
        self._skip_tree(node)
        self.generic_visit(node)

    def visit_Assert(self, node: ast.Assert) -> None:
        self._skip_tree(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._skip_tree(node.annotation)
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if id(node) in self.skip or not isinstance(node.value, str) or not _reads_as_words(node.value):
            return
        line = self.lines[node.lineno - 1] if node.lineno <= len(self.lines) else ""
        end = self.lines[node.end_lineno - 1] if node.end_lineno and node.end_lineno <= len(self.lines) else ""
        if NOT_SHOWN_MARK in line or NOT_SHOWN_MARK in end:
            return
        self.suspects.append(Suspect(self.path, node.lineno, node.value))

    def visit_JoinedStr(self, node: ast.JoinedStr) -> None:
        if id(node) in self.skip:
            return
        text = "".join(part.value for part in node.values if isinstance(part, ast.Constant))
        line = self.lines[node.lineno - 1] if node.lineno <= len(self.lines) else ""
        if _reads_as_words(text) and NOT_SHOWN_MARK not in line:
            self.suspects.append(Suspect(self.path, node.lineno, "f:" + text))


def scan_file(path: Path) -> list[Suspect]:
    source = path.read_text(encoding="utf-8")
    scanner = _Scanner(source, path.relative_to(ROOT).as_posix())
    scanner.visit(ast.parse(source))
    return scanner.suspects


def shadowed_underscore(path: Path) -> list[Suspect]:
    """Assignments to ``_`` in a module that imports the translation function ``_``: the next
    ``_("...")`` in that scope would call a string."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imports = any(isinstance(node, ast.ImportFrom) and any(alias.name == "_" for alias in node.names)
                  for node in ast.walk(tree))
    if not imports:
        return []
    found = []
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, (ast.Assign, ast.For, ast.comprehension, ast.With, ast.AsyncFor)):
            targets = getattr(node, "targets", None) or [getattr(node, "target", None)]
            if isinstance(node, ast.With):
                targets = [item.optional_vars for item in node.items]
        for target in targets:
            for name in ast.walk(target) if target is not None else []:
                if isinstance(name, ast.Name) and name.id == "_" and isinstance(name.ctx, ast.Store):
                    found.append(Suspect(path.relative_to(ROOT).as_posix(), name.lineno, "_ assigned"))
    return found


def app_files() -> Iterator[Path]:
    for path in sorted(APP.rglob("*.py")):
        if in_scope(path):
            yield path


def main(paths: list[str]) -> int:
    files = [Path(p).resolve() for p in paths] or list(app_files())
    found = [s for f in files for s in (*scan_file(f), *shadowed_underscore(f))]
    for suspect in found:
        print(suspect)
    print(f"{len(found)} suspects in {len(files)} files", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

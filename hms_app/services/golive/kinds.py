"""What every import shares: CSV kinds, the line-by-line report, progress that can cancel.

A CSV kind (patients, staff, medicines with lots, the lab catalog, the price list) says which
columns it takes and imports one row through ``import_row``. The import engine reads the file,
maps its headers onto the kind's columns, and calls ``import_row`` once per line inside a
savepoint, so a line that fails leaves nothing behind. ``import_row`` validates and writes
through the owning domain's own rules (flush, never commit), raising the project's errors
(``ValidationError``, ``Conflict``, ``NotFound``) with a message the report shows against the
line. A row that changes nothing returns ``UNCHANGED`` and writes nothing, which is what
makes a second import of the same file harmless.

Kinds register themselves in ``CSV_KINDS`` from the modules listed in ``KIND_MODULES``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from sqlmodel import Session

from hms_app.db.enums import LineOutcome, Permission
from hms_app.services.core.actor import Actor
from hms_app.services.core.language import N_


@dataclass(frozen=True)
class Column:
    """One column a kind takes. ``aliases`` are other headers taken as this one without mapping."""

    name: str
    required: bool = False
    description: str = ""
    """What the column holds, marked with ``N_`` and translated where shown."""
    aliases: tuple[str, ...] = ()
    example: str = ""
    """A value for the template file's example line."""


@dataclass(frozen=True)
class RowResult:
    """What ``import_row`` did, and the row's key for the report (a record number, a code)."""

    outcome: LineOutcome
    record: str


class RowImporter(Protocol):
    def __call__(self, *, session: Session, actor: Actor, row: dict[str, str], job_id: int | None) -> RowResult: ...


@dataclass(frozen=True)
class CsvKind:
    """One kind of CSV file HMS imports.

    Attributes:
        name: the CLI verb's argument and the page's choice (``patients``).
        label: what the page shows ("Patients"), marked with ``N_`` and translated where shown.
        permission: what the importing actor needs, besides ``data.import`` where the kind says so.
        columns: the columns, in the order a template file lists them.
        key: which column(s) identify a row across imports, for the page's help text.
        import_row: writes one row (see the module's docstring).
    """

    name: str
    label: str
    permission: Permission
    columns: tuple[Column, ...]
    key: str
    import_row: RowImporter


@dataclass(frozen=True)
class LineResult:
    """One line of the report: its number in the file (1 is the header), what happened, why."""

    line: int
    outcome: LineOutcome
    record: str = ""
    message: str = ""


@dataclass
class ImportReport:
    """What an import did, whole. ``committed`` is false for a dry run, a refused file, a cancel;
    ``cancelled`` is true for a cancel."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    failed: int = 0
    skipped_by_type: dict[str, int] = field(default_factory=dict)
    lines: list[LineResult] = field(default_factory=list)
    committed: bool = False
    cancelled: bool = False
    message: str = ""
    """What the page shows of the import as a whole, in the language of whoever started it."""

    def count(self, outcome: LineOutcome, by: int = 1) -> None:
        setattr(self, outcome.value, getattr(self, outcome.value) + by)


NOTHING_IMPORTED = N_("Nothing was imported: {problem}")
"""The message of an import refused as a whole (``problem`` says why)."""


class ImportCancelled(Exception):
    """Raised from a progress callback when the user cancelled; the import rolls back what is open."""


Progress = Callable[[int, int | None], None]
"""``progress(processed, total)``: called every few hundred lines; ``total`` None while unknown.
May raise ``ImportCancelled``."""


def no_progress(_processed: int, _total: int | None) -> None:
    """The progress callback of a caller that shows none and never cancels."""


KIND_MODULES = ("hms_app.services.golive.people_kinds", "hms_app.services.golive.reference_kinds")
"""The modules whose import registers CSV kinds."""

CSV_KINDS: dict[str, CsvKind] = {}


def register(kind: CsvKind) -> CsvKind:
    CSV_KINDS[kind.name] = kind
    return kind


def csv_kinds() -> dict[str, CsvKind]:
    """Every CSV kind, by name, its modules imported once."""
    for module in KIND_MODULES:
        importlib.import_module(module)
    return CSV_KINDS

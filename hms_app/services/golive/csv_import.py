"""The CSV import engine: a file's bytes read as text, its headers mapped onto a kind's columns,
and every line imported through the kind, in a savepoint of its own.

What a file must be: UTF-8 text (with or without a byte-order mark; UTF-16 with a byte-order
mark, as Excel's "Unicode text" writes it, is taken too), comma-, semicolon- or tab-separated,
with a header row, at most ``MAX_IMPORT_BYTES`` and ``MAX_IMPORT_ROWS`` data lines. A Latin-1 or
Windows-1252 export is refused with how to save it as UTF-8: guessing an 8-bit encoding would
import names with the wrong letters and no one would notice.

Line numbers are the file's own (the header is line 1), counted in physical lines, so a quoted
cell that holds line breaks moves the numbers of the lines after it as a text editor shows them.

A run is one transaction with a savepoint per line. A line's ``ValidationError``, ``Conflict`` or
``NotFound`` rolls back its savepoint and is reported against its number; any other exception is
a bug, and rolls back everything. Then:

- dry run: everything is rolled back; the report is what a real run would have done;
- all or nothing: a failed line rolls back everything (``committed`` False);
- good rows only: failed lines are left out, the rest committed.

A record a file lists twice (two lines whose import names the same record) fails on its second
line: which line should win is the person's decision, not the importer's.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from sqlmodel import Session

from hms_app.db.enums import LineOutcome, Permission
from hms_app.services.core.access import require
from hms_app.services.core.actor import Actor
from hms_app.services.core.errors import Conflict, NotFound, ValidationError
from hms_app.services.core.language import N_, _, ngettext
from hms_app.services.core.numbers import format_number
from hms_app.services.golive.kinds import (
    CsvKind,
    ImportCancelled,
    ImportReport,
    LineResult,
    Progress,
    csv_kinds,
    no_progress,
)

MAX_IMPORT_BYTES = 50 * 1024 * 1024
"""The largest file an import takes (CSV or FHIR on the page; a CSV from the command line)."""
MAX_IMPORT_ROWS = 100_000
"""The most data lines one CSV file may hold; split a larger file."""
PREVIEW_ROWS = 10
PROGRESS_EVERY = 200
IGNORE = ""
"""The mapping's column for a file header that is not imported."""

SAVE_AS_UTF8 = N_("Save it as UTF-8 and try again: in Excel, File › Save As › \"CSV UTF-8 (Comma delimited)\"; "
                  "in LibreOffice, Save As › Text CSV, tick \"Edit filter settings\" and choose Unicode (UTF-8).")
_DELIMITERS = {",": N_("comma"), ";": N_("semicolon"), "\t": N_("tab")}
_LINE_ERRORS = (ValidationError, Conflict, NotFound)
MAPPING_UNREADABLE = N_("The column mapping is not readable; choose the columns again.")
CHOOSE_KIND = N_("Choose what the file holds from the list.")


def read_text(data: bytes) -> str:
    """The text of an import file: checked for size, encoding and binary content.

    Raises:
        ValidationError: empty, too large, not UTF-8 (or UTF-16 with its mark), or not text.
    """
    if not isinstance(data, bytes | bytearray) or not data:
        raise ValidationError(_("The file is empty."))
    if len(data) > MAX_IMPORT_BYTES:
        raise ValidationError(_("The file is larger than {megabytes} MB. Split it into smaller files and import them "
                                "one after the other.").format(megabytes=MAX_IMPORT_BYTES // (1024 * 1024)))
    data = bytes(data)
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError:
            raise ValidationError(_("The file says it is UTF-16 text but is not readable as such. {how}").format(
                how=_(SAVE_AS_UTF8))) from None
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            line = data[: error.start].count(b"\n") + 1
            raise ValidationError(
                _("The file is not UTF-8 text (line {line} holds a byte UTF-8 does not use: it was probably saved "
                  "as Latin-1 or Windows-1252). {how}").format(line=line, how=_(SAVE_AS_UTF8))) from None
    if "\x00" in text or re.search("[\x01-\x08\x0e-\x1f]", text[:65536]):
        raise ValidationError(_("The file is not text (it holds control characters): choose the CSV file itself, "
                                "not a spreadsheet (.xlsx) or another program's file."))
    return text.lstrip("\ufeff")


def sniff_delimiter(text: str) -> str:
    """Comma, semicolon or tab: whichever the header line holds most of, outside quotes."""
    first = next(iter(_first_record(text)), "")
    counts = {d: first.count(d) for d in _DELIMITERS}
    best = max(counts, key=lambda d: (counts[d], d == ","))
    return best


def _first_record(text: str) -> Iterator[str]:
    """The header line with quoted parts removed, so a quoted comma does not count."""
    end = text.find("\n")
    line = text if end < 0 else text[:end]
    yield re.sub(r'"[^"]*"', "", line)


def _key(header: str) -> str:
    return re.sub(r"[^0-9a-z]", "", header.casefold())


def auto_mapping(kind: CsvKind, headers: list[str]) -> dict[str, str]:
    """Each file header's column (by name or alias, whatever the case, spaces or underscores), or ``IGNORE``."""
    by_key: dict[str, str] = {}
    for column in kind.columns:
        for name in (column.name, *column.aliases):
            by_key.setdefault(_key(name), column.name)
    mapping: dict[str, str] = {}
    taken: set[str] = set()
    for header in headers:
        column = by_key.get(_key(header), IGNORE)
        if column in taken:
            column = IGNORE
        taken.add(column)
        mapping[header] = column
    return mapping


def check_mapping(kind: CsvKind, headers: list[str], mapping: dict[str, str] | None) -> dict[int, str]:
    """The column each header's position fills, from ``mapping`` over the automatic one.

    Raises:
        ValidationError: a mapping names a header the file lacks or a column the kind lacks, two
            headers map onto one column, or a required column has no header.
    """
    chosen = auto_mapping(kind, headers)
    names = {c.name for c in kind.columns}
    if mapping:
        if not isinstance(mapping, dict):
            raise ValidationError(_(MAPPING_UNREADABLE))
        for header, column in mapping.items():
            header, column = str(header), str(column or IGNORE)
            if header not in chosen:
                raise ValidationError(_("The file has no column headed \"{header}\".").format(header=header[:80]))
            if column != IGNORE and column not in names:
                raise ValidationError(_("\"{column}\" is not a column of {kind}; the columns are: {columns}.").format(
                    column=column[:80], kind=_(kind.label).lower(), columns=", ".join(sorted(names))))
            chosen[header] = column
    indexes: dict[int, str] = {}
    seen: dict[str, str] = {}
    for position, header in enumerate(headers):
        column = chosen.get(header, IGNORE)
        if column == IGNORE:
            continue
        if column in seen:
            raise ValidationError(_("Both \"{first}\" and \"{second}\" are mapped to {column}; map one of them to "
                                    "another column or ignore it.").format(first=seen[column], second=header,
                                                                          column=column))
        seen[column] = header
        indexes[position] = column
    missing = [c.name for c in kind.columns if c.required and c.name not in seen]
    if missing:
        raise ValidationError(_("The file has no column for {columns}, which {kind} need. Add the column, or map "
                                "one of the file's headers to it.").format(columns=", ".join(missing),
                                                                         kind=_(kind.label).lower()))
    return indexes


@dataclass(frozen=True)
class ParsedLine:
    line: int
    cells: list[str]


@dataclass(frozen=True)
class CsvFile:
    headers: list[str]
    delimiter: str
    lines: list[ParsedLine]


def parse_csv(data: bytes) -> CsvFile:
    """The header and the data lines (blank ones left out), each with its first physical line's number.

    Raises:
        ValidationError: see ``read_text``; no header; a quote never closed; too many lines.
    """
    text = read_text(data)
    delimiter = sniff_delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    lines: list[ParsedLine] = []
    headers: list[str] | None = None
    last = 0
    try:
        for cells in reader:
            start, last = last + 1, reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            if headers is None:
                headers = [cell.strip() for cell in cells]
                continue
            lines.append(ParsedLine(start, cells))
            if len(lines) > MAX_IMPORT_ROWS:
                raise ValidationError(_("The file has more than {count} lines. Split it into smaller files and "
                                        "import them one after the other.").format(
                                            count=format_number(MAX_IMPORT_ROWS)))
    except csv.Error as error:
        # The csv module's own reason stays as it words it: it names the character it stopped on.
        raise ValidationError(_("Line {line} cannot be read as CSV ({reason}); a quote may be missing its closing "
                                "quote. Nothing was imported.").format(line=last + 1, reason=error)) from None
    if headers is None:
        raise ValidationError(_("The file has no header row: its first line must name the columns."))
    if any(not h for h in headers):
        raise ValidationError(_("A column of the header row has no name: name every column, or delete the empty "
                                "one."))
    if len(set(headers)) != len(headers):
        twice = next(h for h in headers if headers.count(h) > 1)
        raise ValidationError(_("The header row names \"{header}\" twice: each column once.").format(header=twice))
    return CsvFile(headers, delimiter, lines)


@dataclass(frozen=True)
class Preview:
    """What the page shows before an import: the headers, each one's column, the first rows."""

    headers: list[str]
    mapping: dict[str, str]
    rows: list[list[str]]
    lines: int
    delimiter: str
    problem: str = ""
    """Why the file cannot be imported as mapped (a required column missing), or empty."""


def preview_csv(kind: CsvKind, data: bytes, mapping: dict[str, str] | None = None) -> Preview:
    """The headers, the mapping (automatic, with ``mapping`` over it) and the first rows.

    Raises:
        ValidationError: the file cannot be read at all (see ``parse_csv``).
    """
    parsed = parse_csv(data)
    chosen = auto_mapping(kind, parsed.headers)
    problem = ""
    try:
        indexes = check_mapping(kind, parsed.headers, mapping)
        chosen = {h: indexes.get(i, IGNORE) for i, h in enumerate(parsed.headers)}
    except ValidationError as error:
        problem = error.message
    width = len(parsed.headers)
    rows = [(line.cells + [""] * width)[:width] for line in parsed.lines[:PREVIEW_ROWS]]
    return Preview(parsed.headers, chosen, rows, len(parsed.lines), _(_DELIMITERS[parsed.delimiter]), problem)


def template_csv(kind: CsvKind) -> str:
    """A file to fill in: the header row of the kind's columns and one example line."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([c.name for c in kind.columns])
    writer.writerow([c.example for c in kind.columns])
    return out.getvalue()


def kind_named(name: object) -> CsvKind:
    kind = csv_kinds().get(str(name or ""))
    if kind is None:
        raise ValidationError(_(CHOOSE_KIND))
    return kind


def require_import(session: Session, actor: Actor, kind: CsvKind | None, *, action: str) -> None:
    """The actor may import (``data.import``) and may write what ``kind`` holds."""
    require(session, actor, Permission.DATA_IMPORT, action=action)
    if kind is not None:
        require(session, actor, kind.permission, action=action)


def _row_of(cells: list[str], indexes: dict[int, str], width: int) -> dict[str, str]:
    if len(cells) > width:
        extra = [c for c in cells[width:] if c.strip()]
        if extra:
            raise ValidationError(_("The line has {cells} cells but the header names {columns} columns; a value may "
                                    "hold an unquoted comma or semicolon.").format(cells=len(cells), columns=width))
    return {column: (cells[i].strip() if i < len(cells) else "") for i, column in indexes.items()}


def run_csv(
    session: Session,
    actor: Actor,
    *,
    kind: CsvKind,
    data: bytes,
    mapping: dict[str, str] | None = None,
    dry_run: bool = False,
    good_rows_only: bool = False,
    progress: Progress = no_progress,
    job_id: int | None = None,
    before_commit: Callable[[Session, ImportReport], None] = lambda _s, _r: None,
    report: ImportReport | None = None,
) -> ImportReport:
    """Import ``data`` as ``kind`` in one transaction, a savepoint per line (see the module's docstring).

    The engine under the import jobs (``jobs.run_import``), not a service a client reaches: the
    job checked the file when it was started; the permission is checked again here.

    ``before_commit`` runs in the transaction just before it commits (the job's own rows, its
    report, its audit), so the import and its record are committed together or not at all.

    Raises:
        ValidationError: the file as a whole cannot be imported (encoding, header, mapping, size);
            nothing was written.
        PermissionDenied: the actor may not import this kind.
        Exception: any other error of a line (a bug); everything was rolled back.
    """
    require_import(session, actor, kind, action=f"import.{kind.name}")
    parsed = parse_csv(data)
    indexes = check_mapping(kind, parsed.headers, mapping)
    report = report if report is not None else ImportReport()
    total = len(parsed.lines)
    seen: dict[str, int] = {}
    try:
        progress(0, total)
        for done, parsed_line in enumerate(parsed.lines, start=1):
            report.lines.append(_import_line(session, actor, kind, parsed_line, indexes, len(parsed.headers),
                                             seen, job_id))
            report.count(report.lines[-1].outcome)
            if done % PROGRESS_EVERY == 0:
                progress(done, total)
        progress(total, total)
    except ImportCancelled:
        session.rollback()
        report.committed, report.cancelled = False, True
        report.message = _("Cancelled: nothing of this file was imported.")
        return report
    except BaseException:
        session.rollback()
        raise
    report.message = _outcome_message(report, dry_run=dry_run, good_rows_only=good_rows_only)
    if dry_run or (report.failed and not good_rows_only):
        session.rollback()
        return report
    report.committed = True
    before_commit(session, report)
    session.commit()
    return report


def _import_line(session: Session, actor: Actor, kind: CsvKind, parsed: ParsedLine, indexes: dict[int, str],
                 width: int, seen: dict[str, int], job_id: int | None) -> LineResult:
    savepoint = session.begin_nested()
    row: dict[str, str] = {}
    try:
        row = _row_of(parsed.cells, indexes, width)
        result = kind.import_row(session=session, actor=actor, row=row, job_id=job_id)
        if result.record and result.record in seen:
            raise ValidationError(_("Line {line} already holds {record}: a file lists each record once. Merge the "
                                    "two lines.").format(line=seen[result.record], record=result.record))
    except _LINE_ERRORS as error:
        savepoint.rollback()
        return LineResult(parsed.line, LineOutcome.FAILED, _record_as_written(kind, row), error.message)
    savepoint.commit()
    if result.record:
        seen[result.record] = parsed.line
    return LineResult(parsed.line, result.outcome, result.record)


def _record_as_written(kind: CsvKind, row: dict[str, str]) -> str:
    """What names a failed line in the report: the first key column (``kind.key``) it fills, as written."""
    for name in re.findall(r"[a-z_]+", kind.key):
        if str(row.get(name) or "").strip():
            return " ".join(str(row[name]).split())[:200]
    return ""


def _outcome_message(report: ImportReport, *, dry_run: bool, good_rows_only: bool) -> str:
    counts = {"created": report.created, "updated": report.updated, "unchanged": report.unchanged,
              "failed": report.failed}
    if dry_run:
        if report.failed:
            return _("Checked: {created} to create, {updated} to update, {unchanged} unchanged, {failed} with "
                     "problems. Correct the lines with problems, or import only the good lines.").format(**counts)
        return _("Checked: {created} to create, {updated} to update, {unchanged} unchanged, {failed} with problems. "
                 "Every line is good; nothing was imported yet.").format(**counts)
    if report.failed and not good_rows_only:
        # English reads "line(s)" whatever the count, as it always has; the translations take their plural forms.
        return ngettext("Nothing was imported: {n} line(s) have problems. Correct them and import again, or choose "
                        "to import only the good lines.",
                        "Nothing was imported: {n} line(s) have problems. Correct them and import again, or choose "
                        "to import only the good lines.", report.failed).format(n=report.failed)
    if report.failed:
        return ngettext("Imported: {created} created, {updated} updated, {unchanged} unchanged; {n} line(s) with "
                        "problems left out.",
                        "Imported: {created} created, {updated} updated, {unchanged} unchanged; {n} line(s) with "
                        "problems left out.", report.failed).format(n=report.failed, **counts)
    return _("Imported: {created} created, {updated} updated, {unchanged} unchanged.").format(**counts)

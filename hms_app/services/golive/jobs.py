"""Import jobs: a file taken in, run in the background, followed, cancelled, and reported line by line.

The page's file is kept from the moment it is uploaded (``receive_import_file``): checked, stored
encrypted, and recorded as an *upload*, a waiting job row with no start time, which only its
uploader can preview, check or import. So a second worker, or a restart, finds it again; nothing of
it stays in the tab's state but its id and the preview rows. A check (dry run) runs on a copy of
it; the import takes the file itself (``start_import``), so the upload is gone once the import
ends. An upload replaced by another file, or left for a day (``UPLOAD_KEPT``), is deleted with its
file: on the next upload, and when the app starts.

``start_import`` writes the job (waiting, with its start time). ``launch_import`` runs it on this process's import thread (one import at a time, so
two imports never race each other for the same records; the Reflex worker's event loop never
waits for it); the command line runs it in the foreground with ``run_import``.

While a job runs, its progress and its cancel flag live in this process's memory (``_RUNNING``)
and, on PostgreSQL, in the job's row too, written in short transactions of their own. SQLite
has one writer at a time and the import's transaction holds that lock until it ends, so there
the row is written only when the job ends, and the page reads the progress from memory (one
worker, as SQLite deployments run). A cancel sets the flag in memory before anything else; the
import rolls back at its next checkpoint (every ``PROGRESS_EVERY`` lines).

When the job ends, one transaction holds its status, its counts, every line of its report and
its one audit row (kind, file, mode, counts) — for a committed CSV import the same transaction
as the imported records. The stored file is deleted then. A job that a stopped server left
running is marked failed when the app starts again (``recover_interrupted_imports``).
"""

from __future__ import annotations

import json
import logging
import tempfile
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import Session, select

from hms_app.db.engine import session_scope
from hms_app.db.enums import ImportStatus, LineOutcome, Permission, Role
from hms_app.db.models import ImportJob, ImportLine, User
from hms_app.db.types import utcnow
from hms_app.services.administration.auth import permissions_for_role
from hms_app.services.core import audit, emails, events, files
from hms_app.services.core.access import access_by_id
from hms_app.services.core.actor import Actor
from hms_app.services.core.errors import Conflict, HMSError, ValidationError
from hms_app.services.core.ids import parse_id
from hms_app.services.core.language import N_, _, current_language, ngettext, use_language
from hms_app.services.core.localtime import format_local
from hms_app.services.core.numbers import format_number
from hms_app.services.core.paging import Page, clamp_page, fetch_page
from hms_app.services.core.text import escape_like, storable
from hms_app.services.golive import csv_import
from hms_app.services.golive.fhir_import import import_fhir
from hms_app.services.golive.kinds import (
    NOTHING_IMPORTED,
    CsvKind,
    ImportCancelled,
    ImportReport,
    Progress,
    csv_kinds,
    no_progress,
)

log = logging.getLogger(__name__)

FHIR = "fhir"
FHIR_LABEL = N_("FHIR records (Bundle JSON or NDJSON)")
TOPIC = "imports"
"""The live topic of a change of an import job (its admin's pages reload)."""
_CSV_SUFFIXES = (".csv", ".txt", ".tsv")
_FHIR_SUFFIXES = (".json", ".ndjson")
_ENDED = (ImportStatus.DONE, ImportStatus.FAILED, ImportStatus.CANCELLED)
INTERRUPTED_MESSAGE = N_("The server stopped during the import; nothing of it was committed. Import the file again.")
INTERRUPTED_FHIR_MESSAGE = N_("The server stopped during the import. The patients whose records were complete before "
                              "it stopped were committed; import the file again to bring in the rest (what is "
                              "already in is recognised and left as it is).")
STATUS_LABELS = {ImportStatus.WAITING: N_("Waiting"), ImportStatus.RUNNING: N_("Running"),
                 ImportStatus.DONE: N_("Done"), ImportStatus.FAILED: N_("Failed"),
                 ImportStatus.CANCELLED: N_("Cancelled")}
"""Each status as the page shows it (translated there, with ``_``)."""
OUTCOME_LABELS = {LineOutcome.CREATED: N_("Created"), LineOutcome.UPDATED: N_("Updated"),
                  LineOutcome.UNCHANGED: N_("Unchanged"), LineOutcome.SKIPPED: N_("Skipped"),
                  LineOutcome.FAILED: N_("Failed")}
"""Each outcome of a line as the report shows it (translated there, with ``_``)."""
MODE_LABELS = {"dry run": N_("Dry run"), "good lines only": N_("Good lines only"),
               "all or nothing": N_("All or nothing")}
"""Each mode (as the audit trail names it) as the page shows it."""
UPLOAD_KEPT = timedelta(days=1)
"""How long an uploaded file waits for its check or import before it is deleted."""
UPLOAD_GONE = N_("That file is no longer kept (it was imported, replaced or left for a day): upload it again.")
_UPLOAD = sa.and_(ImportJob.status == ImportStatus.WAITING, ImportJob.started_at.is_(None))
"""An upload not yet imported: a waiting row that was never started."""


def _is_upload(job: ImportJob) -> bool:
    return job.status == ImportStatus.WAITING and job.started_at is None


# --- starting --------------------------------------------------------------------------------------


def kind_choices() -> list[tuple[str, str]]:
    """(name, label) of everything an import takes: every CSV kind, then FHIR."""
    return [(k.name, _(k.label)) for k in csv_kinds().values()] + [(FHIR, _(FHIR_LABEL))]


def _kind(name: object) -> CsvKind | None:
    """The CSV kind named, or None for FHIR."""
    return None if name == FHIR else csv_import.kind_named(name)


def kind_label(name: str) -> str:
    """What the page calls the kind ``name``, in the current language."""
    return _(FHIR_LABEL) if name == FHIR else _(getattr(csv_kinds().get(name), "label", name))


def check_import_file(kind: CsvKind | None, file_name: object, data: object) -> str:
    """The file's name as kept, after checking the name's type, the size, UTF-8 and text content.

    Raises:
        ValidationError: with a message for the person importing; nothing is stored.
    """
    name = files.download_name(str(file_name or "").strip().rsplit("/", 1)[-1].rsplit("\\", 1)[-1])[:200]
    suffixes = _CSV_SUFFIXES if kind is not None else _FHIR_SUFFIXES
    if not name.lower().endswith(suffixes):
        if kind is not None:
            raise ValidationError(_("Choose a CSV file (.csv); this file's name ends otherwise."))
        raise ValidationError(_("Choose a FHIR Bundle (.json) or NDJSON file (.ndjson); this file's name ends "
                                "otherwise."))
    csv_import.read_text(data if isinstance(data, bytes | bytearray) else b"")
    return name


def _mapping_json(kind: CsvKind | None, data: bytes, mapping: object) -> str:
    """The mapping as the job keeps it, once the file's headers and the kind's columns agree with it."""
    if kind is None:
        return "{}"
    mapping = mapping or {}
    if not isinstance(mapping, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()):
        raise ValidationError(_(csv_import.MAPPING_UNREADABLE))
    csv_import.check_mapping(kind, csv_import.parse_csv(data).headers, mapping)
    return json.dumps({storable(k, _("column header")): v for k, v in mapping.items()})


def _check_kind(session: Session, actor: Actor, kind: object, action: str) -> CsvKind | None:
    """The CSV kind (None for FHIR) the actor may import, or the refusal."""
    if kind != FHIR and not (isinstance(kind, str) and kind in csv_kinds()):
        csv_import.require_import(session, actor, None, action=action)
        raise ValidationError(_(csv_import.CHOOSE_KIND))
    csv_kind = _kind(kind)
    csv_import.require_import(session, actor, csv_kind, action=f"import.{kind}")
    return csv_kind


def _checked_mapping(mapping: object) -> dict[str, str] | None:
    if mapping is not None and (not isinstance(mapping, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in mapping.items())):
        raise ValidationError(_(csv_import.MAPPING_UNREADABLE))
    return mapping


def _preview(kind: CsvKind | None, data: bytes, mapping: dict[str, str] | None) -> csv_import.Preview:
    """A FHIR file has no columns: its preview is empty."""
    if kind is None:
        return csv_import.Preview([], {}, [], 0, "")
    return csv_import.preview_csv(kind, data, mapping)


@dataclass(frozen=True)
class Upload:
    """A file kept for the import page: its id (for the check and the import), name and preview."""

    id: int
    file_name: str
    preview: csv_import.Preview


def receive_import_file(*, session: Session, actor: Actor, kind: str, file_name: str, data: bytes,
                        replacing: int = 0) -> Upload:
    """Keep a file chosen on the import page until it is checked and imported: stored encrypted at
    once, recorded as the actor's upload, and previewed (headers, automatic mapping, first rows).

    Args:
        replacing: the actor's previous upload, which this file replaces: deleted with its file.

    Raises:
        PermissionDenied: the actor may not import, or not this kind.
        ValidationError: the kind or the file is not acceptable; nothing was stored.
    """
    csv_kind = _check_kind(session, actor, kind, "import.upload")
    name = check_import_file(csv_kind, file_name, data)
    data = bytes(data)
    preview = _preview(csv_kind, data, None)
    gone = _discard(session, actor, replacing) + _abandoned_uploads(session, utcnow() - UPLOAD_KEPT)
    with files.stored_encrypted(data) as storage_name:
        upload = ImportJob(kind=kind, file_name=name, storage_name=storage_name, created_by=actor.user_id)
        session.add(upload)
        session.flush()
        audit.record(session, actor, "import.upload", entity_type="import_job", entity_id=upload.id,
                     detail=f"{kind} from {name}, {len(data)} bytes")
        session.commit()
    _remove_files(gone)
    return Upload(upload.id, name, preview)


def _upload(session: Session, actor: Actor, upload_id: object, action: str) -> ImportJob:
    """The actor's own upload not yet imported, or ``NotFound`` (audited)."""
    csv_import.require_import(session, actor, None, action=action)
    return access_by_id(session, actor, ImportJob, upload_id, action=action, missing=_(UPLOAD_GONE),
                        entity_type="import_job", allowed=lambda job: _is_upload(job) and (
                            job.created_by == actor.user_id))


def preview_upload(*, session: Session, actor: Actor, upload_id: int,
                   mapping: dict[str, str] | None = None) -> csv_import.Preview:
    """The preview of the actor's upload with the columns mapped as ``mapping`` says.

    Raises:
        NotFound: no such upload of the actor's (imported, replaced or left for a day).
        ValidationError: the mapping is not readable.
    """
    upload = _upload(session, actor, upload_id, "import.preview")
    mapping = _checked_mapping(mapping)
    return _preview(_check_kind(session, actor, upload.kind, "import.preview"),
                    files.read_decrypted(upload.storage_name), mapping)


def discard_upload(*, session: Session, actor: Actor, upload_id: int) -> None:
    """Delete the actor's upload and its file (another kind was chosen); nothing if it is gone already."""
    csv_import.require_import(session, actor, None, action="import.discard")
    gone = _discard(session, actor, upload_id)
    session.commit()
    _remove_files(gone)


def _discard(session: Session, actor: Actor, upload_id: object) -> list[str]:
    """Delete the actor's upload of that id, if there is one; its file's name, to remove after the commit."""
    key = parse_id(upload_id)  # a number no id column holds would fail the query on PostgreSQL
    upload = session.execute(select(ImportJob).where(_UPLOAD, ImportJob.id == key,
                                                     ImportJob.created_by == actor.user_id)).scalar_one_or_none()
    if upload is None:
        return []
    audit.record(session, actor, "import.discard", entity_type="import_job", entity_id=upload.id,
                 detail=f"{upload.kind} from {upload.file_name}; replaced before it was imported")  # i18n: not shown
    session.delete(upload)
    return [upload.storage_name]


def _abandoned_uploads(session: Session, before: datetime) -> list[str]:
    """Delete the uploads made before ``before`` and never imported; their files' names."""
    old = session.execute(select(ImportJob).where(_UPLOAD, ImportJob.created_at < before)).scalars().all()
    for upload in old:
        audit.record(session, None, "import.discard", entity_type="import_job", entity_id=upload.id,
                     detail=f"{upload.kind} from {upload.file_name}; not imported within a day")  # i18n: not shown
        session.delete(upload)
    return [upload.storage_name for upload in old]


def _remove_files(names: list[str]) -> None:
    for name in names:
        if name:
            files.remove_stored(name)


def start_import(*, session: Session, actor: Actor, upload_id: int, mapping: dict[str, str] | None = None,
                 dry_run: bool = False, good_rows_only: bool = False) -> int:
    """Start the check or the import of the actor's upload: a waiting job; ``launch_import`` runs it.

    A check runs on a copy of the file and keeps the upload for the import; the import takes the
    file itself, and the upload is gone.

    Raises:
        NotFound: no such upload of the actor's (imported, replaced or left for a day).
        PermissionDenied: the actor may not import this kind.
        ValidationError: the mapping does not fit the file; nothing was started.
    """
    upload = _upload(session, actor, upload_id, "import.start")
    csv_kind = _check_kind(session, actor, upload.kind, "import.start")
    data = files.read_decrypted(upload.storage_name)
    mapping_text = _mapping_json(csv_kind, data, _checked_mapping(mapping))
    if dry_run:
        with files.stored_encrypted(data) as storage_name:
            job = _new_job(session, actor, upload.kind, upload.file_name, storage_name, mapping_text, True, False)
            session.commit()
        return job.id
    storage_name, kind, name = upload.storage_name, upload.kind, upload.file_name
    session.delete(upload)
    session.flush()
    job = _new_job(session, actor, kind, name, storage_name, mapping_text, False, good_rows_only)
    session.commit()
    return job.id


def console_import(session: Session, actor: Actor, *, kind: str, path: Path, mapping: dict[str, str] | None,
                   dry_run: bool, good_rows_only: bool) -> int:
    """The command line's job for a file (or, for FHIR, a folder) it reads itself; nothing is stored.

    Raises:
        PermissionDenied, ValidationError: as ``start_import``.
    """
    csv_kind = None if kind == FHIR else csv_import.kind_named(kind)
    csv_import.require_import(session, actor, csv_kind, action=f"import.{kind}")
    mapping_text = "{}"
    if csv_kind is not None:
        data = path.read_bytes()
        check_import_file(csv_kind, path.name, data)
        mapping_text = _mapping_json(csv_kind, data, mapping or {})
    job = _new_job(session, actor, kind, path.name[:200], "", mapping_text, dry_run, good_rows_only)
    session.commit()
    return job.id


def _new_job(session: Session, actor: Actor, kind: str, name: str, storage_name: str, mapping: str, dry_run: bool,
             good_rows_only: bool) -> ImportJob:
    job = ImportJob(kind=kind, file_name=name, storage_name=storage_name, mapping=mapping, dry_run=bool(dry_run),
                    good_rows_only=bool(good_rows_only) and not dry_run, created_by=actor.user_id,
                    started_at=utcnow())
    session.add(job)
    session.flush()
    events.publish(session, TOPIC, roles=[Role.ADMIN.value])
    return job


def console_actor(session: Session, email: str) -> Actor:
    """The active account a command-line import is done as (``--by``), with its role's permissions.

    Raises:
        ValidationError: no active account has that address.
    """
    address = emails.normalised_or_none(email)
    user = session.execute(select(User).where(User.email == address)).scalar_one_or_none() if address else None
    if user is None or not user.is_active:
        raise ValidationError(_("No active account has the address {email}: give --by an administrator's "
                                "email.").format(email=repr(email)))
    return Actor(user_id=user.id, role=Role(user.role), email=user.email, full_name=user.full_name,
                 permissions=permissions_for_role(session, user.role), ip_address="console")


# --- running ---------------------------------------------------------------------------------------


@dataclass
class _Running:
    """A job running in this process: what it has done so far, and whether it was asked to stop."""

    report: ImportReport = field(default_factory=ImportReport)
    processed: int = 0
    total: int = 0
    cancel: threading.Event = field(default_factory=threading.Event)


_RUNNING: dict[int, _Running] = {}
_EXECUTOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hms-import")


def launch_import(job_id: int, actor: Actor, *, engine: sa.Engine | None = None) -> Future:
    """Run the job on this process's import thread; returns at once.

    The job's messages and its report's are written in the language of the one who launched it
    (the thread does not inherit the event's context, so the language is handed over).
    """
    _RUNNING.setdefault(job_id, _Running())
    return _EXECUTOR.submit(_run_logged, job_id, actor, engine, current_language())


def _run_logged(job_id: int, actor: Actor, engine: sa.Engine | None, language: str) -> None:
    try:
        with use_language(language):
            run_import(job_id, actor, engine=engine)
    except Exception:
        log.exception("import job %s failed", job_id)


def run_import(job_id: int, actor: Actor, *, engine: sa.Engine | None = None, progress: Progress = no_progress,
               path: Path | None = None) -> ImportReport:
    """Run a waiting job to its end in this thread, and return its report.

    Args:
        progress: also told of the progress (the command line's bar); may raise ``ImportCancelled``.
        path: the file (or FHIR folder) to read instead of the stored one (the command line's).
    """
    running = _RUNNING.setdefault(job_id, _Running())
    try:
        with session_scope(engine=engine) as session:
            job = session.get(ImportJob, job_id)
            if job is None or job.status != ImportStatus.WAITING or _is_upload(job) or running.cancel.is_set():
                if job is not None and job.status == ImportStatus.WAITING and not _is_upload(job):
                    _finish(session, actor, job, running.report, ImportStatus.CANCELLED,
                            _("Cancelled before it started: nothing was imported."))
                    session.commit()
                return running.report
            job.status, job.started_at = ImportStatus.RUNNING, utcnow()
            session.commit()
            kind, storage_name, mapping = job.kind, job.storage_name, json.loads(job.mapping or "{}")
            dry_run, good_rows_only = job.dry_run, job.good_rows_only
        checkpoint = _checkpoint(job_id, running, engine, progress)
        if kind == FHIR:
            return _run_fhir(job_id, actor, engine, running, checkpoint, storage_name, path, dry_run)
        data = path.read_bytes() if path is not None else files.read_decrypted(storage_name)
        return _run_csv(job_id, actor, engine, running, checkpoint, kind, data, mapping, dry_run, good_rows_only)
    finally:
        _RUNNING.pop(job_id, None)
        if storage_name := _storage_of(job_id, engine):
            files.remove_stored(storage_name)


def _storage_of(job_id: int, engine: sa.Engine | None) -> str:
    """The job's stored file, once the job has ended (then it is deleted)."""
    with session_scope(engine=engine, write=False) as session:
        job = session.get(ImportJob, job_id)
        return job.storage_name if job is not None and job.status in _ENDED else ""


def _checkpoint(job_id: int, running: _Running, engine: sa.Engine | None, outer: Progress) -> Progress:
    """The progress callback: notes the progress, tells ``outer``, and stops the import if cancelled."""
    shared_row = (engine or _default_engine()).dialect.name != "sqlite"

    def checkpoint(processed: int, total: int | None) -> None:
        running.processed, running.total = processed, total or 0
        outer(processed, total)
        if shared_row:
            counts = {o.value: getattr(running.report, o.value) for o in LineOutcome}
            with session_scope(engine=engine) as session:
                session.execute(sa.update(ImportJob).where(ImportJob.id == job_id)
                                .values(processed=processed, total=total or 0, **counts))
                cancelled = session.execute(select(ImportJob.cancel_requested).where(ImportJob.id == job_id)
                                            ).scalar_one()
                session.commit()
            if cancelled:
                running.cancel.set()
        if running.cancel.is_set():
            raise ImportCancelled

    return checkpoint


def _default_engine() -> sa.Engine:
    from hms_app.db.engine import get_engine

    return get_engine()


def _run_csv(job_id: int, actor: Actor, engine: sa.Engine | None, running: _Running, checkpoint: Progress,
             kind_name: str, data: bytes, mapping: dict[str, str], dry_run: bool, good_rows_only: bool) -> ImportReport:
    kind = csv_import.kind_named(kind_name)
    report = running.report

    def record_in_same_transaction(session: Session, done: ImportReport) -> None:
        _finish(session, actor, session.get(ImportJob, job_id), done, ImportStatus.DONE, done.message)

    try:
        with session_scope(engine=engine) as session:
            csv_import.run_csv(session=session, actor=actor, kind=kind, data=data, mapping=mapping, dry_run=dry_run,
                               good_rows_only=good_rows_only, progress=checkpoint, job_id=job_id,
                               before_commit=record_in_same_transaction, report=report)
    except HMSError as error:
        report.lines.clear()
        _end(engine, actor, job_id, report, ImportStatus.FAILED, _(NOTHING_IMPORTED).format(problem=error.message))
        return report
    except Exception as error:
        _end(engine, actor, job_id, report, ImportStatus.FAILED,
             _("The import stopped on an unexpected error ({error}); nothing of it was committed. Tell the system's "
               "maintainers; the server log has the details.").format(error=type(error).__name__))
        raise
    if not report.committed:
        status = (ImportStatus.CANCELLED if report.cancelled else ImportStatus.DONE if dry_run
                  else ImportStatus.FAILED)
        _end(engine, actor, job_id, report, status, report.message)
    return report


def _run_fhir(job_id: int, actor: Actor, engine: sa.Engine | None, running: _Running, checkpoint: Progress,
              storage_name: str, path: Path | None, dry_run: bool) -> ImportReport:
    try:
        with tempfile.TemporaryDirectory(prefix="hms-fhir-") as folder:
            if path is None:
                data = files.read_decrypted(storage_name)
                suffix = ".ndjson" if _looks_ndjson(data) else ".json"
                path = Path(folder) / f"upload{suffix}"
                path.write_bytes(data)
            report = import_fhir(engine=engine or _default_engine(), actor=actor, path=path, dry_run=dry_run,
                                 progress=checkpoint, job_id=job_id)
    except ImportCancelled:
        _end(engine, actor, job_id, running.report, ImportStatus.CANCELLED,
             _("Cancelled. The patients whose records were complete before the cancel were committed; importing the "
               "file again brings in the rest."))
        return running.report
    except HMSError as error:
        _end(engine, actor, job_id, running.report, ImportStatus.FAILED,
             _(NOTHING_IMPORTED).format(problem=error.message))
        return running.report
    except Exception as error:
        _end(engine, actor, job_id, running.report, ImportStatus.FAILED,
             _("The import stopped on an unexpected error ({error}). {what_now}").format(
                 error=type(error).__name__, what_now=_(INTERRUPTED_FHIR_MESSAGE)))
        raise
    status = ImportStatus.DONE if report.committed or dry_run else ImportStatus.FAILED
    _end(engine, actor, job_id, report, status, report.message)
    return report


def _looks_ndjson(data: bytes) -> bool:
    """One JSON object on the first line and more lines after it: NDJSON, not one Bundle."""
    first, __, rest = data.strip().partition(b"\n")
    try:
        return isinstance(json.loads(first), dict) and bool(rest.strip())
    except ValueError:
        return False


def _end(engine: sa.Engine | None, actor: Actor, job_id: int, report: ImportReport, status: ImportStatus,
         message: str) -> None:
    with session_scope(engine=engine) as session:
        job = session.get(ImportJob, job_id)
        if job is not None:
            _finish(session, actor, job, report, status, message)
            session.commit()


def _mode(job: ImportJob) -> str:
    """The job's mode as the audit trail names it (``MODE_LABELS`` has what the page shows)."""
    return "dry run" if job.dry_run else "good lines only" if job.good_rows_only else "all or nothing"  # i18n: not shown


def _finish(session: Session, actor: Actor, job: ImportJob, report: ImportReport, status: ImportStatus,
            message: str) -> None:
    """The job's end, in the caller's transaction: status, counts, the report's lines, one audit row."""
    job.status, job.finished_at, job.message = status, utcnow(), message[:500]
    job.committed = report.committed and status == ImportStatus.DONE
    for outcome in LineOutcome:
        setattr(job, outcome.value, getattr(report, outcome.value))
    job.processed = len(report.lines) or job.processed
    job.total = max(job.total, job.processed)
    job.skipped_by_type = json.dumps(report.skipped_by_type, sort_keys=True)
    session.add(job)
    if report.lines:
        session.execute(sa.insert(ImportLine), [
            {"job_id": job.id, "line": r.line, "outcome": r.outcome.value, "record": r.record[:200],
             "message": r.message[:500]} for r in report.lines])
    counts = ", ".join(f"{o.value} {getattr(report, o.value)}" for o in LineOutcome)
    audit.record(session, actor, f"import.{status.value}", entity_type="import_job", entity_id=job.id,
                 detail=f"{job.kind} from {job.file_name}; {_mode(job)}; {counts}; "
                        f"{'committed' if job.committed else 'nothing committed'}")
    events.publish(session, TOPIC, roles=[Role.ADMIN.value])


def recover_interrupted_imports(session: Session, *, started_before: datetime) -> int:
    """Mark failed the jobs that a stopped server left waiting or running, and delete their files;
    delete the uploads left for more than ``UPLOAD_KEPT`` (the others wait for their import still).

    Only jobs made before ``started_before`` (this process's start) are touched.
    """
    jobs = session.execute(select(ImportJob).where(ImportJob.status.in_([ImportStatus.WAITING, ImportStatus.RUNNING]),
                                                   sa.not_(_UPLOAD),
                                                   ImportJob.created_at < started_before)).scalars().all()
    for job in jobs:
        job.status, job.finished_at = ImportStatus.FAILED, utcnow()
        job.message = _(INTERRUPTED_FHIR_MESSAGE if job.kind == FHIR else INTERRUPTED_MESSAGE)
        session.add(job)
        stopped = f"{job.kind} from {job.file_name}; {_mode(job)}; the server stopped during the import"  # i18n: not shown
        audit.record(session, None, "import.failed", entity_type="import_job", entity_id=job.id, detail=stopped)
    gone = _abandoned_uploads(session, min(started_before, utcnow() - UPLOAD_KEPT))
    session.commit()
    _remove_files([job.storage_name for job in jobs] + gone)
    return len(jobs)


# --- following -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportView:
    """An import job as the page shows it."""

    id: int
    kind: str
    kind_label: str
    file_name: str
    mode: str
    status: str
    status_label: str
    running: bool
    total: int
    processed: int
    percent: int
    progress_text: str
    created: int
    updated: int
    unchanged: int
    skipped: int
    failed: int
    committed: bool
    message: str
    started: str
    by: str


def _view(job: ImportJob, by: str) -> ImportView:
    running = _RUNNING.get(job.id)
    processed, total = job.processed, job.total
    counts = {o.value: getattr(job, o.value) for o in LineOutcome}
    if running is not None and job.status == ImportStatus.RUNNING:
        processed, total = max(processed, running.processed), max(total, running.total)
        counts = {o.value: getattr(running.report, o.value) for o in LineOutcome}
    percent = 100 if job.status in _ENDED else int(processed * 100 / total) if total else 0
    # English reads "lines" whatever the count, as it always has; the translations take their plural forms.
    text = (ngettext("{processed} of {total} lines", "{processed} of {total} lines", total).format(
                processed=format_number(processed), total=format_number(total)) if total
            else ngettext("{n} lines", "{n} lines", processed).format(n=format_number(processed)))
    return ImportView(
        id=job.id, kind=job.kind, kind_label=kind_label(job.kind), file_name=job.file_name,
        mode=_(MODE_LABELS[_mode(job)]), status=str(job.status),
        status_label=_(STATUS_LABELS[ImportStatus(job.status)]),
        running=job.status in (ImportStatus.WAITING, ImportStatus.RUNNING), total=total, processed=processed,
        percent=percent, progress_text=text, committed=job.committed, message=job.message,
        started=format_local(job.started_at or job.created_at), by=by, **counts)


def _get_job(session: Session, actor: Actor, job_id: object, action: str) -> ImportJob:
    csv_import.require_import(session, actor, None, action=action)
    return access_by_id(session, actor, ImportJob, job_id, action=action, missing=N_("That import does not exist."),
                        entity_type="import_job", allowed=lambda job: not _is_upload(job))


def _by(session: Session, job: ImportJob) -> str:
    return session.execute(select(User.full_name).where(User.id == job.created_by)).scalar_one_or_none() or ""


def import_status(*, session: Session, actor: Actor, job_id: int) -> ImportView:
    job = _get_job(session, actor, job_id, "import.view")
    return _view(job, _by(session, job))


def cancel_import(*, session: Session, actor: Actor, job_id: int) -> None:
    """Stop a waiting or running import; what it had not committed is rolled back.

    Raises:
        Conflict: the import has ended already.
    """
    running = _RUNNING.get(parse_id(job_id))
    flagged = running is not None and actor.can(Permission.DATA_IMPORT) and not actor.must_change_password
    if flagged:
        # Before any read: on SQLite the import holds the write lock until it sees this flag.
        running.cancel.set()
    job = _get_job(session, actor, job_id, "import.cancel")
    if job.status in _ENDED and not (flagged and job.status == ImportStatus.CANCELLED):
        raise Conflict(_("That import has ended already; there is nothing to cancel."))
    job.cancel_requested = True
    session.add(job)
    audit.record(session, actor, "import.cancel", entity_type="import_job", entity_id=job.id,
                 detail=f"{job.kind} from {job.file_name}")
    session.commit()


@dataclass(frozen=True)
class ReportLine:
    line: int
    outcome: str
    outcome_label: str
    record: str
    message: str


def import_report(*, session: Session, actor: Actor, job_id: int, page: int = 1, page_size: int = 20,
                  search: str = "", outcome: str = "") -> Page[ReportLine]:
    """One page of what the job did with each line, in line order; by outcome, or searched."""
    job = _get_job(session, actor, job_id, "import.view")
    page, page_size = clamp_page(page, page_size)
    query = select(ImportLine).where(ImportLine.job_id == job.id)
    if outcome:
        if not isinstance(outcome, str) or outcome not in {o.value for o in LineOutcome}:
            raise ValidationError(_("Choose an outcome from the list."))
        query = query.where(ImportLine.outcome == outcome)
    term = storable(str(search or "").strip()[:100], _("search"))
    if term:
        like = f"%{escape_like(term.lower())}%"
        query = query.where(sa.or_(sa.func.lower(ImportLine.record).like(like, escape="\\"),
                                   sa.func.lower(ImportLine.message).like(like, escape="\\"),
                                   sa.cast(ImportLine.line, sa.String) == term))
    total, rows = fetch_page(session, query.order_by(ImportLine.line, ImportLine.id), page=page, page_size=page_size)
    return Page([ReportLine(r.line, str(r.outcome), _(OUTCOME_LABELS[LineOutcome(r.outcome)]), r.record, r.message)
                 for (r,) in rows], total, page, page_size)


def list_imports(*, session: Session, actor: Actor, page: int = 1, page_size: int = 20,
                 search: str = "") -> Page[ImportView]:
    """The imports, newest first; searched by file name or kind."""
    csv_import.require_import(session, actor, None, action="import.list")
    page, page_size = clamp_page(page, page_size)
    query = (select(ImportJob, User.full_name).outerjoin(User, User.id == ImportJob.created_by)
             .where(sa.not_(_UPLOAD)).order_by(ImportJob.created_at.desc(), ImportJob.id.desc()))
    term = storable(str(search or "").strip()[:100], _("search"))
    if term:
        like = f"%{escape_like(term.lower())}%"
        query = query.where(sa.or_(sa.func.lower(ImportJob.file_name).like(like, escape="\\"),
                                   sa.func.lower(ImportJob.kind).like(like, escape="\\")))
    total, rows = fetch_page(session, query, page=page, page_size=page_size)
    return Page([_view(job, by or "") for job, by in rows], total, page, page_size)

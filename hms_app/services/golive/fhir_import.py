"""Import FHIR R4 data (such as Synthea writes) into HMS's own tables, streaming and idempotent.

``import_fhir`` takes one Bundle (transaction, batch, collection or searchset; one patient or
many), an NDJSON file (one resource per line, any types, as a bulk export writes), or a folder
of them. Pass 1 (``fhir_source.stage``) checks the whole source and stages it per patient in a
scratch file; nothing reaches the hospital's database if the source is refused. Pass 2 writes
the shared resources (practitioners, medications), then one patient at a time: the patient's
resources are committed together or not at all, so a cancel or a crash leaves whole patients.

How it keeps its pace (``bench/fhir_import.py``: 10,000 Synthea-shaped patients, 980,003
resources, in 714 s on SQLite on a shared 2-core machine, 1,374 a second, 1,874 per CPU second,
peak memory 124 MB against 118 MB at 1,000 patients; the import before this took 218 a second):
each patient is one transaction of its own (one commit, so on SQLite the write lock is held for
one patient at a time and other users write between patients; the fsync of a commit is a few
milliseconds against the patient's hundred resources), written without a savepoint per
resource. A resource that fails may already have written part of itself, so then that patient's
savepoint is rolled back and the patient written again with a savepoint around each resource
(the slow path, for the rare patient with a bad resource). The ``SourceRecord`` rows of a
patient's resources are read in one query; lookups shared by all patients (practitioners,
medications, LOINC and RxNorm codes, doctors' departments) are cached for the run, and every
cache entry the open transaction made is journaled and taken back if it is rolled back.

Every resource is kept in ``SourceRecord`` by (``fhir``, type, id) with a hash of its content:
importing the same source again finds every resource unchanged and writes nothing, and an
edited resource updates the record it made. Decisions where FHIR and HMS differ:

- A patient gets a placeholder address ``patient-…@imported.invalid`` (``.invalid`` can never
  deliver) and no password: nobody can log in as them until staff give them an address and
  a password. Their medical record number is the source's MR identifier when it fits and is
  free, else the next of HMS's own.
- A practitioner is an HMS doctor found by an identifier kept in ``SourceRecord`` (a staff
  import may have put it there), else an inactive doctor in the inactive department "Outside
  clinicians (imported)", made once per practitioner, who cannot log in. A resource that names
  no practitioner, or one that cannot be found, is recorded under one "Outside clinician (not
  named)"; the report says which reference was not resolved.
- An Encounter is a completed Appointment (which holds no slot: only requested and confirmed
  ones do) with its completed Encounter, so every reader of encounters sees it as native.
- Vital signs go onto the encounter they were taken in (what the chart's trend reads); a
  laboratory result becomes a completed lab order with its result, released, against the
  catalog test of that LOINC code or name, else an inactive catalog entry made for imports.
- A MedicationRequest is a past prescription, status dispensed (the pharmacy's queue never
  picks it up), against the formulary medicine of that RxNorm code or name, else an inactive
  formulary entry. Imported history is never billed.
- DiagnosticReport and DocumentReference text becomes a text/plain document in the chart,
  stored encrypted like an upload; a PDF, PNG or JPEG attachment is stored as itself.
- What HMS does not keep is counted as skipped, by type (and, for observations, by category).

A dry run does all of it in one transaction that is rolled back, so its report is exactly
what the import would do.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import Session

from hms_app.db.engine import session_scope
from hms_app.db.enums import (
    AppointmentStatus,
    ClinicalStatus,
    EncounterStatus,
    LabOrderStatus,
    LineOutcome,
    Permission,
    PrescriptionStatus,
    Role,
    Sex,
)
from hms_app.db.models import (
    Allergy,
    Appointment,
    Department,
    DoctorProfile,
    Document,
    Encounter,
    Immunization,
    LabOrder,
    LabResult,
    LabTest,
    Medicine,
    PatientProfile,
    Prescription,
    PrescriptionItem,
    Problem,
    Procedure,
    SourceRecord,
    User,
)
from hms_app.db.types import utcnow
from hms_app.services.care.clinical import VITAL_RANGES
from hms_app.services.core import audit, counters, emails, files
from hms_app.services.core.access import require
from hms_app.services.core.actor import Actor
from hms_app.services.core.errors import ValidationError
from hms_app.services.core.language import _, ngettext
from hms_app.services.golive import fhir_source
from hms_app.services.golive.fhir_source import SourceRefused, Staging
from hms_app.services.golive.kinds import (
    NOTHING_IMPORTED,
    ImportCancelled,
    ImportReport,
    LineResult,
    Progress,
    no_progress,
)
from hms_app.services.reference import icd10

FHIR = "fhir"
"""``SourceRecord.system`` of a resource's own id."""
HMS_IMPORT = "urn:hms:import"
"""``SourceRecord.system`` of what the import made for itself (the unnamed clinician)."""
LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
MR_TYPE = "MR"
PLACEHOLDER_DOMAIN = "imported.invalid"
# The names of what the import makes are the hospital's data, the same whoever imports (the
# department is found again by its name), so they are not translated.
OUTSIDE_DEPARTMENT = "Outside clinicians (imported)"  # i18n: not shown
UNNAMED_CLINICIAN = "Outside clinician (not named)"  # i18n: not shown
PROGRESS_EVERY = 500

_VITALS = {
    "8867-4": "pulse", "8310-5": "temperature_c", "29463-7": "weight_kg", "8302-2": "height_cm",
    "59408-5": "spo2", "2708-6": "spo2", "8480-6": "bp_systolic", "8462-4": "bp_diastolic",
}
_BP_PANELS = {"85354-9", "55284-4"}
_INTERPRETATION_FLAG = {"LL": "critical_low", "L": "low", "N": "normal", "H": "high", "HH": "critical_high"}
_SEX = {"female": Sex.FEMALE, "male": Sex.MALE, "other": Sex.OTHER}
_RESOLVED = {"resolved", "inactive", "remission"}


class _Failed(Exception):
    """This resource cannot be imported; the message says why, for the report."""


class _Skipped(Exception):
    """This resource holds nothing HMS keeps; the message is its label in ``skipped_by_type``
    (a key the job keeps as it is, in English, like the resource types beside it).

    Raised before a mapper writes anything (so it needs no savepoint of its own).
    """


class _Redo(Exception):
    """A resource of a patient written in one go failed: write that patient again, one savepoint a resource."""


_MISSING = object()


@dataclass
class _NewSource:
    """A ``SourceRecord`` to write with the rest of its patient's in one statement, once its row has an id."""

    system: str
    source_type: str
    source_id: str
    entity_type: str
    entity: object
    """The id of what it names, or the new row whose id the patient's flush gives."""
    content_hash: str = ""

    @property
    def entity_id(self) -> int | None:
        return self.entity if isinstance(self.entity, int) else self.entity.id
_SHARED_TYPES = frozenset(("Practitioner", "Medication"))  # i18n: not shown


@dataclass
class _Run:
    actor: Actor
    job_id: int | None
    staging: Staging
    report: ImportReport
    stored: list[str] = field(default_factory=list)
    """Files stored by the open transaction: removed again if it does not commit."""
    superseded: list[str] = field(default_factory=list)
    """Files replaced by the open transaction: removed once it commits."""
    notes: list[str] = field(default_factory=list)
    """What the resource being imported could not resolve but was imported anyway."""
    ids: dict[tuple[str, str, str], int | None] = field(default_factory=dict)
    """Lookups shared by every patient (``SourceRecord`` rows of practitioners, medications, codes;
    departments of doctors), cached for the run: bounded by the source's shared resources and
    codes, not by its patients."""
    patient_ids: dict[tuple[str, str, str], int | None] = field(default_factory=dict)
    """The same for the patient being written (their own resources' ``SourceRecord`` rows)."""
    sources: dict[tuple[str, str], SourceRecord | _NewSource | None] = field(default_factory=dict)
    """The ``SourceRecord`` of each resource of the patient being written, loaded in one query (and,
    while the shared resources are written, of those written so far)."""
    encounters: dict[int, Encounter] = field(default_factory=dict)
    """The encounters of the patient being written, by id."""
    new_sources: list[_NewSource] = field(default_factory=list)
    """``SourceRecord`` rows not written yet (``_write_sources``)."""
    journal: list[tuple[dict, object, object]] = field(default_factory=list)
    """(cache, key, value before) of what the open transaction put in the caches: put back if it
    is rolled back, so no cache names a row that was never written."""

    def remember(self, cache: dict, key: object, value: object) -> None:
        self.journal.append((cache, key, cache.get(key, _MISSING)))
        cache[key] = value

    def forget_since(self, mark: int) -> None:
        """Put the caches back as they were when the journal was ``mark`` long."""
        while len(self.journal) > mark:
            cache, key, before = self.journal.pop()
            if before is _MISSING:
                cache.pop(key, None)
            else:
                cache[key] = before

    def start_patient(self) -> None:
        self.patient_ids.clear()
        self.sources.clear()
        self.encounters.clear()


def import_fhir(*, engine: sa.Engine, actor: Actor, path: Path, dry_run: bool = False,
                progress: Progress = no_progress, job_id: int | None = None) -> ImportReport:
    """Import the FHIR Bundle, NDJSON file or folder at ``path`` (see the module's docstring).

    Raises:
        PermissionDenied: the actor may not import data (audited).
    """
    with session_scope(engine=engine) as session:
        require(session, actor, Permission.DATA_IMPORT, action="import.fhir")
    report = ImportReport()
    with tempfile.TemporaryDirectory(prefix="hms-fhir-") as folder:
        staging = Staging(Path(folder))
        try:
            try:
                found = fhir_source.stage(Path(path), staging, progress=lambda read: progress(read, None))
            except SourceRefused as refused:
                report.message = _(NOTHING_IMPORTED).format(problem=refused.problems[0])
                if refused.more:
                    # English reads "problems" whatever the count, as it always has.
                    report.message = ngettext("Nothing was imported: {problem} ({n} more problems not listed)",
                                              "Nothing was imported: {problem} ({n} more problems not listed)",
                                              refused.more).format(problem=refused.problems[0], n=refused.more)
                report.failed = len(refused.problems) + refused.more
                report.lines = [LineResult(0, LineOutcome.FAILED, "", problem) for problem in refused.problems]
                return report
            report.skipped_by_type = dict(found.skipped_by_type)
            report.skipped = sum(found.skipped_by_type.values())
            run = _Run(actor=actor, job_id=job_id, staging=staging, report=report)
            try:
                patients = _write(engine, run, found.total, dry_run, progress)
            except ImportCancelled:
                report.committed = False
                kept = report.created + report.updated + report.unchanged
                report.message = ngettext(
                    "Cancelled. {n} resources of whole patients were imported before the cancel and stay; the rest "
                    "was not imported.",
                    "Cancelled. {n} resources of whole patients were imported before the cancel and stay; the rest "
                    "was not imported.", kept).format(n=kept)
                return report
            report.committed = not dry_run
            report.message = _summary(report, patients, found.files, dry_run)
            return report
        finally:
            staging.close()


def _summary(report: ImportReport, patients: int, files_read: int, dry_run: bool) -> str:
    counts = {"patients": patients, "files": files_read, "created": report.created, "updated": report.updated,
              "unchanged": report.unchanged, "skipped": report.skipped, "failed": report.failed}
    if dry_run:
        return ngettext("Dry run: would import {patients} patients from {files} file: {created} resources created, "
                        "{updated} updated, {unchanged} unchanged, {skipped} skipped, {failed} failed.",
                        "Dry run: would import {patients} patients from {files} files: {created} resources created, "
                        "{updated} updated, {unchanged} unchanged, {skipped} skipped, {failed} failed.",
                        files_read).format(**counts)
    return ngettext("imported {patients} patients from {files} file: {created} resources created, {updated} updated, "
                    "{unchanged} unchanged, {skipped} skipped, {failed} failed.",
                    "imported {patients} patients from {files} files: {created} resources created, {updated} "
                    "updated, {unchanged} unchanged, {skipped} skipped, {failed} failed.", files_read).format(**counts)


def _write(engine: sa.Engine, run: _Run, total: int, dry_run: bool, progress: Progress) -> int:
    """Pass 2. Returns the number of patients written."""
    done = run.report.skipped
    progress(done, total)
    patients = 0
    with session_scope(engine=engine) as session:
        try:
            for seq, location, resource, digest in run.staging.shared():
                _one(session, run, seq, location, resource, digest, None, careful=True)
                done += 1
                if done % PROGRESS_EVERY == 0:
                    _checkpoint(session, run, dry_run)
                    progress(done, total)
            _checkpoint(session, run, dry_run)
            for seq, location, key in run.staging.without_patient():
                _line(run, seq, f"{location} {key}", LineOutcome.FAILED, _("names no patient it belongs to."))
                done += 1
            progress(done, total)
            for key in run.staging.patients():
                resources = run.staging.of_patient(key)
                if _patient_group(session, run, key, resources):
                    patients += 1
                _checkpoint(session, run, dry_run)
                done += len(resources)
                progress(done, total)
        except BaseException:
            session.rollback()
            _discard(run)
            raise
        if dry_run:
            session.rollback()
            _discard(run)
    return patients


def _checkpoint(session: Session, run: _Run, dry_run: bool) -> None:
    """Commit what is open (a dry run only flushes) and let go of the rows loaded so far."""
    _write_sources(session, run)
    if dry_run:
        session.flush()
    else:
        session.commit()
        for name in run.superseded:
            files.remove_stored(name)
        run.stored.clear()
        run.superseded.clear()
        run.journal.clear()
    session.expunge_all()


def _discard(run: _Run) -> None:
    for name in run.stored:
        files.remove_stored(name)
    run.stored.clear()
    run.superseded.clear()


def _patient_group(session: Session, run: _Run, key: str, resources: list[tuple[int, str, dict, str]]) -> bool:
    """One patient's resources, in one savepoint: all written, or (on an error of ours) none.

    They are written in one go, without a savepoint per resource. A resource that fails may
    have written part of itself, so then the patient is rolled back and written again with a
    savepoint around each resource, which undoes exactly the failed one (rare, and slower).
    """
    report = run.report
    before = ({o: getattr(report, o.value) for o in LineOutcome}, len(report.lines), dict(report.skipped_by_type),
              len(run.stored), len(run.superseded), len(run.new_sources))
    mark = len(run.journal)
    try:
        with session.begin_nested():
            written = _patient_resources(session, run, key, resources, careful=False)
    except _Redo:
        counts, lines, skipped, stored, superseded, new_sources = before
        for outcome, n in counts.items():
            setattr(report, outcome.value, n)
        del report.lines[lines:]
        report.skipped_by_type = skipped
        for name in run.stored[stored:]:
            files.remove_stored(name)
        del run.stored[stored:]
        del run.superseded[superseded:]
        del run.new_sources[new_sources:]
        run.forget_since(mark)
        with session.begin_nested():
            written = _patient_resources(session, run, key, resources, careful=True)
    run.journal.clear()  # the patient's savepoint is released: only the whole transaction can be rolled back now
    return written


def _patient_resources(session: Session, run: _Run, key: str, resources: list[tuple[int, str, dict, str]], *,
                       careful: bool) -> bool:
    counts = dict.fromkeys(LineOutcome, 0)
    run.start_patient()
    _load_sources(session, run, resources)
    patient_id = None
    for seq, location, resource, digest in resources:
        if resource["resourceType"] == "Patient":  # i18n: not shown
            outcome = _one(session, run, seq, location, resource, digest, None, careful=careful)
            counts[outcome] += 1
            patient_id = _entity(session, run, FHIR, "Patient", resource["id"])  # i18n: not shown
            continue
        if patient_id is None:
            patient_id = _patient_of_key(session, run, key)
        if patient_id is None:
            _line(run, seq, f"{location} {resource['resourceType']}/{resource['id']}", LineOutcome.FAILED,
                  _("its patient ({key}) is neither in the source nor imported before.").format(key=key))
            counts[LineOutcome.FAILED] += 1
            continue
        counts[_one(session, run, seq, location, resource, digest, patient_id, careful=careful)] += 1
    if patient_id is not None and (counts[LineOutcome.CREATED] or counts[LineOutcome.UPDATED]):
        audit.record(session, run.actor, "import.fhir.patient", entity_type="patient", entity_id=patient_id,
                     patient_id=patient_id,
                     detail=f"job {run.job_id or '-'}: " + ", ".join(f"{n} {o.value}" for o, n in counts.items() if n))
    _write_sources(session, run)
    return patient_id is not None


def _write_sources(session: Session, run: _Run) -> None:
    """Flush what is pending, then write the ``SourceRecord`` rows that waited for its ids, in one statement."""
    if not run.new_sources:
        return
    session.flush()
    now = utcnow()
    session.execute(sa.insert(SourceRecord), [
        {"system": new.system, "source_type": new.source_type, "source_id": new.source_id,
         "entity_type": new.entity_type, "entity_id": new.entity_id, "content_hash": new.content_hash,
         "job_id": run.job_id, "imported_at": now} for new in run.new_sources])
    run.new_sources.clear()


def _load_sources(session: Session, run: _Run, resources: list[tuple[int, str, dict, str]]) -> None:
    """The ``SourceRecord`` rows of a patient's resources, in one query.

    It names the types as well as the ids, so that it is a few lookups in the primary key
    (system, type, id): by ids alone it would read every FHIR row, and slow with each patient.
    """
    wanted = {(r["resourceType"], str(r["id"])[:200]) for __, __, r, __ in resources}
    for rtype, rid in wanted:
        run.sources[(rtype, rid)] = None
        run.patient_ids[(FHIR, rtype, rid)] = None
    types = sorted({rtype for rtype, __ in wanted})
    ids = sorted({rid for __, rid in wanted})
    for chunk in range(0, len(ids), 500):
        for record in session.execute(sa.select(SourceRecord).where(
                SourceRecord.system == FHIR, SourceRecord.source_type.in_(types),
                SourceRecord.source_id.in_(ids[chunk:chunk + 500]))).scalars():
            if (record.source_type, record.source_id) in wanted:
                run.sources[(record.source_type, record.source_id)] = record
                run.patient_ids[(FHIR, record.source_type, record.source_id)] = record.entity_id


def _patient_of_key(session: Session, run: _Run, key: str) -> int | None:
    if key.startswith("Patient/"):
        return _entity(session, run, FHIR, "Patient", key.removeprefix("Patient/"))  # i18n: not shown
    conditional = fhir_source.parse_conditional(key)
    if conditional:
        return _entity(session, run, conditional[1], "Patient", conditional[2])  # i18n: not shown
    return None


def _one(session: Session, run: _Run, seq: int, location: str, resource: dict, digest: str, patient_id: int | None,
         *, careful: bool) -> LineOutcome:
    """Import one resource; count it and report it if it did not go in.

    ``careful``: in a savepoint of its own, so that a failure undoes what it wrote; otherwise a
    failure raises ``_Redo`` for the patient's savepoint to be rolled back and written carefully.
    """
    rtype, rid = resource["resourceType"], resource["id"]
    record_name = f"{location} {rtype}/{rid}"
    key = (rtype, str(rid)[:200])
    source = run.sources[key] if key in run.sources else session.get(SourceRecord, (FHIR, rtype, key[1]))
    if source is not None and source.content_hash == digest:
        run.report.count(LineOutcome.UNCHANGED)
        return LineOutcome.UNCHANGED
    run.notes.clear()
    mark, pending = len(run.journal), len(run.new_sources)
    outcome = LineOutcome.CREATED if source is None else LineOutcome.UPDATED
    try:
        if careful:
            with session.begin_nested():
                source = _write_one(session, run, resource, digest, patient_id, source)
        else:
            source = _write_one(session, run, resource, digest, patient_id, source)
    except _Skipped as skipped:
        label = str(skipped)
        run.report.skipped_by_type[label] = run.report.skipped_by_type.get(label, 0) + 1
        run.report.count(LineOutcome.SKIPPED)
        return LineOutcome.SKIPPED
    except (_Failed, ValidationError) as error:
        if not careful:
            raise _Redo from error
        run.forget_since(mark)
        del run.new_sources[pending:]
        _line(run, seq, record_name, LineOutcome.FAILED, str(getattr(error, "message", error)))
        return LineOutcome.FAILED
    run.remember(run.sources, key, source)  # found again if the source holds it twice, before it is written
    if rtype in _SHARED_TYPES:
        run.remember(run.ids, (FHIR, rtype, key[1]), source.entity_id)
    else:
        run.remember(run.patient_ids, (FHIR, rtype, key[1]), source)
    run.report.count(outcome)
    if run.notes:
        run.report.lines.append(LineResult(seq, outcome, record_name[:200], " ".join(run.notes)[:500]))
    return outcome


def _write_one(session: Session, run: _Run, resource: dict, digest: str, patient_id: int | None,
               source: SourceRecord | _NewSource | None) -> SourceRecord | _NewSource:
    rtype, rid = resource["resourceType"], str(resource["id"])[:200]
    entity_type, entity = _MAPPERS[rtype](session, run, resource, patient_id, source.entity_id if source else None)
    if source is None:
        source = _NewSource(FHIR, rtype, rid, entity_type, entity, digest)
        run.new_sources.append(source)
    elif isinstance(source, _NewSource):  # the same resource twice in one patient
        source.entity_type, source.entity, source.content_hash = entity_type, entity, digest
    else:
        if not isinstance(entity, int) and entity.id is None:
            session.flush()
        source.entity_type, source.entity_id = entity_type, entity if isinstance(entity, int) else entity.id
        source.content_hash, source.job_id, source.imported_at = digest, run.job_id, utcnow()
        session.add(source)
    return source


def _line(run: _Run, seq: int, record: str, outcome: LineOutcome, message: str) -> None:
    if outcome is not LineOutcome.CREATED:
        run.report.count(outcome)
    run.report.lines.append(LineResult(seq, outcome, record[:200], message[:500]))


# --- lookups -----------------------------------------------------------------------------------


def _cache_of(run: _Run, system: str, source_type: str) -> dict:
    """A patient's own records are cached for the patient; practitioners, medications and codes for the run."""
    return run.patient_ids if source_type == "Patient" or (system == FHIR and source_type not in _SHARED_TYPES) \
        else run.ids


def _entity(session: Session, run: _Run, system: str, source_type: str, source_id: str) -> int | None:
    """The id of what ``SourceRecord`` (system, type, id) names, if any."""
    key = (system[:200], source_type, str(source_id)[:200])
    cache = _cache_of(run, system, source_type)
    if key not in cache:
        found = session.get(SourceRecord, key)
        run.remember(cache, key, found.entity_id if found else None)
    found = cache[key]
    if isinstance(found, SourceRecord | _NewSource):
        if found.entity_id is None:
            session.flush()
        return found.entity_id
    return found


def _keep_source(session: Session, run: _Run, system: str, source_type: str, source_id: str, entity_type: str,
                 entity_id: int) -> None:
    """Remember another system's code or identifier for one of our records, unless it names another already."""
    if not (system and source_id) or _entity(session, run, system, source_type, source_id) is not None:
        return
    run.new_sources.append(_NewSource(system[:200], source_type, source_id[:200], entity_type, entity_id))
    run.remember(_cache_of(run, system, source_type), (system[:200], source_type, source_id[:200]), entity_id)


def _reference(holder: object) -> tuple[str, str]:
    """(reference, display) of a FHIR Reference; ("", "") for anything else."""
    if not isinstance(holder, dict):
        return "", ""
    return str(holder.get("reference") or ""), str(holder.get("display") or "")


def _encounter_of(session: Session, run: _Run, resource: dict, field_name: str = "encounter") -> Encounter | None:
    reference, __ = _reference(resource.get(field_name))
    if not reference:
        return None
    key = run.staging.resolve(reference)
    encounter_id = _entity(session, run, FHIR, "Encounter", key.removeprefix("Encounter/")) if key.startswith("Encounter/") else None  # i18n: not shown
    if encounter_id is None:
        raise _Failed(_("its encounter ({reference}) is neither in the source nor imported before.").format(
            reference=reference))
    encounter = run.encounters.get(encounter_id) or session.get(Encounter, encounter_id)
    run.remember(run.encounters, encounter_id, encounter)
    return encounter


def _clinician(session: Session, run: _Run, holder: object) -> int:
    """The HMS user a practitioner reference stands for (see the module's docstring)."""
    reference, display = _reference(holder)
    if reference:
        key = run.staging.resolve(reference)
        if key.startswith("Practitioner/"):
            found = _entity(session, run, FHIR, "Practitioner", key.removeprefix("Practitioner/"))  # i18n: not shown
            if found is not None:
                return found
        conditional = fhir_source.parse_conditional(fhir_source.reference_key(reference))
        if conditional and conditional[0] == "Practitioner":  # i18n: not shown
            __, system, value = conditional
            found = _entity(session, run, system, "Practitioner", value)  # i18n: not shown
            if found is None:
                found = _outside_clinician(session, run, display or f"Outside clinician {value}")  # the hospital's data  # i18n: not shown
                _keep_source(session, run, system, "Practitioner", value, "user", found)  # i18n: not shown
            return found
        if key.startswith(("Organization/", "Location/")) or reference.startswith(("Organization", "Location")):
            return _unnamed_clinician(session, run)
        run.notes.append(_("The practitioner {reference} was not found; recorded under '{name}'.").format(
            reference=reference, name=UNNAMED_CLINICIAN))
    return _unnamed_clinician(session, run)


def _unnamed_clinician(session: Session, run: _Run) -> int:
    found = _entity(session, run, HMS_IMPORT, "Practitioner", "unnamed")  # i18n: not shown
    if found is None:
        found = _outside_clinician(session, run, UNNAMED_CLINICIAN)
        _keep_source(session, run, HMS_IMPORT, "Practitioner", "unnamed", "user", found)  # i18n: not shown
    return found


def _outside_department(session: Session, run: _Run) -> int:
    key = ("", "Department", OUTSIDE_DEPARTMENT)  # i18n: not shown
    found = run.ids.get(key)
    if found is None:
        found = session.execute(sa.select(Department.id).where(Department.name == OUTSIDE_DEPARTMENT)).scalar_one_or_none()
    if found is None:
        department = Department(name=OUTSIDE_DEPARTMENT, is_active=False)
        session.add(department)
        session.flush()
        found = department.id
    run.remember(run.ids, key, found)
    return found


def _department_of(session: Session, run: _Run, doctor_id: int) -> int:
    key = ("", "DoctorProfile", str(doctor_id))
    if key not in run.ids:
        run.remember(run.ids, key, session.get(DoctorProfile, doctor_id).department_id)
    return run.ids[key]


def _placeholder_email(kind: str) -> str:
    """An address that can never receive mail (RFC 2606 keeps ``.invalid``), unique by its random part."""
    return f"{kind}-{secrets.token_hex(10)}@{PLACEHOLDER_DOMAIN}"


def _outside_clinician(session: Session, run: _Run, name: str) -> int:
    """An inactive doctor standing for a clinician of another system: listed, never logs in."""
    email = _placeholder_email("clinician")
    user = User(email=email, email_skeleton=emails.skeleton(email), full_name=_fit(name, 120), role=Role.DOCTOR,
                is_active=False, password_hash="")
    session.add(user)
    session.flush()
    department_id = _outside_department(session, run)
    session.add(DoctorProfile(user_id=user.id, department_id=department_id,
                              specialty="Outside clinician (imported)", consultation_fee_cents=0))  # the hospital's data  # i18n: not shown
    run.remember(run.ids, ("", "DoctorProfile", str(user.id)), department_id)
    return user.id


# --- small readers of FHIR values ---------------------------------------------------------------


def _fit(text: object, limit: int) -> str:
    """Text as a one-line column holds it: control characters out, cut to ``limit``."""
    cleaned = re.sub(r"[\x00-\x1f\x7f]+", " ", str(text or "")).strip()
    return cleaned[:limit]


def _note(text: object, limit: int = 10_000) -> str:
    return re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", "", str(text or "")).strip()[:limit]


def _concept_text(concept: object) -> str:
    if not isinstance(concept, dict):
        return ""
    if concept.get("text"):
        return str(concept["text"])
    for coding in concept.get("coding") or []:
        if isinstance(coding, dict) and (coding.get("display") or coding.get("code")):
            return str(coding.get("display") or coding.get("code"))
    return ""


def _codings(concept: object) -> list[tuple[str, str, str]]:
    if not isinstance(concept, dict):
        return []
    return [(str(c.get("system") or ""), str(c.get("code") or ""), str(c.get("display") or ""))
            for c in concept.get("coding") or [] if isinstance(c, dict)]


def _code_in(concept: object, system_part: str) -> str:
    for system, code, __ in _codings(concept):
        if system_part in system and code:
            return code
    return ""


def _status_code(concept: object) -> str:
    codes = [code for __, code, __ in _codings(concept)]
    return codes[0] if codes else ""


def _instant(value: object, what: str, *, required: bool = True) -> datetime | None:
    """A FHIR date or dateTime as UTC; a date alone is taken as noon UTC (its day anywhere)."""
    text = str(value or "").strip()
    if not text:
        if required:
            raise _Failed(_("has no {what}.").format(what=what))
        return None
    try:
        if len(text) <= 10:
            parts = [int(p) for p in text.split("-")] + [1, 1]
            return datetime(parts[0], parts[1], parts[2], 12, tzinfo=UTC)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise _Failed(_("has a {what} that is not a FHIR date and time ({value}).").format(
            what=what, value=_fit(text, 40))) from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def _day(value: object) -> date | None:
    text = str(value or "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text[:10]) if len(text) >= 10 else None
    except ValueError:
        raise _Failed(_("has a birth date that is not a date ({value}).").format(value=_fit(text, 40))) from None


def _when(resource: dict, *names: str) -> datetime | None:
    for name in names:
        value = resource.get(name)
        if isinstance(value, dict):
            value = value.get("start")
        if value:
            return _instant(value, name)
    return None


def _human_name(names: object) -> str:
    if not isinstance(names, list) or not names:
        return ""
    chosen = next((n for n in names if isinstance(n, dict) and n.get("use") == "official"), names[0])
    if not isinstance(chosen, dict):
        return ""
    if chosen.get("given") or chosen.get("family"):
        parts = [*(chosen.get("prefix") or []), *(chosen.get("given") or []), chosen.get("family") or ""]
        return " ".join(str(p) for p in parts if p)
    return str(chosen.get("text") or "")


# --- the mappers: (session, run, resource, patient id, existing entity id) -> (entity type, id or new row) --


def _map_practitioner(session: Session, run: _Run, res: dict, _patient: int | None, existing: int | None) -> tuple[str, int]:
    name = _fit(_human_name(res.get("name")), 120) or "Outside clinician"  # the hospital's data  # i18n: not shown
    identifiers = [(str(i.get("system")), str(i.get("value"))) for i in res.get("identifier") or []
                   if isinstance(i, dict) and i.get("system") and i.get("value")]
    user_id = existing if existing and session.get(User, existing) else None
    if user_id is None:
        user_id = next((found for system, value in identifiers
                        if (found := _entity(session, run, system, "Practitioner", value)) is not None), None)  # i18n: not shown
    if user_id is None:
        user_id = _outside_clinician(session, run, name)
    user = session.get(User, user_id)
    if not user.is_active and emails.is_placeholder(user.email):
        user.full_name = name  # an outside clinician follows the source; an HMS doctor keeps their own name
        session.add(user)
    for system, value in identifiers:
        _keep_source(session, run, system, "Practitioner", value, "user", user_id)  # i18n: not shown
    return "user", user_id


def _map_medication(session: Session, run: _Run, res: dict, _patient: int | None, existing: int | None) -> tuple[str, int]:
    return "medicine", _medicine(session, run, res.get("code"))


def _map_patient(session: Session, run: _Run, res: dict, _patient: int | None, existing: int | None) -> tuple[str, int]:
    name = _fit(_human_name(res.get("name")), 120) or "Name not recorded"  # the hospital's data  # i18n: not shown
    identifiers = [i for i in res.get("identifier") or [] if isinstance(i, dict) and i.get("value")]
    telecom = [t for t in res.get("telecom") or [] if isinstance(t, dict)]
    phone = next((_fit(t.get("value"), 40) for t in telecom if t.get("system") == "phone"), "")
    address = ""
    if isinstance(res.get("address"), list) and res["address"] and isinstance(res["address"][0], dict):
        a = res["address"][0]
        address = a.get("text") or ", ".join(str(x) for x in [*(a.get("line") or []), a.get("city"), a.get("state"),
                                                               a.get("postalCode"), a.get("country")] if x)
    values = {"birth_date": _day(res.get("birthDate")), "sex": _SEX.get(str(res.get("gender")), Sex.UNKNOWN),
              "phone": phone, "address": _fit(address, 300)}
    user_id = existing if existing and session.get(User, existing) else None
    if user_id is None:
        user_id = next((found for i in identifiers if i.get("system")
                        and (found := _entity(session, run, str(i["system"]), "Patient", str(i["value"]))) is not None), None)  # i18n: not shown
    if user_id is not None:
        user = session.get(User, user_id)
        profile = session.get(PatientProfile, user_id)
        if profile is None:
            raise _Failed(_("names an HMS record that is not a patient."))
        user.full_name = name
        for column, value in values.items():
            setattr(profile, column, value)
        session.add_all([user, profile])
    else:
        email = _placeholder_email("patient")
        user = User(email=email, email_skeleton=emails.skeleton(email), full_name=name, role=Role.PATIENT,
                    password_hash="")
        session.add(user)
        session.flush()
        user_id = user.id
        session.add(PatientProfile(user_id=user_id, mrn=_mrn(session, identifiers), **values))
        session.flush()
    for identifier in identifiers:
        _keep_source(session, run, str(identifier.get("system") or ""), "Patient", str(identifier["value"]),  # i18n: not shown
                     "patient", user_id)
    return "patient", user_id


def _mrn(session: Session, identifiers: list[dict]) -> str:
    for identifier in identifiers:
        if MR_TYPE in [code for __, code, __ in _codings(identifier.get("type"))]:
            value = _fit(identifier.get("value"), 100)
            if value and len(value) <= 20 and not session.execute(
                    sa.select(PatientProfile.user_id).where(PatientProfile.mrn == value)).first():
                return value
    return counters.next_mrn(session)


def _map_encounter(session: Session, run: _Run, res: dict, patient_id: int, existing: int | None) -> tuple[str, int]:
    period = res.get("period") if isinstance(res.get("period"), dict) else {}
    start = _instant(period.get("start"), _("period start"))
    end = _instant(period.get("end"), _("period end"), required=False) or start
    participant = next((p.get("individual") for p in res.get("participant") or [] if isinstance(p, dict)), None)
    doctor_id = _clinician(session, run, participant)
    department_id = _department_of(session, run, doctor_id)
    kind = _concept_text((res.get("type") or [None])[0])
    reason = "; ".join(t for t in (_concept_text(c) for c in res.get("reasonCode") or []) if t)
    encounter = session.get(Encounter, existing) if existing else None
    appointment = session.get(Appointment, encounter.appointment_id) if encounter else Appointment(
        patient_id=patient_id, doctor_id=doctor_id, department_id=department_id, starts_at=start,
        ends_at=start + timedelta(minutes=1))
    appointment.doctor_id, appointment.department_id = doctor_id, department_id
    appointment.starts_at, appointment.ends_at = start, max(end, start + timedelta(minutes=1))
    appointment.status = AppointmentStatus.COMPLETED
    appointment.reason = _fit(kind or reason, 500)
    session.add(appointment)
    session.flush()
    if encounter is None:
        encounter = Encounter(appointment_id=appointment.id, patient_id=patient_id, doctor_id=doctor_id)
    encounter.doctor_id, encounter.status = doctor_id, EncounterStatus.COMPLETED
    encounter.started_at, encounter.completed_at = start, end
    encounter.diagnosis = _fit(reason, 300)
    session.add(encounter)
    session.flush()
    run.remember(run.encounters, encounter.id, encounter)
    return "encounter", encounter.id


def _recorder(session: Session, run: _Run, res: dict, encounter: Encounter | None, *fields: str) -> int:
    for name in fields:
        holder = res.get(name)
        if isinstance(holder, list):
            holder = next((h.get("actor", h) for h in holder if isinstance(h, dict)), None)
        if holder:
            return _clinician(session, run, holder)
    return encounter.doctor_id if encounter else _unnamed_clinician(session, run)


def _map_condition(session: Session, run: _Run, res: dict, patient_id: int, existing: int | None) -> tuple[str, int]:
    encounter = _encounter_of(session, run, res)
    description = _fit(_concept_text(res.get("code")), 300)
    if not description:
        raise _Failed(_("has no code or text saying what the condition is."))
    icd = _code_in(res.get("code"), "icd-10")
    found = icd10.lookup_icd10(icd) if icd else None
    resolved = _status_code(res.get("clinicalStatus")) in _RESOLVED
    problem = session.get(Problem, existing) if existing else None
    problem = problem or Problem(patient_id=patient_id, description=description, recorded_by=0)
    problem.description, problem.icd10_code = description, found.code if found else ""
    problem.recorded_by = _recorder(session, run, res, encounter, "recorder", "asserter")
    problem.recorded_at = (_when(res, "recordedDate", "onsetDateTime", "onsetPeriod")
                           or (encounter.started_at if encounter else utcnow()))
    problem.status = ClinicalStatus.RESOLVED if resolved else ClinicalStatus.ACTIVE
    problem.resolved_at = (_when(res, "abatementDateTime", "abatementPeriod") or problem.recorded_at) if resolved else None
    session.add(problem)
    return "problem", problem  # its id comes with the patient's flush


def _map_allergy(session: Session, run: _Run, res: dict, patient_id: int, existing: int | None) -> tuple[str, int]:
    encounter = _encounter_of(session, run, res)
    substance = _fit(_concept_text(res.get("code")), 120)
    if not substance:
        raise _Failed(_("has no code or text naming the substance."))
    reactions = [r for r in res.get("reaction") or [] if isinstance(r, dict)]
    reaction = "; ".join(t for r in reactions for t in (_concept_text(m) for m in r.get("manifestation") or []) if t)
    severity = next((r["severity"] for r in reactions if r.get("severity") in ("mild", "moderate", "severe")),
                     "severe" if res.get("criticality") == "high" else "moderate")
    allergy = session.get(Allergy, existing) if existing else None
    allergy = allergy or Allergy(patient_id=patient_id, substance=substance, recorded_by=0)
    allergy.substance, allergy.reaction, allergy.severity = substance, _fit(reaction, 500), severity
    allergy.recorded_by = _recorder(session, run, res, encounter, "recorder", "asserter")
    allergy.recorded_at = _when(res, "recordedDate", "onsetDateTime") or (encounter.started_at if encounter else utcnow())
    resolved = _status_code(res.get("clinicalStatus")) in _RESOLVED
    allergy.status = ClinicalStatus.RESOLVED if resolved else ClinicalStatus.ACTIVE
    allergy.resolved_at = allergy.recorded_at if resolved else None
    session.add(allergy)
    return "allergy", allergy  # its id comes with the patient's flush


def _map_observation(session: Session, run: _Run, res: dict, patient_id: int, existing: int | None) -> tuple[str, int]:
    categories = [code for concept in res.get("category") or [] for __, code, __ in _codings(concept)]
    if "vital-signs" in categories:
        return _vital_sign(session, run, res)
    if "laboratory" in categories:
        return _lab_result(session, run, res, patient_id, existing)
    raise _Skipped(f"Observation ({categories[0] if categories else 'no category'})")  # i18n: not shown


def _quantity(holder: object, what: str) -> tuple[float, str]:
    if not isinstance(holder, dict) or not isinstance(holder.get("value"), int | float) or isinstance(holder.get("value"), bool):
        raise _Failed(_("has no number for the {what}.").format(what=what))
    return float(holder["value"]), str(holder.get("code") or holder.get("unit") or "")


def _vital_value(column: str, value: float, unit: str) -> float | int:
    unit = unit.lower()
    if column == "temperature_c" and unit in ("[degf]", "°f", "degf", "f"):
        value = (value - 32) * 5 / 9
    elif column == "weight_kg" and unit in ("g",):
        value = value / 1000
    elif column == "weight_kg" and unit in ("[lb_av]", "lb", "lbs"):
        value = value * 0.45359237
    elif column == "height_cm" and unit in ("m",):
        value = value * 100
    elif column == "height_cm" and unit in ("[in_i]", "in"):
        value = value * 2.54
    low, high, label = VITAL_RANGES[column]
    if not low <= value <= high:
        raise _Failed(_("has a {what} of {value}, outside what HMS accepts ({low} to {high}).").format(
            what=_(label), value=f"{value:g}", low=f"{low:g}", high=f"{high:g}"))
    return round(value) if column in ("bp_systolic", "bp_diastolic", "pulse", "spo2") else round(value, 1)


def _vital_sign(session: Session, run: _Run, res: dict) -> tuple[str, int]:
    codes = {code for system, code, __ in _codings(res.get("code")) if "loinc" in system}
    values: dict[str, float | int] = {}
    if codes & _BP_PANELS:
        for component in res.get("component") or []:
            for __, code, __ in _codings(component.get("code") if isinstance(component, dict) else None):
                if code in ("8480-6", "8462-4"):
                    value, unit = _quantity(component.get("valueQuantity"), _("blood pressure"))
                    values[_VITALS[code]] = _vital_value(_VITALS[code], value, unit)
        if set(values) != {"bp_systolic", "bp_diastolic"}:
            raise _Failed(_("is a blood pressure without both its systolic and diastolic values."))
    else:
        column = next((_VITALS[c] for c in codes if c in _VITALS), None)
        if column is None:
            raise _Skipped("Observation (vital signs HMS does not keep)")  # i18n: not shown
        value, unit = _quantity(res.get("valueQuantity"), _(VITAL_RANGES[column][2]))
        values[column] = _vital_value(column, value, unit)
    encounter = _encounter_of(session, run, res)
    if encounter is None:
        raise _Failed(_("is a vital sign without the encounter it was taken in; HMS keeps vitals on encounters."))
    for column, value in values.items():
        setattr(encounter, column, value)
    session.add(encounter)  # written with the next flush
    return "encounter", encounter.id


def _lab_test(session: Session, run: _Run, concept: object, unit: str, numeric: bool) -> int:
    loinc = _code_in(concept, "loinc")
    name = _fit(_concept_text(concept), 120)
    if loinc and (found := _entity(session, run, LOINC, "LabTest", loinc)) is not None:
        return found
    found = session.execute(sa.select(LabTest.id).where(
        sa.or_(LabTest.code == (loinc or "\x00"), sa.func.lower(LabTest.name) == name.lower())).limit(1)).scalar_one_or_none()
    if found is None:
        if not name:
            raise _Failed(_("has no code or text naming the test."))
        code = _fit(loinc, 20) or f"IMP-{hashlib.sha256(name.encode()).hexdigest()[:10]}"
        if session.execute(sa.select(LabTest.id).where(LabTest.code == code)).first():
            code = f"IMP-{hashlib.sha256((loinc + name).encode()).hexdigest()[:10]}"
        test = LabTest(code=code, name=name, specimen="Not recorded (imported)", unit=_fit(unit, 30), numeric=numeric,  # the hospital's data  # i18n: not shown
                       is_active=False)
        session.add(test)
        session.flush()
        found = test.id
    if loinc:
        _keep_source(session, run, LOINC, "LabTest", loinc, "lab_test", found)
    return found


def _lab_result(session: Session, run: _Run, res: dict, patient_id: int, existing: int | None) -> tuple[str, int]:
    numeric_value: float | None = None
    text_value, unit = "", ""
    if isinstance(res.get("valueQuantity"), dict):
        numeric_value, unit = _quantity(res["valueQuantity"], _("result"))
        unit = str(res["valueQuantity"].get("unit") or unit)
    elif res.get("valueString") or res.get("valueCodeableConcept"):
        text_value = _note(res.get("valueString") or _concept_text(res.get("valueCodeableConcept")), 2000)
    else:
        raise _Skipped("Observation (laboratory panel without a value of its own)")  # i18n: not shown
    encounter = _encounter_of(session, run, res)
    test_id = _lab_test(session, run, res.get("code"), unit, numeric_value is not None)
    doctor_id = _recorder(session, run, res, encounter, "performer")
    at = _when(res, "effectiveDateTime", "effectivePeriod", "issued") or (encounter.started_at if encounter else None)
    if at is None:
        raise _Failed(_("has no effective time."))
    resulted = _instant(res.get("issued"), _("issued time"), required=False) or at
    order = session.get(LabOrder, existing) if existing else None
    order = order or LabOrder(patient_id=patient_id, doctor_id=doctor_id, test_id=test_id)
    order.doctor_id, order.test_id, order.encounter_id = doctor_id, test_id, encounter.id if encounter else None
    order.status, order.ordered_at, order.updated_at, order.collected_at = LabOrderStatus.COMPLETED, at, resulted, at
    session.add(order)
    session.flush()
    result = session.execute(sa.select(LabResult).where(LabResult.order_id == order.id)).scalar_one_or_none() \
        if existing else None
    result = result or LabResult(order_id=order.id, verified_by=doctor_id)
    reference = next((r for r in res.get("referenceRange") or [] if isinstance(r, dict)), {})
    interpretation = next((code for concept in res.get("interpretation") or [] for __, code, __ in _codings(concept)), "")
    result.value_numeric, result.value_text, result.unit = numeric_value, text_value, _fit(unit, 30)
    result.range_low = (reference.get("low") or {}).get("value") if isinstance(reference.get("low"), dict) else None
    result.range_high = (reference.get("high") or {}).get("value") if isinstance(reference.get("high"), dict) else None
    result.flag = _INTERPRETATION_FLAG.get(interpretation, "")
    result.comment = _note(" ".join(n.get("text", "") for n in res.get("note") or [] if isinstance(n, dict)), 2000)
    result.verified_by, result.resulted_at, result.released_at = doctor_id, resulted, resulted
    result.turnaround_seconds = max(0, int((resulted - at).total_seconds()))
    session.add(result)
    return "lab_order", order.id


def _medicine(session: Session, run: _Run, concept: object) -> int:
    rxnorm = _code_in(concept, "rxnorm")
    name = _fit(_concept_text(concept), 120)
    if rxnorm and (found := _entity(session, run, RXNORM, "Medicine", rxnorm)) is not None:  # i18n: not shown
        return found
    if not name:
        raise _Failed(_("has no code or text naming the medicine."))
    found = session.execute(sa.select(Medicine.id).where(sa.func.lower(Medicine.name) == name.lower())
                            .order_by(Medicine.is_active.desc(), Medicine.id).limit(1)).scalar_one_or_none()
    if found is None:
        medicine = Medicine(name=name, form="", strength="", is_active=False, drug_class="Imported")  # the hospital's data  # i18n: not shown
        session.add(medicine)
        session.flush()
        found = medicine.id
    if rxnorm:
        _keep_source(session, run, RXNORM, "Medicine", rxnorm, "medicine", found)  # i18n: not shown
    return found


def _dosage(res: dict) -> tuple[str, str, str, str]:
    """(dose, route, frequency, instructions) of a MedicationRequest's first dosage."""
    dosage = next((d for d in res.get("dosageInstruction") or [] if isinstance(d, dict)), {})
    dose = ""
    for rate in dosage.get("doseAndRate") or []:
        quantity = rate.get("doseQuantity") if isinstance(rate, dict) else None
        if isinstance(quantity, dict) and quantity.get("value") is not None:
            dose = f"{quantity['value']:g} {quantity.get('unit') or ''}".strip()
    repeat = (dosage.get("timing") or {}).get("repeat") if isinstance(dosage.get("timing"), dict) else None
    frequency = ""
    if isinstance(repeat, dict) and repeat.get("frequency") and repeat.get("periodUnit"):
        period = repeat.get("period") or 1
        frequency = f"{repeat['frequency']} times per {period:g} {repeat['periodUnit']}"  # the hospital's data  # i18n: not shown
    if dosage.get("asNeededBoolean"):
        frequency = f"{frequency} as needed".strip()
    # What is written on the prescription (the hospital's data, as the source's own text beside it).
    directed = "As directed"  # i18n: not shown
    return (_fit(dose or dosage.get("text") or directed, 60), _fit(_concept_text(dosage.get("route")), 30),
            _fit(frequency or directed, 40), _note(dosage.get("patientInstruction") or dosage.get("text"), 2000))


def _map_medication_request(session: Session, run: _Run, res: dict, patient_id: int,
                            existing: int | None) -> tuple[str, int]:
    encounter = _encounter_of(session, run, res)
    if res.get("medicationReference"):
        reference, display = _reference(res["medicationReference"])
        key = run.staging.resolve(reference)
        medicine_id = _entity(session, run, FHIR, "Medication", key.removeprefix("Medication/")) if key else None  # i18n: not shown
        if medicine_id is None:
            if not display:
                raise _Failed(_("names a medication ({reference}) that is neither in the source nor imported "
                                "before.").format(reference=reference))
            medicine_id = _medicine(session, run, {"text": display})
    else:
        medicine_id = _medicine(session, run, res.get("medicationCodeableConcept"))
    doctor_id = _recorder(session, run, res, encounter, "requester")
    authored = _when(res, "authoredOn") or (encounter.started_at if encounter else None)
    if authored is None:
        raise _Failed(_("has no date it was written (authoredOn)."))
    dispense = res.get("dispenseRequest") if isinstance(res.get("dispenseRequest"), dict) else {}
    duration = dispense.get("expectedSupplyDuration") if isinstance(dispense.get("expectedSupplyDuration"), dict) else {}
    quantity = dispense.get("quantity") if isinstance(dispense.get("quantity"), dict) else {}
    days = int(duration.get("value") or 0) if isinstance(duration.get("value"), int | float) else 0
    units = int(quantity.get("value") or 0) if isinstance(quantity.get("value"), int | float) else 0
    dose, route, frequency, instructions = _dosage(res)
    prescription = session.get(Prescription, existing) if existing else None
    prescription = prescription or Prescription(patient_id=patient_id, doctor_id=doctor_id)
    prescription.doctor_id, prescription.encounter_id = doctor_id, encounter.id if encounter else None
    prescription.status, prescription.created_at, prescription.updated_at = PrescriptionStatus.DISPENSED, authored, authored
    session.add(prescription)
    session.flush()
    item = session.execute(sa.select(PrescriptionItem).where(PrescriptionItem.prescription_id == prescription.id)
                           ).scalars().first() if existing else None
    item = item or PrescriptionItem(prescription_id=prescription.id, medicine_id=medicine_id, dose=dose, route=route,
                                    frequency=frequency, days=days, quantity=units)
    item.medicine_id, item.dose, item.route, item.frequency = medicine_id, dose, route, frequency
    item.days, item.quantity, item.dispensed_quantity, item.instructions = days, units, units, instructions
    session.add(item)
    return "prescription", prescription.id


def _map_immunization(session: Session, run: _Run, res: dict, patient_id: int, existing: int | None) -> tuple[str, int]:
    encounter = _encounter_of(session, run, res)
    vaccine = _fit(_concept_text(res.get("vaccineCode")), 300)
    if not vaccine:
        raise _Failed(_("has no code or text naming the vaccine."))
    system, code, __ = next(iter(_codings(res.get("vaccineCode"))), ("", "", ""))
    given = _when(res, "occurrenceDateTime", "recorded") or (encounter.started_at if encounter else None)
    if given is None:
        raise _Failed(_("has no date it was given (occurrenceDateTime)."))
    row = session.get(Immunization, existing) if existing else None
    row = row or Immunization(patient_id=patient_id, vaccine=vaccine, given_at=given, recorded_by=0)
    row.encounter_id, row.vaccine, row.code_system, row.code = encounter.id if encounter else None, vaccine, system[:200], code[:40]
    row.status, row.given_at = _fit(res.get("status") or "completed", 20), given
    row.recorded_by = _recorder(session, run, res, encounter, "performer")
    session.add(row)
    return "immunization", row  # its id comes with the patient's flush


def _map_procedure(session: Session, run: _Run, res: dict, patient_id: int, existing: int | None) -> tuple[str, int]:
    encounter = _encounter_of(session, run, res)
    description = _fit(_concept_text(res.get("code")), 300)
    if not description:
        raise _Failed(_("has no code or text saying what was done."))
    system, code, __ = next(iter(_codings(res.get("code"))), ("", "", ""))
    performed = _when(res, "performedDateTime", "performedPeriod") or (encounter.started_at if encounter else None)
    if performed is None:
        raise _Failed(_("has no date it was performed."))
    period = res.get("performedPeriod") if isinstance(res.get("performedPeriod"), dict) else {}
    row = session.get(Procedure, existing) if existing else None
    row = row or Procedure(patient_id=patient_id, description=description, performed_at=performed, recorded_by=0)
    row.encounter_id, row.description, row.code_system, row.code = (encounter.id if encounter else None, description,
                                                                    system[:200], code[:40])
    row.status, row.performed_at = _fit(res.get("status") or "completed", 20), performed
    row.ended_at = _instant(period.get("end"), "end", required=False)
    row.recorded_by = _recorder(session, run, res, encounter, "performer", "recorder")
    session.add(row)
    return "procedure", row  # its id comes with the patient's flush


def _attachment(attachment: object) -> tuple[bytes, str, str] | None:
    """(data, content type, extension) of an attachment HMS can keep; None for another kind."""
    if not isinstance(attachment, dict) or not attachment.get("data"):
        return None
    try:
        data = base64.b64decode(str(attachment["data"]), validate=False)
    except ValueError:
        raise _Failed(_("has an attachment whose data is not base64.")) from None
    kind = str(attachment.get("contentType") or "").split(";")[0].strip().lower()
    if kind.startswith("text/"):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise _Failed(_("has a text attachment that is not UTF-8.")) from None
        if kind == "text/html":
            text = html.unescape(re.sub(r"<[^>]+>", " ", text))
        return _note(text, 1_000_000).encode(), "text/plain", "txt"
    for extension in ("pdf", "png", "jpg"):  # the upload's own rule: recognised by content, 10 MB at most
        try:
            checked = files.check_upload(f"attachment.{extension}", data)
        except ValidationError:
            continue
        return checked.data, checked.content_type, extension
    return None


def _document(session: Session, run: _Run, res: dict, patient_id: int, existing: int | None, title: str,
              content: tuple[bytes, str, str], when: datetime, author: int) -> tuple[str, int]:
    data, content_type, extension = content
    stem = re.sub(r"[^A-Za-z0-9]+", "-", title).strip("-")[:60] or "document"
    document = session.get(Document, existing) if existing else None
    storage_name = files.store_encrypted(data)
    run.stored.append(storage_name)
    if document is not None:
        run.superseded.append(document.storage_name)
    document = document or Document(patient_id=patient_id, uploaded_by=author, title=title, file_name="",
                                    content_type=content_type, size_bytes=0, storage_name=storage_name)
    document.uploaded_by, document.title, document.file_name = author, title, f"{stem}.{extension}"
    document.content_type, document.size_bytes, document.storage_name = content_type, len(data), storage_name
    document.created_at = when
    session.add(document)
    return "document", document  # its id comes with the patient's flush


def _map_diagnostic_report(session: Session, run: _Run, res: dict, patient_id: int,
                           existing: int | None) -> tuple[str, int]:
    content = next((found for form in res.get("presentedForm") or [] if (found := _attachment(form))), None)
    if content is None and res.get("conclusion"):
        content = (_note(res["conclusion"], 1_000_000).encode(), "text/plain", "txt")
    if content is None:
        raise _Skipped("DiagnosticReport (no text: its results come as Observations)")  # i18n: not shown
    encounter = _encounter_of(session, run, res)
    title = _fit(_concept_text(res.get("code")), 120) or "Diagnostic report"  # the hospital's data  # i18n: not shown
    when = _when(res, "effectiveDateTime", "effectivePeriod", "issued") or (encounter.started_at if encounter else utcnow())
    author = _recorder(session, run, res, encounter, "performer", "resultsInterpreter")
    return _document(session, run, res, patient_id, existing, title, content, when, author)


def _map_document_reference(session: Session, run: _Run, res: dict, patient_id: int,
                            existing: int | None) -> tuple[str, int]:
    content = next((found for c in res.get("content") or [] if isinstance(c, dict)
                    and (found := _attachment(c.get("attachment")))), None)
    if content is None:
        raise _Skipped("DocumentReference (no text, PDF or image in it)")  # i18n: not shown
    context = res.get("context") if isinstance(res.get("context"), dict) else {}
    encounters = context.get("encounter") if isinstance(context.get("encounter"), list) else []
    encounter = _encounter_of(session, run, {"encounter": encounters[0]}) if encounters else None
    title = _fit(res.get("description") or _concept_text(res.get("type")), 120) or "Clinical document"  # the hospital's data  # i18n: not shown
    when = _when(res, "date") or _when(context, "period") or (encounter.started_at if encounter else utcnow())
    author = _recorder(session, run, res, encounter, "author")
    return _document(session, run, res, patient_id, existing, title, content, when, author)


_MAPPERS: dict[str, Callable[..., tuple[str, object]]] = {
    "Practitioner": _map_practitioner,
    "Medication": _map_medication,
    "Patient": _map_patient,
    "Encounter": _map_encounter,
    "Condition": _map_condition,
    "AllergyIntolerance": _map_allergy,
    "Observation": _map_observation,
    "MedicationRequest": _map_medication_request,
    "Immunization": _map_immunization,
    "Procedure": _map_procedure,
    "DiagnosticReport": _map_diagnostic_report,
    "DocumentReference": _map_document_reference,
}

"""Reading a FHIR source for import: one Bundle, an NDJSON file, or a folder of them, streamed.

Pass 1 of the import (``stage``) reads the whole source once, resource by resource, never
holding more than one resource in memory: it checks every file is whole, UTF-8, JSON of FHIR
R4, and that every resource has a type and an id, and it stages each resource HMS imports
into a scratch SQLite file beside the import (``Staging``), keyed by the patient it belongs
to. Pass 2 then reads one patient's resources at a time back from there, whatever order and
whichever files they came in, so memory stays bounded by the largest patient, not the source.

A problem found here refuses the whole source before anything is written (``SourceRefused``);
its problems are the import's report, shown on the import page, so they are written in the
current language (the importer's). A resource's location (``b.json entry 3``) is too: the
report names it.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ijson

from hms_app.services.core.language import _

CHUNK = 1 << 16
MAX_PROBLEMS = 20
"""A refused source lists at most this many problems; the count says how many more."""

R4_RESOURCE_TYPES = frozenset(["Account", "ActivityDefinition", "AdverseEvent", "AllergyIntolerance", "Appointment", "AppointmentResponse", "AuditEvent", "Basic", "Binary", "BiologicallyDerivedProduct", "BodyStructure", "Bundle", "CapabilityStatement", "CarePlan", "CareTeam", "CatalogEntry", "ChargeItem", "ChargeItemDefinition", "Claim", "ClaimResponse", "ClinicalImpression", "CodeSystem", "Communication", "CommunicationRequest", "CompartmentDefinition", "Composition", "ConceptMap", "Condition", "Consent", "Contract", "Coverage", "CoverageEligibilityRequest", "CoverageEligibilityResponse", "DetectedIssue", "Device", "DeviceDefinition", "DeviceMetric", "DeviceRequest", "DeviceUseStatement", "DiagnosticReport", "DocumentManifest", "DocumentReference", "EffectEvidenceSynthesis", "Encounter", "Endpoint", "EnrollmentRequest", "EnrollmentResponse", "EpisodeOfCare", "EventDefinition", "Evidence", "EvidenceVariable", "ExampleScenario", "ExplanationOfBenefit", "FamilyMemberHistory", "Flag", "Goal", "GraphDefinition", "Group", "GuidanceResponse", "HealthcareService", "ImagingStudy", "Immunization", "ImmunizationEvaluation", "ImmunizationRecommendation", "ImplementationGuide", "InsurancePlan", "Invoice", "Library", "Linkage", "List", "Location", "Measure", "MeasureReport", "Media", "Medication", "MedicationAdministration", "MedicationDispense", "MedicationKnowledge", "MedicationRequest", "MedicationStatement", "MedicinalProduct", "MedicinalProductAuthorization", "MedicinalProductContraindication", "MedicinalProductIndication", "MedicinalProductIngredient", "MedicinalProductInteraction", "MedicinalProductManufactured", "MedicinalProductPackaged", "MedicinalProductPharmaceutical", "MedicinalProductUndesirableEffect", "MessageDefinition", "MessageHeader", "MolecularSequence", "NamingSystem", "NutritionOrder", "Observation", "ObservationDefinition", "OperationDefinition", "OperationOutcome", "Organization", "OrganizationAffiliation", "Parameters", "Patient", "PaymentNotice", "PaymentReconciliation", "Person", "PlanDefinition", "Practitioner", "PractitionerRole", "Procedure", "Provenance", "Questionnaire", "QuestionnaireResponse", "RelatedPerson", "RequestGroup", "ResearchDefinition", "ResearchElementDefinition", "ResearchStudy", "ResearchSubject", "RiskAssessment", "RiskEvidenceSynthesis", "Schedule", "SearchParameter", "ServiceRequest", "Slot", "Specimen", "SpecimenDefinition", "StructureDefinition", "StructureMap", "Subscription", "Substance", "SubstanceNucleicAcid", "SubstancePolymer", "SubstanceProtein", "SubstanceReferenceInformation", "SubstanceSourceMaterial", "SubstanceSpecification", "SupplyDelivery", "SupplyRequest", "Task", "TerminologyCapabilities", "TestReport", "TestScript", "ValueSet", "VerificationResult", "VisionPrescription"])  # FHIR's codes  # i18n: not shown
"""Every resource type of FHIR R4 (4.0.1)."""

BUNDLE_TYPES = ("transaction", "collection", "batch", "searchset")
"""The Bundles whose entries are records to import (a transaction's or batch's requests are not
replayed: each entry is imported by its own id, whatever its request says)."""

TIER_SHARED, TIER_PATIENT, TIER_ENCOUNTER, TIER_CLINICAL = 0, 1, 2, 3
TIERS = {
    "Practitioner": TIER_SHARED, "Medication": TIER_SHARED,
    "Patient": TIER_PATIENT, "Encounter": TIER_ENCOUNTER,
    **dict.fromkeys(("Condition", "AllergyIntolerance", "Observation", "MedicationRequest", "Immunization", "Procedure", "DiagnosticReport", "DocumentReference"), TIER_CLINICAL),  # i18n: not shown
}
"""The types HMS imports, in the order a patient's resources are written: shared ones first,
then the patient, the encounters, and what happened in them."""

_PATIENT_FIELD = {"Patient": None, "AllergyIntolerance": "patient", "Immunization": "patient"}
"""Where a resource names its patient (``subject`` for the rest)."""


class SourceRefused(Exception):
    """The source cannot be imported at all; ``problems`` says why, first the worst."""

    def __init__(self, problems: list[str], more: int = 0) -> None:
        super().__init__(problems[0])
        self.problems = problems
        self.more = more


@dataclass
class Staged:
    """What pass 1 found: the resources staged per patient, the rest counted by type."""

    total: int = 0
    """Resources read, every type."""
    staged: int = 0
    skipped_by_type: dict[str, int] = field(default_factory=dict)
    files: int = 0


def source_files(path: Path) -> list[Path]:
    """The files of ``path``: itself, or a folder's ``.json`` and ``.ndjson`` files by name."""
    if path.is_dir():
        found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in (".json", ".ndjson"))
        if not found:
            raise SourceRefused([_("The folder {folder} holds no .json or .ndjson file.").format(folder=path.name)])
        return found
    if not path.is_file():
        raise SourceRefused([_("There is no file or folder {path}.").format(path=path)])
    return [path]


class _Utf8Checked:
    """A binary file read in chunks, each checked as UTF-8 on the way (a leading BOM dropped)."""

    def __init__(self, handle, name: str) -> None:
        self.handle, self.name, self.offset = handle, name, 0
        self.decoder = codecs.getincrementaldecoder("utf-8")()
        self.first = True

    def read(self, size: int = CHUNK) -> bytes:
        data = self.handle.read(size)
        if self.first:
            self.first = False
            if data.startswith(codecs.BOM_UTF8):
                data = data[len(codecs.BOM_UTF8):]
                self.offset += len(codecs.BOM_UTF8)
        try:
            self.decoder.decode(data, final=not data)
        except UnicodeDecodeError as error:
            raise SourceRefused([_("{file} is not UTF-8 text (byte {byte} is not UTF-8): export it again as UTF-8, "
                                   "which FHIR requires.").format(file=self.name, byte=self.offset + error.start)
                                 ]) from None
        self.offset += len(data)
        return data


def _bundle_resources(path: Path, problems: list[str]) -> Iterator[tuple[str, dict, str]]:
    """(location, resource, fullUrl) of each entry of the Bundle in ``path``, streamed.

    The envelope's own fields (its type, version, profile) are read from the same stream by
    parsers of their own, so the entries never pass through Python one token at a time; the
    parsers of ``resourceType`` and ``type``, which a Bundle has once, stop once they found it.
    """
    name = path.name
    found: dict[str, list] = {"resourceType": [], "type": [], "fhirVersion": [], "meta.profile.item": []}
    entries: list[dict] = []
    coros = {prefix: ijson.items_coro(_ListSink(found[prefix]), prefix, use_float=True) for prefix in found}
    entry_coro = ijson.items_coro(_ListSink(entries), "entry.item", use_float=True)
    checked_envelope = False
    index = 0
    with path.open("rb") as handle:
        reader = _Utf8Checked(handle, name)
        try:
            while True:
                chunk = reader.read()
                for coro in (*coros.values(), entry_coro):
                    if chunk:
                        coro.send(chunk)
                    else:
                        coro.close()
                for once in ("resourceType", "type"):
                    if found[once] and once in coros:
                        del coros[once]  # left unfinished: the entries' parser still checks the whole file
                if found["resourceType"] and not checked_envelope:
                    _check_envelope(name, found["resourceType"][0], None)
                if entries and not checked_envelope:
                    checked_envelope = True
                    _check_envelope(name, found["resourceType"][0] if found["resourceType"] else None,
                                    found["type"][0] if found["type"] else None)
                for entry in entries:
                    index += 1
                    yield from _entry(name, index, entry, problems)
                entries.clear()
                if not chunk:
                    break
        except ijson.IncompleteJSONError as error:
            if "premature EOF" in str(error) or "Incomplete JSON" in str(error):
                raise SourceRefused([_("{file} ends before its JSON does (at byte {byte}): the file is incomplete, "
                                       "perhaps still being written or cut off in a copy.").format(
                                           file=name, byte=reader.offset)]) from None
            raise SourceRefused([_not_json(name, reader.offset, error)]) from None
        except ijson.JSONError as error:
            raise SourceRefused([_not_json(name, reader.offset, error)]) from None
    if not found["resourceType"]:
        raise SourceRefused([_("{file} is JSON but not a FHIR resource: it has no resourceType.").format(file=name)])
    _check_envelope(name, found["resourceType"][0], found["type"][0] if found["type"] else "")
    versions = [*found["fhirVersion"], *found["meta.profile.item"]]
    for version in versions:
        if _other_version(str(version)):
            raise SourceRefused([_("{file} is a FHIR {version} Bundle ({written}); HMS imports FHIR R4 (4.0.x) "
                                   "only: export it from the source system as R4.").format(
                                       file=name, version=_other_version(str(version)), written=version)])


class _ListSink:
    """The target of an ijson coroutine: what it finds, appended to a list."""

    def __init__(self, into: list) -> None:
        self.into = into

    def send(self, value: Any) -> None:
        self.into.append(value)


def _not_json(name: str, offset: int, error: Exception) -> str:
    return _("{file} is not valid JSON (near byte {byte}): {reason}.").format(file=name, byte=offset,
                                                                              reason=_short(error))


def _short(error: Exception) -> str:
    """The parser's own reason (in its words, English), first line."""
    return str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__


def _check_envelope(name: str, resource_type: object, bundle_type: object) -> None:
    if resource_type is not None and resource_type != "Bundle":
        raise SourceRefused([_("{file} holds a {type}, not a Bundle: HMS imports a Bundle (.json) or one resource "
                               "per line (.ndjson).").format(file=name, type=resource_type)])
    if bundle_type is not None and bundle_type not in BUNDLE_TYPES:
        if not bundle_type:
            raise SourceRefused([_("{file} is a typeless Bundle; HMS imports transaction, batch, collection and "
                                   "searchset Bundles.").format(file=name)])
        raise SourceRefused([_("{file} is a {type} Bundle; HMS imports transaction, batch, collection and searchset "
                               "Bundles.").format(file=name, type=bundle_type)])


def _other_version(text: str) -> str:
    """The FHIR version a version string or profile URL names, if not R4; "" for R4 or unknown."""
    lowered = text.lower()
    for marker, version in (("dstu2", "DSTU2"), ("/stu3/", "STU3"), ("/r5/", "R5"), ("/r4b/", "R4B")):
        if marker in lowered:
            return version
    for prefix, version in (("1.0.", "DSTU2"), ("3.0.", "STU3"), ("4.3.", "R4B"), ("5.0.", "R5"), ("1.4.", "STU3"),
                            ("1.8.", "STU3"), ("3.5", "R4 ballot"), ("4.2.", "R5 ballot"), ("4.4.", "R5 ballot")):
        if lowered.startswith(prefix):
            return version
    return ""


def _entry(name: str, index: int, entry: object, problems: list[str]) -> Iterator[tuple[str, dict, str]]:
    location = _("{file} entry {number}").format(file=name, number=index)
    if not isinstance(entry, dict) or not isinstance(entry.get("resource"), dict):
        problems.append(_("{location} has no resource.").format(location=location))
        return
    yield location, entry["resource"], str(entry.get("fullUrl") or "")


def _ndjson_resources(path: Path, problems: list[str]) -> Iterator[tuple[str, dict, str]]:
    name = path.name
    at_line, at_entry = _("{file} line {number}"), _("{place} entry {number}")
    with path.open("rb") as handle:
        reader = _Utf8Checked(handle, name)
        number = 0
        pending = b""
        while True:
            chunk = reader.read()
            pending += chunk
            lines = pending.split(b"\n")
            pending = lines.pop() if chunk else b""
            for raw in lines:
                number += 1
                if not raw.strip():
                    continue
                location = at_line.format(file=name, number=number)
                try:
                    resource = json.loads(raw)
                except ValueError as error:
                    if not chunk and raw is lines[-1] and not raw.rstrip().endswith(b"}"):
                        raise SourceRefused([_("{location} is cut off (the file ends in the middle of a resource): "
                                               "the file is incomplete, perhaps still being written.").format(
                                                   location=location)]) from None
                    raise SourceRefused([_("{location} is not valid JSON: {reason}.").format(
                        location=location, reason=_short(error))]) from None
                if not isinstance(resource, dict):
                    problems.append(_("{location} is not a FHIR resource.").format(location=location))
                    continue
                if resource.get("resourceType") == "Bundle":
                    for inner, entry in enumerate(resource.get("entry") or [], start=1):
                        for __, found, full_url in _entry(name, inner, entry, problems):
                            yield at_entry.format(place=location, number=inner), found, full_url
                    continue
                yield location, resource, ""
            if not chunk:
                break


def _stu3_shape(resource: dict) -> bool:
    """A resource written the STU3 way: a clinical status as a bare code where R4 has a CodeableConcept."""
    return resource.get("resourceType") in ("Condition", "AllergyIntolerance") and isinstance(
        resource.get("clinicalStatus"), str)


def reference_key(reference: object) -> str:
    """A literal reference as ``Type/id``; a ``urn:`` or conditional one as it is; "" for none."""
    text = str(reference or "").strip()
    if not text or text.startswith(("urn:", "#")) or "?" in text:
        return text
    parts = [p for p in text.split("/") if p]
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    return "/".join(parts[-2:]) if len(parts) >= 2 else text


class Staging:
    """The scratch database of one import: staged resources, full URLs, identifiers."""

    def __init__(self, folder: Path) -> None:
        self.db = sqlite3.connect(folder / "staging.db", isolation_level=None)
        self.db.executescript("""
            PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-8000; PRAGMA temp_store=FILE;
            CREATE TABLE staged (seq INTEGER PRIMARY KEY, location TEXT, rtype TEXT, rid TEXT, tier INT,
                                 patient_ref TEXT, patient_key TEXT, body TEXT);
            CREATE TABLE urls (url TEXT PRIMARY KEY, key TEXT) WITHOUT ROWID;
            CREATE TABLE idents (rtype TEXT, system TEXT, value TEXT, key TEXT, PRIMARY KEY (rtype, system, value))
                WITHOUT ROWID;
        """)  # i18n: not shown
        self.db.execute("BEGIN")

    def close(self) -> None:
        self.db.close()

    def finish(self) -> None:
        """Index what was staged, and give each resource the key of its patient (``executescript``
        commits the staging transaction first)."""
        self.db.executescript("""
            UPDATE staged SET patient_key = COALESCE((SELECT key FROM urls WHERE url = staged.patient_ref), patient_ref)
                WHERE patient_key IS NULL AND patient_ref <> '';
            CREATE INDEX ix_staged_patient ON staged (patient_key, tier, seq);
            CREATE INDEX ix_staged_key ON staged (rtype, rid);
        """)  # i18n: not shown

    def resolve(self, reference: str) -> str:
        """``Type/id`` for a reference inside the source (full URL, literal or conditional); "" if none."""
        key = reference_key(reference)
        if not key:
            return ""
        row = self.db.execute("SELECT key FROM urls WHERE url = ?", (reference,)).fetchone()
        if row:
            return row[0]
        if "?" in key:
            conditional = parse_conditional(key)
            if conditional is None:
                return ""
            rtype, system, value = conditional
            row = self.db.execute("SELECT key FROM idents WHERE rtype = ? AND system = ? AND value = ?",
                                  (rtype, system, value)).fetchone()
            return row[0] if row else ""
        return key if not key.startswith("urn:") else ""

    def body(self, key: str) -> dict | None:
        rtype, __, rid = key.partition("/")
        row = self.db.execute("SELECT body FROM staged WHERE rtype = ? AND rid = ?", (rtype, rid)).fetchone()
        return json.loads(row[0]) if row else None

    def shared(self) -> Iterator[tuple[int, str, dict, str]]:
        """(seq, location, resource, content hash) of each practitioner and medication."""
        cursor = self.db.execute("SELECT seq, location, body FROM staged WHERE tier = ? ORDER BY seq", (TIER_SHARED,))
        for seq, location, body in cursor:
            yield seq, location, json.loads(body), content_hash(body)

    def patients(self) -> list[str]:
        return [key for (key,) in self.db.execute(
            "SELECT patient_key FROM staged WHERE tier > ? AND patient_key IS NOT NULL "
            "GROUP BY patient_key ORDER BY MIN(seq)", (TIER_SHARED,))]

    def of_patient(self, key: str) -> list[tuple[int, str, dict, str]]:
        """(seq, location, resource, content hash) of one patient's resources, in the order they are written."""
        return [(seq, location, json.loads(body), content_hash(body)) for seq, location, body in self.db.execute(
            "SELECT seq, location, body FROM staged WHERE patient_key = ? AND tier > ? ORDER BY tier, seq",
            (key, TIER_SHARED))]

    def without_patient(self) -> list[tuple[int, str, str]]:
        return self.db.execute("SELECT seq, location, rtype || '/' || rid FROM staged WHERE tier > ? "
                               "AND patient_key IS NULL ORDER BY seq", (TIER_SHARED,)).fetchall()


def canonical(resource: dict) -> str:
    """A resource as one JSON text, keys sorted: the same resource always reads the same."""
    return json.dumps(resource, sort_keys=True, separators=(",", ":"))


def content_hash(body: str) -> str:
    """The hash ``SourceRecord.content_hash`` keeps of a resource's ``canonical`` text."""
    return hashlib.sha256(body.encode()).hexdigest()


def parse_conditional(reference: str) -> tuple[str, str, str] | None:
    """(type, system, value) of ``Type?identifier=system|value``; None for any other search."""
    rtype, __, query = reference.partition("?")
    name, __, value = query.partition("=")
    if name != "identifier" or "&" in value or not value:
        return None
    system, bar, code = value.rpartition("|")
    return (rtype, system, code) if bar and code else None


def stage(path: Path, staging: Staging, progress=None) -> Staged:
    """Pass 1: read every file of ``path`` and stage what HMS imports.

    Raises:
        SourceRefused: the source is not whole, UTF-8, FHIR R4 JSON, or a resource lacks a
            type or an id; nothing has been written to the hospital's database.
    """
    result = Staged()
    problems: list[str] = []
    rows: list[tuple] = []
    urls: list[tuple] = []
    idents: list[tuple] = []
    for file in source_files(path):
        result.files += 1
        ndjson = file.suffix.lower() == ".ndjson"
        resources = _ndjson_resources(file, problems) if ndjson else _bundle_resources(file, problems)
        for location, resource, full_url in resources:
            result.total += 1
            rtype = resource.get("resourceType")
            if not isinstance(rtype, str) or not rtype:
                problems.append(_("{location} has no resourceType.").format(location=location))
                continue
            if rtype not in R4_RESOURCE_TYPES:
                raise SourceRefused([_("{location} is a {type}, which FHIR R4 does not have: the source is of another "
                                       "FHIR version (DSTU2 or STU3?). Export it from the source system as R4.").format(
                                           location=location, type=rtype)])
            if _stu3_shape(resource):
                raise SourceRefused([_("{location} is a {type} written the STU3 way (clinicalStatus is a bare code): "
                                       "export the source as FHIR R4.").format(location=location, type=rtype)])
            rid = resource.get("id")
            if not (isinstance(rid, str) and rid.strip()):
                rid = full_url.rsplit(":", 1)[-1] if full_url.startswith("urn:uuid:") else ""
            if not rid:
                problems.append(_("{location} ({type}) has neither an id nor a urn:uuid fullUrl.").format(
                    location=location, type=rtype))
                continue
            tier = TIERS.get(rtype)
            if tier is None:
                result.skipped_by_type[rtype] = result.skipped_by_type.get(rtype, 0) + 1
                continue
            key = f"{rtype}/{rid}"
            if full_url:
                urls.append((full_url, key))
            if rtype in ("Patient", "Practitioner"):
                for identifier in resource.get("identifier") or []:
                    if isinstance(identifier, dict) and identifier.get("system") and identifier.get("value"):
                        idents.append((rtype, str(identifier["system"]), str(identifier["value"]), key))
            patient_ref, patient_key = "", None
            if rtype == "Patient":
                patient_key = key
            elif tier > TIER_SHARED:
                holder = resource.get(_PATIENT_FIELD.get(rtype, "subject"))
                patient_ref = reference_key(holder.get("reference")) if isinstance(holder, dict) else ""
                if patient_ref.startswith("Patient/"):
                    patient_key = patient_ref
            rows.append((location, rtype, rid, tier, patient_ref, patient_key, canonical(resource)))
            result.staged += 1
            if len(rows) >= 2000:
                _flush(staging, rows, urls, idents)
                if progress:
                    progress(result.total)
    if problems:
        raise SourceRefused(problems[:MAX_PROBLEMS], max(0, len(problems) - MAX_PROBLEMS))
    _flush(staging, rows, urls, idents)
    _resolve_conditional_patients(staging)
    staging.finish()
    return result


def _flush(staging: Staging, rows: list, urls: list, idents: list) -> None:
    db = staging.db
    db.executemany("INSERT INTO staged (location, rtype, rid, tier, patient_ref, patient_key, body) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    db.executemany("INSERT OR REPLACE INTO urls VALUES (?, ?)", urls)
    db.executemany("INSERT OR REPLACE INTO idents VALUES (?, ?, ?, ?)", idents)
    rows.clear()
    urls.clear()
    idents.clear()


def _resolve_conditional_patients(staging: Staging) -> None:
    """``Patient?identifier=…`` subjects, resolved against the source's own patients where they can be."""
    db = staging.db
    refs = [ref for (ref,) in db.execute("SELECT DISTINCT patient_ref FROM staged WHERE patient_ref LIKE 'Patient?%'")]
    for ref in refs:
        key = staging.resolve(ref)
        if key:
            db.execute("UPDATE staged SET patient_key = ? WHERE patient_ref = ?", (key, ref))

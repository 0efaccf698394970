"""API clients of the FHIR API: issued and revoked by admin, authenticated by bearer token,
and the reads they make, each checked against the client's scope and audited like a chart view.

A token is ``hms_`` and 43 random URL-safe characters (256 bits), shown once when issued; the
database keeps only its SHA-256 (as for login sessions). A client reads either every patient's
record ("all") or one patient's ("patient").
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session

from hms_app.db.enums import Permission, Role
from hms_app.db.models import ApiClient, LabOrder, LabReportFile, PatientProfile, User
from hms_app.db.types import utcnow
from hms_app.services.core import audit, files, throttle
from hms_app.services.core.access import access_by_id, require
from hms_app.services.core.actor import Actor, Anonymous
from hms_app.services.core.errors import (
    Conflict,
    NotFound,
    PermissionDenied,
    SessionExpired,
    ValidationError,
)
from hms_app.services.core.ids import get_by_id, parse_id
from hms_app.services.core.language import N_, _
from hms_app.services.core.localtime import format_local
from hms_app.services.core.passwords import hash_token
from hms_app.services.core.text import one_line, storable
from hms_app.services.interop import fhir

TOKEN_PREFIX = "hms_"  # noqa: S105 - the marker of a token, not a secret
SCOPE_ALL = "all"
SCOPE_PATIENT = "patient"
SCOPES = (SCOPE_ALL, SCOPE_PATIENT)


# --- issuing and revoking (admin) -----------------------------------------------------------


@dataclass(frozen=True)
class IssuedClient:
    """What admin sees once: the token is never shown again."""

    id: int
    name: str
    token: str


@dataclass(frozen=True)
class ApiClientRow:
    id: int
    name: str
    scope: str
    patient: str
    token_hint: str
    created: str
    last_used: str
    status: str


def _require_admin(session: Session, actor: Actor, action: str) -> None:
    require(session, actor, Permission.USERS_MANAGE, action=action)
    if actor.role != Role.ADMIN:
        audit.deny(session, actor, action, N_("Only administrators manage API clients."))


def issue_api_client(*, session: Session, actor: Actor, name: str, scope: str, patient_mrn: str = "") -> IssuedClient:
    """Issue a client that reads every record (``scope="all"``) or one patient's (by MRN)."""
    _require_admin(session, actor, "api_client.issue")
    name = one_line(name, _("name"))
    if not 3 <= len(name) <= 120:
        raise ValidationError(_("Name the client (3 to 120 characters), e.g. the system that will use it."))
    if scope not in SCOPES:
        raise ValidationError(_("Choose whether the client reads all records or one patient's."))
    patient_id = None
    if scope == SCOPE_PATIENT:
        mrn = storable(str(patient_mrn or "").strip(), _("medical record number")).upper()
        if not mrn:
            raise ValidationError(_("Enter the medical record number of the patient whose record it may read."))
        patient_id = session.execute(
            sa.select(PatientProfile.user_id).where(sa.func.upper(PatientProfile.mrn) == mrn)
        ).scalar_one_or_none()
        if patient_id is None:
            raise ValidationError(_("No patient has that medical record number."))
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    client = ApiClient(name=name, token_hash=hash_token(token), token_hint=token[:10], scope=scope,
                       patient_id=patient_id, created_by=actor.user_id)
    session.add(client)
    session.flush()
    audit.record(session, actor, "api_client.issue", entity_type="api_client", entity_id=client.id,
                 patient_id=patient_id, detail=f"{name}; scope {scope}")
    session.commit()
    return IssuedClient(client.id, name, token)


def revoke_api_client(*, session: Session, actor: Actor, client_id: int) -> None:
    """Revoke a client: its token stops working at once."""
    _require_admin(session, actor, "api_client.revoke")
    client = access_by_id(session, actor, ApiClient, client_id, action="api_client.revoke",
                          missing=N_("That API client does not exist."), entity_type="api_client")
    # One UPDATE that reports what it changed: of two concurrent revocations only one is audited.
    changed = session.execute(
        sa.update(ApiClient).where(ApiClient.id == client.id, ApiClient.revoked_at.is_(None))
        .values(revoked_at=utcnow(), revoked_by=actor.user_id)
    ).rowcount
    if not changed:
        session.rollback()
        raise Conflict(_("That API client is already revoked."))
    audit.record(session, actor, "api_client.revoke", entity_type="api_client", entity_id=client.id,
                 patient_id=client.patient_id, detail=client.name)
    session.commit()


def list_api_clients(*, session: Session, actor: Actor) -> list[ApiClientRow]:
    """Every client, newest first, without anything a token could be rebuilt from."""
    _require_admin(session, actor, "api_client.list")
    rows = session.execute(
        sa.select(ApiClient, PatientProfile.mrn, User.full_name)
        .outerjoin(PatientProfile, PatientProfile.user_id == ApiClient.patient_id)
        .outerjoin(User, User.id == ApiClient.patient_id)
        .order_by(ApiClient.id.desc()).limit(200)
    ).all()
    return [
        ApiClientRow(
            id=c.id, name=c.name, scope=_("All patients") if c.scope == SCOPE_ALL else _("One patient"),
            patient=f"{name} ({mrn})" if mrn else "", token_hint=f"{c.token_hint}…", created=format_local(c.created_at),
            last_used=format_local(c.last_used_at) or _("Never"),
            # The status stays the English id the page compares and translates.
            status=N_("Revoked") if c.revoked_at else N_("Active"),
        )
        for c, mrn, name in rows
    ]


# --- the caller of the API -------------------------------------------------------------------


@dataclass(frozen=True)
class ApiCaller:
    """An authenticated API client, as the audit trail and the scope checks see it."""

    client_id: int
    name: str
    patient_id: int | None
    ip_address: str = ""

    @property
    def email(self) -> str:
        """What the audit trail shows as the actor."""
        return f"api-client:{self.client_id} {self.name}"[:254]

    def may_read(self, patient_id: int | None) -> bool:
        return self.patient_id is None or self.patient_id == patient_id


def authenticate_client(*, session: Session, authorization: str, ip_address: str = "") -> ApiCaller:
    """The client whose bearer token is in the ``Authorization`` header.

    Raises:
        SessionExpired: no token, an unknown one or a revoked one (audited and counted against the
            address; HTTP 401).
        TooManyAttempts: the address sent too many of those lately; the token was not looked at (HTTP 429).
    """
    throttle.check(session, throttle.Kind.API, ip_address)
    scheme, _space, token = str(authorization or "").partition(" ")
    token = token.strip()
    client = None
    if scheme.lower() == "bearer" and token.startswith(TOKEN_PREFIX) and len(token) <= 100 and token.isascii():
        client = session.execute(sa.select(ApiClient).where(ApiClient.token_hash == hash_token(token))).scalar_one_or_none()
    if client is None or client.revoked_at is not None:
        visitor = ApiCaller(client.id, client.name, client.patient_id, ip_address) if client else Anonymous(ip_address)
        session.rollback()
        throttle.failed(session, throttle.Kind.API, ip_address)
        session.commit()
        # The API's refusals are FHIR output, read by the client's developers: in English.
        audit.deny(session, visitor, "fhir.authenticate", "A valid bearer token is required.",  # i18n: not shown
                   error=SessionExpired,
                   detail="revoked token" if client else ("no token" if not token else "unknown token"))  # i18n: not shown
    client.last_used_at = utcnow()
    session.add(client)
    return ApiCaller(client.id, client.name, client.patient_id, ip_address)


def _check_scope(session: Session, caller: ApiCaller, patient_id: int | None, action: str, entity: str) -> None:
    if not caller.may_read(patient_id):
        audit.deny(session, caller, action, "This client may not read that patient's record.",  # i18n: not shown
                   error=PermissionDenied,
                   entity_type=entity.partition("/")[0], entity_id=entity.partition("/")[2], patient_id=patient_id)


def _refuse_missing(session: Session, caller: ApiCaller, action: str, entity: str) -> None:
    audit.deny(session, caller, action, f"{entity} does not exist.", error=NotFound,  # i18n: not shown
               entity_type=entity.partition("/")[0][:64], entity_id=entity.partition("/")[2][:64])


def read_resource(*, session: Session, caller: ApiCaller, resource_type: str, resource_id: str, base_url: str) -> dict:
    """``GET [base]/{type}/{id}``: one resource, within the client's scope; audited."""
    action = "fhir.read"
    entity = f"{resource_type}/{resource_id}"
    parsed = fhir.parse_resource_id(resource_type, resource_id)
    if parsed is None:
        _refuse_missing(session, caller, action, entity)
    kind, id_ = parsed
    patient_id = fhir.resource_patient(session, kind, id_)
    if kind not in ("practitioner", "organization"):
        if patient_id is None:
            _refuse_missing(session, caller, action, entity)
        _check_scope(session, caller, patient_id, action, entity)
    resource = fhir.build_resource(session, kind, id_, base_url)
    if resource is None:
        _refuse_missing(session, caller, action, entity)
    audit.record(session, caller, action, entity_type=resource_type, entity_id=resource_id, patient_id=patient_id)
    session.commit()
    return resource


def _patient_param(value: str) -> int | None:
    text = str(value or "").strip()
    return parse_id(text.removeprefix("Patient/"))


def search(*, session: Session, caller: ApiCaller, resource_type: str, params: dict[str, str], base_url: str,
           self_url: str) -> dict:
    """``GET [base]/{type}?patient={id}``: a page of one patient's resources of one type.

    Practitioner and Organization list every doctor or department. A client scoped to one
    patient searches that patient's record when it names none.
    """
    action = "fhir.search"
    if resource_type not in fhir.RESOURCE_TYPES:
        _refuse_missing(session, caller, action, resource_type)
    count, offset = fhir.paging(params.get("_count"), params.get("_offset"))
    if resource_type in ("Practitioner", "Organization"):
        total, keys = fhir.shared_resource_ids(session, resource_type, offset, count)
        patient_id = None
    else:
        named = params.get("patient") or (params.get("_id") if resource_type == "Patient" else None)
        patient_id = _patient_param(named) if named else caller.patient_id
        if patient_id is None:
            raise ValidationError("Search by patient: add ?patient=<id>.")  # FHIR output # i18n: not shown
        _check_scope(session, caller, patient_id, action, f"{resource_type}/")
        if session.get(PatientProfile, patient_id) is None:
            _refuse_missing(session, caller, action, f"Patient/{patient_id}")
        total, keys = fhir.patient_entries(session, patient_id, resource_type, offset, count)
    page = fhir.bundle(session, keys, total, base_url=base_url, self_url=self_url, offset=offset, count=count)
    audit.record(session, caller, action, entity_type=resource_type, entity_id="", patient_id=patient_id,
                 detail=f"{len(page.get('entry', []))} of {total} from {offset}")  # i18n: not shown
    session.commit()
    return page


def everything(*, session: Session, caller: ApiCaller, patient_id: str, params: dict[str, str], base_url: str) -> dict:
    """``GET [base]/Patient/{id}/$everything``: the whole record, one page at a time."""
    action = "fhir.everything"
    entity = f"Patient/{patient_id}"
    key = parse_id(patient_id)
    if key is None or session.get(PatientProfile, key) is None:
        _refuse_missing(session, caller, action, entity)
    _check_scope(session, caller, key, action, entity)
    count, offset = fhir.paging(params.get("_count"), params.get("_offset"))
    total, keys = fhir.patient_entries(session, key, None, offset, count)
    page = fhir.bundle(session, keys, total, base_url=base_url, self_url=f"{base_url}/Patient/{key}/$everything",
                       offset=offset, count=count)
    audit.record(session, caller, action, entity_type="Patient", entity_id=key, patient_id=key,
                 detail=f"{len(page.get('entry', []))} of {total} from {offset}")  # i18n: not shown
    session.commit()
    return page


@dataclass(frozen=True)
class BinaryContent:
    content_type: str
    file_name: str
    data: bytes


def read_binary(*, session: Session, caller: ApiCaller, binary_id: str) -> BinaryContent:
    """``GET [base]/Binary/lab-report-{order}``: a lab report file, decrypted; audited."""
    action = "fhir.binary"
    entity = f"Binary/{binary_id}"
    text = str(binary_id or "")
    order = get_by_id(session, LabOrder, text.removeprefix("lab-report-")) if text.startswith("lab-report-") else None
    stored = order and session.execute(
        sa.select(LabReportFile).where(LabReportFile.order_id == order.id)).scalar_one_or_none()
    if not stored or str(order.status) != "completed":
        _refuse_missing(session, caller, action, entity)
    _check_scope(session, caller, order.patient_id, action, entity)
    data = files.read_for_download(session, caller, stored.storage_name, action=action, entity_type="Binary",
                                   entity_id=binary_id, patient_id=order.patient_id)
    audit.record(session, caller, action, entity_type="Binary", entity_id=binary_id, patient_id=order.patient_id,
                 detail=stored.content_type)
    session.commit()
    return BinaryContent(stored.content_type, files.download_name(stored.file_name), data)

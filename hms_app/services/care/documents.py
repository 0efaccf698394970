"""Diagnostic reports and images in a patient's record."""

from __future__ import annotations

from sqlmodel import Session

from hms_app.db.enums import Permission, Role
from hms_app.db.models import Document
from hms_app.services.care.clinical import chart_patient
from hms_app.services.core import audit, events, files
from hms_app.services.core.access import access_by_id, require
from hms_app.services.core.actor import Actor
from hms_app.services.core.files import DownloadedFile
from hms_app.services.core.language import N_, _
from hms_app.services.core.text import checked_line


def upload_document(*, session: Session, actor: Actor, patient_id: int, title: str, file_name: str, data: bytes) -> int:
    """A doctor adds a PDF, PNG or JPEG to a patient's record (checked, then stored encrypted)."""
    profile = chart_patient(session, actor, patient_id, "document.upload", write=True)
    title = checked_line(title, _("document title"), limit=120)
    checked = files.check_upload(file_name, data)
    with files.stored_encrypted(checked.data) as storage_name:
        document = Document(patient_id=profile.user_id, uploaded_by=actor.user_id, title=title,
                            file_name=checked.file_name, content_type=checked.content_type,
                            size_bytes=len(checked.data), storage_name=storage_name)
        session.add(document)
        session.flush()
        audit.record(session, actor, "document.upload", entity_type="document", entity_id=document.id,
                     patient_id=profile.user_id, detail=f"{checked.content_type}, {len(checked.data)} bytes")  # i18n: not shown
        events.publish(session, "appointments", user_ids=[profile.user_id])
        session.commit()
    return document.id


def download_document(*, session: Session, actor: Actor, document_id: int) -> DownloadedFile:
    """The file, for the patient it belongs to or a doctor who may open that chart; audited."""
    action = "document.download"
    if actor.role == Role.PATIENT:
        require(session, actor, Permission.RECORD_READ_OWN, action=action)
        document = access_by_id(session, actor, Document, document_id, action=action,
                                missing=N_("That document does not exist."), entity_type="document",
                                allowed=lambda d: d.patient_id == actor.user_id)
    else:
        document = access_by_id(session, actor, Document, document_id, action=action,
                                missing=N_("That document does not exist."), entity_type="document")
        chart_patient(session, actor, document.patient_id, action)
    data = files.read_for_download(session, actor, document.storage_name, action=action, entity_type="document",
                                   entity_id=document.id, patient_id=document.patient_id)
    audit.record(session, actor, "document.download", entity_type="document", entity_id=document.id,
                 patient_id=document.patient_id)
    session.commit()
    return DownloadedFile(files.download_name(document.file_name), document.content_type, data)

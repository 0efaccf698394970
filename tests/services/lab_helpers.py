"""Helpers for the lab workflow tests: orders placed the way a doctor places them, moved along
by the lab, patients of a chosen sex and age, small real files and a look inside PDFs.

Each test keeps its key file and stored files under its own ``tmp_path``
(``use_private_data_dir``), never in the repository's ``data/`` folder.
"""

from __future__ import annotations

import io
import itertools
import re
import zlib
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from pypdf import PdfReader

from hms_app import settings
from hms_app.db import crypto
from hms_app.db.engine import session_scope
from hms_app.db.enums import AppointmentStatus
from hms_app.db.models import LabOrder, LabReportFile, LabResult, LabTest, PatientProfile
from hms_app.db.types import utcnow
from hms_app.services.care import clinical, prescribing
from hms_app.services.core.actor import Actor
from hms_app.services.laboratory import lab
from hms_app.services.reference.load import sync_reference_data
from tests.services import clinical_helpers
from tests.services.appointment_helpers import call, insert_appointment


def use_private_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """Point the key file and the stored files at ``tmp_path`` for one test (a fixture body)."""
    data = tmp_path / "data"
    monkeypatch.setattr(settings, "DATA_DIR", data)
    monkeypatch.setattr(settings, "DATA_KEY", "")
    monkeypatch.setattr(settings, "FILES_DIR", data / "files")
    crypto.reset_cipher()
    yield data
    crypto.reset_cipher()


def with_reference_data(engine: sa.Engine) -> sa.Engine:
    with session_scope(engine=engine) as s:
        sync_reference_data(s)
        s.commit()
    return engine


_days_back = itertools.count(1)


def open_visit(engine: sa.Engine, doctor: Actor, patient_id: int) -> int:
    """A confirmed appointment in the past, opened as an encounter; returns the encounter's id."""
    start = utcnow().replace(second=0, microsecond=0) - timedelta(days=next(_days_back), hours=2)
    appointment_id = insert_appointment(engine, patient_id=patient_id, doctor_id=doctor.user_id, starts_at=start,
                                        status=AppointmentStatus.CONFIRMED)
    return call(engine, clinical.open_encounter, actor=doctor, appointment_id=appointment_id).id


def lab_test_id(engine: sa.Engine, code: str) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(LabTest.id).where(LabTest.code == code)).scalar_one()


def order(engine: sa.Engine, doctor: Actor, encounter_id: int, code: str, priority: str = "routine",
          note: str = "") -> int:
    """One order of the test ``code``, placed through the doctor's service (confirmed when the
    patient already has the test open: the lab's tests order the same test again on purpose)."""
    [order_id] = call(engine, prescribing.order_lab_tests, actor=doctor, encounter_id=encounter_id,
                      test_ids=[lab_test_id(engine, code)], priority=priority, note=note, confirm_duplicate=True)
    return order_id


def running(engine: sa.Engine, lab_staff: Actor, order_id: int) -> int:
    """Collect the sample and start the test: the order is ready for its result."""
    call(engine, lab.collect_sample, actor=lab_staff, order_id=order_id)
    call(engine, lab.start_test, actor=lab_staff, order_id=order_id)
    return order_id


def set_patient(engine: sa.Engine, patient_id: int, *, sex: str | None = None, birth_date: date | str | None = "keep") -> None:
    """Give the patient a sex and a birth date (None: unknown)."""
    values: dict[str, object] = {}
    if sex is not None:
        values["sex"] = sex
    if birth_date != "keep":
        values["birth_date"] = birth_date
    with session_scope(engine=engine) as s:
        s.execute(sa.update(PatientProfile).where(PatientProfile.user_id == patient_id).values(**values))
        s.commit()


def today() -> date:
    return utcnow().astimezone(settings.TIMEZONE).date()


def years_before(day: date, years: int) -> date:
    """The same calendar day ``years`` earlier (28 February for 29 February)."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def lab_order(engine: sa.Engine, order_id: int) -> LabOrder:
    with session_scope(write=False, engine=engine) as s:
        return s.get(LabOrder, order_id)


def result_of(engine: sa.Engine, order_id: int) -> LabResult | None:
    with session_scope(write=False, engine=engine) as s:
        return s.execute(sa.select(LabResult).where(LabResult.order_id == order_id)).scalar_one_or_none()


def report_rows(engine: sa.Engine) -> list[LabReportFile]:
    with session_scope(write=False, engine=engine) as s:
        return list(s.execute(sa.select(LabReportFile).order_by(LabReportFile.id)).scalars())


def stored_files() -> list[Path]:
    folder = settings.FILES_DIR
    return sorted(p for p in folder.iterdir() if p.is_file()) if folder.exists() else []


def pdf_bytes(text: str = "Analyser printout") -> bytes:
    """A small one-page PDF (what check_upload recognises by its %PDF- signature)."""
    return clinical_helpers.pdf_bytes(text)


def inflated_streams(data: bytes) -> list[bytes]:
    """Every stream of a PDF, inflated where it is deflated.

    A stream's bytes run to the "\\n" before ``endstream`` (fpdf2 writes no "\\r" there): a
    deflated stream may itself end in the byte "\\r", which "\\r?\\n" would cut off.
    """
    found = []
    for raw in re.findall(rb"stream\r?\n(.*?)\nendstream", data, re.S):
        try:
            found.append(zlib.decompressobj().decompress(raw))
        except zlib.error:
            found.append(raw)
    return found


def pdf_text(data: bytes) -> str:
    """The text drawn on the pages of a PDF, read by pypdf through the fonts' own character maps
    (the embedded Unicode font draws glyph numbers, not letters): each text operator's string,
    joined by spaces (enough to find a name or a value). Raises on a file that is no valid PDF."""
    texts: list[str] = []

    def keep(text: str, *_args: object) -> None:
        if text.strip():
            texts.append(text.strip())

    for page in PdfReader(io.BytesIO(data), strict=True).pages:
        page.extract_text(visitor_text=keep)
    return " ".join(texts)

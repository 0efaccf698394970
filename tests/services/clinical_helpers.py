"""Helpers shared by the clinical, prescribing, document and encryption tests.

Every test of those modules runs with a data folder of its own (``private_data_dir``): the
key file and the stored files go under the test's ``tmp_path``, never into the repository's
``data/`` folder, and the process-wide cipher is forgotten before and after.
"""

from __future__ import annotations

import itertools
import struct
import zlib
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import SQLModel

from hms_app import settings
from hms_app.db import crypto
from hms_app.db.engine import session_scope
from hms_app.db.enums import AppointmentStatus
from hms_app.db.models import Encounter, LabTest, Medicine
from hms_app.db.types import utcnow
from hms_app.services.care import clinical
from hms_app.services.core.actor import Actor
from hms_app.services.reference.load import sync_reference_data
from tests.services.appointment_helpers import call, insert_appointment, user_id

DOCTOR_EMAIL = "amelia.hart@hms.example"
OTHER_DOCTOR_EMAIL = "rohan.mehta@hms.example"  # Cardiology, like Dr Hart
PATIENT_EMAIL = "maria.garcia@patients.example"
STRANGER_EMAIL = "aisha.khan@patients.example"
"""A patient with no appointment with Dr Hart in the demo data."""

SOAP_FIELDS = ("subjective", "objective", "assessment", "plan", "diagnosis", "icd10_code")


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
    """The formulary and the lab catalog loaded (the demo seed may have loaded them already)."""
    with session_scope(engine=engine) as s:
        sync_reference_data(s)
        s.commit()
    return engine


_slots = itertools.count(1)


def past_start(hours_ago: float | None = None) -> datetime:
    """A start in the past, different on every call so one doctor's appointments never clash."""
    base = utcnow().replace(second=0, microsecond=0) - timedelta(hours=2)
    if hours_ago is not None:
        return base - timedelta(hours=hours_ago)
    return base - timedelta(days=next(_slots))


def care_appointment(engine: sa.Engine, doctor: Actor, patient_id: int, *, starts_at: datetime | None = None,
                     status: AppointmentStatus = AppointmentStatus.CONFIRMED) -> int:
    """An appointment of ``patient_id`` with the doctor: what makes the patient theirs."""
    return insert_appointment(engine, patient_id=patient_id, doctor_id=doctor.user_id,
                              starts_at=starts_at or past_start(), status=status)


def open_visit(engine: sa.Engine, doctor: Actor, patient_id: int, **appointment: object) -> int:
    """A confirmed, started appointment opened as an encounter; returns the encounter's id."""
    appointment_id = care_appointment(engine, doctor, patient_id, **appointment)
    return call(engine, clinical.open_encounter, actor=doctor, appointment_id=appointment_id).id


def encounter(engine: sa.Engine, encounter_id: int) -> Encounter:
    with session_scope(write=False, engine=engine) as s:
        return s.get(Encounter, encounter_id)


def medicine_id(engine: sa.Engine, name: str) -> int:
    """The first formulary entry whose name starts with ``name`` (any case)."""
    with engine.connect() as conn:
        found = conn.execute(
            sa.select(Medicine.id).where(sa.func.lower(Medicine.name).startswith(name.lower()))
            .order_by(Medicine.id).limit(1)
        ).scalar_one_or_none()
    assert found is not None, f"the formulary has no {name}"
    return found


def lab_test_id(engine: sa.Engine, code: str) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(LabTest.id).where(LabTest.code == code)).scalar_one()


def any_lab_test_ids(engine: sa.Engine, count: int) -> list[int]:
    with engine.connect() as conn:
        ids = list(conn.execute(sa.select(LabTest.id).where(LabTest.is_active).order_by(LabTest.id).limit(count))
                   .scalars())
    assert len(ids) == count, "the lab catalog is too small for this test"
    return ids


def patient_id(engine: sa.Engine, email: str) -> int:
    return user_id(engine, email)


# --- raw storage --------------------------------------------------------------------------------


def raw_database_text(engine: sa.Engine) -> str:
    """Every value of every table as the database holds it, read with plain SQL (no model types)."""
    quote = engine.dialect.identifier_preparer.quote
    chunks: list[str] = []
    with engine.connect() as conn:
        for table in sa.inspect(conn).get_table_names():
            for row in conn.execute(sa.text(f"SELECT * FROM {quote(table)}")):
                chunks.extend(str(value) for value in row)
    return "\n".join(chunks)


def raw_database_files(engine: sa.Engine) -> bytes:
    """The SQLite database file and its write-ahead log, byte for byte (empty on PostgreSQL)."""
    if engine.dialect.name != "sqlite":
        return b""
    path = Path(engine.url.database)
    return b"".join(p.read_bytes() for p in (path, path.with_name(path.name + "-wal")) if p.exists())


def stored_files() -> list[Path]:
    folder = settings.FILES_DIR
    return sorted(p for p in folder.iterdir() if p.is_file()) if folder.exists() else []


def raw_tokens(engine: sa.Engine, table: str, column: str) -> dict[int, str]:
    """Primary key -> the stored token of one encrypted column, read with plain SQL.

    The key is the table's own (``user_id`` for a user's second factor, ``id`` elsewhere).
    """
    quote = engine.dialect.identifier_preparer.quote
    (key,) = [c.name for c in SQLModel.metadata.tables[table].primary_key.columns]
    with engine.connect() as conn:
        return dict(conn.execute(sa.text(f"SELECT {quote(key)}, {quote(column)} FROM {quote(table)}")).all())


# --- small real files -----------------------------------------------------------------------------


def pdf_bytes(text: str = "Chest X-ray report") -> bytes:
    """A one-page PDF 1.4 document with a valid cross-reference table."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def png_bytes(width: int = 2, height: int = 2) -> bytes:
    """An RGB PNG image, all red, with correct chunk CRCs."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def jpeg_bytes() -> bytes:
    """A baseline JFIF JPEG of one 8x8 grey block.

    One Huffman code per table ("0" for DC difference 0 and "0" for end of block), so the
    whole scan is the two bits 00, padded with ones: 0x3F.
    """
    jfif = b"\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    quantisation = b"\xff\xdb\x00\x43\x00" + b"\x01" * 64
    frame = b"\xff\xc0\x00\x0b\x08\x00\x08\x00\x08\x01\x01\x11\x00"
    one_code = b"\x01" + b"\x00" * 15 + b"\x00"
    huffman = b"\xff\xc4\x00\x14\x00" + one_code + b"\xff\xc4\x00\x14\x10" + one_code
    scan = b"\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00" + b"\x3f"
    return b"\xff\xd8" + jfif + quantisation + frame + huffman + scan + b"\xff\xd9"

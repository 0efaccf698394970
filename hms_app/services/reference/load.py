"""Loading the reference data into the formulary and lab catalog tables.

Source: the modules of this package (``formulary.MEDICINES``, ``lab_catalog.LAB_TESTS``).
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from sqlmodel import Session

from hms_app.db.models import LabTest, Medicine
from hms_app.services.reference.formulary import MEDICINES
from hms_app.services.reference.lab_catalog import LAB_TESTS

_PG_SYNC_LOCK = 7_310_430  # advisory lock key that serialises reference syncs on PostgreSQL


def sync_reference_data(session: Session) -> dict[str, int]:
    """Insert every shipped medicine and lab test that the database lacks.

    A medicine is identified by (name, strength), a lab test by its code. Rows already
    present are left as they are, whatever their price, ranges or active flag: once loaded,
    the pharmacy and the laboratory own them. Running it again inserts nothing.

    Concurrent syncs are serialised (SQLite: the caller's write session; PostgreSQL: an
    advisory lock held until the caller's commit), since ``medicine`` has no unique key on
    (name, strength). The caller commits; this only flushes.

    Returns:
        The number of rows inserted: ``{"medicines": n, "lab_tests": m}``.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_SYNC_LOCK})
    have_medicines = {tuple(row) for row in session.execute(sa.select(Medicine.name, Medicine.strength))}
    have_tests = set(session.scalars(sa.select(LabTest.code)))

    medicines = [Medicine(**entry) for entry in MEDICINES if (entry["name"], entry["strength"]) not in have_medicines]
    tests = [
        LabTest(**{**entry, "ranges": json.dumps(entry["ranges"])})
        for entry in LAB_TESTS if entry["code"] not in have_tests
    ]
    session.add_all([*medicines, *tests])
    session.flush()
    return {"medicines": len(medicines), "lab_tests": len(tests)}

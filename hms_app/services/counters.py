"""Gap-free named sequences, taken inside the caller's transaction."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session

from hms_app.db.models import Counter


def next_value(session: Session, name: str) -> int:
    """Increment and return counter ``name``; concurrent callers queue on the row lock."""
    bump = sa.update(Counter).where(Counter.name == name).values(value=Counter.value + 1).returning(Counter.value)
    value = session.execute(bump).scalar_one_or_none()
    if value is None:
        session.add(Counter(name=name, value=0))
        session.flush()
        value = session.execute(bump).scalar_one()
    return value


def next_mrn(session: Session) -> str:
    """The next medical record number, like ``MRN-000123``."""
    return f"MRN-{next_value(session, 'mrn'):06d}"

"""Gap-free named sequences, taken inside the caller's transaction."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from hms_app.db.models import Counter

_INSERT = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def next_value(session: Session, name: str) -> int:
    """Increment and return counter ``name``; concurrent callers queue on the row lock."""
    bump = sa.update(Counter).where(Counter.name == name).values(value=Counter.value + 1).returning(Counter.value)
    value = session.execute(bump).scalar_one_or_none()
    if value is None:
        _create(session, name)
        value = session.execute(bump).scalar_one()
    return value


def _create(session: Session, name: str) -> None:
    """Insert the counter at 0, unless a concurrent first caller just did.

    Both callers may find no row; the loser of the insert waits for the winner's commit
    and then bumps the winner's row instead of failing on the primary key.
    """
    insert = _INSERT[session.get_bind().dialect.name]
    session.execute(insert(Counter).values(name=name, value=0).on_conflict_do_nothing(index_elements=["name"]))


def next_mrn(session: Session) -> str:
    """The next medical record number, like ``MRN-000123``."""
    return f"MRN-{next_value(session, 'mrn'):06d}"

"""Paging and sorting in SQL, for every table the UI shows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

import sqlalchemy as sa
from sqlmodel import Session

T = TypeVar("T")
MAX_PAGE_SIZE = 100


@dataclass(frozen=True)
class Page(Generic[T]):
    rows: list[T]
    total: int
    page: int
    page_size: int

    @property
    def page_count(self) -> int:
        return max(1, -(-self.total // self.page_size))


def clamp_page(page: object, page_size: object = 20) -> tuple[int, int]:
    """Coerce client-given paging into safe integers."""
    try:
        page_number = max(1, min(int(page), 1_000_000))
    except (TypeError, ValueError, OverflowError):  # OverflowError: an infinite float
        page_number = 1
    try:
        size = max(1, min(int(page_size), MAX_PAGE_SIZE))
    except (TypeError, ValueError, OverflowError):
        size = 20
    return page_number, size


def order_by(columns: dict[str, sa.ColumnElement], sort: object, descending: object, default: str):
    """An ORDER BY taken from a fixed list of columns; unknown names fall back to ``default``."""
    column = columns.get(str(sort), columns[default])
    return column.desc() if bool(descending) else column.asc()


def fetch_page(session: Session, query: sa.Select, *, page: int, page_size: int):
    """The total row count and the rows of one page of ``query``."""
    total = session.execute(sa.select(sa.func.count()).select_from(query.order_by(None).subquery())).scalar_one()
    rows = session.execute(query.offset((page - 1) * page_size).limit(page_size)).all()
    return total, rows

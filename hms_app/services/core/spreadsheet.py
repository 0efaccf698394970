"""CSV for spreadsheets: every export's text cells are defused against formulas (CSV injection)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import fields
from typing import Any


def csv_safe(text: str) -> str:
    """Defuse spreadsheet formulas in free text (CSV injection)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def rows_to_csv(row_type: type, rows: Sequence[Any]) -> str:
    """Rows of a report (dataclasses) as CSV text: one column per field, money in integer cents.

    Text cells are defused against spreadsheet formulas (department, doctor and test names
    are typed by people).
    """
    names = [f.name for f in fields(row_type)]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(names)
    for row in rows:
        writer.writerow([_csv_cell(getattr(row, name)) for name in names])
    return buffer.getvalue()


def _csv_cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, str):
        return csv_safe(value)
    return value

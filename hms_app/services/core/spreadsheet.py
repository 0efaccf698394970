"""CSV for spreadsheets: every export's text cells are defused against formulas (CSV injection)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import fields
from typing import Any

from hms_app.services.core.language import N_, _

COLUMN_NAMES = {
    "age": N_("Age"), "appointments": N_("Appointments"), "available_slots": N_("Slots offered"),
    "average_minutes": N_("Average minutes"), "billed_cents": N_("Billed (cents)"), "booked": N_("Booked"),
    "charges": N_("Charges"), "collected_cents": N_("Collected (cents)"), "department": N_("Department"),
    "dispensations": N_("Dispensations"), "dispensed_value_cents": N_("Dispensed value (cents)"),
    "doctor": N_("Doctor"), "invoices": N_("Invoices"), "kind": N_("Kind of service"),
    "longest_minutes": N_("Longest minutes"), "method": N_("Payment method"), "month": N_("Month"),
    "new_patients": N_("New patients"), "outstanding_cents": N_("Outstanding (cents)"), "payer": N_("Payer"),
    "payments": N_("Payments"), "period": N_("Period"), "priority": N_("Priority"),
    "received_cents": N_("Received (cents)"), "refunded_cents": N_("Refunded (cents)"), "results": N_("Results"),
    "status": N_("Status"), "stock_value_cents": N_("Stock value (cents)"), "test": N_("Test"),
    "test_code": N_("Test code"), "units_dispensed": N_("Units dispensed"),
    "utilisation_percent": N_("Utilisation (%)"),
}
"""The header of a report's column, by the row's field name, in English; written in the reader's
language. A field not listed is headed by its own name."""


def csv_safe(text: str) -> str:
    """Defuse spreadsheet formulas in free text (CSV injection)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def rows_to_csv(row_type: type, rows: Sequence[Any]) -> str:
    """Rows of a report (dataclasses) as CSV text: one column per field, headed in the reader's
    language (``COLUMN_NAMES``), money in integer cents.

    Text cells are defused against spreadsheet formulas (department, doctor and test names
    are typed by people).
    """
    names = [f.name for f in fields(row_type)]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([_(COLUMN_NAMES[name]) if name in COLUMN_NAMES else name for name in names])
    for row in rows:
        writer.writerow([_csv_cell(getattr(row, name)) for name in names])
    return buffer.getvalue()


def _csv_cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, str):
        return csv_safe(value)
    return value

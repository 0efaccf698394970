"""Ranges of days of the hospital's calendar, and the local day or month of a UTC timestamp in SQL.

The hospital's reports and the accounts dashboard share them. A range of days is the UTC
span from local midnight before its first day to local midnight after its last, and each row
is put in its local day or month by ``local_period``: PostgreSQL converts with its own
time-zone data; SQLite, which has none, shifts each instant by the zone's UTC offset at that
instant, an offset that is constant between the zone's transitions, which are found in
Python for the range. Daylight-saving changes are therefore bucketed alike on both databases.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from hms_app import settings
from hms_app.services.core.errors import ValidationError
from hms_app.services.core.language import N_, _
from hms_app.services.core.localtime import day_span_utc, format_date

MAX_RANGE_DAYS = 366
DAILY_UP_TO_DAYS = 92
"""Ranges up to this many days are charted per day; longer ones per month."""
EARLIEST_DAY = date(2000, 1, 1)
LATEST_DAY = date(2099, 12, 31)
_SQLITE_FORMATS = {"day": "%Y-%m-%d", "month": "%Y-%m"}
_POSTGRES_FORMATS = {"day": "YYYY-MM-DD", "month": "YYYY-MM"}


@dataclass(frozen=True)
class ReportRange:
    """Days ``first_day`` to ``last_day`` of the hospital's calendar, both included."""

    first_day: date
    last_day: date
    starts_at: datetime
    """UTC instant of local midnight at the start of ``first_day``."""
    ends_at: datetime
    """UTC instant of local midnight at the end of ``last_day`` (excluded)."""
    per: str
    """The period of the reports over time: ``day`` or ``month``."""

    @property
    def days(self) -> int:
        return (self.last_day - self.first_day).days + 1

    @property
    def label(self) -> str:
        return f"{_day_label(self.first_day)} – {_day_label(self.last_day)}"

    @property
    def periods(self) -> list[str]:
        """Every day or month (``per``) of the range, labelled as the report rows label them."""
        return periods_of(self, self.per)


def _day_label(day: date) -> str:
    return format_date(day)


_DAY_MESSAGES = {
    "start": (N_("Enter the start date, like 2026-01-31."), N_("The start date must look like 2026-01-31."),
              N_("The start date must be between {first} and {last}.")),
    "end": (N_("Enter the end date, like 2026-01-31."), N_("The end date must look like 2026-01-31."),
            N_("The end date must be between {first} and {last}.")),
}
"""What is wrong with the range's start or end date, whole sentences for the translations: empty,
not a date, out of the years a report covers."""


def _parse_day(value: object, end: str) -> date:
    """The ``start`` or ``end`` (``end``) date of a range, validated."""
    empty, malformed, out_of_range = _DAY_MESSAGES[end]
    text = str(value if value is not None else "").strip()
    if not text:
        raise ValidationError(_(empty))
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise ValidationError(_(malformed)) from None
    if not EARLIEST_DAY <= day <= LATEST_DAY:
        raise ValidationError(_(out_of_range).format(first=EARLIEST_DAY.year, last=LATEST_DAY.year))
    return day


def parse_report_range(start: object, end: object) -> ReportRange:
    """The range of a report from the form's two dates (ISO, like 2026-01-31), validated."""
    first, last = _parse_day(start, "start"), _parse_day(end, "end")
    if first > last:
        raise ValidationError(_("The start date must not be after the end date."))
    if (last - first).days + 1 > MAX_RANGE_DAYS:
        raise ValidationError(_("A report covers at most {days} days; choose a shorter range.").format(days=MAX_RANGE_DAYS))
    starts_at = day_span_utc(first)[0]
    ends_at = day_span_utc(last)[1]
    per = "day" if (last - first).days + 1 <= DAILY_UP_TO_DAYS else "month"
    return ReportRange(first, last, starts_at, ends_at, per)


def periods_of(window: ReportRange, per: str) -> list[str]:
    """Every period of the range, as ``local_period`` labels them, in order."""
    if per == "day":
        return [(window.first_day + timedelta(days=i)).isoformat() for i in range(window.days)]
    months, year, month = [], window.first_day.year, window.first_day.month
    while (year, month) <= (window.last_day.year, window.last_day.month):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def _offset_seconds(instant: datetime) -> int:
    return int(instant.astimezone(settings.TIMEZONE).utcoffset().total_seconds())


def utc_offset_pieces(starts_at: datetime, ends_at: datetime) -> list[tuple[datetime, int]]:
    """The hospital zone's UTC offset over ``[starts_at, ends_at)``: (from instant, seconds).

    The first piece starts at ``starts_at``; each further one at a transition, found to the
    second. Zones change their offset at most once a day, so each day is checked at its ends.
    """
    epoch = datetime(1970, 1, 1, tzinfo=UTC)

    def offset_at(second: int) -> int:
        return _offset_seconds(epoch + timedelta(seconds=second))

    start = int((starts_at - epoch).total_seconds())
    stop = int((ends_at - epoch).total_seconds())
    pieces = [(start, offset_at(start))]
    cursor = start
    while cursor < stop:
        step = min(cursor + 86_400, stop)
        if offset_at(step) != offset_at(cursor):
            low, high = cursor, step  # offset_at(low) is the old offset, offset_at(high) the new
            while high - low > 1:
                middle = (low + high) // 2
                low, high = (middle, high) if offset_at(middle) == offset_at(low) else (low, middle)
            if high < stop:
                pieces.append((high, offset_at(high)))
        cursor = step
    return [(epoch + timedelta(seconds=second), offset) for second, offset in pieces]


def local_period(session: Session, column: Any, window: ReportRange, per: str) -> sa.ColumnElement[str]:
    """The local day (``2026-03-29``) or month (``2026-03``) of a UTC timestamp column.

    Correct only for instants inside ``window``, which every report filters on.
    """
    return local_period_between(session.get_bind().dialect.name, column, window.starts_at, window.ends_at, per)


def local_period_between(dialect: str, column: Any, starts_at: datetime, ends_at: datetime,
                         per: str) -> sa.ColumnElement[str]:
    """``local_period`` on a database of ``dialect`` for instants in ``[starts_at, ends_at)``,
    any span long (the daily totals' recount covers every day on record)."""
    if dialect == "postgresql":
        return sa.func.to_char(sa.func.timezone(settings.TIMEZONE.key, column), _POSTGRES_FORMATS[per])
    pieces = utc_offset_pieces(starts_at, ends_at)
    modifiers = [f"{offset:+d} seconds" for _since, offset in pieces]
    if len(pieces) == 1:
        shift: Any = sa.literal(modifiers[0])
    else:
        shift = sa.case(*[(column < since, modifier) for (since, _offset), modifier in zip(pieces[1:], modifiers, strict=False)],
                        else_=modifiers[-1])
    return sa.func.strftime(_SQLITE_FORMATS[per], column, shift)


def within(column: Any, window: ReportRange) -> sa.ColumnElement[bool]:
    """``column`` (a UTC timestamp) falls inside the range."""
    return sa.and_(column >= window.starts_at, column < window.ends_at)

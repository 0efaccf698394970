"""The hospital's clock: instants are stored in UTC and read on the wall clock of ``settings.TIMEZONE``.

Every service that shows a time, asks what day it is in the hospital or turns a local day
into the UTC instants that bound it does it here, so the rule is written once.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from hms_app import settings
from hms_app.db.types import utcnow

MINUTE = "%Y-%m-%d %H:%M"
"""The usual way a time is shown in tables: ``2026-03-29 14:05``."""
DAY_AND_TIME = "%a %d %b %Y, %H:%M"
"""An appointment's time in a sentence or a notification: ``Sun 29 Mar 2026, 14:05``."""


def to_local(instant: datetime) -> datetime:
    """``instant`` on the hospital's wall clock."""
    return instant.astimezone(settings.TIMEZONE)


def local_date(instant: datetime) -> date:
    """The hospital's calendar day that ``instant`` falls on."""
    return to_local(instant).date()


def local_today() -> date:
    """Today in the hospital's calendar (not the server's, not UTC's)."""
    return local_date(utcnow())


def local_midnight(day: date) -> datetime:
    """Local midnight at the start of ``day``, as an aware datetime in the hospital's zone."""
    return datetime.combine(day, time.min, tzinfo=settings.TIMEZONE)


def day_span_utc(day: date) -> tuple[datetime, datetime]:
    """The UTC instants of local midnight at the start and the end of ``day``."""
    return local_midnight(day).astimezone(UTC), local_midnight(day + timedelta(days=1)).astimezone(UTC)


def format_local(instant: datetime | None, fmt: str = MINUTE) -> str:
    """``instant`` as the hospital's wall clock shows it, in ``fmt`` (strftime); "" when there is none."""
    return to_local(instant).strftime(fmt) if instant else ""

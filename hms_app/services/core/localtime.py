"""The hospital's clock and calendar: instants are stored in UTC, read on the wall clock of
``settings.TIMEZONE`` and written the way the current language's locale writes them
(``language.current_locale``: the hospital's ``settings.LOCALE`` for its own language).

Every service that shows a date or a time, asks what day it is in the hospital or turns a local
day into the UTC instants that bound it does it here, so the rule is written once
(STYLE.md rule 14). Machines get ISO 8601 (``isoformat``); people get the functions below.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from babel import dates as babel_dates

from hms_app import settings
from hms_app.db.types import utcnow
from hms_app.services.core import language

DATE_STYLES = {
    "medium": "yMMMd",  # 7 Dec 2026 · Dec 7, 2026 · 07.12.2026
    "weekday": "yMMMEd",  # Mon, 7 Dec 2026
    "short_weekday": "MMMEd",  # Mon 7 Dec, this year's days in a list
    "day_month": "MMMd",  # 7 Dec, a chart's ticks
    "month": "yMMM",  # Dec 2026, a report's period
}
"""The ways a date is written, as CLDR skeletons the locale turns into its own order and punctuation."""


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


def _day(value: date | datetime) -> date:
    return local_date(value) if isinstance(value, datetime) else value


def format_date(value: date | datetime | None, style: str = "medium") -> str:
    """A calendar day (or the hospital's day of an instant) in the locale: ``7 Dec 2026``; "" for none.

    ``style`` is one of ``DATE_STYLES``.
    """
    if value is None:
        return ""
    return babel_dates.format_skeleton(DATE_STYLES[style], _day(value), locale=language.current_locale())


def _time_skeleton(seconds: bool) -> str:
    # The locale's own clock: 24-hour where its short time pattern says so, 12-hour with a.m./p.m. otherwise.
    hour = "H" if "H" in babel_dates.get_time_format("short", locale=language.current_locale()).pattern else "h"
    return hour + ("ms" if seconds else "m")


def format_time(instant: datetime | time | None, *, seconds: bool = False) -> str:
    """The hospital's wall-clock time of ``instant`` (or a clock time such as a schedule's start):
    ``15:00`` (en-GB), ``3:00 PM`` (en-US); "" for none."""
    if instant is None:
        return ""
    clock = instant if isinstance(instant, time) else to_local(instant).replace(tzinfo=None).time()
    return babel_dates.format_skeleton(_time_skeleton(seconds), clock, locale=language.current_locale())


def _date_and_time(day_text: str, time_text: str) -> str:
    return babel_dates.get_datetime_format("medium", locale=language.current_locale()).format(time_text, day_text)


def format_local(instant: datetime | None, *, seconds: bool = False, zone: bool = False) -> str:
    """Date and time of ``instant`` on the hospital's wall clock: ``7 Dec 2026, 15:00``; "" for none.

    ``zone`` adds the zone's abbreviation (``GMT``, ``BST``) for printed records read elsewhere.
    """
    if instant is None:
        return ""
    text = _date_and_time(format_date(instant), format_time(instant, seconds=seconds))
    return f"{text} {to_local(instant).tzname()}" if zone else text


def format_day_and_time(instant: datetime | None) -> str:
    """An appointment's time in a sentence or a notification: ``Thu, 10 Dec 2026, 15:00``."""
    if instant is None:
        return ""
    return _date_and_time(format_date(instant, "weekday"), format_time(instant))


def format_period(period: str) -> str:
    """A report's period key as people read it: ``2026-03-29`` as ``29 Mar 2026``, ``2026-03`` as ``Mar 2026``."""
    if len(period) == 7:
        return format_date(date.fromisoformat(period + "-01"), "month")
    return format_date(date.fromisoformat(period))


def relative_day(value: date | datetime, *, today: date | None = None) -> str:
    """``Today``, ``Tomorrow`` or ``Yesterday`` in the locale's words; else ``Thu 10 Dec`` (and the
    year when it is not this year's)."""
    day, today = _day(value), today or local_today()
    words = language.current_locale()._data["date_fields"]["day"]["relative"]  # CLDR's names for nearby days
    offset = (day - today).days
    if offset in (-1, 0, 1) and offset in words:
        word = words[offset]
        return word[:1].upper() + word[1:]
    return format_date(day, "short_weekday" if day.year == today.year else "weekday")


def format_time_range(start: datetime, end: datetime) -> str:
    """From ``start`` to ``end`` on one day's wall clock: ``15:00–15:20`` (en-GB), ``3:00 – 3:20 PM`` (en-US)."""
    return babel_dates.format_interval(to_local(start).replace(tzinfo=None).time(),
                                       to_local(end).replace(tzinfo=None).time(),
                                       _time_skeleton(False), locale=language.current_locale())


def format_when(start: datetime, end: datetime | None = None, *, today: date | None = None) -> str:
    """Where an appointment (or any time) is listed: ``Today 15:00–15:20``, ``Tomorrow 09:00–09:20``,
    ``Thu 10 Dec 15:00–15:20``; never a time without its day."""
    times = format_time_range(start, end) if end else format_time(start)
    return f"{relative_day(start, today=today)} {times}"


def parse_local_date(value: object) -> date | None:
    """A day typed as ISO (``2026-12-07``) or in the locale's short form (``07/12/2026`` in en-GB,
    ``12/7/2026`` in en-US, ``07.12.2026`` in de-DE); ``None`` when it is neither."""
    text = str(value or "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        pass
    if not any(ch.isdigit() for ch in text) or not any(not ch.isdigit() for ch in text):
        return None
    try:
        day = babel_dates.parse_date(text, locale=language.current_locale(), format="short")
    except (ValueError, IndexError):
        return None
    # Babel reads a two-digit year as given: 07/12/26 is 2026, not year 26.
    return day.replace(year=day.year + 2000) if day.year < 100 else day

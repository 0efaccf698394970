"""The hospital's clock and calendar (``core.localtime``): the one place a date or a time is read on
the local wall clock and written in the locale of ``HMS_LOCALE``."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime, time

import pytest
from babel import Locale

from hms_app import settings
from hms_app.services.core import localtime
from hms_app.services.core.language import use_language


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture(params=["en_GB", "en_US", "de_DE"])
def locale(request, monkeypatch) -> str:
    monkeypatch.setattr(settings, "LOCALE", Locale.parse(request.param))
    return request.param


def by_locale(locale: str, **expected: str) -> str:
    return expected[locale]


def test_the_default_locale_is_british_english():
    assert str(settings.LOCALE) == "en_GB"


def test_format_local_shows_the_hospital_wall_clock_across_daylight_saving():
    assert settings.TIMEZONE.key == "Europe/London"
    assert localtime.format_local(utc(2027, 1, 15, 9, 30)) == "15 Jan 2027, 09:30"  # GMT
    assert localtime.format_local(utc(2027, 7, 15, 9, 30)) == "15 Jul 2027, 10:30"  # BST
    assert localtime.format_date(utc(2027, 7, 15, 23, 30)) == "16 Jul 2027"  # already tomorrow in London
    assert localtime.format_local(utc(2027, 7, 15, 9), zone=True) == "15 Jul 2027, 10:00 BST"
    assert localtime.format_local(utc(2027, 7, 15, 9, 0, 5), seconds=True) == "15 Jul 2027, 10:00:05"


def test_nothing_to_show_is_empty():
    assert localtime.format_local(None) == ""
    assert localtime.format_date(None) == ""
    assert localtime.format_time(None) == ""
    assert localtime.format_day_and_time(None) == ""


def test_dates_follow_the_locale(locale):
    day = date(2026, 12, 7)
    assert localtime.format_date(day) == by_locale(locale, en_GB="7 Dec 2026", en_US="Dec 7, 2026",
                                                   de_DE="7. Dez. 2026")
    assert localtime.format_date(day, "weekday") == by_locale(
        locale, en_GB="Mon, 7 Dec 2026", en_US="Mon, Dec 7, 2026", de_DE="Mo., 7. Dez. 2026")
    assert localtime.format_date(day, "month") == by_locale(locale, en_GB="Dec 2026", en_US="Dec 2026",
                                                            de_DE="Dez. 2026")
    assert localtime.format_period("2026-12") == localtime.format_date(day, "month")
    assert localtime.format_period("2026-12-07") == localtime.format_date(day)


def test_times_follow_the_locale_clock(locale):
    instant = utc(2026, 12, 10, 15, 0)
    assert localtime.format_time(instant) == by_locale(locale, en_GB="15:00", en_US="3:00 PM",
                                                       de_DE="15:00")
    assert localtime.format_time(time(9, 5)) == by_locale(locale, en_GB="09:05", en_US="9:05 AM",
                                                          de_DE="09:05")
    assert localtime.format_local(instant) == by_locale(
        locale, en_GB="10 Dec 2026, 15:00", en_US="Dec 10, 2026, 3:00 PM", de_DE="10. Dez. 2026, 15:00")
    assert localtime.format_day_and_time(instant) == by_locale(
        locale, en_GB="Thu, 10 Dec 2026, 15:00", en_US="Thu, Dec 10, 2026, 3:00 PM",
        de_DE="Do., 10. Dez. 2026, 15:00")


def test_a_listed_time_always_carries_its_day(locale):
    """Issue 16 item 5: "15:00–15:20" alone was next Thursday; today and tomorrow say so."""
    start, end, monday = utc(2026, 12, 10, 15, 0), utc(2026, 12, 10, 15, 20), date(2026, 12, 7)
    assert localtime.format_when(start, end, today=date(2026, 12, 10)) == by_locale(
        locale, en_GB="Today 15:00–15:20", en_US="Today 3:00\u2009–\u20093:20\u202fPM", de_DE="Heute 15:00–15:20 Uhr")
    assert localtime.format_when(start, end, today=date(2026, 12, 9)) == by_locale(
        locale, en_GB="Tomorrow 15:00–15:20", en_US="Tomorrow 3:00\u2009–\u20093:20\u202fPM",
        de_DE="Morgen 15:00–15:20 Uhr")
    assert localtime.format_when(start, end, today=monday) == by_locale(
        locale, en_GB="Thu 10 Dec 15:00–15:20", en_US="Thu, Dec 10 3:00\u2009–\u20093:20\u202fPM",
        de_DE="Do., 10. Dez. 15:00–15:20 Uhr")
    assert localtime.relative_day(date(2026, 12, 6), today=monday) == by_locale(
        locale, en_GB="Yesterday", en_US="Yesterday", de_DE="Gestern")
    # Another year's day names its year.
    assert "2027" in localtime.format_when(utc(2027, 1, 5, 9), today=monday)


@pytest.mark.parametrize(("language", "day", "moment", "today"), [
    ("es", "7 dic 2026", "15 ene 2027, 9:30", "Hoy"),
    ("ar", "7 ديسمبر 2026", "15 يناير 2027، 9:30 ص", "اليوم"),
])
def test_dates_and_times_follow_the_reader_language(language, day, moment, today):
    with use_language(language):
        assert localtime.format_date(date(2026, 12, 7)) == day
        assert localtime.format_local(utc(2027, 1, 15, 9, 30)) == moment  # still the hospital's wall clock
        assert localtime.relative_day(date(2026, 12, 7), today=date(2026, 12, 7)) == today
    assert localtime.format_date(date(2026, 12, 7)) == "7 Dec 2026"


def test_relative_days_follow_the_hospital_calendar_not_utc():
    # 23:30 UTC on 9 July is 00:30 on 10 July in London: "Tomorrow" seen from 9 July.
    assert localtime.relative_day(utc(2027, 7, 9, 23, 30), today=date(2027, 7, 9)) == "Tomorrow"


def test_a_typed_date_is_read_as_iso_or_the_locale_short_form(locale):
    assert localtime.parse_local_date("2026-12-07") == date(2026, 12, 7)
    typed = by_locale(locale, en_GB="07/12/2026", en_US="12/07/2026", de_DE="07.12.2026")
    assert localtime.parse_local_date(typed) == date(2026, 12, 7)
    for nonsense in ("", "   ", "tomorrow", "1234", "31/31/2026", None):
        assert localtime.parse_local_date(nonsense) is None


def test_local_date_and_today_follow_the_hospital_calendar(monkeypatch):
    assert localtime.local_date(utc(2027, 6, 30, 23, 30)) == date(2027, 7, 1)  # 00:30 BST
    assert localtime.local_date(utc(2027, 12, 31, 23, 30)) == date(2027, 12, 31)  # GMT
    monkeypatch.setattr(localtime, "utcnow", lambda: utc(2027, 6, 30, 23, 30))
    assert localtime.local_today() == date(2027, 7, 1)


def test_day_span_is_local_midnight_to_local_midnight_in_utc():
    assert localtime.day_span_utc(date(2027, 7, 1)) == (utc(2027, 6, 30, 23), utc(2027, 7, 1, 23))
    assert localtime.day_span_utc(date(2027, 3, 28)) == (utc(2027, 3, 28), utc(2027, 3, 28, 23))  # 23 hours
    assert localtime.day_span_utc(date(2027, 10, 31)) == (utc(2027, 10, 30, 23), utc(2027, 11, 1))  # 25 hours
    assert localtime.local_midnight(date(2027, 7, 1)) == utc(2027, 6, 30, 23)
    assert localtime.local_midnight(date(2027, 7, 1)).tzinfo == settings.TIMEZONE


@pytest.mark.parametrize("tag", ["en-US", "de-DE", "fr_FR"])
def test_hms_locale_chooses_the_locale(tag):
    out = subprocess.run([sys.executable, "-c", "from hms_app import settings; print(settings.LOCALE)"],
                         env={"HMS_LOCALE": tag, "PATH": ""}, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == tag.replace("-", "_")


def test_an_unknown_locale_stops_the_start_with_a_clear_message():
    out = subprocess.run([sys.executable, "-c", "import hms_app.settings"],
                         env={"HMS_LOCALE": "xx-NOPE", "PATH": ""}, capture_output=True, text=True)
    assert out.returncode != 0
    assert "HMS_LOCALE='xx-NOPE' is not a locale" in out.stderr
    assert "Traceback" not in out.stderr

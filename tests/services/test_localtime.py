"""The hospital's clock (``core.localtime``): the one place a time is read on the local wall clock."""

from __future__ import annotations

from datetime import UTC, date, datetime

from hms_app import settings
from hms_app.services.core import localtime


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_format_local_shows_the_hospital_wall_clock_across_daylight_saving():
    assert settings.TIMEZONE.key == "Europe/London"
    assert localtime.format_local(utc(2027, 1, 15, 9, 30)) == "2027-01-15 09:30"  # GMT
    assert localtime.format_local(utc(2027, 7, 15, 9, 30)) == "2027-07-15 10:30"  # BST
    assert localtime.format_local(utc(2027, 7, 15, 23, 30), "%Y-%m-%d") == "2027-07-16"
    assert localtime.format_local(utc(2027, 3, 24, 9), localtime.DAY_AND_TIME) == "Wed 24 Mar 2027, 09:00"
    assert localtime.format_local(utc(2027, 7, 15, 9), "%H:%M %Z") == "10:00 BST"


def test_format_local_of_no_instant_is_empty():
    assert localtime.format_local(None) == ""
    assert localtime.format_local(None, localtime.DAY_AND_TIME) == ""


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

"""Money and numbers (``core.numbers``): written in the hospital's currency and ``HMS_LOCALE``, read back
from what people type and from what ``format_money`` wrote."""

from __future__ import annotations

import pytest
from babel import Locale

from hms_app import settings
from hms_app.services.core.errors import ValidationError
from hms_app.services.core.language import use_language
from hms_app.services.core.numbers import (
    format_money,
    format_number,
    format_percent,
    money_axis,
    parse_money,
)


@pytest.fixture(params=["en_GB", "en_US", "de_DE"])
def locale(request, monkeypatch) -> str:
    monkeypatch.setattr(settings, "LOCALE", Locale.parse(request.param))
    return request.param


def test_money_is_written_in_the_hospital_currency_and_the_locale(locale):
    expected = {"en_GB": ("£1,234.50", "−£5.00", "£0.00"), "en_US": ("£1,234.50", "−£5.00", "£0.00"),
                "de_DE": ("1.234,50\xa0£", "−5,00\xa0£", "0,00\xa0£")}[locale]
    assert (format_money(123450), format_money(-500), format_money(0)) == expected


def test_the_currency_comes_from_the_setting(monkeypatch):
    monkeypatch.setattr(settings, "CURRENCY", "EUR")
    monkeypatch.setattr(settings, "LOCALE", Locale.parse("de_DE"))
    assert format_money(123450) == "1.234,50\xa0€"
    assert parse_money("1.234,50 €", "fee") == 123450
    assert parse_money("12,50", "fee") == parse_money("12.50", "fee") == 1250


def test_numbers_and_percentages_follow_the_locale(locale):
    assert format_number(1234567) == {"en_GB": "1,234,567", "en_US": "1,234,567", "de_DE": "1.234.567"}[locale]
    assert format_number(2.5, decimals=1) == {"en_GB": "2.5", "en_US": "2.5", "de_DE": "2,5"}[locale]
    assert format_percent(1, 3) == {"en_GB": "33%", "en_US": "33%", "de_DE": "33\xa0%"}[locale]
    assert format_percent(1, 0) == "–"


def test_what_format_money_wrote_reads_back(locale):
    for cents in (0, 5, 1250, 123450, 10_000_000):
        assert parse_money(format_money(cents), "amount") == cents


@pytest.mark.parametrize(("typed", "cents"), [("120", 12000), ("120.5", 12050), ("120.50", 12050),
                                              ("1,234.50", 123450), ("1,234", 123400),
                                              (" £ 7 ", 700)])
def test_amounts_are_read_as_people_type_them(typed, cents):
    assert parse_money(typed, "amount") == cents


@pytest.mark.parametrize("typed", ["", "abc", "-5", "1.2.3", "1,23,4.00", "1000000.01", "1.234", "12,50"])
def test_a_bad_amount_is_refused_with_a_clear_message(typed):
    with pytest.raises(ValidationError, match="amount"):
        parse_money(typed, "amount")


def test_a_money_axis_reads_like_format_money(locale):
    axis = money_axis()
    assert axis["separators"] == {"en_GB": ".,", "en_US": ".,", "de_DE": ",."}[locale]
    assert (axis["tickprefix"], axis["ticksuffix"].strip("\xa0")) == (("", "£") if locale == "de_DE" else ("£", ""))


@pytest.mark.parametrize(("language", "money", "number"), [("es", "1.234,50\xa0GBP", "1.234.567"),
                                                           ("ar", "\u200f1,234.50\xa0UK£", "1,234,567")])
def test_money_and_numbers_follow_the_reader_language(language, money, number):
    with use_language(language):
        assert (format_money(123450), format_number(1234567)) == (money, number)
        assert parse_money(format_money(123450), "amount") == 123450  # read back as written, marks and all
    assert format_money(123450) == "£1,234.50"  # the hospital's own, outside the block

"""Charts in the reader's language and direction: right to left, every figure is mirrored in the
one place every figure builder ends in (``figures.in_reading_direction``)."""

from __future__ import annotations

import io

import pytest
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.support import Translations

from hms_app.components import finance_figures, report_figures
from hms_app.components.figures import in_reading_direction, vitals_figure
from hms_app.services.care.clinical import VitalsPoint
from hms_app.services.core import language
from hms_app.services.core.language import use_language
from hms_app.services.reporting.reports import DoctorUtilisation, NewPatientsMonth, PharmacyPeriod
from tests.components.plotly_json import checked

MONTHS = [NewPatientsMonth("2025-02", 1), NewPatientsMonth("2025-03", 4)]
ARABIC = {"Month": "الشهر", "New patients per month": "المرضى الجدد شهريًا"}


@pytest.fixture
def arabic_catalogue(monkeypatch):
    """A small Arabic catalogue in place of the shipped one: the figures' own texts, not the
    catalogue's contents, are under test here."""
    catalog = Catalog(locale="ar")
    for english, arabic in ARABIC.items():
        catalog.add(english, arabic)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    arabic, shipped = Translations(compiled), language.translations
    monkeypatch.setattr(language, "translations", lambda code: arabic if code == "ar" else shipped(code))


def test_right_to_left_a_chart_is_mirrored_and_in_arabic(arabic_catalogue):
    with use_language("ar"):
        figure = report_figures.new_patients_figure(MONTHS)
    layout = checked(figure).layout
    assert layout.xaxis.title.text == "الشهر"
    assert layout.title.text == "المرضى الجدد شهريًا"
    assert layout.xaxis.autorange == "reversed"  # the first month at the right edge
    assert layout.yaxis.side == "right"
    assert (layout.title.x, layout.title.xanchor) == (1, "right")
    assert (layout.legend.x, layout.legend.xanchor) == (1, "right")
    assert layout.hoverlabel.align == "right"


def test_left_to_right_a_chart_stays_as_it_was():
    with use_language("en"):
        figure = report_figures.new_patients_figure(MONTHS)
    layout = checked(figure).layout
    assert layout.xaxis.title.text == "Month"
    assert layout.xaxis.autorange is None
    assert layout.yaxis.side is None
    assert (layout.title.x, layout.title.xanchor) == (0, "left")
    assert layout.legend.x == 0


def test_right_to_left_every_kind_of_axis_turns_round():
    doctors = [DoctorUtilisation("Dr. A", "Cardiology", 89, 3, 3.4)]
    left_to_right = checked(report_figures.utilisation_figure(doctors)).layout.xaxis.range
    with use_language("ar"):
        utilisation = report_figures.utilisation_figure(doctors)
        pharmacy = report_figures.pharmacy_figure([PharmacyPeriod("2025-03-29", 1, 2, 300, 4000)], "day")
        vitals = vitals_figure([VitalsPoint("1 Oct 2026", 120, 80, 70, None, None, None),
                                VitalsPoint("1 Nov 2026", 125, 82, None, None, None, None)])
    # A set range is turned round (Plotly would ignore a reversed autorange beside it).
    assert checked(utilisation).layout.xaxis.range == tuple(reversed(left_to_right))
    # The second y axis moves to the left as the first moves to the right.
    assert (checked(pharmacy).layout.yaxis.side, checked(pharmacy).layout.yaxis2.side) == ("right", "left")
    # Every stacked panel's x axis runs from the right; the margins swap with the y axes.
    vitals_layout = checked(vitals).layout
    assert {vitals_layout[f"xaxis{n}"].autorange for n in ("", "2")} == {"reversed"}
    assert (vitals_layout.margin.l, vitals_layout.margin.r) == (10, 70)


def test_right_to_left_the_accounts_legend_keeps_to_the_right():
    figure = finance_figures._figure([], "Revenue", legend=True, xaxis={"type": "category"}, yaxis={})
    assert in_reading_direction(figure) is figure  # English: unchanged
    with use_language("ar"):
        mirrored = finance_figures._figure([], "Revenue", legend=True, xaxis={"type": "category"}, yaxis={})
    layout = checked(mirrored).layout
    assert (layout.legend.x, layout.legend.xanchor, layout.legend.traceorder) == (1, "right", "reversed")
    assert (layout.margin.l, layout.margin.r) == (16, 60)

"""The starting lab catalog: common tests, in ``LabTest`` fields, with reference ranges.

Sources. Adult ranges are the UK Pathology Harmony ranges where Harmony set one (sodium,
potassium, urea, bilirubin, haemoglobin, white cells, platelets); glucose, HbA1c and lipids
follow the WHO, NICE and NHS thresholds named beside them; the others are the usual ranges of
the common analyser methods (hs-troponin T: the manufacturer's 99th percentile and the ESC
2020 NSTE-ACS rule-in value). Paediatric bands, where they differ from adults', are rounded
approximations of published paediatric intervals (the Harriet Lane Handbook; CALIPER).
Critical (telephone) limits are typical alert thresholds. A laboratory must verify every range
against its own methods and population before use, and may edit them in the catalog.

Ranges. ``ranges`` is a list of bands ``{sex, age_min, age_max, low, high}``: ``sex`` is
"any", "female" or "male"; ages are whole years, ``age_min`` inclusive and ``age_max``
exclusive, 200 meaning no upper limit. For a numeric test the bands cover every age from 0
for both sexes exactly once. A ``low`` of 0 means no lower limit ("below 5 mg/L"). Ages are
whole years, so the 0-1 band is for infants past the neonatal weeks, whose values change by
the day and are left to the laboratory's judgement.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

NO_AGE_LIMIT = 200


def _band(low: float, high: float, age_min: int = 0, age_max: int = NO_AGE_LIMIT, sex: str = "any") -> dict:
    return {"sex": sex, "age_min": age_min, "age_max": age_max, "low": low, "high": high}


def _by_sex(female: tuple[float, float], male: tuple[float, float], age_min: int, age_max: int = NO_AGE_LIMIT) -> list[dict]:
    return [_band(*female, age_min, age_max, "female"), _band(*male, age_min, age_max, "male")]


def _test(code, name, specimen, unit, price_cents, ranges=None, critical_low=None, critical_high=None) -> dict:
    return {
        "code": code, "name": name, "specimen": specimen, "unit": unit, "price_cents": price_cents,
        "numeric": ranges is not None, "ranges": ranges or [],
        "critical_low": critical_low, "critical_high": critical_high,
    }


LAB_TESTS: tuple[dict, ...] = (
    # Haematology
    _test("HGB", "Haemoglobin", "Blood (EDTA)", "g/L", 600, [
        _band(105, 140, 0, 2), _band(115, 135, 2, 6), _band(115, 155, 6, 12),
        *_by_sex((120, 160), (130, 160), 12, 18),
        *_by_sex((115, 165), (130, 180), 18),
    ], critical_low=70, critical_high=200),
    _test("WBC", "White cell count", "Blood (EDTA)", "x10^9/L", 600, [
        _band(6.0, 17.5, 0, 1), _band(6.0, 17.0, 1, 4), _band(4.5, 14.5, 4, 10),
        _band(4.5, 13.0, 10, 18), _band(4.0, 11.0, 18),
    ], critical_low=2.0, critical_high=30.0),
    _test("PLT", "Platelet count", "Blood (EDTA)", "x10^9/L", 600, [
        _band(150, 450, 0, 18), _band(150, 400, 18),
    ], critical_low=20, critical_high=1000),
    # INR without anticoagulation; the warfarin target (usually 2.0-3.0) is the prescriber's.
    _test("INR", "Prothrombin time (INR)", "Blood (sodium citrate)", "ratio", 800, [
        _band(0.8, 1.2),
    ], critical_high=5.0),
    # Renal
    _test("NA", "Sodium", "Serum", "mmol/L", 500, [_band(133, 146)], critical_low=120, critical_high=160),
    _test("K", "Potassium", "Serum", "mmol/L", 500, [
        _band(3.5, 6.0, 0, 1), _band(3.4, 4.7, 1, 18), _band(3.5, 5.3, 18),
    ], critical_low=2.5, critical_high=6.5),
    _test("UREA", "Urea", "Serum", "mmol/L", 500, [
        _band(1.0, 5.5, 0, 1), _band(1.8, 6.5, 1, 18), _band(2.5, 7.8, 18),
    ], critical_high=30.0),
    _test("CREA", "Creatinine", "Serum", "µmol/L", 500, [
        _band(15, 35, 0, 2), _band(20, 45, 2, 6), _band(25, 60, 6, 12),
        *_by_sex((40, 80), (45, 95), 12, 18),
        *_by_sex((45, 84), (59, 104), 18),
    ], critical_high=500),
    # Diabetes: fasting glucose below the WHO impaired fasting glycaemia threshold (6.1
    # mmol/L); HbA1c below the NICE non-diabetic hyperglycaemia threshold (42 mmol/mol).
    _test("GLU", "Glucose (fasting)", "Plasma (fluoride oxalate)", "mmol/L", 400, [
        _band(3.9, 6.0),
    ], critical_low=2.5, critical_high=25.0),
    _test("HBA1C", "HbA1c", "Blood (EDTA)", "mmol/mol", 1200, [_band(20, 41)]),
    # Liver
    _test("ALT", "Alanine aminotransferase (ALT)", "Serum", "U/L", 600, [
        _band(5, 40, 0, 18), *_by_sex((5, 35), (5, 50), 18),
    ]),
    _test("AST", "Aspartate aminotransferase (AST)", "Serum", "U/L", 600, [
        _band(20, 70, 0, 1), _band(15, 50, 1, 7), _band(10, 40, 7, 18),
        *_by_sex((10, 35), (10, 40), 18),
    ]),
    _test("BILI", "Bilirubin (total)", "Serum", "µmol/L", 600, [_band(0, 21)]),
    # Thyroid, inflammation, cardiac
    _test("TSH", "Thyroid-stimulating hormone (TSH)", "Serum", "mU/L", 1500, [
        _band(0.7, 6.0, 0, 6), _band(0.6, 4.8, 6, 12), _band(0.5, 4.3, 12, 18), _band(0.27, 4.2, 18),
    ]),
    _test("CRP", "C-reactive protein", "Serum", "mg/L", 800, [_band(0, 5)]),
    _test("TROP", "Troponin T (high-sensitivity)", "Serum", "ng/L", 2500, [_band(0, 14)], critical_high=52),
    # Lipids: desirable levels (NHS for adults; NHLBI 2011 for children), not population ranges.
    _test("CHOL", "Cholesterol (total)", "Serum", "mmol/L", 700, [_band(0, 4.4, 0, 18), _band(0, 5.0, 18)]),
    _test("LDL", "LDL cholesterol", "Serum", "mmol/L", 900, [_band(0, 2.8, 0, 18), _band(0, 3.0, 18)]),
    # Reported as text
    _test("UA", "Urinalysis (dipstick)", "Urine", "", 500),
    _test("CULT", "Urine culture and sensitivity", "Urine (midstream)", "", 2500),
)
"""Each test as a dict of ``LabTest`` fields (``ranges`` as a list; JSON in the table)."""


def range_from_bands(ranges: Iterable[dict], sex: str, age_years: int) -> tuple[float, float] | None:
    """The reference range (low, high) that applies to a patient, from a test's bands.

    A band for "any" sex applies to everyone. Where the bands differ by sex and the
    patient's sex is neither female nor male (other, unknown), the range spans both, so that
    no result is flagged on the strength of a guessed sex.

    Args:
        ranges: the bands (``LAB_TESTS[i]["ranges"]``, or ``json.loads(LabTest.ranges)``).
        sex: "female", "male", "other" or "unknown" (a ``Sex`` value).
        age_years: the patient's age in whole years.

    Returns:
        None when no band covers the patient (a text test, or an age out of range).
    """
    sex = str(sex).lower()
    here = [band for band in ranges if band["age_min"] <= age_years < band["age_max"]]
    mine = [band for band in here if band["sex"] in ("any", sex)]
    if not mine and sex not in ("female", "male"):
        mine = here
    if not mine:
        return None
    return min(band["low"] for band in mine), max(band["high"] for band in mine)


def range_for(test: dict, sex: str, age_years: int) -> tuple[float, float] | None:
    """The reference range (low, high) of a catalog test for a patient; None for text tests.

    ``test["ranges"]`` may be the list of bands or its JSON text, as stored in ``LabTest``.
    """
    if not test.get("numeric"):
        return None
    ranges = test["ranges"]
    return range_from_bands(json.loads(ranges) if isinstance(ranges, str) else ranges, sex, age_years)

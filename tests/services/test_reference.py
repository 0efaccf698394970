"""The shipped clinical reference data: its integrity, the matchers over it, and its loading."""

from __future__ import annotations

import json
import re
from itertools import combinations

import pytest
import sqlalchemy as sa

from hms_app.db.engine import session_scope
from hms_app.db.models import LabTest, Medicine
from hms_app.services.reference import allergens, icd10, lab_catalog
from hms_app.services.reference.allergens import allergy_matches, recognised_allergens
from hms_app.services.reference.formulary import FORMS, MEDICINES, split_ingredients
from hms_app.services.reference.icd10 import (
    ICD10,
    Icd10Code,
    describe_icd10,
    lookup_icd10,
    search_icd10,
    search_icd10_codes,
)
from hms_app.services.reference.interactions import (
    INTERACTIONS,
    interaction_terms,
    interactions_between,
)
from hms_app.services.reference.lab_catalog import LAB_TESTS, range_for, range_from_bands
from hms_app.services.reference.load import sync_reference_data


def _medicine(name: str, form: str | None = None) -> dict:
    found = [m for m in MEDICINES if m["name"] == name and form in (None, m["form"])]
    assert len(found) == 1, (name, form, found)
    return found[0]


def _terms(name: str) -> set[str]:
    medicine = _medicine(name)
    return interaction_terms(medicine["ingredients"], medicine["drug_class"])


FORMULARY_INGREDIENTS = {i for m in MEDICINES for i in split_ingredients(m["ingredients"])}
FORMULARY_CLASSES = {m["drug_class"] for m in MEDICINES}


# --- formulary ---------------------------------------------------------------------------


def test_formulary_entries_are_unique_by_name_and_strength():
    keys = [(m["name"], m["strength"]) for m in MEDICINES]
    assert len(keys) == len(set(keys))
    assert len({(m["name"].lower(), m["strength"]) for m in MEDICINES}) == len(keys)


def test_formulary_entries_fit_the_medicine_table():
    columns = Medicine.model_fields
    for m in MEDICINES:
        assert set(m) == {"name", "form", "strength", "unit_price_cents", "ingredients", "drug_class",
                          "reorder_level"}, m
        assert set(m) <= set(columns)
        assert m["name"] == m["name"].strip(), m
        assert 0 < len(m["name"]) <= 120, m
        assert m["form"] in FORMS, m
        assert 0 < len(m["strength"]) <= 60, m
        assert isinstance(m["unit_price_cents"], int), m
        assert 0 < m["unit_price_cents"] < 10_000, m
        assert isinstance(m["reorder_level"], int), m
        assert m["reorder_level"] > 0, m
        assert m["drug_class"] == m["drug_class"].strip().lower(), m
        assert len(m["drug_class"]) <= 80, m
        assert m["ingredients"] == ", ".join(i.strip() for i in m["ingredients"].split(",")), m
        assert m["ingredients"] == m["ingredients"].lower(), m
        assert len(m["ingredients"]) <= 300, m


def test_formulary_holds_the_medicines_the_clinics_prescribe():
    wanted = {
        "warfarin", "aspirin", "ibuprofen", "naproxen", "amoxicillin", "clavulanic acid",
        "phenoxymethylpenicillin", "cefalexin", "ceftriaxone", "clarithromycin", "azithromycin",
        "erythromycin", "ciprofloxacin", "trimethoprim", "sulfamethoxazole", "metformin",
        "gliclazide", "insulin glargine", "atorvastatin", "simvastatin", "amlodipine", "lisinopril",
        "ramipril", "losartan", "bisoprolol", "metoprolol", "furosemide", "spironolactone",
        "digoxin", "clopidogrel", "apixaban", "omeprazole", "paracetamol", "codeine", "tramadol",
        "morphine", "sertraline", "fluoxetine", "citalopram", "salbutamol", "beclometasone",
        "prednisolone", "levothyroxine", "cetirizine", "loratadine", "metronidazole", "fluconazole",
        "allopurinol", "hydrocortisone", "diazepam", "methotrexate", "sildenafil",
        "glyceryl trinitrate", "amiodarone", "lithium",
    }
    assert wanted <= FORMULARY_INGREDIENTS, wanted - FORMULARY_INGREDIENTS
    assert 50 <= len(MEDICINES) <= 70
    assert _medicine("Co-trimoxazole")["drug_class"] == "sulfonamides"
    assert _medicine("Trimethoprim")["drug_class"] != "sulfonamides"  # not a sulfonamide


def test_split_ingredients_normalises_case_and_spaces():
    assert split_ingredients(" Amoxicillin ,clavulanic acid,") == {"amoxicillin", "clavulanic acid"}
    assert split_ingredients("") == set()


# --- interactions ------------------------------------------------------------------------


def test_every_interaction_term_is_an_ingredient_or_a_class_of_the_formulary():
    for item in INTERACTIONS:
        for term in (item.a, item.b):
            assert term in FORMULARY_INGREDIENTS | FORMULARY_CLASSES, (term, item)


def test_interaction_records_are_complete_and_not_repeated():
    assert 20 <= len(INTERACTIONS) <= 30
    pairs = [frozenset((item.a, item.b)) for item in INTERACTIONS]
    assert len(pairs) == len(set(pairs))
    for item in INTERACTIONS:
        assert item.a != item.b
        assert item.severity in ("severe", "contraindicated"), item
        assert item.effect.endswith("."), item
        assert len(item.effect) > 40, item
        assert item.source.strip(), item


def test_interactions_between_is_symmetric_for_every_pair_of_medicines():
    terms = [interaction_terms(m["ingredients"], m["drug_class"]) for m in MEDICINES]
    for a, b in combinations(terms, 2):
        assert interactions_between(a, b) == interactions_between(b, a)


@pytest.mark.parametrize(("first", "second", "pair", "severity"), [
    ("Warfarin", "Aspirin", {"anticoagulants", "antiplatelets"}, "severe"),
    ("Apixaban", "Clopidogrel", {"anticoagulants", "antiplatelets"}, "severe"),
    ("Warfarin", "Naproxen", {"anticoagulants", "nsaids"}, "severe"),
    ("Warfarin", "Clarithromycin", {"warfarin", "macrolides"}, "severe"),
    ("Warfarin", "Metronidazole", {"warfarin", "metronidazole"}, "severe"),
    ("Warfarin", "Co-trimoxazole", {"warfarin", "sulfamethoxazole"}, "severe"),
    ("Warfarin", "Fluconazole", {"warfarin", "fluconazole"}, "severe"),
    ("Warfarin", "Amiodarone", {"warfarin", "amiodarone"}, "severe"),
    ("Simvastatin", "Clarithromycin", {"simvastatin", "clarithromycin"}, "contraindicated"),
    ("Simvastatin", "Erythromycin", {"simvastatin", "erythromycin"}, "contraindicated"),
    ("Methotrexate", "Trimethoprim", {"methotrexate", "trimethoprim"}, "severe"),
    ("Methotrexate", "Co-trimoxazole", {"methotrexate", "trimethoprim"}, "severe"),
    ("Sildenafil", "Glyceryl trinitrate (GTN)", {"phosphodiesterase-5 inhibitors", "nitrates"}, "contraindicated"),
    ("Sildenafil", "Isosorbide mononitrate", {"phosphodiesterase-5 inhibitors", "nitrates"}, "contraindicated"),
    ("Ramipril", "Spironolactone", {"ace inhibitors", "spironolactone"}, "severe"),
    ("Losartan", "Lisinopril", {"ace inhibitors", "angiotensin ii receptor blockers"}, "severe"),
    ("Lithium carbonate", "Naproxen", {"lithium", "nsaids"}, "severe"),
    ("Lithium carbonate", "Lisinopril", {"lithium", "ace inhibitors"}, "severe"),
    ("Digoxin", "Amiodarone", {"digoxin", "amiodarone"}, "severe"),
    ("Sertraline", "Tramadol", {"ssris", "tramadol"}, "severe"),
    ("Clopidogrel", "Omeprazole", {"clopidogrel", "omeprazole"}, "severe"),
    ("Co-codamol", "Diazepam", {"opioids", "benzodiazepines"}, "severe"),
])
def test_well_known_severe_interactions_are_found(first, second, pair, severity):
    found = interactions_between(_terms(first), _terms(second))
    assert [({i.a, i.b}, i.severity) for i in found] == [(pair, severity)]


def test_medicines_without_a_listed_interaction_give_none():
    assert interactions_between(_terms("Metformin"), _terms("Cetirizine")) == []
    assert interactions_between(_terms("Amlodipine"), set()) == []
    # Trimethoprim alone is not co-trimoxazole: no sulfamethoxazole, so no warfarin entry.
    assert interactions_between(_terms("Trimethoprim"), _terms("Warfarin")) == []


def test_interaction_terms_are_ingredients_and_class_in_lower_case():
    assert interaction_terms("Amoxicillin, Clavulanic acid", "Penicillins") == {
        "amoxicillin", "clavulanic acid", "penicillins"
    }
    assert interaction_terms(["Codeine ", "paracetamol"], "") == {"codeine", "paracetamol"}
    assert interactions_between({" Warfarin ", "Anticoagulants"}, {"ASPIRIN", "Antiplatelets"})


# --- allergies ---------------------------------------------------------------------------


@pytest.mark.parametrize(("allergy", "name", "form"), [
    ("Penicillin", "Amoxicillin", "capsule"),
    ("penicillins", "Co-amoxiclav", None),
    ("PENICILLIN (anaphylaxis 2019)", "Phenoxymethylpenicillin (penicillin V)", None),
    ("amoxicillin", "Co-amoxiclav", None),
    ("Amoxicillin - rash", "Flucloxacillin", None),
    ("Augmentin", "Amoxicillin", "oral suspension"),
    ("penicillin V", "Amoxicillin", "capsule"),
    ("sulfa", "Co-trimoxazole", None),
    ("Sulpha drugs", "Co-trimoxazole", None),
    ("sulfonamides", "Co-trimoxazole", None),
    ("trimethoprim", "Co-trimoxazole", None),
    ("co-trimoxazole", "Trimethoprim", None),
    ("NSAIDs", "Ibuprofen", "tablet"),
    ("nsaid", "Naproxen", None),
    ("non-steroidal anti-inflammatory drugs", "Aspirin", None),
    ("NSAIDs", "Aspirin", None),
    ("aspirin", "Aspirin", None),
    ("Aspirin (wheeze)", "Ibuprofen", "oral suspension"),
    ("ibuprofen", "Naproxen", None),
    ("codeine", "Codeine phosphate", None),
    ("codeine", "Co-codamol", None),
    ("Codeine", "Morphine sulfate", None),
    ("opiates", "Tramadol", None),
    ("Opioid", "Morphine sulfate", None),
    ("Cephalosporin", "Cefalexin", None),
    ("cephalosporins", "Ceftriaxone", None),
    ("cephalexin", "Cefalexin", None),
    ("Beta-lactams", "Ceftriaxone", None),
    ("macrolide", "Azithromycin", None),
    ("erythromycin", "Clarithromycin", None),
    ("Ciprofloxacin", "Ciprofloxacin", None),
    ("ACE inhibitor", "Ramipril", None),
    ("ACE-inhibitors (angioedema)", "Lisinopril", None),
    ("lisinopril", "Ramipril", None),
    ("statin", "Simvastatin", None),
    ("Statins", "Atorvastatin", None),
    ("steroids", "Prednisolone", None),
    ("acetaminophen", "Co-codamol", None),
    ("nitroglycerin", "Glyceryl trinitrate (GTN)", None),
    ("GTN", "Glyceryl trinitrate (GTN)", None),
    ("Lithium", "Lithium carbonate", None),
    ("warfarin", "Warfarin", None),
    ("beta blockers", "Bisoprolol", None),
    ("SSRIs", "Citalopram", None),
    ("non-opioid analgesics", "Paracetamol", "tablet"),
    ("allergic to penicillin and sulfa", "Co-trimoxazole", None),
])
def test_an_allergy_matches_the_medicines_it_should(allergy, name, form):
    medicine = _medicine(name, form)
    reason = allergy_matches(allergy, split_ingredients(medicine["ingredients"]), medicine["drug_class"])
    assert reason is not None, (allergy, name)
    assert allergy in reason


@pytest.mark.parametrize(("allergy", "name", "form"), [
    ("asp", "Aspirin", None),
    ("aspirin", "Clopidogrel", None),
    ("aspirin", "Paracetamol", "tablet"),
    ("NSAIDs", "Paracetamol", "tablet"),
    ("penicillin", "Cefalexin", None),
    ("amoxicillin", "Ceftriaxone", None),
    ("penicillamine", "Amoxicillin", "capsule"),
    ("pen", "Amoxicillin", "capsule"),
    ("cef", "Cefalexin", None),
    ("sulfa", "Trimethoprim", None),
    ("sulfa", "Furosemide", None),
    ("sulpha", "Gliclazide", None),
    ("sulfites", "Co-trimoxazole", None),
    ("warfarin", "Apixaban", None),
    ("clopidogrel", "Aspirin", None),
    ("ACE inhibitor", "Losartan", None),
    ("codeine", "Paracetamol", "tablet"),
    ("simvastatin", "Atorvastatin", None),
    ("clavulanic acid", "Amoxicillin", "capsule"),
    ("latex", "Amoxicillin", "capsule"),
    ("No known drug allergies", "Amoxicillin", "capsule"),
    ("non-opioid analgesics", "Morphine sulfate", None),
    ("non-opioid", "Codeine phosphate", None),
    ("", "Amoxicillin", "capsule"),
    ("   ", "Amoxicillin", "capsule"),
])
def test_an_allergy_does_not_match_the_medicines_it_should_not(allergy, name, form):
    medicine = _medicine(name, form)
    assert allergy_matches(allergy, split_ingredients(medicine["ingredients"]), medicine["drug_class"]) is None


def test_the_explanation_says_why():
    assert allergy_matches("Penicillin", {"amoxicillin"}, "penicillins") == (
        "Is one of the penicillins; recorded allergy: “Penicillin”."
    )
    assert allergy_matches("codeine", {"codeine", "paracetamol"}, "opioids") == (
        "Contains codeine; recorded allergy: “codeine”."
    )
    reason = allergy_matches("aspirin", {"ibuprofen"}, "nsaids")
    assert reason is not None
    assert "like aspirin" in reason
    assert "cross-sensitivity" in reason


def test_an_allergy_matches_an_ingredient_or_class_the_reference_data_does_not_know():
    # The pharmacy may add medicines: a whole-word match on their own record still counts.
    assert allergy_matches("Meropenem", "meropenem", "carbapenems") is not None
    assert allergy_matches("carbapenems", {"meropenem"}, "carbapenems") is not None
    assert allergy_matches("Beta-lactam", {"meropenem"}, "carbapenems") is not None
    assert allergy_matches("mero", {"meropenem"}, "carbapenems") is None
    assert allergy_matches("non-carbapenem", {"meropenem"}, "carbapenems") is None


def test_the_ingredients_may_be_given_as_the_medicine_string():
    assert allergy_matches("clavulanic acid", "amoxicillin, clavulanic acid", "penicillins") is not None


def test_every_formulary_class_can_be_named_as_an_allergy():
    for m in MEDICINES:
        reason = allergy_matches(m["drug_class"], split_ingredients(m["ingredients"]), m["drug_class"])
        assert reason is not None, m


def test_cross_reactive_groups_list_their_formulary_members():
    for group in allergens.GROUPS:
        if not group.cross_reactive:
            continue
        for m in MEDICINES:
            if m["drug_class"] in group.classes:
                assert split_ingredients(m["ingredients"]) & group.ingredients, (group.label, m)
    members = [i for g in allergens.GROUPS if g.cross_reactive for i in g.ingredients]
    assert len(members) == len(set(members)), "an ingredient in two cross-reactive groups"


def test_recognised_allergens_tell_what_was_understood():
    assert recognised_allergens("Penicillin V (rash), sulpha; NSAIDs and latex") == [
        "phenoxymethylpenicillin", "sulfonamides", "NSAIDs"
    ]
    assert recognised_allergens("Co-amoxiclav") == ["amoxicillin + clavulanic acid"]
    assert recognised_allergens("latex, peanuts") == []


# --- ICD-10 ------------------------------------------------------------------------------


def test_icd10_codes_are_well_formed_and_described():
    assert 140 <= len(ICD10) <= 180
    for code, description in ICD10.items():
        assert re.fullmatch(r"[A-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?", code), code
        assert description, code
        assert description == description.strip(), code
    for code in ("I10", "E11.9", "J06.9", "M17.11", "L20.9"):
        assert code in ICD10
    assert ICD10["I10"] == "Essential (primary) hypertension"
    assert ICD10["E11.9"] == "Type 2 diabetes mellitus without complications"


@pytest.mark.parametrize(("term", "expected"), [
    ("I10", "I10"),
    ("i10", "I10"),
    ("E11.9", "E11.9"),
    ("e119", "E11.9"),
    ("M17.1", "M17.11"),
    ("hypertension", "I10"),
    ("diab type 2 without", "E11.9"),
    ("Atopic", "L20.9"),
    ("upper resp", "J06.9"),
    ("anaemia", "D64.9"),
    ("oesophag", "K21.9"),
    ("diarrhoea", "R19.7"),
])
def test_search_icd10_finds_codes_by_prefix_or_words(term, expected):
    assert expected in [code for code, _ in search_icd10(term)]


def test_search_icd10_puts_code_matches_first_and_respects_the_limit():
    found = search_icd10("E11")
    assert found
    assert all(code.startswith("E11") for code, _ in found)
    codes = [code for code, _ in found]
    common = [code for code in codes if code in ICD10]
    assert codes[0] == "E11"  # the code typed, then the clinics' common codes, then the rest
    assert codes[1:1 + len(common)] == common
    assert set(common) == {code for code in ICD10 if code.startswith("E11")}
    assert len(search_icd10("a", limit=5)) == 5
    assert search_icd10("knee", limit=0) == []
    assert search_icd10("") == []
    assert search_icd10("   ") == []
    assert search_icd10("zzqx") == []
    # The code itself first, then the clinics' common codes, then the rest of the classification.
    assert [code for code, _ in search_icd10("M17.1")] == ["M17.1", "M17.11", "M17.12", "M17.10"]
    # Every word must match, at the start of a word of the description.
    assert "M17.0" not in [code for code, _ in search_icd10("right knee")]
    assert search_icd10("ension") == []


@pytest.mark.parametrize(("term", "expected"), [
    ("I20.8", "I20.8"),  # a category of ICD-10-CM, not among the clinics' common codes
    ("i2089", "I20.89"),
    ("F32.A", "F32.A"),
    ("angina microvascular", "I20.81"),
    ("tuberculous meningitis", "A17.0"),
    ("paediatric", None),  # British spelling, no crash; whatever matches
])
def test_search_icd10_covers_the_whole_classification(term, expected):
    found = search_icd10_codes(term)
    assert len(found) <= 20
    if expected:
        assert expected in [c.code for c in found]


def test_lookup_icd10_accepts_codes_not_chapters_or_blocks():
    assert lookup_icd10("i20.8") == Icd10Code("I20.8", "Other forms of angina pectoris", billable=False)
    assert lookup_icd10(" I2089 ").code == "I20.89"
    assert lookup_icd10("I20.89").billable
    assert lookup_icd10("I20.").code == "I20"
    assert lookup_icd10("I10").description == ICD10["I10"]
    for not_a_code in ("I20-I25", "9", "", None, "I20.8999999999", "ZZZ", "<b>"):
        assert lookup_icd10(not_a_code) is None, not_a_code
    assert describe_icd10("S72.001A").startswith("Fracture of unspecified part of neck of right femur")
    assert describe_icd10("nope") == ""


def test_the_classification_is_built_once_per_process_even_when_asked_at_once():
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        indexes = list(pool.map(lambda _: icd10.classification(), range(8)))
    assert all(i is indexes[0] for i in indexes)
    assert len(indexes[0].codes) > 90_000


# --- lab catalog -------------------------------------------------------------------------


def test_lab_tests_fit_the_lab_test_table():
    columns = LabTest.model_fields
    codes = [t["code"] for t in LAB_TESTS]
    assert len(codes) == len(set(codes))
    assert 18 <= len(codes) <= 25
    for code in ("HGB", "WBC", "PLT", "NA", "K", "CREA", "GLU", "HBA1C", "ALT", "AST", "TSH",
                 "CRP", "CHOL", "LDL", "TROP", "INR", "UA", "CULT"):
        assert code in codes
    for t in LAB_TESTS:
        assert set(t) <= set(columns), t
        assert len(t["code"]) <= 20, t
        assert len(t["name"]) <= 120, t
        assert len(t["specimen"]) <= 60, t
        assert len(t["unit"]) <= 30, t
        assert isinstance(t["price_cents"], int), t
        assert t["price_cents"] > 0, t
        assert len(json.dumps(t["ranges"])) <= 4000
        if not t["numeric"]:
            assert t["ranges"] == [], t
            assert t["critical_low"] is None, t
            assert t["critical_high"] is None, t


@pytest.mark.parametrize("test", [t for t in LAB_TESTS if t["numeric"]], ids=lambda t: t["code"])
def test_numeric_ranges_cover_every_age_and_sex_once(test):
    for band in test["ranges"]:
        assert set(band) == {"sex", "age_min", "age_max", "low", "high"}
        assert band["sex"] in ("any", "female", "male")
        assert isinstance(band["age_min"], int)
        assert isinstance(band["age_max"], int)
        assert 0 <= band["age_min"] < band["age_max"] <= lab_catalog.NO_AGE_LIMIT
        assert 0 <= band["low"] < band["high"]
    for sex in ("female", "male"):
        for age in range(0, 121):
            covering = [b for b in test["ranges"]
                        if b["sex"] in ("any", sex) and b["age_min"] <= age < b["age_max"]]
            assert len(covering) == 1, (test["code"], sex, age, covering)


@pytest.mark.parametrize("test", [t for t in LAB_TESTS if t["numeric"]], ids=lambda t: t["code"])
def test_critical_limits_lie_outside_every_normal_range(test):
    if test["critical_low"] is not None:
        assert test["critical_low"] < min(b["low"] for b in test["ranges"])
    if test["critical_high"] is not None:
        assert test["critical_high"] > max(b["high"] for b in test["ranges"])


def _lab(code: str) -> dict:
    return next(t for t in LAB_TESTS if t["code"] == code)


def test_range_for_chooses_the_band_by_sex_and_age():
    hgb = _lab("HGB")
    assert range_for(hgb, "female", 30) == (115, 165)
    assert range_for(hgb, "male", 30) == (130, 180)
    assert range_for(hgb, "male", 17) == (130, 160)
    assert range_for(hgb, "female", 4) == (115, 135)
    assert range_for(hgb, "male", 0) == (105, 140)
    assert range_for(hgb, "female", 120) == (115, 165)
    # Unknown or other sex: both sexes' ranges together, so nothing is flagged on a guess.
    assert range_for(hgb, "unknown", 30) == (115, 180)
    assert range_for(hgb, "other", 4) == (115, 135)
    assert range_for(_lab("NA"), "unknown", 50) == (133, 146)
    assert range_for(_lab("UA"), "female", 30) is None
    assert range_for(hgb, "female", -1) is None
    # As stored in the table: ranges as JSON text.
    stored = {**hgb, "ranges": json.dumps(hgb["ranges"])}
    assert range_for(stored, "male", 30) == (130, 180)
    assert range_from_bands(json.loads(stored["ranges"]), "MALE", 30) == (130, 180)


# --- loading into the database ------------------------------------------------------------


def _counts(engine) -> tuple[int, int]:
    with session_scope(write=False, engine=engine) as s:
        return (s.scalar(sa.select(sa.func.count()).select_from(Medicine)),
                s.scalar(sa.select(sa.func.count()).select_from(LabTest)))


@pytest.mark.db
def test_sync_inserts_the_reference_data_once(engine, session):
    assert sync_reference_data(session) == {"medicines": len(MEDICINES), "lab_tests": len(LAB_TESTS)}
    session.commit()
    assert _counts(engine) == (len(MEDICINES), len(LAB_TESTS))
    assert sync_reference_data(session) == {"medicines": 0, "lab_tests": 0}
    session.commit()
    assert _counts(engine) == (len(MEDICINES), len(LAB_TESTS))

    with session_scope(write=False, engine=engine) as s:
        hgb = s.scalars(sa.select(LabTest).where(LabTest.code == "HGB")).one()
        assert json.loads(hgb.ranges) == _lab("HGB")["ranges"]
        assert (hgb.numeric, hgb.critical_low, hgb.unit) == (True, 70, "g/L")
        ua = s.scalars(sa.select(LabTest).where(LabTest.code == "UA")).one()
        assert (ua.numeric, json.loads(ua.ranges), ua.critical_high) == (False, [], None)
        cotrim = s.scalars(sa.select(Medicine).where(Medicine.name == "Co-trimoxazole")).one()
        assert (cotrim.ingredients, cotrim.drug_class, cotrim.is_active) == (
            "sulfamethoxazole, trimethoprim", "sulfonamides", True
        )


@pytest.mark.db
def test_sync_adds_only_what_is_missing_and_keeps_local_edits(engine, session):
    sync_reference_data(session)
    session.commit()
    amoxicillin = session.scalars(
        sa.select(Medicine).where(Medicine.name == "Amoxicillin", Medicine.strength == "500 mg")
    ).one()
    amoxicillin.unit_price_cents = 999
    amoxicillin.is_active = False
    session.delete(session.scalars(sa.select(LabTest).where(LabTest.code == "TSH")).one())
    session.delete(session.scalars(sa.select(Medicine).where(Medicine.name == "Digoxin")).one())
    session.commit()

    assert sync_reference_data(session) == {"medicines": 1, "lab_tests": 1}
    session.commit()
    assert _counts(engine) == (len(MEDICINES), len(LAB_TESTS))
    with session_scope(write=False, engine=engine) as s:
        kept = s.scalars(
            sa.select(Medicine).where(Medicine.name == "Amoxicillin", Medicine.strength == "500 mg")
        ).one()
        assert (kept.unit_price_cents, kept.is_active) == (999, False)


@pytest.mark.db
def test_sync_does_not_commit(engine, session):
    assert sync_reference_data(session)["medicines"] == len(MEDICINES)
    session.rollback()
    assert _counts(engine) == (0, 0)

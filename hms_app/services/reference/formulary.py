"""The starting formulary: common medicines of outpatient clinics, in ``Medicine`` fields.

Sources: names, forms and strengths follow the British National Formulary (BNF) and the NHS
Dictionary of Medicines and Devices (dm+d); drug classes are the BNF's groupings, lower case.
Unit prices are indicative only, of the order of NHS Drug Tariff (England) list prices; the
pharmacy sets its own once the formulary is loaded.

Conventions the rest of the code relies on:

- ``ingredients`` names each active moiety without its salt ("codeine", not "codeine
  phosphate"), lower case, comma-separated; allergy and interaction checks match on it.
- ``drug_class`` is one lower-case class per medicine. A combination takes the class it is
  prescribed for (co-codamol: opioids); its ingredients carry the rest.
- ``unit_price_cents`` is the price of one dispensing unit: one tablet or capsule, one bottle
  of an oral liquid (100 mL), one vial or pre-filled pen, one inhaler or spray, one tube of
  cream. ``reorder_level`` counts the same units.
"""

from __future__ import annotations

FORMS = (
    "tablet",
    "dispersible tablet",
    "gastro-resistant tablet",
    "modified-release tablet",
    "capsule",
    "gastro-resistant capsule",
    "modified-release capsule",
    "oral suspension",
    "oral solution",
    "injection",
    "inhaler",
    "sublingual spray",
    "cream",
)
"""Every dosage form the formulary uses."""

_FIELDS = ("name", "form", "strength", "unit_price_cents", "ingredients", "drug_class", "reorder_level")

_ROWS = (
    # Anticoagulants and antiplatelets
    ("Warfarin", "tablet", "1 mg", 3, "warfarin", "anticoagulants", 500),
    ("Apixaban", "tablet", "5 mg", 95, "apixaban", "anticoagulants", 300),
    ("Aspirin", "dispersible tablet", "75 mg", 3, "aspirin", "antiplatelets", 1000),
    ("Clopidogrel", "tablet", "75 mg", 5, "clopidogrel", "antiplatelets", 500),
    # Analgesics and NSAIDs
    ("Paracetamol", "tablet", "500 mg", 3, "paracetamol", "non-opioid analgesics", 2000),
    ("Paracetamol", "oral suspension", "120 mg/5 mL", 120, "paracetamol", "non-opioid analgesics", 20),
    ("Ibuprofen", "tablet", "400 mg", 5, "ibuprofen", "nsaids", 1000),
    ("Ibuprofen", "oral suspension", "100 mg/5 mL", 200, "ibuprofen", "nsaids", 20),
    ("Naproxen", "tablet", "500 mg", 6, "naproxen", "nsaids", 500),
    ("Co-codamol", "tablet", "30 mg/500 mg", 7, "codeine, paracetamol", "opioids", 500),
    ("Codeine phosphate", "tablet", "30 mg", 5, "codeine", "opioids", 300),
    ("Tramadol", "capsule", "50 mg", 4, "tramadol", "opioids", 300),
    ("Morphine sulfate", "oral solution", "10 mg/5 mL", 200, "morphine", "opioids", 10),
    # Antibacterials
    ("Amoxicillin", "capsule", "500 mg", 5, "amoxicillin", "penicillins", 1000),
    ("Amoxicillin", "oral suspension", "250 mg/5 mL", 150, "amoxicillin", "penicillins", 20),
    ("Co-amoxiclav", "tablet", "500 mg/125 mg", 12, "amoxicillin, clavulanic acid", "penicillins", 500),
    ("Phenoxymethylpenicillin (penicillin V)", "tablet", "250 mg", 6, "phenoxymethylpenicillin", "penicillins", 500),
    ("Flucloxacillin", "capsule", "500 mg", 11, "flucloxacillin", "penicillins", 500),
    ("Cefalexin", "capsule", "500 mg", 12, "cefalexin", "cephalosporins", 300),
    ("Ceftriaxone", "injection", "1 g", 300, "ceftriaxone", "cephalosporins", 30),
    ("Clarithromycin", "tablet", "500 mg", 14, "clarithromycin", "macrolides", 300),
    ("Azithromycin", "tablet", "500 mg", 50, "azithromycin", "macrolides", 100),
    ("Erythromycin", "gastro-resistant tablet", "250 mg", 18, "erythromycin", "macrolides", 300),
    ("Ciprofloxacin", "tablet", "500 mg", 10, "ciprofloxacin", "quinolones", 200),
    ("Doxycycline", "capsule", "100 mg", 13, "doxycycline", "tetracyclines", 200),
    ("Trimethoprim", "tablet", "200 mg", 10, "trimethoprim", "diaminopyrimidines", 300),
    ("Co-trimoxazole", "tablet", "800 mg/160 mg", 40, "sulfamethoxazole, trimethoprim", "sulfonamides", 100),
    ("Nitrofurantoin", "modified-release capsule", "100 mg", 68, "nitrofurantoin", "nitrofurans", 200),
    ("Metronidazole", "tablet", "400 mg", 10, "metronidazole", "nitroimidazoles", 300),
    # Antifungals
    ("Fluconazole", "capsule", "150 mg", 100, "fluconazole", "azole antifungals", 50),
    # Diabetes
    ("Metformin", "tablet", "500 mg", 3, "metformin", "biguanides", 2000),
    ("Gliclazide", "tablet", "80 mg", 4, "gliclazide", "sulfonylureas", 500),
    ("Insulin glargine", "injection", "100 units/mL", 830, "insulin glargine", "insulins", 20),
    # Cardiovascular
    ("Atorvastatin", "tablet", "20 mg", 4, "atorvastatin", "statins", 1000),
    ("Simvastatin", "tablet", "40 mg", 4, "simvastatin", "statins", 1000),
    ("Amlodipine", "tablet", "5 mg", 3, "amlodipine", "calcium channel blockers", 1000),
    ("Lisinopril", "tablet", "10 mg", 4, "lisinopril", "ace inhibitors", 500),
    ("Ramipril", "capsule", "5 mg", 4, "ramipril", "ace inhibitors", 1000),
    ("Losartan", "tablet", "50 mg", 4, "losartan", "angiotensin ii receptor blockers", 500),
    ("Bisoprolol", "tablet", "5 mg", 3, "bisoprolol", "beta blockers", 1000),
    ("Metoprolol tartrate", "tablet", "50 mg", 5, "metoprolol", "beta blockers", 300),
    ("Furosemide", "tablet", "40 mg", 3, "furosemide", "loop diuretics", 500),
    ("Spironolactone", "tablet", "25 mg", 5, "spironolactone", "potassium-sparing diuretics", 300),
    ("Digoxin", "tablet", "125 micrograms", 5, "digoxin", "cardiac glycosides", 200),
    ("Amiodarone", "tablet", "200 mg", 7, "amiodarone", "antiarrhythmics", 200),
    ("Glyceryl trinitrate (GTN)", "sublingual spray", "400 micrograms/dose", 350, "glyceryl trinitrate", "nitrates", 20),
    ("Isosorbide mononitrate", "tablet", "20 mg", 3, "isosorbide mononitrate", "nitrates", 500),
    ("Sildenafil", "tablet", "50 mg", 25, "sildenafil", "phosphodiesterase-5 inhibitors", 100),
    # Gastro-intestinal
    ("Omeprazole", "gastro-resistant capsule", "20 mg", 4, "omeprazole", "proton pump inhibitors", 1000),
    # Mental health and neurology
    ("Sertraline", "tablet", "50 mg", 4, "sertraline", "ssris", 500),
    ("Fluoxetine", "capsule", "20 mg", 4, "fluoxetine", "ssris", 500),
    ("Citalopram", "tablet", "20 mg", 3, "citalopram", "ssris", 500),
    ("Diazepam", "tablet", "5 mg", 3, "diazepam", "benzodiazepines", 200),
    ("Lithium carbonate", "modified-release tablet", "400 mg", 5, "lithium", "mood stabilisers", 200),
    # Respiratory and allergy
    ("Salbutamol", "inhaler", "100 micrograms/dose", 150, "salbutamol", "beta2 agonists", 50),
    ("Beclometasone", "inhaler", "100 micrograms/dose", 550, "beclometasone", "corticosteroids", 30),
    ("Cetirizine", "tablet", "10 mg", 3, "cetirizine", "antihistamines", 500),
    ("Loratadine", "tablet", "10 mg", 3, "loratadine", "antihistamines", 500),
    # Endocrine, musculoskeletal, immunology, skin
    ("Prednisolone", "tablet", "5 mg", 4, "prednisolone", "corticosteroids", 500),
    ("Levothyroxine sodium", "tablet", "50 micrograms", 4, "levothyroxine", "thyroid hormones", 1000),
    ("Allopurinol", "tablet", "100 mg", 3, "allopurinol", "xanthine oxidase inhibitors", 500),
    # Methotrexate is stocked in one strength only (NPSA alert on 2.5 mg vs 10 mg mix-ups).
    ("Methotrexate", "tablet", "2.5 mg", 9, "methotrexate", "antimetabolites", 200),
    ("Hydrocortisone", "cream", "1%", 150, "hydrocortisone", "corticosteroids", 30),
)

MEDICINES: tuple[dict, ...] = tuple(dict(zip(_FIELDS, row, strict=True)) for row in _ROWS)
"""Each medicine as a dict of ``Medicine`` fields; (name, strength) identifies an entry."""


def split_ingredients(ingredients: str) -> set[str]:
    """The active ingredients of a ``Medicine.ingredients`` string, normalised to lower case."""
    return {part.strip().lower() for part in ingredients.split(",") if part.strip()}

"""Common ICD-10 codes of the outpatient clinics, for problem lists and encounter diagnoses.

Source: ICD-10-CM, the US clinical modification of the WHO's ICD-10 (CDC/NCHS and CMS),
April 2026 release; codes and descriptions are copied verbatim from its tabular list. Every
code here is a complete, billable code: where a category has sub-codes only the sub-codes
appear (M17.1, unilateral primary osteoarthritis of knee, is here as M17.11 right and M17.12
left knee; a search for "M17.1" finds both).

The clinics are those of the demo hospital: cardiology, general medicine, orthopedics,
pediatrics and dermatology.
"""

from __future__ import annotations

import re

ICD10: dict[str, str] = {
    # Cardiology
    "I10": "Essential (primary) hypertension",
    "I11.9": "Hypertensive heart disease without heart failure",
    "I20.9": "Angina pectoris, unspecified",
    "I21.9": "Acute myocardial infarction, unspecified",
    "I25.10": "Atherosclerotic heart disease of native coronary artery without angina pectoris",
    "I25.2": "Old myocardial infarction",
    "I34.0": "Nonrheumatic mitral (valve) insufficiency",
    "I35.0": "Nonrheumatic aortic (valve) stenosis",
    "I47.10": "Supraventricular tachycardia, unspecified",
    "I48.0": "Paroxysmal atrial fibrillation",
    "I48.91": "Unspecified atrial fibrillation",
    "I50.22": "Chronic systolic (congestive) heart failure",
    "I50.32": "Chronic diastolic (congestive) heart failure",
    "I50.9": "Heart failure, unspecified",
    "G45.9": "Transient cerebral ischemic attack, unspecified",
    "I73.9": "Peripheral vascular disease, unspecified",
    "I95.9": "Hypotension, unspecified",
    "R00.1": "Bradycardia, unspecified",
    "R00.2": "Palpitations",
    "R01.1": "Cardiac murmur, unspecified",
    "R07.9": "Chest pain, unspecified",
    "R06.02": "Shortness of breath",
    "R55": "Syncope and collapse",
    "E78.2": "Mixed hyperlipidemia",
    "E78.5": "Hyperlipidemia, unspecified",
    "Z79.01": "Long term (current) use of anticoagulants",
    # General medicine
    "E10.9": "Type 1 diabetes mellitus without complications",
    "E11.9": "Type 2 diabetes mellitus without complications",
    "E11.65": "Type 2 diabetes mellitus with hyperglycemia",
    "E11.22": "Type 2 diabetes mellitus with diabetic chronic kidney disease",
    "E11.40": "Type 2 diabetes mellitus with diabetic neuropathy, unspecified",
    "R73.03": "Prediabetes",
    "E03.9": "Hypothyroidism, unspecified",
    "E05.90": "Thyrotoxicosis, unspecified without thyrotoxic crisis or storm",
    "E66.9": "Obesity, unspecified",
    "E55.9": "Vitamin D deficiency, unspecified",
    "D50.9": "Iron deficiency anemia, unspecified",
    "D64.9": "Anemia, unspecified",
    "E87.6": "Hypokalemia",
    "E86.0": "Dehydration",
    "N18.30": "Chronic kidney disease, stage 3 unspecified",
    "N18.9": "Chronic kidney disease, unspecified",
    "N39.0": "Urinary tract infection, site not specified",
    "N30.00": "Acute cystitis without hematuria",
    "N40.0": "Benign prostatic hyperplasia without lower urinary tract symptoms",
    "R31.9": "Hematuria, unspecified",
    "K21.9": "Gastro-esophageal reflux disease without esophagitis",
    "K29.70": "Gastritis, unspecified, without bleeding",
    "K30": "Functional dyspepsia",
    "K58.9": "Irritable bowel syndrome, unspecified",
    "K59.00": "Constipation, unspecified",
    "A09": "Infectious gastroenteritis and colitis, unspecified",
    "K76.0": "Fatty (change of) liver, not elsewhere classified",
    "R10.9": "Unspecified abdominal pain",
    "R11.2": "Nausea with vomiting, unspecified",
    "R19.7": "Diarrhea, unspecified",
    "R50.9": "Fever, unspecified",
    "R51.9": "Headache, unspecified",
    "R53.83": "Other fatigue",
    "R42": "Dizziness and giddiness",
    "R05.9": "Cough, unspecified",
    "R63.4": "Abnormal weight loss",
    "J06.9": "Acute upper respiratory infection, unspecified",
    "J02.9": "Acute pharyngitis, unspecified",
    "J02.0": "Streptococcal pharyngitis",
    "J03.90": "Acute tonsillitis, unspecified",
    "J01.90": "Acute sinusitis, unspecified",
    "J20.9": "Acute bronchitis, unspecified",
    "J18.9": "Pneumonia, unspecified organism",
    "J45.909": "Unspecified asthma, uncomplicated",
    "J44.9": "Chronic obstructive pulmonary disease, unspecified",
    "J44.1": "Chronic obstructive pulmonary disease with (acute) exacerbation",
    "J30.9": "Allergic rhinitis, unspecified",
    "U07.1": "COVID-19",
    "G43.909": "Migraine, unspecified, not intractable, without status migrainosus",
    "G44.209": "Tension-type headache, unspecified, not intractable",
    "G47.00": "Insomnia, unspecified",
    "G47.33": "Obstructive sleep apnea (adult) (pediatric)",
    "G40.909": "Epilepsy, unspecified, not intractable, without status epilepticus",
    "G56.00": "Carpal tunnel syndrome, unspecified upper limb",
    "F32.A": "Depression, unspecified",
    "F32.9": "Major depressive disorder, single episode, unspecified",
    "F41.1": "Generalized anxiety disorder",
    "F17.210": "Nicotine dependence, cigarettes, uncomplicated",
    "B34.9": "Viral infection, unspecified",
    "A49.9": "Bacterial infection, unspecified",
    "Z00.00": "Encounter for general adult medical examination without abnormal findings",
    "Z23": "Encounter for immunization",
    "Z79.4": "Long term (current) use of insulin",
    "Z88.0": "Allergy status to penicillin",
    # Orthopedics
    "M54.50": "Low back pain, unspecified",
    "M54.2": "Cervicalgia",
    "M54.41": "Lumbago with sciatica, right side",
    "M54.42": "Lumbago with sciatica, left side",
    "M17.0": "Bilateral primary osteoarthritis of knee",
    "M17.11": "Unilateral primary osteoarthritis, right knee",
    "M17.12": "Unilateral primary osteoarthritis, left knee",
    "M16.11": "Unilateral primary osteoarthritis, right hip",
    "M16.12": "Unilateral primary osteoarthritis, left hip",
    "M19.90": "Unspecified osteoarthritis, unspecified site",
    "M25.561": "Pain in right knee",
    "M25.562": "Pain in left knee",
    "M25.511": "Pain in right shoulder",
    "M25.512": "Pain in left shoulder",
    "M75.41": "Impingement syndrome of right shoulder",
    "M77.11": "Lateral epicondylitis, right elbow",
    "M72.2": "Plantar fascial fibromatosis",
    "M79.7": "Fibromyalgia",
    "M81.0": "Age-related osteoporosis without current pathological fracture",
    "M10.9": "Gout, unspecified",
    "M06.9": "Rheumatoid arthritis, unspecified",
    "M41.9": "Scoliosis, unspecified",
    "S93.401A": "Sprain of unspecified ligament of right ankle, initial encounter",
    "S93.402A": "Sprain of unspecified ligament of left ankle, initial encounter",
    "S52.501A": "Unspecified fracture of the lower end of right radius, initial encounter for closed fracture",
    "S39.012A": "Strain of muscle, fascia and tendon of lower back, initial encounter",
    # Pediatrics
    "Z00.129": "Encounter for routine child health examination without abnormal findings",
    "P59.9": "Neonatal jaundice, unspecified",
    "R62.51": "Failure to thrive (child)",
    "J21.9": "Acute bronchiolitis, unspecified",
    "J05.0": "Acute obstructive laryngitis [croup]",
    "A38.9": "Scarlet fever, uncomplicated",
    "R56.00": "Simple febrile convulsions",
    "L22": "Diaper dermatitis",
    "N39.44": "Nocturnal enuresis",
    "F80.9": "Developmental disorder of speech and language, unspecified",
    "F90.9": "Attention-deficit hyperactivity disorder, unspecified type",
    "L21.0": "Seborrhea capitis",
    "R10.83": "Colic",
    "H66.90": "Otitis media, unspecified, unspecified ear",
    "H10.9": "Unspecified conjunctivitis",
    "H60.90": "Unspecified otitis externa, unspecified ear",
    "H61.20": "Impacted cerumen, unspecified ear",
    "B08.4": "Enteroviral vesicular stomatitis with exanthem",
    "B01.9": "Varicella without complication",
    "B37.0": "Candidal stomatitis",
    # Dermatology
    "L20.9": "Atopic dermatitis, unspecified",
    "L30.9": "Dermatitis, unspecified",
    "L23.9": "Allergic contact dermatitis, unspecified cause",
    "L21.9": "Seborrheic dermatitis, unspecified",
    "L40.0": "Psoriasis vulgaris",
    "L70.0": "Acne vulgaris",
    "L71.9": "Rosacea, unspecified",
    "L50.9": "Urticaria, unspecified",
    "L01.00": "Impetigo, unspecified",
    "L02.91": "Cutaneous abscess, unspecified",
    "L03.90": "Cellulitis, unspecified",
    "L60.0": "Ingrowing nail",
    "L72.0": "Epidermal cyst",
    "L82.1": "Other seborrheic keratosis",
    "L57.0": "Actinic keratosis",
    "L63.9": "Alopecia areata, unspecified",
    "L29.9": "Pruritus, unspecified",
    "L73.2": "Hidradenitis suppurativa",
    "B07.9": "Viral wart, unspecified",
    "B08.1": "Molluscum contagiosum",
    "B35.1": "Tinea unguium",
    "B35.3": "Tinea pedis",
    "B35.4": "Tinea corporis",
    "B86": "Scabies",
    "B02.9": "Zoster without complications",
    "D22.9": "Melanocytic nevi, unspecified",
    "C44.91": "Basal cell carcinoma of skin, unspecified",
    "R21": "Rash and other nonspecific skin eruption",
    "L27.0": "Generalized skin eruption due to drugs and medicaments taken internally",
}
"""Code -> description."""

_WORD = re.compile(r"[a-z0-9]+")

# British spellings typed by doctors, rewritten to the American ones of ICD-10-CM.
_BRITISH = (
    ("oesophag", "esophag"), ("oedem", "edem"), ("oestr", "estr"), ("foet", "fet"),
    ("coeliac", "celiac"), ("paed", "ped"), ("aem", "em"), ("oea", "ea"),
    ("tumour", "tumor"), ("behaviour", "behavior"), ("isation", "ization"),
)


def _code_key(code: str) -> str:
    return code.replace(".", "").replace(" ", "").upper()


def _american(word: str) -> str:
    for british, american in _BRITISH:
        word = word.replace(british, american)
    return word


def search_icd10(term: str, limit: int = 20) -> list[tuple[str, str]]:
    """ICD-10 codes for a search box: (code, description) pairs, best first.

    A term matches a code that starts with it ("e11", "M17.1", "m171"), or a description in
    which every word of the term begins a word ("diab type 2", "knee osteoarth",
    "anaemia"). Code matches come first, then description matches, each in code order.
    """
    term = term.strip()
    if not term or limit <= 0:
        return []
    key = _code_key(term)
    by_code = [code for code in ICD10 if _code_key(code).startswith(key)]
    words = [_american(word) for word in _WORD.findall(term.lower())]
    by_text = [
        code for code in ICD10
        if code not in by_code and words and all(
            any(word.startswith(w) for word in _WORD.findall(ICD10[code].lower())) for w in words
        )
    ]
    found = sorted(by_code) + sorted(by_text)
    return [(code, ICD10[code]) for code in found[:limit]]

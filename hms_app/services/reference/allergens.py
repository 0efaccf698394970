"""Matching a recorded allergy (free text typed by a doctor) to a medicine.

The rule, in the order the explanations are given:

1. **Contains the allergen.** The text names an ingredient of the medicine, by its name, a
   synonym or a brand ("acetaminophen", "Augmentin"), or names a combination product that
   shares an ingredient with it ("co-trimoxazole" matches trimethoprim tablets).
2. **Named class.** The text names a class or group the medicine belongs to ("penicillins",
   "sulfa", "NSAIDs", "opiates", "ACE inhibitor", "statin", "steroids", "beta-lactams").
3. **Cross-sensitivity.** The text names an ingredient of a group whose members cross-react,
   and the medicine is in that group: an "amoxicillin" allergy matches flucloxacillin, an
   "aspirin" allergy matches ibuprofen, a "codeine" allergy matches morphine.

Cross-sensitivity is applied only to the groups whose hypersensitivity contraindication is
class-wide in the BNF and the products' summaries of product characteristics ("any
penicillin", "aspirin or any other NSAID", "macrolide antibacterials", angioedema with any
ACE inhibitor): penicillins, cephalosporins, sulfonamide antibacterials, NSAIDs (including
aspirin), macrolides, quinolones, tetracyclines and ACE inhibitors; and, conservatively, to
opioids, whose reactions are mostly pseudo-allergic but worth a second look. So a warfarin
allergy does not match apixaban, nor an aspirin allergy clopidogrel, though they share a
drug class. Deliberately not matched: a penicillin allergy against
cephalosporins (cross-reactivity is low and the decision is the prescriber's), and a sulfa
allergy against non-antibacterial sulfonamides such as furosemide or gliclazide, for which
cross-reactivity is not supported (Strom et al., N Engl J Med 2003;349:1628-35).

Matching works on whole words, never substrings: text and names are lower-cased, split into
words at anything but a letter or digit, and each word loses a plural "s". "Penicillins",
"penicillin" and "PENICILLIN" are the same, while "asp" does not match aspirin, nor
"penicillamine" penicillin. British "sulph" is read as "sulf". A phrase is matched where its
words appear in sequence, so "penicillin V (rash, 2019)" and "allergic to NSAIDs" work; the
longest known phrase wins ("penicillin V" before "penicillin").
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

from hms_app.services.reference.formulary import MEDICINES, split_ingredients

_WORD = re.compile(r"[a-z0-9]+")


def _singular(word: str) -> str:
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us")):
        return word[:-1]
    return word


def _words(text: str) -> tuple[str, ...]:
    text = text.lower().replace("β", "beta").replace("sulph", "sulf")
    return tuple(_singular(word) for word in _WORD.findall(text))


def _key(text: str) -> str:
    return " ".join(_words(text))


@dataclass(frozen=True)
class AllergenGroup:
    """Medicines recognised together: by drug class, or by ingredient whatever their class."""

    label: str
    classes: frozenset[str]
    ingredients: frozenset[str]
    aliases: tuple[str, ...] = ()
    cross_reactive: bool = False
    """An allergy to one member ingredient is taken as an allergy to the whole group."""

    @cached_property
    def _class_keys(self) -> frozenset[str]:
        return frozenset(_key(c) for c in self.classes)

    @cached_property
    def _ingredient_keys(self) -> frozenset[str]:
        return frozenset(_key(i) for i in self.ingredients)

    def includes(self, ingredient_keys: set[str], class_key: str) -> bool:
        """Whether a medicine with these (normalised) ingredients and class is a member."""
        return class_key in self._class_keys or bool(ingredient_keys & self._ingredient_keys)


def _group(label, classes, ingredients, aliases=(), *, cross_reactive=False) -> AllergenGroup:
    return AllergenGroup(label, frozenset(classes), frozenset(ingredients), tuple(aliases), cross_reactive)


_PENICILLINS = {
    "amoxicillin", "ampicillin", "benzylpenicillin", "flucloxacillin", "phenoxymethylpenicillin",
    "piperacillin", "pivmecillinam", "temocillin",
}
_CEPHALOSPORINS = {
    "cefaclor", "cefadroxil", "cefalexin", "cefazolin", "cefixime", "cefotaxime", "ceftazidime",
    "ceftriaxone", "cefuroxime",
}

GROUPS: tuple[AllergenGroup, ...] = (
    _group("penicillins", {"penicillins"}, _PENICILLINS, ("penicillin", "pcn"), cross_reactive=True),
    _group("cephalosporins", {"cephalosporins"}, _CEPHALOSPORINS, ("cephalosporin",), cross_reactive=True),
    _group(
        "sulfonamides", {"sulfonamides"}, {"sulfamethoxazole", "sulfadiazine", "sulfasalazine"},
        ("sulfa", "sulfa drug", "sulfonamide", "sulfonamide antibiotic", "sulfonamide antibacterial"),
        cross_reactive=True,
    ),
    _group(
        "NSAIDs", {"nsaids"},
        {"aspirin", "diclofenac", "ibuprofen", "indometacin", "ketoprofen", "mefenamic acid", "naproxen"},
        ("nsaid", "non steroidal anti inflammatory", "nonsteroidal anti inflammatory"),
        cross_reactive=True,
    ),
    _group("macrolides", {"macrolides"}, {"azithromycin", "clarithromycin", "erythromycin"},
           ("macrolide",), cross_reactive=True),
    _group("quinolones", {"quinolones"}, {"ciprofloxacin", "levofloxacin", "moxifloxacin", "ofloxacin"},
           ("quinolone", "fluoroquinolone"), cross_reactive=True),
    _group("tetracyclines", {"tetracyclines"},
           {"doxycycline", "lymecycline", "minocycline", "oxytetracycline", "tetracycline"},
           ("tetracycline",), cross_reactive=True),
    _group(
        "opioids", {"opioids"},
        {"buprenorphine", "codeine", "dihydrocodeine", "fentanyl", "morphine", "oxycodone",
         "pethidine", "tapentadol", "tramadol"},
        ("opioid", "opiate"), cross_reactive=True,
    ),
    _group("ACE inhibitors", {"ace inhibitors"}, {"captopril", "enalapril", "lisinopril", "perindopril", "ramipril"},
           ("ace inhibitor", "acei", "ace i", "angiotensin converting enzyme inhibitor"), cross_reactive=True),
    # Named only: recorded as a group, never inferred from one member.
    _group("beta-lactams", {"penicillins", "cephalosporins", "carbapenems"}, _PENICILLINS | _CEPHALOSPORINS,
           ("beta lactam", "betalactam")),
)
"""Curated groups. Every other formulary class is recognised by name as a group of its own."""

_CLASS_ALIASES = {
    "ssris": ("ssri", "selective serotonin reuptake inhibitor"),
    "benzodiazepines": ("benzo",),
    "corticosteroids": ("steroid", "glucocorticoid"),
    "angiotensin ii receptor blockers": ("arb", "sartan", "angiotensin receptor blocker",
                                         "angiotensin 2 receptor blocker"),
    "proton pump inhibitors": ("ppi",),
    "calcium channel blockers": ("ccb",),
    "beta blockers": ("betablocker",),
    "phosphodiesterase-5 inhibitors": ("pde5 inhibitor", "pde 5 inhibitor"),
    "beta2 agonists": ("beta 2 agonist", "beta agonist"),
}
_CLASS_LABELS = {"ssris": "SSRIs", "angiotensin ii receptor blockers": "angiotensin II receptor blockers"}

SYNONYMS: dict[str, tuple[str, ...]] = {
    # Other names of an ingredient
    "acetaminophen": ("paracetamol",),
    "acetylsalicylic acid": ("aspirin",),
    "albuterol": ("salbutamol",),
    "amoxycillin": ("amoxicillin",),
    "beclomethasone": ("beclometasone",),
    "cephalexin": ("cefalexin",),
    "floxacillin": ("flucloxacillin",),
    "frusemide": ("furosemide",),
    "gtn": ("glyceryl trinitrate",),
    "nitroglycerin": ("glyceryl trinitrate",),
    "nitroglycerine": ("glyceryl trinitrate",),
    "pen v": ("phenoxymethylpenicillin",),
    "penicillin g": ("benzylpenicillin",),
    "penicillin v": ("phenoxymethylpenicillin",),
    "thyroxine": ("levothyroxine",),
    # Combination products
    "co amoxiclav": ("amoxicillin", "clavulanic acid"),
    "coamoxiclav": ("amoxicillin", "clavulanic acid"),
    "co codamol": ("codeine", "paracetamol"),
    "cocodamol": ("codeine", "paracetamol"),
    "co dydramol": ("dihydrocodeine", "paracetamol"),
    "co trimoxazole": ("sulfamethoxazole", "trimethoprim"),
    "cotrimoxazole": ("sulfamethoxazole", "trimethoprim"),
    "trimethoprim sulfamethoxazole": ("sulfamethoxazole", "trimethoprim"),
    "sulfamethoxazole trimethoprim": ("sulfamethoxazole", "trimethoprim"),
    "tmp smx": ("sulfamethoxazole", "trimethoprim"),
    # Brands often written in allergy records
    "amoxil": ("amoxicillin",),
    "augmentin": ("amoxicillin", "clavulanic acid"),
    "bactrim": ("sulfamethoxazole", "trimethoprim"),
    "septrin": ("sulfamethoxazole", "trimethoprim"),
    "brufen": ("ibuprofen",),
    "nurofen": ("ibuprofen",),
    "voltarol": ("diclofenac",),
    "calpol": ("paracetamol",),
    "panadol": ("paracetamol",),
    "tylenol": ("paracetamol",),
    "keflex": ("cefalexin",),
    "klaricid": ("clarithromycin",),
    "zithromax": ("azithromycin",),
    "oramorph": ("morphine",),
    "valium": ("diazepam",),
    "ventolin": ("salbutamol",),
    "viagra": ("sildenafil",),
}
"""Other names of ingredients, and the ingredients of combination products and brands."""


@dataclass(frozen=True)
class _Concept:
    """What a phrase of the allergy text names: a group, or one or more ingredients."""

    group: AllergenGroup | None = None
    ingredients: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return self.group.label if self.group else " + ".join(self.ingredients)


def _class_groups() -> list[AllergenGroup]:
    curated = {_key(c) for g in GROUPS for c in g.classes}
    classes = sorted({m["drug_class"] for m in MEDICINES})
    return [
        _group(_CLASS_LABELS.get(c, c), {c}, set(), (c, *_CLASS_ALIASES.get(c, ())))
        for c in classes if _key(c) not in curated
    ]


def _build_lexicon() -> dict[tuple[str, ...], _Concept]:
    lexicon: dict[tuple[str, ...], _Concept] = {}
    ingredients = {i for m in MEDICINES for i in split_ingredients(m["ingredients"])}
    ingredients |= {i for g in GROUPS for i in g.ingredients}
    for ingredient in ingredients:
        lexicon[_words(ingredient)] = _Concept(ingredients=(ingredient,))
    for phrase, names in SYNONYMS.items():
        lexicon[_words(phrase)] = _Concept(ingredients=names)
    # A group wins over an ingredient spelt the same ("tetracycline"): it includes it. A
    # group of several classes (beta-lactams) is known by its own names, not its classes'.
    for group in (*GROUPS, *_class_groups()):
        own_class = group.classes if len(group.classes) == 1 else ()
        for phrase in (group.label, *own_class, *group.aliases):
            lexicon[_words(phrase)] = _Concept(group=group)
    return lexicon


_LEXICON = _build_lexicon()
_LONGEST = max(len(phrase) for phrase in _LEXICON)
_CROSS_REACTIVE = {_key(i): g for g in GROUPS if g.cross_reactive for i in g.ingredients}


def _read(allergy_text: str) -> tuple[list[_Concept], list[tuple[str, ...]]]:
    """The known phrases of the text, longest first, and the runs of words left over."""
    words = _words(allergy_text)
    concepts: list[_Concept] = []
    leftovers: list[tuple[str, ...]] = []
    run: list[str] = []
    i = 0
    while i < len(words):
        concept = None
        for size in range(min(_LONGEST, len(words) - i), 0, -1):
            concept = _LEXICON.get(words[i:i + size])
            if concept is not None:
                break
        # "non-opioid" names no opioid (whole phrases such as "non-steroidal anti-inflammatory"
        # are in the lexicon and matched before their "non" is left over).
        if concept is None or run[-1:] == ["non"]:
            run.append(words[i])
            i += 1
            continue
        if run:
            leftovers.append(tuple(run))
            run = []
        concepts.append(concept)
        i += size
    if run:
        leftovers.append(tuple(run))
    return concepts, leftovers


def _within(phrase: tuple[str, ...], runs: list[tuple[str, ...]]) -> bool:
    """Whether the phrase occurs, not negated by "non", in one of the runs of words."""
    size = len(phrase)
    return bool(size) and any(
        run[i:i + size] == phrase and run[i - 1:i] != ("non",)
        for run in runs for i in range(len(run) - size + 1)
    )


def recognised_allergens(allergy_text: str) -> list[str]:
    """What the matcher understands in an allergy text, e.g. ``["penicillins"]``.

    An empty list means no medicine will be matched by name or class (only by an ingredient
    spelt exactly as in the medicine's record): worth showing the doctor when recording.
    """
    concepts, _ = _read(allergy_text)
    return list(dict.fromkeys(concept.label for concept in concepts))


def allergy_matches(allergy_text: str, ingredients: Iterable[str] | str, drug_class: str) -> str | None:
    """Why a medicine conflicts with a recorded allergy, or None if it does not.

    Args:
        allergy_text: the allergy as recorded, e.g. "Penicillin (anaphylaxis)".
        ingredients: the medicine's active ingredients, as a set or as the
            ``Medicine.ingredients`` string.
        drug_class: ``Medicine.drug_class``.

    Returns:
        One sentence for the prescriber, e.g. "Contains amoxicillin; recorded allergy: “…”."
    """
    text = " ".join(allergy_text.split())
    if not text:
        return None
    names = split_ingredients(ingredients) if isinstance(ingredients, str) else {
        i.strip().lower() for i in ingredients if i.strip()
    }
    by_key = {_key(name): name for name in names}
    class_key = _key(drug_class)
    concepts, leftovers = _read(text)
    recorded = f"recorded allergy: “{text}”"

    for concept in concepts:
        for ingredient in concept.ingredients:
            if _key(ingredient) in by_key:
                return f"Contains {by_key[_key(ingredient)]}; {recorded}."
    for key, name in by_key.items():
        if _within(tuple(key.split()), leftovers):
            return f"Contains {name}; {recorded}."

    for concept in concepts:
        if concept.group and concept.group.includes(set(by_key), class_key):
            return f"Is one of the {concept.group.label}; {recorded}."
    if class_key and _within(tuple(class_key.split()), leftovers):
        return f"Is one of the {drug_class.strip().lower()}; {recorded}."

    for concept in concepts:
        for ingredient in concept.ingredients:
            group = _CROSS_REACTIVE.get(_key(ingredient))
            if group and group.includes(set(by_key), class_key):
                return (f"Is one of the {group.label}, like {ingredient}; {recorded} "
                        "(cross-sensitivity is likely).")
    return None

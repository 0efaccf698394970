"""Time per keystroke of the encounter's ICD-10-CM search, and the one-off cost of its index.

Each query is typed as a doctor types it: every prefix of it is searched in turn ("a", "an",
"ang", ...), as the search box asks after each keystroke (the page debounces, so this is the
worst case). Prints the time to build the index once in this process, then the median, p95 and
worst wall-clock time per keystroke over a few hundred realistic queries: codes with and without
their dot, clinical words and phrases, British spellings, and terms that match nothing. The
target is at most 50 ms a keystroke.

    .venv/bin/python -m bench.icd10_search
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

from bench.harness import machine_note, table
from hms_app.services.reference import icd10

CODES = ["I10", "i20.8", "I2089", "E11.9", "e119", "F32.A", "M17.11", "J45.909", "S72.001A", "N18.30", "R07.9",
         "K21.9", "Z79.01", "A09", "C44.91", "O80", "G43.909", "H66.90", "L20.9", "T78.40XA"]
WORDS = [
    "angina", "angina microvascular", "hypertension", "essential hypertension", "diabetes type 2",
    "type 2 diabetes without complications", "diab kidney", "asthma", "asthma mild intermittent",
    "copd", "pneumonia", "community acquired pneumonia", "urinary tract infection", "cystitis", "migraine",
    "migraine without aura", "headache", "chest pain", "back pain", "low back pain", "knee osteoarthritis",
    "osteoarth knee right", "fracture femur", "fracture of neck of right femur", "sprain ankle",
    "depression", "major depressive disorder recurrent", "anxiety", "generalized anxiety", "insomnia",
    "atrial fibrillation", "heart failure", "chronic kidney disease stage 3", "anaemia", "iron deficiency anaemia",
    "oesophagitis", "gastro oesophageal reflux", "diarrhoea", "coeliac disease", "paediatric", "otitis media",
    "tonsillitis", "pharyngitis", "sinusitis", "bronchitis acute", "influenza", "covid", "fever",
    "cough", "shortness of breath", "dermatitis", "atopic dermatitis", "eczema", "psoriasis", "acne",
    "cellulitis leg", "melanoma", "basal cell carcinoma", "breast cancer", "prostate", "hyperlipidemia",
    "obesity", "vitamin d deficiency", "hypothyroidism", "gout", "rheumatoid arthritis", "pregnancy",
    "supervision of normal pregnancy", "tuberculosis", "hiv", "hepatitis b", "sepsis", "stroke",
    "transient ischemic attack", "epilepsy", "parkinson", "dementia", "alzheimer", "syncope", "dizziness",
    "a", "s", "pain", "right", "unspecified", "zzqx", "ension", "xyz 123",
]


def keystrokes(queries: list[str]) -> list[str]:
    return [query[:end] for query in queries for end in range(1, len(query) + 1)]


def common_codes_scan(term: str, limit: int = 20) -> list[str]:
    """The baseline: what the search did before the whole classification, a scan of the shipped
    common codes (code prefix, or every word in the title)."""
    words = term.lower().split()
    wanted = term.upper().replace(".", "")
    return [code for code, title in icd10.ICD10.items()
            if code.replace(".", "").startswith(wanted) or all(w in title.lower() for w in words)][:limit]


def _per_keystroke(search, typed: list[str]) -> list[float]:
    times = []
    for term in typed:
        started = time.perf_counter()
        search(term)
        times.append((time.perf_counter() - started) * 1000)
    return sorted(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1, help="times to type every query")
    args = parser.parse_args()

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    index = icd10.classification()
    build = time.perf_counter() - started
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    queries = CODES + WORDS
    typed = keystrokes(queries) * args.rounds
    baseline = _per_keystroke(common_codes_scan, typed)
    times = _per_keystroke(icd10.search_icd10_codes, typed)
    p95 = times[int(len(times) * 0.95) - 1]
    base_p95 = baseline[int(len(baseline) * 0.95) - 1]
    print(table(["what", "figure"], [
        ["codes in the index", f"{len(index.codes):,}"],
        ["index built once (child process + index)", f"{build:.2f} s"],
        ["peak memory of this process, before → after the index", f"{rss_before / 1024:.0f} → {rss_after / 1024:.0f} MB"],
        ["queries / keystrokes searched", f"{len(queries)} / {len(typed)}"],
        ["median per keystroke", f"{statistics.median(times):.2f} ms"],
        ["p95 per keystroke", f"{p95:.2f} ms"],
        ["worst keystroke", f"{times[-1]:.2f} ms"],
        [f"baseline: a scan of the {len(icd10.ICD10)} shipped common codes, median / p95",
         f"{statistics.median(baseline):.3f} / {base_p95:.3f} ms"],
        ["whole classification against the baseline, median / p95",
         f"{statistics.median(times) / statistics.median(baseline):.1f}× / {p95 / base_p95:.1f}×"],
    ]))
    print()
    print(machine_note())


if __name__ == "__main__":
    main()

"""Severe drug-drug interactions to warn about at prescribing time.

Each interaction is between two *terms*; a term is an active ingredient or a drug class, spelt
as in the formulary (``formulary.MEDICINES``). A medicine's terms are its ingredients plus its
class, so "anticoagulants + nsaids" covers warfarin and apixaban with ibuprofen and naproxen,
and "methotrexate + trimethoprim" covers co-trimoxazole, which contains trimethoprim.

The list is deliberately short: only well-documented interactions that are contraindicated
or that call for avoiding the combination or for close monitoring. It is not a complete
interaction checker. Sources, named on each record: the BNF's interactions (Appendix 1 of
the printed BNF), Stockley's Drug Interactions, the FDA-approved labels (prescribing
information) and FDA and MHRA drug safety communications.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from hms_app.services.reference.formulary import split_ingredients

Severity = Literal["severe", "contraindicated"]


@dataclass(frozen=True)
class Interaction:
    a: str
    b: str
    severity: Severity
    effect: str
    """One sentence for the prescriber: what happens and what to do."""
    source: str

    def involves(self, a_terms: set[str], b_terms: set[str]) -> bool:
        """Whether one side holds ``a`` and the other ``b``, either way round."""
        return (self.a in a_terms and self.b in b_terms) or (self.a in b_terms and self.b in a_terms)


INTERACTIONS: tuple[Interaction, ...] = (
    # Bleeding
    Interaction(
        "anticoagulants", "antiplatelets", "severe",
        "Antiplatelet drugs (including low-dose aspirin) add to anticoagulation and markedly "
        "raise the risk of serious bleeding; combine only for a specific indication and "
        "duration, with gastroprotection.",
        "BNF Appendix 1; FDA label (Eliquis)",
    ),
    Interaction(
        "anticoagulants", "nsaids", "severe",
        "NSAIDs add antiplatelet effect and gastric mucosal injury to anticoagulation, "
        "increasing the risk of serious (especially gastrointestinal) bleeding; avoid, or "
        "give gastroprotection and monitor.",
        "BNF Appendix 1; FDA label (Eliquis)",
    ),
    Interaction(
        "warfarin", "macrolides", "severe",
        "Macrolides (clarithromycin and erythromycin especially) inhibit warfarin metabolism "
        "and can raise the INR sharply with bleeding; check the INR within a few days of "
        "starting and stopping.",
        "BNF Appendix 1; Stockley's Drug Interactions",
    ),
    Interaction(
        "warfarin", "metronidazole", "severe",
        "Metronidazole inhibits warfarin metabolism (CYP2C9) and markedly raises the INR; "
        "avoid, or reduce the warfarin dose and monitor the INR closely.",
        "BNF Appendix 1; FDA label (Coumadin)",
    ),
    Interaction(
        "warfarin", "sulfamethoxazole", "severe",
        "Co-trimoxazole (sulfamethoxazole) inhibits warfarin metabolism and markedly raises "
        "the INR with bleeding; choose another antibacterial or monitor the INR closely.",
        "BNF Appendix 1; Stockley's Drug Interactions",
    ),
    Interaction(
        "warfarin", "fluconazole", "severe",
        "Fluconazole inhibits warfarin metabolism (CYP2C9) and raises the INR; monitor the "
        "INR and reduce the warfarin dose if needed.",
        "BNF Appendix 1; FDA label (Diflucan)",
    ),
    Interaction(
        "warfarin", "amiodarone", "severe",
        "Amiodarone inhibits warfarin metabolism for weeks to months; reduce the warfarin dose "
        "by one third to one half and monitor the INR closely.",
        "FDA label (amiodarone); BNF Appendix 1",
    ),
    Interaction(
        "clopidogrel", "omeprazole", "severe",
        "Omeprazole inhibits CYP2C19 activation of clopidogrel and reduces its antiplatelet "
        "effect; avoid the combination and choose an acid suppressant with less CYP2C19 "
        "inhibition if one is needed.",
        "FDA label (Plavix); MHRA Drug Safety Update, April 2010",
    ),
    # Myopathy
    Interaction(
        "simvastatin", "clarithromycin", "contraindicated",
        "Clarithromycin (a strong CYP3A4 inhibitor) raises simvastatin levels many-fold, "
        "causing myopathy and rhabdomyolysis; suspend simvastatin during the course.",
        "FDA label (Zocor); FDA Drug Safety Communication, June 2011",
    ),
    Interaction(
        "simvastatin", "erythromycin", "contraindicated",
        "Erythromycin (a strong CYP3A4 inhibitor) raises simvastatin levels many-fold, "
        "causing myopathy and rhabdomyolysis; suspend simvastatin during the course.",
        "FDA label (Zocor); FDA Drug Safety Communication, June 2011",
    ),
    Interaction(
        "simvastatin", "amiodarone", "severe",
        "Amiodarone raises simvastatin levels and the risk of myopathy; do not exceed "
        "simvastatin 20 mg daily.",
        "FDA label (Zocor); FDA Drug Safety Communication, June 2011",
    ),
    # Marrow toxicity
    Interaction(
        "methotrexate", "trimethoprim", "severe",
        "Trimethoprim (alone or in co-trimoxazole) adds antifolate effect and reduces "
        "methotrexate clearance, causing potentially fatal bone marrow suppression; avoid.",
        "BNF Appendix 1; Stockley's Drug Interactions",
    ),
    Interaction(
        "methotrexate", "nsaids", "severe",
        "NSAIDs reduce the renal clearance of methotrexate, and severe, sometimes fatal marrow "
        "and gastrointestinal toxicity has followed (mostly with high-dose methotrexate); "
        "with low weekly doses monitor blood counts and renal function.",
        "FDA label (methotrexate, boxed warning); BNF Appendix 1",
    ),
    # Hypotension
    Interaction(
        "phosphodiesterase-5 inhibitors", "nitrates", "contraindicated",
        "Phosphodiesterase-5 inhibitors potentiate the vasodilation of nitrates and can cause "
        "profound, life-threatening hypotension; never combine.",
        "FDA label (Viagra); BNF Appendix 1",
    ),
    # Hyperkalaemia and renal function
    Interaction(
        "ace inhibitors", "spironolactone", "severe",
        "Both raise serum potassium: risk of severe hyperkalaemia; if combined (as in heart "
        "failure) use a low spironolactone dose and monitor potassium and renal function.",
        "BNF Appendix 1; Juurlink et al., N Engl J Med 2004;351:543-51",
    ),
    Interaction(
        "angiotensin ii receptor blockers", "spironolactone", "severe",
        "Both raise serum potassium: risk of severe hyperkalaemia; if combined (as in heart "
        "failure) use a low spironolactone dose and monitor potassium and renal function.",
        "BNF Appendix 1; Stockley's Drug Interactions",
    ),
    Interaction(
        "ace inhibitors", "angiotensin ii receptor blockers", "severe",
        "Dual renin-angiotensin blockade increases hyperkalaemia, hypotension and acute kidney "
        "injury without overall benefit; not recommended.",
        "MHRA Drug Safety Update, June 2014; BNF Appendix 1",
    ),
    # Lithium toxicity
    Interaction(
        "lithium", "nsaids", "severe",
        "NSAIDs reduce the renal excretion of lithium and can cause lithium toxicity; avoid, "
        "or reduce the lithium dose and monitor serum lithium closely.",
        "BNF Appendix 1; FDA label (lithium)",
    ),
    Interaction(
        "lithium", "ace inhibitors", "severe",
        "ACE inhibitors reduce the renal excretion of lithium and can cause lithium toxicity; "
        "avoid, or monitor serum lithium closely.",
        "BNF Appendix 1; FDA label (lithium)",
    ),
    Interaction(
        "lithium", "angiotensin ii receptor blockers", "severe",
        "Angiotensin II receptor blockers reduce the renal excretion of lithium and can cause "
        "lithium toxicity; avoid, or monitor serum lithium closely.",
        "BNF Appendix 1; FDA label (lithium)",
    ),
    # Digoxin toxicity
    Interaction(
        "digoxin", "amiodarone", "severe",
        "Amiodarone raises plasma digoxin, often to toxic levels; halve the digoxin dose and "
        "monitor digoxin levels and heart rate.",
        "FDA label (amiodarone); BNF Appendix 1",
    ),
    Interaction(
        "digoxin", "clarithromycin", "severe",
        "Clarithromycin inhibits P-glycoprotein and raises digoxin levels, causing digoxin "
        "toxicity; avoid, or monitor digoxin levels closely.",
        "Stockley's Drug Interactions; Juurlink et al., JAMA 2003;289:1652-8",
    ),
    # Central nervous system
    Interaction(
        "ssris", "tramadol", "severe",
        "Tramadol with an SSRI can cause serotonin syndrome and lowers the seizure threshold; "
        "avoid, or use the lowest doses and watch for agitation, tremor and hyperthermia.",
        "FDA label (Ultram); BNF Appendix 1",
    ),
    Interaction(
        "opioids", "benzodiazepines", "severe",
        "Opioids with benzodiazepines can cause profound sedation, respiratory depression, "
        "coma and death; combine only when alternatives are inadequate, at the lowest doses.",
        "FDA Drug Safety Communication (boxed warning), August 2016; BNF Appendix 1",
    ),
)


def interaction_terms(ingredients: str | Iterable[str], drug_class: str) -> set[str]:
    """The terms of a medicine: its ingredients and its class, lower case.

    Args:
        ingredients: a ``Medicine.ingredients`` string ("amoxicillin, clavulanic acid") or the
            ingredients already split.
        drug_class: ``Medicine.drug_class``.
    """
    if isinstance(ingredients, str):
        terms = split_ingredients(ingredients)
    else:
        terms = {item.strip().lower() for item in ingredients if item.strip()}
    if drug_class.strip():
        terms.add(drug_class.strip().lower())
    return terms


def interactions_between(a_terms: set[str], b_terms: set[str]) -> list[Interaction]:
    """The interactions between two medicines, given the terms of each (``interaction_terms``).

    Symmetric: swapping the arguments gives the same list, in ``INTERACTIONS`` order.
    """
    a_terms = {term.strip().lower() for term in a_terms}
    b_terms = {term.strip().lower() for term in b_terms}
    return [item for item in INTERACTIONS if item.involves(a_terms, b_terms)]

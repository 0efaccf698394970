"""The clinical reference data HMS ships with, as plain Python data.

- ``formulary``: the starting formulary (``MEDICINES``) and its vocabulary of forms.
- ``interactions``: severe drug-drug interactions and ``interactions_between``.
- ``allergens``: matching a recorded allergy to a medicine (``allergy_matches``).
- ``icd10``: common ICD-10-CM codes (``ICD10``) and ``search_icd10``.
- ``lab_catalog``: the starting lab catalog (``LAB_TESTS``) and ``range_for``.
- ``load``: ``sync_reference_data``, which inserts what the database lacks.

Every entry was reviewed by hand against the source named in its module. The data is a
starting point: the pharmacy and the laboratory own their tables once they are loaded.
"""

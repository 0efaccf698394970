"""Data leaving the hospital for other systems: the FHIR API, API clients and the patient's record summary."""

"""The clinical record: encounters, problems, allergies, the timeline, documents and prescribing."""

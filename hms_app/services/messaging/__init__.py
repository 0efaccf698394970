"""Telling people: in-app notifications and e-mail (the outbox, preferences and the sender)."""

"""Operational reports across the domains, for admin."""

"""Reusable UI: the layout shell, navigation, tables, form fields, badges."""

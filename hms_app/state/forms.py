"""Reading a submitted form: a client may send any value for it, or no form at all."""

from __future__ import annotations


def form_text(form_data: object, key: str, limit: int = 500) -> str:
    """One field of a form as text of at most ``limit`` characters.

    "" when the form or the field is missing, or when the field is not a single value (a
    dict or list where a browser sends text), so that it is never validated as its repr.
    """
    value = form_data.get(key) if isinstance(form_data, dict) else None
    return str(value)[:limit] if isinstance(value, str | int | float) else ""

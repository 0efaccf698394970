"""Text as clients send it, checked before it is stored, encrypted or searched for.

A client can send any string to any handler: NUL bytes, which PostgreSQL refuses in text;
lone UTF-16 surrogates (a JSON ``"\\ud800"`` escape), which no UTF-8 encoder accepts, so
SQLite, PostgreSQL and the encryption of clinical text would all fail on them; and other
control characters that no keyboard types. They are refused here, with a message, before
anything is written. Tabs and line breaks are ordinary text.
"""

from __future__ import annotations

import re

from hms_app.services.core.errors import ValidationError
from hms_app.services.core.language import _

_UNSTORABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def storable(text: str, label: str) -> str:
    """``text`` unchanged, or ``ValidationError`` if it holds a character that cannot be stored."""
    if _UNSTORABLE.search(text):
        raise ValidationError(_("The {label} contains control or invalid characters; retype it without them.").format(
            label=label))
    return text


def is_storable(text: str) -> bool:
    return _UNSTORABLE.search(text) is None


def shown(text: str) -> str:
    """``text`` with every character that cannot be stored replaced by U+FFFD, for the audit
    trail's record of what a client sent (a typed login email, say)."""
    return _UNSTORABLE.sub("\ufffd", text)


def one_line(value: object, label: str) -> str:
    """What a person typed into a one-line field: runs of white space made one space and the
    ends trimmed; ``ValidationError`` if it holds a character that cannot be stored."""
    return storable(" ".join(str(value or "").split()), label)


def checked_line(value: object, label: str, *, limit: int, required: bool = True) -> str:
    """``one_line``, which must not be empty (when ``required``) nor longer than ``limit`` characters."""
    text = one_line(value, label)
    if required and not text:
        raise ValidationError(_("Enter the {label}.").format(label=label))
    if len(text) > limit:
        raise ValidationError(_("The {label} must be at most {limit} characters.").format(label=label, limit=limit))
    return text


def escape_like(term: str) -> str:
    """``term`` with LIKE's wildcards escaped (use with ``escape="\\"``), so a search finds them as typed."""
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


_REFERENCE_CODE = re.compile(r"[A-Z0-9][A-Z0-9_-]{0,19}")


def reference_code(value: object, label: str | None = None) -> str:
    """The code of a reference list's entry (a lab test, a priced service): up to 20 capital
    letters, digits, ``-`` or ``_``, upper-cased as typed. ``label`` names it in a message
    ("code" when None)."""
    label = label or _("code")
    code = one_line(value, label).upper()
    if not _REFERENCE_CODE.fullmatch(code):
        raise ValidationError(_("Write the {label} with up to 20 capital letters, digits, '-' or '_', like ECG or "
                                "HBA1C (not {code}).").format(label=label, code=repr(code[:24])))
    return code

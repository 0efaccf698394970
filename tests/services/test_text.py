"""Text as people type it (``core.text``): one-line fields and LIKE search terms, one rule each."""

from __future__ import annotations

import pytest

from hms_app.services.core.errors import ValidationError
from hms_app.services.core.text import checked_line, escape_like, one_line


def test_one_line_collapses_white_space_and_refuses_what_cannot_be_stored():
    assert one_line("  Chest \t pain\nsince  Monday ", "reason") == "Chest pain since Monday"
    assert one_line(None, "reason") == ""
    assert one_line(42, "reference") == "42"
    with pytest.raises(ValidationError, match="The reason contains control or invalid characters"):
        one_line("bad\x00byte", "reason")
    with pytest.raises(ValidationError, match="The note contains control"):
        one_line("lone \ud800 surrogate", "note")


def test_checked_line_needs_text_within_its_limit():
    assert checked_line("  Penicillin ", "substance", limit=120) == "Penicillin"
    assert checked_line("", "reaction", limit=500, required=False) == ""
    assert checked_line("x" * 80, "department name", limit=80) == "x" * 80
    with pytest.raises(ValidationError, match=r"^Enter the full name\.$"):
        checked_line(" \n ", "full name", limit=120)
    with pytest.raises(ValidationError, match=r"^The diagnosis must be at most 300 characters\.$"):
        checked_line("y" * 301, "diagnosis", limit=300, required=False)


def test_escape_like_makes_wildcards_literal():
    assert escape_like("50%_off\\now") == "50\\%\\_off\\\\now"
    assert escape_like("plain text") == "plain text"

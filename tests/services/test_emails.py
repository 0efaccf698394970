"""Email addresses: one written form, hidden characters refused, look-alikes share a skeleton."""

from __future__ import annotations

import pytest

from hms_app.services.core import emails
from hms_app.services.core.errors import ValidationError

MARIA = "maria.garcia@patients.example"


@pytest.mark.parametrize("typed", [
    MARIA,
    "Maria.Garcia@Patients.EXAMPLE",
    f"  {MARIA}\t",
    f"{MARIA}.",  # the root's dot after the domain
    "\uff4daria.garcia@patients.example",  # full-width m
    "\uff2d\uff21\uff32\uff29\uff21.garcia@patients.example",  # full-width MARIA
    "maria.garcia\uff20patients.example",  # full-width @
    "\u217faria.garcia@patients.example",  # small Roman numeral one thousand
])
def test_the_written_forms_of_one_address_normalise_to_it(typed):
    assert emails.normalise(typed) == MARIA


@pytest.mark.parametrize(("typed", "character"), [
    (f"{MARIA}\u200b", "zero-width space"),
    ("maria\u200b.garcia@patients.example", "zero-width space inside"),
    ("maria.garcia@\u202eelpmaxe.stneitap", "right-to-left override"),
    ("\u202dmaria.garcia@patients.example", "left-to-right override"),
    ("maria.garcia@patients.example\u200f", "right-to-left mark"),
    ("maria.garcia@patients\u2067.example", "right-to-left isolate"),
    ("maria\u200c.garcia@patients.example", "zero-width non-joiner"),
    ("maria\u2060.garcia@patients.example", "word joiner"),
    ("\ufeffmaria.garcia@patients.example", "byte order mark"),
    ("mari\u00ada.garcia@patients.example", "soft hyphen"),
    ("maria\u034f.garcia@patients.example", "combining grapheme joiner"),
    ("maria\ufe0f.garcia@patients.example", "variation selector"),
    ("maria\u3164.garcia@patients.example", "Hangul filler"),
    ("maria\u00a0garcia@patients.example", "no-break space"),
    ("maria\U000e0041.garcia@patients.example", "tag character"),
])
def test_invisible_and_direction_characters_are_refused_with_a_clear_message(typed, character):
    with pytest.raises(ValidationError, match="invisible or text-direction character"):
        emails.normalise(typed)


@pytest.mark.parametrize("typed", [
    "", "maria", "maria@", "@patients.example", "maria@@patients.example", "maria@patients",
    f"{MARIA}..", "maria@patients..example", "<maria>@patients.example", "m" * 65 + "@patients.example",
    "a" * 250 + "@example.org", None, 12,
])
def test_what_is_not_an_address_is_refused(typed):
    with pytest.raises(ValidationError, match="valid email address"):
        emails.normalise(typed)


@pytest.mark.parametrize("lookalike", [
    "m\u0430ria.garcia@patients.example",  # Cyrillic a
    "maria.garc\u0456a@patients.example",  # Cyrillic i
    "rnaria.garcia@patients.example",  # r n for m
    "maria.garcia@patients.exarnple",
    "maria.garcia@patients.examp1e",  # digit one for l
])
def test_look_alikes_share_the_skeleton_of_the_address(lookalike):
    normal = emails.normalise(lookalike)
    assert normal != MARIA
    assert emails.skeleton(normal) == emails.skeleton(MARIA)


@pytest.mark.parametrize("other", [
    "maria.garcia2@patients.example", "mario.garcia@patients.example", "maria.garcia@patients.example.org",
    "maria.garcía@patients.example",  # an accent is a different letter
    "nadia.rahman@example.org",
    "maria.garcia@patients.exampIe",  # a capital I is an i once in lower case: no look-alike of l
])
def test_different_addresses_have_different_skeletons(other):
    assert emails.skeleton(emails.normalise(other)) != emails.skeleton(MARIA)


def test_the_skeleton_is_idempotent_and_follows_unicode_examples():
    # UTS #39's own example: "paypal" with a Cyrillic a (U+0430) and the Latin one look alike.
    assert emails.skeleton("p\u0430yp\u0430l") == emails.skeleton("paypal")
    for text in (MARIA, "paypal", "\u0440\u0430\u0443\u0440\u0430l"):
        assert emails.skeleton(emails.skeleton(text)) == emails.skeleton(text)


def test_the_demo_accounts_have_distinct_skeletons():
    from hms_app.operations.demo import demo_accounts

    addresses = [emails.normalise(email) for _role, email, _name in demo_accounts()]
    assert len({emails.skeleton(a) for a in addresses}) == len(addresses)


def test_a_placeholder_address_is_shown_as_none_with_what_to_log_in_with():
    assert emails.shown_address("mrn-000123@no-email.invalid") == (
        "No e-mail address (logs in as mrn-000123@no-email.invalid)")
    assert emails.shown_address("sofia.rossi@patients.example") == "sofia.rossi@patients.example"

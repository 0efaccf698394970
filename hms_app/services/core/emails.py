"""Accounts' email addresses: one written form, refusals of hidden characters, lookalikes.

An address is normalised before it is stored or compared (``normalise``): Unicode NFKC (a
full-width ``ｍ`` is an ``m``), lower case, the ends trimmed and one final dot of the domain
dropped (``example.org.`` is ``example.org``). It is refused when it holds a character that
cannot be seen or that turns the text's direction (a zero-width space, a right-to-left
override): two addresses that look identical must not be two accounts.

Letters of other scripts that look alike (a Cyrillic ``а`` for a Latin ``a``) are caught by the
address's confusable skeleton (``skeleton``, Unicode Technical Standard #39, section 4): two
addresses with one skeleton look the same to a reader, and only the first gets an account.
The confusables data is Unicode's ``confusables.txt`` as the ``confusable-homoglyphs`` package
(MIT) ships it.
"""

from __future__ import annotations

import functools
import json
import re
import unicodedata
from importlib import resources

from hms_app.services.core.errors import ValidationError
from hms_app.services.core.language import N_, _
from hms_app.services.core.text import is_storable

INVALID_MESSAGE = N_("Enter a valid email address, like name@example.org.")
HIDDEN_MESSAGE = N_(
    "This email address holds an invisible or text-direction character (often pasted along with it). "
    "Type the address again by hand."
)
_EMAIL_RE = re.compile(r"^[^@\s<>\"']+@[^@\s<>\"']+\.[^@\s<>\"']+$")
# Characters that show nothing (or turn the direction of what follows) although they are not in
# Unicode's format or control categories: fillers, joiners of graphemes, variation selectors.
_INVISIBLE = frozenset(
    [0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x2800, 0x3164, 0xFFA0, *range(0x180B, 0x1810),
     *range(0xFE00, 0xFE10), *range(0xE0100, 0xE01F0)]
)
# Control, format (zero-width and bidirectional marks, overrides, isolates), surrogate, private
# use, unassigned, and every separator: none belongs in an address.
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs"})


def hidden_character(text: str) -> str | None:
    """The first invisible or direction-changing character of ``text``, as ``U+XXXX``, or None."""
    for char in text:
        if unicodedata.category(char) in _HIDDEN_CATEGORIES or ord(char) in _INVISIBLE:
            return f"U+{ord(char):04X}"
    return None


def normalise(email: object) -> str:
    """The one written form of an address, for storing and comparing.

    Raises:
        ValidationError: not an address, or one that holds a hidden character.
    """
    text = str(email or "").strip()
    if hidden_character(text):
        raise ValidationError(_(HIDDEN_MESSAGE))
    text = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).lower())
    if text.endswith(".") and not text.endswith(".."):
        text = text[:-1]
    # NFKC can make a hidden character or an angle bracket out of a compatibility form.
    if (len(text) > 254 or not _EMAIL_RE.match(text) or not is_storable(text) or hidden_character(text)
            or ".." in text.partition("@")[2] or len(text.partition("@")[0]) > 64):
        raise ValidationError(_(INVALID_MESSAGE))
    return text


PLACEHOLDER_TLD = ".invalid"
"""The top-level domain RFC 2606 reserves so that it can never exist: the domain of the addresses
an import gives a person who came without one (``…@imported.invalid``)."""


def is_placeholder(address: object) -> bool:
    """An address that stands in for none: never shown as a person's address, exported or mailed."""
    return str(address or "").strip().rstrip(".").lower().endswith(PLACEHOLDER_TLD)


def shown_address(address: str) -> str:
    """An account's address as a page shows it: a placeholder says there is none, and what to log in with."""
    return _("No e-mail address (logs in as {address})").format(address=address) if is_placeholder(address) else address


def normalised_or_none(email: object) -> str | None:
    """``normalise``, or None for what could never be an account's address (a login's lookup)."""
    try:
        return normalise(email)
    except ValidationError:
        return None


@functools.cache
def _prototypes() -> dict[str, str]:
    """Each confusable character's prototype, from the package's ``confusables.json``.

    The package keeps each line of ``confusables.txt`` (source → prototype) in both
    directions, so the direction is read back from the shape of the data: in UTS #39 a source is
    one code point with one prototype, and a prototype is never a source. Each group is thus a
    star: the prototype, linked to all its sources. Its centre is the member with most links;
    in a group of two the prototype is the one of several code points, else the ASCII one, else
    the lower code point. Picking the other one of two would change no equality of skeletons.
    """
    data = json.loads(resources.files("confusable_homoglyphs").joinpath("confusables.json").read_text("utf-8"))

    def clean(text: str) -> str:
        # The data file wraps right-to-left characters in left-to-right marks for display.
        return text.replace("\u200e", "").replace("\u200f", "")

    links: dict[str, set[str]] = {}
    for key, entries in data.items():
        for entry in entries:
            a, b = clean(key), clean(entry["c"])
            if a and b and a != b:
                links.setdefault(a, set()).add(b)
                links.setdefault(b, set()).add(a)

    def centre_rank(member: str) -> tuple[int, int, int, str]:
        return (-len(links[member]), -(len(member) > 1), -member.isascii(), member)

    prototype: dict[str, str] = {}
    for member, neighbours in links.items():
        if len(member) != 1 or len(neighbours) != 1:
            continue  # a source is one code point with one prototype
        centre = min([member, *neighbours], key=centre_rank)
        if centre != member:
            prototype[member] = centre
    # A prototype of several code points is spelled in prototypes too (idempotence).
    return {char: "".join(prototype.get(c, c) for c in target) for char, target in prototype.items()}


def skeleton(email: str) -> str:
    """UTS #39 skeleton of an (already normalised) address: NFD, each character replaced by its
    confusables prototype, NFD again. Two addresses with equal skeletons look alike."""
    table = _prototypes()
    decomposed = unicodedata.normalize("NFD", email)
    return unicodedata.normalize("NFD", "".join(table.get(char, char) for char in decomposed))

"""The PDFs the hospital prints (invoice, lab report, record summary): one letterhead, one way to
print a line, a labelled field, a row of columns, a table and the closing note.

They are written in the reader's language (``language._``) with a Unicode font shipped in
``hms_app/fonts`` (DejaVu Sans: Latin, Greek, Cyrillic, Arabic), its letters joined by HarfBuzz
(fpdf2's text shaping). In a right-to-left language the helpers here lay the page out mirrored:
text starts at the right margin, a field's label stands right of its value, and columns run from
right to left. Callers describe the page as read left to right; only these helpers know otherwise.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from hms_app import settings
from hms_app.services.core.language import N_, _, current_language, text_direction

if TYPE_CHECKING:
    from fpdf import FPDF

FONT = "dejavu"
FONT_DIR = Path(__file__).resolve().parents[2] / "fonts"
_FONT_FILES = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf"}
"""The font's regular and bold faces (it has no italic with Arabic letters: notes print upright)."""
_MIRRORED = {"L": "R", "R": "L"}

SEX_LABELS = {"female": N_("Female"), "male": N_("Male"), "other": N_("Other"), "unknown": N_("Unknown")}
"""The printed word for a patient's sex (``Sex`` values, the same codes as FHIR's gender)."""


def sex_label(code: object) -> str:
    """``code`` (``female``…) as the reader's word; an unknown code as it is."""
    label = SEX_LABELS.get(str(code or "").lower())
    return _(label) if label else str(code or "")


@functools.cache
def _glyphs() -> frozenset[int]:
    """The characters both faces of the font draw."""
    from fontTools.ttLib import TTFont  # fpdf2's own dependency; loaded once, for downloads

    faces = [set(TTFont(FONT_DIR / name, lazy=True).getBestCmap()) for name in _FONT_FILES.values()]
    return frozenset(set.intersection(*faces))


def pdf_text(text: object) -> str:
    """``text`` as the font can draw it: a letter it lacks as its unaccented base where that
    exists, else "?"; invisible marks (the right-to-left mark of Arabic numbers) stay for the shaper."""
    glyphs = _glyphs()
    out = []
    for char in str(text):
        if ord(char) not in glyphs and unicodedata.category(char) not in ("Cf", "Cc"):
            base = "".join(c for c in unicodedata.normalize("NFKD", char)
                           if ord(c) in glyphs and not unicodedata.combining(c))
            char = base or "?"
        out.append(char)
    return "".join(out)


def right_to_left() -> bool:
    """Whether the document being written reads right to left (the current language's way)."""
    return text_direction() == "rtl"


def phrase(message: str, **values: object) -> str:
    """``message`` (already translated) with its ``{placeholders}`` filled. In a right-to-left
    document each value is isolated (FSI … PDI), so a date, a number or a name written left to
    right stays in one piece among the Arabic words instead of the bidi algorithm pulling its
    digits apart."""
    if right_to_left():
        values = {name: f"\u2068{value}\u2069" for name, value in values.items()}
    return message.format(**values)


def _start() -> str:
    """The alignment of text that starts a line: left, or right in a right-to-left language."""
    return "R" if right_to_left() else "L"


def letterhead(title: str, heading: str, *, bottom_margin: float | None = None) -> FPDF:
    """A new A4 document titled ``title``, its first page headed by the hospital's name and ``heading``.

    ``bottom_margin`` (mm) sets where a long document breaks to the next page; fpdf2's own
    margin otherwise.
    """
    from fpdf import FPDF  # imported here: only downloads need it

    pdf = FPDF(format="A4")
    for style, name in _FONT_FILES.items():
        pdf.add_font(FONT, style, str(FONT_DIR / name))
    pdf.set_text_shaping(True)  # joined Arabic letters, each line's direction by its first letter
    pdf.set_lang(current_language())
    pdf.set_title(pdf_text(title))
    pdf.set_author(pdf_text(settings.HOSPITAL_NAME))
    if bottom_margin is not None:
        pdf.set_auto_page_break(True, margin=bottom_margin)
    pdf.add_page()
    text_line(pdf, settings.HOSPITAL_NAME, size=16, bold=True, height=9)
    text_line(pdf, heading, size=12, height=7)
    return pdf


def text_line(pdf: FPDF, text: str, *, size: float, bold: bool = False, height: float = 6) -> None:
    """``text`` on a line of its own, from the reading side (a heading, a section's title)."""
    pdf.set_font(FONT, "B" if bold else "", size)
    pdf.cell(0, height, pdf_text(text), align=_start(), new_x="LMARGIN", new_y="NEXT")


def field(pdf: FPDF, label: str, value: str, *, label_width: float, bold: bool = False, wrap: bool = False) -> None:
    """One line of ``label`` (bold) and ``value`` ("-" when empty); ``wrap`` lets a long value run on."""
    height = 6
    if pdf.will_page_break(height):
        pdf.add_page()
    value_width = pdf.epw - label_width
    label_x, value_x = pdf.l_margin, pdf.l_margin + label_width
    if right_to_left():
        label_x, value_x = pdf.l_margin + value_width, pdf.l_margin
    top = pdf.get_y()
    pdf.set_xy(label_x, top)
    pdf.set_font(FONT, "B", 10)
    pdf.cell(label_width, height, pdf_text(label), align=_start())
    pdf.set_xy(value_x, top)
    pdf.set_font(FONT, "B" if bold else "", 10)
    write = pdf.multi_cell if wrap else pdf.cell
    write(value_width, height, pdf_text(value or "-"), align=_start(), new_x="LMARGIN", new_y="NEXT")


def table_row(pdf: FPDF, cells: Iterable[tuple[float, str, str]], *, size: float, bold: bool = False, height: float = 6,
        border: str | int = 0) -> None:
    """One line of columns, each ``(width, text, align)`` as read left to right ("L" or "R"); in a
    right-to-left language the first column stands at the right margin and each alignment is mirrored."""
    cells = list(cells)
    pdf.set_font(FONT, "B" if bold else "", size)
    if right_to_left():
        cells = [(width, text, _MIRRORED.get(align, align)) for width, text, align in reversed(cells)]
        pdf.set_x(pdf.l_margin + pdf.epw - sum(width for width, _text, _align in cells))
    for width, text, align in cells:
        pdf.cell(width, height, pdf_text(text), align=align, border=border)
    pdf.ln(height)


def table(pdf: FPDF, headings: Sequence[str], rows: Iterable[Sequence[str]], *, size: float = 8) -> None:
    """A full-width table of equal columns under bold ``headings``; long cells run on over lines.
    Columns run from the reading side ("-" for an empty cell)."""
    ordered = (lambda cells: list(reversed(cells))) if right_to_left() else list
    width = pdf.epw / len(headings)
    pdf.set_font(FONT, "", size)
    with pdf.table(col_widths=tuple(width for _heading in headings), text_align="RIGHT" if right_to_left() else "LEFT",
                   line_height=5) as drawn:
        drawn.row(ordered([pdf_text(h) for h in headings]))
        for cells in rows:
            drawn.row(ordered([pdf_text(cell or "-") for cell in cells]))


def closing_note(pdf: FPDF, note: str) -> bytes:
    """End the document with ``note`` in small print; returns the PDF's bytes."""
    pdf.ln(6)
    pdf.set_font(FONT, "", 8)
    pdf.multi_cell(0, 4, pdf_text(note), align=_start())
    return bytes(pdf.output())

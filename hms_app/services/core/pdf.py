"""The PDFs the hospital prints (invoice, lab report, record summary): one letterhead, one
way to print a labelled field and the closing note, and text the built-in font can show."""

from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING

from hms_app import settings

if TYPE_CHECKING:
    from fpdf import FPDF

_PDF_REPLACEMENTS = {"\u2013": "-", "\u2014": "-", "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"',
                     "\u2264": "<=", "\u2265": ">=", "\u2026": "...", "\u0141": "L", "\u0142": "l",
                     "\u0110": "D", "\u0111": "d", "\u0131": "i", "\u0152": "OE", "\u0153": "oe"}
"""Letters and signs that neither Latin-1 nor an accent-stripping decomposition covers."""


def pdf_text(text: str) -> str:
    """Text the PDF's built-in font can show: Latin-1 kept, accents elsewhere dropped
    (Ł stays L), anything else as "?"."""
    out = []
    for char in str(text):
        char = _PDF_REPLACEMENTS.get(char, char)
        try:
            char.encode("latin-1")
        except UnicodeEncodeError:
            base = unicodedata.normalize("NFKD", char).encode("latin-1", "ignore").decode("latin-1")
            char = base or "?"
        out.append(char)
    return "".join(out)


def letterhead(title: str, heading: str, *, bottom_margin: float | None = None) -> FPDF:
    """A new A4 document titled ``title``, its first page headed by the hospital's name and ``heading``.

    ``bottom_margin`` (mm) sets where a long document breaks to the next page; fpdf2's own
    margin otherwise.
    """
    from fpdf import FPDF  # imported here: only downloads need it

    pdf = FPDF(format="A4")
    pdf.set_title(pdf_text(title))
    pdf.set_author(pdf_text(settings.HOSPITAL_NAME))
    if bottom_margin is not None:
        pdf.set_auto_page_break(True, margin=bottom_margin)
    pdf.add_page()
    pdf.set_font("helvetica", "B", 16)
    pdf.cell(0, 9, pdf_text(settings.HOSPITAL_NAME), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("helvetica", "", 12)
    pdf.cell(0, 7, pdf_text(heading), new_x="LMARGIN", new_y="NEXT")
    return pdf


def field(pdf: FPDF, label: str, value: str, *, label_width: float, bold: bool = False, wrap: bool = False) -> None:
    """One line of ``label`` (bold) and ``value`` ("-" when empty); ``wrap`` lets a long value run on."""
    pdf.set_font("helvetica", "B", 10)
    pdf.cell(label_width, 6, pdf_text(label))
    pdf.set_font("helvetica", "B" if bold else "", 10)
    write = pdf.multi_cell if wrap else pdf.cell
    write(0, 6, pdf_text(value or "-"), new_x="LMARGIN", new_y="NEXT")


def closing_note(pdf: FPDF, note: str) -> bytes:
    """End the document with ``note`` in small italics; returns the PDF's bytes."""
    pdf.ln(6)
    pdf.set_font("helvetica", "I", 8)
    pdf.multi_cell(0, 4, pdf_text(note))
    return bytes(pdf.output())

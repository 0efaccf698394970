"""The one letterhead of the hospital's PDFs (``core.pdf``): invoice, lab report and record summary."""

from __future__ import annotations

import zlib

from hms_app import settings
from hms_app.services.core import pdf
from tests.services.lab_helpers import pdf_text as drawn_text


def test_pdf_text_survives_names_outside_latin_1():
    assert pdf.pdf_text("Łukasz Żółć \u2013 5 µmol/L") == "Lukasz Zólc - 5 µmol/L"
    assert pdf.pdf_text("王") == "?"


def test_the_letterhead_names_the_hospital_then_the_document():
    document = pdf.letterhead("Invoice INV-2026-000001", "Invoice INV-2026-000001")
    assert (document.title, document.author) == ("Invoice INV-2026-000001", settings.HOSPITAL_NAME)
    pdf.field(document, "Patient", "Zoë Łukasiewicz", label_width=40)
    pdf.field(document, "Insurer", "", label_width=40)
    data = pdf.closing_note(document, "Printed today \u2013 in GBP.")
    assert data.startswith(b"%PDF-")
    text = drawn_text(data)
    assert text.index(settings.HOSPITAL_NAME) < text.index("Invoice INV-2026-000001") < text.index("Patient")
    assert "Zoë Lukasiewicz" in text
    assert "Insurer -" in text  # an empty value prints as a dash
    assert text.endswith("Printed today - in GBP.")


def test_a_wrapped_field_runs_on_over_lines():
    document = pdf.letterhead("Lab report 1", "Laboratory report")
    pdf.field(document, "Comment", "haemolysed " * 40, label_width=45, wrap=True)
    y_after_wrap = document.get_y()
    single = pdf.letterhead("Lab report 1", "Laboratory report")
    pdf.field(single, "Comment", "haemolysed " * 40, label_width=45)
    assert y_after_wrap > single.get_y() + 6  # several lines, not one clipped line


def test_a_bottom_margin_moves_the_page_break():
    assert pdf.letterhead("Health record", "Health record summary", bottom_margin=15).b_margin == 15
    assert pdf.letterhead("Health record", "Health record summary").b_margin != 15


def test_the_text_reader_keeps_a_deflated_stream_that_ends_in_a_carriage_return():
    # About one deflated stream in 256 ends in the byte "\r": reading up to "\r?\nendstream"
    # cut that byte, the stream no longer inflated, and the PDF's text read as empty.
    number = next(n for n in range(100_000) if zlib.compress(f"BT ({n}) Tj ET".encode()).endswith(b"\r"))
    stream = zlib.compress(f"BT ({number}) Tj ET".encode())
    document = b"%PDF-1.3\n1 0 obj\n<< /Filter /FlateDecode >>\nstream\n" + stream + b"\nendstream\nendobj\n"
    assert drawn_text(document) == str(number)

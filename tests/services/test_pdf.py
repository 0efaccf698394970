"""The one letterhead of the hospital's PDFs (``core.pdf``): invoice, lab report and record summary,
in the reader's language (Arabic right to left)."""

from __future__ import annotations

import functools
import io
import zlib

import pytest
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from pypdf import PdfReader

from hms_app import settings
from hms_app.db.enums import Role
from hms_app.services.accounting import billing
from hms_app.services.core import language, pdf
from hms_app.services.interop import record_summary
from hms_app.services.laboratory import lab
from tests.services.appointment_helpers import call
from tests.services.fhir_helpers import build_record
from tests.services.lab_helpers import inflated_streams, use_private_data_dir, with_reference_data
from tests.services.lab_helpers import pdf_text as drawn_text


def test_pdf_text_keeps_what_the_font_draws_and_stands_in_for_the_rest():
    assert pdf.pdf_text("Łukasz Żółć \u2013 5 µmol/L \u2212£3") == "Łukasz Żółć \u2013 5 µmol/L \u2212£3"
    assert pdf.pdf_text("مستشفى \u200f07/12") == "مستشفى \u200f07/12"  # the right-to-left mark stays
    assert pdf.pdf_text("王 \u210a") == "? g"  # no CJK in the font; a letter it lacks as its base


def test_the_letterhead_names_the_hospital_then_the_document():
    document = pdf.letterhead("Invoice INV-2026-000001", "Invoice INV-2026-000001")
    assert (document.title, document.author) == ("Invoice INV-2026-000001", settings.HOSPITAL_NAME)
    pdf.field(document, "Patient", "Zoë Łukasiewicz", label_width=40)
    pdf.field(document, "Insurer", "", label_width=40)
    data = pdf.closing_note(document, "Printed today \u2013 in GBP.")
    assert data.startswith(b"%PDF-")
    text = drawn_text(data)
    assert text.index(settings.HOSPITAL_NAME) < text.index("Invoice INV-2026-000001") < text.index("Patient")
    assert "Zoë Łukasiewicz" in text
    assert "Insurer -" in text  # an empty value prints as a dash
    assert text.endswith("Printed today \u2013 in GBP.")


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


def test_the_stream_reader_keeps_a_deflated_stream_that_ends_in_a_carriage_return():
    # About one deflated stream in 256 ends in the byte "\r": reading up to "\r?\nendstream"
    # cut that byte, and the stream no longer inflated.
    number = next(n for n in range(100_000) if zlib.compress(f"BT ({n}) Tj ET".encode()).endswith(b"\r"))
    stream = zlib.compress(f"BT ({number}) Tj ET".encode())
    document = b"%PDF-1.3\n1 0 obj\n<< /Filter /FlateDecode >>\nstream\n" + stream + b"\nendstream\nendobj\n"
    assert inflated_streams(document) == [f"BT ({number}) Tj ET".encode()]


# --- right to left ----------------------------------------------------------------------------------


def _x_of(data: bytes) -> dict[str, float]:
    """Where each drawn string starts on the first page (mm from the left edge)."""
    found: dict[str, float] = {}

    def keep(text: str, _cm: list, tm: list, *_rest: object) -> None:
        if text.strip():
            found.setdefault(text.strip(), tm[4] * 25.4 / 72)

    PdfReader(io.BytesIO(data)).pages[0].extract_text(visitor_text=keep)
    return found


def test_a_right_to_left_document_is_mirrored():
    with language.use_language("ar"):
        document = pdf.letterhead("Invoice 1", "Invoice 1")
        pdf.field(document, "Patient", "Maria Garcia", label_width=40)
        pdf.table_row(document, ((24, "Date", "L"), (92, "Service", "L"), (28, "Amount", "R")), size=9)
        data = pdf.closing_note(document, "Printed today.")
    x = _x_of(data)
    assert x["Patient"] > x["Maria Garcia"] > 100  # the label right of its value, both at the right
    assert x["Date"] > x["Service"] > x["Amount"]  # the first column at the right margin
    assert x[settings.HOSPITAL_NAME] > 100  # the letterhead starts at the right
    with language.use_language("en"):
        document = pdf.letterhead("Invoice 1", "Invoice 1")
        pdf.field(document, "Patient", "Maria Garcia", label_width=40)
        pdf.table_row(document, ((24, "Date", "L"), (92, "Service", "L"), (28, "Amount", "R")), size=9)
        x = _x_of(pdf.closing_note(document, "Printed today."))
    assert x["Patient"] < x["Maria Garcia"]
    assert x["Date"] < x["Service"] < x["Amount"]
    assert x[settings.HOSPITAL_NAME] < 20


# --- the three documents in each language -----------------------------------------------------------


@pytest.fixture
def catalogues(monkeypatch):
    """The compiled catalogues, with this part's own translations (``locale/parts/pdf.*.po``) where
    they are not merged into them yet."""
    compiled = language.translations

    @functools.cache
    def merged(code: str):
        part = language.LOCALE_DIR / "parts" / f"pdf.{code}.po"
        if code == language.SOURCE_LANGUAGE or not part.exists():
            return compiled(code)
        buffer = io.BytesIO()
        with part.open("rb") as po:
            write_mo(buffer, read_po(po, locale=code))
        buffer.seek(0)
        own = Translations(buffer)
        own.add_fallback(compiled(code))
        return own

    monkeypatch.setattr(language, "translations", merged)


@pytest.fixture
def private_data(monkeypatch, tmp_path):
    yield from use_private_data_dir(monkeypatch, tmp_path)


def _documents(engine, actors, record) -> dict[str, bytes]:
    patient, accounts, lab_staff = actors[Role.PATIENT], actors[Role.ACCOUNTS], actors[Role.LAB]
    return {
        "invoice": call(engine, billing.invoice_pdf, actor=accounts, invoice_id=record.invoice_id).data,
        "lab": call(engine, lab.generate_report_pdf, actor=lab_staff, order_id=record.lab_order_id),
        "summary": call(engine, record_summary.my_record_pdf, actor=patient).data,
    }


@pytest.mark.db
@pytest.mark.parametrize(("code", "expected"), [
    ("es", {"invoice": ["Factura INV-", "Precio unitario", "Saldo", "Importes en"],
            "lab": ["Informe de laboratorio", "Intervalo de referencia", "Verificado por"],
            "summary": ["Resumen de la historia clínica", "Alergias", "Medicamentos", "14 de 28", "leve"]}),
    ("ar", {"invoice": ["فاتورة", "سعر الوحدة", "الرصيد", "المبالغ"],
            "lab": ["تقرير المختبر", "النطاق المرجعي", "تم التحقق بواسطة"],
            "summary": ["ملخص السجل الصحي", "الحساسية", "الأدوية", "خفيفة"]}),
])
def test_the_pdfs_are_written_in_the_readers_language(private_data, seeded, actors, catalogues, code, expected):
    engine = with_reference_data(seeded)
    record = build_record(engine, actors, actors[Role.PATIENT].user_id)
    with language.use_language(code):
        documents = _documents(engine, actors, record)
    for name, data in documents.items():
        reader = PdfReader(io.BytesIO(data), strict=True)
        assert reader.metadata.title
        assert len(reader.pages) >= 1
        text = drawn_text(data)
        for words in expected[name]:
            assert words in text, (name, words, text)
        assert "Maria Garcia" in text  # the hospital's data as typed
    english = _documents(engine, actors, record)
    assert "Invoice INV-" in drawn_text(english["invoice"])
    assert "Health record summary" in drawn_text(english["summary"])


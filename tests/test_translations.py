"""Every text goes through the translation function, and every shipped language has all of them.

``test_no_shown_text_bypasses_the_translation_function`` scans the app's modules for string
literals that read as words and do not go through ``_``/``t`` (``tests/text_coverage.py``);
``test_every_shipped_language_is_complete`` extracts the texts from the code and checks each
catalogue has them all, with the same placeholders and every plural form, compiled.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from hms_app.operations import translations
from hms_app.services.core import language
from hms_app.services.core.language import _, ngettext, use_language
from tests import text_coverage


def test_no_shown_text_bypasses_the_translation_function():
    found = [s for path in text_coverage.app_files()
             for s in (*text_coverage.scan_file(path), *text_coverage.shadowed_underscore(path))]
    assert not found, "texts shown without _()/t():\n" + "\n".join(map(str, found[:80]))


def test_every_shipped_language_is_complete():
    report = translations.check()
    assert report.complete, "\n".join(report.problems[:80])


def test_the_scanner_finds_a_bare_text_and_passes_a_wrapped_one(tmp_path: Path):
    module = text_coverage.APP / "pages" / "_scanner_probe.py"
    module.write_text(textwrap.dedent('''
        from hms_app.components.i18n import t
        def page():
            return rx.vstack(rx.text("Book an appointment"), rx.text(t("Cancel the booking")),
                             rx.box(id="booking-form"), rx.text("Saved"))  # i18n: not shown
        def handler(self):
            raise ValidationError(f"Choose a slot after {when}.")
        def other(self):
            raise ValidationError(_(f"Choose a day before {when}."))
    '''))
    try:
        found = {s.text for s in text_coverage.scan_file(module)}
    finally:
        module.unlink()
    assert found == {"Book an appointment", "f:Choose a slot after .", "_(f-string)"}


def test_a_module_that_imports_underscore_may_not_assign_it():
    module = text_coverage.APP / "services" / "_shadow_probe.py"
    module.write_text("from hms_app.services.core.language import _\nwhole, _, rest = 'a.b'.partition('.')\n")
    try:
        assert [s.text for s in text_coverage.shadowed_underscore(module)] == ["_ assigned"]
    finally:
        module.unlink()


@pytest.mark.parametrize(("header", "expected"), [
    ("ar-EG,ar;q=0.9,en;q=0.8", "ar"),
    ("fr-FR,fr;q=0.9,es;q=0.5,en;q=0.3", "es"),
    ("en;q=0.2, es;q=0.8", "es"),
    ("de-DE", ""),
    ("es;q=0, de", ""),
    ("", ""),
    ("x" * 5000, ""),
])
def test_the_browser_preference_picks_the_first_shipped_language(header, expected):
    assert language.preferred_language(header) == expected


def test_a_text_and_its_plural_forms_follow_the_current_language():
    with use_language("es"):
        assert _("Log out") == "Cerrar sesión"
    with use_language("ar"):
        assert _("Log out") == "تسجيل الخروج"
        assert language.text_direction() == "rtl"
    with use_language("en"):
        assert _("Log out") == "Log out"
        assert language.text_direction() == "ltr"
    with use_language("xx"):  # not shipped: the hospital's language
        assert language.current_language() == language.default_language()


def test_arabic_has_its_six_plural_forms():
    def forms() -> list[str]:
        return [ngettext("Notifications: {n} unread", "Notifications: {n} unread", n) for n in (0, 1, 2, 5, 11, 100)]

    assert set(forms()) == {"Notifications: {n} unread"}
    with use_language("ar"):
        arabic = forms()
    assert len(set(arabic)) == 6, arabic  # zero, one, two, few (3-10), many (11-99), other


def test_formats_follow_the_language_in_the_hospitals_country():
    with use_language("es"):
        assert language.current_locale().language == "es"
    with use_language("ar"):
        assert language.current_locale().language == "ar"

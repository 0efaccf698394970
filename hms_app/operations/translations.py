"""The translation catalogues: extract the texts from the code, merge them into each language's
``.po``, compile the ``.mo`` the server reads and the ``messages.js`` the browser reads.

``hms i18n extract`` writes ``hms_app/locale/messages.pot``; ``hms i18n update`` merges it into
every shipped language's ``messages.po`` (a new text arrives empty, for a translator);
``hms i18n compile`` writes the ``.mo`` files and ``assets/i18n/messages.js``; ``--check``
changes nothing and says what is out of date or untranslated (the test suite runs it).
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

from hms_app import settings
from hms_app.services.core.language import DOMAIN, LANGUAGES, LOCALE_DIR, SOURCE_LANGUAGE

KEYWORDS = {"_": None, "N_": None, "ngettext": (1, 2), "pgettext": ((1, "c"), 2), "t": None, "tn": (1, 2),
            "pt": ((1, "c"), 2)}
"""The calls that mark a text: ``_``/``N_``/``ngettext``/``pgettext`` on the server, ``t``/``tn``/``pt``
in the pages."""
TEMPLATE = LOCALE_DIR / f"{DOMAIN}.pot"
CLIENT_CATALOGUE = settings.PROJECT_ROOT / "assets" / "i18n" / "messages.js"
PLACEHOLDER = re.compile(r"\{(\w*)\}")


def translated_languages() -> list[str]:
    return [code for code in LANGUAGES if code != SOURCE_LANGUAGE]


def po_path(language: str) -> Path:
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def new_catalog(language: str | None = None) -> Catalog:
    catalog = Catalog(locale=language, project="HMS", domain=DOMAIN, charset="utf-8", fuzzy=False)
    catalog.msgid_bugs_address = ""
    return catalog


def extract() -> Catalog:
    """Every marked text of ``hms_app``, with where it is used."""
    catalog = new_catalog()
    method_map = [("**/migrations/**.py", "ignore"), ("**.py", "python")]
    for filename, lineno, message, comments, context in extract_from_dir(
            str(settings.PROJECT_ROOT / "hms_app"), method_map, keywords=KEYWORDS, comment_tags=("Translators:",),
            strip_comment_tags=True):
        if not (message if isinstance(message, str) else message[0]):
            continue
        catalog.add(message, None, [(f"hms_app/{filename}", lineno)], auto_comments=comments, context=context)
    return catalog


def _write(path: Path, catalog: Catalog) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    write_po(buffer, catalog, width=100, sort_output=True, omit_header=False)
    path.write_bytes(buffer.getvalue())


def _read(path: Path, language: str) -> Catalog:
    with path.open("rb") as handle:
        return read_po(handle, locale=language, domain=DOMAIN)


def write_template() -> Catalog:
    template = extract()
    _write(TEMPLATE, template)
    return template


def update() -> None:
    """Merge the template into every language's ``.po``: new texts empty, gone ones dropped."""
    template = _read(TEMPLATE, SOURCE_LANGUAGE) if TEMPLATE.exists() else write_template()
    for language in translated_languages():
        path = po_path(language)
        catalog = _read(path, language) if path.exists() else new_catalog(language)
        catalog.update(template, no_fuzzy_matching=True)
        catalog.obsolete.clear()
        _write(path, catalog)


def _mo_bytes(catalog: Catalog) -> bytes:
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    return buffer.getvalue()


def _client_catalogue(catalogs: dict[str, Catalog]) -> str:
    """The browser's catalogues: each language's translated texts, and its plural rule as JS."""
    texts, plurals = {}, []
    for language, catalog in catalogs.items():
        entries = {}
        for message in catalog:
            if not message.id or message.fuzzy:
                continue
            key = message.id[0] if isinstance(message.id, tuple) else message.id
            if message.context:
                key = f"{message.context}\x04{key}"
            if isinstance(message.id, tuple):
                forms = list(message.string)
                if all(forms):
                    entries[key] = forms
            elif message.string:
                entries[key] = message.string
        texts[language] = dict(sorted(entries.items()))
        plurals.append(f"  {json.dumps(language)}: (n) => {catalog.plural_expr},")
    return ("// Compiled from hms_app/locale/*/LC_MESSAGES/messages.po by `hms i18n compile`: do not edit.\n"
            f"export const CATALOGS = {json.dumps(texts, ensure_ascii=False, indent=0, sort_keys=True)};\n"
            "export const PLURALS = {\n" + "\n".join(plurals) + "\n};\n")


def _catalogs() -> dict[str, Catalog]:
    return {language: _read(po_path(language), language) for language in translated_languages()}


def compile_catalogues() -> None:
    catalogs = _catalogs()
    for language, catalog in catalogs.items():
        po_path(language).with_suffix(".mo").write_bytes(_mo_bytes(catalog))
    CLIENT_CATALOGUE.write_text(_client_catalogue(catalogs), encoding="utf-8")


@dataclass
class CatalogueReport:
    """What stands between the code and complete, compiled catalogues (empty when all is well)."""

    problems: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.problems


def _placeholders(text: str) -> set[str]:
    return set(PLACEHOLDER.findall(text))


def check() -> CatalogueReport:
    """Every text in the code translated in every shipped language, with the same placeholders and
    all plural forms; the compiled ``.mo`` and ``messages.js`` what ``compile`` would write."""
    report = CatalogueReport()
    template = extract()
    wanted = {(message.id, message.context) for message in template if message.id}
    catalogs = _catalogs()
    for language, catalog in catalogs.items():
        have = {(message.id, message.context): message for message in catalog if message.id}
        for message_id, context in sorted(wanted, key=str):
            message = have.get((message_id, context))
            shown = message_id if isinstance(message_id, str) else message_id[0]
            if context:
                shown = f"{shown} ({context})"
            strings = (list(message.string) if isinstance(message_id, tuple) else [message.string]) if message else []
            if message is None or message.fuzzy or not all(strings):
                report.problems.append(f"{language}: no translation of {shown!r}")
                continue
            if isinstance(message_id, tuple) and len(strings) != catalog.num_plurals:
                report.problems.append(f"{language}: {shown!r} needs {catalog.num_plurals} plural forms")
            expected = _placeholders(message_id if isinstance(message_id, str) else message_id[1]) - {"n"}
            found = [_placeholders(string) - {"n"} for string in strings]
            # A plural form may leave its count unsaid (Arabic's "one file", "two files"), but all
            # the forms together use every placeholder, and none of its own.
            wrong = [string for string, names in zip(strings, found, strict=True)
                     if (names - expected if isinstance(message_id, tuple) else names != expected)]
            if wrong or set().union(*found) != expected:
                report.problems.append(f"{language}: the placeholders of {shown!r} differ in {(wrong or strings)[0]!r}")
        mo = po_path(language).with_suffix(".mo")
        if not mo.exists() or mo.read_bytes() != _mo_bytes(catalog):
            report.problems.append(f"{language}: {mo.name} is not compiled from the .po: run `hms i18n compile`")
    if not CLIENT_CATALOGUE.exists() or CLIENT_CATALOGUE.read_text(encoding="utf-8") != _client_catalogue(catalogs):
        report.problems.append("assets/i18n/messages.js is not compiled from the .po files: run `hms i18n compile`")
    return report

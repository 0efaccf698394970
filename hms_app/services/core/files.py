"""Uploaded files: recognised by content, size-checked on the server, stored encrypted under
a generated name in ``settings.FILES_DIR`` (never Reflex's public upload folder), and read
back only through a service that checks who asks."""

from __future__ import annotations

import os
import re
import secrets
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from sqlmodel import Session

from hms_app import settings
from hms_app.db import crypto, storage
from hms_app.db.enums import AuditOutcome
from hms_app.services.core import audit
from hms_app.services.core.errors import ValidationError
from hms_app.services.core.language import _

_SIGNATURES = (
    (b"%PDF-", "application/pdf", (".pdf",)),
    (b"\x89PNG\r\n\x1a\n", "image/png", (".png",)),
    (b"\xff\xd8\xff", "image/jpeg", (".jpg", ".jpeg")),
)
_RISKY = {"exe", "com", "bat", "cmd", "sh", "bash", "ps1", "js", "mjs", "vbs", "jar", "msi", "scr", "dll", "php",
          "py", "pl", "rb", "html", "htm", "svg", "xhtml", "hta", "app", "apk", "elf", "bin", "so", "dmg", "lnk"}
_SAFE_STEM = re.compile(r"[\w\- ()\[\],+&']{1,100}")
"""A file name's stem as kept: letters and digits of any script, and a few marks; matched whole."""
_ASCII_UNSAFE = re.compile(r"[^A-Za-z0-9\-_. ()\[\],+&']")


@dataclass(frozen=True)
class CheckedFile:
    file_name: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class DownloadedFile:
    """A file on its way to the person who asked for it (an upload, a report, an invoice)."""

    file_name: str
    content_type: str
    data: bytes


def check_upload(file_name: object, data: bytes) -> CheckedFile:
    """Accept a PDF, PNG or JPEG of at most 10 MB whose name matches its content.

    Raises:
        ValidationError: with a message for the person uploading; nothing is stored.
    """
    name = str(file_name or "").strip()
    if not name:
        raise ValidationError(_("The file has no name."))
    if "/" in name or "\\" in name or name.startswith(".") or ".." in name or "\x00" in name:
        raise ValidationError(_("File names may not contain folders or start with a dot."))
    if not isinstance(data, bytes | bytearray) or len(data) == 0:
        raise ValidationError(_("The file is empty."))
    if len(data) > settings.MAX_UPLOAD_BYTES:
        raise ValidationError(_("The file is larger than {megabytes} MB.").format(
            megabytes=settings.MAX_UPLOAD_BYTES // (1024 * 1024)))
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem:
        raise ValidationError(_("The file name needs an extension: .pdf, .png, .jpg or .jpeg."))
    parts = [p.lower() for p in name.split(".")[1:]]
    if any(part in _RISKY for part in parts):
        raise ValidationError(_("That file name carries a program's extension; only PDF, PNG and JPEG files are "
                                "accepted."))
    if len(parts) > 1:
        raise ValidationError(_("Use a file name with a single extension, like report.pdf."))
    suffix = f".{extension.lower()}"
    for magic, content_type, extensions in _SIGNATURES:
        if bytes(data[: len(magic)]) == magic:
            if suffix not in extensions:
                raise ValidationError(_("The file's name says {extension} but its content is a {kind} file.").format(
                    extension=suffix, kind=content_type.split("/")[1].upper()))
            return CheckedFile(f"{_safe_stem(stem)}{suffix}", content_type, bytes(data))
    raise ValidationError(_("Only PDF, PNG and JPEG files are accepted (checked by their content, not their name)."))


def _safe_stem(stem: str) -> str:
    """``stem`` as a file name may show it: whole if every character is safe, else with each
    other character (a control or formatting character, a quote, a slash) made ``_``."""
    stem = unicodedata.normalize("NFC", stem).strip()
    if _SAFE_STEM.fullmatch(stem):
        return stem
    return re.sub(r"[^\w\- ()]", "_", stem)[:100].strip() or "file"


def download_name(file_name: str) -> str:
    """The name a stored file downloads under: its kept name, cleaned again (rows kept before
    names were checked whole may hold a control character), never empty."""
    stem, dot, extension = str(file_name or "").rpartition(".")
    if not dot:
        stem, extension = extension, ""
    extension = re.sub(r"[^A-Za-z0-9]", "", extension)[:10]
    return _safe_stem(stem) + (f".{extension}" if extension else "")


def content_disposition(file_name: str) -> str:
    """An attachment header value for ``file_name`` (RFC 6266): an ASCII ``filename`` for old
    clients and the exact name, any script, as ``filename*`` (RFC 5987, UTF-8, percent-encoded).
    Only ASCII, no quote or line break, whatever the name holds."""
    name = download_name(file_name)
    plain = _ASCII_UNSAFE.sub("_", unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode())
    stem, dot, extension = plain.rpartition(".")
    if not dot:
        stem, extension = extension, ""
    if not stem.strip("_ ."):
        plain = "file" + (f".{extension}" if extension else "")
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(name, safe='')}"


def read_for_download(session: Session, actor: object, storage_name: str, *, action: str, entity_type: str,
                      entity_id: object, patient_id: int | None) -> bytes:
    """A stored file's content for a download the caller has allowed; a file that cannot be read
    (missing from storage, not a name of ours) is audited as a failed download before the refusal."""
    try:
        return read_decrypted(storage_name)
    except ValidationError as error:
        audit.record(session, actor, action, entity_type=entity_type, entity_id=entity_id, patient_id=patient_id,
                     outcome=AuditOutcome.FAILED, detail=error.message)
        session.commit()
        raise


def store_encrypted(data: bytes) -> str:
    """Encrypt and write ``data`` under a new random name; returns that name."""
    storage.private_dir(settings.FILES_DIR)
    name = secrets.token_hex(16)
    path = settings.FILES_DIR / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(crypto.encrypt_bytes(data))
    return name


@contextmanager
def stored_encrypted(data: bytes) -> Iterator[str]:
    """Store ``data`` encrypted under a new name for the row the block writes; yields the name.

    If the block fails (its transaction did not commit), the file is removed again, so a
    refused or failed upload leaves nothing behind in storage.
    """
    name = store_encrypted(data)
    try:
        yield name
    except BaseException:
        remove_stored(name)
        raise


def _path(storage_name: str) -> Path:
    if not re.fullmatch(r"[0-9a-f]{32}", storage_name or ""):
        raise ValidationError(_("That file is not available."))
    return settings.FILES_DIR / storage_name


def read_decrypted(storage_name: str) -> bytes:
    path = _path(storage_name)
    if not path.exists():
        raise ValidationError(_("That file is missing from storage; ask an administrator to restore it."))
    return crypto.decrypt_bytes(path.read_bytes())


def remove_stored(storage_name: str) -> None:
    path = _path(storage_name)
    if path.exists():
        path.unlink()

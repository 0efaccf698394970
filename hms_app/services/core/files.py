"""Uploaded files: recognised by content, size-checked on the server, stored encrypted under
a generated name in ``settings.FILES_DIR`` (never Reflex's public upload folder), and read
back only through a service that checks who asks."""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from hms_app import settings
from hms_app.db import crypto
from hms_app.services.core.errors import ValidationError

_SIGNATURES = (
    (b"%PDF-", "application/pdf", (".pdf",)),
    (b"\x89PNG\r\n\x1a\n", "image/png", (".png",)),
    (b"\xff\xd8\xff", "image/jpeg", (".jpg", ".jpeg")),
)
_RISKY = {"exe", "com", "bat", "cmd", "sh", "bash", "ps1", "js", "mjs", "vbs", "jar", "msi", "scr", "dll", "php",
          "py", "pl", "rb", "html", "htm", "svg", "xhtml", "hta", "app", "apk", "elf", "bin", "so", "dmg", "lnk"}
_SAFE_NAME = re.compile(r"^[\w\- ()\[\],+&']{1,100}$")


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
        raise ValidationError("The file has no name.")
    if "/" in name or "\\" in name or name.startswith(".") or ".." in name or "\x00" in name:
        raise ValidationError("File names may not contain folders or start with a dot.")
    if not isinstance(data, bytes | bytearray) or len(data) == 0:
        raise ValidationError("The file is empty.")
    if len(data) > settings.MAX_UPLOAD_BYTES:
        raise ValidationError(f"The file is larger than {settings.MAX_UPLOAD_BYTES // (1024 * 1024)} MB.")
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem:
        raise ValidationError("The file name needs an extension: .pdf, .png, .jpg or .jpeg.")
    parts = [p.lower() for p in name.split(".")[1:]]
    if any(part in _RISKY for part in parts):
        raise ValidationError("That file name carries a program's extension; only PDF, PNG and JPEG files are accepted.")
    if len(parts) > 1:
        raise ValidationError("Use a file name with a single extension, like report.pdf.")
    suffix = f".{extension.lower()}"
    for magic, content_type, extensions in _SIGNATURES:
        if bytes(data[: len(magic)]) == magic:
            if suffix not in extensions:
                raise ValidationError(f"The file's name says {suffix} but its content is a "
                                      f"{content_type.split('/')[1].upper()} file.")
            if not _SAFE_NAME.match(stem):
                stem = re.sub(r"[^\w\- ()]", "_", stem)[:100] or "file"
            return CheckedFile(f"{stem}{suffix}", content_type, bytes(data))
    raise ValidationError("Only PDF, PNG and JPEG files are accepted (checked by their content, not their name).")


def store_encrypted(data: bytes) -> str:
    """Encrypt and write ``data`` under a new random name; returns that name."""
    settings.FILES_DIR.mkdir(parents=True, exist_ok=True)
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
        raise ValidationError("That file is not available.")
    return settings.FILES_DIR / storage_name


def read_decrypted(storage_name: str) -> bytes:
    path = _path(storage_name)
    if not path.exists():
        raise ValidationError("That file is missing from storage; ask an administrator to restore it.")
    return crypto.decrypt_bytes(path.read_bytes())


def remove_stored(storage_name: str) -> None:
    path = _path(storage_name)
    if path.exists():
        path.unlink()

"""Encryption at rest for clinical text and stored files (Fernet, ``cryptography``).

The key comes from ``HMS_DATA_KEY`` or from the key file ``data/hms.key``, created once
with mode 0600. The key file may hold several keys, newest first: everything is
encrypted with the first and decrypted with any, so ``hms rotate-key`` can add a new key,
re-encrypt every value and file, and then drop the old one.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from hms_app import settings
from hms_app.db import storage

_cipher: MultiFernet | None = None


def key_file() -> Path:
    return settings.DATA_DIR / "hms.key"


def _read_keys() -> list[bytes]:
    if settings.DATA_KEY:
        return [k.strip().encode() for k in settings.DATA_KEY.split(",") if k.strip()]
    path = key_file()
    if not path.exists():
        _create_key_file(path)
    return [line.strip() for line in path.read_bytes().splitlines() if line.strip()]


def _create_key_file(path: Path) -> None:
    """Write a first key where several workers starting at once may race to do the same.

    The key is written to a private temporary file and then hard-linked into place: the key
    file appears whole or not at all, and only the first worker's key is kept.
    """
    storage.private_dir(path.parent)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(Fernet.generate_key() + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):  # another worker's key won: use that one
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def cipher() -> MultiFernet:
    """The process-wide cipher: encrypts with the newest key, decrypts with any."""
    global _cipher
    if _cipher is None:
        _cipher = MultiFernet([Fernet(k) for k in _read_keys()])
    return _cipher


def reset_cipher() -> None:
    """Forget the loaded keys (after a rotation, or when tests switch data folders)."""
    global _cipher
    _cipher = None


def encrypt_bytes(data: bytes) -> bytes:
    return cipher().encrypt(data)


def decrypt_bytes(token: bytes) -> bytes:
    return cipher().decrypt(token)


def write_keys(keys: list[bytes]) -> None:
    """Replace the key file's keys (rotation). Refuses when the key comes from the environment."""
    if settings.DATA_KEY:
        raise RuntimeError("HMS_DATA_KEY is set: rotate by setting it to 'NEW,OLD', re-encrypting, then 'NEW'.")
    path = key_file()
    temporary = path.with_suffix(".tmp")
    # A leftover temporary file would keep its own (possibly wider) mode through O_TRUNC.
    temporary.unlink(missing_ok=True)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(b"\n".join(keys) + b"\n")
        # The keys must be on disk before the data they decrypt is committed or their
        # predecessors dropped: a lost key file means unreadable records.
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    reset_cipher()


def current_keys() -> list[bytes]:
    return _read_keys()


class EncryptedText(sa.types.TypeDecorator):
    """A text column stored as a Fernet token: the database never holds the plain text."""

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: sa.Dialect) -> str | None:
        if value is None:
            return None
        return cipher().encrypt(value.encode()).decode()

    def process_result_value(self, value: str | None, dialect: sa.Dialect) -> str | None:
        if value is None:
            return None
        try:
            return cipher().decrypt(value.encode()).decode()
        except InvalidToken as error:
            raise RuntimeError("a value could not be decrypted: wrong or missing data key") from error

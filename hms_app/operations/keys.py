"""Rotation of the data key that encrypts clinical text and stored files.

``rotate_data_key`` adds a new key in front of the old ones, re-encrypts every encrypted
column of every table and every stored file with it, commits, and only then drops the old
keys. At every moment each value and file can be decrypted with the keys in the key file:
a rotation that fails half-way leaves the file holding the new and the old keys, and
running it again finishes the job.

Run it with the app stopped: a running worker keeps the keys it loaded at start and would
neither read values encrypted with the new key nor stop writing with the old one.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlmodel import Session, SQLModel

from hms_app import settings
from hms_app.db import crypto
from hms_app.db import models as _models  # noqa: F401  (registers every table on SQLModel.metadata)
from hms_app.services.core import audit
from hms_app.services.core.errors import Conflict

BATCH_SIZE = 500
_STORED_FILE = re.compile(r"[0-9a-f]{32}")


class KeyRotationFailed(Conflict):
    """A value or file could not be re-encrypted; nothing was committed, no key was dropped."""


@dataclass(frozen=True)
class RotationReport:
    tables: int
    """Tables with at least one encrypted column."""
    columns: int
    values: int
    """Encrypted values re-encrypted (NULLs are not counted)."""
    files: int
    old_keys_dropped: int


def encrypted_columns() -> dict[sa.Table, list[sa.Column]]:
    """Every table's columns of type ``EncryptedText``, found in the models' metadata."""
    found: dict[sa.Table, list[sa.Column]] = {}
    for table in SQLModel.metadata.sorted_tables:
        columns = [c for c in table.columns if isinstance(c.type, crypto.EncryptedText)]
        if columns:
            found[table] = columns
    return found


def rotate_data_key(session: Session) -> RotationReport:
    """Re-encrypt every value and file with a new key, then drop the old keys.

    Raises:
        Conflict: the key comes from ``HMS_DATA_KEY`` (rotate through the environment).
        KeyRotationFailed: a value or file did not decrypt with the current keys.
    """
    if settings.DATA_KEY:
        raise Conflict(
            "The data key comes from HMS_DATA_KEY, so 'hms rotate-key' will not change it. To rotate: "
            "stop the app; write the keys of HMS_DATA_KEY, one per line, to the key file "
            f"{crypto.key_file()} (mode 0600); unset HMS_DATA_KEY and run 'hms rotate-key'; then set "
            "HMS_DATA_KEY to the one key now in that file, delete the file, and start the app."
        )
    old_keys = crypto.current_keys()
    new_key = Fernet.generate_key()
    # From here on both keys decrypt, so a failure at any later step loses nothing.
    crypto.write_keys([new_key, *old_keys])
    rotating = crypto.cipher()
    try:
        tables, columns, values = _rotate_columns(session, rotating)
        files = _rotate_files(rotating)
    except InvalidToken as error:
        session.rollback()
        raise KeyRotationFailed(
            f"Rotation stopped: {error.args[0] if error.args else 'a value'} does not decrypt with the "
            "current keys. Nothing was committed and the key file keeps the new and the old keys."
        ) from None
    except BaseException:
        session.rollback()
        raise
    report = RotationReport(tables, columns, values, files, len(old_keys))
    audit.record(session, None, "key.rotate", actor_email="system",
                 detail=f"{report.values} values in {report.columns} columns of {report.tables} tables, "
                        f"{report.files} files; {report.old_keys_dropped} old key(s) dropped")
    session.commit()
    crypto.write_keys([new_key])
    return report


def _rotate_columns(session: Session, rotating: MultiFernet) -> tuple[int, int, int]:
    """Re-encrypt every encrypted column in place, in batches, in the session's transaction."""
    values = columns = 0
    found = encrypted_columns()
    for table, encrypted in found.items():
        columns += len(encrypted)
        values += _rotate_table(session, rotating, table, [c.name for c in encrypted])
    return len(found), columns, values


def _rotate_table(session: Session, rotating: MultiFernet, table: sa.Table, names: list[str]) -> int:
    (key_name,) = [c.name for c in table.primary_key.columns]
    # Untyped columns: the raw tokens, without EncryptedText's decryption on the way.
    raw = sa.table(table.name, sa.column(key_name), *(sa.column(n) for n in names))
    key = raw.c[key_name]
    update = (
        sa.update(raw).where(key == sa.bindparam("row_key"))
        .values({n: sa.bindparam(f"new_{n}") for n in names})
    )
    count = 0
    for batch in _batches(session, raw, key, names):
        params = []
        for row_key, *tokens in batch:
            rotated = {}
            for name, token in zip(names, tokens, strict=True):
                if token is None:
                    rotated[f"new_{name}"] = None
                    continue
                try:
                    rotated[f"new_{name}"] = rotating.rotate(token.encode()).decode()
                except InvalidToken:
                    raise InvalidToken(f"{table.name}.{name} of row {row_key}") from None
                count += 1
            params.append({"row_key": row_key, **rotated})
        session.execute(update, params)
    return count


def _batches(session: Session, raw: sa.TableClause, key: sa.ColumnClause, names: list[str]) -> Iterator[list]:
    """The rows in primary-key order, ``BATCH_SIZE`` at a time (keyset paging)."""
    last = None
    while True:
        query = sa.select(key, *(raw.c[n] for n in names)).order_by(key).limit(BATCH_SIZE)
        if last is not None:
            query = query.where(key > last)
        batch = session.execute(query).all()
        if not batch:
            return
        yield batch
        last = batch[-1][0]


def _rotate_files(rotating: MultiFernet) -> int:
    """Re-encrypt every stored file, each replaced atomically (a crash leaves old or new, whole)."""
    folder = settings.FILES_DIR
    if not folder.is_dir():
        return 0
    count = 0
    for path in sorted(folder.iterdir()):
        if not (path.is_file() and _STORED_FILE.fullmatch(path.name)):
            continue
        try:
            token = rotating.rotate(path.read_bytes())
        except InvalidToken:
            raise InvalidToken(f"the stored file {path.name}") from None
        _replace_file(path, token)
        count += 1
    return count


def _replace_file(path: Path, data: bytes) -> None:
    temporary = path.with_name(path.name + ".rotating")
    temporary.unlink(missing_ok=True)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)

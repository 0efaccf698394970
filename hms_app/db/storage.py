"""The data folder's permissions: only the account that runs HMS may read what it keeps.

``data/`` holds the SQLite database (with its ``-wal`` and ``-shm`` files), the data key and the
encrypted uploads. The folders are created 0700 and the files 0600; a database file is created
0600 before SQLite opens it, because SQLite gives its ``-wal`` and ``-shm`` files the database
file's mode. What was made wider before (by an older version, a copy, a restore by hand) is left
as it is but named at start (``wide_permissions``), for the deployer to narrow.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from hms_app import settings

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """Create ``path`` (and any missing parent) with mode 0700; an existing folder is left as it is."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for folder in reversed(missing):
        folder.mkdir(mode=PRIVATE_DIR_MODE, exist_ok=True)
    return path


def private_file(path: Path) -> Path:
    """Create an empty ``path`` with mode 0600 in a private folder, unless it exists."""
    private_dir(path.parent)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE))
    return path


def _kept_paths(database: Path | None) -> list[Path]:
    paths = [settings.DATA_DIR, settings.FILES_DIR, settings.DATA_DIR / "hms.key"]
    if database is not None:
        paths += [database, Path(f"{database}-wal"), Path(f"{database}-shm")]
        if database.parent != settings.DATA_DIR:
            paths.append(database.parent)
    return paths


def wide_permissions(database: Path | None) -> list[str]:
    """What of the data folder others than its owner may read, write or enter: one line each.

    Args:
        database: the SQLite database file, or None on PostgreSQL.
    """
    found = []
    for path in _kept_paths(database):
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except FileNotFoundError:
            continue
        if mode & 0o077:
            wanted = PRIVATE_DIR_MODE if path.is_dir() else PRIVATE_FILE_MODE
            found.append(f"{path} has mode {mode:04o}; others than its owner can reach it: "
                         f"chmod {wanted:04o} {path}")
    return found

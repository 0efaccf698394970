"""Backups of the whole hospital, and their restore: the database and the encrypted files in one archive.

``create_backup`` writes one ``.tar.gz`` (mode 0600) holding::

    database/hms.sqlite   SQLite: a copy taken with SQLite's online backup API while the app runs
    database/hms.pgdump   PostgreSQL: ``pg_dump --format=custom``, in the snapshot the counts were read in
    files/<name>          every stored file, as stored: encrypted
    manifest.json         schema revision, rows per table, the audit chain's length and last hash,
                          HMS version, when, and a SHA-256 of every other member
    manifest.hmac         HMAC-SHA256 of manifest.json under a key derived from the data key

The data key is never in the archive: without it the clinical text and files in it cannot be
read, and ``restore_backup`` refuses the archive (the HMAC does not match). Whoever holds both
the archive and the key reads everything, so the key is kept apart (``key_advice``).

The database is copied first and the files after it: a file is written before the row that
names it is committed, so every file the copy names is on disk when the files are read. A
file replaced and removed in between (a lab report uploaded again) fails the backup rather
than leave it incomplete.

``restore_backup`` refuses a database or files folder that holds data unless forced, checks
the HMAC (so the key) and every checksum before it writes anything, restores, and then checks
the result against the manifest: rows per table, the audit chain, the stock ledger, that a
sample of encrypted values and files decrypts with the current key, and that every file the
database names is there. A backup restores to the engine it was taken from (SQLite to
SQLite, PostgreSQL to PostgreSQL); moving between engines is not supported.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import hmac
import importlib.metadata
import io
import json
import os
import re
import secrets
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from cryptography.fernet import InvalidToken
from sqlmodel import Session

from hms_app import settings
from hms_app.db import crypto, postgres
from hms_app.db.engine import create_engine, session_scope
from hms_app.db.enums import AuditOutcome
from hms_app.db.migrate import alembic_config
from hms_app.db.models import Document, LabReportFile
from hms_app.operations import keys
from hms_app.services.core import audit
from hms_app.services.core.errors import HMSError
from hms_app.services.medicines.inventory import ledger_mismatches

FORMAT = "hms-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
MANIFEST_MAC = "manifest.hmac"
SQLITE_MEMBER = "database/hms.sqlite"
PGDUMP_MEMBER = "database/hms.pgdump"
SAMPLE_SIZE = 25
"""Encrypted values per column, and stored files, decrypted to check the key after a restore."""

_FILE_MEMBER = re.compile(r"files/([0-9a-f]{32})")
_STORED_FILE = re.compile(r"[0-9a-f]{32}")
_STORAGE_TABLES = (Document, LabReportFile)
_CHUNK = 1024 * 1024


class BackupError(HMSError):
    """The backup could not be made; no archive was written."""


class RestoreRefused(HMSError):
    """The archive was not restored: nothing was written to the database or the files folder."""


class ArchiveDamaged(RestoreRefused):
    """The archive is not an HMS backup, is damaged, or was altered after it was written."""


class WrongDataKey(RestoreRefused):
    """The data key in use is missing, or is not the key the backup was made with."""


# --- the key ---------------------------------------------------------------------------------------


def key_fingerprint(key: bytes) -> str:
    """A short public name for a data key (a one-way hash): tells keys apart without revealing them."""
    return hashlib.sha256(b"hms data key fingerprint\0" + key.strip()).hexdigest()[:16]


def _mac_key(key: bytes) -> bytes:
    return hashlib.sha256(b"hms backup manifest mac\0" + key.strip()).digest()


def _key_source() -> str:
    return "HMS_DATA_KEY" if settings.DATA_KEY else str(crypto.key_file())


def _keys_in_place(*, restoring: bool) -> list[bytes]:
    """The data keys in use, without creating a key file when there is none.

    Raises:
        WrongDataKey: restoring, and no key is set or present.
        BackupError: backing up, and no key is set or present.
    """
    if not settings.DATA_KEY and not crypto.key_file().exists():
        if not restoring:
            raise BackupError(f"No data key: HMS_DATA_KEY is not set and there is no key file at "
                              f"{crypto.key_file()}, so the encrypted records could not be read back. Put the key "
                              "in place first.")
        raise WrongDataKey(
            f"No data key: HMS_DATA_KEY is not set and there is no key file at {crypto.key_file()}. Put the key "
            "kept with this backup there (one line, mode 0600) or in HMS_DATA_KEY, then run the restore again. "
            "Nothing was restored."
        )
    found = crypto.current_keys()
    if not found:
        raise (WrongDataKey if restoring else BackupError)(f"The data key in {_key_source()} is empty.")
    return found


def key_advice() -> str:
    """What to tell the operator after a backup: the key is not in it, and how to keep it."""
    fingerprints = ", ".join(key_fingerprint(k) for k in crypto.current_keys())
    if settings.DATA_KEY:
        where = f"the environment variable HMS_DATA_KEY (fingerprint {fingerprints})"
        put_back = "set HMS_DATA_KEY to it"
    else:
        where = f"the key file {crypto.key_file()} (fingerprint {fingerprints})"
        put_back = f"write it to {crypto.key_file()} with mode 0600 (or set HMS_DATA_KEY)"
    return (
        "The data key is NOT in this archive, and the archive cannot be restored or read without it: "
        "the clinical records and files in it are encrypted with that key.\n"
        f"  The key in use is in {where}.\n"
        "  Keep a copy of it apart from the archives: in a password manager or secrets vault, or printed and "
        "locked away. Never store it next to the backups: whoever holds both reads every record.\n"
        f"  To restore: {put_back}, then run `hms restore ARCHIVE`.\n"
        "  After `hms rotate-key`, keep the old key for as long as you keep archives made with it.\n"
        "The archive also holds names, contact details and password hashes in the clear: keep it on "
        "access-controlled, encrypted storage (it is written with mode 0600)."
    )


# --- making a backup -------------------------------------------------------------------------------


@dataclass(frozen=True)
class BackupReport:
    archive: Path
    size_bytes: int
    engine: str
    schema_revision: str
    tables: dict[str, int]
    files: int
    audit_rows: int
    audit_intact: bool
    stock_mismatches: int
    key_fingerprints: list[str]

    @property
    def rows(self) -> int:
        return sum(self.tables.values())


def default_archive_name(now: datetime | None = None) -> str:
    return f"hms-backup-{(now or datetime.now(UTC)).strftime('%Y%m%dT%H%M%SZ')}.tar.gz"


def create_backup(*, output: Path | None = None, database_url: str | None = None,
                  files_dir: Path | None = None) -> BackupReport:
    """Write one archive of the database and the stored files; the app may keep running.

    Args:
        output: the archive's path, or a folder to put it in; the current folder by default.
        database_url: the database; ``settings.DATABASE_URL`` by default.
        files_dir: the stored files; ``settings.FILES_DIR`` by default.

    Raises:
        BackupError: the database or a tool could not be read; no archive is left behind.
    """
    url = sa.make_url(database_url or settings.DATABASE_URL)
    files_dir = files_dir or settings.FILES_DIR
    archive = _archive_path(output)
    key_list = _keys_in_place(restoring=False)
    created_at = datetime.now(UTC)
    staging = Path(tempfile.mkdtemp(prefix=".hms-backup-", dir=archive.parent))
    try:
        if url.get_backend_name() == "sqlite":
            member, snapshot = SQLITE_MEMBER, _sqlite_snapshot(url, staging / "hms.sqlite")
        elif url.get_backend_name() == "postgresql":
            member, snapshot = PGDUMP_MEMBER, _pg_snapshot(url, staging / "hms.pgdump")
        else:
            raise BackupError(f"Backups support SQLite and PostgreSQL, not {url.get_backend_name()}.")
        manifest: dict = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "hms_version": _hms_version(),
            "created_at": created_at.isoformat(timespec="seconds"),
            "engine": url.get_backend_name(),
            **snapshot.describe(),
            "key_fingerprints": [key_fingerprint(k) for k in key_list],
            "members": {},
        }
        temporary = archive.with_name(f".{archive.name}.{secrets.token_hex(4)}.partial")
        try:
            file_count = _write_archive(temporary, manifest, member, snapshot.path, files_dir,
                                        snapshot.storage_names, key_list[0], created_at)
            os.replace(temporary, archive)
            _fsync_dir(archive.parent)
        finally:
            temporary.unlink(missing_ok=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    report = BackupReport(archive, archive.stat().st_size, url.get_backend_name(), snapshot.revision,
                          snapshot.tables, file_count, snapshot.audit_rows, snapshot.audit_intact,
                          snapshot.stock_mismatches, manifest["key_fingerprints"])
    _audit(url, "backup.create", f"{archive.name}: {report.rows} rows in {len(report.tables)} tables, "
                                 f"{file_count} files, schema {snapshot.revision}")
    return report


def _archive_path(output: Path | None) -> Path:
    target = Path(output) if output else Path.cwd()
    if target.is_dir():
        target = target / default_archive_name()
    target = target.resolve()
    if target.exists():
        raise BackupError(f"{target} exists already; choose another name, backups are never overwritten.")
    if not target.parent.is_dir():
        raise BackupError(f"There is no folder {target.parent} to write the backup into.")
    return target


@dataclass
class _Snapshot:
    """The database as copied, and what was read from that same copy or snapshot."""

    path: Path
    revision: str
    tables: dict[str, int]
    audit_rows: int
    audit_last_hash: str
    audit_intact: bool
    stock_mismatches: int
    storage_names: set[str]
    versions: dict[str, str] = field(default_factory=dict)

    def describe(self) -> dict:
        return {
            **self.versions,
            "schema_revision": self.revision,
            "tables": self.tables,
            "audit": {"rows": self.audit_rows, "last_hash": self.audit_last_hash, "intact": self.audit_intact},
            "stock_ledger_mismatches": self.stock_mismatches,
        }


def _sqlite_snapshot(url: sa.URL, copy: Path) -> _Snapshot:
    """Copy the live database with SQLite's online backup API (one consistent read transaction)."""
    source_path = Path(url.database or "")
    if not url.database or url.database == ":memory:" or not source_path.is_file():
        raise BackupError(f"There is no SQLite database at {source_path}.")
    source = sqlite3.connect(source_path, timeout=settings.SQLITE_BUSY_TIMEOUT_MS / 1000)
    target = sqlite3.connect(copy)
    try:
        source.backup(target)  # all pages in one step: a snapshot, writers carry on meanwhile
        target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
        problems = [row[0] for row in target.execute("PRAGMA quick_check")]
        if problems != ["ok"]:
            raise BackupError(f"The database failed SQLite's check, so no backup was made: {problems[:3]}")
    finally:
        target.close()
        source.close()
    os.chmod(copy, 0o600)
    engine = sa.create_engine(f"sqlite:///{copy}", poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return _read_snapshot(conn, copy, {"sqlite_version": sqlite3.sqlite_version})
    finally:
        engine.dispose()


def _pg_snapshot(url: sa.URL, dump: Path) -> _Snapshot:
    """``pg_dump`` in the very snapshot in which the rows are counted (``pg_export_snapshot``)."""
    pg_dump = _tool("pg_dump", BackupError)
    tool_version = _tool_version(pg_dump)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn, conn.begin():
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            snapshot_id = conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one()
            server = conn.exec_driver_sql("SHOW server_version").scalar_one().split()[0]
            if _major(tool_version) < _major(server):
                raise BackupError(f"pg_dump {tool_version} cannot dump a PostgreSQL {server} server: install the "
                                  f"client tools of version {_major(server)} or newer (postgresql-client-"
                                  f"{_major(server)}).")
            described = _read_snapshot(conn, dump, {"server_version": server, "pg_dump_version": tool_version})
            _run(pg_dump, "--format=custom", "--compress=0", f"--snapshot={snapshot_id}", f"--file={dump}",
                 "--no-password", f"--dbname={_libpq_uri(url)}", url=url, failure=BackupError)
    except sa.exc.OperationalError as error:
        raise BackupError(f"Could not read the database: {error.orig}") from None
    finally:
        engine.dispose()
    os.chmod(dump, 0o600)
    return described


def _read_snapshot(conn: sa.Connection, path: Path, versions: dict[str, str]) -> _Snapshot:
    tables = _table_counts(conn)
    if "alembic_version" not in tables:
        raise BackupError("The database has no HMS schema (run `hms migrate`); there is nothing to back up.")
    with Session(bind=conn) as session:
        chain = audit.verify_chain(session)
        stock = len(ledger_mismatches(session))
        names = _referenced_files(session)
    problems: list[str] = []
    _decrypt_sample(conn, problems)
    if problems:
        raise BackupError(f"The data key in {_key_source()} does not decrypt the database ({problems[0]}), so a "
                          "backup would be unreadable. Put the right key in place first.")
    return _Snapshot(path, _revision(conn), tables, tables["audit_event"], audit.chain_ends(conn), chain.ok, stock,
                     names, versions)




def _table_counts(conn: sa.Connection) -> dict[str, int]:
    quote = conn.dialect.identifier_preparer.quote
    return {name: conn.execute(sa.text(f"SELECT count(*) FROM {quote(name)}")).scalar_one()  # noqa: S608 (names from the schema)
            for name in sorted(sa.inspect(conn).get_table_names())}


def _revision(conn: sa.Connection) -> str:
    found = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all()
    return ",".join(sorted(found))


def _referenced_files(session: Session) -> set[str]:
    names: set[str] = set()
    for table in _STORAGE_TABLES:
        names.update(session.execute(sa.select(table.storage_name)).scalars())
    return names


def _write_archive(path: Path, manifest: dict, member: str, dump: Path, files_dir: Path, referenced: set[str],
                   key: bytes, created_at: datetime) -> int:
    """The tar.gz: the database, then the files, then the manifest and its HMAC. Returns the files written."""
    members = manifest["members"]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as raw:
        with tarfile.open(fileobj=raw, mode="w:gz", compresslevel=6) as tar:
            with dump.open("rb") as handle:
                members[member] = _add(tar, member, handle, dump.stat().st_size, created_at)
            stored = sorted(p for p in files_dir.iterdir() if _STORED_FILE.fullmatch(p.name) and p.is_file()) \
                if files_dir.is_dir() else []
            for file in stored:
                try:
                    with file.open("rb") as handle:
                        data = handle.read()
                except FileNotFoundError:
                    continue  # removed meanwhile; checked against what the database names below
                members[f"files/{file.name}"] = _add(tar, f"files/{file.name}", io.BytesIO(data), len(data),
                                                     created_at)
            missing = sorted(referenced - {m.removeprefix("files/") for m in members})
            if missing:
                raise BackupError(
                    f"{len(missing)} stored file(s) the database names are not in {files_dir} (first: {missing[0]}); "
                    "if a report was just replaced, run the backup again, otherwise restore the files folder first."
                )
            manifest["files"] = {"count": len(members) - 1, "referenced": len(referenced)}
            text = json.dumps(manifest, indent=2, sort_keys=True).encode()
            _add(tar, MANIFEST, io.BytesIO(text), len(text), created_at)
            mac = hmac.new(_mac_key(key), text, hashlib.sha256).hexdigest().encode() + b"\n"
            _add(tar, MANIFEST_MAC, io.BytesIO(mac), len(mac), created_at)
        raw.flush()
        os.fsync(raw.fileno())
    return len(members) - 1


class _Hashing:
    """A reader that hashes what passes through it."""

    def __init__(self, raw) -> None:
        self.raw = raw
        self.digest = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.digest.update(data)
        return data


def _add(tar: tarfile.TarFile, name: str, handle, size: int, created_at: datetime) -> dict:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o600, int(created_at.timestamp())
    reader = _Hashing(handle)
    tar.addfile(info, reader)
    return {"sha256": reader.digest.hexdigest(), "size": size}


# --- restoring -------------------------------------------------------------------------------------


@dataclass
class RestoreReport:
    archive: Path
    engine: str
    created_at: str
    schema_revision: str
    tables: dict[str, int]
    files: int
    audit_rows: int
    values_decrypted: int = 0
    files_decrypted: int = 0
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    kept_aside: list[Path] = field(default_factory=list)
    restored: bool = False
    behind_code: bool = False
    """The backup's schema is older than this HMS's migrations: run ``hms migrate`` before starting."""

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def rows(self) -> int:
        return sum(self.tables.values())


def restore_backup(*, archive: Path, database_url: str | None = None, files_dir: Path | None = None,
                   force: bool = False, check_only: bool = False) -> RestoreReport:
    """Bring a backup back into an empty database and files folder, then verify it.

    Args:
        archive: the ``.tar.gz`` that ``create_backup`` wrote.
        database_url: where to restore; ``settings.DATABASE_URL`` by default. On PostgreSQL the
            database is created if the server lacks it.
        files_dir: where the stored files go; ``settings.FILES_DIR`` by default.
        force: replace a database or files folder that holds data. SQLite's file and the files
            folder are kept aside as ``*.before-restore-<time>``; PostgreSQL's tables are dropped.
        check_only: check the archive and the key only; write nothing.

    Raises:
        ArchiveDamaged: not a backup, damaged, or altered; nothing was written.
        WrongDataKey: the data key is missing or not the backup's; nothing was written.
        RestoreRefused: the target holds data (without ``force``), or the engine or schema does not fit.

    Returns:
        The report; ``problems`` lists what the checks after the restore found wrong.
    """
    url = sa.make_url(database_url or settings.DATABASE_URL)
    files_dir = files_dir or settings.FILES_DIR
    archive = Path(archive).resolve()
    if not archive.is_file():
        raise RestoreRefused(f"There is no backup at {archive}.")
    key_list = _keys_in_place(restoring=True)
    if not check_only:  # the staged files are moved into place, so they are staged on the same file system
        files_dir.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    staging = Path(tempfile.mkdtemp(prefix=".hms-restore-", dir=None if check_only else files_dir.parent))
    try:
        manifest = _unpack(archive, staging, key_list)
        report = RestoreReport(archive, manifest["engine"], manifest["created_at"], manifest["schema_revision"],
                               manifest["tables"], manifest["files"]["count"], manifest["audit"]["rows"])
        report.behind_code = _check_fits(manifest, url)
        if check_only:
            return report
        _check_empty(url, files_dir, force)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        if url.get_backend_name() == "sqlite":
            _restore_sqlite(url, staging / SQLITE_MEMBER, force, stamp, report)
        else:
            _restore_pg(url, staging / PGDUMP_MEMBER, manifest, force)
        _place_files(staging / "files", files_dir, stamp, report)
        report.restored = True
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _verify(url, files_dir, manifest, report)
    _audit(url, "backup.restore", f"{archive.name} of {manifest['created_at']}: "
                                  + ("verified" if report.ok else "; ".join(report.problems))[:1500],
           outcome=AuditOutcome.SUCCESS if report.ok else AuditOutcome.FAILED)
    return report


def _unpack(archive: Path, staging: Path, key_list: list[bytes]) -> dict:
    """Extract only the expected members, hashing each; then check the HMAC and every checksum."""
    digests: dict[str, str] = {}
    try:
        with tarfile.open(archive, mode="r|gz") as tar:
            for member in tar:
                name = member.name
                allowed = name in (MANIFEST, MANIFEST_MAC, SQLITE_MEMBER, PGDUMP_MEMBER) or _FILE_MEMBER.fullmatch(name)
                if not allowed or not member.isreg() or name in digests:
                    raise ArchiveDamaged(f"{archive.name} is not an HMS backup, or was altered: it holds "
                                         f"{name!r}. Nothing was restored.")
                target = staging / name
                target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                digest = hashlib.sha256()
                source = tar.extractfile(member)
                fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as out:
                    while chunk := source.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
                digests[name] = digest.hexdigest()
    except (tarfile.TarError, EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise ArchiveDamaged(f"{archive.name} is damaged or not an HMS backup ({error}). Nothing was restored.") from None
    if MANIFEST not in digests or MANIFEST_MAC not in digests:
        raise ArchiveDamaged(f"{archive.name} is not an HMS backup (it has no manifest). Nothing was restored.")
    text = (staging / MANIFEST).read_bytes()
    try:
        manifest = json.loads(text)
        fingerprints = list(manifest.get("key_fingerprints") or [])
    except (ValueError, AttributeError):
        raise ArchiveDamaged(f"The manifest of {archive.name} is damaged. Nothing was restored.") from None
    mac = (staging / MANIFEST_MAC).read_bytes().strip()
    if not any(hmac.compare_digest(hmac.new(_mac_key(k), text, hashlib.sha256).hexdigest().encode(), mac)
               for k in key_list):
        ours = {key_fingerprint(k) for k in key_list}
        if fingerprints and not ours & set(fingerprints):
            raise WrongDataKey(
                f"The data key in {_key_source()} (fingerprint {', '.join(sorted(ours))}) is not the key this "
                f"backup was made with (fingerprint {fingerprints[0]}). Put that key in place and run the restore "
                "again. Nothing was restored."
            )
        raise ArchiveDamaged(f"The manifest of {archive.name} was altered after the backup was made (its HMAC "
                             "does not match). Nothing was restored.")
    if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
        raise ArchiveDamaged(f"{archive.name} is a backup of format {manifest.get('format_version')}, which this "
                             f"HMS ({_hms_version()}) does not read. Nothing was restored.")
    expected = {name: entry["sha256"] for name, entry in manifest["members"].items()}
    actual = {name: digest for name, digest in digests.items() if name not in (MANIFEST, MANIFEST_MAC)}
    for name in sorted(set(expected) | set(actual)):
        if expected.get(name) != actual.get(name):
            what = "is missing" if name not in actual else "is not listed" if name not in expected else "was altered"
            raise ArchiveDamaged(f"{name} in {archive.name} {what} (its SHA-256 does not match the manifest). "
                                 "Nothing was restored.")
    return manifest


def _check_fits(manifest: dict, url: sa.URL) -> bool:
    """Refuse another engine, an unknown schema or too old tools; True if the schema is behind the code's."""
    engine = url.get_backend_name()
    if manifest["engine"] != engine:
        raise RestoreRefused(f"This is a {manifest['engine']} backup and the target is {engine}: a backup restores "
                             "to the engine it was taken from. Nothing was restored.")
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    for revision in manifest["schema_revision"].split(","):
        try:
            known = script.get_revision(revision)
        except Exception:  # alembic raises several kinds for an unknown or malformed id
            known = None
        if known is None:
            raise RestoreRefused(f"The backup's schema revision {manifest['schema_revision']} is unknown to this "
                                 f"HMS ({_hms_version()}): restore it with the version that made it "
                                 f"({manifest['hms_version']}). Nothing was restored.")
    if engine == "postgresql":
        pg_restore = _tool("pg_restore", RestoreRefused)
        if _major(_tool_version(pg_restore)) < _major(manifest["pg_dump_version"]):
            raise RestoreRefused(f"pg_restore {_tool_version(pg_restore)} cannot read a dump of pg_dump "
                                 f"{manifest['pg_dump_version']}: install newer client tools. Nothing was restored.")
    return set(manifest["schema_revision"].split(",")) != set(script.get_heads())


def _check_empty(url: sa.URL, files_dir: Path, force: bool) -> None:
    held = []
    if _database_holds_tables(url):
        held.append(f"the database {url.render_as_string(hide_password=True)} holds tables")
    if files_dir.is_dir() and any(files_dir.iterdir()):
        held.append(f"the files folder {files_dir} is not empty")
    if held and not force:
        raise RestoreRefused(f"Refusing to restore over data: {' and '.join(held)}. Restore into an empty database "
                             "and data folder, or add --force to replace them (SQLite's file and the files folder "
                             "are kept aside; PostgreSQL's tables are dropped). Nothing was restored.")


def _database_holds_tables(url: sa.URL) -> bool:
    if url.get_backend_name() == "sqlite":
        path = Path(url.database or "")
        if not path.is_file():
            return False
        with contextlib.closing(sqlite3.connect(path)) as conn:
            return conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0] > 0
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return bool(sa.inspect(conn).get_table_names())
    except sa.exc.OperationalError as error:
        if "does not exist" in str(error.orig):
            return False  # created by the restore
        raise RestoreRefused(f"Could not reach the database: {error.orig}") from None
    finally:
        engine.dispose()


def _restore_sqlite(url: sa.URL, copy: Path, force: bool, stamp: str, report: RestoreReport) -> None:
    """Write the copy into the target through SQLite's backup API, which honours the target's WAL."""
    target = Path(url.database or "")
    target.parent.mkdir(parents=True, exist_ok=True)
    source = sqlite3.connect(copy)
    try:
        if force and _database_holds_tables(url):
            aside = target.with_name(f"{target.name}.before-restore-{stamp}")
            with contextlib.closing(sqlite3.connect(target, timeout=settings.SQLITE_BUSY_TIMEOUT_MS / 1000)) as old, \
                    contextlib.closing(sqlite3.connect(aside)) as keep:
                old.backup(keep)
            os.chmod(aside, 0o600)
            report.kept_aside.append(aside)
        with contextlib.closing(sqlite3.connect(target, timeout=settings.SQLITE_BUSY_TIMEOUT_MS / 1000)) as conn:
            source.backup(conn)
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        source.close()
    os.chmod(target, 0o600)


def _restore_pg(url: sa.URL, dump: Path, manifest: dict, force: bool) -> None:
    """``pg_restore`` in one transaction: the database ends up whole or as it was."""
    pg_restore = _tool("pg_restore", RestoreRefused)
    postgres.create_database(url.render_as_string(hide_password=False))
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            server = conn.exec_driver_sql("SHOW server_version").scalar_one().split()[0]
            if _major(server) < _major(manifest["server_version"]):
                raise RestoreRefused(f"The backup comes from PostgreSQL {manifest['server_version']} and the target "
                                     f"server is {server}: restore to version {_major(manifest['server_version'])} "
                                     "or newer. Nothing was restored.")
            if force:
                conn.exec_driver_sql("DROP SCHEMA public CASCADE")
                conn.exec_driver_sql("CREATE SCHEMA public")
                conn.commit()
    finally:
        engine.dispose()
    # Objects end up owned by the role of HMS_DATABASE_URL, whose grants are its own.
    _run(pg_restore, "--no-owner", "--no-privileges", "--single-transaction", "--exit-on-error", "--no-password",
         f"--dbname={_libpq_uri(url)}", str(dump), url=url, failure=RestoreRefused)


def _place_files(staged: Path, files_dir: Path, stamp: str, report: RestoreReport) -> None:
    if files_dir.is_dir() and any(files_dir.iterdir()):
        aside = files_dir.with_name(f"{files_dir.name}.before-restore-{stamp}")
        os.replace(files_dir, aside)
        report.kept_aside.append(aside)
    elif files_dir.is_dir():
        files_dir.rmdir()
    staged.mkdir(exist_ok=True, mode=0o700)
    os.chmod(staged, 0o700)
    os.replace(staged, files_dir)
    _fsync_dir(files_dir.parent)


def _verify(url: sa.URL, files_dir: Path, manifest: dict, report: RestoreReport) -> None:
    """Check the restored database and files against the manifest; findings go to ``report.problems``."""
    problems = report.problems
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            counts = _table_counts(conn)
            for table in sorted(set(counts) | set(manifest["tables"])):
                if counts.get(table) != manifest["tables"].get(table):
                    problems.append(f"table {table}: {counts.get(table)} rows restored, the backup had "
                                    f"{manifest['tables'].get(table)}")
            if _revision(conn) != manifest["schema_revision"]:
                problems.append(f"schema revision {_revision(conn)}, the backup had {manifest['schema_revision']}")
            with Session(bind=conn) as session:
                chain = audit.verify_chain(session)
                last = audit.chain_ends(conn)
                if manifest["audit"]["intact"] and not chain.ok:
                    problems.append(f"audit chain broken at row {chain.first_bad_id}: {chain.reason}")
                elif not manifest["audit"]["intact"]:
                    report.warnings.append("the audit chain was already broken when the backup was made")
                if last != manifest["audit"]["last_hash"]:
                    problems.append("the audit chain does not end where the backup's did (rows missing at the end)")
                stock = len(ledger_mismatches(session))
                if stock != manifest["stock_ledger_mismatches"]:
                    problems.append(f"{stock} stock batches disagree with their ledger, the backup had "
                                    f"{manifest['stock_ledger_mismatches']}")
                report.values_decrypted = _decrypt_sample(conn, problems)
                referenced = _referenced_files(session)
        missing = sorted(n for n in referenced if not (files_dir / n).is_file())
        if missing:
            problems.append(f"{len(missing)} stored file(s) named by the database are missing, first {missing[0]}")
        report.files_decrypted = _decrypt_files(files_dir, sorted(referenced - set(missing)), problems)
    finally:
        engine.dispose()


def _decrypt_sample(conn: sa.Connection, problems: list[str]) -> int:
    """Decrypt the oldest and the newest values of every encrypted column, ``SAMPLE_SIZE`` at most.

    The oldest were written under the oldest key and the newest under the newest, and both ends
    are read through the primary key's index, so a large table is not scanned.
    """
    done = 0
    for table, columns in keys.encrypted_columns().items():
        (key,) = table.primary_key.columns
        for column in columns:
            raw = sa.table(table.name, sa.column(key.name), sa.column(column.name))
            query = sa.select(raw.c[column.name]).where(raw.c[column.name].is_not(None))
            half = SAMPLE_SIZE // 2 + 1
            tokens = dict.fromkeys([*conn.execute(query.order_by(raw.c[key.name]).limit(half)).scalars(),
                                    *conn.execute(query.order_by(raw.c[key.name].desc()).limit(half)).scalars()])
            for token in tokens:
                try:
                    crypto.decrypt_bytes(token.encode())
                except InvalidToken:
                    problems.append(f"{table.name}.{column.name} holds a value the data key does not decrypt")
                    break
                done += 1
    return done


def _decrypt_files(files_dir: Path, names: list[str], problems: list[str]) -> int:
    done = 0
    for name in secrets.SystemRandom().sample(names, min(SAMPLE_SIZE, len(names))):
        try:
            crypto.decrypt_bytes((files_dir / name).read_bytes())
        except InvalidToken:
            problems.append(f"the stored file {name} does not decrypt with the data key")
            continue
        done += 1
    return done


# --- shared ----------------------------------------------------------------------------------------


def _audit(url: sa.URL, action: str, detail: str, outcome: AuditOutcome = AuditOutcome.SUCCESS) -> None:
    """One row in the trail of the database backed up or restored, as the system."""
    engine = create_engine(url.render_as_string(hide_password=False), pool_size=1)
    try:
        with session_scope(engine=engine) as session:
            audit.record(session, None, action, actor_email="system", entity_type="backup", outcome=outcome,
                         detail=detail)
            session.commit()
    finally:
        engine.dispose()


def _hms_version() -> str:
    try:
        return importlib.metadata.version("hms")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _tool(name: str, failure: type[HMSError]) -> str:
    found = shutil.which(name)
    if not found:
        raise failure(f"{name} is not installed: install PostgreSQL's client tools (postgresql-client) of the "
                          "server's major version or newer.")
    return found


def _tool_version(tool: str) -> str:
    out = subprocess.run([tool, "--version"], capture_output=True, text=True, check=True).stdout  # noqa: S603 (a found tool)
    match = re.search(r"(\d+(?:\.\d+)*)", out)
    return match.group(1) if match else "0"


def _major(version: str) -> int:
    return int(version.split(".")[0])


def _libpq_uri(url: sa.URL) -> str:
    """The URL as libpq reads it, without the password (that goes in PGPASSWORD, not on a command line)."""
    return url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)


def _run(*command: str, url: sa.URL, failure: type[HMSError]) -> None:
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)  # noqa: S603 (fixed tools)
    if done.returncode != 0:
        name = Path(command[0]).name
        suffix = " Nothing was restored." if failure is RestoreRefused else ""
        raise failure(f"{name} failed: {done.stderr.strip()[-1500:]}{suffix}")

"""File names kept and served safely; the data folder private to the account that runs HMS."""

from __future__ import annotations

import logging
import stat
from pathlib import Path
from urllib.parse import unquote

import pytest
import sqlalchemy as sa

from hms_app import settings
from hms_app.db import engine as engine_module
from hms_app.db import storage
from hms_app.services.core import files
from hms_app.services.core.errors import ValidationError

PDF = b"%PDF-1.4\n%%EOF\n"


@pytest.mark.parametrize(("given", "kept"), [
    ("報告.pdf", "報告.pdf"),
    ("report\n.pdf", "report.pdf"),
    ("re\nport.pdf", "re_port.pdf"),
    ("scan\u202egnp.pdf", "scan_gnp.pdf"),
    ("zero\u200bwidth.pdf", "zero_width.pdf"),
    ("tab\there.pdf", "tab_here.pdf"),
    ("cafe\u0301.pdf", "café.pdf"),
])
def test_a_name_is_kept_only_when_every_character_is_safe(given, kept):
    assert files.check_upload(given, PDF).file_name == kept


def test_a_name_with_a_line_break_in_its_extension_is_refused():
    with pytest.raises(ValidationError, match="its content is a PDF file"):
        files.check_upload("report.pd\nf", PDF)


@pytest.mark.parametrize(("name", "plain", "exact"), [
    ("報告.pdf", "file.pdf", "報告.pdf"),
    ("report\n.pdf", "report.pdf", "report.pdf"),
    ('quote" and \\ back.pdf', "quote_ and _ back.pdf", "quote_ and _ back.pdf"),
    ("résumé.png", "resume.png", "résumé.png"),
    ("", "file", "file"),
])
def test_the_download_header_is_ascii_and_carries_the_exact_name(name, plain, exact):
    header = files.content_disposition(name)
    assert header.isascii()
    assert not {"\n", "\r", "\x00"} & set(header)
    assert header.startswith(f'attachment; filename="{plain}"; ')
    assert unquote(header.split("filename*=UTF-8''", 1)[1]) == exact


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    data = tmp_path / "deep" / "data"
    monkeypatch.setattr(settings, "DATA_DIR", data)
    monkeypatch.setattr(settings, "FILES_DIR", data / "files")
    return data


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_data_folder_and_the_database_files_are_private(data_dir):
    database = data_dir / "hms.db"
    engine = engine_module.create_engine(f"sqlite:///{database}")
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE t (x INTEGER)"))
        connection.execute(sa.text("INSERT INTO t VALUES (1)"))
        kept = [Path(f"{database}-wal"), Path(f"{database}-shm")]
        assert all(p.exists() for p in kept)
    assert _mode(data_dir) == 0o700
    assert _mode(data_dir.parent) == 0o700
    assert [_mode(p) for p in (database, *kept)] == [0o600] * 3
    assert storage.wide_permissions(database) == []
    engine.dispose()


def test_wider_modes_are_named_at_start(data_dir, monkeypatch, caplog):
    database = data_dir / "hms.db"
    storage.private_file(database)
    data_dir.chmod(0o755)
    database.chmod(0o644)
    monkeypatch.setattr(settings, "DATABASE_URL", f"sqlite:///{database}")
    monkeypatch.setattr(engine_module, "_engine", None)
    with caplog.at_level(logging.WARNING, logger="hms_app.db.engine"):
        engine_module.get_engine().dispose()
    monkeypatch.setattr(engine_module, "_engine", None)
    warned = [r.getMessage() for r in caplog.records]
    assert any(f"{data_dir} has mode 0755" in line and "chmod 0700" in line for line in warned)
    assert any(f"{database} has mode 0644" in line and "chmod 0600" in line for line in warned)


def test_stored_files_go_to_a_private_folder(data_dir, monkeypatch):
    monkeypatch.setattr(settings, "DATA_KEY", "")
    from hms_app.db import crypto
    crypto.reset_cipher()
    try:
        name = files.store_encrypted(PDF)
    finally:
        crypto.reset_cipher()
    assert _mode(data_dir) == 0o700
    assert _mode(settings.FILES_DIR) == 0o700
    assert _mode(settings.FILES_DIR / name) == 0o600
    assert _mode(data_dir / "hms.key") == 0o600

"""Apply the Alembic migrations programmatically (``hms migrate``, tests, ``make run``)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str | None = None, revision: str = "head") -> None:
    """Bring the database at ``url`` (default: the settings' database) up to ``revision``."""
    command.upgrade(alembic_config(url), revision)


def schema_is_current(connection: Connection) -> bool:
    """Whether the database behind ``connection`` has every migration of this code applied."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    applied = set(MigrationContext.configure(connection).get_current_heads())
    return applied == set(ScriptDirectory.from_config(alembic_config()).get_heads())

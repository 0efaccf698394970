"""Alembic environment: migrates the database given in the config or the settings."""

from alembic import context
from sqlmodel import SQLModel

from hms_app.db import models  # noqa: F401  (registers the tables on the metadata)
from hms_app.db.engine import create_engine, get_engine

target_metadata = SQLModel.metadata


def run_migrations_online() -> None:
    url = context.config.get_main_option("sqlalchemy.url")
    engine = create_engine(url) if url else get_engine()
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
    if url:
        engine.dispose()


run_migrations_online()

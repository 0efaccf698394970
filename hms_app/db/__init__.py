"""Database layer: tables, engine and session factory, migrations. Never imports Reflex."""

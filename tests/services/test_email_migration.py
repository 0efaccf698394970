"""Migration 0014 normalises the stored addresses, fills in their skeletons and reports, rather
than fails on, the accounts that collide."""

from __future__ import annotations

import sqlalchemy as sa

from hms_app.db.migrate import upgrade

ADDRESSES = [
    "maria.garcia@patients.example",
    "Maria.Garcia@patients.example",  # the first one's address in another case
    "m\u0430ria.garcia@patients.example",  # a look-alike of the first
    "x\u200b@example.org",  # a zero-width space
    "Bob@Example.org.",  # needs normalising, collides with nothing
]


def test_the_migration_normalises_and_reports_collisions(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0013")
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            for user_id, email in enumerate(ADDRESSES, 1):
                conn.execute(sa.text(
                    "INSERT INTO user (id, email, full_name, role, is_active, password_hash, must_change_password,"
                    " failed_logins, created_at) VALUES (:id, :email, 'Someone', 'patient', 1, 'x', 0, 0,"
                    " '2026-01-01 00:00:00.000000')"), {"id": user_id, "email": email})
        upgrade(url)
        with engine.connect() as conn:
            rows = conn.execute(sa.text('SELECT id, email, email_skeleton, email_confirmed_at FROM "user" '
                                        "ORDER BY id")).all()
    finally:
        engine.dispose()
    assert [(r.id, r.email, r.email_skeleton) for r in rows] == [
        (1, "maria.garcia@patients.example", "rnaria.garcia@patients.exarnple"),
        (2, "Maria.Garcia@patients.example", None),
        (3, "m\u0430ria.garcia@patients.example", None),
        (4, "x\u200b@example.org", None),
        (5, "bob@example.org", "bob@exarnple.org"),
    ]
    assert all(r.email_confirmed_at is not None for r in rows)
    report = capsys.readouterr().out
    assert "account 2:" in report
    assert "account 3: its address" in report
    assert "looks like account 1's" in report
    assert "account 4:" in report
    assert "account 5" not in report

"""The ``hms`` command: migrate, load demo data, verify the audit chain and the stock ledger, rotate the data key."""

from __future__ import annotations

import argparse
import sys

from hms_app import settings


def _migrate(_args: argparse.Namespace) -> int:
    from hms_app.db.engine import session_scope
    from hms_app.db.migrate import upgrade
    from hms_app.services.permissions import seed_default_permissions
    from hms_app.services.reference.load import sync_reference_data

    upgrade()
    with session_scope() as session:
        new = seed_default_permissions(session)
        sync_reference_data(session)
        session.commit()
    print(f"database is up to date: {_safe_url()}" + (f"; default grants for {len(new)} new permissions" if new else ""))
    return 0


def _seed(args: argparse.Namespace) -> int:
    from hms_app.db.engine import session_scope
    from hms_app.services import demo

    with session_scope() as session:
        loaded = demo.seed_demo(session)
    if loaded:
        print(f"demo data loaded; every demo account's password is {demo.DEMO_PASSWORD}")
    elif not args.if_empty:
        print("the database already holds users; demo data was not loaded", file=sys.stderr)
        return 1
    else:
        print("the database already holds users; demo data left as it is")
    return 0


def _verify_audit(_args: argparse.Namespace) -> int:
    from hms_app.db.engine import session_scope
    from hms_app.services import audit

    with session_scope(write=False) as session:
        report = audit.verify_chain(session)
    if report.ok:
        print(f"audit chain intact: {report.rows_checked} rows")
        return 0
    print(f"audit chain BROKEN at row {report.first_bad_id}: {report.reason}", file=sys.stderr)
    return 2


def _verify_stock(_args: argparse.Namespace) -> int:
    from hms_app.db.engine import session_scope
    from hms_app.services.inventory import ledger_mismatches

    with session_scope(write=False) as session:
        mismatches = ledger_mismatches(session)
    if not mismatches:
        print("stock ledger balanced: every batch's movements sum to its quantity on hand")
        return 0
    for batch_id, on_hand, ledger in mismatches:
        print(f"batch {batch_id}: {on_hand} on hand, ledger sums to {ledger}", file=sys.stderr)
    return 2


def _rotate_key(_args: argparse.Namespace) -> int:
    from hms_app.db.engine import session_scope
    from hms_app.services.errors import HMSError
    from hms_app.services.keys import rotate_data_key

    try:
        with session_scope() as session:
            report = rotate_data_key(session)
    except HMSError as error:
        print(error.message, file=sys.stderr)
        return 1
    print(f"data key rotated: {report.values} values in {report.columns} columns of {report.tables} tables "
          f"and {report.files} files re-encrypted; {report.old_keys_dropped} old key(s) dropped")
    return 0


def _safe_url() -> str:
    import sqlalchemy as sa

    return sa.make_url(settings.DATABASE_URL).render_as_string(hide_password=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hms", description="HMS administration commands")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="apply the database migrations").set_defaults(run=_migrate)
    seed = commands.add_parser("seed", help="load the demo hospital into an empty database")
    seed.add_argument("--if-empty", action="store_true", help="succeed quietly when users exist")
    seed.set_defaults(run=_seed)
    commands.add_parser("verify-audit", help="check the audit trail's hash chain").set_defaults(run=_verify_audit)
    commands.add_parser("verify-stock", help="check that the stock ledger sums to what is on hand"
                        ).set_defaults(run=_verify_stock)
    commands.add_parser(
        "rotate-key", help="re-encrypt clinical data and files with a new data key (stop the app first)"
    ).set_defaults(run=_rotate_key)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())

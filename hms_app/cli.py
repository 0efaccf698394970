"""The ``hms`` command: create and migrate the database, start a real hospital or load demo data,
check a scaled deployment, verify the audit chain, the stock ledger and the daily totals,
rotate the data key, import CSV and FHIR files."""

from __future__ import annotations

import argparse
import contextlib
import sys

from hms_app import settings


def _createdb(_args: argparse.Namespace) -> int:
    from hms_app.db import postgres

    if not postgres.is_postgres(settings.DATABASE_URL):
        print(f"nothing to create: {_safe_url()} is created on first use")
        return 0
    created = postgres.create_database(settings.DATABASE_URL)
    print(f"database {'created' if created else 'already exists'}: {_safe_url()}")
    return 0


def _check_deployment(_args: argparse.Namespace) -> int:
    from hms_app.db import postgres
    from hms_app.db.engine import worker_pool_plan

    problems = []
    print(f"workers: {settings.WORKERS} (HMS_WORKERS)")
    if settings.REDIS_URL:
        import redis

        try:
            redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=5).ping()
            print(f"Redis answers: {_safe_redis_url()}")
        except redis.RedisError as error:
            problems.append(f"Redis at {_safe_redis_url()} does not answer: {error}")
    elif settings.WORKERS > 1:
        problems.append(f"HMS_WORKERS={settings.WORKERS} needs REFLEX_REDIS_URL: the workers share state through Redis")
    if postgres.is_postgres(settings.DATABASE_URL):
        plan = worker_pool_plan()
        print(f"database: {_safe_url()}\nconnections: {plan.describe()}")
        if plan.shrunk:
            print(f"note: HMS_DB_POOL_SIZE={plan.requested_pool_size} shrunk to {plan.pool_size} per worker to fit")
    else:
        print(f"database: {_safe_url()}"
              + (" (SQLite: several workers share one file; use PostgreSQL to scale out)" if settings.WORKERS > 1 else ""))
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


def _migrate(_args: argparse.Namespace) -> int:
    from hms_app.db.engine import session_scope
    from hms_app.db.migrate import upgrade
    from hms_app.operations import demo
    from hms_app.services.administration.permissions import seed_default_permissions

    upgrade()
    with session_scope() as session:
        new = seed_default_permissions(session)
        catalog = demo.refresh_demo_catalog(session)  # a real hospital's catalog is its own
        session.commit()
    print(f"database is up to date: {_safe_url()}" + (f"; default grants for {len(new)} new permissions" if new else "")
          + (f"; the demo's catalog gained {catalog['medicines']} medicines and {catalog['lab_tests']} lab tests"
             if catalog and any(catalog.values()) else ""))
    return 0


def _init(args: argparse.Namespace) -> int:
    from hms_app.db.engine import session_scope
    from hms_app.services.administration import hospital
    from hms_app.services.core import emails
    from hms_app.services.core.errors import HMSError

    if args.check:
        return _check_hospital(args)
    try:
        form = hospital.HospitalForm(
            name=_ask(args.name, "--name", "The hospital's name", hospital.clean_name),
            timezone=_ask(args.timezone, "--timezone", "Its time zone (an IANA name such as Europe/London)",
                          hospital.clean_timezone),
            locale=_ask(args.locale, "--locale", "How dates and numbers are written (a locale such as en-GB)",
                        hospital.clean_locale),
            currency=_ask(args.currency, "--currency", "Its currency (an ISO 4217 code such as GBP)",
                          hospital.clean_currency),
            admin_email=_ask(args.admin_email, "--admin-email", "The first administrator's e-mail address",
                             emails.normalise),
            admin_name=args.admin_name,
        )
        with session_scope() as session:
            made = hospital.initialise_hospital(session=session, form=form, starter_catalog=args.starter_catalog)
    except HMSError as error:
        print(f"hms init: {error.message}", file=sys.stderr)
        return 1
    p = made.profile
    catalog = made.starter_catalog
    print(f"The hospital {p.name} is set up in {_safe_url()}: time zone {p.timezone}, locale {p.locale}, "
          f"currency {p.currency}.\n\n"
          f"  administrator:     {made.admin_email}\n"
          f"  one-time password: {made.one_time_password}\n\n"
          "This password is shown once and kept nowhere readable: note it now, and hand it over in person.\n"
          f"At the first login ({settings.PUBLIC_URL}/login) the administrator chooses a new password and sets up\n"
          "an authenticator app: every administrator logs in with a second factor.\n"
          + (f"The starter catalog is loaded: {catalog['medicines']} medicines and {catalog['lab_tests']} lab tests "
             "to edit.\n" if catalog is not None else "")
          + "Nothing else exists yet: the admin dashboard lists what to set up (departments, staff, schedules, "
            "the lab catalog,\nthe formulary and stock, prices, patients). Serve it with `make run-hospital`.")
    return 0


def _ask(value: str | None, flag: str, question: str, clean) -> str:
    """A flag's value, or, when it is missing and a person is at the terminal, their answer
    (asked again until it is acceptable)."""
    from hms_app.services.core.errors import ValidationError

    if value is not None:
        return value
    if not sys.stdin.isatty():
        raise ValidationError(f"{flag} is missing: give it on the command line (there is no terminal to ask on).")
    while True:
        try:
            answer = input(f"{question}: ")
        except EOFError:
            raise ValidationError(f"{flag} is missing: nothing was answered.") from None
        try:
            clean(answer)
        except ValidationError as error:
            print(error.message, file=sys.stderr)
            continue
        return answer


def _check_hospital(args: argparse.Namespace) -> int:
    """``hms init --check`` (``make run-hospital``): 0 when the database holds a hospital set up by
    ``hms init``, else 1 and what to do."""
    from hms_app.db.engine import session_scope
    from hms_app.db.migrate import schema_is_current
    from hms_app.operations import demo

    p = args.hospital
    if p is not None:
        print(f"serving the hospital {p.name} ({p.timezone}, {p.locale}, {p.currency}) from {_safe_url()}")
        return 0
    with session_scope(write=False) as session:
        migrated = schema_is_current(session.connection())
        empty = not migrated or demo.database_is_empty(session)
    if not migrated:
        print(f"{_safe_url()} is not migrated: run `hms migrate`, then `hms init --admin-email ADDRESS`.",
              file=sys.stderr)
    elif empty:
        print(f"{_safe_url()} holds no hospital yet: run `hms init --admin-email ADDRESS` first "
              "(see the README, Deploying).", file=sys.stderr)
    else:
        print(f"{_safe_url()} holds accounts but no hospital set up by `hms init`: it is the demo. A real hospital "
              "starts in a database of its own: set HMS_DATABASE_URL (or HMS_DATA_DIR), then run `hms migrate` "
              "and `hms init --admin-email ADDRESS` (see the README, Deploying).", file=sys.stderr)
    return 1


def _seed(args: argparse.Namespace) -> int:
    from hms_app.db.engine import session_scope
    from hms_app.operations import demo

    if args.hospital is not None:
        # `make run` seeds with --if-empty: on a real hospital that is no error, and no demo.
        print(f"this database is the hospital {args.hospital.name}, set up by `hms init`: the demo is never loaded "
              "into it", file=sys.stdout if args.if_empty else sys.stderr)
        return 0 if args.if_empty else 1
    if args.scale is not None:
        return _seed_scale(args)
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


def _seed_scale(args: argparse.Namespace) -> int:
    from hms_app.db.engine import get_engine, session_scope
    from hms_app.operations import demo, scale_seed

    engine = get_engine()
    with session_scope(engine=engine, write=False) as session:
        empty = demo.database_is_empty(session)
    if not empty:
        print("the database already holds users; `hms seed --scale` needs an empty, migrated database",
              file=None if args.if_empty else sys.stderr)
        return 0 if args.if_empty else 1
    with _progress_bars(scale_seed.estimated_rows(args.scale)) as progress:
        report = scale_seed.seed_scale(engine, scale=args.scale, seed=args.seed, progress=progress)
    print(f"scale {report.scale:g} loaded into {_safe_url()}: {sum(report.rows.values()):,} rows in "
          f"{report.seconds:.0f} s, peak memory {report.peak_rss_mb:.0f} MB")
    for table, rows in report.rows.items():
        print(f"  {table:<20}{rows:>12,}")
    print(f"demo accounts as listed in the README; every account's password is {demo.DEMO_PASSWORD}")
    return 0


@contextlib.contextmanager
def _progress_bars(totals: dict[str, int]):
    """A progress bar per table on stderr (``rich`` comes with Reflex)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description:<20}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True)) as bars:
        tasks = {table: bars.add_task(table, total=rows) for table, rows in totals.items()}

        def advance(table: str, rows: int) -> None:
            bars.advance(tasks[table], rows)

        yield advance


def _verify_audit(_args: argparse.Namespace) -> int:
    from hms_app.db.engine import session_scope
    from hms_app.services.core import audit

    with session_scope(write=False) as session:
        report = audit.verify_chain(session)
    if report.ok:
        print(f"audit chain intact: {report.rows_checked} rows")
        return 0
    print(f"audit chain BROKEN at row {report.first_bad_id}: {report.reason}", file=sys.stderr)
    return 2


def _verify(find_problems, agreed: str) -> int:
    """Run a read-only consistency check: ``agreed`` on stdout and 0, or each problem on stderr and 2."""
    from hms_app.db.engine import session_scope

    with session_scope(write=False) as session:
        problems = find_problems(session)
    if not problems:
        print(agreed)
        return 0
    for problem in problems:
        print(problem, file=sys.stderr)
    return 2


def _verify_stock(_args: argparse.Namespace) -> int:
    from hms_app.services.medicines.inventory import ledger_mismatches

    return _verify(lambda session: [f"batch {batch_id}: {on_hand} on hand, ledger sums to {ledger}"
                                    for batch_id, on_hand, ledger in ledger_mismatches(session)],
                   "stock ledger balanced: every batch's movements sum to its quantity on hand")


def _verify_totals(_args: argparse.Namespace) -> int:
    from hms_app.services.accounting.totals import totals_mismatches

    return _verify(totals_mismatches, "daily totals agree: every day's charges and payments, and the open invoices' "
                                      "balances, sum to what the totals keep")


def _rotate_key(_args: argparse.Namespace) -> int:
    from hms_app.db.engine import session_scope
    from hms_app.operations.keys import rotate_data_key
    from hms_app.services.core.errors import HMSError

    try:
        with session_scope() as session:
            report = rotate_data_key(session)
    except HMSError as error:
        print(error.message, file=sys.stderr)
        return 1
    print(f"data key rotated: {report.values} values in {report.columns} columns of {report.tables} tables "
          f"and {report.files} files re-encrypted; {report.old_keys_dropped} old key(s) dropped")
    return 0


def _backup(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hms_app.operations import backup

    try:
        report = backup.create_backup(output=Path(args.output) if args.output else None)
    except backup.BackupError as error:
        print(f"backup failed: {error.message}", file=sys.stderr)
        return 1
    print(f"backup written: {report.archive} ({report.size_bytes / 1e6:.1f} MB)\n"
          f"  {report.engine} database {_safe_url()}, schema {report.schema_revision}: {report.rows} rows in "
          f"{len(report.tables)} tables; {report.files} encrypted files; audit chain of {report.audit_rows} rows "
          + ("intact" if report.audit_intact else "BROKEN (kept as it is: run hms verify-audit)"))
    if report.stock_mismatches:
        print(f"  note: {report.stock_mismatches} stock batches disagree with their ledger (hms verify-stock)")
    if report.archive.is_relative_to(settings.DATA_DIR):
        print(f"  warning: the archive is inside {settings.DATA_DIR}, next to the key file; move it elsewhere",
              file=sys.stderr)
    print()
    print(backup.key_advice())
    return 0


def _restore(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hms_app.operations import backup

    try:
        report = backup.restore_backup(archive=Path(args.archive), force=args.force, check_only=args.check)
    except backup.RestoreRefused as error:
        print(f"restore refused: {error.message}", file=sys.stderr)
        return 1
    made = f"{report.engine} backup of {report.created_at}, schema {report.schema_revision}"
    if args.check:
        print(f"archive intact and the data key fits: {made}; {report.rows} rows in {len(report.tables)} tables, "
              f"{report.files} files")
        return 0
    for path in report.kept_aside:
        print(f"kept aside: {path}")
    print(f"restored {made} into {_safe_url()} and {settings.FILES_DIR}")
    for warning in report.warnings:
        print(f"  warning: {warning}")
    if not report.ok:
        for problem in report.problems:
            print(f"  PROBLEM: {problem}", file=sys.stderr)
        return 2
    print(f"  verified: {report.rows} rows in {len(report.tables)} tables as in the backup; audit chain of "
          f"{report.audit_rows} rows intact and ending where the backup's did; stock ledger as it was; "
          f"{report.values_decrypted} encrypted values and {report.files_decrypted} of {report.files} files "
          "decrypt with the data key")
    if report.behind_code:
        print("  the backup's schema is older than this HMS: run `hms migrate` before starting the app")
    return 0


def _second_factor(args: argparse.Namespace) -> int:
    from hms_app.db.engine import session_scope
    from hms_app.services.administration import second_factor
    from hms_app.services.core.errors import HMSError

    try:
        with session_scope() as session:
            for role in args.require:
                second_factor.console_set_requirement(session, role, True)
                print(f"{role}: second factor required")
            for role in args.not_required:
                second_factor.console_set_requirement(session, role, False)
                print(f"{role}: second factor not required")
            if args.reset:
                done = second_factor.console_reset(session, args.reset)
                print(f"{args.reset}: " + ("authenticator and recovery codes forgotten" if done else "had none"))
    except HMSError as error:
        print(error.message, file=sys.stderr)
        return 1
    return 0


def _worker(args: argparse.Namespace) -> int:
    import time

    from hms_app.db.engine import session_scope
    from hms_app.services.messaging import mail

    if not mail.enabled():
        print("e-mail is off: set HMS_SMTP_URL (smtp://host:port?from=address) to send", file=sys.stderr)
        return 1
    transport = mail.SmtpTransport(settings.SMTP_URL)
    print(f"sending e-mail through {mail.safe_server(settings.SMTP_URL)} every {args.interval}s")
    while True:
        reminders, report = mail.send_round(session_scope, transport)
        if reminders or report.sent or report.retrying or report.failed:
            print(f"reminders queued {reminders}; sent {report.sent}, to retry {report.retrying}, "
                  f"given up {report.failed}", flush=True)
        if args.once:
            return 0
        time.sleep(args.interval)


def _import(args: argparse.Namespace) -> int:
    """``hms import KIND FILE``: one import, in the foreground, with a progress bar; Ctrl-C cancels it."""
    import csv
    import threading
    from pathlib import Path

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from hms_app.db.engine import session_scope
    from hms_app.services.core.errors import HMSError
    from hms_app.services.core.spreadsheet import csv_safe
    from hms_app.services.golive import jobs

    path = Path(args.file)
    mapping = dict(pair.split("=", 1) for pair in args.map if "=" in pair)
    if bad := [pair for pair in args.map if "=" not in pair]:
        print(f"--map takes 'File header=column', not {bad[0]!r}", file=sys.stderr)
        return 2
    if not path.exists() or (path.is_dir() and args.kind != jobs.FHIR):
        print(f"no such file: {path}", file=sys.stderr)
        return 2
    try:
        with session_scope() as session:
            actor = jobs.console_actor(session, args.by)
            job_id = jobs.console_import(session, actor, kind=args.kind, path=path, mapping=mapping,
                                         dry_run=args.dry_run, good_rows_only=args.good_rows_only)
    except HMSError as error:
        print(error.message, file=sys.stderr)
        return 1
    outcome: dict[str, object] = {}
    console = Console(stderr=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as bars:
        task = bars.add_task(f"{args.kind} from {path.name}", total=None)

        def progress(done: int, total: int | None) -> None:
            bars.update(task, completed=done, total=total)

        def work() -> None:
            try:
                outcome["report"] = jobs.run_import(job_id, actor, progress=progress, path=path)
            except BaseException as error:  # shown below, after the bar
                outcome["error"] = error

        runner = threading.Thread(target=work, name="hms-import")
        runner.start()
        try:
            while runner.is_alive():
                runner.join(0.2)
        except KeyboardInterrupt:
            console.print("cancelling: rolling back what was not committed ...")
            with session_scope() as session:
                jobs.cancel_import(session=session, actor=actor, job_id=job_id)
            runner.join()
    if "error" in outcome:
        print(f"the import failed: {outcome['error']!r}", file=sys.stderr)
        return 1
    with session_scope(write=False) as session:
        view = jobs.import_status(session=session, actor=actor, job_id=job_id)
        failed = jobs.import_report(session=session, actor=actor, job_id=job_id, outcome="failed", page_size=50).rows
    table = Table(title=f"import {job_id}: {view.kind_label} from {view.file_name} ({view.mode.lower()})")
    for name in ("created", "updated", "unchanged", "skipped", "failed"):
        table.add_column(name, justify="right")
    table.add_row(*(f"{getattr(view, n):,}" for n in ("created", "updated", "unchanged", "skipped", "failed")))
    Console().print(table)
    print(f"{view.status_label}: {view.message}")
    for line in failed:
        print(f"  line {line.line}: {line.message}", file=sys.stderr)
    if view.failed > len(failed):
        print(f"  ... and {view.failed - len(failed)} more: --report FILE.csv writes every line", file=sys.stderr)
    if args.report:
        with session_scope(write=False) as session, open(args.report, "w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(["line", "outcome", "record", "message"])
            page = 1
            while rows := jobs.import_report(session=session, actor=actor, job_id=job_id, page=page,
                                             page_size=100).rows:
                # A record's key and a message quote the file's own cells: defused for spreadsheets.
                writer.writerows([r.line, r.outcome, csv_safe(r.record), csv_safe(r.message)] for r in rows)
                page += 1
        print(f"the report of every line is in {args.report}")
    return 0 if view.committed or (args.dry_run and view.status == "done" and not view.failed) else 1


def _safe_url() -> str:
    import sqlalchemy as sa

    return sa.make_url(settings.DATABASE_URL).render_as_string(hide_password=True)


def _safe_redis_url() -> str:
    import sqlalchemy as sa

    return sa.make_url(settings.REDIS_URL).render_as_string(hide_password=True)


def _i18n(args: argparse.Namespace) -> int:
    from hms_app.operations import translations

    if args.action == "extract":
        template = translations.write_template()
        print(f"{len(template)} texts in {translations.TEMPLATE.relative_to(settings.PROJECT_ROOT)}")
    elif args.action == "update":
        translations.write_template()
        translations.update()
        print("merged into " + ", ".join(str(translations.po_path(code).relative_to(settings.PROJECT_ROOT))
                                         for code in translations.translated_languages()))
    elif args.action == "compile":
        translations.compile_catalogues()
        print("compiled the .mo files and assets/i18n/messages.js")
    report = translations.check() if args.action in {"check", "compile"} else None
    for problem in report.problems[:200] if report else []:
        print(problem, file=sys.stderr)
    if report and len(report.problems) > 200:
        print(f"... and {len(report.problems) - 200} more", file=sys.stderr)
    return 1 if report and not report.complete else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hms", description="HMS administration commands")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("createdb", help="create the PostgreSQL database of HMS_DATABASE_URL if missing"
                        ).set_defaults(run=_createdb)
    commands.add_parser("check-deployment", help="check Redis and that every worker's pool fits PostgreSQL's limit"
                        ).set_defaults(run=_check_deployment)
    commands.add_parser("migrate", help="apply the database migrations").set_defaults(run=_migrate)
    init = commands.add_parser(
        "init", help="start a real hospital in an empty, migrated database: its settings and one administrator "
                     "(missing values are asked for at a terminal)")
    init.add_argument("--admin-email", metavar="ADDRESS", help="the first administrator's e-mail address")
    init.add_argument("--admin-name", default="Administrator", help="their name (default Administrator)")
    init.add_argument("--name", help="the hospital's name, as every page, PDF and e-mail shows it")
    init.add_argument("--timezone", metavar="ZONE", help="its time zone, an IANA name such as Europe/London")
    init.add_argument("--locale", metavar="TAG", help="how dates and numbers are written, such as en-GB or de-DE")
    init.add_argument("--currency", metavar="CODE", help="the ISO 4217 code every amount is in, such as GBP")
    init.add_argument("--starter-catalog", action="store_true",
                      help="also load the shipped formulary and lab catalog, for the pharmacy and lab to edit")
    init.add_argument("--check", action="store_true",
                      help="write nothing; succeed only if the database holds a hospital set up by hms init")
    init.set_defaults(run=_init)
    seed = commands.add_parser("seed", help="load the demo hospital into an empty database")
    seed.add_argument("--if-empty", action="store_true", help="succeed quietly when users exist")
    seed.add_argument("--scale", type=float, metavar="N",
                      help="also generate N × a hospital of 100,000 patients and 1,000,000 appointments over five "
                           "years (0.01, 0.1, 1 ...), for load tests and benchmarks")
    seed.add_argument("--seed", type=int, default=2026, help="random seed of --scale (default 2026)")
    seed.set_defaults(run=_seed)
    commands.add_parser("verify-audit", help="check the audit trail's hash chain").set_defaults(run=_verify_audit)
    commands.add_parser("verify-stock", help="check that the stock ledger sums to what is on hand"
                        ).set_defaults(run=_verify_stock)
    commands.add_parser("verify-totals", help="check that the daily totals of the accounts dashboard sum the "
                        "charges, payments and open balances").set_defaults(run=_verify_totals)
    commands.add_parser(
        "rotate-key", help="re-encrypt clinical data and files with a new data key (stop the app first)"
    ).set_defaults(run=_rotate_key)
    backup = commands.add_parser(
        "backup", help="write the database and the encrypted files to one archive (the app may keep running); "
                       "the data key is never in it")
    backup.add_argument("-o", "--output", metavar="PATH",
                        help="the archive's file name, or a folder for it (default: hms-backup-<time>.tar.gz here)")
    backup.set_defaults(run=_backup)
    restore = commands.add_parser(
        "restore", help="restore an archive into an empty database and files folder, then verify it (stop the app "
                        "first; the data key must be in place)")
    restore.add_argument("archive", metavar="ARCHIVE")
    restore.add_argument("--force", action="store_true",
                         help="replace a database or files folder that holds data (SQLite's file and the files "
                              "folder are kept aside as *.before-restore-<time>; PostgreSQL's tables are dropped)")
    restore.add_argument("--check", action="store_true",
                         help="only check the archive's checksums and that the data key fits; write nothing")
    restore.set_defaults(run=_restore)
    factor = commands.add_parser("second-factor", help="require a second factor per role, or reset a user's "
                                 "(a lost phone when no admin can log in)")
    factor.add_argument("--require", nargs="+", default=[], metavar="ROLE", help="roles that must use one")
    factor.add_argument("--not-required", nargs="+", default=[], metavar="ROLE", help="roles that need not")
    factor.add_argument("--reset", metavar="EMAIL", help="forget this user's authenticator and recovery codes")
    factor.set_defaults(run=_second_factor)
    worker = commands.add_parser("worker", help="send the queued e-mail and the 24-hour appointment reminders "
                                 "(runs until stopped; needs HMS_SMTP_URL)")
    worker.add_argument("--interval", type=float, default=settings.MAIL_INTERVAL,
                        help="seconds between rounds (default HMS_MAIL_INTERVAL, 30)")
    worker.add_argument("--once", action="store_true", help="one round, then exit")
    worker.set_defaults(run=_worker)
    importing = commands.add_parser(
        "import", help="bring data in from a CSV file (patients, staff, ...) or FHIR (a Bundle, NDJSON or a folder)")
    importing.add_argument("kind", metavar="KIND", help="what the file holds: a CSV kind (patients, staff, ...) or fhir")
    importing.add_argument("file", metavar="FILE", help="the file; for fhir also a folder of .json/.ndjson files")
    importing.add_argument("--by", required=True, metavar="ADMIN_EMAIL",
                           help="the active account the import is done as and audited under")
    importing.add_argument("--dry-run", action="store_true", help="check every line and report; change nothing")
    importing.add_argument("--good-rows-only", action="store_true",
                           help="import the good lines and skip those with problems (default: all or nothing)")
    importing.add_argument("--map", action="append", default=[], metavar="'File header=column'",
                           help="read a file header as one of the kind's columns (repeat for several)")
    importing.add_argument("--report", metavar="FILE.csv", help="write what happened to every line to this file")
    importing.set_defaults(run=_import)
    i18n = commands.add_parser("i18n", help="the translation catalogues: extract the texts, update each language's "
                               ".po, compile them, or check that every text is translated and compiled")
    i18n.add_argument("action", choices=["extract", "update", "compile", "check"])
    i18n.set_defaults(run=_i18n)
    args = parser.parse_args(argv)
    from hms_app.db.postgres import ConnectionBudgetExceeded

    try:
        if args.command not in {"createdb", "check-deployment", "migrate", "restore", "i18n"}:
            from hms_app.db.engine import get_engine
            from hms_app.services.administration.hospital import load_hospital_settings

            args.hospital = load_hospital_settings(get_engine())  # its time zone, locale and currency
        return args.run(args)
    except ConnectionBudgetExceeded as error:
        print(f"refusing to start: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

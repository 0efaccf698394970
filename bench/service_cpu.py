"""CPU time per call of the services behind the busiest pages, in this process, without a server.

A page's loader resolves the tab's session and calls one service in a session of its own; this
does the same in a loop, on a SQLite database with the demo hospital (billing history included),
and prints the CPU time (``time.process_time``) per call, the best of three rounds. CPU time
moves much less than wall-clock time when other work shares the machine, so it is the figure
to compare before and after a change to a query. ``resolve_session`` alone is the floor every
call pays.

    .venv/bin/python -m bench.service_cpu --calls 200
"""

from __future__ import annotations

import os
import tempfile

# Before the app's settings are read: a data folder of the run's own, and the test suite's
# bcrypt cost (the logins before the loop are not measured).
os.environ.setdefault("HMS_BCRYPT_ROUNDS", "4")
os.environ.setdefault("HMS_DATA_DIR", tempfile.mkdtemp(prefix="hms-bench-data-"))

import argparse
import time
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from bench.harness import DEMO_PASSWORD, demo_sqlite, machine_note, table
from hms_app.db import engine as db_engine
from hms_app.services.administration import auth, second_factor
from hms_app.services.booking import appointments
from hms_app.services.core.actor import Anonymous
from hms_app.services.laboratory import lab
from hms_app.services.medicines import pharmacy
from hms_app.services.messaging import notifications

USERS = {"patient": "maria.garcia@patients.example", "doctor": "amelia.hart@hms.example", "lab": "lab@hms.example",
         "pharmacy": "pharmacy@hms.example", "admin": "admin@hms.example"}


def _no_service(*, session, actor) -> None:
    return None


def cases() -> list[tuple[str, str, Callable[..., Any], dict[str, Any]]]:
    tomorrow = (date.today() + timedelta(days=1)).isoformat()
    return [
        ("resolve_session only", "patient", _no_service, {}),
        ("notifications.unread_count", "patient", notifications.unread_count, {}),
        ("appointments.patient_appointments", "patient", appointments.patient_appointments,
         {"upcoming": False, "page_size": 10}),
        ("appointments.my_waitlist", "patient", appointments.my_waitlist, {}),
        ("appointments.doctor_schedule (week)", "doctor", appointments.doctor_schedule,
         {"first_day": tomorrow, "days": 7}),
        ("appointments.pending_requests", "doctor", appointments.pending_requests, {"page_size": 50}),
        ("lab.worklist", "lab", lab.worklist, {"status": "", "priority": "", "test_id": None, "page_size": 25}),
        ("pharmacy.prescription_queue", "pharmacy", pharmacy.prescription_queue, {"page_size": 20}),
        ("appointments.all_appointments", "admin", appointments.all_appointments,
         {"filters": appointments.AppointmentFilter("", "", "", "", ""), "page_size": 20}),
    ]


def measure(calls: int) -> list[tuple[str, float]]:
    engine = demo_sqlite("hms-bench-cpu-", billing_history=True)
    with db_engine.session_scope() as session:
        # Measured here: the services behind a session, not the login's second step.
        for role in ("admin", "doctor"):
            second_factor.console_set_requirement(session, role, False)
    tokens = {}
    for role, email in USERS.items():
        with db_engine.session_scope() as session:
            tokens[role] = auth.login(session=session, visitor=Anonymous("198.51.100.9"), email=email,
                                      password=DEMO_PASSWORD).token

    def call(role: str, service: Callable[..., Any], kwargs: dict[str, Any]) -> None:
        # As SessionState._call does for a read: one session, the actor resolved, one service.
        with db_engine.session_scope(write=False) as session:
            actor = auth.resolve_session(session=session, token=tokens[role], ip_address="198.51.100.9")
            service(session=session, actor=actor, **kwargs)

    results = []
    for name, role, service, kwargs in cases():
        call(role, service, kwargs)
        rounds = []
        for _ in range(3):
            started = time.process_time()
            for _ in range(calls):
                call(role, service, kwargs)
            rounds.append((time.process_time() - started) / calls)
        results.append((name, 1000 * min(rounds)))
    engine.dispose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=200, help="calls per round (three rounds)")
    args = parser.parse_args()
    rows = [(name, f"{ms:.2f}") for name, ms in measure(args.calls)]
    print(table(("service (with the session resolved)", "CPU ms per call"), rows))
    print(f"\n{machine_note()}")


if __name__ == "__main__":
    main()

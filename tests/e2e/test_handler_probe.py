"""Every handler, every role: each client-callable handler called with hostile arguments.

A server of the probe's own (its writes never disturb the browser journeys) holds the demo
hospital plus two victims: a patient with a record in every part of the hospital and her
doctor, every record carrying a canary (``tests/e2e/probe_seed.py``). Triggers record every
row any call changes. Then a visitor without a session and a user of each role, each on a
websocket of their own, call every handler of every state with the bounded list of hostile
argument vectors of ``tests/e2e/handler_probe.py``, and every call is held to its four
oracles: no canary the caller may not see, no row the caller may not change, every refusal
audited, no crash.
"""

from __future__ import annotations

import collections
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from hms_app.db.engine import session_scope
from hms_app.services.core import audit
from hms_app.state.auth import LoginState
from hms_app.state.dashboard import ProfileState
from tests.e2e import handler_probe as probe
from tests.e2e.server import BIN, ROOT, AppServer, server_env, start_backend
from tests.ws_client import EventResult, WsClient

DEMO_PASSWORD = "Demo-Hospital-2026"
CALL_TIMEOUT = 60
REPORT = ROOT / "test-results" / "handler-probe.json"
SHOWN = 60
SETTLE_ROUNDS = 4
SETTLE_PAUSE = 0.5
"""After a caller's last call, the database must stay still this many times this many seconds apart."""
"""Problems listed in a failure message; the rest are counted."""


@dataclass
class Probe:
    server: AppServer
    victims: probe.Victims
    engine: sa.Engine
    handlers: list[probe.Handler]
    routes: dict[str, list[str]]
    every_route: list[str]
    patterns: list
    report: dict


def start_probe_server(data_dir: Path) -> Probe:
    """Migrate, load the demo hospital and the victims, install the change log, serve."""
    env = server_env(data_dir, 0)
    # As on every test server, no role requires a second factor (the probe logs staff in by password).
    for command in (["migrate"], ["seed", "--if-empty"], ["second-factor", "--not-required", "admin", "accounts", "doctor"]):
        subprocess.run([str(BIN / "hms"), *command], env=env, cwd=ROOT, check=True, capture_output=True)
    seeded = subprocess.run([sys.executable, "-m", "tests.e2e.probe_seed", uuid.uuid4().hex[:8]], env=env,
                            cwd=ROOT, check=True, capture_output=True, text=True)
    victims = probe.Victims.from_json(json.loads(seeded.stdout))
    engine = sa.create_engine(f"sqlite:///{data_dir / 'hms.db'}", isolation_level="AUTOCOMMIT")
    probe.install_change_log(engine)
    # Websockets only: no front end to build. Every refusal audited on its own (a visitor's are
    # otherwise one row a minute per connection after the first), for the oracle to match.
    server = start_backend(data_dir, extra_env={"HMS_VISITOR_REFUSAL_WINDOW": "0"})
    return Probe(server, victims, engine, probe.all_handlers(), probe.page_routes(), probe.all_routes(),
                 probe.refusal_patterns(), {"callers": {}})


@pytest.fixture(scope="module")
def probe_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Probe]:
    p = start_probe_server(tmp_path_factory.mktemp("handler-probe"))
    try:
        yield p
    finally:
        p.server.stop()
        p.engine.dispose()


def _user_id(conn: sa.Connection, email: str) -> int:
    return conn.execute(sa.text('SELECT id FROM "user" WHERE email = :e'), {"e": email}).scalar_one()


def _audit_mark(conn: sa.Connection) -> int:
    return conn.exec_driver_sql("SELECT coalesce(max(id), 0) FROM audit_event").scalar_one()


def _denied_since(conn: sa.Connection, mark: int) -> tuple[int, list[dict]]:
    rows = conn.exec_driver_sql(
        "SELECT id, action, actor_id, outcome FROM audit_event WHERE id > ? ORDER BY id", (mark,)).all()
    denied = [dict(r._mapping) for r in rows if r.outcome == "denied"]
    return (rows[-1].id if rows else mark), denied


def _connect(url: str, caller: str) -> WsClient:
    client = probe.ProbeClient(url).connect()
    if caller != "visitor":
        form = {"email": probe.CALLER_EMAIL[caller], "password": DEMO_PASSWORD}
        result = client.call(LoginState, "log_in", {"form_data": form}, pathname="/login")
        assert [level for level, _ in result.toasts][-1:] == ["success"], result.toasts
    return client


def _server_log_errors(server: AppServer, offset: int) -> tuple[int, list[str]]:
    text = server.log_path.read_text(errors="replace")
    new = text[offset:]
    errors = [line for line in new.splitlines() if "Traceback" in line or "unhandled error" in line]
    return len(text), errors


def _run(p: Probe, caller: str) -> tuple[probe.Verdict, dict]:
    """Probe every handler as ``caller``; return what went wrong and the figures of the run."""
    verdict = probe.Verdict()
    started = time.monotonic()
    steps = probe.plan(p.handlers, p.victims, role=caller, routes=p.routes, every_route=p.every_route)
    glass_broken = False
    checked_session = caller == "visitor"
    seen_allowed: set[str] = set()
    refusal_count = 0
    ledger = probe.RefusalLedger()
    allowed_changes: collections.Counter[str] = collections.Counter()
    with p.engine.connect() as conn:
        caller_id = None if caller == "visitor" else _user_id(conn, probe.CALLER_EMAIL[caller])
        others = probe.other_patients_private(conn, caller, caller_id)
        if caller == "doctor":
            others = {k: v for k, v in others.items() if not k.endswith(f" {p.victims.patient}")}  # break-glass
        schema = probe.schema_of(conn)
        log_offset, _ = _server_log_errors(p.server, 0)
        client = _connect(p.server.url, caller)
        audit_mark = _audit_mark(conn)
        change_mark, _ = probe.read_changes(conn, 0)
        try:
            for handler, call in steps:
                if handler.name in probe.PROBED_LAST and not checked_session:
                    # The caller must still be who they were, or the probe ran as a visitor unawares.
                    still = client.call(ProfileState, "load_profile", pathname=f"/{caller}")
                    # (A toast of an earlier call's queued loader may arrive with this one.)
                    lost = ("error", "Please log in.") in still.toasts or any(
                        r.startswith("/login") for r in still.redirects)
                    assert not lost, f"{caller} lost the session during the probe: {still.toasts} {still.redirects}"
                    checked_session = True
                verdict.calls += 1
                try:
                    result = client.call(handler.full_name.rpartition(".")[0], handler.name, call.payload,
                                         pathname=call.pathname, query=call.query, timeout=CALL_TIMEOUT)
                except TimeoutError:
                    verdict.add(handler, call, [f"no answer within {CALL_TIMEOUT} s"])
                    client.close()
                    client = _connect(p.server.url, caller)
                    result = EventResult()
                change_mark, changes = probe.read_changes(conn, change_mark)
                audit_mark, denied = _denied_since(conn, audit_mark)
                glass_broken |= any(c.table == "break_glass" and c.op == "INSERT" for c in changes)
                forbidden = probe.forbidden_canaries(p.victims, caller, glass_broken=glass_broken)
                issues = probe.crashes(result)
                text = probe.received_text(result)
                seen = probe.leaks(text, p.victims.canaries)
                if leaked := [name for name in seen if name in forbidden] + probe.leaks(text, others):
                    issues.append(f"leaked {leaked}")
                seen_allowed.update(set(seen) - set(leaked))
                if changed := probe.forbidden_changes(changes, caller, caller_id):
                    issues.append(f"changed {changed[:5]}")
                allowed_changes.update(f"{c.op} {c.table}" for c in changes if c.describe() not in changed)
                refused = probe.refusals(result, p.patterns)
                refusal_count += bool(refused)
                issues += probe.strangers(denied, caller_id)
                verdict.problems += ledger.add(f"{handler}({call.describe()})", refused, len(denied))
                verdict.add(handler, call, issues)
            # Events the caller's last calls queued may still be running: what they change and
            # refuse is the caller's, and must not spill into the next caller's run.
            quiet = 0
            while quiet < SETTLE_ROUNDS:
                time.sleep(SETTLE_PAUSE)
                change_mark, changes = probe.read_changes(conn, change_mark)
                audit_mark, denied = _denied_since(conn, audit_mark)
                quiet = 0 if changes or denied else quiet + 1
                if changed := probe.forbidden_changes(changes, caller, caller_id):
                    verdict.problems.append(f"after the last call: changed {changed[:5]}")
                verdict.problems += [f"after the last call: {p}" for p in probe.strangers(denied, caller_id)]
                verdict.problems += ledger.add("(after the last call)", [], len(denied))
        finally:
            client.close()
        if probe.schema_of(conn) != schema:
            verdict.problems.append("the schema changed")
        _, log_errors = _server_log_errors(p.server, log_offset)
        if log_errors:
            verdict.problems.append(f"the server logged {len(log_errors)} errors, first: {log_errors[0][:300]}")
    stats = {"handlers": len({h.full_name for h, _ in steps}), "calls": verdict.calls,
             "seconds": round(time.monotonic() - started, 1), "problems": len(verdict.problems),
             "refusals": refusal_count, "refusal_audit_max_lag": ledger.max_lag, "glass_broken": glass_broken,
             "victim_data_seen_as_allowed": sorted(seen_allowed), "allowed_changes": dict(allowed_changes)}
    return verdict, stats


@pytest.mark.parametrize("caller", probe.CALLERS)
def test_every_handler_answers_a_hostile_caller_safely(probe_server, caller):
    verdict, stats = _run(probe_server, caller)
    probe_server.report["callers"][caller] = stats
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps(probe_server.report, indent=2) + "\n")
    shown = verdict.problems[:SHOWN]
    more = len(verdict.problems) - len(shown)
    assert not verdict.problems, (
        f"{caller}: {len(verdict.problems)} of {verdict.calls} calls went wrong:\n" + "\n".join(shown)
        + (f"\n... and {more} more" if more else ""))


def test_the_probe_reached_every_client_callable_handler(probe_server):
    from tests.test_event_handlers import _client_callable

    assert {h.full_name for h in probe_server.handlers} == _client_callable()
    assert all(stats["handlers"] == len(probe_server.handlers) for stats in probe_server.report["callers"].values())


def test_the_audit_chain_is_intact_after_the_probe(probe_server):
    with session_scope(write=False, engine=probe_server.engine) as session:
        report = audit.verify_chain(session)
    assert report.ok, report

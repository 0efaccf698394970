"""One anonymous script floods the websocket while a logged-in user works (issue 17, findings 1 and 6).

The real backend with its default limits. The flooder, a process of its own at another
address (127.0.0.2), sends a refused ``load_rows`` of an admin page 3,000 times a second for
10 s and connects again whenever it is closed. Meanwhile the admin, at 127.0.0.1, keeps
loading a page: its p95 must stay within twice its own baseline, or 50 ms over it (the baseline
measured just before and just after the flood), the flood must add fewer than 100 audit rows, the server must fall idle within
a second of the flooder's last disconnect, and reconnecting must not give the flooder more than
one connection's allowance. A packet nested 100,000 levels deep is refused without a traceback.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from hms_app.state.admin import AdminUsersState
from hms_app.state.auth import LoginState
from tests.e2e.server import ROOT, AppServer, start_backend
from tests.ws_client import EVENT_PATH, WsClient, state_name

FLOOD_SECONDS = 10.0
FLOOD_RATE = 3000
"""Events a second the flooder sends: 150 times a connection's rate."""
BATCH = 100
RATE, BURST = 20, 50
"""The default limits of one connection (``RATE``, ``BURST``)."""
FLOODER_ADDRESS = "127.0.0.2"
ADMIN_EMAIL = "admin@hms.example"
DEMO_PASSWORD = "Demo-Hospital-2026"
REFUSED_EVENT = {"name": f"{state_name(AdminUsersState)}.load_rows", "payload": {},
                 "router_data": {"pathname": "/admin/users", "asPath": "/admin/users"}}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    # The limits' defaults, not the test servers' (tests/e2e/server.py).
    defaults = dict.fromkeys(("HMS_EVENT_RATE", "HMS_EVENT_BURST", "HMS_EVENT_QUEUE", "HMS_EVENT_MAX_BYTES",
                              "HMS_ADDRESS_RATE", "HMS_ADDRESS_BURST", "HMS_VISITOR_REFUSAL_WINDOW"), "")
    server = start_backend(tmp_path_factory.mktemp("flood"), extra_env=defaults)
    yield server
    server.stop()


def _audit_rows(engine: sa.Engine) -> list[sa.Row]:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT id, actor_id, ip_address, outcome, detail FROM audit_event ORDER BY id")).all()


def _cpu_seconds(pid: int) -> float:
    """CPU time of a process and all its descendants so far, from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    tree, grown = {pid}, True
    while grown:
        more = {child for child, parent in parents.items() if parent in tree} - tree
        tree |= more
        grown = bool(more)
    return sum(times.get(p, 0.0) for p in tree)


def _timed_loads(admin: WsClient, seconds: float, pause: float = 0.2) -> list[float]:
    """Load the users page again and again for ``seconds``; each load's time in ms.

    A call is three events (the handler and the test client's two sentinels), so with ``pause``
    the admin sends at most 15 events a second: within a connection's rate, as a person does.
    """
    took = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.perf_counter()
        result = admin.call(AdminUsersState, "load_rows", pathname="/admin/users", timeout=20)
        took.append((time.perf_counter() - started) * 1000)
        assert not [t for t in result.toasts if t[0] == "error"], result.toasts
        time.sleep(pause)
    return took


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


def test_a_flood_from_one_address_leaves_the_others_alone(server: AppServer):
    engine = sa.create_engine(server.database_url)
    admin = WsClient(server.url).connect()
    try:
        login = admin.call(LoginState, "log_in", {"form_data": {"email": ADMIN_EMAIL, "password": DEMO_PASSWORD}},
                           pathname="/login")
        assert login.toasts[-1][0] == "success", login.toasts
        _timed_loads(admin, 1.0)  # warm up
        idle_from = _cpu_seconds(server.process.pid)
        time.sleep(1.0)
        idle = _cpu_seconds(server.process.pid) - idle_from
        baseline = _timed_loads(admin, 5.0)
        rows_before = len(_audit_rows(engine))

        flooder = subprocess.Popen([sys.executable, "-c", "import sys; from tests.e2e.test_event_flood import flood; "
                                    "flood(sys.argv[1], float(sys.argv[2]))", server.url, str(FLOOD_SECONDS)],
                                   cwd=ROOT, stdout=subprocess.PIPE, text=True)
        during = _timed_loads(admin, FLOOD_SECONDS - 1)
        report = json.loads(flooder.communicate(timeout=FLOOD_SECONDS + 30)[0])
        gone = time.monotonic()

        # The server falls idle within a second of the flooder's last disconnect.
        time.sleep(max(0.0, gone + 1.0 - time.monotonic()))
        cpu = _cpu_seconds(server.process.pid)
        trace = []
        for _ in range(8):
            time.sleep(0.25)
            trace.append(round(_cpu_seconds(server.process.pid) - cpu, 2))
        busy = trace[3]
        # The baseline is taken before and after the flood, so that what else this machine runs
        # meanwhile (the suite's other worker) weighs on both sides of the comparison alike.
        baseline += _timed_loads(admin, 5.0)
    finally:
        admin.close()

    rows = _audit_rows(engine)[rows_before:]
    flooder_rows = [r for r in rows if r.ip_address == FLOODER_ADDRESS]
    # What the server did of the flood: each connection's first refusal, and the counts of the rest.
    processed = sum(int(r.detail.split(" ", 1)[0]) if " more refusals" in r.detail else 1 for r in flooder_rows)
    log = server.log_path.read_text(errors="replace")
    summary = (f"baseline p95 {_p95(baseline):.1f} ms, during {_p95(during):.1f} ms; flooder {report}; "
               f"{len(rows)} audit rows, {processed} refusals processed; {busy:.2f} s CPU in the second after ({trace}), {idle:.2f} s in an idle second before")
    print(summary)

    # Twice the baseline, or 50 ms over it where the baseline is small: on two shared cores the
    # flooding process's own CPU (the client side, not the server) weighs on a 15 ms page load.
    # Before issue 17 the same flood took the p95 from 44 to 169-519 ms.
    assert _p95(during) <= max(2 * _p95(baseline), _p95(baseline) + 50), summary
    assert len(rows) < 100, summary
    assert busy < 0.2, summary
    # It was a flood, which the server cut short each time.
    assert report["sent"] > report["connections"] * BURST * 2, summary
    assert report["closed_by_server"] >= report["connections"] - 1, summary
    # Reconnecting gave the flooder no more than one connection's allowance over the flood.
    assert report["connections"] >= 2, summary
    assert report["refused_connects"] >= 1, summary
    assert processed <= BURST * 2 + RATE * FLOOD_SECONDS, summary
    assert "closing connection" in log
    assert "dropping events of connection" in log
    assert "Traceback" not in log, log[-3000:]


def test_a_packet_nested_100000_levels_deep_is_refused_without_a_traceback(server: AppServer):
    deep = "[" * 100_000 + "]" * 100_000
    with WsClient(server.url) as visitor:
        visitor._run(visitor.socket._sio.eio.send(f'2{EVENT_PATH},["event",{deep}]'))
        result = visitor.call(AdminUsersState, "load_rows", pathname="/admin/users")
        assert [level for level, _ in result.toasts] == ["error"], result.toasts
        assert visitor.socket.connected
    log = server.log_path.read_text(errors="replace")
    assert "nested deeper than" in log
    assert "Traceback" not in log, log[-3000:]
    assert "RecursionError" not in log, log[-3000:]


def flood(url: str, seconds: float) -> None:
    """The flooder (run as a process of its own): print what it did as JSON.

    It runs at a low priority: a flooder has a machine of its own, and on the test's machine
    its own work would otherwise slow the admin's client and the server alike.
    """
    os.nice(10)
    print(json.dumps(asyncio.run(_flood(url, seconds))))


async def _flood(url: str, seconds: float) -> dict[str, int]:
    import uuid

    import aiohttp
    import socketio

    report = {"sent": 0, "connections": 0, "closed_by_server": 0, "refused_connects": 0}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(FLOODER_ADDRESS, 0)))
        client = socketio.AsyncClient(reconnection=False, http_session=session)
        try:
            await client.connect(f"{url}?token={uuid.uuid4()}", headers={"Origin": url}, transports=["websocket"],
                                 namespaces=[EVENT_PATH], socketio_path=EVENT_PATH, wait_timeout=5)
        except socketio.exceptions.ConnectionError:
            report["refused_connects"] += 1
            await session.close()
            await asyncio.sleep(0.1)
            continue
        report["connections"] += 1
        while client.connected and time.monotonic() < deadline:
            try:
                for _ in range(BATCH):
                    await client.emit("event", REFUSED_EVENT, namespace=EVENT_PATH)
                    report["sent"] += 1
            except socketio.exceptions.SocketIOError:
                break
            await asyncio.sleep(BATCH / FLOOD_RATE)
        report["closed_by_server"] += time.monotonic() < deadline
        await client.disconnect()
        await session.close()
    return report

"""Limits per websocket connection and per address, packets too deep to parse, and refusals of
visitors audited once a minute (``hms_app/event_limits.py``, ``services/core/access.py``)."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import sqlalchemy as sa

from hms_app.address_limits import BucketsByKey
from hms_app.db.models import AuditEvent
from hms_app.event_limits import REFUSED_PACKET, EventLimits, GuardedJson, Verdict, packet_problem
from hms_app.services.core import access
from hms_app.services.core.actor import Anonymous
from hms_app.services.core.errors import SessionExpired

ROOMY = 1e9


def _limits(*, address_rate: float = ROOMY, address_burst: float = ROOMY, queue: int = 100) -> EventLimits:
    return EventLimits(rate=20, burst=50, queue=queue, addresses=BucketsByKey(address_rate, address_burst))


def _admit(limits: EventLimits, sid: str, count: int, now: float) -> list[Verdict]:
    return [limits.admit(sid, now=now) for _ in range(count)]


def test_a_connection_gets_its_burst_then_its_rate():
    limits = _limits()
    assert limits.connect("tab", "198.51.100.7", now=0.0)
    assert _admit(limits, "tab", 50, 0.0) == [Verdict.ACCEPT] * 50
    assert _admit(limits, "tab", 3, 0.0) == [Verdict.WARN, Verdict.DROP, Verdict.DROP]
    assert _admit(limits, "tab", 2, 0.05) == [Verdict.ACCEPT, Verdict.DROP]  # 20 a second: one in 50 ms


def test_a_connection_that_keeps_flooding_is_closed_and_its_address_waits_for_a_full_bucket():
    limits = _limits()
    limits.connect("flood", "198.51.100.7", now=0.0)
    verdicts = _admit(limits, "flood", 100, 0.0)
    assert verdicts[:51] == [Verdict.ACCEPT] * 50 + [Verdict.WARN]
    assert verdicts[-1] is Verdict.CLOSE
    assert Verdict.CLOSE not in verdicts[:-1]
    assert limits.admit("flood", now=0.0) is Verdict.DROP  # closed: the rest is dropped unread
    limits.disconnect("flood")

    assert not limits.connect("again", "198.51.100.7", now=2.4)  # 50 events at 20 a second: 2.5 s
    assert limits.connect("neighbour", "198.51.100.8", now=2.4)
    assert limits.connect("again", "198.51.100.7", now=2.6)


def test_a_quiet_second_ends_an_episode():
    limits = _limits()
    limits.connect("tab", "198.51.100.7", now=0.0)
    _admit(limits, "tab", 50 + 40, 0.0)  # 40 dropped, 10 short of being closed
    assert limits.admit("tab", now=1.5) is Verdict.ACCEPT
    assert _admit(limits, "tab", 41, 1.5)[-1] is Verdict.DROP  # a new episode: far from closed
    assert _admit(limits, "tab", 1, 1.5) == [Verdict.DROP]


def test_an_episode_goes_on_while_a_flooder_gets_a_token_now_and_then():
    limits = _limits()
    limits.connect("flood", "198.51.100.7", now=0.0)
    _admit(limits, "flood", 50, 0.0)
    verdicts = []
    for step in range(1, 200):  # 200 events a second, ten times the rate
        verdicts.append(limits.admit("flood", now=step * 0.005))
    assert Verdict.CLOSE in verdicts
    assert verdicts.index(Verdict.CLOSE) < 60


def test_every_event_takes_from_its_address_so_more_connections_give_no_more():
    limits = _limits(address_rate=10, address_burst=60)
    accepted, refused = 0, []
    for tab in range(4):
        if not limits.connect(f"tab{tab}", "203.0.113.5", now=0.0):  # a connection costs one
            refused.append(tab)
        accepted += _admit(limits, f"tab{tab}", 30, 0.0).count(Verdict.ACCEPT)
    assert (accepted, refused) == (60 - 2, [2, 3])
    limits.connect("other", "203.0.113.6", now=0.0)
    assert _admit(limits, "other", 30, 0.0) == [Verdict.ACCEPT] * 30


def test_a_connection_with_a_full_queue_gets_no_more_in():
    limits = _limits(queue=2)
    limits.connect("tab", "198.51.100.7", now=0.0)
    loop = asyncio.new_event_loop()
    try:
        limits.connections["tab"].waiting.update({loop.create_future(), loop.create_future()})
        assert limits.admit("tab", now=0.0) is Verdict.WARN
        limits.connections["tab"].waiting.pop()
        assert limits.admit("tab", now=0.0) is Verdict.ACCEPT
    finally:
        loop.close()


def test_an_unknown_connection_gets_nothing_in():
    assert _limits().admit("never-connected", now=0.0) is Verdict.DROP


BROWSER_EVENT = json.dumps(["event", {
    "name": "reflex___state____state.hms_app___state___admin____admin_users_state.search_rows",
    "payload": {"text": "[{ ]} \" \\\" garcia"},
    "router_data": {"pathname": "/admin/users", "query": {}, "asPath": "/admin/users"},
}])


@pytest.mark.parametrize("text", [
    BROWSER_EVENT,
    json.dumps(["event", {"payload": {"text": "[" * 5000 + "{" * 5000}}]),  # brackets inside a string
    json.dumps(["event", {"payload": {"text": '\\"[[[' * 2000}}]),
    json.dumps([[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]),  # 31 levels
])
def test_what_a_browser_sends_is_parsed(text):
    assert packet_problem(text) is None
    assert GuardedJson(json).loads(text) == json.loads(text)


@pytest.mark.parametrize(("text", "why"), [
    ("[" * 100_000 + "]" * 100_000, "nested deeper than 32"),
    ('["event",' + '{"a":' * 40 + "1" + "}" * 40 + "]", "nested deeper than 32"),
    ('["event","' + "x" * (1024 * 1024) + '"]', "more than"),
])
def test_a_packet_too_deep_or_too_long_is_refused_unparsed(text, why):
    assert why in (packet_problem(text) or "")
    assert GuardedJson(json).loads(text) == [REFUSED_PACKET, packet_problem(text)]


def test_a_packet_that_is_not_json_is_refused_without_raising():
    assert GuardedJson(json).loads('["event", {"name": ') == [REFUSED_PACKET, "not JSON (JSONDecodeError)"]


def test_the_check_costs_next_to_nothing_for_a_browsers_event():
    started = time.perf_counter()
    for _ in range(10_000):
        packet_problem(BROWSER_EVENT)
    assert (time.perf_counter() - started) / 10_000 < 20e-6


# --- refusals of visitors with no session --------------------------------------------------


@pytest.fixture
def refusals(monkeypatch: pytest.MonkeyPatch) -> access.VisitorRefusals:
    fresh = access.VisitorRefusals(60)
    monkeypatch.setattr(access, "VISITOR_REFUSALS", fresh)
    return fresh


def _refuse(session, connection: str, ip: str = "198.51.100.7") -> None:
    with pytest.raises(SessionExpired):
        access.refuse_visitor(session, Anonymous(ip), "users.list_users", SessionExpired("Please log in."),
                              connection=connection)


def _denied(session) -> list[AuditEvent]:
    return list(session.execute(sa.select(AuditEvent).where(AuditEvent.outcome == "denied")
                                .order_by(AuditEvent.id)).scalars())


def test_the_first_refusal_of_a_connection_is_audited_at_once_the_rest_as_one_row(session, refusals):
    for _ in range(11):
        _refuse(session, "conn-a")
    _refuse(session, "conn-b")
    rows = _denied(session)
    assert [(r.ip_address, r.action) for r in rows] == [("198.51.100.7", "users.list_users")] * 2

    assert access.flush_visitor_refusals(session, connection="conn-a") == 1  # conn-a closed
    rows = _denied(session)
    assert len(rows) == 3
    assert rows[-1].detail.startswith("10 more refusals with no session on this connection within 60 s")
    assert access.flush_visitor_refusals(session, connection="conn-b") == 0  # one refusal: audited already


def test_the_count_is_written_when_the_minute_ends(session, refusals):
    for _ in range(4):
        _refuse(session, "conn-a")
    assert access.flush_visitor_refusals(session) == 0
    assert access.flush_visitor_refusals(session, now=time.monotonic() + 61) == 1
    assert _denied(session)[-1].detail.startswith("3 more refusals")
    _refuse(session, "conn-a")  # a new minute: audited at once
    assert len(_denied(session)) == 3


def test_without_a_window_every_refusal_is_audited(session, monkeypatch):
    monkeypatch.setattr(access, "VISITOR_REFUSALS", access.VisitorRefusals(0))
    for _ in range(3):
        _refuse(session, "conn-a")
    assert len(_denied(session)) == 3


def test_a_refusal_with_no_connection_is_audited_at_once(session, refusals):
    for _ in range(3):
        _refuse(session, "")
    assert len(_denied(session)) == 3

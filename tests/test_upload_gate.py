"""The gate in front of ``POST /_upload`` (``hms_app/upload_gate.py``), against a small app that
stands where Reflex's upload route does and reads the whole body, as Reflex's does.

Each refusal is checked to have read none of the body (the request's ``receive`` never called),
to answer with its status and a short JSON message, and to leave one audit row with the address.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest
import sqlalchemy as sa
from reflex_base.registry import RegistrationContext
from reflex_base.utils.format import format_event_handler

from hms_app import address_limits, http_headers, settings, upload_gate
from hms_app.address_limits import BucketsByKey
from hms_app.db import engine as db_engine
from hms_app.db.models import AuditEvent
from hms_app.operations import demo
from hms_app.services.administration import auth
from hms_app.services.core.actor import Anonymous
from hms_app.state.auth import SESSION_COOKIE
from hms_app.state.clinical import ChartState
from hms_app.state.lab import LabWorklistState

LAB_UPLOAD = format_event_handler(LabWorklistState.upload_report)
CHART_UPLOAD = format_event_handler(ChartState.upload_document)
TAB = "0b1e4a6c-7d1f-4e36-9a43-6f0d2b9c8e11"


@dataclass
class Downstream:
    """Reflex's upload route as far as the gate can tell: it reads the body to its end (or to a
    disconnect), then answers 200 with what it read."""

    body: bytearray = field(default_factory=bytearray)
    called: bool = False
    disconnected: bool = False

    async def __call__(self, scope, receive, send) -> None:
        self.called = True
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.disconnected = True
                await send({"type": "http.response.start", "status": 200, "headers": []})
                await send({"type": "http.response.body", "body": b""})
                return
            self.body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"stored %d bytes" % len(self.body)})


@dataclass
class Sent:
    status: int
    headers: dict[str, str]
    body: bytes
    chunks_read: int
    downstream: Downstream

    @property
    def detail(self) -> str:
        return json.loads(self.body)["detail"]


def _post(*, handler: str = LAB_UPLOAD, token: str = "", address: str = "198.51.100.7", chunks: list[bytes] | None = None,
          content_length: int | None = None, connected: bool = True, extra: list[tuple[bytes, bytes]] | None = None) -> Sent:
    """Send one upload through the gate; ``chunks`` are what the client streams (one small part
    by default), counted as the server reads them."""
    chunks = [b"--x\r\n" + b"a" * 100 + b"\r\n--x--\r\n"] if chunks is None else chunks
    read = 0

    async def receive():
        nonlocal read
        read += 1
        if read > len(chunks):
            return {"type": "http.disconnect"}
        return {"type": "http.request", "body": chunks[read - 1], "more_body": read < len(chunks)}

    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    async def tab_connected(client_token: str) -> bool:
        return connected and client_token == TAB

    headers = [(b"reflex-client-token", TAB.encode()), (b"reflex-event-handler", handler.encode()),
               (b"content-type", b"multipart/form-data; boundary=x"), *(extra or [])]
    if token:
        headers.append((b"cookie", f"theme=dark; {SESSION_COOKIE}={token}".encode()))
    if content_length is not None:
        headers.append((b"content-length", str(content_length).encode()))
    scope = {"type": "http", "method": "POST", "path": "/_upload", "headers": headers, "client": (address, 50123)}
    downstream = Downstream()
    gate = upload_gate.with_upload_gate(downstream, tab_connected=tab_connected)
    # In a thread of its own: a browser journey on the same xdist worker may hold this thread's loop.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, gate(scope, receive, send)).result()
    start = next(m for m in sent if m["type"] == "http.response.start")
    assert sum(m["type"] == "http.response.start" for m in sent) == 1
    return Sent(start["status"], {k.decode(): v.decode() for k, v in start["headers"]},
                b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body"), read, downstream)


def _token(engine: sa.Engine, email: str) -> str:
    with db_engine.session_scope(engine=engine) as s:
        return auth.login(session=s, visitor=Anonymous("203.0.113.9"), email=email, password=demo.DEMO_PASSWORD).token


def _refusals(engine: sa.Engine) -> list[tuple[str, str, str, int | None]]:
    with db_engine.session_scope(engine=engine, write=False) as s:
        rows = s.execute(sa.select(AuditEvent.action, AuditEvent.ip_address, AuditEvent.outcome, AuditEvent.actor_id)
                         .where(AuditEvent.outcome == "denied").order_by(AuditEvent.id)).all()
    return [(a, ip, str(o), actor) for a, ip, o, actor in rows]


@pytest.fixture(autouse=True)
def _fresh_buckets(monkeypatch):
    monkeypatch.setattr(upload_gate, "UPLOADS", BucketsByKey(settings.UPLOAD_RATE, settings.UPLOAD_BURST))
    upload_gate.ADDRESSES.clear()


def _refused_unread(sent: Sent, status: int) -> None:
    assert sent.status == status
    assert sent.headers["content-type"] == "application/json"
    assert sent.chunks_read == 0, "the refusal read the body"
    assert not sent.downstream.called


def test_a_visitor_without_a_session_is_refused_before_the_body_is_read(seeded):
    before = _refusals(seeded)
    sent = _post(address="198.51.100.7")
    _refused_unread(sent, 401)
    assert sent.detail == "Please log in."
    assert _refusals(seeded)[len(before):] == [("lab_report.upload", "198.51.100.7", "denied", None)]


def test_a_made_up_session_cookie_is_refused_like_none(seeded):
    _refused_unread(_post(token="not-a-session-token"), 401)


def test_an_unknown_handler_is_refused_before_the_body_is_read(seeded):
    before = _refusals(seeded)
    sent = _post(handler="reflex___state____state.hms_app___state___auth____session_state.logout",
                 token=_token(seeded, "lab@hms.example"), address="198.51.100.8")
    _refused_unread(sent, 404)
    assert _refusals(seeded)[len(before):] == [("upload", "198.51.100.8", "denied", None)]


def test_a_role_without_the_handlers_permission_is_refused_before_the_body_is_read(seeded):
    patient = _token(seeded, "maria.garcia@patients.example")
    before = _refusals(seeded)
    sent = _post(token=patient, address="198.51.100.9")
    _refused_unread(sent, 403)
    [(action, ip, outcome, actor_id)] = _refusals(seeded)[len(before):]
    assert (action, ip, outcome) == ("lab_report.upload", "198.51.100.9", "denied")
    assert actor_id is not None
    _refused_unread(_post(handler=CHART_UPLOAD, token=_token(seeded, "lab@hms.example")), 403)


def test_a_tab_with_no_open_connection_is_refused_before_the_body_is_read(seeded):
    before = _refusals(seeded)
    sent = _post(token=_token(seeded, "lab@hms.example"), connected=False, address="198.51.100.10")
    _refused_unread(sent, 409)
    assert [r[:3] for r in _refusals(seeded)[len(before):]] == [("lab_report.upload", "198.51.100.10", "denied")]


def test_the_lab_uploads_a_report_within_the_limit(seeded):
    chunks = [b"x" * 65536] * 20
    sent = _post(token=_token(seeded, "lab@hms.example"), chunks=chunks, content_length=65536 * 20)
    assert sent.status == 200
    assert sent.body == b"stored %d bytes" % (65536 * 20)
    assert not sent.downstream.disconnected


def test_a_declared_length_past_the_limit_is_refused_before_the_body_is_read(seeded):
    limit = upload_gate.UPLOAD_HANDLERS[LAB_UPLOAD].body_limit
    before = _refusals(seeded)
    sent = _post(token=_token(seeded, "lab@hms.example"), content_length=limit + 1)
    _refused_unread(sent, 413)
    assert sent.detail == "The file is too large: at most 10 MB."
    assert [r[:3] for r in _refusals(seeded)[len(before):]] == [("lab_report.upload", "198.51.100.7", "denied")]


@pytest.mark.parametrize("declared", [None, 1000], ids=["no-length", "lying-length"])
def test_a_body_past_the_limit_is_cut_off_while_it_streams(seeded, declared):
    limit = upload_gate.UPLOAD_HANDLERS[LAB_UPLOAD].body_limit
    chunk = 1024 * 1024
    chunks = [b"y" * chunk] * 300  # 300 MB, if anyone read it all
    sent = _post(token=_token(seeded, "lab@hms.example"), chunks=chunks, content_length=declared)
    assert sent.status == 413
    assert sent.detail == "The file is too large: at most 10 MB."
    assert sent.chunks_read == limit // chunk + 1, "the server went on reading past the limit"
    assert len(sent.downstream.body) <= limit, "the app was handed bytes past the limit"
    assert sent.downstream.disconnected
    assert b"stored" not in sent.body


def test_a_storm_of_refused_uploads_is_answered_429_unaudited_after_the_burst(seeded, monkeypatch):
    monkeypatch.setattr(upload_gate, "UPLOADS", BucketsByKey(rate=0.001, burst=3))
    before = len(_refusals(seeded))
    statuses = [_post(address="198.51.100.66").status for _ in range(10)]
    assert statuses == [401] * 3 + [429] * 7
    assert len(_refusals(seeded)) - before == 3
    sent = _post(address="198.51.100.66")
    _refused_unread(sent, 429)
    assert sent.headers["retry-after"] == "1"
    assert _post(address="198.51.100.67").status == 401, "another address has its own bucket"


def test_uploads_take_from_the_address_bucket_events_share(seeded, monkeypatch):
    assert upload_gate.ADDRESSES is address_limits.ADDRESSES
    monkeypatch.setattr(upload_gate, "ADDRESSES", BucketsByKey(rate=0.001, burst=2))
    upload_gate.ADDRESSES.take("198.51.100.70")  # an event of the same address
    assert [_post(address="198.51.100.70").status for _ in range(2)] == [401, 429]


def test_other_requests_pass_untouched(seeded):
    downstream = Downstream()
    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    scope = {"type": "http", "method": "GET", "path": "/_upload/anything", "headers": [], "client": ("198.51.100.7", 1)}
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, upload_gate.with_upload_gate(downstream)(scope, receive, send)).result()
    assert downstream.called
    assert sent[0]["status"] == 200


@pytest.mark.parametrize(("hops", "forwarded", "address"), [
    (0, "203.0.113.50", "10.0.0.2"),
    (1, "203.0.113.50", "203.0.113.50"),
    (1, "6.6.6.6, 203.0.113.50", "203.0.113.50"),
    (2, "6.6.6.6, 203.0.113.50, 10.0.0.1", "203.0.113.50"),
    (2, "203.0.113.50", "10.0.0.2"),
])
def test_the_address_is_taken_as_reflex_takes_it(monkeypatch, hops, forwarded, address):
    monkeypatch.setattr(settings, "TRUSTED_PROXY_HOPS", hops)
    scope = {"headers": [(b"x-forwarded-for", forwarded.encode())], "client": ("10.0.0.2", 443)}
    assert http_headers.client_address(scope) == address


def test_every_handler_that_takes_files_is_known_to_the_gate():
    """Reflex's upload route runs any registered handler; the gate knows exactly those that take files."""
    import hms_app.hms_app  # noqa: F401  (builds the app, which registers every state)

    takes_files = {
        name for name, registered in RegistrationContext.get().event_handlers.items()
        if any("UploadFile" in str(p.annotation) for p in inspect.signature(registered.handler.fn).parameters.values())
    }
    assert takes_files == set(upload_gate.UPLOAD_HANDLERS)

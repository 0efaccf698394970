"""``POST /_upload`` against the real server: checked before the body is read, cut off at its limit.

Issue 17, finding 2: a made-up tab token and a real handler name had the server take 300 MB in
0.6 s, and 2 GB in 7.4 s, into temporary files before the handler refused the upload. Here each
upload is streamed from a raw socket, chunk by chunk, as a hostile script would send it; the
test counts what the client got to send and what the server's processes read (``rchar`` in
``/proc/<pid>/io``, which counts the bytes read from sockets too).
"""

from __future__ import annotations

import os
import select
import socket
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

from reflex_base.utils.format import format_event_handler

from hms_app.db import engine as db_engine
from hms_app.operations import demo
from hms_app.services.administration import auth
from hms_app.services.core.actor import Anonymous
from hms_app.state.auth import SESSION_COOKIE, LoginState
from hms_app.state.lab import LabWorklistState
from tests.e2e.helpers import db_rows
from tests.ws_client import WsClient

LAB_UPLOAD = format_event_handler(LabWorklistState.upload_report)
MB = 1024 * 1024
HUGE = 300 * MB


def _login(app_server, email: str) -> str:
    """A session token of ``email``'s, opened through the real service on the server's database."""
    engine = db_engine.create_engine(app_server.database_url)
    try:
        with db_engine.session_scope(engine=engine) as s:
            return auth.login(session=s, visitor=Anonymous("127.0.0.1"), email=email,
                              password=demo.DEMO_PASSWORD).token
    finally:
        engine.dispose()


def _server_read_bytes(app_server) -> int:
    """Bytes read so far by every process of the server (its process group)."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getpgid(int(entry.name)) != app_server.process.pid:
                continue
            io = dict(line.split(": ") for line in (entry / "io").read_text().splitlines())
        except (OSError, ValueError):
            continue
        total += int(io["rchar"])
    return total


def _stream_upload(app_server, *, tab: str, handler: str = LAB_UPLOAD, cookie: str = "", total: int = HUGE,
                   declared: int | None = None, file_body: bytes | None = None) -> tuple[int, bytes, int, float]:
    """Send a multipart upload of ``total`` bytes (or ``file_body``) chunk by chunk, chunked unless
    ``declared`` gives a Content-Length, and stop sending as soon as the server answers or closes.

    Returns:
        The status (0 when the server closed without one), the answer's body, the bytes sent and
        the seconds until the answer.
    """
    url = urlsplit(app_server.url)
    boundary = uuid.uuid4().hex
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"report.pdf\"\r\n"
            "Content-Type: application/pdf\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    lines = ["POST /_upload HTTP/1.1", f"Host: {url.netloc}", f"Origin: {app_server.url}",
             f"Content-Type: multipart/form-data; boundary={boundary}", f"reflex-client-token: {tab}",
             f"reflex-event-handler: {handler}"]
    lines += [f"Cookie: {cookie}"] if cookie else []
    lines += [f"Content-Length: {declared}"] if declared is not None else ["Transfer-Encoding: chunked"]
    chunk = b"%PDF-1.4\n" + b"0" * (MB - 9)
    if file_body is not None:
        parts = [head + file_body + tail]
    else:
        parts = [head, *([chunk] * (total // MB)), tail]
    started = time.monotonic()
    sent = 0
    with socket.create_connection((url.hostname, url.port), timeout=30) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        try:
            for part in parts:
                if select.select([sock], [], [], 0)[0]:
                    break  # the server answered (or closed) before the body was sent
                sock.sendall(part if declared is not None else b"%x\r\n%s\r\n" % (len(part), part))
                sent += len(part)
            else:
                if declared is None:
                    sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server closed the connection while the client sent
        answer = b""
        try:
            while b"\r\n\r\n" not in answer or len(answer) < answer.index(b"\r\n\r\n") + 4 + _length(answer):
                data = sock.recv(65536)
                if not data:
                    break
                answer += data
        except OSError:
            pass
    seconds = time.monotonic() - started
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0
    return status, answer.partition(b"\r\n\r\n")[2], sent, seconds


def _length(answer: bytes) -> int:
    for line in answer.split(b"\r\n\r\n")[0].split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


def _denials(app_server, action: str) -> list[tuple[str, str]]:
    return [(str(ip), str(detail)) for ip, detail in db_rows(
        app_server.database_url, "SELECT ip_address, detail FROM audit_event WHERE action = ? AND outcome = 'denied' "
        "ORDER BY id", (action,))]


def test_a_made_up_tab_without_a_session_is_refused_before_the_server_reads_the_body(app_server):
    refusals = len(_denials(app_server, "lab_report.upload"))
    read_before = _server_read_bytes(app_server)
    status, body, sent, _ = _stream_upload(app_server, tab=str(uuid.uuid4()))
    read = _server_read_bytes(app_server) - read_before
    assert status == 401, body
    assert b"Please log in." in body
    assert read < 32 * MB, f"the server read {read / MB:.0f} MB of a refused upload"
    assert sent < 64 * MB, f"the client got to send {sent / MB:.0f} MB"
    denials = _denials(app_server, "lab_report.upload")[refusals:]
    assert len(denials) == 1
    assert denials[0][0] == "127.0.0.1", "the refusal's audit row has no address"


def test_a_lab_upload_past_the_limit_is_cut_off_while_it_streams(app_server):
    with WsClient(app_server.url) as tab:
        cookie = f"{SESSION_COOKIE}={_login(app_server, 'lab@hms.example')}"
        refusals = len(_denials(app_server, "lab_report.upload"))
        read_before = _server_read_bytes(app_server)
        status, body, sent, seconds = _stream_upload(app_server, tab=tab.token, cookie=cookie)
        read = _server_read_bytes(app_server) - read_before
        assert status == 413, body
        assert b"The file is too large" in body
        assert read < 48 * MB, f"the server read {read / MB:.0f} MB of a 300 MB upload"
        assert seconds < 10
        [(address, detail)] = _denials(app_server, "lab_report.upload")[refusals:]
        assert address == "127.0.0.1"
        assert "cut off" in detail

        status, body, sent, _ = _stream_upload(app_server, tab=tab.token, cookie=cookie, declared=HUGE)
        assert status == 413, body
        assert sent < 64 * MB


def test_a_patients_session_calling_the_labs_upload_is_refused(app_server):
    with WsClient(app_server.url) as tab:
        cookie = f"{SESSION_COOKIE}={_login(app_server, 'maria.garcia@patients.example')}"
        refusals = len(_denials(app_server, "lab_report.upload"))
        status, body, sent, _ = _stream_upload(app_server, tab=tab.token, cookie=cookie)
        assert status == 403, body
        assert sent < 64 * MB
        [(address, detail)] = _denials(app_server, "lab_report.upload")[refusals:]
        assert address == "127.0.0.1"
        assert "lacks lab.work" in detail


def test_a_made_up_tab_with_a_real_session_is_refused_with_the_address(app_server):
    cookie = f"{SESSION_COOKIE}={_login(app_server, 'lab@hms.example')}"
    refusals = len(_denials(app_server, "lab_report.upload"))
    status, body, _, _ = _stream_upload(app_server, tab=str(uuid.uuid4()), cookie=cookie, total=2 * MB)
    assert status == 409, body
    assert [a for a, _ in _denials(app_server, "lab_report.upload")[refusals:]] == ["127.0.0.1"]


def test_an_upload_the_gate_passes_reaches_the_handler_which_refuses_a_tab_without_a_session(app_server):
    """The gate checks the request's cookie; the handler acts with the tab's own session. A tab
    that never logged in is refused by the handler, and that refusal has the tab's address."""
    with WsClient(app_server.url) as tab:
        tab.call(LoginState, "open_login", pathname="/login")
        cookie = f"{SESSION_COOKIE}={_login(app_server, 'lab@hms.example')}"
        refusals = len(_denials(app_server, "lab.upload_report_file"))
        status, body, _, _ = _stream_upload(app_server, tab=tab.token, cookie=cookie,
                                            file_body=b"%PDF-1.4\n%%EOF\n")
        assert status == 200, body
        assert [a for a, _ in _denials(app_server, "lab.upload_report_file")[refusals:]] == ["127.0.0.1"]


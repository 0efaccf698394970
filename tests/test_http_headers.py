"""The plain page for a browser at an address the app does not answer at (``with_address_check``)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest

from hms_app import http_headers, settings

PUBLIC = ["https://hms.example"]
LOCAL = ["http://localhost:3000", "http://127.0.0.1:3000", "http://[::1]:3000"]


def _call(origins: list[str], host: str, *, accept: str = "text/html", method: str = "GET",
          extra: list[tuple[bytes, bytes]] | None = None) -> tuple[int, bytes]:
    """Send one request through the check; return the status and body that left it."""
    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"the app"})

    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": method, "path": "/patient/appointments",
             "headers": [(b"host", host.encode()), (b"accept", accept.encode()), *(extra or [])]}
    # In a thread of its own: a browser journey on the same xdist worker may hold this thread's loop.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, http_headers.with_address_check(app, origins)(scope, None, send)).result()
    return sent[0]["status"], sent[1]["body"]


@pytest.mark.parametrize("host", ["localhost:3000", "127.0.0.1:3000", "[::1]:3000", "LOCALHOST:3000"])
def test_a_local_run_answers_at_every_loopback_name(host):
    assert _call(LOCAL, host) == (200, b"the app")


def test_a_browser_elsewhere_gets_a_page_naming_the_address():
    status, body = _call(PUBLIC, "10.0.0.5:3000")
    assert status == 421
    assert b'<a href="https://hms.example/patient/appointments">' in body
    assert b"10.0.0.5:3000" in body


def test_the_public_address_passes_with_or_without_its_default_port():
    assert _call(PUBLIC, "hms.example")[0] == 200
    assert _call(PUBLIC, "hms.example:443")[0] == 200
    assert _call(PUBLIC, "hms.example:8443")[0] == 421


def test_only_a_page_request_is_turned_away():
    assert _call(PUBLIC, "10.0.0.5", accept="application/fhir+json")[0] == 200  # API clients, health checks
    assert _call(PUBLIC, "10.0.0.5", method="POST")[0] == 200


def test_the_host_is_shown_as_text():
    status, body = _call(PUBLIC, "<script>alert(1)</script>")
    assert status == 421
    assert b"<script>" not in body
    assert b"&lt;script&gt;alert(1)&lt;/script&gt;" in body


def test_behind_a_trusted_proxy_the_forwarded_host_counts(monkeypatch):
    monkeypatch.setattr(settings, "TRUSTED_PROXY_HOPS", 1)
    # The proxy reaches the app at its own address; the browser asked for the public one.
    assert _call(PUBLIC, "127.0.0.1:3000", extra=[(b"x-forwarded-host", b"hms.example")])[0] == 200
    assert _call(PUBLIC, "127.0.0.1:3000", extra=[(b"x-forwarded-host", b"old-name.example")])[0] == 421
    assert _call(PUBLIC, "127.0.0.1:3000")[0] == 200  # no forwarded host: nothing to judge by


def test_the_content_security_policy_lets_each_address_reach_its_websocket():
    policy = http_headers.content_security_policy(LOCAL)
    assert "connect-src 'self' ws://localhost:3000 ws://127.0.0.1:3000 ws://[::1]:3000;" in policy
    assert "connect-src 'self' wss://hms.example;" in http_headers.content_security_policy(PUBLIC)

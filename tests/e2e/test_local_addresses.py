"""Which addresses the app answers at (issue 16, item 12).

A local run (``make run``, no ``HMS_PUBLIC_URL``) works at every loopback name: the front end
reaches the backend at the page's own host, and the websocket accepts each of those origins.
With ``HMS_PUBLIC_URL`` set, a browser at any other address gets a plain page naming the
address to use, instead of a front end that cannot connect.
"""

from __future__ import annotations

import socket
import urllib.error
import urllib.request

import pytest
from playwright.sync_api import expect

from tests.e2e.helpers import log_in_to, wait_ready
from tests.e2e.server import start_app


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


LIMITS = ("HMS_EVENT_RATE", "HMS_EVENT_BURST", "HMS_EVENT_QUEUE", "HMS_ADDRESS_RATE", "HMS_ADDRESS_BURST")


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    # As `make run` serves it: the limits on events at their defaults, not the test servers' raised ones.
    server = start_app(tmp_path_factory.mktemp("local-run"), local_run=True, extra_env=dict.fromkeys(LIMITS, ""))
    yield server
    server.stop()


@pytest.mark.parametrize("host", ["127.0.0.1", "[::1]", "localhost"])
def test_a_local_run_works_at_every_loopback_name(local_run, new_context, host):
    if host == "[::1]" and not _ipv6_loopback():
        pytest.skip("this machine has no IPv6 loopback")
    base = f"http://{host}:{local_run.port}"
    page = new_context().new_page()
    log_in_to(page, base, "aisha.khan@patients.example", "/patient")
    expect(page.get_by_role("heading", level=1, name="My dashboard")).to_be_visible()
    expect(page.locator("#user-name")).to_have_text("Aisha Khan")
    expect(page.get_by_text("Cannot connect to server")).to_have_count(0)


def test_a_person_clicking_through_every_page_stays_within_the_default_limits(local_run, new_context):
    """The limits per connection (20 events a second, bursts of 50) are for scripts, not people:
    a patient who opens each page as fast as it loads, and back to the dashboard, drops nothing."""
    base = f"http://localhost:{local_run.port}"
    page = new_context().new_page()
    log_in_to(page, base, "aisha.khan@patients.example", "/patient")
    navigation = page.get_by_role("navigation", name="Main navigation")
    expect(navigation.get_by_role("link").first).to_be_visible()
    names = [link.inner_text().strip() for link in navigation.get_by_role("link").all()]
    assert len(names) >= 5
    for _ in range(2):
        for name in names:
            navigation.get_by_role("link", name=name, exact=True).click()
            wait_ready(page)
    expect(page.get_by_text("Too many")).to_have_count(0)
    log = local_run.log_path.read_text()
    assert "dropping events of connection" not in log
    assert "closing connection" not in log


def test_another_address_gets_a_page_naming_the_public_one(app_server, page):
    # The e2e server's public address is http://localhost:PORT; 127.0.0.1 is another address.
    other = f"http://127.0.0.1:{app_server.port}"
    answer = page.goto(f"{other}/patient/appointments")
    assert answer.status == 421
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Open {app_server.url}")
    link = page.get_by_role("link", name=f"{app_server.url}/patient/appointments")
    expect(link).to_have_attribute("href", f"{app_server.url}/patient/appointments")
    expect(page.get_by_text(f"127.0.0.1:{app_server.port}")).to_be_visible()
    assert page.locator("script").count() == 0  # a plain page: nothing tries the websocket
    link.click()
    page.wait_for_url(f"{app_server.url}/login**")
    wait_ready(page)
    expect(page.get_by_role("heading", level=1, name="Log in")).to_be_visible()


def test_the_api_still_answers_at_any_address(app_server):
    # Health checks and API clients use whatever address reaches the server: only a browser's
    # page request gets the plain page.
    with urllib.request.urlopen(f"http://127.0.0.1:{app_server.port}/api/health", timeout=10) as answer:
        assert answer.status == 200
    request = urllib.request.Request(f"http://127.0.0.1:{app_server.port}/login", headers={"Accept": "text/html"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 421
    assert b"Open http://localhost:" in refused.value.read()

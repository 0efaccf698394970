"""Browser journeys against the real app in production mode, driven by Playwright."""

from __future__ import annotations

import glob
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from hms_app import settings
from tests.e2e.server import ROOT, AppServer, free_port, start_app, start_backend
from tests.services.test_mail import SENDER, Recorder

SCREENSHOTS = ROOT / "test-results" / "screenshots"
AXE_JS = ROOT / ".venv" / "axe" / "node_modules" / "axe-core" / "axe.min.js"


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/e2e" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def app_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    server = start_app(tmp_path_factory.mktemp("e2e-app"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def mail_outbox() -> Iterator[Recorder]:
    """An SMTP server (aiosmtpd) for the run's mailing backend: what it receives, kept."""
    from aiosmtpd.controller import Controller

    recorder = Recorder()
    port = free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    recorder.url = f"smtp://127.0.0.1:{port}?from={SENDER}"
    yield recorder
    controller.stop()


@pytest.fixture
def mail_on(mail_outbox: Recorder, monkeypatch: pytest.MonkeyPatch) -> Recorder:
    """``mail_outbox``, with e-mail on in the test's own process too (for what it queues or
    registers itself)."""
    monkeypatch.setattr(settings, "SMTP_URL", mail_outbox.url)
    return mail_outbox


@pytest.fixture(scope="session")
def mailing_server(mail_outbox: Recorder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    """A backend that sends e-mail through ``mail_outbox`` every second (no front end is built):
    one for the run, shared by the journeys that read what the app sends."""
    server = start_backend(tmp_path_factory.mktemp("mailing"),
                           extra_env={"HMS_SMTP_URL": mail_outbox.url, "HMS_MAIL_INTERVAL": "1"})
    yield server
    server.stop()


def _chromium_path() -> str | None:
    """Playwright's own Chromium when installed, else the system's."""
    cache = os.path.expanduser("~/.cache/ms-playwright")
    if glob.glob(f"{cache}/chromium-*/chrome-linux*/chrome"):
        return None
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    return None


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=10_000)  # a live page answers well within this on a loaded CI machine
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=_chromium_path(),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"],
        )
        yield b
        b.close()


@pytest.fixture
def context(browser):
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    ctx.set_default_timeout(15_000)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context):
    return context.new_page()


@pytest.fixture
def new_context(browser):
    """Opens further browser contexts (a second user, a phone) and closes them after the test."""
    made = []

    def make(**options):
        ctx = browser.new_context(**{"viewport": {"width": 1280, "height": 800}, **options})
        ctx.set_default_timeout(15_000)
        made.append(ctx)
        return ctx

    yield make
    for ctx in made:
        ctx.close()


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS

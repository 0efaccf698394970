"""Browser journeys against the real app in production mode, driven by Playwright."""

from __future__ import annotations

import glob
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.server import ROOT, AppServer, start_app

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

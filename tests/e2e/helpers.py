"""What the browser journeys do again and again: log in, check accessibility, take pictures."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.conftest import AXE_JS

DEMO_PASSWORD = "Demo-Hospital-2026"


def wait_ready(page) -> None:
    """Wait until the page is hydrated: the websocket is up and on_load has run."""
    page.wait_for_load_state("networkidle")
    page.wait_for_function("() => document.querySelector('main') !== null")


def log_in(page, base_url: str, email: str, password: str = DEMO_PASSWORD) -> None:
    page.goto(f"{base_url}/login")
    wait_ready(page)
    page.fill("#login-email", email)
    page.fill("#login-password", password)
    page.click("button[type=submit]")


def axe_violations(page, *, impacts: tuple[str, ...] = ("critical", "serious")) -> list[dict]:
    """Run axe-core on the page; return the violations of the given impacts."""
    page.add_script_tag(path=str(AXE_JS))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        {"id": v["id"], "impact": v["impact"], "help": v["help"],
         "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in result["violations"]
        if v["impact"] in impacts
    ]


def assert_accessible(page) -> None:
    violations = axe_violations(page)
    assert not violations, json.dumps(violations, indent=2)


def screenshot(page, directory: Path, name: str) -> Path:
    path = directory / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path

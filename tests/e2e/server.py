"""Starts the real app (``reflex run --env prod``) on a free port with its own database."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class AppServer:
    url: str
    port: int
    data_dir: Path
    database_url: str
    log_path: Path
    process: subprocess.Popen | None = None

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)


_INSTALLED_WEB: Path | None = None
"""The front-end folder of the first server this run started, once its npm install is done."""


def private_web_dir(data_dir: Path) -> Path:
    """A front-end build folder of this server's own, so that servers on other ports (and
    ``make run``) keep theirs: the port is compiled into the front end. The installed npm
    packages of the project's ``.web`` are hard-linked in, so no second install is needed."""
    web = data_dir / ".web"
    shared = ROOT / ".web"
    if not (shared / "node_modules").is_dir() and _INSTALLED_WEB is not None:
        shared = _INSTALLED_WEB  # a fresh clone: reuse the first test server's install
    if shared.is_dir():
        shutil.copytree(shared, web, symlinks=True,
                        ignore=shutil.ignore_patterns("node_modules", "build", ".react-router"))
        if (shared / "node_modules").is_dir():
            shutil.copytree(shared / "node_modules", web / "node_modules", symlinks=True, copy_function=os.link)
    return web


def server_env(data_dir: Path, port: int, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        REFLEX_USE_NPM="1",
        REFLEX_TELEMETRY_ENABLED="false",
        HMS_DATA_DIR=str(data_dir),
        HMS_PORT=str(port),
        HMS_PUBLIC_URL=f"http://localhost:{port}",
        # Tests drive the app from scripts as fast as it answers, all from 127.0.0.1: far above
        # the limits per connection and per address meant for people (tests/e2e/test_event_flood.py
        # holds the app to its defaults).
        HMS_EVENT_RATE="5000",
        HMS_EVENT_BURST="5000",
        HMS_ADDRESS_RATE="50000",
        HMS_ADDRESS_BURST="50000",
        # The same for failed attempts per address: the suites' wrong passwords, codes, tokens and
        # registrations all come from 127.0.0.1 (tests/services/test_throttle.py tests the limits).
        HMS_THROTTLE_LOGIN="1000000/900/900",
        HMS_THROTTLE_REGISTER="1000000/3600/3600",
        HMS_THROTTLE_PASSWORD="1000000/900/900",
        HMS_THROTTLE_API="1000000/60/300",
    )
    env.pop("HMS_DATABASE_URL", None)
    env.update(extra or {})
    return env


def launch_backend(env: dict[str, str], port: int, log_path: Path, *, timeout: float = 300,
                   workers: int = 1) -> subprocess.Popen:
    """Serve the app's backend alone (granian, one worker, no front-end build) with ``env`` on
    ``port``, as ``reflex run --env prod`` runs it; wait until it answers its health check."""
    env = {**env, "REFLEX_ENV_MODE": "prod", "REFLEX_SKIP_COMPILE": "true"}
    with log_path.open("ab") as out:
        process = subprocess.Popen(
            [str(BIN / "granian"), "--interface", "asgi", "--factory", "--host", "127.0.0.1", "--port", str(port),
             "--workers", str(workers), "hms_app.hms_app:app"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited:\n{log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2) as answer:
                if answer.status == 200:
                    return process
        except OSError:
            pass
        time.sleep(0.25)
    os.killpg(process.pid, signal.SIGKILL)
    raise RuntimeError(f"the server did not start:\n{log_path.read_text()[-3000:]}")


def prepare_data(data_dir: Path, env: dict[str, str]) -> None:
    """Migrate the server's database and load the demo data; no role requires a second factor."""
    subprocess.run([str(BIN / "hms"), "migrate"], env=env, cwd=ROOT, check=True, capture_output=True)
    subprocess.run([str(BIN / "hms"), "seed", "--if-empty"], env=env, cwd=ROOT, check=True, capture_output=True)
    # The journeys log the demo staff in many times a minute, and a one-time code is accepted only
    # once per 30 seconds: no role requires a second factor here unless a test switches it on.
    subprocess.run([str(BIN / "hms"), "second-factor", "--not-required", "admin", "accounts", "doctor"],
                   env=env, cwd=ROOT, check=True, capture_output=True)


def start_backend(data_dir: Path, *, extra_env: dict[str, str] | None = None, workers: int = 1) -> AppServer:
    """The app's backend alone with the demo data, for tests that use no browser (no front-end
    build: it starts in seconds); ``workers`` processes (several need ``REFLEX_REDIS_URL``)."""
    port = free_port()
    env = server_env(data_dir, port, {"HMS_PUBLIC_URL": f"http://127.0.0.1:{port}", "HMS_WORKERS": str(workers),
                                      "REFLEX_WEB_WORKDIR": str(private_web_dir(data_dir)), **(extra_env or {})})
    prepare_data(data_dir, env)
    log_path = data_dir / "server.log"
    process = launch_backend(env, port, log_path, workers=workers)
    database_url = env.get("HMS_DATABASE_URL") or f"sqlite:///{data_dir / 'hms.db'}"
    return AppServer(f"http://127.0.0.1:{port}", port, data_dir, database_url, log_path, process)


def start_app(data_dir: Path, *, timeout: float = 900, extra_env: dict[str, str] | None = None,
              local_run: bool = False, prepare: Callable[[Path, dict[str, str]], None] = prepare_data) -> AppServer:
    """Migrate, load the demo data and serve the app; wait until it answers.

    Args:
        local_run: serve it as ``make run`` does, with no ``HMS_PUBLIC_URL`` (every loopback
            name is the app's address); otherwise at ``http://localhost:PORT`` alone.
        prepare: what is done to the database before the app starts (``data_dir``, the app's
            environment); the demo by default, a real hospital's ``hms init`` in its journey.
    """
    port = free_port()
    env = server_env(data_dir, port, {"REFLEX_WEB_WORKDIR": str(private_web_dir(data_dir)), **(extra_env or {})})
    if local_run:
        env.pop("HMS_PUBLIC_URL")
    prepare(data_dir, env)
    log_path = data_dir / "server.log"
    log = log_path.open("w")
    process = subprocess.Popen(
        [str(BIN / "reflex"), "run", "--env", "prod"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    database_url = env.get("HMS_DATABASE_URL") or f"sqlite:///{data_dir / 'hms.db'}"
    server = AppServer(f"http://localhost:{port}", port, data_dir, database_url, log_path, process)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the app exited early:\n{log_path.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(f"{server.url}/api/health", timeout=2) as r1, \
                    urllib.request.urlopen(f"{server.url}/login", timeout=2) as r2:
                if r1.status == 200 and r2.status == 200:
                    global _INSTALLED_WEB
                    if _INSTALLED_WEB is None and (data_dir / ".web" / "node_modules").is_dir():
                        _INSTALLED_WEB = data_dir / ".web"
                    return server
        except OSError:
            pass
        time.sleep(1)
    server.stop()
    raise RuntimeError(f"the app did not start within {timeout}s:\n{log_path.read_text()[-4000:]}")

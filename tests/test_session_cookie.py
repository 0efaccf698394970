"""The session cookie's route and attributes (``hms_app/session_cookie.py``), without a browser.

The browser's side (``document.cookie``, a reload, a new tab, logout) is in
``tests/e2e/test_session_cookie.py``.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from hms_app import session_cookie, settings
from tests.e2e.server import ROOT

ORIGIN = settings.ALLOWED_ORIGINS[0]
REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def client() -> TestClient:
    return TestClient(Starlette(routes=[session_cookie.route]), base_url=ORIGIN)


def _run(coroutine):
    """Run ``coroutine`` to its end on a thread of its own: this worker's thread may already run
    an event loop (Playwright's, when browser journeys ran here before)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def _code(token: str) -> str:
    return _run(session_cookie.issue_code(token))


def _post(client: TestClient, body: object, origin: str | None = ORIGIN, cookie: str = ""):
    headers = {"Content-Type": "application/json", **({"Origin": origin} if origin else {}),
               **({"Cookie": cookie} if cookie else {})}
    return client.post(session_cookie.PATH, content=json.dumps(body), headers=headers)


def _attributes(set_cookie: str) -> tuple[str, str, dict[str, str]]:
    pair, *rest = [part.strip() for part in set_cookie.split(";")]
    name, _, value = pair.partition("=")
    return name, value, {a.partition("=")[0].lower(): a.partition("=")[2] for a in rest}


def test_a_code_is_traded_once_for_an_httponly_strict_cookie(client):
    token = f"token-{uuid.uuid4().hex}"
    code = _code(token)
    answer = _post(client, {"code": code})
    assert answer.status_code == 204
    assert answer.headers["cache-control"] == "no-store"
    name, value, attributes = _attributes(answer.headers["set-cookie"])
    assert (name, value) == ("hms_session", token)
    assert attributes == {"path": "/", "max-age": str(settings.SESSION_ABSOLUTE_SECONDS), "httponly": "",
                          "samesite": "Strict"}  # plain http here: no Secure, no Domain

    again = _post(client, {"code": code})
    assert again.status_code == 400
    assert again.json() == {"error": session_cookie.EXPIRED_MESSAGE}
    assert "set-cookie" not in again.headers


def test_the_route_refuses_other_origins_other_methods_and_bad_bodies_and_keeps_the_code(client):
    code = _code("kept-token")
    refusals = [
        (_post(client, {"code": code}, origin="https://evil.example"), 403),
        (_post(client, {"code": code}, origin="null"), 403),
        (_post(client, {"code": code}, origin=None), 403),
        (client.get(session_cookie.PATH, headers={"Origin": ORIGIN}), 405),
        (client.put(session_cookie.PATH, content=json.dumps({"code": code}), headers={"Origin": ORIGIN}), 405),
        (_post(client, ["not", "an", "object"]), 400),
        (_post(client, {"code": code, "padding": "x" * 2000}), 400),
        (_post(client, {"code": ["a"]}), 400),
        (_post(client, {"code": "made-up"}), 400),
        (_post(client, {"end": True}), 400),
    ]
    for answer, status in refusals:
        assert answer.status_code == status, (answer.status_code, answer.text)
        assert "set-cookie" not in answer.headers
        assert answer.headers["cache-control"] == "no-store"
    # None of the refused requests used the code up.
    assert _attributes(_post(client, {"code": code}).headers["set-cookie"])[1] == "kept-token"


def test_an_expired_code_is_refused(client, monkeypatch):
    monkeypatch.setattr(settings, "SESSION_EXCHANGE_SECONDS", 0)
    answer = _post(client, {"code": _code("late-token")})
    assert answer.status_code == 400
    assert "set-cookie" not in answer.headers


def test_end_clears_the_cookie_only_while_it_holds_the_ended_session(client):
    ended = session_cookie.fingerprint("ended-token")
    answer = _post(client, {"end": ended}, cookie="hms_session=ended-token")
    assert answer.status_code == 204
    assert answer.headers["cache-control"] == "no-store"
    name, value, attributes = _attributes(answer.headers["set-cookie"])
    assert (name, value, attributes["max-age"]) == ("hms_session", "", "0")
    assert {"httponly", "samesite", "path"} <= attributes.keys()

    # Another tab of the browser has logged in since: its cookie stays.
    for cookie in ("hms_session=newer-token", ""):
        kept = _post(client, {"end": ended}, cookie=cookie)
        assert kept.status_code == 204
        assert "set-cookie" not in kept.headers


def test_codes_in_redis_are_kept_hashed_sealed_and_taken_once_across_workers(monkeypatch):
    monkeypatch.setattr(settings, "REDIS_URL", REDIS_URL)
    monkeypatch.setattr(session_cookie, "_store", session_cookie._RedisCodes())
    token = f"token-{uuid.uuid4().hex}"

    async def scenario() -> tuple[list[bytes], list[str | None]]:
        import redis.asyncio as redis_asyncio

        code = await session_cookie.issue_code(token)
        async with redis_asyncio.from_url(REDIS_URL) as redis:
            key = session_cookie._REDIS_PREFIX + session_cookie._lookup_key(code)
            stored = [key.encode(), await redis.get(key), str(await redis.ttl(key)).encode()]
        # Two workers ask at once: one gets the token.
        taken = await asyncio.gather(*(session_cookie.redeem_code(code) for _ in range(5)))
        return stored, taken

    (key, sealed, ttl), taken = _run(scenario())
    assert sealed is not None
    assert token.encode() not in key
    assert token.encode() not in sealed
    assert 0 < int(ttl) <= settings.SESSION_EXCHANGE_SECONDS
    assert sorted(taken, key=str) == [None, None, None, None, token]


def test_behind_https_the_cookie_is_secure_and_host_prefixed_and_only_that_name_is_read():
    script = (
        "from hms_app import session_cookie, settings\n"
        "from hms_app.state.auth import _cookie_token\n"
        "print(settings.SESSION_COOKIE_NAME)\n"
        "print(session_cookie.set_cookie('t0k'))\n"
        "print(session_cookie.clear_cookie())\n"
        "print(repr(_cookie_token('__Host-hms_session=t0k; other=1')))\n"
        "print(repr(_cookie_token('hms_session=planted')))\n"
    )
    env = {**os.environ, "HMS_PUBLIC_URL": "https://hms.example"}
    out = subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True, text=True,
                         check=True, timeout=120).stdout.splitlines()
    assert out[0] == "__Host-hms_session"
    name, value, attributes = _attributes(out[1])
    assert (name, value) == ("__Host-hms_session", "t0k")
    # What a browser requires of a __Host- cookie: Secure, Path=/, no Domain.
    assert attributes == {"path": "/", "max-age": str(settings.SESSION_ABSOLUTE_SECONDS), "httponly": "",
                          "samesite": "Strict", "secure": ""}
    assert _attributes(out[2])[2]["secure"] == ""
    # A cookie without the prefix (which a plain-http page or a sibling host could have planted) is not read.
    assert out[3:] == ["'t0k'", "''"]

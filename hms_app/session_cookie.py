"""The session cookie, set and cleared by the server in an HTTP answer, out of page scripts' reach.

Login happens over the websocket, and a websocket message cannot set a cookie; Reflex's own
``rx.Cookie`` is written by the page's script through ``document.cookie``, so it cannot be
``HttpOnly``. Instead, at login the server gives the tab a one-time exchange code (``issue_code``),
and the tab POSTs it with ``fetch`` to ``/api/session`` (``route``), whose answer carries
``Set-Cookie``: ``HttpOnly``, ``SameSite=Strict``, ``Path=/``, and behind https ``Secure`` with
the ``__Host-`` prefix (``settings.SESSION_COOKIE_NAME``). Only then does the tab go on to the
user's home page, so that a reload right after login keeps the session. The browser sends the
cookie in every later websocket handshake, where ``state.auth._cookie_token`` reads it.

The code is 256 random bits, lives ``settings.SESSION_EXCHANGE_SECONDS`` seconds and is taken
once. The store keeps it only as a SHA-256, beside the session token sealed with a key derived
from the code itself: what the store holds opens nothing without the code. The store is this
process's memory with one worker, Redis (``REFLEX_REDIS_URL``) with several, where the HTTP
request may reach another worker than the websocket did.

The route answers only POST, only from the app's own origins (``settings.ALLOWED_ORIGINS``: a
page of another site cannot trade a code or clear the cookie), never from a cache (``no-store``).
``{"code": "..."}`` sets the cookie; ``{"end": "<SHA-256 of a token>"}`` clears it if it still
holds that token (at logout, or when the server found the session ended: a tab whose old session
ended must not clear the cookie of the session another tab of the browser has opened since).
"""

from __future__ import annotations

import base64
import hashlib
import http.cookies
import json
import secrets
import threading
import time

from cryptography.fernet import Fernet, InvalidToken
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from hms_app import settings

PATH = "/api/session"
DONE = "done"
"""What the page's script answers when the route did what it asked (the cookie is set or cleared)."""
EXPIRED_MESSAGE = "This login has expired or was used already. Please log in again."  # i18n: not shown
_MAX_BODY = 1024
_REDIS_PREFIX = "hms:session-exchange:"
_NO_STORE = {"Cache-Control": "no-store"}


def _lookup_key(code: str) -> str:
    return hashlib.sha256(b"lookup:" + code.encode()).hexdigest()


def _sealer(code: str) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(b"seal:" + code.encode()).digest()))


class _MemoryCodes:
    """Codes of this process (one worker): lookup key -> (sealed token, monotonic expiry)."""

    def __init__(self) -> None:
        self._codes: dict[str, tuple[bytes, float]] = {}
        self._lock = threading.Lock()

    async def put(self, key: str, sealed: bytes, seconds: int) -> None:
        now = time.monotonic()
        with self._lock:
            self._codes = {k: v for k, v in self._codes.items() if v[1] > now}
            self._codes[key] = (sealed, now + seconds)

    async def take(self, key: str) -> bytes | None:
        with self._lock:
            sealed, expires = self._codes.pop(key, (None, 0.0))
        return sealed if sealed is not None and expires > time.monotonic() else None


class _RedisCodes:
    """Codes shared by every worker; ``GETDEL`` takes one at most once, whichever worker asks."""

    async def put(self, key: str, sealed: bytes, seconds: int) -> None:
        import redis.asyncio as redis_asyncio

        async with redis_asyncio.from_url(settings.REDIS_URL) as client:
            await client.set(_REDIS_PREFIX + key, sealed, ex=seconds)

    async def take(self, key: str) -> bytes | None:
        import redis.asyncio as redis_asyncio

        async with redis_asyncio.from_url(settings.REDIS_URL) as client:
            return await client.getdel(_REDIS_PREFIX + key)


_store: _MemoryCodes | _RedisCodes = _RedisCodes() if settings.REDIS_URL else _MemoryCodes()


async def issue_code(token: str) -> str:
    """A one-time code that ``/api/session`` trades for a cookie holding ``token``."""
    code = secrets.token_urlsafe(32)
    await _store.put(_lookup_key(code), _sealer(code).encrypt(token.encode()), settings.SESSION_EXCHANGE_SECONDS)
    return code


async def redeem_code(code: str) -> str | None:
    """The session token of a code that is known, unexpired and not yet used (now used), or None."""
    sealed = await _store.take(_lookup_key(code))
    if sealed is None:
        return None
    try:
        return _sealer(code).decrypt(sealed).decode()
    except InvalidToken:
        return None


def cookie_in(header: str, name: str) -> str:
    """The value of cookie ``name`` in a ``Cookie`` header, or "" (also for a header that does not parse)."""
    jar = http.cookies.SimpleCookie()
    try:
        jar.load(header or "")
    except http.cookies.CookieError:
        return ""
    morsel = jar.get(name)
    return morsel.value if morsel else ""


def token_in(header: str) -> str:
    """The session cookie's value in a ``Cookie`` header (``settings.SESSION_COOKIE_NAME``), or ""."""
    return cookie_in(header, settings.SESSION_COOKIE_NAME)


def fingerprint(token: str) -> str:
    """What ``end_script`` names a token by: its SHA-256, as the database keeps it."""
    return hashlib.sha256(token.encode()).hexdigest()


def set_cookie(token: str, *, name: str = settings.SESSION_COOKIE_NAME,
               secure: bool = settings.SESSION_COOKIE_SECURE) -> str:
    """The ``Set-Cookie`` value that gives the browser the session ``token``."""
    return _cookie(name, token, settings.SESSION_ABSOLUTE_SECONDS, secure)


def clear_cookie(*, name: str = settings.SESSION_COOKIE_NAME, secure: bool = settings.SESSION_COOKIE_SECURE) -> str:
    """The ``Set-Cookie`` value that makes the browser drop the session cookie."""
    return _cookie(name, "", 0, secure)


def _cookie(name: str, value: str, max_age: int, secure: bool) -> str:
    # No Domain attribute: the cookie stays with this host (which a __Host- name requires).
    return "; ".join([f"{name}={value}", "Path=/", f"Max-Age={max_age}", "HttpOnly", "SameSite=Strict",
                      *(["Secure"] if secure else [])])


def _fetch(body: dict) -> str:
    """The page's script that POSTs ``body`` to the route: a promise of ``DONE``, "refused" or "failed"."""
    return (f"fetch({json.dumps(PATH)}, {{method: 'POST', credentials: 'same-origin', cache: 'no-store', "
            f"headers: {{'Content-Type': 'application/json'}}, body: {json.dumps(json.dumps(body))}}})"
            f".then((answer) => answer.ok ? {json.dumps(DONE)} : 'refused', () => 'failed')")


def open_script(code: str) -> str:
    """The script that trades ``code`` for the session cookie (for ``rx.call_script``)."""
    return _fetch({"code": code})


def end_script(token: str) -> str:
    """The script that clears the session cookie if it holds ``token`` (for ``rx.call_script``)."""
    return _fetch({"end": fingerprint(token)})


def _refusal(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    # English: the page's script reads only whether the answer is ok (``_fetch``); the text is
    # for whoever calls the route by hand.
    return JSONResponse({"error": message}, status_code=status, headers={**_NO_STORE, **(headers or {})})


async def _body(request: Request) -> dict | None:
    """The request's JSON object, or None when it is not one or is longer than ``_MAX_BODY``."""
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > _MAX_BODY:
            return None
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        return None
    return body if isinstance(body, dict) else None


async def session_cookie(request: Request) -> Response:
    """``POST /api/session``: trade a login's one-time code for the session cookie, or clear it."""
    if request.method != "POST":
        return _refusal(405, "Use POST.", {"Allow": "POST"})  # i18n: not shown
    if request.headers.get("origin") not in settings.ALLOWED_ORIGINS:
        return _refusal(403, "Requests from this origin are not accepted.")  # i18n: not shown
    body = await _body(request)
    if body is None:
        return _refusal(400, "Send a JSON object of at most 1 kB.")  # i18n: not shown
    ended = body.get("end")
    if isinstance(ended, str) and ended:
        held = token_in(request.headers.get("cookie", ""))
        clear = {"Set-Cookie": clear_cookie()} if held and fingerprint(held) == ended else {}
        return Response(status_code=204, headers={**_NO_STORE, **clear})
    code = body.get("code")
    token = await redeem_code(code) if isinstance(code, str) and 0 < len(code) <= 100 else None
    if token is None:
        return _refusal(400, EXPIRED_MESSAGE)
    return Response(status_code=204, headers={**_NO_STORE, "Set-Cookie": set_cookie(token)})


route = Route(PATH, session_cookie, methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])

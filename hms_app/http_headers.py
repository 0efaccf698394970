"""Security headers on every HTTP response the app sends: pages, assets and the API.

Reflex 0.10 has no setting for response headers, but its ``api_transformer`` may wrap the
backend's ASGI app, which (in production, on one port) serves the compiled front end too. So
one small ASGI middleware adds the headers to every ``http`` response; websockets pass through.

The content security policy is as strict as the compiled React front end allows:

- scripts only from the app's own origin, but ``'unsafe-inline'`` (React Router's hydration
  data and Reflex's colour-mode script are inline, and differ per page and build) and
  ``'unsafe-eval'`` (Reflex's front end runs server-sent events such as toasts and downloads
  through ``eval``);
- styles from the origin and inline (Emotion and Radix write ``<style>`` elements and
  ``style`` attributes);
- images, fonts and connections only from the origin (plus ``data:``/``blob:`` images, and the
  websocket at the public address), no plugins, no ``<base>`` elsewhere, forms only to the
  origin, and no framing by any site.

So the policy stops an injected script from loading code, sending data or framing the app from
another origin; it does not stop inline script by itself — that is what rendering every value
as text does (``tests/e2e/test_stored_xss.py``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from hms_app import settings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def content_security_policy(public_url: str = settings.PUBLIC_URL) -> str:
    """The policy for an app served at ``public_url`` (its websocket at the same address)."""
    parts = urlsplit(public_url)
    websocket = f"{'wss' if parts.scheme == 'https' else 'ws'}://{parts.netloc}"
    return "; ".join([
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline' 'unsafe-eval'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        f"connect-src 'self' {websocket}",
        "worker-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ])


def security_headers(public_url: str = settings.PUBLIC_URL) -> list[tuple[bytes, bytes]]:
    headers = {
        "content-security-policy": content_security_policy(public_url),
        "x-frame-options": "DENY",
        "x-content-type-options": "nosniff",
        "referrer-policy": "same-origin",
        "cross-origin-opener-policy": "same-origin",
        "permissions-policy": "camera=(), microphone=(), geolocation=(), payment=()",
    }
    if public_url.startswith("https://"):
        headers["strict-transport-security"] = "max-age=31536000"
    return [(name.encode(), value.encode()) for name, value in headers.items()]


def with_security_headers(app: ASGIApp) -> ASGIApp:
    """Wrap ``app`` so that every HTTP response carries ``security_headers()`` (replacing any
    header of the same name the app set)."""
    added = security_headers()
    names = {name for name, _ in added}

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message["headers"] = kept + added
            await send(message)

        await app(scope, receive, send_with_headers)

    return wrapped

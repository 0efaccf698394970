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

import html
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from hms_app import settings
from hms_app.services.core.language import (
    _,
    current_language,
    preferred_language,
    text_direction,
    use_language,
)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def content_security_policy(origins: list[str] = settings.ALLOWED_ORIGINS) -> str:
    """The policy for an app served at ``origins`` (the first is its public address), its
    websocket at the same address."""
    websocket = " ".join(f"{'wss' if urlsplit(o).scheme == 'https' else 'ws'}://{urlsplit(o).netloc}" for o in origins)
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


def security_headers(origins: list[str] = settings.ALLOWED_ORIGINS) -> list[tuple[bytes, bytes]]:
    headers = {
        "content-security-policy": content_security_policy(origins),
        "x-frame-options": "DENY",
        "x-content-type-options": "nosniff",
        "referrer-policy": "same-origin",
        "cross-origin-opener-policy": "same-origin",
        "permissions-policy": "camera=(), microphone=(), geolocation=(), payment=()",
    }
    if origins[0].startswith("https://"):
        headers["strict-transport-security"] = "max-age=31536000"
    return [(name.encode(), value.encode()) for name, value in headers.items()]


def with_security_headers(app: ASGIApp) -> ASGIApp:
    """Wrap ``app`` so that every HTTP response carries ``security_headers()`` (replacing any
    header of the same name the app set)."""
    added = security_headers()
    names = {name for name, _value in added}

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


_DEFAULT_PORTS = {"http": "80", "https": "443"}


def _netloc(scheme: str, host: str) -> str:
    """``host`` (a Host header or a URL's netloc) in lower case, without its scheme's default port."""
    host = host.strip().lower()
    port = _DEFAULT_PORTS.get(scheme)
    return host.removesuffix(f":{port}") if port else host


def _request_host(scope: Scope) -> str | None:
    """The address the browser asked for: the Host header, or behind trusted reverse proxies
    their X-Forwarded-Host (None when they send none: the proxy's own Host says nothing)."""
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
    if settings.TRUSTED_PROXY_HOPS > 0:
        forwarded = headers.get("x-forwarded-host", "")
        return forwarded.split(",")[-1].strip() or None
    return headers.get("host")


def client_address(scope: Scope) -> str:
    """The client's address as Reflex takes it for the websocket (``App._get_router_data``), so that
    the API, uploads and pages count and record one address alike: behind ``TRUSTED_PROXY_HOPS``
    proxies the N-th address from the right of ``X-Forwarded-For`` (when it holds that many), else
    the peer the connection came from."""
    client = scope.get("client") or ("",)
    address = str(client[0] or "")
    hops = settings.TRUSTED_PROXY_HOPS
    if hops > 0:
        forwarded = ",".join(v.decode("latin-1") for k, v in scope.get("headers", []) if k.lower() == b"x-forwarded-for")
        addresses = [part.strip() for part in forwarded.split(",") if part.strip()]
        if len(addresses) >= hops:
            address = addresses[-hops]
    return address


PLAIN_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;line-height:1.5;"
    "color:#1c2024;background:#fff}"
    "h1{font-size:1.6rem;line-height:1.25}"
    "a{color:#0b57d0}"
    "button{font:inherit;font-weight:600;color:#fff;background:#0b57d0;border:0;border-radius:6px;"
    "padding:.6rem 1.1rem;cursor:pointer}"
    "button:focus-visible,a:focus-visible{outline:3px solid #1c2024;outline-offset:2px}"
    ".hospital{color:#60646c;margin-top:2rem}"
)
"""The look of the few pages the server writes itself, without the front end: readable on a
phone, AA contrast, a visible keyboard focus."""


def plain_page(title: str, body: str) -> bytes:
    """A page of the server's own (no script, inline style only): ``title`` as its heading and
    ``body``, HTML the caller has escaped, in its one main landmark."""
    return (
        f"<!doctype html><html lang=\"{current_language()}\" dir=\"{text_direction()}\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{html.escape(title)} · {html.escape(settings.HOSPITAL_NAME)}</title>"
        f"<style>{PLAIN_STYLE}</style></head>"
        f"<body><main><h1>{html.escape(title)}</h1>{body}"
        f"<p class=\"hospital\">{html.escape(settings.HOSPITAL_NAME)}</p></main></body></html>"
    ).encode()


def wrong_address_page(host: str, path: str, allowed: list[str] | None = None) -> bytes:
    """The plain page for a browser at ``host``: where the app is, and why it is not here."""
    target = (allowed or settings.ALLOWED_ORIGINS)[0]
    link = html.escape(target + path, quote=True)
    return plain_page(
        _("Open {address}").format(address=target),
        "<p>" + _("{hospital}'s system is served at {link}.").format(
            hospital=html.escape(settings.HOSPITAL_NAME), link=f"<a href=\"{link}\">{link}</a>") + "</p><p>"
        + _("This browser opened it at {address}, an address it does not answer at: the pages would load but could "
            "not connect to the server.").format(address=f"<strong>{html.escape(host)}</strong>") + "</p>")


def with_address_check(app: ASGIApp, allowed: list[str] | None = None) -> ASGIApp:
    """Wrap ``app`` so that a browser's page request (GET or HEAD asking for HTML) at an
    address other than ``allowed`` (by default ``settings.ALLOWED_ORIGINS``) gets
    ``wrong_address_page``; other requests (the API, health checks, assets) pass through."""
    origins = allowed or settings.ALLOWED_ORIGINS
    hosts = {_netloc(urlsplit(o).scheme, urlsplit(o).netloc) for o in origins}
    schemes = {urlsplit(o).scheme for o in origins}

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") not in ("GET", "HEAD"):
            await app(scope, receive, send)
            return
        headers = {k.lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        accept = headers.get(b"accept", "")
        host = _request_host(scope)
        if "text/html" not in accept or host is None or any(_netloc(s, host) in hosts for s in schemes):
            await app(scope, receive, send)
            return
        with use_language(preferred_language(headers.get(b"accept-language", ""))):
            body = wrong_address_page(host, scope.get("path", "/"), origins)
        await send({"type": "http.response.start", "status": 421,
                    "headers": [(b"content-type", b"text/html; charset=utf-8"),
                                (b"content-length", str(len(body)).encode()), (b"cache-control", b"no-store")]})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})

    return wrapped

"""The gate in front of Reflex's upload route: who may send a file, and how much of it.

Reflex serves ``POST /_upload`` itself. It reads the whole multipart body into temporary files
first and only then runs the handler named in the ``reflex-event-handler`` header for the tab
named in ``reflex-client-token`` — so anyone could make the server store gigabytes before our
handler refused them. This ASGI middleware answers before any of the body is read:

1. 429 when the client's address has used up its share (``address_limits.ADDRESSES``, shared with
   websocket events, and a smaller bucket for uploads alone); not audited, so a storm of
   refused uploads writes a bounded number of audit rows;
2. 404 when the handler is not one of ``UPLOAD_HANDLERS`` (an unknown handler, or one that takes
   no file);
3. 401 without a live session in the request's session cookie (an upload is a same-origin
   fetch, so it carries the cookie);
4. 403 when the session's role lacks the handler's permission, or still owes a password change;
5. 409 when the tab named in ``reflex-client-token`` has no open connection: the handler's state
   then has no address or cookie of its own to act with (Reflex builds an upload's event without
   the request's address), so a made-up tab is turned away here, with the address;
6. 413 when ``Content-Length`` says more than ``body_limit`` — or, whatever it says, as soon as the
   bytes read pass it: the app is told the client left and gets no more.

Refusals 401 to 413 are audited once, with the address the way Reflex takes it
(``client_address``). The handlers still check everything themselves; this only stops work early.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from reflex_base.utils.format import format_event_handler

from hms_app import settings
from hms_app.address_limits import ADDRESSES, BucketsByKey
from hms_app.db.engine import session_scope
from hms_app.db.enums import Permission
from hms_app.http_headers import ASGIApp, Message, Receive, Scope, Send, client_address
from hms_app.services.administration import auth
from hms_app.services.core import access, audit
from hms_app.services.core.actor import Actor, Anonymous
from hms_app.services.core.errors import HMSError, NotFound, PermissionDenied, SessionExpired
from hms_app.services.golive.csv_import import MAX_IMPORT_BYTES
from hms_app.state.auth import _cookie_token
from hms_app.state.clinical import ChartState
from hms_app.state.imports import ImportState
from hms_app.state.lab import LabWorklistState

UPLOAD_PATH = "/_upload"
"""Reflex's upload route (``reflex_base.constants.Endpoint.UPLOAD``; the app sets no backend path)."""

MULTIPART_ROOM = 64 * 1024
"""Bytes a body may hold beside its files: the boundaries, each part's headers and Reflex's
``__reflex_event_args`` field (empty for our handlers)."""


@dataclass(frozen=True)
class UploadHandler:
    """What a handler that takes files needs: the permission its service checks, the action its
    refusals are audited as, and how many files it reads."""

    permission: Permission
    action: str
    files: int = 1
    max_bytes: int = 0
    """The largest file it takes; ``settings.MAX_UPLOAD_BYTES`` unless given."""

    @property
    def body_limit(self) -> int:
        """The most bytes a request to this handler may carry: its files at ``MAX_UPLOAD_BYTES``
        each, or its own ``max_bytes`` (a file one byte longer is refused by the service anyway), and
        the multipart's room."""
        return self.files * (self.max_bytes or settings.MAX_UPLOAD_BYTES) + MULTIPART_ROOM


UPLOAD_HANDLERS: dict[str, UploadHandler] = {
    format_event_handler(LabWorklistState.upload_report): UploadHandler(Permission.LAB_WORK, "lab_report.upload"),
    format_event_handler(ChartState.upload_document): UploadHandler(Permission.CLINICAL_WRITE, "document.upload"),
    format_event_handler(ImportState.upload_file): UploadHandler(Permission.DATA_IMPORT, "import.upload",
                                                                 max_bytes=MAX_IMPORT_BYTES),
}
"""Every event handler that takes an upload, by the full name the browser sends, with what it needs."""

UPLOADS = BucketsByKey(settings.UPLOAD_RATE, settings.UPLOAD_BURST)
"""This worker's upload buckets per client address (beside ``ADDRESSES``)."""


class Refusal(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


_STATUS = {SessionExpired: 401, PermissionDenied: 403, NotFound: 404}


def _header(scope: Scope, name: bytes) -> str:
    return next((v.decode("latin-1") for k, v in scope.get("headers", []) if k.lower() == name), "")


def check_uploader(*, handler_name: str, cookie_header: str, ip_address: str) -> tuple[Actor, UploadHandler]:
    """The actor whose session cookie may send files to ``handler_name``, and that handler.

    Runs in a worker thread. Each refusal is audited once, with ``ip_address``.

    Raises:
        Refusal: with the status and message to answer.
    """
    handler = UPLOAD_HANDLERS.get(handler_name)
    visitor = Anonymous(ip_address)
    try:
        with session_scope() as session:
            if handler is None:
                audit.deny(session, visitor, "upload", "There is no such upload.", error=NotFound,  # i18n: not shown
                           detail=f"unknown upload handler {handler_name[:300]!r}")  # i18n: not shown (audit detail)
            try:
                actor = auth.resolve_session(session=session, token=_cookie_token(cookie_header), ip_address=ip_address)
            except SessionExpired as refusal:
                access.refuse_visitor(session, visitor, handler.action, refusal)
            access.require(session, actor, handler.permission, action=handler.action)
            return actor, handler
    except HMSError as error:
        status = next((s for kind, s in _STATUS.items() if isinstance(error, kind)), 403)
        raise Refusal(status, error.message) from None


def refuse_later(*, actor: Actor, handler: UploadHandler, message: str, detail: str) -> None:
    """Audit a refusal of an actor who passed ``check_uploader`` (no live tab, too large)."""
    with session_scope() as session, contextlib.suppress(PermissionDenied):
        audit.deny(session, actor, handler.action, message, detail=detail)


async def _tab_connected(token: str) -> bool:
    """Whether the tab ``token`` has a websocket open on any worker, as Reflex itself asks
    before pushing to a tab (``reflex.istate.shared``)."""
    from reflex_base.registry import RegistrationContext

    namespace = RegistrationContext.get().app.event_namespace
    return namespace is not None and await namespace._token_manager.is_token_connected(token)


def _too_large(max_bytes: int = 0) -> str:
    return f"The file is too large: at most {(max_bytes or settings.MAX_UPLOAD_BYTES) // (1024 * 1024)} MB."  # i18n: not shown


async def _answer(send: Send, status: int, message: str) -> None:
    # The refusals' texts stay in English: the browser's upload script shows only the status (it
    # logs the answer to the console), and the same text is the audit trail's, which is English.
    body = json.dumps({"detail": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"cache-control", b"no-store"), (b"connection", b"close")]
    if status == 429:
        headers.append((b"retry-after", b"1"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def with_upload_gate(app: ASGIApp, *, tab_connected: Callable[[str], Awaitable[bool]] = _tab_connected) -> ASGIApp:
    """Wrap ``app`` so that ``POST /_upload`` is checked before its body is read, and cut off
    past its handler's ``body_limit`` while it streams (see the module's docstring).

    Args:
        tab_connected: whether a client token has an open connection (Reflex's token manager;
            a test passes its own).
    """

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST" or scope.get("path", "").rstrip("/") != UPLOAD_PATH:
            await app(scope, receive, send)
            return
        address = client_address(scope)
        if not ADDRESSES.take(address) or not UPLOADS.take(address):
            await _answer(send, 429, "Too many requests from this address. Wait a moment and try again.")  # i18n: not shown
            return
        try:
            actor, handler = await asyncio.to_thread(
                check_uploader, handler_name=_header(scope, b"reflex-event-handler"),
                cookie_header=_header(scope, b"cookie"), ip_address=address)
        except Refusal as refusal:
            await _answer(send, refusal.status, refusal.message)
            return
        limit = handler.body_limit
        if not await tab_connected(_header(scope, b"reflex-client-token")):
            message = "This page lost its connection to the server. Reload it and upload the file again."  # i18n: not shown
            await asyncio.to_thread(refuse_later, actor=actor, handler=handler, message=message,
                                    detail="upload for a tab with no open connection")  # i18n: not shown
            await _answer(send, 409, message)
            return
        too_large = _too_large(handler.max_bytes)
        declared = _header(scope, b"content-length")
        if declared.isdigit() and int(declared) > limit:
            await asyncio.to_thread(refuse_later, actor=actor, handler=handler, message=too_large,
                                    detail=f"upload of {declared} bytes declared; the limit is {limit}")  # i18n: not shown
            await _answer(send, 413, too_large)
            return
        await _pass_within(app, scope, receive, send, limit=limit, too_large=too_large, on_cut=lambda read: asyncio.to_thread(
            refuse_later, actor=actor, handler=handler, message=too_large,
            detail=f"upload cut off after {read} bytes; the limit is {limit}"))

    return wrapped


async def _pass_within(app: ASGIApp, scope: Scope, receive: Receive, send: Send, *, limit: int,
                       too_large: str = "", on_cut: Callable[[int], Awaitable[object]]) -> None:
    """Run ``app`` on a body it may read up to ``limit`` bytes of. Past that the app is told the
    client left (Reflex then drops what it parsed), its answer is dropped and 413 sent instead."""
    read = 0
    cut = False
    started = False

    async def counted_receive() -> Message:
        nonlocal read, cut
        if cut:
            return {"type": "http.disconnect"}
        message = await receive()
        if message["type"] == "http.request":
            read += len(message.get("body", b""))
            if read > limit:
                cut = True
                return {"type": "http.disconnect"}
        return message

    async def watched_send(message: Message) -> None:
        nonlocal started
        if cut and not started:
            return
        started = started or message["type"] == "http.response.start"
        await send(message)

    await app(scope, counted_receive, watched_send)
    if cut and not started:
        await on_cut(read)
        await _answer(send, 413, too_large or _too_large())

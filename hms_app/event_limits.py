"""Limits on what one websocket connection, and one client address, may send.

Reflex 0.10 takes every event a client sends into an unbounded queue and works through it
after the client has gone: one script sent 288,519 refused events in 15 s and the server was
busy with them for six minutes, slowing every other user (issue 17). In front of Reflex's
``EventNamespace``, without changing Reflex:

- A packet longer than ``settings.EVENT_MAX_BYTES``, nested deeper than ``MAX_DEPTH`` or not
  JSON is refused before it is parsed (a nesting of 100,000 levels made Python's parser raise
  ``RecursionError``, logged as a traceback): the connection gets no event, the log one line.
- Each event takes a token from its address's bucket (``address_limits.ADDRESSES``, shared
  with uploads) and from its connection's (``settings.EVENT_RATE`` a second, bursts of
  ``settings.EVENT_BURST``); at most ``settings.EVENT_QUEUE`` events of a connection wait or
  run at once. Others are dropped unread: one log line and one toast per episode.
- A connection that goes on sending after ``EVENT_BURST`` of its events were dropped, with no
  quiet second between, is closed, websocket and all, and its address may not connect again
  until a connection's bucket would have filled (``EVENT_BURST / EVENT_RATE`` seconds):
  reconnecting gives a flooder nothing a wait would not.
- When a connection closes, its events that have not started are cancelled.

It relies on parts of Reflex 0.10 and python-engineio 4 that are not public, each to be checked
again on an upgrade of either: ``EventNamespace._build_static_router_data`` (the client's
address as Reflex takes it), ``app.event_processor._tasks`` (the events running for a tab),
and Engine.IO's ``sio.eio.sockets`` and a socket's ``queue`` (to close a flooder's websocket).
``tests/test_event_limits.py`` and ``tests/e2e/test_event_flood.py`` fail if any of them moves.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import enum
import logging
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import reflex as rx
from reflex.state import StateUpdate
from reflex_base import constants
from reflex_base.event import Event
from socketio.exceptions import ConnectionRefusedError as SocketRefused

from hms_app import settings
from hms_app.address_limits import ADDRESSES, BucketsByKey, TokenBucket
from hms_app.db.engine import session_scope
from hms_app.services.core import access
from hms_app.services.core.language import N_, _, preferred_language, use_language

log = logging.getLogger(__name__)

MAX_DEPTH = 32
"""The deepest nesting of arrays and objects in a packet; the app's own events reach about 6."""
REFUSED_PACKET = "hms_refused_packet"
"""What a refused packet is turned into: an event of this name, which ``EventLimits`` answers."""
MESSAGE = N_("Too many requests at once: some were not done. Wait a moment and try again.")
EPISODE_GAP = 1.0
"""Seconds without a dropped event after which a connection's next drop starts a new episode."""
REFUSED_CONNECT = N_("Too many requests from this address; try again in a few seconds.")

_STRING_OR_BRACKET = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')


def packet_problem(text: str | bytes) -> str | None:
    """Why a packet's JSON is not to be parsed (too long, too deep), or None.

    The depth is found by a scan without recursion; a packet with at most ``MAX_DEPTH``
    brackets in all (every event a browser sends) is not scanned at all.
    """
    if len(text) > settings.EVENT_MAX_BYTES:
        return f"{len(text)} bytes, more than {settings.EVENT_MAX_BYTES}"  # i18n: not shown (the log's)
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return None
    depth = 0
    for match in _STRING_OR_BRACKET.finditer(text):
        bracket = match.group()
        if bracket in ("[", "{"):
            depth += 1
            if depth > MAX_DEPTH:
                return f"nested deeper than {MAX_DEPTH} levels"  # i18n: not shown (the log's)
        elif bracket in ("]", "}"):
            depth -= 1
    return None


class GuardedJson:
    """The JSON module python-socketio parses packets with, checking each one first.

    A packet refused here, or one the parser cannot read, becomes the event ``REFUSED_PACKET``
    with the reason: raising would make python-socketio log a traceback.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def dumps(self, *args: Any, **kwargs: Any) -> str:
        return self.inner.dumps(*args, **kwargs)

    def loads(self, text: str | bytes, **kwargs: Any) -> Any:
        problem = packet_problem(text)
        if problem is None:
            try:
                return self.inner.loads(text, **kwargs)
            except (ValueError, RecursionError) as error:
                problem = f"not JSON ({type(error).__name__})"  # i18n: not shown (the log's)
        return [REFUSED_PACKET, problem]


class Verdict(enum.Enum):
    ACCEPT = "accept"
    DROP = "drop"
    WARN = "warn"
    """Dropped, the first of an episode: log it and tell the client."""
    CLOSE = "close"
    """Dropped, and the connection is to be closed."""


@dataclass
class Connection:
    address: str
    bucket: TokenBucket
    waiting: set[asyncio.Future] = field(default_factory=set)
    """The futures of its events that wait or run."""
    dropped: int = 0
    """Events dropped in this episode: since the connection last kept to its limits for a second."""
    last_drop: float = 0.0
    closed: bool = False
    language: str = ""
    """The language its browser prefers (``Accept-Language``), for the toast of dropped events: they
    are answered outside any event, so without the tab's own language."""


class EventLimits:
    """The limits of every connection of this worker: what to do with each event that arrives.

    Args:
        addresses: the buckets per client address; this worker's shared ones by default.
    """

    def __init__(self, *, rate: float = settings.EVENT_RATE, burst: float = settings.EVENT_BURST,
                 queue: int = settings.EVENT_QUEUE, addresses: BucketsByKey = ADDRESSES) -> None:
        self.rate, self.burst, self.queue, self.addresses = rate, burst, queue, addresses
        self.close_after = max(1, int(burst))
        self.cooldown = burst / rate if rate > 0 else 60.0
        self.connections: dict[str, Connection] = {}
        self._cooling: dict[str, float] = {}
        """Addresses whose connection was closed for flooding, and until when they may not connect."""

    def connect(self, sid: str, address: str, now: float | None = None, *, language: str = "") -> bool:
        """Whether ``address`` may open connection ``sid`` now; if so, it is counted from here."""
        now = time.monotonic() if now is None else now
        until = self._cooling.get(address)
        if until is not None:
            if now < until:
                return False
            del self._cooling[address]
        if not self.addresses.take(address, now=now):
            return False
        self.connections[sid] = Connection(address, TokenBucket(self.rate, self.burst, updated=now), language=language)
        return True

    def admit(self, sid: str, now: float | None = None) -> Verdict:
        """What to do with an event of connection ``sid``.

        Every event takes a token from its address, even one its connection drops: opening more
        connections, or new ones, gives an address no more than its own rate.
        """
        connection = self.connections.get(sid)
        if connection is None or connection.closed:
            return Verdict.DROP
        now = time.monotonic() if now is None else now
        if (self.addresses.take(connection.address, now=now) and len(connection.waiting) < self.queue
                and connection.bucket.take(now=now)):
            if connection.dropped and now - connection.last_drop > EPISODE_GAP:
                connection.dropped = 0
            return Verdict.ACCEPT
        connection.dropped += 1
        connection.last_drop = now
        if connection.dropped >= self.close_after:
            connection.closed = True
            self._cooling[connection.address] = now + self.cooldown
            if len(self._cooling) > 10_000:
                self._cooling = {key: until for key, until in self._cooling.items() if until > now}
            return Verdict.CLOSE
        return Verdict.WARN if connection.dropped == 1 else Verdict.DROP

    def disconnect(self, sid: str) -> Connection | None:
        return self.connections.pop(sid, None)


_ARRIVING: contextvars.ContextVar[Connection | None] = contextvars.ContextVar("hms_arriving_event", default=None)
"""The connection whose event Reflex is enqueuing, while ``on_event`` runs."""


def install(app: rx.App) -> EventLimits:
    """Put the limits in front of ``app``'s websocket: its packet parser and its event namespace."""
    limits = EventLimits()
    sio, namespace = app.sio, app.event_namespace
    if sio is None or namespace is None:
        raise RuntimeError("the app has no websocket to limit")  # i18n: not shown (a programming error)
    sio.packet_class.json = GuardedJson(sio.packet_class.json)
    reflex_connect, reflex_event, reflex_disconnect = namespace.on_connect, namespace.on_event, namespace.on_disconnect
    flushing: set[asyncio.Task] = set()

    async def on_connect(sid: str, environ: dict, auth: Any = None) -> None:
        # The address as Reflex records it (X-Forwarded-For only behind trusted proxies).
        address = namespace._build_static_router_data(sid, environ)[constants.RouteVar.CLIENT_IP]
        language = preferred_language(environ.get("HTTP_ACCEPT_LANGUAGE"))
        if not limits.connect(sid, address, language=language):
            with use_language(language):
                raise SocketRefused(_(REFUSED_CONNECT))
        try:
            await reflex_connect(sid, environ, auth)
        except BaseException:
            limits.disconnect(sid)
            raise

    async def on_event(sid: str, data: Any) -> None:
        verdict = limits.admit(sid)
        if verdict is not Verdict.ACCEPT:
            await over_limit(sid, verdict)
            return
        _limit_queue(app)
        arriving = _ARRIVING.set(limits.connections.get(sid))
        try:
            await reflex_event(sid, data)
        finally:
            _ARRIVING.reset(arriving)

    async def on_refused_packet(sid: str, problem: object = "", *_: Any) -> None:
        verdict = limits.admit(sid)
        if verdict is Verdict.ACCEPT:
            log.warning("refused a packet of connection %s: %.200s", sid, problem)
        else:
            await over_limit(sid, verdict)

    async def over_limit(sid: str, verdict: Verdict) -> None:
        if verdict is Verdict.DROP:
            return
        connection = limits.connections[sid]
        if verdict is Verdict.WARN:
            log.warning("dropping events of connection %s from %s: more than %g a second (bursts of %g) or %d "
                        "waiting", sid, connection.address, limits.rate, limits.burst, limits.queue)
            if token := namespace.sid_to_token.get(sid):
                with use_language(connection.language):
                    toast = rx.toast.error(_(MESSAGE))
                await namespace.emit_update(StateUpdate(events=Event.from_event_type(toast)), token)
            return
        log.warning("closing connection %s from %s: it went on sending after %d events were dropped; the address "
                    "may connect again in %g s", sid, connection.address, limits.close_after, limits.cooldown)
        await _close_transport(sio, sio.manager.eio_sid_from_sid(sid, namespace.namespace))

    def on_disconnect(sid: str, *_: Any) -> asyncio.Task | None:
        connection = limits.disconnect(sid)
        if connection is not None and connection.waiting:
            running = app.event_processor._tasks
            for future in list(connection.waiting):
                if getattr(future, "txid", None) not in running:
                    future.cancel()
        if access.VISITOR_REFUSALS.pending(sid):
            task = asyncio.create_task(asyncio.to_thread(_flush_refusals, sid))
            flushing.add(task)
            task.add_done_callback(flushing.discard)
        return reflex_disconnect(sid)

    namespace.on_connect = on_connect
    namespace.on_event = on_event
    namespace.on_disconnect = on_disconnect
    setattr(namespace, f"on_{REFUSED_PACKET}", on_refused_packet)
    app.register_lifespan_task(_flush_refusals_every_window)
    return limits


async def _close_transport(sio: Any, eio_sid: str | None) -> None:
    """Close a client's whole Engine.IO connection, websocket included, at once.

    Engine.IO's own ``disconnect`` leaves the websocket open until the client closes it, and
    goes on reading every packet a flooder has sent, which the flooder need never stop sending.
    Here the socket's writer is told to stop as well: it closes the websocket, which ends the
    reading. (``socket.queue`` is Engine.IO's, python-engineio 4.)
    """
    socket = sio.eio.sockets.pop(eio_sid, None) if eio_sid else None
    if socket is None:
        return
    await socket.close(wait=False, reason=sio.eio.reason.SERVER_DISCONNECT)
    socket.queue.put_nowait(None)


def _limit_queue(app: rx.App) -> None:
    """Track the futures of the events each connection enqueues (once per event processor)."""
    processor = app.event_processor
    if getattr(processor.enqueue, "hms_limited", False):
        return
    reflex_enqueue = processor.enqueue

    async def enqueue(token: str, event: Event, ev_ctx: Any = None) -> Any:
        future = await reflex_enqueue(token, event, ev_ctx)
        connection = _ARRIVING.get()
        if connection is not None and not future.done():
            connection.waiting.add(future)
            future.add_done_callback(connection.waiting.discard)
        return future

    enqueue.hms_limited = True  # type: ignore[attr-defined]
    processor.enqueue = enqueue


def _flush_refusals(connection: str | None = None) -> None:
    with session_scope() as session:
        access.flush_visitor_refusals(session, connection=connection)


@contextlib.asynccontextmanager
async def _flush_refusals_every_window() -> AsyncIterator[None]:
    """Write the counted refusals of connections that stay open once their window has ended."""
    async def rounds() -> None:
        while True:
            await asyncio.sleep(max(access.VISITOR_REFUSALS.window / 4, 1.0))
            try:
                await asyncio.to_thread(_flush_refusals)
            except Exception:
                log.exception("writing the counted refusals failed; trying again later")

    task = asyncio.create_task(rounds())
    try:
        yield
    finally:
        task.cancel()

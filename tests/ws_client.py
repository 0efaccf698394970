"""A small client for Reflex's websocket event protocol, for tests that play a hostile browser.

A browser tab talks to the backend over Socket.IO at path ``/_event``, namespace ``/_event``,
with its tab token in the query (``?token=<uuid>``). It sends each event as an ``"event"``
message ``{name: "<state full name>.<handler>", payload: {...}, router_data: {pathname, ...}}``
and receives ``"event"`` messages ``{delta: {<state full name>: {<var>_rx_state_: value}},
events: [...]}`` (toasts, redirects and downloads are ``events``). See ``EventNamespace`` in
``reflex/app.py`` and ``.web/utils/state.js``.

The backend runs one tab's events one after the other and sends no "done" message, so
:meth:`ReflexSocket.call` follows each event with a sentinel: Reflex's own
``OnLoadInternalState.set_is_hydrated``, flipping the root ``is_hydrated`` var. When that
change comes back, every update of the event before it has arrived; a second sentinel
waits for the error toast of a handler that raised, which Reflex sends from a task of its
own. (Backend events that a handler chains are queued behind the sentinels; HMS handlers
chain none.)

Use :class:`WsClient` from plain (sync) tests::

    with WsClient(app_server.url) as client:
        result = client.call(LoginState, "log_in", {"form_data": {...}}, pathname="/login")
        assert result.toasts == [("success", "Welcome, ...")]

Like a browser, the client does what the server's session-cookie script asks after a login or
logout (``hms_app/session_cookie.py``): it POSTs the one-time code to ``/api/session``, keeps
the cookie the answer sets (:attr:`ReflexSocket.session_cookie`), and sends the script's outcome
to the callback handler, whose updates join the call's result. So a login's result holds the
welcome toast and the redirect, as the page shows them.

Note the server checks the ``Origin`` header against ``cors_allowed_origins`` only when one
is sent: that stops other web sites' pages from opening a socket in a user's browser, not
scripts, which is why every handler checks who is asking.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import socketio

EVENT_PATH = "/_event"
ROOT_STATE = "reflex___state____state"
FIELD_MARKER = "_rx_state_"
_SENTINEL = f"{ROOT_STATE}.reflex___state____on_load_internal_state.set_is_hydrated"
_HYDRATED = f"is_hydrated{FIELD_MARKER}"
_TOAST = re.compile(r"""refs\['__toast'\]\?\.\["(\w+)"\]\(""")
_SESSION_SCRIPT = re.compile(r"""^fetch\("(/api/session)", .*body: ("(?:[^"\\]|\\.)*")""")
_CALLBACK = re.compile(r"""ReflexEvent\("([^"]+)", \{(\w+):_result\}\)""")

T = TypeVar("T")


def state_name(state: type | str) -> str:
    """The full dotted name of a state class (as Reflex addresses it), or the name itself."""
    return state if isinstance(state, str) else state.get_full_name()


@dataclass
class EventResult:
    """Everything the server sent back for one event."""

    updates: list[dict[str, Any]] = field(default_factory=list)

    @property
    def deltas(self) -> list[dict[str, dict[str, Any]]]:
        return [u["delta"] for u in self.updates if u.get("delta")]

    @property
    def events(self) -> list[dict[str, Any]]:
        """Frontend events (toasts, redirects, downloads) in the order they were sent."""
        return [e for u in self.updates for e in u.get("events") or []]

    @property
    def toasts(self) -> list[tuple[str, str]]:
        """``(level, message)`` of every toast, e.g. ``("error", "You do not have permission...")``."""
        found = []
        for event in self.events:
            code = (event.get("payload") or {}).get("function") or ""
            if event.get("name") == "_call_function" and (match := _TOAST.search(code)):
                message, _ = json.JSONDecoder().raw_decode(code[match.end():])
                found.append((match.group(1), message))
        return found

    @property
    def scripts(self) -> list[dict[str, Any]]:
        """The payloads (``javascript_code``, ``callback``) of every script the server asked the page to run."""
        return [e["payload"] for e in self.events if e.get("name") == "_call_script"]

    @property
    def redirects(self) -> list[str]:
        return [e["payload"]["path"] for e in self.events if e.get("name") == "_redirect"]

    @property
    def downloads(self) -> list[dict[str, Any]]:
        return [e["payload"] for e in self.events if e.get("name") == "_download"]

    def state(self, state: type | str) -> dict[str, Any]:
        """The vars of one state that changed, latest value last, without Reflex's name suffix."""
        name = state_name(state)
        merged: dict[str, Any] = {}
        for delta in self.deltas:
            for var, value in (delta.get(name) or {}).items():
                merged[var.removesuffix(FIELD_MARKER)] = value
        return merged

    def text(self) -> str:
        """All of it as one JSON text, to search for data that must not be there."""
        return json.dumps(self.updates, ensure_ascii=False, default=str)


class ReflexSocket:
    """One browser tab, as an asyncio Socket.IO client.

    Args:
        base_url: the app's address, e.g. ``http://localhost:3000``.
        origin: the ``Origin`` header; the app's own address by default, ``None`` sends none.
        token: the tab token; a new random one by default.
        cookie: a ``Cookie`` header for the handshake (a browser's session cookie), none by default.
    """

    def __init__(self, base_url: str, *, origin: str | None = "", token: str | None = None, cookie: str = "") -> None:
        self.base_url = base_url.rstrip("/")
        self.cookie = cookie
        self.origin = self.base_url if origin == "" else origin
        self.token = token or str(uuid.uuid4())
        self.hydrated = False
        self.session_cookie = ""
        """The session cookie the server set through ``/api/session`` (its value; "" when cleared)."""
        self._updates: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._sio = socketio.AsyncClient(reconnection=False)
        self._sio.on("event", self._updates.put_nowait, namespace=EVENT_PATH)
        self._sio.on("new_token", self._new_token, namespace=EVENT_PATH)

    def _new_token(self, token: str) -> None:
        self.token = token

    async def connect(self, timeout: float = 10) -> None:
        """Open the socket; raises ``socketio.exceptions.ConnectionError`` when refused."""
        headers = {**({"Origin": self.origin} if self.origin else {}), **({"Cookie": self.cookie} if self.cookie else {})}
        await self._sio.connect(
            f"{self.base_url}?token={self.token}", headers=headers, transports=["websocket"],
            namespaces=[EVENT_PATH], socketio_path=EVENT_PATH, wait_timeout=timeout,
        )

    @property
    def connected(self) -> bool:
        return self._sio.connected

    async def close(self) -> None:
        await self._sio.disconnect()

    async def call(
        self,
        state: type | str,
        handler: str,
        payload: dict[str, Any] | None = None,
        *,
        pathname: str = "/",
        query: dict[str, str] | None = None,
        timeout: float = 30,
    ) -> EventResult:
        """Send ``state.handler(**payload)`` as the browser would; return what came back.

        Args:
            state: the state class (or its full name).
            handler: the handler's name.
            payload: the handler's keyword arguments, sent as they are.
            pathname: the page the event claims to come from.
            query: that page's query parameters.
            timeout: seconds to wait for the handler to finish.
        """
        router_data: dict[str, Any] = {"pathname": pathname, "asPath": pathname}
        if query:
            router_data["query"] = query
        await self._emit(f"{state_name(state)}.{handler}", payload or {}, router_data)
        result = EventResult()
        async with asyncio.timeout(timeout):
            for _ in range(2):
                await self._sentinel(result, router_data)
            for script in list(result.scripts):
                await self._run_session_script(script, result, router_data)
        return result

    async def _run_session_script(self, script: dict[str, Any], result: EventResult,
                                  router_data: dict[str, Any]) -> None:
        """Do what the page does with the server's session-cookie script; the callback's updates join ``result``."""
        match = _SESSION_SCRIPT.match(script.get("javascript_code") or "")
        if not match:
            return
        path, body = match.group(1), json.loads(match.group(2))
        status, cookie = await asyncio.to_thread(self._post_session, path, body.encode())
        if cookie is not None:
            self.session_cookie = cookie
        callback = _CALLBACK.search(script.get("callback") or "")
        if callback:
            outcome = "done" if status < 300 else "refused"
            await self._emit(callback.group(1), {callback.group(2): outcome}, router_data)
            for _ in range(2):
                await self._sentinel(result, router_data)

    def _post_session(self, path: str, body: bytes) -> tuple[int, str | None]:
        """POST ``body`` to the session route as the page's ``fetch`` does: the status and the cookie's new value."""
        request = urllib.request.Request(f"{self.base_url}{path}", data=body, method="POST", headers={
            "Content-Type": "application/json", "Origin": self.origin or self.base_url})
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                status, header = answer.status, answer.headers.get("Set-Cookie")
        except urllib.error.HTTPError as error:
            status, header = error.code, error.headers.get("Set-Cookie")
        if not header:
            return status, None
        value = header.split(";", 1)[0].partition("=")[2]
        return status, "" if "Max-Age=0" in header else value

    async def _sentinel(self, result: EventResult, router_data: dict[str, Any]) -> None:
        """Flip ``is_hydrated``; gather every update into ``result`` until the flip comes back."""
        target = not self.hydrated
        await self._emit(_SENTINEL, {"value": target}, router_data)
        while True:
            update = await self._updates.get()
            root = (update.get("delta") or {}).get(ROOT_STATE) or {}
            if _HYDRATED in root:
                self.hydrated = bool(root[_HYDRATED])
                if self.hydrated is target and len(update["delta"]) == 1 and len(root) == 1:
                    return
            result.updates.append(update)

    async def _emit(self, name: str, payload: dict[str, Any], router_data: dict[str, Any]) -> None:
        await self._sio.emit("event", {"name": name, "payload": payload, "router_data": router_data},
                             namespace=EVENT_PATH)


class WsClient:
    """A :class:`ReflexSocket` for synchronous tests: its event loop runs in a thread of its own.

    Args: as :class:`ReflexSocket`.
    """

    def __init__(self, base_url: str, *, origin: str | None = "", token: str | None = None, cookie: str = "") -> None:
        self._handshake_cookie = cookie
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="ws-client", daemon=True)
        self._thread.start()
        self.socket: ReflexSocket = self._run(self._make(base_url, origin, token))

    async def _make(self, base_url: str, origin: str | None, token: str | None) -> ReflexSocket:
        return ReflexSocket(base_url, origin=origin, token=token, cookie=self._handshake_cookie)

    def _run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    @property
    def token(self) -> str:
        return self.socket.token

    @property
    def session_cookie(self) -> str:
        """See :attr:`ReflexSocket.session_cookie`."""
        return self.socket.session_cookie

    def connect(self, timeout: float = 10) -> WsClient:
        """Open the socket; on a refusal the client is closed and the error raised."""
        try:
            self._run(self.socket.connect(timeout))
        except BaseException:
            self.close()
            raise
        return self

    def call(self, state: type | str, handler: str, payload: dict[str, Any] | None = None, **kwargs: Any) -> EventResult:
        """See :meth:`ReflexSocket.call`."""
        return self._run(self.socket.call(state, handler, payload, **kwargs), timeout=kwargs.get("timeout", 30) + 5)

    def close(self) -> None:
        if self._loop.is_closed():
            return
        try:
            if self.socket.connected:
                self._run(self.socket.close())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
            self._loop.close()

    def __enter__(self) -> WsClient:
        return self.connect()

    def __exit__(self, *_exc: object) -> None:
        self.close()

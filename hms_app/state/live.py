"""Live updates: the one mechanism that carries a committed change to every open page.

A service publishes which users or roles a change concerns (``services.events``). After the
commit, ``LiveHub`` finds the browser tabs of those users and roles and, through
``app.modify_state``, re-runs on each tab the loader of the page it shows if that page
watches the topic (``watch``), and re-counts the bell's unread notifications. A watcher names
its loader in code, and ``check`` holds each against the app's pages, so that a mistake stops
the app as it starts instead of a push failing silently later. The loaders
are the pages' own, resolving the tab's session and checking permission as on any click,
so a change never carries one user's data to another: each tab fetches only what its own
user may see. The fresh rows reach the browser as an ordinary state delta.

Rooms (``user-12``, ``role-lab``) are chosen by the server from the resolved session, never
from a handler argument. Tabs are kept in process memory with one worker, and in a Redis
sorted set per room when ``REFLEX_REDIS_URL`` is set, so a change made on one worker
reaches tabs connected to another.

A tab keeps its resolved session for up to a minute (``SessionState._kept``). What ends or alters
sessions (a ``sessions`` change: logout, deactivation, password or second-factor reset) or a
role's permissions (a ``permissions`` change) moves a counter, the user's or the role's epoch
(``SessionEpochs``), in the thread that committed, before the service returns; a tab acts on its
kept actor only while both epochs are as they were when it resolved the session, so the change
holds at the very next action on any worker. The hub then also drops the kept actor on every
connected tab of those users or roles.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import logging
import secrets
import threading
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from hms_app import settings
from hms_app.services.core.events import PERMISSIONS, SESSIONS, Change
from hms_app.services.core.language import use_language

log = logging.getLogger(__name__)

TOPICS = ("notifications", "appointments", "prescriptions", "lab", "stock", "billing", "imports")
"""Topics a page can watch."""

_TTL_SECONDS = settings.SESSION_ABSOLUTE_SECONDS
# One namespace per hospital database, so apps sharing a Redis server never mix their rooms.
_REDIS_PREFIX = f"hms:live:{hashlib.sha256(settings.DATABASE_URL.encode()).hexdigest()[:12]}:"


def user_room(user_id: int) -> str:
    return f"user-{int(user_id)}"


def role_room(role: str) -> str:
    return f"role-{role}"


def _epoch_keys(user_id: int, role: str) -> tuple[str, str]:
    return f"epoch-user-{int(user_id)}", f"epoch-role-{role}"


class SessionEpochs:
    """Counters that move when a user's sessions or a role's permissions change.

    In process memory with one worker (each process starts from a random incarnation, so a
    counter read before a restart never matches one read after it), in Redis when
    ``REFLEX_REDIS_URL`` is set, so that every worker reads what any of them moved.
    """

    def __init__(self) -> None:
        self._local: dict[str, int] = defaultdict(int)
        self._lock = threading.Lock()
        self._incarnation = secrets.token_hex(8)
        self._sync_redis = None
        self._async_redis = None

    def _redis(self, *, sync: bool):
        if not settings.REDIS_URL:
            return None
        if sync:
            if self._sync_redis is None:
                import redis

                self._sync_redis = redis.Redis.from_url(settings.REDIS_URL)
            return self._sync_redis
        if self._async_redis is None:
            import redis.asyncio as redis_asyncio

            self._async_redis = redis_asyncio.from_url(settings.REDIS_URL)
        return self._async_redis

    def move(self, *, user_ids: frozenset[int] = frozenset(), roles: frozenset[str] = frozenset()) -> None:
        """Move the epochs of ``user_ids`` and ``roles``; blocking, for the thread that committed."""
        keys = [_epoch_keys(u, "")[0] for u in user_ids] + [_epoch_keys(0, r)[1] for r in roles]
        client = self._redis(sync=True)
        if client is None:
            with self._lock:
                for key in keys:
                    self._local[key] += 1
            return
        with client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.incr(_REDIS_PREFIX + key)
                # A counter that expires reads as 0, which no tab kept with it for this long.
                pipe.expire(_REDIS_PREFIX + key, _TTL_SECONDS)
            pipe.execute()

    async def read(self, user_id: int, role: str) -> str:
        """The epochs of a user and their role, as one value to compare."""
        keys = _epoch_keys(user_id, role)
        client = self._redis(sync=False)
        if client is None:
            return f"{self._incarnation}:{self._local.get(keys[0], 0)}:{self._local.get(keys[1], 0)}"
        values = await client.mget([_REDIS_PREFIX + key for key in keys])
        return ":".join((v.decode() if isinstance(v, bytes) else str(v or 0)) for v in values)


@dataclass(frozen=True)
class Watcher:
    path: str
    state: type
    loader: Callable[[Any], Awaitable[object]]


class LiveHub:
    """Which tabs belong to which room, and the push of a change to them."""

    def __init__(self) -> None:
        self._rooms: dict[str, dict[str, float]] = defaultdict(dict)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._redis = None
        self._watchers: dict[str, list[Watcher]] = defaultdict(list)
        self.pushed = 0

    def watch(self, topic: str, path: str, state: type, loader: Callable[[Any], Awaitable[object]]) -> None:
        """On a change of ``topic``, tabs showing ``path`` re-run ``loader`` on their ``state``.

        Args:
            loader: the state's own loader, named in code (``PharmacyQueueState._reload``): an
                async backend method (``_name``) that takes no argument and fetches what the
                page shows. Anything else is refused here, as the app is built.
        """
        if topic not in TOPICS:
            raise ValueError(f"unknown live topic {topic}")  # i18n: not shown (a programming error)
        name = getattr(loader, "__name__", "")
        if not (name.startswith("_") and inspect.iscoroutinefunction(loader) and getattr(state, name, None) is loader):
            raise TypeError(f"the live loader of {path} must be an async backend method of {state.__name__}, "  # i18n: not shown
                            f"not {loader!r}")
        try:
            inspect.signature(loader).bind(None)
        except TypeError:
            raise TypeError(f"{state.__name__}.{name} takes arguments: a live loader takes none") from None  # i18n: not shown
        self._watchers[topic].append(Watcher(path.rstrip("/") or "/", state, loader))

    def check(self, app: Any) -> None:
        """Refuse, as the app starts, a watcher of a page ``app`` does not have or whose loads
        do not include the watched state: its push would find no tab, or refresh a state the
        page does not show."""
        for watchers in self._watchers.values():
            for watcher in watchers:
                if app.router(watcher.path) is None:
                    raise ValueError(f"live updates watch {watcher.path}, which is no page of the app")  # i18n: not shown
                loaded = {getattr(getattr(event, "handler", event), "state", None)
                          for event in app.get_load_events(watcher.path)}
                if watcher.state not in loaded:
                    raise ValueError(f"live updates refresh {watcher.state.__name__} on {watcher.path}, "  # i18n: not shown
                                     f"whose page does not load it")

    # --- rooms ----------------------------------------------------------------------------

    def _redis_client(self):
        if not settings.REDIS_URL:
            return None
        if self._redis is None:
            import redis.asyncio as redis_asyncio

            self._redis = redis_asyncio.from_url(settings.REDIS_URL)
        return self._redis

    async def join(self, client_token: str, rooms: list[str]) -> None:
        """Put a tab in rooms for the length of a session (renewed at every page load)."""
        if not client_token:
            return
        expires = time.time() + _TTL_SECONDS
        client = self._redis_client()
        if client is None:
            for room in rooms:
                self._rooms[room][client_token] = expires
            return
        async with client.pipeline(transaction=False) as pipe:
            for room in rooms:
                pipe.zadd(_REDIS_PREFIX + room, {client_token: expires})
                pipe.expire(_REDIS_PREFIX + room, _TTL_SECONDS)
            await pipe.execute()

    async def leave(self, client_token: str, rooms: list[str]) -> None:
        client = self._redis_client()
        if client is None:
            for room in rooms:
                self._rooms.get(room, {}).pop(client_token, None)
            return
        async with client.pipeline(transaction=False) as pipe:
            for room in rooms:
                pipe.zrem(_REDIS_PREFIX + room, client_token)
            await pipe.execute()

    async def members(self, rooms: list[str]) -> set[str]:
        now = time.time()
        client = self._redis_client()
        if client is None:
            tokens: set[str] = set()
            for room in rooms:
                members = self._rooms.get(room, {})
                for token, expires in list(members.items()):
                    if expires < now:
                        members.pop(token, None)
                    else:
                        tokens.add(token)
            return tokens
        async with client.pipeline(transaction=False) as pipe:
            for room in rooms:
                pipe.zremrangebyscore(_REDIS_PREFIX + room, "-inf", now)
                pipe.zrangebyscore(_REDIS_PREFIX + room, now, "+inf")
            results = await pipe.execute()
        return {t.decode() if isinstance(t, bytes) else t for r in results[1::2] for t in r}

    # --- delivery -------------------------------------------------------------------------

    def bind_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def on_change(self, change: Change) -> None:
        """The services' listener: runs after a commit, in whatever thread committed.

        A ``sessions`` or ``permissions`` change moves the epochs here, before the service
        returns; the push that follows only drops the kept actors of connected tabs early.
        """
        if change.topic in (SESSIONS, PERMISSIONS):
            epochs.move(user_ids=change.user_ids, roles=change.roles)
        elif change.topic not in TOPICS:
            return
        if self._loop is None or self._loop.is_closed():
            return
        rooms = [user_room(u) for u in change.user_ids] + [role_room(r) for r in change.roles]
        if not rooms:
            return
        coroutine = self.push(change.topic, rooms)
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            task = self._loop.create_task(coroutine)
            _BACKGROUND.add(task)
            task.add_done_callback(_BACKGROUND.discard)
        else:
            asyncio.run_coroutine_threadsafe(coroutine, self._loop)

    async def push(self, topic: str, rooms: list[str]) -> int:
        """Refresh every connected tab in ``rooms`` that shows ``topic``; returns how many."""
        from reflex.istate.manager.token import BaseStateToken

        from hms_app.hms_app import app
        from hms_app.state.auth import SessionState

        tokens = await self.members(rooms)
        if not tokens or app.event_namespace is None:
            return 0
        token_manager = app.event_namespace._token_manager
        watchers = self._watchers.get(topic, [])

        async def refresh(token: str) -> bool:
            if not await token_manager.is_token_connected(token):
                return False
            async with app.modify_state(BaseStateToken(ident=token, cls=SessionState)) as root:
                base = await root.get_state(SessionState)
                if topic in (SESSIONS, PERMISSIONS):
                    base._drop_kept_actor()
                    return True
                # The tab's rows are written in its own reader's language, not the one of whoever
                # made the change.
                with use_language(base.language):
                    if topic == "notifications":
                        await base._refresh_unread()
                    path = root.router.url.path.rstrip("/") or "/"
                    for watcher in watchers:
                        if watcher.path == path:
                            await watcher.loader(await root.get_state(watcher.state))
            return True

        results = await asyncio.gather(*(refresh(t) for t in tokens), return_exceptions=True)
        for result in results:
            if isinstance(result, Exception):
                log.warning("live update of %s failed: %s", topic, result)
        delivered = sum(1 for r in results if r is True)
        self.pushed += delivered
        return delivered


_BACKGROUND: set[asyncio.Task] = set()
hub = LiveHub()
epochs = SessionEpochs()

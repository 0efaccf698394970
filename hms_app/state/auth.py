"""The session every page shares, and login, registration, password change and logout.

The browser keeps the session token in a cookie that the server sets (``HttpOnly``, strict
same-site: ``hms_app/session_cookie.py``), which page scripts cannot read; the server keeps a
copy in a backend-only var and resolves it against the session row, so a logout, expiry or
deactivation is honoured at the very next click. The resolved actor is kept on the tab
(``_kept``) for at most ``settings.SESSION_CACHE_SECONDS`` and never past the moment the session
row would expire or be due for its once-a-minute touch; whatever ends or alters the session moves
an epoch the tab compares at every event (``live.SessionEpochs``), so that holds across workers too.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hmac
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import reflex as rx
from reflex.middleware import Middleware
from reflex.state import BaseState

from hms_app import session_cookie, settings
from hms_app.db.engine import session_scope
from hms_app.db.enums import ROLE_LABELS, Role
from hms_app.db.types import utcnow
from hms_app.services.administration import auth, preferences
from hms_app.services.core import access
from hms_app.services.core import language as languages
from hms_app.services.core.actor import Actor, Anonymous
from hms_app.services.core.errors import HMSError, PasswordChangeRequired, SessionExpired
from hms_app.services.core.language import _
from hms_app.services.core.passwords import hash_token
from hms_app.services.messaging import notifications
from hms_app.state import live
from hms_app.state.forms import form_text

log = logging.getLogger(__name__)
T = TypeVar("T")

ROLE_HOME = {
    Role.ADMIN: "/admin",
    Role.ACCOUNTS: "/accounts",
    Role.DOCTOR: "/doctor",
    Role.LAB: "/lab",
    Role.PHARMACY: "/pharmacy",
    Role.PATIENT: "/patient",
}
LOGIN_PATH = "/login"
PASSWORD_PATH = "/account/password"  # noqa: S105  (a route, not a secret)
SESSION_COOKIE = settings.SESSION_COOKIE_NAME
"""The session cookie's name: ``__Host-hms_session`` behind https, ``hms_session`` on plain http."""


def home_for(role: str) -> str:
    try:
        return ROLE_HOME[Role(role)]
    except ValueError:
        return LOGIN_PATH


def _safe_next(target: object) -> str:
    """A same-site path to return to after login, or "" (no open redirects)."""
    if not isinstance(target, str) or not target.startswith("/") or target.startswith("//"):
        return ""
    if "\\" in target or ":" in target or target.startswith(LOGIN_PATH) or len(target) > 200:
        return ""
    return target


def _cookie_token(header: str) -> str:
    """The session cookie's value in a ``Cookie`` header (``settings.SESSION_COOKIE_NAME``), or ""."""
    return session_cookie.token_in(header)


LANGUAGE_COOKIE = "hms_language"
"""The language chosen on a device (written by the page, ``assets/i18n/hms_i18n.js``), for a visitor."""


def visitor_language(headers: Any) -> str:
    """A visitor's language: the one chosen on this device, else the browser's preference, else
    the hospital's."""
    chosen = languages.shipped(session_cookie.cookie_in(str(getattr(headers, "cookie", "") or ""), LANGUAGE_COOKIE))
    return (chosen or languages.preferred_language(getattr(headers, "accept_language", ""))
            or languages.default_language())


def file_download(file: Any):
    """The browser's download of a file a service handed over (``data``, ``file_name``, ``content_type``)."""
    return rx.download(data=file.data, filename=file.file_name, mime_type=file.content_type)


def _rooms_of(actor: Actor) -> list[str]:
    """The live-update rooms of a tab: its user's and its role's, chosen by the server."""
    return [live.user_room(actor.user_id), live.role_room(actor.role.value)]


class Answer(list):
    """The events that answer a click (a toast, perhaps a redirect or a download), as ``_act`` built them.

    A handler returns it as it is: Reflex takes any list of events. A handler that does more
    reads it first: ``result`` is what the service returned; ``refusal`` the service's error when
    it refused, and ``error`` its message ("" when the service did its work, so that a form's
    error line can take it either way).
    """

    def __init__(self, events: object = None, *, result: Any = None, refusal: HMSError | None = None) -> None:
        super().__init__(events if isinstance(events, list | tuple) else [] if events is None else [events])
        self.result = result
        self.refusal = refusal

    @property
    def refused(self) -> bool:
        return self.refusal is not None

    @property
    def error(self) -> str:
        return self.refusal.message if self.refusal is not None else ""


class SessionState(rx.State):
    """Who is logged in on this tab, and what the shell shows about them."""

    _token: str = ""
    """The session token: set at login on the connection that logged in, else read from the
    cookie in the websocket handshake (``_cookie_token``); the page never holds it."""
    _connection: str = ""
    """The websocket connection (Socket.IO id) that used this tab's session: see ``TabGate``."""
    language: str = ""
    """The tab's language (``services/core/language.py``): the signed-in user's choice, else the one
    made on this device, the browser's preference, the hospital's. Every text of the page is looked
    up in it in the browser (``components/i18n.py``), and every event is handled in it."""
    user_name: str = ""
    user_role: str = ""
    role_label: str = ""
    unread_count: int = 0
    must_change_password: bool = False
    submitting: bool = False
    """A form's submission is with the server: the tab's submit buttons wait (``_hold_submits``)."""
    _answered_keys: list[str] = []
    """The request keys of the tab's last writes that succeeded (see ``_act``'s ``request_key``)."""
    _kept_actor: Actor | None = None
    """The actor the tab's session last resolved to; see ``_kept`` for when it may be used."""
    _kept_for: str = ""
    """The SHA-256 of the session token ``_kept_actor`` was resolved from."""
    _kept_on: str = ""
    """The websocket connection that resolved it: a reload or reconnect resolves the session afresh."""
    _kept_until: float = 0.0
    """Until when (Unix time) ``_kept_actor`` may be used without resolving the session again."""
    _kept_epoch: str = ""
    """The user's and role's epochs (``live.epochs``) read before ``_kept_actor`` was resolved."""
    _live_rooms: list[str] = []
    """The live-update rooms the tab has joined (``live.hub.join``)."""

    # --- helpers for every state (not client-callable) ---------------------------------

    def _current_path(self) -> str:
        return self.router.url.path.rstrip("/") or "/"

    async def _session_state(self) -> SessionState:
        return self if type(self) is SessionState else await self.get_state(SessionState)

    async def _credentials(self) -> tuple[str, str]:
        """The session token this event may act with, and the client's address.

        ``TabGate`` has already started afresh any tab whose connection could not prove the
        session its state holds; here the connection that uses a session is remembered.
        """
        base = await self._session_state()
        token = base._token or _cookie_token(self.router.headers.cookie)
        if token and not base._connection:
            base._connection = self.router.session.session_id
        return token, self.router.session.client_ip

    async def _call(self, service: Callable[..., T], /, *, write: bool = True, **kwargs: Any) -> T:
        """Resolve the actor from the session and run one service call in a worker thread.

        Without a valid session the call is refused, and the refusal audited, before the service runs.
        """
        token, ip = await self._credentials()
        kept, epoch = await self._kept(token, ip)
        connection = self.router.session.session_id
        leased: list[auth.SessionLease] = []

        def work() -> T:
            with session_scope(write=write) as session:
                actor = kept or self._lease(session, token, ip, leased, refused_action=(
                    f"{service.__module__.rsplit('.', 1)[-1]}.{service.__name__}"), connection=connection)
                return service(session=session, actor=actor, **kwargs)

        try:
            return await asyncio.to_thread(work)
        finally:
            if leased:
                await self._keep(token, leased[0], epoch)

    @staticmethod
    def _lease(session: Any, token: str, ip: str, leased: list, *, refused_action: str = "",
               connection: str = "") -> Actor:
        """In a worker thread: the session's actor from the database, its lease appended to ``leased``.

        A refusal is audited as ``refused_action`` (``access.refuse_visitor``) when one is given.
        """
        try:
            lease = auth.lease_session(session=session, token=token, ip_address=ip)
        except SessionExpired as refusal:
            if refused_action:
                access.refuse_visitor(session, Anonymous(ip), refused_action, refusal, connection=connection)
            raise
        leased.append(lease)
        return lease.actor

    async def _kept(self, token: str, ip: str) -> tuple[Actor | None, str]:
        """The tab's kept actor if it still holds for ``token``, and the epochs just read ("" if none).

        It holds while its time lasts and the epochs of its user and role are those read before it
        was resolved: a ``sessions`` or ``permissions`` change moves them in the thread that
        committed it, before the service returned, on whichever worker. The epochs are read even when
        the actor's time is up, so that ``_keep`` can keep the next one safely (read before the
        database, a change committed in between shows as a moved epoch at the next event).
        """
        base = await self._session_state()
        kept = base._kept_actor
        if (kept is None or not token or base._kept_on != self.router.session.session_id
                or not hmac.compare_digest(base._kept_for, hash_token(token))):
            return None, ""
        epoch = await live.epochs.read(kept.user_id, kept.role.value)
        if time.time() >= base._kept_until or epoch != base._kept_epoch:
            return None, epoch
        return (kept if kept.ip_address == ip else dataclasses.replace(kept, ip_address=ip)), epoch

    async def _keep(self, token: str, lease: auth.SessionLease, epoch: str) -> None:
        """Keep a freshly resolved actor on the tab, for as long as ``lease`` and the settings allow.

        Only epochs read before the resolution, for the same user and role, vouch for it: the first
        resolution of a token (no epochs yet) is kept with no time, so the next one reads them first.
        """
        base = await self._session_state()
        before = base._kept_actor
        fresh = lease.actor
        same = (before is not None and epoch and before.user_id == fresh.user_id and before.role == fresh.role
                and base._kept_on == self.router.session.session_id
                and hmac.compare_digest(base._kept_for, hash_token(token)))
        base._kept_actor = fresh
        base._kept_for = hash_token(token)
        base._kept_on = self.router.session.session_id
        base._kept_epoch = epoch if same else ""
        base._kept_until = (min(lease.recheck_at.timestamp(), time.time() + settings.SESSION_CACHE_SECONDS)
                            if same else 0.0)

    def _drop_kept_actor(self) -> None:
        """Forget the kept actor: the next event resolves the session from the database."""
        self._kept_actor = None
        self._kept_for = ""
        self._kept_on = ""
        self._kept_until = 0.0
        self._kept_epoch = ""

    async def _act(
        self,
        work: Callable[..., Any] | Awaitable[Any],
        /,
        *,
        success: str | Callable[[Any], object] | None = None,
        refresh: Callable[[], Awaitable[object]] | None = None,
        on_refusal: Callable[[], Awaitable[object]] | None = None,
        write: bool = True,
        request_key: str | None = None,
        **kwargs: Any,
    ) -> Answer:
        """Call one service as this tab's user and answer the click: the one place where a state
        turns what a service did, or refused, into what the user is shown.

        Args:
            work: a service, called through ``_call`` with ``write`` and ``kwargs``; or an
                awaitable of this state's own that makes several calls (a page's loader), awaited
                as it is.
            success: the answer once the service has done its work: a text, toasted as a
                success; or a function of the service's result that gives a text to toast, or
                the events to answer with (a download, another kind of toast, a redirect).
                Without it the answer is no event.
            refresh: what to fetch again after the work is done, before the answer (the page's
                loader).
            on_refusal: what to fetch again when the service refused, before the refusal is
                answered, so that the page shows what stands now.
            request_key: the key the submitted form carried (``services.core.receipts``), passed
                to the service. The service answers a repeat as it answered the first request;
                when this tab has shown that answer already (the second click of a double click)
                the repeat is answered with no event, so that one success shows once. A form
                sent with no key (a script's client, not our pages) is done with no receipt.

        Returns:
            The answer, for the handler to return: on refusal the toast of ``_failure`` (with the
            redirect to the login when the session has ended), with ``refused`` set.
        """
        if inspect.isawaitable(work) and kwargs:
            raise TypeError(f"arguments for an awaitable, which takes none: {sorted(kwargs)}")  # i18n: not shown
        request_key = request_key or None
        if request_key is not None:
            kwargs["request_key"] = request_key
        try:
            try:
                result = await work if inspect.isawaitable(work) else await self._call(work, write=write, **kwargs)
            except HMSError as error:
                if on_refusal is not None:
                    await on_refusal()
                return Answer(await self._failure(error), refusal=error)
            if refresh is not None:
                await refresh()
        finally:
            (await self._session_state()).submitting = False
        if request_key is not None:
            base = await self._session_state()
            repeat = request_key in base._answered_keys
            base._answered_keys = [*base._answered_keys[-19:], request_key]
            if repeat:
                return Answer(result=result)
        answer = success(result) if callable(success) else success
        if isinstance(answer, str):
            answer = rx.toast.success(answer)
        return Answer(answer, result=result)

    async def _hold_submits(self) -> None:
        """Before a form's ``_act``: the tab's submit buttons show that they wait, until ``_act`` answers.

        A handler yields right after this call, so the browser gets the change before the
        service runs; a click that was on its way already is queued behind this event, and the
        form's request key (``services.core.receipts``) makes it a repeat that writes nothing.
        """
        (await self._session_state()).submitting = True

    async def _actor(self, *, refused_action: str = "") -> Actor:
        """The actor of this tab's session, or ``SessionExpired``.

        Args:
            refused_action: the action to audit a refusal as, for a handler that shows the
                refusal to the user instead of calling a service (which ``_call`` audits).
        """
        actor, _extra = await self._actor_and(None, refused_action=refused_action)
        return actor

    async def _actor_and(self, extra: Callable[..., T] | None, *, refused_action: str = "") -> tuple[Actor, T | None]:
        """The actor (as ``_actor``); with a session freshly resolved, also ``extra(session=, actor=)``
        run in the same read-only database session and thread hop, else None."""
        token, ip = await self._credentials()
        kept, epoch = await self._kept(token, ip)
        if kept is not None:
            return kept, None
        connection = self.router.session.session_id
        leased: list[auth.SessionLease] = []

        def work() -> tuple[Actor, T | None]:
            # Read-only, unless a refusal is to be audited here.
            with session_scope(write=bool(refused_action)) as session:
                actor = self._lease(session, token, ip, leased, refused_action=refused_action, connection=connection)
                return actor, (extra(session=session, actor=actor) if extra is not None else None)

        try:
            return await asyncio.to_thread(work)
        finally:
            if leased:
                await self._keep(token, leased[0], epoch)

    async def _forget(self, *then: Any) -> list:
        """End the tab's session; ``_connection`` stays, so the tab's id alone opens nothing later.

        Returns:
            The events for the page: the browser is asked to drop the session cookie if it still
            holds this tab's session (``hms_app/session_cookie.py``), then ``then`` runs once the
            answer is in (so that a logout is done when the page says so).
        """
        base = await self._session_state()
        ended = base._token or _cookie_token(self.router.headers.cookie)
        base._token = ""
        base._drop_kept_actor()
        base._live_rooms = []
        base.user_name = ""
        base.user_role = ""
        base.role_label = ""
        base.unread_count = 0
        base.must_change_password = False
        if not ended:
            return list(then)
        return [rx.call_script(session_cookie.end_script(ended), callback=list(then) or None)]

    async def _failure(self, error: HMSError):
        """The UI's answer to a refused service call: a toast, and a redirect if needed."""
        if isinstance(error, SessionExpired):
            return [*await self._forget(), self._login_redirect(), rx.toast.error(error.message)]
        if isinstance(error, PasswordChangeRequired):
            return [rx.redirect(PASSWORD_PATH), rx.toast.warning(error.message)]
        return rx.toast.error(error.message)

    def _login_redirect(self):
        """Off to the login page, which brings the user back to this page afterwards.

        The guard and a page's own loaders (its other ``on_load`` handlers) may both find
        the session gone; they must send the visitor to the same place.
        """
        return rx.redirect(f"{LOGIN_PATH}?next={self._current_path()}")

    async def _show_actor(self, actor: Actor) -> None:
        base = await self._session_state()
        if actor.language:
            languages.activate(actor.language)
        shown = {"user_name": actor.full_name, "user_role": actor.role.value,
                 "role_label": _(ROLE_LABELS[actor.role]), "must_change_password": actor.must_change_password,
                 "language": actor.language or base.language or visitor_language(self.router.headers)}
        for name, value in shown.items():
            # Set only what changed: every var set goes to the browser again, at every page load.
            if getattr(base, name) != value:
                setattr(base, name, value)

    # --- events -------------------------------------------------------------------------

    @rx.event
    async def guard(self, role: str = "", permission: str = ""):
        """``on_load`` of every signed-in page: the right user, or off to where they belong.

        Args:
            role: the role the page is for; empty for pages every role may open.
            permission: the permission the page's work needs, for a page of every role that
                holds it (the services check it again on every call).
        """
        try:
            actor, unread = await self._actor_and(_unread_on_resolve)
        except SessionExpired:
            return [*await self._forget(), self._login_redirect()]
        await self._show_actor(actor)
        base = await self._session_state()
        if not base._token:
            base._token = _cookie_token(self.router.headers.cookie)
        if actor.must_change_password and self._current_path() != PASSWORD_PATH:
            return [rx.redirect(PASSWORD_PATH), rx.toast.warning(_("Choose a new password before you continue."))]
        if (role and role != actor.role.value) or (permission and permission not in actor.permissions):
            return rx.redirect(ROLE_HOME[actor.role])
        if unread is not None:
            # Counted as the session was resolved afresh (at most once a minute); between, the
            # hub pushes the count when the user's notifications change.
            base.unread_count = unread
        rooms = _rooms_of(actor)
        if unread is not None or base._live_rooms != rooms:
            await live.hub.join(self.router.session.client_token, rooms)
            base._live_rooms = rooms
        return None


    async def _refresh_unread(self) -> None:
        base = await self._session_state()
        try:
            base.unread_count = await self._call(notifications.unread_count, write=False)
        except HMSError:
            base.unread_count = 0

    @rx.event
    async def logout(self):
        try:
            actor = await self._actor()
            await self._call(auth.logout)
            await live.hub.leave(self.router.session.client_token, _rooms_of(actor))
        except HMSError:
            pass
        return await self._forget(rx.redirect(LOGIN_PATH), rx.toast.success(_("You have logged out.")))


    @rx.event
    async def choose_language(self, code: str):
        """The reader picks a language: every text switches at once, the page's own rows are
        loaded again in it, and a signed-in user's choice is kept for every device."""
        code = str(code) if isinstance(code, str) and code in languages.LANGUAGES else ""
        if not code:
            return rx.toast.error(_("Choose one of the languages in the list."))
        base = await self._session_state()
        if base.user_role:
            answer = await self._act(preferences.choose_language, language=code)
            if answer.refused:
                return answer
        base.language = code
        base._drop_kept_actor()  # kept, it would still carry the language chosen before
        languages.activate(code)
        from hms_app.hms_app import app  # the page's loaders, run again in the new language

        # The guard too: the shell's own server-written texts (the role's name) are written again.
        reload = app.get_load_events(self.router.url.path)
        return [*reload, rx.toast.success(_("HMS now speaks {language}.").format(
            language=languages.LANGUAGES[code]))]


def _unread_on_resolve(*, session: Any, actor: Actor) -> int:
    """The bell's count, read with the session's resolution (``SessionState.guard``)."""
    if actor.must_change_password:
        return 0
    try:
        return notifications.unread_count(session=session, actor=actor)
    except HMSError:
        return 0


def _state_classes(state: type[BaseState] = rx.State) -> Iterator[type[BaseState]]:
    for substate in state.get_substates():
        yield substate
        yield from _state_classes(substate)


class TabGate(Middleware):
    """A tab's state is for the connection that used its session, or one that shows its cookie.

    Reflex keeps each tab's state on the server under the tab's id, which the browser sends
    in the websocket's address (and so into a reverse proxy's access log). The state holds
    the session token and whatever the tab's pages last loaded, a patient's chart perhaps,
    and outlives the tab by an hour. A new connection presenting that id, a reload or a
    reconnect, goes on with the state only if its handshake carries the session cookie the
    state holds; any other finds the tab started afresh, logged out and empty, before its
    first event runs, Reflex's own hydration included.
    """

    async def preprocess(self, app: Any, state: BaseState, event: Any) -> None:
        base = await state.get_state(SessionState)
        connection = state.router.session.session_id
        if not base._connection or base._connection == connection:
            return
        token = base._token
        shown = _cookie_token(state.router.headers.cookie)
        if token and shown and hmac.compare_digest(shown.encode(), token.encode()):
            base._connection = connection
            return
        log.info("tab state reset: a new connection without the session's cookie")
        for substate in _state_classes():
            await state.get_state(substate)
        state.reset()


class LanguageGate(Middleware):
    """Every event is handled in its tab's language: a visitor's is settled at the tab's first event."""

    async def preprocess(self, app: Any, state: BaseState, event: Any) -> None:
        base = await state.get_state(SessionState)
        if not base.language:
            base.language = visitor_language(state.router.headers)
        languages.activate(base.language)


class LoginState(SessionState):
    """The login form: the password, then, when the account owes one, the second factor.

    ``step`` is "password", "code" (an enrolled authenticator), "enrol" (a first authenticator:
    QR code and secret) or "recovery" (the new recovery codes, shown once). The login challenge
    lives in a backend-only var; no session token exists before the code is right.
    """

    error: str = ""
    busy: bool = False
    step: str = "password"
    enrol_secret: str = ""
    enrol_qr: str = ""
    recovery_codes: list[str] = []
    _challenge: str = ""
    _after_login: str = ""

    def _back_to_password(self) -> None:
        self.step = "password"
        self._challenge = ""
        self.enrol_secret = ""
        self.enrol_qr = ""

    @rx.event
    async def open_login(self):
        """``on_load`` of the login page and of ``/``: a visitor who is still logged in goes home."""
        self.error = ""
        self._back_to_password()
        self.recovery_codes = []
        try:
            actor = await self._actor()
        except SessionExpired:
            # "/" only shows a spinner; a visitor there belongs on the login form.
            return None if self._current_path() == LOGIN_PATH else rx.redirect(LOGIN_PATH)
        return rx.redirect(ROLE_HOME[actor.role])

    @rx.event
    async def log_in(self, form_data: dict):
        self.busy = True
        yield
        email = form_text(form_data, "email", 300)
        password = form_text(form_data, "password", 1000)
        visitor = Anonymous(self.router.session.client_ip)

        def work() -> tuple[auth.LoginResult, auth.Enrolment | None]:
            with session_scope() as session:
                result = auth.login(session=session, visitor=visitor, email=email, password=password)
                if not result.must_enrol:
                    return result, None
                return result, auth.start_enrolment(session=session, visitor=visitor, challenge=result.challenge)

        try:
            result, enrolment = await asyncio.to_thread(work)
        except HMSError as error:
            self.busy = False
            self.error = error.message
            yield rx.toast.error(error.message)
            return
        self.busy = False
        self.error = ""
        if result.challenge:
            self._challenge = result.challenge
            if enrolment is not None:
                self.step = "enrol"
                self.enrol_secret = enrolment.secret
                self.enrol_qr = enrolment.qr_data_uri
            else:
                self.step = "code"
            return
        for event in await self._logged_in(result):
            yield event

    async def _logged_in(self, result: auth.LoginResult) -> list:
        """The session is open: the tab trades a one-time code for the session cookie, and
        ``finish_login`` goes on once the browser holds it (so a reload right away keeps the session)."""
        base = await self._session_state()
        base._token = result.token
        base._connection = self.router.session.session_id
        # Kept with no time: the next event resolves the session, with the user's epochs read first.
        await self._keep(result.token, auth.SessionLease(result.actor, utcnow()), "")
        await self._show_actor(result.actor)
        self._after_login = _safe_next(self.router.url.query_parameters.get("next")) or home_for(result.actor.role.value)
        code = await session_cookie.issue_code(result.token)
        return [rx.call_script(session_cookie.open_script(code), callback=LoginState.finish_login)]

    @rx.event
    async def finish_login(self, outcome: str):
        """The page's answer to the cookie exchange: on to the user's page, or, when the browser
        has no cookie, the session ended and the login shown again.

        Args:
            outcome: what the page's script answered (``session_cookie.DONE`` when the cookie is set).
        """
        try:
            actor = await self._actor()
        except SessionExpired:
            return None
        if outcome != session_cookie.DONE:
            with contextlib.suppress(HMSError):
                await self._call(auth.logout)
            ending = await self._forget()
            self._back_to_password()
            self.error = _("The login could not be completed in this browser. Please log in again.")
            return [*ending, rx.toast.error(self.error)]
        if self.step == "recovery":
            return None  # the recovery codes show first; leave_recovery_codes goes on
        if actor.must_change_password:
            return [rx.redirect(PASSWORD_PATH), rx.toast.warning(_("Your password was reset. Choose a new one to continue."))]
        return [rx.redirect(self._after_login or home_for(actor.role.value)),
                rx.toast.success(_("Welcome, {name}.").format(name=actor.full_name))]

    async def _second_step(self, service: Callable[..., T], code: str) -> T | None:
        visitor = Anonymous(self.router.session.client_ip)
        challenge = self._challenge

        def work() -> T:
            with session_scope() as session:
                return service(session=session, visitor=visitor, challenge=challenge, code=code)

        self.busy = True
        try:
            return await asyncio.to_thread(work)
        except HMSError as error:
            self.error = error.message
            if error.message == _(auth.CHALLENGE_EXPIRED_MESSAGE):
                self._back_to_password()
            return None
        finally:
            self.busy = False

    @rx.event
    async def verify_code(self, form_data: dict):
        """The second step: a code from the authenticator app, or a recovery code."""
        result = await self._second_step(auth.complete_login, form_text(form_data, "code", 100))
        if result is None:
            return rx.toast.error(self.error)
        self.error = ""
        self._back_to_password()
        return await self._logged_in(result)

    @rx.event
    async def confirm_enrolment(self, form_data: dict):
        """A first code from a new authenticator: the session opens and the recovery codes show once."""
        done = await self._second_step(auth.confirm_enrolment, form_text(form_data, "code", 100))
        if done is None:
            return rx.toast.error(self.error)
        self.error = ""
        self._back_to_password()
        self.recovery_codes = done.recovery_codes
        self.step = "recovery"
        return [*await self._logged_in(done.result), rx.toast.success(_("Your authenticator is set up."))]

    @rx.event
    async def leave_recovery_codes(self):
        """The recovery codes are saved: off to work (they are not shown again)."""
        self.recovery_codes = []
        self.step = "password"
        base = await self._session_state()
        if base.must_change_password:
            return rx.redirect(PASSWORD_PATH)
        return rx.redirect(self._after_login or home_for(base.user_role))

    @rx.event
    def start_over(self):
        """Back to the email and password (a wrong account, or no phone at hand)."""
        self.error = ""
        self._back_to_password()


class RegisterState(SessionState):
    """A patient's self-registration."""

    error: str = ""
    busy: bool = False

    @rx.event
    async def register(self, form_data: dict):
        if form_text(form_data, "password", 1000) != form_text(form_data, "password_confirm", 1000):
            self.error = _("The two passwords do not match.")
            return rx.toast.error(self.error)
        self.busy = True
        form = auth.Registration(
            full_name=form_text(form_data, "full_name"),
            email=form_text(form_data, "email"),
            password=form_text(form_data, "password", 1000),
            birth_date=form_text(form_data, "birth_date", 40),
            phone=form_text(form_data, "phone", 100),
        )
        visitor = Anonymous(self.router.session.client_ip)

        def work() -> int:
            with session_scope() as session:
                return auth.register_patient(session=session, visitor=visitor, form=form)

        try:
            await asyncio.to_thread(work)
        except HMSError as error:
            self.busy = False
            self.error = error.message
            return rx.toast.error(error.message)
        self.busy = False
        self.error = ""
        return [rx.redirect(LOGIN_PATH), rx.toast.success(auth.registration_answer(), duration=20000)]


class PasswordState(SessionState):
    """Changing one's own password (also the forced change after a reset)."""

    error: str = ""

    @rx.event
    async def change_password(self, form_data: dict):
        if form_text(form_data, "new_password", 1000) != form_text(form_data, "new_password_confirm", 1000):
            self.error = _("The two new passwords do not match.")
            return rx.toast.error(self.error)
        answer = await self._act(
            auth.change_password,
            current_password=form_text(form_data, "current_password", 1000),
            new_password=form_text(form_data, "new_password", 1000),
        )
        self.error = answer.error
        if answer.refused:
            return answer
        base = await self._session_state()
        base.must_change_password = False
        return [rx.redirect(home_for(base.user_role)), rx.toast.success(_("Your password has been changed."))]

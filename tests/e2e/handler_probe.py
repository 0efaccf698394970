"""The machinery of the handler probe: every client-callable handler, hostile arguments, four oracles.

``tests/e2e/test_handler_probe.py`` drives it against a real server; ``tests/e2e/test_probe_oracles.py``
shows that each oracle fails on a planted leak, change, unaudited refusal or crash.

What is probed comes from the same walk of the state tree as ``tests/test_event_handlers.py``
(every handler Reflex would dispatch, its own built-ins included), so a new handler is probed
the day it is added. Each handler gets a bounded list of argument vectors derived from its
signature: per parameter a list of hostile values chosen by the parameter's annotation and
name (ids of the victims' records, numbers no id column holds, wrong types, huge, empty,
SQL, HTML, path and control-character strings, forms whose real fields, read from the
handler's own ``form_text`` calls, hold all of that, plus extra fields such as ``role``),
and also the wrong number of arguments. Every call carries a page path and query that
aim at the victims too (``?id=<victim>&appointment=<victim's visit>``...).

The oracles, applied to every call:

1. **No foreign data** (:func:`leaks`): no update the caller receives (state deltas, toasts,
   downloads decoded, PDFs inflated) contains a canary the caller may not see (:data:`MAY_SEE`).
2. **No forbidden change** (:func:`forbidden_changes`): every row the call inserted, updated or
   deleted (recorded by triggers, :func:`install_change_log`) is one the caller may change
   (:data:`MAY_CHANGE`); the schema is compared after each caller as well.
3. **Every refusal audited** (:class:`RefusalLedger`, :func:`strangers`): each refusal shown to
   the caller (the message of a ``PermissionDenied``, ``SessionExpired`` or ``NotFound``,
   collected from the services' source) has a ``denied`` audit row of its own by the end of the
   call that shows it (a row may come a few calls early: a page's loaders finish from Reflex's
   queue), and every such row names the caller.
4. **No crash** (:func:`crashes`): no "Something went wrong on our side" answer (the app's
   ``_backend_error``: an unhandled exception) and no traceback.
"""

from __future__ import annotations

import ast
import asyncio
import base64
import collections
import inspect
import itertools
import json
import re
import textwrap
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_origin

import reflex as rx
import sqlalchemy as sa

from tests.services.lab_helpers import inflated_streams, pdf_text
from tests.ws_client import (
    FIELD_MARKER,
    ROOT_STATE,
    EventResult,
    ReflexSocket,
    WsClient,
    state_name,
)

_HYDRATED = f"is_hydrated{FIELD_MARKER}"

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ROOT / "hms_app" / "services"
CRASH_MESSAGE = "Something went wrong on our side"

HUGE = "A" * 100_000
"""A 100 kB string."""
SQL = "' OR 1=1 --"
HTML = "<script>alert(1)</script>"
PATH = "../../../../etc/passwd"
BAD_CHARS = "bad\x00char\x1b[2J\u202e"
"""A NUL, a terminal escape and a right-to-left override.

Not a lone surrogate (``"\\ud800"``): Reflex echoes event arguments and page queries into the
state it sends back, cannot encode that as UTF-8 and drops the sender's socket. That hurts
only the sender's own tab, and cannot be stored (neither SQLite's nor PostgreSQL's driver
encodes it), so the probe leaves it out rather than wait for each such call to time out."""
ENORMOUS = 2**63
"""One more than the largest id a row can have."""
EXTRA_FIELDS = ("role", "patient_id", "user_id", "doctor_id", "is_admin", "id")
"""Fields no form of the app has, which a hostile client adds to say who it is or whose record it means."""

CALLERS = ("visitor", "patient", "doctor", "lab", "pharmacy", "accounts", "admin")
"""In the order they are probed: the admin last, as its legitimate changes (permissions, users)
would change what the others may do."""
CALLER_EMAIL = {
    "patient": "maria.garcia@patients.example",
    "doctor": "amelia.hart@hms.example",  # Cardiology; the victims are in Orthopedics
    "lab": "lab@hms.example",
    "pharmacy": "pharmacy@hms.example",
    "accounts": "accounts@hms.example",
    "admin": "admin@hms.example",
}
CHAINING = frozenset({"hydrate", "hydrate_and_load", "on_load_internal"})
"""Reflex's handlers that queue further events (the page's loaders) for the tab."""
QUIET_ROUNDS = 3
QUIET_PAUSE = 0.1
PROBED_LAST = ("break_glass", "finish_login", "logout")
"""Handlers probed after all others: breaking the glass legitimately opens the victim's chart
to the doctor; logging out, and a login's cookie exchange answered as failed, end the caller's session."""


# --- the victims ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Victims:
    """The records the probe aims at (``tests/e2e/probe_seed.py`` creates them)."""

    patient: int
    doctor: int
    department: int
    ids: dict[str, int]
    canaries: dict[str, str]
    search_prefix: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Victims:
        return cls(**data)

    def id_for(self, parameter: str) -> int:
        """The victim's record a parameter named like ``order_id`` points at; the patient otherwise."""
        return self.ids.get(parameter.removesuffix("_id"), self.patient)


# Who may see which canary. Every caller is a stranger to the victim patient: the patient is
# another patient, the doctor has never seen her (Cardiology; she is Dr Ortega's patient in
# Orthopedics), and nobody else is her clinician. What each role's pages must show of her:
#  - lab: the worklist names the patient (name, MRN) and shows the ordering doctor's note to
#    the lab, and the lab enters the result comment; never her notes, diagnosis or contact;
#  - pharmacy: the queue names the patient and shows each item's directions and the
#    prescriber's safety override; never notes, diagnosis, results or contact;
#  - accounts: invoices name the patient, with number and payments; nothing clinical;
#  - admin: accounts, schedules (a doctor's leave), every appointment (with its reason), the
#    audit trail and break-glass review; nothing clinical beyond an appointment's reason;
#  - a doctor finds her in the register (Patients: name, record number, birth year; each search
#    audited) but opens her chart only by breaking the glass;
#  - a doctor who breaks the glass (audited, reviewed) sees her chart: identity and every
#    clinical entry, but not her bills or her doctor's leave.
IDENTITY = ("surname", "mrn")
CONTACT = ("email", "phone")
CLINICAL = ("Subjective", "Objective", "Assessment", "Plan", "Diagnosis", "AllergyReaction", "Problem",
            "Instructions", "OverrideReason", "LabNote", "DocumentTitle", "DocumentContent", "ResultComment",
            "VisitReason", "BookingReason")
SECRETS = ("PasswordHash", "SessionTokenHash", "SessionToken", "DataKey")
"""Seen by nobody, ever."""
MAY_SEE: dict[str, frozenset[str]] = {
    "visitor": frozenset(),
    "patient": frozenset(),
    "doctor": frozenset(IDENTITY),
    "lab": frozenset({*IDENTITY, "LabNote", "ResultComment"}),
    "pharmacy": frozenset({*IDENTITY, "Instructions", "OverrideReason"}),
    "accounts": frozenset({*IDENTITY, "InvoiceNumber", "PaymentRef"}),
    "admin": frozenset({*IDENTITY, *CONTACT, "LeaveReason", "VisitReason", "BookingReason", "InvoiceNumber",
                        "PaymentRef"}),
}
AFTER_BREAK_GLASS = frozenset({*IDENTITY, *CONTACT, *CLINICAL})
"""What the doctor may see once the glass is broken for the victim (the chart)."""


def forbidden_canaries(victims: Victims, caller: str, *, glass_broken: bool = False) -> dict[str, str]:
    """Canary name -> text, of every canary ``caller`` may not see."""
    allowed = MAY_SEE[caller] | (AFTER_BREAK_GLASS if glass_broken else frozenset())
    return {name: text for name, text in victims.canaries.items() if name not in allowed and text}


def other_patients_private(conn: sa.Connection, caller: str, caller_id: int | None) -> dict[str, str]:
    """Every other patient's contact details (and, to a patient or visitor, record number), by name.

    Beyond the victims' canaries: no role's pages show a patient's email or phone but the
    admin's user list and the chart of a doctor's own patient, and no patient sees another's
    record number.
    """
    if caller == "admin":
        return {}
    rows = conn.execute(sa.text(
        'SELECT u.id, u.email, p.phone, p.mrn FROM "user" u JOIN patient_profile p ON p.user_id = u.id')).all()
    own_patients: set[int] = set()
    if caller == "doctor":
        own_patients = set(conn.execute(sa.text("SELECT DISTINCT patient_id FROM appointment WHERE doctor_id = :d"),
                                        {"d": caller_id}).scalars())
    private = {}
    for user_id, email, phone, mrn in rows:
        if user_id == caller_id or user_id in own_patients:
            continue
        private[f"email of patient {user_id}"] = email
        if phone:
            private[f"phone of patient {user_id}"] = phone
        if caller in {"patient", "visitor"}:
            private[f"record number of patient {user_id}"] = mrn
    return private


# --- the handlers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    name: str
    annotation: Any
    required: bool


@dataclass(frozen=True)
class Handler:
    state: type[rx.State]
    name: str
    params: tuple[Param, ...]
    form_keys: tuple[str, ...]
    """The fields the handler reads from its form argument (its ``form_text`` calls)."""

    @property
    def full_name(self) -> str:
        return f"{self.state.get_full_name()}.{self.name}"

    @property
    def is_app(self) -> bool:
        return self.state.__module__.startswith("hms_app.")

    def __str__(self) -> str:
        return f"{self.state.__name__}.{self.name}"


def _form_keys(fn: Callable[..., Any], form_param: str | None) -> tuple[str, ...]:
    if form_param is None:
        return ()
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError):
        return ()
    keys = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and getattr(node.func, "id", "") == "form_text" and len(node.args) >= 2
                and isinstance(node.args[0], ast.Name) and node.args[0].id == form_param
                and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)):
            keys.append(node.args[1].value)
    return tuple(dict.fromkeys(keys))


def _handler(state: type[rx.State], name: str, event_handler: Any) -> Handler:
    fn = event_handler.fn
    try:
        hints = event_handler._get_type_hints() or {}
    except Exception:
        hints = {}
    params = tuple(
        Param(p.name, hints.get(p.name, Any), p.default is inspect.Parameter.empty)
        for p in list(inspect.signature(fn).parameters.values())[1:]
        if p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    )
    form_param = next((p.name for p in params if p.annotation is dict), None)
    return Handler(state, name, params, _form_keys(fn, form_param))


def all_handlers() -> list[Handler]:
    """Every client-callable handler of every state, from the walk ``test_event_handlers`` reviews."""
    from tests.test_event_handlers import _states

    return sorted((_handler(state, name, handler) for state in _states() for name, handler in state.event_handlers.items()),
                  key=lambda h: h.full_name)


def page_routes() -> dict[str, list[str]]:
    """State full name -> the routes whose page loads it (from the app's ``on_load`` events)."""
    from hms_app.hms_app import app

    routes: dict[str, list[str]] = {}
    for route, events in app._load_events.items():
        path = "/" if route == "index" else "/" + route
        for event in events:
            handler = getattr(event, "handler", event)
            name = getattr(handler, "state_full_name", "")
            if name and path not in routes.setdefault(name, []):
                routes[name].append(path)
    return routes


def page_loaders() -> dict[str, set[str]]:
    """State full name -> the names of its handlers some page runs on load."""
    from hms_app.hms_app import app

    loaders: dict[str, set[str]] = {}
    for events in app._load_events.values():
        for event in events:
            handler = getattr(event, "handler", event)
            name = getattr(handler, "state_full_name", "")
            if name:
                loaders.setdefault(name, set()).add(handler.fn.__name__)
    return loaders


def all_routes() -> list[str]:
    from hms_app.hms_app import app

    return sorted("/" if route == "index" else "/" + route for route in {*app._unevaluated_pages, *app._pages})


# --- hostile arguments -------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One call of one handler: its payload and the page it claims to come from."""

    payload: dict[str, Any]
    pathname: str
    query: dict[str, Any]

    def describe(self) -> str:
        text = json.dumps(self.payload, default=repr)
        text = text if len(text) < 160 else text[:140] + f"... ({len(text)} chars)"
        return f"{text} on {self.pathname}{'?' + '&'.join(self.query) if self.query else ''}"


def _number_values(victims: Victims, name: str) -> list[Any]:
    own = victims.id_for(name)
    return [own, victims.patient, victims.doctor, ENORMOUS, -1, 0, 1.5, True, None, "1 OR 1=1", [own],
            {"id": own}, HUGE, str(own), -(2**63)]


ESCALATION = {"role": "admin", "permission": "users.manage", "show": "all", "which": "report",
              "report": PATH, "action": "decline", "var_name": "user_role"}


def _text_values(victims: Victims, name: str) -> list[Any]:
    return ["", HUGE, SQL, HTML, PATH, BAD_CHARS, victims.search_prefix, str(victims.id_for(name)),
            ESCALATION.get(name, "admin"), None, 12345, ["admin"], {"$ne": ""}, -1]


BOOL_VALUES = [True, False, "false", None, 2, -1, [], {"grant": True}, SQL]
FILE_VALUES = [None, "x", 5, [], [{"name": PATH, "data": "JVBERi0xLjQK"}], [None], ["a", "b"], {"name": "x"},
               [HUGE]]
ANY_VALUES = [None, HUGE, SQL, HTML, {"role": "admin"}, [1], True, -1, ENORMOUS, BAD_CHARS]


def _plausible(key: str, victims: Victims, n: int) -> str:
    """A value that passes for what a browser sends in a field named ``key``."""
    lowered = key.lower()
    table = [
        ("email", f"probe.{n}@patients.example"), ("password", "Probe-Passw0rd-2026!"),
        ("name", "Probe Person"), ("birth", "1990-01-01"), ("date", "2031-02-03"), ("expiry", "12/30"),
        ("card", "4242424242424242"), ("cvc", "123"), ("phone", "+44 20 7946 0999"), ("amount", "1.00"),
        ("price", "1.00"), ("cost", "1.00"), ("method", "cash"), ("quantity", "1"), ("days", "1"),
        ("change", "-1"), ("weekday", "1"), ("minutes", "20"), ("start", "09:00"), ("end", "10:00"),
        ("value", "5"), ("severity", "mild"), ("substance", "Latex"), ("priority", "stat"), ("status", "submitted"),
        ("lot", "PROBE1"), ("reorder", "1"), ("dose", "1 tablet"), ("route", "oral"), ("frequency", "once daily"),
        ("outcome", "denied"), ("user", "admin"), ("role", "admin"),
    ]
    for part, value in table:
        if part in lowered:
            return value
    if lowered.endswith("_id") or lowered in {"department", "doctor", "test", "patient"}:
        return str(victims.id_for(lowered))
    return "Probe text for a hostile form"


def _form_values(handler: Handler, victims: Victims, counter: Iterator[int]) -> list[Any]:
    # The pharmacy's dispense form names its fields after the prescription's items.
    keys = [*handler.form_keys, f"qty-{victims.ids.get('item', 0)}"]

    def each(value: Callable[[str], Any]) -> dict[str, Any]:
        return {key: value(key) for key in keys}

    extras = {"role": "admin", "patient_id": victims.patient, "user_id": victims.patient,
              "doctor_id": victims.doctor, "is_admin": True, "id": victims.patient}
    n = next(counter)
    return [
        {**each(lambda k: _plausible(k, victims, n)), **extras},
        each(lambda k: str(victims.id_for(k))),
        each(lambda k: HUGE[: min(len(HUGE), 800_000 // len(keys))]),  # under the socket's 1 MB message limit
        each(lambda k: SQL),
        each(lambda k: HTML),
        each(lambda k: PATH),
        each(lambda k: BAD_CHARS),
        dict(zip(keys, itertools.cycle([{"$gt": ""}, ["x", "y"], None, True, 1.5]), strict=False)),
        dict(zip(keys, itertools.cycle(["-1", -1, ENORMOUS, "1e309", "NaN"]), strict=False)),
        {},
        None,
        "not a form",
        [1, 2],
    ]


def _values(param: Param, handler: Handler, victims: Victims, counter: Iterator[int]) -> list[Any]:
    annotation, name = param.annotation, param.name
    if annotation is dict or get_origin(annotation) is dict:
        return _form_values(handler, victims, counter)
    if get_origin(annotation) is list:
        return FILE_VALUES
    if annotation is bool:
        return BOOL_VALUES
    if annotation is int or name.endswith("_id"):
        return _number_values(victims, name)
    if annotation is str:
        if name == "var_name":
            return _setvar_names(handler)
        return _text_values(victims, name)
    return ANY_VALUES


def _setvar_names(handler: Handler) -> list[Any]:
    """What ``setvar`` is asked to set: two of the state's own vars, then what a client should never reach."""
    own = [name for name in handler.state.base_vars if not name.startswith("_")][:2]
    return [*own, "_token", "user_role", "router", "no_such_var", None]


def _is_id(param: Param) -> bool:
    return param.annotation is int or param.name.endswith("_id")


def queries(victims: Victims) -> list[dict[str, Any]]:
    """Page queries every call cycles through: aimed at the victims, junk, none."""
    return [
        {"id": str(victims.patient), "appointment": str(victims.ids["appointment"]),
         "department": str(victims.department), "doctor": str(victims.doctor), "date": "2026-13-45",
         "next": "//evil.example/steal"},
        {"id": SQL, "appointment": HTML, "department": PATH, "doctor": "-1", "date": HUGE[:2000],
         "next": "javascript:alert(1)"},
        {},
    ]


def _pathname(handler: Handler, role: str, routes: dict[str, list[str]]) -> str:
    """The page the handler's state belongs to, the caller's own where there are several."""
    known = routes.get(handler.state.get_full_name(), [])
    own = [r for r in known if r.startswith(f"/{role}")]
    return (own or known or ["/"])[0]


def calls_for(handler: Handler, victims: Victims, *, role: str, routes: dict[str, list[str]],
              every_route: list[str], counter: Iterator[int] | None = None) -> list[Call]:
    """The bounded list of hostile calls of one handler for one caller."""
    counter = counter or itertools.count()
    pathname = _pathname(handler, role, routes)
    page_queries = queries(victims)
    if handler.name in {"hydrate", "on_load_internal", "hydrate_and_load"}:
        # These run whatever the page loads: every page, aimed at the victims.
        return [Call({}, route, page_queries[0]) for route in every_route]
    if not handler.params:
        vectors: list[dict[str, Any]] = [{}, {}, {}]
    else:
        columns = [_values(p, handler, victims, counter) for p in handler.params]
        count = len(columns[0]) if handler.name == "setvar" else max(len(c) for c in columns)
        vectors = [{p.name: column[i % len(column)] for p, column in zip(handler.params, columns, strict=True)}
                   for i in range(count)]
    # The last call of each handler aims its page at the victims, so that what it leaves in the
    # state (a chart's patient, an encounter) is theirs for the handlers probed after it.
    calls = [Call(v, pathname, page_queries[(len(vectors) - 1 - i) % len(page_queries)])
             for i, v in enumerate(vectors)]
    # Arguments that fit no signature: one too many (naming someone else), none at all, not an object.
    first = vectors[0]
    calls.append(Call({**first, "patient_id": victims.patient}, pathname, page_queries[0]))
    if handler.params:
        calls.append(Call({}, pathname, page_queries[0]))
    calls.append(Call(["not", "an", "object"], pathname, page_queries[0]))  # type: ignore[arg-type]
    return calls


def _aim(param: Param, victims: Victims) -> Any:
    """The argument that points a selecting handler at the victims' record."""
    if _is_id(param):
        return victims.id_for(param.name)
    if param.annotation is bool:
        return True
    return ESCALATION.get(param.name, str(victims.patient))


def aimed_calls(handlers: list[Handler], victims: Victims, *, role: str, routes: dict[str, list[str]],
                counter: Iterator[int] | None = None) -> list[tuple[Handler, Call]]:
    """Select, then act: each submitting handler right after its page was pointed at the victims.

    Many handlers act on what an earlier event of the same page left in the state: the invoice
    open in the dialog, the request being declined, the chart's patient, the schedule's doctor.
    For each handler of a state that takes a form or nothing (and is not a page loader), the
    state's page loaders run first on a page aimed at the victims, then every handler of the
    state that takes an id, with the victims' ids, then the handler with its first argument
    vector (a plausible form with extra fields).
    """
    counter = counter or itertools.count()
    loaders = page_loaders()
    query = queries(victims)[0]
    steps: list[tuple[Handler, Call]] = []
    by_state: dict[type, list[Handler]] = {}
    for handler in handlers:
        if handler.is_app and handler.name != "setvar" and handler.name not in PROBED_LAST:
            by_state.setdefault(handler.state, []).append(handler)
    for state, own in by_state.items():
        primers = [h for h in own if h.name in loaders.get(state.get_full_name(), set())]
        primers += [h for h in own if h not in primers and any(_is_id(p) for p in h.params)]
        actors = [h for h in own if h not in primers
                  and (not h.params or any(p.annotation is dict for p in h.params))]
        for actor in actors:
            pathname = _pathname(actor, role, routes)
            for primer in primers:
                steps.append((primer, Call({p.name: _aim(p, victims) for p in primer.params}, pathname, query)))
            first = {p.name: _values(p, actor, victims, counter)[0] for p in actor.params}
            steps.append((actor, Call(first, pathname, query)))
    return steps


def plan(handlers: list[Handler], victims: Victims, *, role: str, routes: dict[str, list[str]],
         every_route: list[str]) -> list[tuple[Handler, Call]]:
    """Every call of one caller's probe, in order: each handler's hostile calls, then the aimed
    ones, then the handlers whose success changes who the caller is or what they may see."""
    counter = itertools.count()
    first = [h for h in handlers if h.name not in PROBED_LAST]
    last = sorted((h for h in handlers if h.name in PROBED_LAST), key=lambda h: PROBED_LAST.index(h.name))
    steps = [(h, c) for h in first for c in calls_for(h, victims, role=role, routes=routes,
                                                       every_route=every_route, counter=counter)]
    steps += aimed_calls(first, victims, role=role, routes=routes, counter=counter)
    steps += [(h, c) for h in last for c in calls_for(h, victims, role=role, routes=routes,
                                                      every_route=every_route, counter=counter)]
    return steps


class ProbeSocket(ReflexSocket):
    """A tab that puts the page's query where handlers read it, with a more lenient sentinel.

    Handlers read the query from ``router.url``, which Reflex 0.10 parses out of the
    ``asPath`` of the router data (the ``query`` entry only feeds the deprecated
    ``router.page.params``), so the query goes into ``asPath`` as a browser sends it.

    ``ReflexSocket`` takes the sentinel's answer to be an update of ``is_hydrated`` alone.
    When a handler raises, Reflex drops the state changes of that event, the page's router
    data included, so the sentinel's update also carries the router vars of the call's page
    (and a fresh tab's first answer the whole state). Those parts are kept with the call.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # A browser takes a download of any size; aiohttp's client stops at 4 MB by default.
        self._sio.eio.websocket_extra_options = {"max_msg_size": 256 * 2**20}

    async def call(self, state: type | str, handler: str, payload: Any = None, *, pathname: str = "/",
                   query: dict[str, Any] | None = None, timeout: float = 30) -> EventResult:
        as_path = f"{pathname}?{urllib.parse.urlencode(query, doseq=True)}" if query else pathname
        router_data: dict[str, Any] = {"pathname": pathname, "asPath": as_path, "query": query or {}}
        await self._emit(f"{state_name(state)}.{handler}", {} if payload is None else payload, router_data)
        result = EventResult()
        async with asyncio.timeout(timeout):
            for _ in range(2):
                await self._sentinel(result, router_data)
            if handler in CHAINING:
                await self._settle(result, router_data)
            # As a browser does after a login: trade the one-time code for the session cookie.
            for script in list(result.scripts):
                await self._run_session_script(script, result, router_data)
        return result

    async def _settle(self, result: EventResult, router_data: dict[str, Any]) -> None:
        """Wait out the events a handler chained (a page's loaders), gathering what they send.

        Reflex runs chained events from its own queue, which a sentinel may overtake: their
        toasts, and the audit rows of their refusals, would land in a later call's window.
        The chain is taken to be done after :data:`QUIET_ROUNDS` sentinels in a row, each
        :data:`QUIET_PAUSE` seconds apart, bring nothing else.
        """
        quiet = 0
        while quiet < QUIET_ROUNDS:
            await asyncio.sleep(QUIET_PAUSE)
            before = len(result.updates)
            await self._sentinel(result, router_data)
            quiet = quiet + 1 if len(result.updates) == before else 0

    async def _sentinel(self, result: EventResult, router_data: dict[str, Any]) -> None:
        target = not self.hydrated
        await self._emit(f"{ROOT_STATE}.reflex___state____on_load_internal_state.set_is_hydrated",
                         {"value": target}, router_data)
        while True:
            update = await self._updates.get()
            delta = update.get("delta") or {}
            root = delta.get(ROOT_STATE) or {}
            if _HYDRATED in root:
                self.hydrated = bool(root[_HYDRATED])
                if self.hydrated is target:
                    rest = {**delta, ROOT_STATE: {k: v for k, v in root.items() if k != _HYDRATED}}
                    rest = {name: vars_ for name, vars_ in rest.items() if vars_}
                    if rest or update.get("events"):
                        result.updates.append({**update, "delta": rest})
                    return
            result.updates.append(update)


class ProbeClient(WsClient):
    """A :class:`WsClient` on a :class:`ProbeSocket`."""

    @staticmethod
    async def _make(base_url: str, origin: str | None, token: str | None) -> ReflexSocket:
        return ProbeSocket(base_url, origin=origin, token=token)


# --- oracle 1: no foreign data -----------------------------------------------------------------


def _drawn_text(data: bytes) -> str:
    """The text a PDF draws, read through its fonts; "" for a file no PDF reader opens."""
    try:
        return pdf_text(data)
    except Exception:  # a malformed PDF: its raw streams are still searched
        return ""


def received_text(result: EventResult) -> str:
    """Everything the server sent for a call as one text: updates, and each download decoded."""
    parts = [result.text()]
    for download in result.downloads:
        url = str(download.get("url") or "")
        if url.startswith("data:") and ";base64," in url:
            try:
                data = base64.b64decode(url.partition(";base64,")[2])
            except ValueError:
                continue
            if data.startswith(b"%PDF"):
                parts.append(_drawn_text(data))  # the hospital's PDFs draw glyph numbers of an embedded font
                data += b"\n".join(inflated_streams(data))
            parts.append(data.decode("latin-1"))
    return "\n".join(parts)


def leaks(text: str, forbidden: dict[str, str]) -> list[str]:
    """Names of the forbidden canaries found in ``text`` (any case)."""
    lowered = text.lower()
    return sorted(name for name, value in forbidden.items() if value.lower() in lowered)


# --- oracle 2: no forbidden change -------------------------------------------------------------

CHANGE_LOG = "probe_change"
NOT_LOGGED = {"audit_event", "throttle", CHANGE_LOG}
"""The audit trail is append-only (its own triggers refuse the rest) and checked by oracle 3; the
throttle counts failed attempts per address, which any caller's refused login, code,
registration or password change adds to (``tests/services/test_throttle.py`` checks it)."""


def install_change_log(engine: sa.Engine) -> None:
    """Triggers that record every row inserted, updated or deleted, before and after, as JSON.

    SQLite only: the probe's server runs on SQLite, and the triggers are the probe's own.
    """
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE TABLE {CHANGE_LOG} (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                             "tbl TEXT NOT NULL, op TEXT NOT NULL, old TEXT, new TEXT)")
        for table in sa.inspect(conn).get_table_names():
            if table in NOT_LOGGED:
                continue
            columns = [c["name"] for c in sa.inspect(conn).get_columns(table)]

            def row(alias: str, columns: list[str] = columns) -> str:
                pairs = ", ".join(f"'{c}', CASE WHEN typeof({alias}.\"{c}\") = 'blob' THEN hex({alias}.\"{c}\") "
                                  f"ELSE {alias}.\"{c}\" END" for c in columns)
                return f"json_object({pairs})"

            for op, old, new in (("INSERT", "NULL", row("NEW")), ("UPDATE", row("OLD"), row("NEW")),
                                 ("DELETE", row("OLD"), "NULL")):
                conn.exec_driver_sql(
                    f'CREATE TRIGGER probe_{table}_{op.lower()} AFTER {op} ON "{table}" BEGIN '
                    f"INSERT INTO {CHANGE_LOG} (tbl, op, old, new) VALUES ('{table}', '{op}', {old}, {new}); END")


@dataclass(frozen=True)
class Change:
    table: str
    op: str
    old: dict[str, Any] | None
    new: dict[str, Any] | None

    @property
    def row(self) -> dict[str, Any]:
        return self.new if self.new is not None else (self.old or {})

    @property
    def changed_columns(self) -> set[str]:
        if self.old is None or self.new is None:
            return set((self.new or self.old or {}).keys())
        return {k for k in self.new if self.new.get(k) != self.old.get(k)}

    def describe(self) -> str:
        key = self.row.get("id", self.row.get("name", "?"))
        cols = sorted(self.changed_columns) if self.op == "UPDATE" else []
        return f"{self.op} {self.table} #{key}" + (f" ({', '.join(cols)})" if cols else "")


def read_changes(conn: sa.Connection, after: int) -> tuple[int, list[Change]]:
    rows = conn.exec_driver_sql(f"SELECT id, tbl, op, old, new FROM {CHANGE_LOG} WHERE id > ? ORDER BY id",
                                (after,)).all()
    changes = [Change(t, op, json.loads(old) if old else None, json.loads(new) if new else None)
               for _, t, op, old, new in rows]
    changes = [c for c in changes if c.op != "UPDATE" or c.changed_columns]
    return (rows[-1][0] if rows else after), changes


@dataclass(frozen=True)
class Allowed:
    """Changes to ``table`` a caller may make: by operation, to which columns, to whose rows."""

    table: str
    ops: frozenset[str] = frozenset({"INSERT", "UPDATE", "DELETE"})
    columns: frozenset[str] | None = None
    """For updates: only these columns may change (None: any)."""
    owner: str | None = None
    """The row's column that must hold the caller's user id (None: any row)."""
    when: Callable[[Change, list[Change]], bool] | None = None
    """A further condition on the change, seeing the call's other changes."""

    def permits(self, change: Change, caller_id: int | None, others: list[Change]) -> bool:
        if change.table != self.table or change.op not in self.ops:
            return False
        if change.op == "UPDATE" and self.columns is not None and not change.changed_columns <= self.columns:
            return False
        if self.owner is not None:
            owners = {(change.old or {}).get(self.owner), (change.new or {}).get(self.owner)} - {None}
            if caller_id is None or owners != {caller_id}:
                return False
        return self.when is None or self.when(change, others)


def _registered_patient(change: Change, others: list[Change]) -> bool:
    return change.row.get("role") == "patient"


def _profile_of_new_patient(change: Change, others: list[Change]) -> bool:
    return any(o.table == "user" and o.op == "INSERT" and o.row.get("id") == change.row.get("user_id")
               and o.row.get("role") == "patient" for o in others)


def _counter(*names: str) -> Callable[[Change, list[Change]], bool]:
    return lambda change, others: change.row.get("name") in names


# Changes any caller may cause with any arguments, hostile or not:
EVERYONE = (
    # its own session: the idle clock moves on each call; logging out revokes it
    Allowed("auth_session", frozenset({"UPDATE"}), frozenset({"last_seen_at", "revoked_at"}), owner="user_id"),
    # anyone's failed-login count and lockout: that is what a wrong password does
    Allowed("user", frozenset({"UPDATE"}), frozenset({"failed_logins", "locked_until"})),
    # self-registration (RegisterState is for visitors): a patient account with its record number,
    # whatever role the form claims
    Allowed("user", frozenset({"INSERT"}), when=_registered_patient),
    Allowed("patient_profile", frozenset({"INSERT"}), when=_profile_of_new_patient),
    Allowed("counter", frozenset({"INSERT", "UPDATE"}), when=_counter("mrn")),
    # its own notifications marked read
    Allowed("notification", frozenset({"UPDATE"}), frozenset({"read_at"}), owner="user_id"),
    # its own choice about e-mail reminders
    Allowed("email_preference", frozenset({"INSERT", "UPDATE"}), owner="user_id"),
    # its own language (SessionState.choose_language)
    Allowed("user", frozenset({"UPDATE"}), frozenset({"language"}), owner="id"),
)
_REVIEW_COLUMNS = ("released_at", "reviewed_at", "reviewed_by", "review_note")


def _with_review(change: Change, others: list[Change]) -> bool:
    return any(o.table == "lab_result" and o.op == "UPDATE" and o.changed_columns <= set(_REVIEW_COLUMNS)
               for o in others)


_CHARGES = ("invoice", "invoice_line", "daily_billed")
"""A completed lab test and a dispensation each add a line to the patient's draft invoice, and
count in the day's billed total (``services/accounting/totals.py``)."""
_MONEY_KEPT = ("daily_billed", "daily_collected", "open_balance")
"""The totals kept with every charge, payment, refund, issue and void (``totals.py``)."""
# What each role's permissions let it change hospital-wide, or in its own rows (``owner``):
MAY_CHANGE: dict[str, tuple[Allowed, ...]] = {
    "visitor": EVERYONE,
    "patient": (*EVERYONE, Allowed("appointment", owner="patient_id"), Allowed("waitlist_entry", owner="patient_id")),
    "doctor": (*EVERYONE, Allowed("appointment", owner="doctor_id"), Allowed("encounter", owner="doctor_id"),
               Allowed("doctor_availability", owner="doctor_id"), Allowed("doctor_leave", owner="doctor_id"),
               Allowed("doctor_profile", owner="user_id"),
               # breaking the glass: audited, reviewed by admin
               Allowed("break_glass", frozenset({"INSERT"}), owner="doctor_id"),
               # reviewing a held result of theirs releases it, and the patient is told
               Allowed("lab_result", frozenset({"UPDATE"}), frozenset(_REVIEW_COLUMNS), owner="reviewed_by"),
               *(Allowed(t, frozenset({"INSERT"}), when=_with_review) for t in ("notification", "email_outbox"))),
    "lab": (*EVERYONE, *(Allowed(t) for t in ("lab_order", "lab_result", "lab_report_file", "lab_test", *_CHARGES)),
            Allowed("notification", frozenset({"INSERT"})), Allowed("counter", when=_counter("invoice"))),
    "pharmacy": (*EVERYONE, *(Allowed(t) for t in ("prescription", "prescription_item", "dispensation",
                                                  "stock_batch", "stock_movement", "medicine", *_CHARGES)),
                 Allowed("notification", frozenset({"INSERT"}))),
    "accounts": (*EVERYONE, Allowed("invoice"), Allowed("payment"), *(Allowed(t) for t in _MONEY_KEPT),
                 Allowed("notification", frozenset({"INSERT"})), Allowed("service_price"),
                 Allowed("doctor_profile", frozenset({"UPDATE"}), frozenset({"consultation_fee_cents"})),
                 Allowed("counter")),
    "admin": (*EVERYONE, *(Allowed(t) for t in ("user", "doctor_profile", "department", "role_permission",
                                               "doctor_availability", "doctor_leave", "auth_session",
                                               # go-live: the reference lists and the formulary and stock
                                               "service_price", "lab_test", "medicine", "stock_batch",
                                               "stock_movement")),
              Allowed("notification", frozenset({"INSERT"}))),
}


def forbidden_changes(changes: list[Change], caller: str, caller_id: int | None) -> list[str]:
    """The changes of one call that ``caller`` may not make."""
    rules = MAY_CHANGE[caller]
    return [c.describe() for c in changes if not any(rule.permits(c, caller_id, changes) for rule in rules)]


def schema_of(conn: sa.Connection) -> list[tuple]:
    return conn.exec_driver_sql("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name").all()


# --- oracle 3: every refusal audited -----------------------------------------------------------

_REFUSALS = {"PermissionDenied", "SessionExpired", "PasswordChangeRequired", "NotFound", "BreakGlassRequired"}
_DEFAULT_DENY = "You do not have permission to do that."


def _message(text: str, *, formatted: bool) -> str:
    pattern = re.escape(text)
    return re.sub(r"\\\{\w*\\\}", ".+", pattern) if formatted else pattern


def _pattern(node: ast.expr, *, formatted: bool = False) -> str | None:
    """The refusal's text as a pattern: a literal, an f-string, or a message through the
    translation function (``_("...")``, ``N_``, ``ngettext``), its ``{placeholders}`` filled by
    ``.format`` (the probe's server speaks English, the messages' ids)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return _message(node.value, formatted=formatted)
    if isinstance(node, ast.JoinedStr):
        return "".join(re.escape(v.value) if isinstance(v, ast.Constant) else ".+" for v in node.values)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
        return _pattern(node.func.value, formatted=True)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.args:
        if node.func.id in {"_", "N_"}:
            return _pattern(node.args[0], formatted=formatted)
        if node.func.id == "ngettext" and len(node.args) >= 2:
            forms = [_pattern(arg, formatted=formatted) for arg in node.args[:2]]
            return None if None in forms else "(?:" + "|".join(forms) + ")"
    return None


def refusal_patterns(services: Path = SERVICES) -> list[re.Pattern[str]]:
    """The messages with which services refuse (raised as, or denied with, a refusal error)."""
    found: set[str] = {re.escape(_DEFAULT_DENY)}
    for path in services.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            name = ast.unparse(node.func)
            if name in _REFUSALS and node.args:
                found.add(_pattern(node.args[0]) or "")
            elif name.endswith("deny") and len(node.args) >= 4:
                found.add(_pattern(node.args[3]) or "")
            elif name.endswith("deny"):
                message = next((k.value for k in node.keywords if k.arg == "message"), None)
                found.add(_pattern(message) if message is not None else re.escape(_DEFAULT_DENY))
    return [re.compile(f"^{p}$", re.S) for p in sorted(found - {""})]


def refusals(result: EventResult, patterns: list[re.Pattern[str]]) -> list[str]:
    """The refusals among the toasts of a call."""
    return [message for level, message in result.toasts
            if level in {"error", "warning"} and any(p.match(message) for p in patterns)]


def strangers(denied: list[dict[str, Any]], caller_id: int | None) -> list[str]:
    """Denied audit rows of a call that name someone other than the caller."""
    others = [row for row in denied if row["actor_id"] != caller_id]
    return [f"denied audit rows name someone else: {others[:2]}"] if others else []


@dataclass
class RefusalLedger:
    """Matches the refusals shown to a caller with the denied audit rows written for them.

    Each refusal needs a denied row of its own. A service commits that row before its refusal
    reaches the handler, and the handler's toast leaves after that, so by the end of the call
    in which a toast arrives its row is in the database: a refusal with no row unclaimed by then
    is unaudited. Rows may come earlier than their toasts, though: a page's loaders run from
    Reflex's own queue and their toasts can arrive a few calls later. An unclaimed row waits
    ``window`` calls for its toast, then no longer counts.
    """

    window: int = 60
    """Calls a row waits for its toast. A row of a refusal shown some other way (a redirect)
    can stand in for a missing one inside the window: the oracle is that much weaker."""
    spare: collections.deque[int] = field(default_factory=collections.deque)
    calls: int = 0
    max_lag: int = 0
    """The most calls that ever lay between a row and its toast, for the report."""

    def add(self, label: str, refused: list[str], denied: int) -> list[str]:
        """Record one call's refusals and denied rows; the problems of its refusals without a row."""
        self.calls += 1
        self.spare.extend([self.calls] * denied)
        problems = []
        for message in refused:
            if not self.spare:
                problems.append(f"{label}: refused without a denied audit row: {message!r}")
                continue
            self.max_lag = max(self.max_lag, self.calls - self.spare.popleft())
        while self.spare and self.spare[0] <= self.calls - self.window:
            self.spare.popleft()
        return problems


# --- oracle 4: no crash ------------------------------------------------------------------------


def crashes(result: EventResult) -> list[str]:
    text = result.text()
    problems = []
    if CRASH_MESSAGE in text:
        problems.append("crashed (Something went wrong on our side)")
    if "Traceback" in text:
        problems.append("sent a traceback")
    return problems


# --- the verdict of one call -------------------------------------------------------------------


@dataclass
class Verdict:
    """What went wrong in one caller's probe, one line per call."""

    problems: list[str] = field(default_factory=list)
    calls: int = 0
    records: list[tuple[str, str, list[str]]] = field(default_factory=list)
    """(handler, call, issues) of each call that went wrong."""

    def add(self, handler: Handler, call: Call, issues: Iterable[str]) -> None:
        issues = list(issues)
        if issues:
            self.problems.append(f"{handler}({call.describe()}): {'; '.join(issues)}")
            self.records.append((str(handler), call.describe(), issues))

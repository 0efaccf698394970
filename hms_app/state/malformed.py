"""Events no handler can take: a plain message for the sender, one line in the log, no traceback.

Any client can send any event with any payload. Reflex calls the handler with the payload
as keyword arguments, so a payload that is not an object, that lacks an argument or that
has one the handler does not take raises ``TypeError`` inside Reflex; its built-in
``setvar`` raises ``AttributeError`` for every var of the app, none of which has a setter
(``tests/test_event_handlers.py``); and its other built-ins take their arguments to be of
the annotated types. Each reached the app's exception handler as an
unexpected failure: "Something went wrong on our side" for the sender and a traceback in
the log, as often as a client cared to send one. ``MalformedEventGate`` answers them before
the handler runs; the handler never sees them.
"""

from __future__ import annotations

import functools
import inspect
import logging
import types
import typing
from typing import Any

import reflex as rx
from reflex.middleware import Middleware
from reflex.state import BaseState, StateUpdate
from reflex_base.event import Event
from reflex_base.registry import RegistrationContext

from hms_app.services.core.language import N_, _

log = logging.getLogger(__name__)

MESSAGE = N_("That request was not understood. Reload the page and try again.")


@functools.cache
def _signature(fn: Any) -> inspect.Signature:
    return inspect.signature(fn)


def _fits(value: object, annotation: Any) -> bool:
    """Whether ``value`` is of the plain type ``annotation`` names (``str``, ``bool``, ``dict[str, Any]``)."""
    kind = typing.get_origin(annotation) or annotation
    if kind in (typing.Union, types.UnionType):
        return any(_fits(value, option) for option in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if kind is Any or not isinstance(kind, type):
        return True
    if kind is dict:
        return isinstance(value, dict) and all(isinstance(key, str) for key in value)
    return isinstance(value, kind)


def _builtin_problem(registered: Any, payload: dict) -> str | None:
    """What is wrong with the arguments of one of Reflex's own handlers.

    They trust their annotations, which the browser's own code always honours:
    ``handle_frontend_exception`` searches its ``info`` with a regular expression, and
    ``update_vars_internal`` and ``hydrate_and_load`` look up the state each of their ``vars`` names.
    """
    hints = registered.handler._get_type_hints() or {}
    for name, value in payload.items():
        if not _fits(value, hints.get(name, Any)):
            return f"{name} is a {type(value).__name__}, not {hints[name]}"
    if registered.handler.fn.__name__ in ("update_vars_internal", "hydrate_and_load"):
        for key in payload.get("vars") or {}:
            try:
                rx.State.get_class_substate(key.rpartition(".")[0])
            except ValueError:
                return f"{registered.handler.fn.__name__} of {key[:80]!r}, a var of no state"  # i18n: not shown (the log's)
    return None


def malformed(name: str, payload: object) -> str | None:
    """Why no handler can take event ``name`` with ``payload``, or None when one can.

    Events whose name Reflex does not know are left to Reflex, which drops them.
    """
    registered = RegistrationContext.get().event_handlers.get(name) if isinstance(name, str) else None
    if registered is None:
        return None
    if not isinstance(payload, dict):
        return f"its payload is a {type(payload).__name__}, not an object"  # i18n: not shown (the log's)
    fn = registered.handler.fn
    try:
        _signature(fn).bind(None, **payload)
    except TypeError as error:
        return str(error)
    if not registered.states[0].__module__.startswith("hms_app.") and (problem := _builtin_problem(registered, payload)):
        return problem
    if fn.__name__ == "setvar":
        var_name = payload.get("var_name")
        state = registered.states[0]
        if not isinstance(var_name, str) or not callable(getattr(state, f"set_{var_name}", None)):
            return f"setvar of {str(var_name)[:60]!r}, which {state.__name__} has no setter for"  # i18n: not shown
    return None


class MalformedEventGate(Middleware):
    """Refuses an event whose payload does not fit its handler, before the handler runs."""

    async def preprocess(self, app: Any, state: BaseState, event: Event) -> StateUpdate | None:
        problem = malformed(event.name, event.payload)
        if problem is None:
            return None
        log.warning("refused event %.200s: %.300s", event.name, problem)
        return StateUpdate(events=Event.from_event_type(rx.toast.error(_(MESSAGE))))

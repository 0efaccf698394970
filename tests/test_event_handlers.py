"""Every event handler a client can call, held against the reviewed list in the repository.

Any browser (or script) can send any event to any state with any arguments, so the set of
client-callable handlers is the app's attack surface. A handler that appears or disappears
fails this test until ``tests/reviewed_handlers.txt`` is updated, which puts the change in
front of a reviewer.
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import reflex as rx
from reflex_base.registry import RegistrationContext

import hms_app.hms_app  # noqa: F401  (builds the app, which registers every state)

ROOT = Path(__file__).resolve().parents[1]
REVIEWED = Path(__file__).with_name("reviewed_handlers.txt")
STATE_PACKAGE = ROOT / "hms_app" / "state"
# Reflex's own setters, on Reflex's own states: they only flip the page's hydrated flag.
BUILTIN_SETTERS = {"set_is_hydrated"}


def _states(state: type[rx.State] = rx.State) -> Iterator[type[rx.State]]:
    """The root state and every substate under it, parents first."""
    yield state
    for substate in sorted(state.get_substates(), key=lambda s: s.get_full_name()):
        yield from _states(substate)


def _client_callable() -> set[str]:
    """``<state full name>.<handler>`` for each handler of each state, Reflex's built-ins included."""
    return {f"{state.get_full_name()}.{name}" for state in _states() for name in state.event_handlers}


def _reviewed() -> list[str]:
    lines = (line.strip() for line in REVIEWED.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def _is_app_state(state: type) -> bool:
    return state.__module__.startswith("hms_app.")


def test_client_callable_handlers_match_the_reviewed_list():
    actual = _client_callable()
    reviewed = set(_reviewed())
    added = sorted(actual - reviewed)
    removed = sorted(reviewed - actual)
    message = ["The client-callable event handlers differ from tests/reviewed_handlers.txt."]
    if added:
        message += ["", "Added (review that each resolves the actor and calls a service that checks permission):"]
        message += [f"  + {name}" for name in added]
    if removed:
        message += ["", "Removed (delete from the list):"]
        message += [f"  - {name}" for name in removed]
    if added or removed:
        pytest.fail("\n".join(message))


def test_the_reviewed_list_is_sorted_without_duplicates():
    names = _reviewed()
    assert names == sorted(set(names))


def test_the_walk_finds_every_handler_the_server_dispatches():
    # The event processor looks handlers up by name in Reflex's registry, not in the tree.
    assert set(RegistrationContext.get().event_handlers) == _client_callable()


def test_the_walk_reaches_every_app_state():
    app_states = {
        obj
        for path in STATE_PACKAGE.glob("*.py")
        for obj in vars(importlib.import_module(f"hms_app.state.{path.stem}")).values()
        if isinstance(obj, type) and issubclass(obj, rx.State) and _is_app_state(obj) and not obj._mixin
    }
    assert app_states
    assert app_states <= set(_states())


def test_no_app_handler_is_named_like_a_setter():
    # Reflex's built-in setvar calls ``set_<name>`` for any name a client sends.
    setters = sorted(
        f"{state.get_full_name()}.{name}"
        for state in _states()
        for name in state.event_handlers
        if name.startswith("set_") and (_is_app_state(state) or name not in BUILTIN_SETTERS)
    )
    assert not setters, f"handlers that setvar reaches: {setters}"


def test_setvar_reaches_nothing_of_the_app():
    # setvar reaches any attribute named set_*, event handler or not, inherited or not.
    for state in _states():
        if _is_app_state(state):
            reachable = {name for name in dir(state) if name.startswith("set_")}
            assert reachable <= BUILTIN_SETTERS, f"{state.__name__}: {sorted(reachable - BUILTIN_SETTERS)}"


def _decorator_names(node: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    names = set()
    for decorator in node.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        names.add(ast.unparse(target))
    return names


def _public_methods() -> Iterator[tuple[type[rx.State], str, set[str]]]:
    """(state class, method, decorators) for each public method of each state in hms_app/state."""
    for path in sorted(STATE_PACKAGE.glob("*.py")):
        module = importlib.import_module(f"hms_app.state.{path.stem}")
        for node in ast.parse(path.read_text()).body:
            cls = getattr(module, node.name, None) if isinstance(node, ast.ClassDef) else None
            if not (isinstance(cls, type) and issubclass(cls, rx.State)):
                continue
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and not item.name.startswith("_"):
                    yield cls, item.name, _decorator_names(item)


def test_every_public_method_of_a_state_is_a_decorated_registered_event():
    public = list(_public_methods())
    assert public
    callable_names = _client_callable()
    for cls, method, decorators in public:
        if decorators & {"rx.var", "property"}:
            continue  # computed values: not callable by a client
        assert "rx.event" in decorators, f"{cls.__name__}.{method} is public but not @rx.event"
        # A mixin's handlers are copied onto each state that uses it.
        owners = [s for s in _states() if cls in s.__mro__ and not s._mixin] if cls._mixin else [cls]
        assert owners, f"{cls.__name__} is used by no state"
        for owner in owners:
            assert f"{owner.get_full_name()}.{method}" in callable_names, f"{owner.__name__}.{method} is not registered"

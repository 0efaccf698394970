"""The gate in front of every handler: what it lets through and what it answers itself.

The browser's own events must pass untouched (a page that cannot hydrate is a broken page);
an event no handler can take is refused before the handler runs.
"""

from __future__ import annotations

import pytest

import hms_app.hms_app  # noqa: F401  (registers every state and handler)
from hms_app.state.auth import LoginState
from hms_app.state.billing import AccountsInvoicesState
from hms_app.state.malformed import malformed
from tests.ws_client import state_name

STATE = "reflex___state____state"
ON_LOAD = f"{STATE}.reflex___state____on_load_internal_state"


def _name(state: type, handler: str) -> str:
    return f"{state_name(state)}.{handler}"


@pytest.mark.parametrize(("name", "payload"), [
    # what the browser sends when a page opens: cookies and local storage, and the hashes of its state
    (f"{STATE}.hydrate_and_load", {"vars": {f"{state_name(LoginState).rpartition('.')[0]}.session_cookie": "x"},
                                   "hashes": ["a1", "b2"]}),
    (f"{STATE}.hydrate_and_load", {"vars": None, "hashes": None}),
    (f"{STATE}.hydrate_and_load", {}),
    (f"{ON_LOAD}.set_is_hydrated", {"value": True}),
    (_name(LoginState, "log_in"), {"form_data": {"email": "a@b.example", "password": "x"}}),
    (_name(AccountsInvoicesState, "download_pdf"), {"invoice_id": 41}),
    ("no_such_state.no_such_handler", {"anything": 1}),  # left to Reflex, which drops it
])
def test_what_a_browser_sends_passes(name, payload):
    assert malformed(name, payload) is None


@pytest.mark.parametrize(("name", "payload", "why"), [
    (_name(AccountsInvoicesState, "download_pdf"), ["not", "an", "object"], "not an object"),
    (_name(AccountsInvoicesState, "download_pdf"), {}, "missing"),
    (_name(AccountsInvoicesState, "download_pdf"), {"invoice_id": 41, "patient_id": 35}, "unexpected"),
    (f"{STATE}.hydrate_and_load", {"hashes": "not-a-list"}, "hashes is a str"),
    (f"{STATE}.hydrate_and_load", {"vars": {5: "x"}}, "vars is a dict"),
    (f"{STATE}.hydrate_and_load", {"vars": {"no_such_state.token": "x"}, "hashes": []}, None),
    (f"{ON_LOAD}.set_is_hydrated", {"value": "false"}, "value is a str"),
    (_name(LoginState, "setvar"), {"var_name": "_token", "value": "stolen"}, "no setter"),
])
def test_an_event_no_handler_can_take_is_refused(name, payload, why):
    problem = malformed(name, payload)
    assert problem, f"{name}({payload!r}) was let through"
    if why:
        assert why in problem, problem

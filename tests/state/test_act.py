"""``SessionState._act``: the one place where a state turns what a service did, or refused, into
what the user is shown. Run on a stand-in for a tab, which records what happens in which order."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest
import reflex as rx

from hms_app.services.core.errors import NotFound, SessionExpired
from hms_app.state.auth import Answer, SessionState


class Tab:
    """A tab's state as ``_act`` sees it: the service call and the refusal's answer, logged."""

    def __init__(self) -> None:
        self.log: list[str] = []
        self.submitting = True  # as ``_hold_submits`` leaves it before a form's ``_act``
        self._answered_keys: list[str] = []

    async def _session_state(self):
        return self

    async def _call(self, service, /, *, write: bool = True, **kwargs):
        self.log.append(f"call {service.__name__} write={write}")
        return service(**kwargs)

    async def _failure(self, error):
        self.log.append(f"failure {error.message}")
        return [rx.redirect("/login"), "refusal toast"]

    async def refresh(self) -> None:
        self.log.append("refresh")

    async def on_refusal(self) -> None:
        self.log.append("on_refusal")


def _act(tab: Tab, work, /, **kwargs) -> Answer:
    # On a thread of its own: in a run that has opened the browser journeys' Chromium (a
    # session fixture), Playwright's sync API keeps an event loop running on this thread.
    with ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(asyncio.run, SessionState._act(tab, work, **kwargs)).result()


def issue(*, number: str) -> str:
    return f"INV-{number}"


def refuse(**_kwargs):
    raise NotFound("No such invoice.")


def _toast_text(event) -> str:
    return repr(event)


def test_done_work_is_refreshed_then_toasted_as_a_success():
    tab = Tab()
    answer = _act(tab, issue, number="7", refresh=tab.refresh, on_refusal=tab.on_refusal, success="Issued.")
    assert tab.log == ["call issue write=True", "refresh"]
    assert not answer.refused
    assert answer.error == ""
    assert answer.refusal is None
    assert answer.result == "INV-7"
    assert len(answer) == 1
    assert '"success"]("Issued.")' in _toast_text(answer[0])


def test_success_can_word_the_result_or_answer_with_events_of_its_own():
    worded = _act(Tab(), issue, number="8", success=lambda number: f"Invoice {number} issued.")
    assert len(worded) == 1
    assert '"success"]("Invoice INV-8 issued.")' in _toast_text(worded[0])
    download = rx.download(data="a,b", filename="x.csv")
    events = _act(Tab(), issue, number="9", success=lambda _: [download, rx.toast.info("Exported.")])
    assert events[0] is download
    assert '"info"]("Exported.")' in _toast_text(events[1])


def test_without_success_the_answer_is_no_event():
    tab = Tab()
    answer = _act(tab, issue, number="1", write=False)
    assert tab.log == ["call issue write=False"]
    assert answer == []
    assert answer.result == "INV-1"
    assert not answer.refused


def test_a_refusal_refreshes_first_then_answers_with_the_refusal():
    tab = Tab()
    answer = _act(tab, refuse, refresh=tab.refresh, on_refusal=tab.on_refusal, success="Never shown.")
    assert tab.log == ["call refuse write=True", "on_refusal", "failure No such invoice."]
    assert answer.refused
    assert answer.error == "No such invoice."
    assert isinstance(answer.refusal, NotFound)
    assert answer[1] == "refusal toast"
    assert answer.result is None


def test_an_awaitable_of_the_state_is_awaited_as_it_is():
    tab = Tab()

    async def load() -> str:
        tab.log.append("load")
        raise SessionExpired("Please log in.")

    answer = _act(tab, load())
    assert tab.log == ["load", "failure Please log in."]
    assert isinstance(answer.refusal, SessionExpired)


def test_an_awaitable_takes_no_arguments_for_a_service():
    async def load() -> None:
        pass

    work = load()
    with pytest.raises(TypeError, match="number"):
        _act(Tab(), work, number="1")
    work.close()


def test_an_unexpected_error_is_not_taken_for_a_refusal():
    def broken(**_kwargs):
        raise RuntimeError("bug")

    with pytest.raises(RuntimeError):
        _act(Tab(), broken, success="Never shown.")


def test_the_submit_buttons_wait_until_the_answer_whatever_it_is():
    done, refused = Tab(), Tab()
    _act(done, issue, number="1", success="Issued.")
    _act(refused, refuse, success="Issued.")
    assert (done.submitting, refused.submitting) == (False, False)


def test_a_repeat_of_a_request_this_tab_saw_answered_shows_nothing_more():
    """The second click of a double click: the service answers it as the first, the tab toasts once."""
    tab = Tab()

    def pay(*, request_key: str) -> str:
        tab.log.append(f"pay {request_key}")
        return "paid"

    first = _act(tab, pay, request_key="key-one-0123456789", success="Paid.")
    second = _act(tab, pay, request_key="key-one-0123456789", success="Paid.")
    other = _act(tab, pay, request_key="key-two-0123456789", success="Paid.")
    assert tab.log[1::2] == ["pay key-one-0123456789", "pay key-one-0123456789", "pay key-two-0123456789"]
    assert (len(first), len(second), len(other)) == (1, 0, 1)
    assert (second.result, second.refused) == ("paid", False)


def test_a_refused_request_is_not_remembered_as_answered():
    tab = Tab()
    _act(tab, refuse, request_key="key-one-0123456789")
    assert tab._answered_keys == []

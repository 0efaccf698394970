"""The hospital load benchmark's model: the persona mix it states and how it counts answers."""

from __future__ import annotations

from collections import Counter

from bench.hospital_load import SHARE, outcome_of, persona_cycle
from hms_app.services.booking.appointments import SLOT_TAKEN
from tests.ws_client import EventResult


def _toast(level: str, message: str) -> EventResult:
    code = f'refs[\'__toast\']?.["{level}"]("{message}", {{}})'
    return EventResult([{"delta": {}, "events": [{"name": "_call_function", "payload": {"function": code}}]}])


def test_every_fifty_users_follow_the_stated_mix_and_smaller_steps_come_close():
    assert Counter(persona_cycle(100)) == Counter(SHARE)
    for users in (10, 25, 50):
        counts = Counter(persona_cycle()[:users])
        for persona, per_hundred in SHARE.items():
            assert abs(counts[persona] - per_hundred * users / 100) <= 1, (users, persona, counts)


def test_a_slot_taken_by_another_user_is_a_conflict_and_any_other_refusal_an_error():
    assert outcome_of(True, EventResult()) == ("ok", "")
    assert outcome_of(False, _toast("error", SLOT_TAKEN)) == ("conflict", "")
    assert outcome_of(False, _toast("error", "A cancelled appointment cannot be cancelled.")) == ("conflict", "")
    assert outcome_of(False, _toast("error", "You do not have permission to do that.")) == (
        "error", "You do not have permission to do that.")
    login = EventResult([{"delta": {}, "events": [{"name": "_redirect", "payload": {"path": "/login"}}]}])
    assert outcome_of(False, login) == ("error", "/login")

"""The handler probe's oracles catch what they are for: each fails on a planted problem.

``tests/e2e/test_handler_probe.py`` passes only if every oracle finds nothing; these tests show
that each would have found something: a canary in an answer (also inside a downloaded PDF), a
row the caller may not change, a refusal with no audit row of its own, a crash.
"""

from __future__ import annotations

import base64
import json
import zlib

from hms_app.services.core import pdf
from tests.e2e import handler_probe as probe
from tests.ws_client import EventResult

VICTIMS = probe.Victims(patient=35, doctor=7, department=2, ids={"appointment": 8},
                        canaries={"surname": "Quillfe", "Diagnosis": "Canary-Dx-91", "LeaveReason": "Canary-Leave-4"},
                        search_prefix="Qu")


def _toast(level: str, message: str) -> dict:
    """A toast as Reflex sends it (``rx.toast.error("...")`` compiles to this call)."""
    return {"name": "_call_function", "payload": {"function": f"refs['__toast']?.[\"{level}\"]({json.dumps(message)}, {{}})"}}


def test_a_canary_in_a_delta_is_a_leak_to_a_stranger_but_not_to_whom_it_belongs():
    result = EventResult(updates=[{"delta": {"state.chart": {"diagnosis": "Canary-Dx-91 (confirmed)"}}}])
    text = probe.received_text(result)

    assert probe.leaks(text, probe.forbidden_canaries(VICTIMS, "patient")) == ["Diagnosis"]
    assert probe.leaks(text, probe.forbidden_canaries(VICTIMS, "doctor", glass_broken=True)) == []


def test_a_canary_inside_a_compressed_pdf_download_is_found():
    stream = zlib.compress(b"BT (Surname: QUILLFE) Tj ET")
    pdf = b"%PDF-1.4\n1 0 obj <<>>\nstream\n" + stream + b"\nendstream\n%%EOF"
    url = "data:application/pdf;base64," + base64.b64encode(pdf).decode()
    result = EventResult(updates=[{"events": [{"name": "_download", "payload": {"url": url}}]}])

    assert probe.leaks(probe.received_text(result), probe.forbidden_canaries(VICTIMS, "visitor")) == ["surname"]
    assert probe.leaks(probe.received_text(result), probe.forbidden_canaries(VICTIMS, "lab")) == []


def test_a_canary_drawn_in_the_hospitals_pdf_font_is_found():
    # The hospital's PDFs embed a Unicode font: their text is glyph numbers, read through its map.
    document = pdf.letterhead("Lab report 1", "Laboratory report")
    pdf.field(document, "Patient", "Maria Quillfe", label_width=45)
    url = "data:application/pdf;base64," + base64.b64encode(pdf.closing_note(document, "Printed today.")).decode()
    result = EventResult(updates=[{"events": [{"name": "_download", "payload": {"url": url}}]}])

    assert probe.leaks(probe.received_text(result), probe.forbidden_canaries(VICTIMS, "visitor")) == ["surname"]


def test_a_change_outside_the_callers_rows_or_columns_is_forbidden():
    own = probe.Change("appointment", "UPDATE", {"id": 1, "patient_id": 40, "status": "pending"},
                       {"id": 1, "patient_id": 40, "status": "cancelled"})
    foreign = probe.Change("appointment", "UPDATE", {"id": 8, "patient_id": 35, "status": "pending"},
                           {"id": 8, "patient_id": 35, "status": "cancelled"})
    promoted = probe.Change("user", "UPDATE", {"id": 40, "role": "patient"}, {"id": 40, "role": "admin"})
    locked_out = probe.Change("user", "UPDATE", {"id": 35, "failed_logins": 0}, {"id": 35, "failed_logins": 1})

    assert probe.forbidden_changes([own, locked_out], "patient", 40) == []
    assert probe.forbidden_changes([foreign], "patient", 40) == ["UPDATE appointment #8 (status)"]
    assert probe.forbidden_changes([promoted], "patient", 40) == ["UPDATE user #40 (role)"]
    assert probe.forbidden_changes([own], "visitor", None) == ["UPDATE appointment #1 (status)"]


def test_registration_may_create_a_patient_but_never_a_member_of_staff():
    patient = probe.Change("user", "INSERT", None, {"id": 90, "role": "patient"})
    staff = probe.Change("user", "INSERT", None, {"id": 91, "role": "admin"})

    assert probe.forbidden_changes([patient], "visitor", None) == []
    assert probe.forbidden_changes([staff], "visitor", None) == ["INSERT user #91"]


def test_a_refusal_without_a_row_of_its_own_is_unaudited_at_once():
    ledger = probe.RefusalLedger(window=3)
    assert ledger.add("a()", ["Please log in."], 1) == []
    assert ledger.add("b()", ["Please log in.", "Please log in."], 1) == [
        "b(): refused without a denied audit row: 'Please log in.'"]  # one row short


def test_a_row_written_a_few_calls_before_its_toast_answers_it():
    ledger = probe.RefusalLedger(window=3)
    assert ledger.add("a()", [], 1) == []  # a queued loader's row; its toast comes later
    assert ledger.add("b()", [], 0) == []
    assert ledger.add("c()", ["Please log in."], 0) == []
    assert ledger.max_lag == 2


def test_a_row_written_after_its_toast_is_too_late():
    ledger = probe.RefusalLedger(window=3)
    assert ledger.add("a()", ["Please log in."], 0) == ["a(): refused without a denied audit row: 'Please log in.'"]
    assert ledger.add("b()", [], 1) == []


def test_an_old_spare_row_does_not_answer_a_later_refusal():
    ledger = probe.RefusalLedger(window=2)
    ledger.add("a()", [], 1)  # a row nobody was refused for
    ledger.add("b()", [], 0)
    ledger.add("c()", [], 0)
    assert ledger.add("d()", ["You do not have permission to do that."], 0) == [
        "d(): refused without a denied audit row: 'You do not have permission to do that.'"]


def test_a_denied_row_naming_someone_else_is_reported():
    assert probe.strangers([{"actor_id": 40}], 40) == []
    assert probe.strangers([{"actor_id": 7}], 40) != []
    assert probe.strangers([{"actor_id": 7}], None) != []


def test_refusals_are_the_services_messages_shown_as_error_or_warning_toasts():
    patterns = probe.refusal_patterns()
    result = EventResult(updates=[{"events": [_toast("error", "Please log in."), _toast("success", "Saved."),
                                              _toast("error", "That date is not valid.")]}])

    assert probe.refusals(result, patterns) == ["Please log in."]


def test_a_crash_answer_or_a_traceback_is_a_crash():
    crashed = EventResult(updates=[{"events": [_toast("error", "Something went wrong on our side. Try again.")]}])
    traced = EventResult(updates=[{"delta": {"state.x": {"error": "Traceback (most recent call last):"}}}])

    assert probe.crashes(crashed) == ["crashed (Something went wrong on our side)"]
    assert probe.crashes(traced) == ["sent a traceback"]
    assert probe.crashes(EventResult(updates=[{"events": [_toast("error", "Please log in.")]}])) == []

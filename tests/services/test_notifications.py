"""Notifications (one row per recipient) and change events delivered only after a commit."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from hms_app.db.engine import session_scope
from hms_app.db.enums import Role
from hms_app.db.models import Notification
from hms_app.services.core import events
from hms_app.services.core.errors import NotFound, SessionExpired
from hms_app.services.messaging import notifications
from tests.services.helpers import assert_refused

pytestmark = pytest.mark.db


@pytest.fixture
def received():
    """Changes delivered to a listener during the test."""
    changes: list[events.Change] = []
    events.subscribe(changes.append)
    yield changes
    events.unsubscribe(changes.append)


def _notify(engine, user_id, title, body="", link="") -> None:
    with session_scope(engine=engine) as s:
        notifications.notify(s, user_id, title, body, link)
        s.commit()


def _unread(engine, actor) -> int:
    with session_scope(write=False, engine=engine) as s:
        return notifications.unread_count(session=s, actor=actor)


def _list(engine, actor, **kwargs):
    with session_scope(write=False, engine=engine) as s:
        return notifications.list_notifications(session=s, actor=actor, **kwargs)


def _ids(engine, user_id) -> list[int]:
    with engine.connect() as conn:
        return conn.execute(
            sa.select(Notification.id).where(Notification.user_id == user_id).order_by(Notification.id)
        ).scalars().all()


def test_notify_and_count_unread(actors, seeded, received):
    patient = actors[Role.PATIENT]
    assert _unread(seeded, patient) == 0
    _notify(seeded, patient.user_id, "Appointment confirmed", "Tuesday 10:20 with Dr. Hart", "/patient/appointments")
    _notify(seeded, patient.user_id, "Lab result ready")
    assert _unread(seeded, patient) == 2
    assert _unread(seeded, actors[Role.DOCTOR]) == 0
    page = _list(seeded, patient)
    assert page.total == 2
    assert [n.title for n in page.rows] == ["Lab result ready", "Appointment confirmed"]  # newest first
    assert page.rows[1].body == "Tuesday 10:20 with Dr. Hart"
    assert page.rows[1].link == "/patient/appointments"
    assert not any(n.is_read for n in page.rows)
    assert [c.user_ids for c in received] == [frozenset({patient.user_id})] * 2
    assert {c.topic for c in received} == {"notifications"}


def test_notify_truncates_long_text(actors, seeded):
    patient = actors[Role.PATIENT]
    _notify(seeded, patient.user_id, "T" * 500, "B" * 5000, "/" + "l" * 500)
    [row] = _list(seeded, patient).rows
    assert (len(row.title), len(row.body), len(row.link)) == (200, 1000, 200)


def test_mark_read_and_mark_all_read(actors, seeded, received):
    patient = actors[Role.PATIENT]
    for n in range(3):
        _notify(seeded, patient.user_id, f"Note {n}")
    first, *_ = _ids(seeded, patient.user_id)
    received.clear()
    with session_scope(engine=seeded) as s:
        notifications.mark_read(session=s, actor=patient, notification_id=first)
    assert _unread(seeded, patient) == 2
    assert [c.user_ids for c in received] == [frozenset({patient.user_id})]
    # Marking it again changes nothing and tells nobody.
    with session_scope(engine=seeded) as s:
        notifications.mark_read(session=s, actor=patient, notification_id=str(first))
    assert len(received) == 1
    with session_scope(engine=seeded) as s:
        assert notifications.mark_all_read(session=s, actor=patient) == 2
    assert _unread(seeded, patient) == 0
    assert all(n.is_read for n in _list(seeded, patient).rows)
    with session_scope(engine=seeded) as s:
        assert notifications.mark_all_read(session=s, actor=patient) == 0


def test_mark_all_read_touches_only_ones_own(actors, seeded):
    patient, doctor = actors[Role.PATIENT], actors[Role.DOCTOR]
    _notify(seeded, patient.user_id, "For the patient")
    _notify(seeded, doctor.user_id, "For the doctor")
    with session_scope(engine=seeded) as s:
        assert notifications.mark_all_read(session=s, actor=patient) == 1
    assert _unread(seeded, doctor) == 1


def test_someone_elses_notification_is_not_found_and_audited(actors, seeded):
    patient, doctor = actors[Role.PATIENT], actors[Role.DOCTOR]
    _notify(seeded, doctor.user_id, "Private to the doctor")
    [theirs] = _ids(seeded, doctor.user_id)
    error = assert_refused(seeded, patient, "notification.read",
                           lambda s: notifications.mark_read(session=s, actor=patient, notification_id=theirs),
                           error=NotFound)
    missing = assert_refused(seeded, patient, "notification.read",
                             lambda s: notifications.mark_read(session=s, actor=patient, notification_id=999999),
                             error=NotFound)
    assert str(error) == str(missing)  # a forbidden id answers exactly like a missing one
    assert _unread(seeded, doctor) == 1
    assert_refused(seeded, patient, "notification.read",
                   lambda s: notifications.mark_read(session=s, actor=patient, notification_id="abc"),
                   error=NotFound)
    assert all(n.title != "Private to the doctor" for n in _list(seeded, patient).rows)


def test_notifications_need_a_session(seeded):
    assert_refused(seeded, None, "notification.read_all",
                   lambda s: notifications.mark_all_read(session=s, actor=None), error=SessionExpired)
    assert_refused(seeded, None, "notification.read",
                   lambda s: notifications.mark_read(session=s, actor=None, notification_id=1), error=SessionExpired)


def test_list_notifications_pages(actors, seeded):
    patient = actors[Role.PATIENT]
    for n in range(7):
        _notify(seeded, patient.user_id, f"Note {n}")
    first = _list(seeded, patient, page=1, page_size=5)
    second = _list(seeded, patient, page=2, page_size=5)
    assert (first.total, len(first.rows), len(second.rows), first.page_count) == (7, 5, 2, 2)
    assert [n.title for n in first.rows + second.rows] == [f"Note {n}" for n in range(6, -1, -1)]


# --- events ------------------------------------------------------------------------------


def test_a_change_is_delivered_only_after_the_commit(actors, seeded, received):
    patient = actors[Role.PATIENT]
    with session_scope(engine=seeded) as s:
        events.publish(s, "appointments", user_ids=[patient.user_id, str(patient.user_id)], roles=[Role.DOCTOR])
        notifications.notify(s, patient.user_id, "Booked")
        s.flush()
        assert received == []
        s.commit()
        assert [c.topic for c in received] == ["appointments", "notifications"]
    assert received[0] == events.Change("appointments", frozenset({patient.user_id}), frozenset({"doctor"}))


def _notify_then_fail(engine, user_id) -> None:
    with session_scope(engine=engine) as s:
        notifications.notify(s, user_id, "Never sent either")
        s.flush()
        raise RuntimeError("the work failed")


def test_a_rolled_back_change_is_never_delivered(actors, seeded, received):
    patient = actors[Role.PATIENT]
    with session_scope(engine=seeded) as s:
        notifications.notify(s, patient.user_id, "Never sent")
        s.rollback()
        s.commit()  # a later commit on the same session must not deliver the discarded change
    assert received == []
    with pytest.raises(RuntimeError):
        _notify_then_fail(seeded, patient.user_id)
    assert received == []
    assert _unread(seeded, patient) == 0


def test_a_refused_call_publishes_nothing(actors, seeded, received):
    patient, doctor = actors[Role.PATIENT], actors[Role.DOCTOR]
    _notify(seeded, doctor.user_id, "Private to the doctor")
    received.clear()
    [theirs] = _ids(seeded, doctor.user_id)
    with session_scope(engine=seeded) as s:
        events.publish(s, "something", user_ids=[patient.user_id])
        with pytest.raises(NotFound):
            notifications.mark_read(session=s, actor=patient, notification_id=theirs)
    assert received == []


def test_a_broken_listener_does_not_undo_the_commit_or_starve_others(actors, seeded, received):
    def broken(change):
        raise ValueError("listener bug")

    events.subscribe(broken)
    try:
        _notify(seeded, actors[Role.PATIENT].user_id, "Still delivered")
    finally:
        events.unsubscribe(broken)
    assert len(received) == 1
    assert _unread(seeded, actors[Role.PATIENT]) == 1


def test_unsubscribed_listeners_hear_nothing(actors, seeded):
    heard = []
    events.subscribe(heard.append)
    events.subscribe(heard.append)  # subscribing twice delivers once
    _notify(seeded, actors[Role.PATIENT].user_id, "One")
    events.unsubscribe(heard.append)
    _notify(seeded, actors[Role.PATIENT].user_id, "Two")
    assert len(heard) == 1

"""A user's language: chosen once, kept on their account; notifications in the recipient's."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from hms_app.db.engine import session_scope
from hms_app.db.enums import Role
from hms_app.db.models import Notification, User
from hms_app.services.administration import preferences
from hms_app.services.core.actor import Anonymous
from hms_app.services.core.errors import SessionExpired, ValidationError
from hms_app.services.core.language import _, use_language
from hms_app.services.messaging import notifications
from tests.services.helpers import audit_events, last_audit_id, login_token, resolve

pytestmark = pytest.mark.db


def _language(engine, user_id) -> str | None:
    with engine.connect() as conn:
        return conn.execute(sa.select(User.language).where(User.id == user_id)).scalar_one()


def _choose(engine, actor, language):
    with session_scope(engine=engine) as s:
        return preferences.choose_language(session=s, actor=actor, language=language)


def test_a_user_chooses_a_language_and_every_new_session_carries_it(actors, seeded):
    patient = actors[Role.PATIENT]
    assert _language(seeded, patient.user_id) is None
    before = last_audit_id(seeded)
    assert _choose(seeded, patient, "ar") == "ar"
    assert _language(seeded, patient.user_id) == "ar"
    assert [(e.action, e.detail) for e in audit_events(seeded, after_id=before)] == [
        ("user.language", "not chosen -> ar")]
    # Another device: a new login resolves to an actor in Arabic.
    assert resolve(seeded, login_token(seeded, patient.email)).language == "ar"


@pytest.mark.parametrize("bad", ["xx", "", None, "es-MX", "AR", "ar; DROP TABLE user", 7, "e" * 10_000])
def test_a_language_not_shipped_is_refused_and_nothing_changes(actors, seeded, bad):
    doctor = actors[Role.DOCTOR]
    _choose(seeded, doctor, "es")
    with pytest.raises(ValidationError, match="Choose one of the languages"):
        _choose(seeded, doctor, bad)
    assert _language(seeded, doctor.user_id) == "es"


def test_a_visitor_cannot_choose_for_an_account(seeded):
    with pytest.raises(SessionExpired):
        _choose(seeded, Anonymous("203.0.113.9"), "ar")
    with pytest.raises(SessionExpired):
        _choose(seeded, None, "ar")


def test_a_refusal_reads_in_the_callers_language(actors, seeded):
    with use_language("es"), pytest.raises(ValidationError) as refused:
        _choose(seeded, actors[Role.ADMIN], "xx")
    assert refused.value.message == "Elija uno de los idiomas de la lista."


def test_a_notification_is_written_in_its_recipients_language(actors, seeded):
    patient, doctor = actors[Role.PATIENT], actors[Role.DOCTOR]
    _choose(seeded, patient, "es")
    with use_language("ar"), session_scope(engine=seeded) as s:  # the doctor who acts reads Arabic
        for user_id in (patient.user_id, doctor.user_id):
            notifications.notify(s, user_id, lambda: _("Log out"), lambda: _("Language"))
        s.commit()
    with seeded.connect() as conn:
        rows = dict(conn.execute(sa.select(Notification.user_id, Notification.title)).all())
    assert rows[patient.user_id] == "Cerrar sesión"
    assert rows[doctor.user_id] == "Log out"  # not chosen: the hospital's language (English)

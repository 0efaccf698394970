"""A user's own preferences: the language HMS speaks to them in."""

from __future__ import annotations

from sqlmodel import Session

from hms_app.db.models import User
from hms_app.services.core import audit
from hms_app.services.core.actor import Actor
from hms_app.services.core.errors import SessionExpired, ValidationError
from hms_app.services.core.language import LANGUAGES, _


def choose_language(*, session: Session, actor: Actor, language: object) -> str:
    """Remember ``language`` as the one the actor reads HMS in, on every device (audited).

    Raises:
        ValidationError: not a language HMS ships.
    """
    if not isinstance(actor, Actor):
        raise SessionExpired(_("Please log in first."))
    code = str(language or "").strip()
    if code not in LANGUAGES:
        raise ValidationError(_("Choose one of the languages in the list."))
    user = session.get(User, actor.user_id)
    if user.language != code:
        audit.record(session, actor, "user.language", entity_type="user", entity_id=actor.user_id,
                     detail=f"{user.language or 'not chosen'} -> {code}")
        user.language = code
        session.commit()
    return code

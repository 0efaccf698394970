"""A write request done once: the key its form carries, and the receipt that answers a repeat.

The server issues a key when a form opens (``new_request_key``); the state keeps it in a
backend-only var and hands it to the service with every submission of that form. The service
claims the key (``claim``) in its own transaction, after its permission check and before its
other rules: the first request goes on and writes, filling in its receipt (``fulfil``) before
it commits; a repeat (a double click, a retry after a lost answer) finds the receipt and
answers with the first request's result, writing nothing. A refused request rolls back with
its claim, so the form can be corrected and sent again with the same key.

Two requests with one key at once: on SQLite the second waits for the write lock; on
PostgreSQL its insert of the key waits for the first's commit. Either way it then finds the
receipt, or, if the first was refused, claims the key itself.

One table serves every such write, so the rule (whose key, which action, what a repeat
answers) is written once, here, rather than as a key column on each table a write touches.
"""

from __future__ import annotations

import re
import secrets

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from hms_app.db.models import RequestReceipt
from hms_app.db.types import utcnow
from hms_app.services.core.actor import Actor
from hms_app.services.core.errors import ValidationError
from hms_app.services.core.language import N_, _

_INSERT = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}
KEY_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,64}")
EXPIRED = N_("This form has expired; close it and open it again.")
"""Marked here, shown with ``_(receipts.EXPIRED)`` where a form refuses a stale key."""


def new_request_key() -> str:
    """A fresh key for one opened form: unguessable, and the only shape ``claim`` accepts."""
    return secrets.token_urlsafe(24)


def claim(session: Session, actor: Actor, *, key: str | None, action: str) -> RequestReceipt | None:
    """Claim ``key`` for this request of ``actor`` doing ``action``, or find the request that did.

    Args:
        key: the form's key; None for a caller with no form (a seed, a script): nothing is
            claimed and nothing repeats.

    Returns:
        None when this request is the first with the key (it goes on, and calls ``fulfil``
        before it commits); the earlier request's receipt when it repeats one that was done.

    Raises:
        ValidationError: the key is not one the server issues, or it was used by another
            user or for another action.
    """
    if key is None:
        return None
    if not isinstance(key, str) or not KEY_PATTERN.fullmatch(key):
        raise ValidationError(_(EXPIRED))
    insert = _INSERT[session.get_bind().dialect.name]
    table = RequestReceipt.__table__
    claimed = session.execute(
        insert(table).values(key=key, actor_id=actor.user_id, action=action, result="", created_at=utcnow())
        .on_conflict_do_nothing(index_elements=["key"]).returning(table.c.key)).first()
    if claimed is not None:
        return None
    earlier = session.execute(sa.select(RequestReceipt).where(RequestReceipt.key == key)
                              .execution_options(populate_existing=True)).scalar_one()
    if earlier.actor_id != actor.user_id or earlier.action != action or earlier.object_id is None:
        raise ValidationError(_(EXPIRED))
    return earlier


def fulfil(session: Session, *, key: str | None, object_id: int, result: str = "") -> None:
    """Note on the claimed receipt what the request made or changed, and its answer for a repeat."""
    if key is None:
        return
    session.execute(sa.update(RequestReceipt).where(RequestReceipt.key == key)
                    .values(object_id=object_id, result=result).execution_options(synchronize_session=False))

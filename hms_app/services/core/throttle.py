"""Failed attempts counted per client address, and the addresses refused for a while after too many.

A service asks ``check`` before an attempt (a login, a second-factor code, a registration, a
password change, an API token) and calls ``failed`` after one fails. Failures are counted in a
window that starts at the first one; the failure that reaches the kind's limit blocks the
address for the kind's block time (exactly one failure does, however many arrive at once), and
``check`` refuses it with ``TooManyAttempts`` until then; after a block, or past the window, the
count starts again. A refusal comes before anything of the attempt is looked at: it checks no
password and so counts toward no account's lockout. The block is audited once, when it starts;
refused attempts are not.

Only failures count (registrations count every attempt), because a ward is many users behind
one NAT address. An IPv6 address counts by its /64 network, which one subscriber usually holds
whole. Limits are read from ``settings`` at each call (``THROTTLE_LOGIN`` and the others).

With one worker the counts live in the database (table ``throttle``), updated by one
``INSERT ... ON CONFLICT DO UPDATE`` so that concurrent failures all count; with
``REFLEX_REDIS_URL`` set they live in Redis, updated by one Lua script, so every worker sees
them. ``now`` can be given to both, for tests.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from hms_app import settings
from hms_app.db.enums import AuditOutcome
from hms_app.db.models import Throttle
from hms_app.db.types import utcnow
from hms_app.services.core import audit
from hms_app.services.core.actor import Anonymous
from hms_app.services.core.errors import TooManyAttempts
from hms_app.services.core.language import N_, _, ngettext

_INSERT = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


class Kind(StrEnum):
    """What is attempted; each kind has its own counter and limit per address."""

    LOGIN = "login"
    """A password at login or a second-factor code: one counter for both."""
    REGISTER = "register"
    PASSWORD = "password"  # noqa: S105 - the name of a kind of attempt, not a secret
    """The current password when changing one's password."""
    API = "api"
    """A bearer token on the FHIR API."""

    @property
    def limit(self) -> settings.ThrottleLimit:
        return getattr(settings, f"THROTTLE_{self.name}")


_REFUSALS = {
    Kind.LOGIN: N_("Too many failed logins from your network. Wait {wait} and try again; if you have "
                   "forgotten your password, ask the front desk or an administrator to reset it."),
    Kind.REGISTER: N_("Too many registrations from your network. Wait {wait} and try again, or ask the front "
                      "desk to register you."),
    Kind.PASSWORD: N_("Too many wrong current passwords from your network. Wait {wait} and try again."),
    Kind.API: "Too many failed authentications from this address. Retry after {wait}.",  # FHIR output # i18n: not shown
}
"""What a blocked address is told; the FHIR API's answer, read by the client's developers, in English."""


def address_key(kind: Kind, address: str) -> str:
    """The counter's key: the kind and the address, an IPv6 address by its /64 network."""
    text = str(address or "").strip()
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        # Not an address (a test's made-up name, or none at all): counted as given.
        return f"{kind.value}|{text[:150]}"
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.version == 6:
        return f"{kind.value}|{ipaddress.ip_network(f'{ip}/64', strict=False)}"
    return f"{kind.value}|{ip}"


def _wait_text(seconds: int) -> str:
    """A wait in English, for the audit trail and the FHIR API."""
    minutes = math.ceil(seconds / 60)
    if seconds < 60:
        return f"{seconds} seconds" if seconds != 1 else "1 second"  # i18n: not shown
    return f"{minutes} minutes" if minutes != 1 else "1 minute"  # i18n: not shown


def _wait_shown(seconds: int) -> str:
    """A wait in the reader's language, for a refusal."""
    if seconds < 60:
        return ngettext("{n} second", "{n} seconds", seconds).format(n=seconds)
    minutes = math.ceil(seconds / 60)
    return ngettext("{n} minute", "{n} minutes", minutes).format(n=minutes)


@dataclass(frozen=True)
class Counted:
    """What ``failed`` found: the failures in the window, and whether this one started a block."""

    failures: int
    blocked_until: datetime | None
    block_started: bool


class Store(Protocol):
    def blocked_until(self, session: Session, key: str, now: datetime) -> datetime | None: ...

    def count(self, session: Session, key: str, limit: settings.ThrottleLimit, now: datetime) -> Counted: ...


class DatabaseStore:
    """Counts in the ``throttle`` table, in the caller's transaction (the caller commits)."""

    def blocked_until(self, session: Session, key: str, now: datetime) -> datetime | None:
        until = session.execute(sa.select(Throttle.blocked_until).where(Throttle.key == key)).scalar_one_or_none()
        return until if until is not None and until > now else None

    def count(self, session: Session, key: str, limit: settings.ThrottleLimit, now: datetime) -> Counted:
        table = Throttle.__table__
        block_until = now + timedelta(seconds=limit.block_seconds)
        moment = Throttle.blocked_until.type
        block_over = table.c.blocked_until <= now
        window_over = sa.or_(table.c.window_started_at <= now - timedelta(seconds=limit.window_seconds), block_over)
        failures = sa.case((window_over, 1), else_=table.c.failures + 1)
        insert = _INSERT[session.get_bind().dialect.name](Throttle)
        statement = insert.values(
            key=key, window_started_at=now, failures=1,
            blocked_until=block_until if limit.failures <= 1 else None,
        ).on_conflict_do_update(
            index_elements=["key"],
            # Every right-hand side reads the row as it was before this update, on both databases.
            set_={
                "window_started_at": sa.case((window_over, sa.literal(now, moment)), else_=table.c.window_started_at),
                "failures": failures,
                "blocked_until": sa.case(
                    (failures == limit.failures, sa.literal(block_until, moment)),
                    (block_over, None),
                    else_=table.c.blocked_until),
            },
        ).returning(table.c.failures, table.c.blocked_until)
        counted, until = session.execute(statement).one()
        return Counted(counted, until, counted == limit.failures)


# One script, so that concurrent failures from several workers all count: the fields are
# "start" (of the window), "failures" and "until" (of the block), times in milliseconds.
_REDIS_COUNT = """
local now, window, limit, block = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local start = tonumber(redis.call('HGET', KEYS[1], 'start') or '0')
local failures = tonumber(redis.call('HGET', KEYS[1], 'failures') or '0')
local blocked = tonumber(redis.call('HGET', KEYS[1], 'until') or '0')
if start + window <= now or (blocked > 0 and blocked <= now) then
  start = now
  failures = 0
  if blocked <= now then blocked = 0 end
end
failures = failures + 1
local started = 0
if failures == limit then
  blocked = now + block
  started = 1
end
redis.call('HSET', KEYS[1], 'start', start, 'failures', failures, 'until', blocked)
redis.call('PEXPIRE', KEYS[1], math.max(start + window, blocked) - now + 1000)
return {failures, blocked, started}
"""  # a Lua script # i18n: not shown


def _ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


def _moment(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


class RedisStore:
    """Counts in Redis hashes under ``prefix``, shared by every worker; the session is not used."""

    def __init__(self, client, prefix: str = settings.THROTTLE_REDIS_PREFIX) -> None:
        self.client = client
        self.prefix = prefix
        self._count = client.register_script(_REDIS_COUNT)

    def blocked_until(self, session: Session, key: str, now: datetime) -> datetime | None:
        until = int(self.client.hget(self.prefix + key, "until") or 0)
        return _moment(until) if until > _ms(now) else None

    def count(self, session: Session, key: str, limit: settings.ThrottleLimit, now: datetime) -> Counted:
        failures, until, started = self._count(keys=[self.prefix + key], args=[
            _ms(now), limit.window_seconds * 1000, limit.failures, limit.block_seconds * 1000])
        return Counted(int(failures), _moment(int(until)) if int(until) else None, bool(started))


_store: Store | None = None


def store() -> Store:
    """Redis when ``REFLEX_REDIS_URL`` is set (several workers share it), else the database."""
    global _store
    if _store is None:
        if settings.REDIS_URL:
            import redis

            _store = RedisStore(redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=5))
        else:
            _store = DatabaseStore()
    return _store


def use_store(chosen: Store | None) -> None:
    """Replace the store (tests); None goes back to choosing by the settings."""
    global _store
    _store = chosen


def check(session: Session, kind: Kind, address: str, *, now: datetime | None = None) -> None:
    """Refuse an attempt from a blocked address, before anything of the attempt is looked at.

    Raises:
        TooManyAttempts: the address is blocked for this kind; ``retry_after`` in whole seconds.
    """
    now = now or utcnow()
    until = store().blocked_until(session, address_key(kind, address), now)
    if until is None:
        return
    wait = max(1, math.ceil((until - now).total_seconds()))
    if kind is Kind.API:
        raise TooManyAttempts(_REFUSALS[kind].format(wait=_wait_text(wait)), retry_after=wait)
    raise TooManyAttempts(_(_REFUSALS[kind]).format(wait=_wait_shown(wait)), retry_after=wait)


def failed(session: Session, kind: Kind, address: str, *, now: datetime | None = None) -> Counted:
    """Count one failed attempt from ``address``; audit the block if this failure starts one.

    Writes in the caller's transaction (the counter in the database store, the audit row in
    both): the caller commits.
    """
    now = now or utcnow()
    limit = kind.limit
    counted = store().count(session, address_key(kind, address), limit, now)
    if counted.block_started:
        audit.record(session, Anonymous(str(address or "")[:64]), "throttle.block", entity_type="throttle",
                     entity_id=kind.value, outcome=AuditOutcome.DENIED,
                     detail=f"{counted.failures} failed {kind.value} attempts from this address within "  # i18n: not shown
                            f"{_wait_text(limit.window_seconds)}: refused for {_wait_text(limit.block_seconds)}")
    return counted


def attempt(session: Session, kind: Kind, address: str, *, now: datetime | None = None) -> None:
    """``check``, then count this attempt whatever its outcome, and commit: for the kinds where every
    attempt counts (registrations). Call it first, with nothing of the caller's pending.

    Raises:
        TooManyAttempts: the address is blocked for this kind (nothing is counted).
    """
    now = now or utcnow()
    check(session, kind, address, now=now)
    failed(session, kind, address, now=now)
    session.commit()

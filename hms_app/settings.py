"""Every setting HMS reads from the environment, in one place (STYLE.md rule 9).

Nothing else in the project reads ``os.environ``; it imports the names below.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("HMS_DATA_DIR", PROJECT_ROOT / "data")).resolve()

DATABASE_URL = os.environ.get("HMS_DATABASE_URL") or f"sqlite:///{DATA_DIR / 'hms.db'}"
"""SQLAlchemy URL of the database; SQLite under ``data/`` unless set."""

PORT = int(os.environ.get("HMS_PORT", "3000"))
PUBLIC_URL_SET = bool(os.environ.get("HMS_PUBLIC_URL"))
PUBLIC_URL = (os.environ.get("HMS_PUBLIC_URL") or f"http://localhost:{PORT}").rstrip("/")
"""The one address browsers use: the websocket and CORS accept only this origin."""
LOCAL_ORIGINS = [f"http://{host}:{PORT}" for host in ("localhost", "127.0.0.1", "[::1]")]
ALLOWED_ORIGINS = [PUBLIC_URL] if PUBLIC_URL_SET else LOCAL_ORIGINS
"""The origins browsers may use: ``HMS_PUBLIC_URL`` alone when it is set; unset (a local run),
every loopback name at ``HMS_PORT``. A browser anywhere else gets a page naming the address."""

REDIS_URL = os.environ.get("REFLEX_REDIS_URL", "")

HOSPITAL_NAME = os.environ.get("HMS_HOSPITAL_NAME", "St. Example General Hospital")
CURRENCY = os.environ.get("HMS_CURRENCY", "GBP")
"""The currency every amount is in (printed on invoices); amounts are integer cents of it."""
TIMEZONE = ZoneInfo(os.environ.get("HMS_TIMEZONE", "Europe/London"))


def _locale(tag: str) -> Locale:
    """The Babel locale of a tag like ``en-GB``; an unknown one stops the start with a clear message."""
    try:
        return Locale.parse(tag.strip().replace("-", "_"))
    except (UnknownLocaleError, ValueError, TypeError):
        raise SystemExit(f"HMS_LOCALE={tag!r} is not a locale Babel knows: set it to a tag like en-GB, "
                         "en-US or de-DE.") from None


LOCALE = _locale(os.environ.get("HMS_LOCALE") or "en-GB")
"""How every date, time, number and amount is written (``hms_app/services/core/localtime.py``, ``numbers.py``)."""


def use_hospital(*, name: str, timezone: str, locale: str, currency: str) -> None:
    """Make the hospital's own name, time zone, locale and currency the ones HMS uses.

    The ``hospital`` row that ``hms init`` writes is the source once it exists; the app and the
    ``hms`` command load it at start (``services/administration/hospital.py``), before the pages
    compile. The environment's values above stay the defaults of a database without the row (the
    demo). Every reader takes ``settings.X`` at call time, so the values set here take effect.
    """
    global HOSPITAL_NAME, TIMEZONE, LOCALE, CURRENCY
    HOSPITAL_NAME, TIMEZONE, LOCALE, CURRENCY = name, ZoneInfo(timezone), _locale(locale), currency

DATA_KEY = os.environ.get("HMS_DATA_KEY", "")
"""Fernet key(s) for clinical data, comma-separated, newest first; unset means data/hms.key."""

FILES_DIR = DATA_DIR / "files"
"""Uploaded files, encrypted, under generated names; never under Reflex's public upload folder."""

MAX_UPLOAD_BYTES = 10 * 1024 * 1024

BCRYPT_ROUNDS = int(os.environ.get("HMS_BCRYPT_ROUNDS", "12"))
"""bcrypt cost. 12 in every deployment; the test suite lowers it for speed, never below 4."""

SESSION_ABSOLUTE_SECONDS = 8 * 3600
SESSION_IDLE_SECONDS = 30 * 60
LOCKOUT_THRESHOLD = 5
LOCKOUT_SECONDS = 15 * 60

WORKERS = int(os.environ.get("HMS_WORKERS") or os.environ.get("GRANIAN_WORKERS") or "1")
"""Backend worker processes behind the one port; more than one needs ``REFLEX_REDIS_URL``."""

DB_POOL_SIZE = int(os.environ.get("HMS_DB_POOL_SIZE", "5"))
"""PostgreSQL connections each worker keeps (as many again in a burst); shrunk at start so that
every worker's pool and ``DB_HEADROOM`` fit under the server's limit (``hms_app/db/postgres.py``)."""
DB_HEADROOM = int(os.environ.get("HMS_DB_HEADROOM", "10"))
"""PostgreSQL connections left free for migrations, ``hms`` commands, psql, backups and tests."""
SQLITE_BUSY_TIMEOUT_MS = 15_000

SMTP_URL = os.environ.get("HMS_SMTP_URL", "")
"""Where e-mail goes: ``smtp://[user:password@]host[:port][?from=address]`` (or ``smtp+starttls://``,
``smtps://``). Unset means e-mail is off: nothing is queued, and the admin dashboard says so."""
MAIL_SENDER = os.environ.get("HMS_MAIL_SENDER", "app")
"""Who sends the outbox: ``app`` (every backend worker, every ``MAIL_INTERVAL`` seconds, beside
serving pages) or ``worker`` (only ``hms worker`` processes run by the deployer)."""
MAIL_INTERVAL = float(os.environ.get("HMS_MAIL_INTERVAL", "30"))
"""Seconds between two rounds of sending, in the app and in ``hms worker`` by default."""

TRUSTED_PROXY_HOPS = int(os.environ.get("HMS_TRUSTED_PROXY_HOPS", "0"))
"""How many reverse proxies stand in front of the app; 0 means X-Forwarded-For is ignored."""

# --- Limits on events and uploads per connection and per address (hms_app/address_limits.py,
# hms_app/event_limits.py, hms_app/upload_gate.py) ---
ADDRESS_RATE = float(os.environ.get("HMS_ADDRESS_RATE") or "200")
"""Events and uploads per second that one client address may sustain, all its connections
together (a ward behind one NAT address is many users: keep it well above one tab's rate)."""
ADDRESS_BURST = float(os.environ.get("HMS_ADDRESS_BURST") or "500")
"""Events and uploads one address may send at once above ``ADDRESS_RATE``."""
UPLOAD_RATE = float(os.environ.get("HMS_UPLOAD_RATE") or "1")
"""Uploads per second that one client address may sustain (``hms_app/upload_gate.py``), beside
``ADDRESS_RATE``: each refused upload writes an audit row, so this bounds a refusal storm's rows."""
UPLOAD_BURST = float(os.environ.get("HMS_UPLOAD_BURST") or "30")
"""Uploads one address may send at once above ``UPLOAD_RATE``."""
EVENT_RATE = float(os.environ.get("HMS_EVENT_RATE") or "20")
"""Events per second one websocket connection (a browser tab) may sustain; more are dropped."""
EVENT_BURST = float(os.environ.get("HMS_EVENT_BURST") or "50")
"""Events one connection may send at once above ``EVENT_RATE``. A connection that goes on sending
after this many more have been dropped is closed, and its address may not connect again for
``EVENT_BURST / EVENT_RATE`` seconds, the time a connection's allowance takes to fill again."""
EVENT_QUEUE = int(os.environ.get("HMS_EVENT_QUEUE") or "100")
"""Events of one connection that may wait or run at once; more are dropped."""
EVENT_MAX_BYTES = int(os.environ.get("HMS_EVENT_MAX_BYTES") or str(1024 * 1024))
"""The longest websocket packet that is parsed at all; a longer one is refused unread."""
VISITOR_REFUSAL_WINDOW = float(os.environ.get("HMS_VISITOR_REFUSAL_WINDOW") or "60")
"""Seconds over which the refusals of one connection with no session are audited as one row with
a count, after the first, which is audited at once; 0 audits every refusal on its own."""

# --- Throttling of failed attempts per address (hms_app/services/core/throttle.py) ---
class ThrottleLimit(NamedTuple):
    """``failures`` within ``window_seconds`` from one address block it for ``block_seconds``."""

    failures: int
    window_seconds: int
    block_seconds: int


def _throttle_limit(name: str, default: str) -> ThrottleLimit:
    """``FAILURES/WINDOW/BLOCK`` (a count, then two numbers of seconds) from ``name``; a bad value
    stops the start with a clear message."""
    text = os.environ.get(name) or default
    try:
        limit = ThrottleLimit(*(int(part) for part in text.split("/")))
    except (TypeError, ValueError):
        limit = None
    if limit is None or min(limit) < 1:
        raise SystemExit(f"{name}={text!r} is not a limit: write FAILURES/WINDOW/BLOCK in whole numbers "
                         f"above 0, failures then seconds, like {default}.")
    return limit


# A ward or a clinic is many users behind one NAT address: only failures count (except for
# registrations), and each limit is far above what honest typing produces.
THROTTLE_LOGIN = _throttle_limit("HMS_THROTTLE_LOGIN", "30/900/900")
"""Failed logins and second-factor codes together, per address: 30 in 15 minutes block the address
for 15 minutes. The account lockout (``LOCKOUT_THRESHOLD``) still counts per account below it."""
THROTTLE_REGISTER = _throttle_limit("HMS_THROTTLE_REGISTER", "20/3600/3600")
"""Registrations per address, every attempt counted (a new account costs nothing to refuse later):
20 in an hour block registering from that address for an hour."""
THROTTLE_PASSWORD = _throttle_limit("HMS_THROTTLE_PASSWORD", "10/900/900")
"""Wrong current passwords when changing one's password, per address: 10 in 15 minutes block 15 minutes."""
THROTTLE_API = _throttle_limit("HMS_THROTTLE_API", "20/60/300")
"""Failed FHIR API authentications per address: 20 in a minute answer 429 for 5 minutes."""
THROTTLE_REDIS_PREFIX = "hms:throttle:"
"""Where the counts live in Redis when ``REFLEX_REDIS_URL`` is set (in the database otherwise)."""


# --- Accounts' email addresses (hms_app/services/core/emails.py) ---
EMAIL_CONFIRM_HOURS = float(os.environ.get("HMS_EMAIL_CONFIRM_HOURS", "48"))
"""How long a new account's confirmation link works (e-mail on). Registering the same address
again before it is confirmed sends a new link and ends the old one."""

# --- The session cookie (hms_app/state/auth.py, hms_app/session_cookie.py) ---
SESSION_COOKIE_SECURE = PUBLIC_URL.startswith("https://")
"""The session cookie is ``Secure`` (sent over https only) when ``HMS_PUBLIC_URL`` is https."""
SESSION_COOKIE_NAME = "__Host-hms_session" if SESSION_COOKIE_SECURE else "hms_session"
"""Behind https the ``__Host-`` prefix: browsers keep such a cookie only when it is ``Secure``,
has ``Path=/`` and no ``Domain``, so neither a plain-http page nor another host under the same
domain can set or shadow it. A plain-http address (a local run) cannot carry the prefix."""
SESSION_EXCHANGE_SECONDS = int(os.environ.get("HMS_SESSION_EXCHANGE_SECONDS", "30"))
"""How long the one-time code lives that a tab trades at ``/api/session`` for the session cookie
just after login (``hms_app/session_cookie.py``)."""

# --- Speed (issue 18): the tab's resolved session and the role permissions kept in memory
# (hms_app/state/auth.py, hms_app/services/administration/permissions.py) ---
SESSION_CACHE_SECONDS = max(0, min(60, int(os.environ.get("HMS_SESSION_CACHE_SECONDS", "60"))))
"""How long a tab may act on its resolved session without reading the session row again: at most
60 s (the idle clock is touched once a minute), and never past the session's idle or absolute
expiry as the row gave them. A logout, deactivation, password or second-factor reset, or a change
of the role's permissions ends it at once (``hms_app/state/live.py``: the session epochs). 0 resolves
the session at every event."""

# --- Speed (issue 18): the audit append (hms_app/services/core/audit.py) ---
AUDIT_MAX_LANES = 64
"""Lanes 0 to 63 are the only ones a row may claim: ``hms verify-audit`` reports any other."""
AUDIT_LANES = max(1, min(AUDIT_MAX_LANES, int(os.environ.get("HMS_AUDIT_LANES", "16"))))
"""Independent hash chains ("lanes") of the audit trail on PostgreSQL, each behind its own advisory
lock: up to this many audited transactions append at once instead of one at a time. 1 is the one
global chain of before. SQLite has one writer at a time anyway and always appends to lane 0.
Lowering it later is safe: rows already in higher lanes stay valid, and no new ones go there."""

"""Password hashing (bcrypt, cost 12 in production) and the password policy."""

from __future__ import annotations

import os
import subprocess
import sys

import bcrypt
import pytest

from hms_app import settings
from hms_app.services.core import passwords
from hms_app.services.core.errors import ValidationError

EMAIL = "someone@hms.example"


def test_production_cost_is_12_when_the_environment_does_not_lower_it():
    env = {k: v for k, v in os.environ.items() if k != "HMS_BCRYPT_ROUNDS"}
    script = (
        "from hms_app import settings\n"
        "from hms_app.services.core import passwords\n"
        "print(settings.BCRYPT_ROUNDS)\n"
        "print(passwords.hash_password('Long-enough-password'))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                            check=True, timeout=60)
    rounds, password_hash = result.stdout.split()
    assert rounds == "12"
    assert password_hash.startswith("$2b$12$")
    assert bcrypt.checkpw(b"Long-enough-password", password_hash.encode())


def test_tests_run_with_cost_4_and_hashes_follow_the_setting():
    assert settings.BCRYPT_ROUNDS == 4
    assert passwords.hash_password("Long-enough-password").startswith("$2b$04$")


def test_cost_never_drops_below_4(monkeypatch):
    monkeypatch.setattr(settings, "BCRYPT_ROUNDS", 2)
    assert passwords.hash_password("Long-enough-password").startswith("$2b$04$")


def test_each_hash_has_its_own_salt():
    first = passwords.hash_password("Long-enough-password")
    second = passwords.hash_password("Long-enough-password")
    assert first != second
    assert passwords.verify_password("Long-enough-password", first)
    assert passwords.verify_password("Long-enough-password", second)


@pytest.mark.parametrize(
    ("candidate", "stored"),
    [
        ("Wrong-password-123", "hash"),
        ("Long-enough-password", None),
        ("Long-enough-password", ""),
        ("Long-enough-password", "not a bcrypt hash"),
    ],
)
def test_verify_password_says_no_without_raising(candidate, stored):
    stored_hash = passwords.hash_password("Long-enough-password") if stored == "hash" else stored
    assert passwords.verify_password(candidate, stored_hash) is False


def test_unknown_account_check_spends_a_hash_at_the_configured_cost(monkeypatch):
    calls = []
    real = bcrypt.checkpw
    monkeypatch.setattr(bcrypt, "checkpw", lambda pw, h: calls.append(h) or real(pw, h))
    assert passwords.verify_password("Long-enough-password", None) is False
    assert len(calls) == 1
    assert calls[0].startswith(f"$2b${max(4, settings.BCRYPT_ROUNDS):02d}$".encode())


@pytest.mark.parametrize(
    "password",
    [
        "Tencharsok",  # exactly 10
        "x" * 72,  # exactly 72 bytes
        "é" * 36,  # 72 bytes in UTF-8
        "Pässwörter-sind-gut",
        "\U0001f600" * 18,  # 18 emoji, 72 bytes
        "someone.else",  # like the email, but not it
    ],
)
def test_policy_accepts(password):
    passwords.check_password_policy(password, email=EMAIL)


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("", "at least 10"),
        ("Nine-char", "at least 10"),
        ("x" * 73, "at most 72 bytes"),
        ("é" * 37, "at most 72 bytes"),  # 37 characters, 74 bytes
        ("\U0001f600" * 19, "at most 72 bytes"),  # 19 characters, 76 bytes
        (EMAIL, "email"),
        ("  SOMEONE@HMS.Example ", "email"),
    ],
)
def test_policy_refuses(password, message):
    with pytest.raises(ValidationError, match=message):
        passwords.check_password_policy(password, email=EMAIL)


def test_policy_refuses_the_local_part_of_the_email():
    with pytest.raises(ValidationError, match="email"):
        passwords.check_password_policy("Long.Local.Part", email="long.local.part@hms.example")


def test_policy_refuses_non_text():
    with pytest.raises(ValidationError):
        passwords.check_password_policy(12345678901, email=EMAIL)



def test_one_hash_for_the_random_secrets_the_server_issues():
    digest = passwords.hash_token("session-token-abc")
    # SHA-256 in hex, as the session, API token, challenge and recovery code hashes already stored are.
    assert digest == "bb7bc9c17f37dfedb0a4b3b7e53d6dff8688c54ca6ae8a3ef5d2e0884de7248a"
    assert digest == passwords.hash_token("session-token-abc") != passwords.hash_token("session-token-abd")
    assert "session-token-abc" not in digest

"""``live.SessionEpochs``: the counters a tab compares before acting on its kept session.

Moved in the thread that committed a ``sessions`` or ``permissions`` change, before the
service returns; read at every event. In process memory with one worker, in Redis with
several: a move by one worker is read by another at once.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis

from hms_app import settings
from hms_app.services.core.events import PERMISSIONS, SESSIONS, Change
from hms_app.state import live

REDIS_URL = "redis://127.0.0.1:6379/0"


def _read(epochs: live.SessionEpochs, user_id: int, role: str) -> str:
    # On a thread of its own: a browser journey's Playwright may keep an event loop on this one.
    with ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(asyncio.run, epochs.read(user_id, role)).result()


def test_a_users_move_changes_that_users_epoch_alone():
    epochs = live.SessionEpochs()
    before = {(u, r): _read(epochs, u, r) for u, r in [(7, "patient"), (8, "patient"), (7, "doctor")]}
    epochs.move(user_ids=frozenset({7}))
    assert _read(epochs, 7, "patient") != before[(7, "patient")]
    assert _read(epochs, 7, "doctor") != before[(7, "doctor")]
    assert _read(epochs, 8, "patient") == before[(8, "patient")]


def test_a_roles_move_changes_the_epoch_of_its_users_alone():
    epochs = live.SessionEpochs()
    patient, doctor = _read(epochs, 7, "patient"), _read(epochs, 9, "doctor")
    epochs.move(roles=frozenset({"patient"}))
    assert _read(epochs, 7, "patient") != patient
    assert _read(epochs, 9, "doctor") == doctor


def test_a_new_process_never_reads_an_epoch_of_the_old_one():
    assert _read(live.SessionEpochs(), 7, "patient") != _read(live.SessionEpochs(), 7, "patient")


def test_the_hubs_listener_moves_the_epochs_before_it_returns():
    """No event loop is bound here: the move does not wait for the push."""
    user, role = 424242, "lab"
    before = _read(live.epochs, user, role)
    live.hub.on_change(Change(SESSIONS, user_ids=frozenset({user})))
    after_user = _read(live.epochs, user, role)
    live.hub.on_change(Change(PERMISSIONS, roles=frozenset({role})))
    assert len({before, after_user, _read(live.epochs, user, role)}) == 3


def test_with_redis_a_move_by_one_worker_is_read_by_another(monkeypatch):
    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.RedisError as error:
        pytest.fail(f"Redis is needed at {REDIS_URL}: {error}")
    monkeypatch.setattr(settings, "REDIS_URL", REDIS_URL)
    mover, reader = live.SessionEpochs(), live.SessionEpochs()  # as two worker processes
    user = 900_000 + id(mover) % 100_000

    async def run() -> list[str]:
        # One event loop for the readers' async Redis clients, as in a worker.
        seen = [await reader.read(user, "pharmacy"), await mover.read(user, "pharmacy")]
        await asyncio.to_thread(mover.move, user_ids=frozenset({user}))
        seen.append(await reader.read(user, "pharmacy"))
        await asyncio.to_thread(mover.move, roles=frozenset({"pharmacy"}))
        seen.append(await reader.read(user, "pharmacy"))
        return seen

    with ThreadPoolExecutor(max_workers=1) as thread:
        before, same, moved, role_moved = thread.submit(asyncio.run, run()).result()
    assert same == before
    assert len({before, moved, role_moved}) == 3

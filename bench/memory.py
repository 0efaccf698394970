"""Memory per connected client: the backend's resident memory with 0, 50 and 200 logged-in tabs.

Starts the real app (one worker in memory on SQLite, and two workers on PostgreSQL sharing
state through Redis) and opens tabs as ``bench.ws_load`` does: each connects over the
websocket, logs in as a demo user of its role and loads its role's dashboard, so the server
holds what a real tab makes it hold (the socket, the tab's state with the dashboard's data,
its rooms in the live hub). After each step it waits for the workers to settle and sums the
resident memory (VmRSS in ``/proc``) of the backend worker processes; with Redis it also reads
Redis's ``used_memory``, where the tabs' state lives in that setup. Prints MB per client, the
growth from no tabs divided by the number of tabs.

    .venv/bin/python -m bench.memory --clients 50,200
"""

from __future__ import annotations

import argparse
import asyncio
import gc

import redis

from bench.harness import (
    REDIS_URL,
    machine_note,
    rss_mb,
    running_app,
    setups_of,
    table,
    worker_pids,
)
from bench.ws_load import HOME, BenchSocket, demo_accounts, open_tabs

SETTLE_SECONDS = 3.0


def _redis_mb() -> float:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        return client.info("memory")["used_memory"] / 2**20
    finally:
        client.close()


async def _settled(server, with_redis: bool) -> tuple[float, float | None]:
    gc.collect()
    await asyncio.sleep(SETTLE_SECONDS)
    return rss_mb(worker_pids(server)), (_redis_mb() if with_redis else None)


async def measure(server, counts: list[int], with_redis: bool, login_concurrency: int) -> list[tuple[int, float, float | None]]:
    emails, _ = demo_accounts(server.database_url)
    points = [(0, *await _settled(server, with_redis))]
    clients: list[BenchSocket] = []
    try:
        for count in counts:
            more, _logins = await open_tabs(server.url, count - len(clients), emails, login_concurrency,
                                        first=len(clients))
            for client in more:
                await client.page_load(HOME[client.role])
            clients += more
            points.append((count, *await _settled(server, with_redis)))
            print(f"# {count} tabs: {points[-1][1]:.0f} MB", flush=True)
    finally:
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
    return points


def report(results: list[tuple[str, int, list[tuple[int, float, float | None]]]]) -> str:
    rows = []
    for label, workers, points in results:
        _, base_rss, base_redis = points[0]
        for count, rss, redis_mb in points:
            per_client = f"{(rss - base_rss) / count:.2f}" if count else ""
            redis_cell = "" if redis_mb is None else f"{redis_mb:.1f}"
            redis_per = "" if redis_mb is None or not count else f"{(redis_mb - base_redis) / count:.3f}"
            rows.append((label, workers, count, f"{rss:.0f}", per_client, redis_cell, redis_per))
    return table(("setup", "workers", "tabs", "workers' RSS MB", "MB per tab", "Redis used MB", "Redis MB per tab"),
                 rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", default="50,200", help="numbers of tabs, comma-separated, rising")
    parser.add_argument("--setups", default="one,two", help="one (SQLite, memory), two (PostgreSQL, Redis)")
    parser.add_argument("--login-concurrency", type=int, default=8, help="tabs logging in at once")
    args = parser.parse_args()
    counts = sorted({int(c) for c in args.clients.split(",")})
    results = []
    for setup in setups_of(args.setups):
        with running_app(setup) as server:
            points = asyncio.run(measure(server, counts, setup.redis, args.login_concurrency))
            results.append((setup.label, setup.workers, points))
    print(report(results))
    print(f"\n{machine_note()}")


if __name__ == "__main__":
    main()

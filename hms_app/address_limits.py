"""Token buckets: how many events (or uploads) a connection or a client address may send.

A bucket holds up to ``burst`` tokens and refills at ``rate`` tokens a second; each event takes
one. Events beyond are refused without being looked at. Buckets live in this worker's memory:
a limit per address holds across the reconnects of one client, and with several workers each
enforces it on its own share of the connections.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field

from hms_app import settings


@dataclass
class TokenBucket:
    rate: float
    burst: float
    tokens: float = field(default=-1.0)
    updated: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        if self.tokens < 0:
            self.tokens = self.burst

    def take(self, cost: float = 1.0, now: float | None = None) -> bool:
        """Take ``cost`` tokens if the bucket holds them; False (and nothing taken) if not."""
        now = time.monotonic() if now is None else now
        self.tokens = min(self.burst, self.tokens + max(0.0, now - self.updated) * self.rate)
        self.updated = max(now, self.updated)
        if self.tokens < cost:
            return False
        self.tokens -= cost
        return True


class BucketsByKey:
    """One bucket per key (a client address), the least recently used forgotten past ``size`` keys.

    A forgotten key starts again with a full bucket, so ``size`` must exceed the number of
    addresses that can be active within the time a bucket takes to refill.
    """

    def __init__(self, rate: float, burst: float, size: int = 10_000) -> None:
        self.rate, self.burst, self.size = rate, burst, size
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def take(self, key: str, cost: float = 1.0, now: float | None = None) -> bool:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self.rate, self.burst,
                                                      updated=time.monotonic() if now is None else now)
            while len(self._buckets) > self.size:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        return bucket.take(cost, now)

    def clear(self) -> None:
        self._buckets.clear()


ADDRESSES = BucketsByKey(settings.ADDRESS_RATE, settings.ADDRESS_BURST)
"""This worker's buckets per client address, shared by websocket events and uploads."""

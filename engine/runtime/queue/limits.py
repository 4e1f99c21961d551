"""Rate limits for the work queue: a global token bucket and per-key exponential backoff.

Both are plain objects over an explicit `now` (seconds on the event loop's clock), so the
arithmetic is testable without a loop; only `TokenBucket.acquire` touches asyncio.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Hashable


class TokenBucket:
    """A token bucket: `burst` tokens at most, refilled continuously at `qps` per second.

    Guarantees: over any window of `t` seconds at most `burst + qps * t` reservations are
    granted without delay; reservations are served in the order they are made (a reservation
    may drive the balance negative, and later callers wait for the debt to refill, as Go's
    `rate.Limiter.Reserve` does).
    Assumptions: `now` never goes backwards between calls (the event loop's clock).
    Errors: `ValueError` for `qps <= 0` or `burst < 1`.
    """

    def __init__(self, *, qps: float, burst: int) -> None:
        if qps <= 0:
            raise ValueError(f"token bucket qps must be > 0, got {qps!r}")
        if burst < 1:
            raise ValueError(f"token bucket burst must be >= 1, got {burst!r}")
        self.qps = qps
        self.burst = burst
        self._tokens = float(burst)  # may go negative: reserved, not yet refilled
        self._updated: float | None = None

    def _refill(self, now: float) -> None:
        if self._updated is None:
            self._updated = now
            return
        elapsed = max(0.0, now - self._updated)
        self._tokens = min(float(self.burst), self._tokens + elapsed * self.qps)
        self._updated = max(self._updated, now)

    def delay(self, now: float) -> float:
        """Seconds from `now` until one token would be available; reserves nothing."""
        self._refill(now)
        if self._tokens >= 1.0:
            return 0.0
        return (1.0 - self._tokens) / self.qps

    def reserve(self, now: float) -> float:
        """Take one token and return how long the caller must wait before using it."""
        wait = self.delay(now)
        self._tokens -= 1.0
        return wait

    async def acquire(self) -> None:
        """Wait, on the running loop's clock, until a reserved token is usable."""
        loop = asyncio.get_running_loop()
        wait = self.reserve(loop.time())
        if wait > 0:
            await asyncio.sleep(wait)


def backoff_ceiling(*, base: float, cap: float, failures: int) -> float:
    """The largest delay after `failures` earlier failures: `min(cap, base * 2**failures)`."""
    if failures >= 64:  # 2**64 * any sane base is past every cap; avoid float overflow
        return cap
    return min(cap, base * (2.0**failures))


class KeyedBackoff:
    """Per-key exponential backoff with full jitter (5 ms doubling up to a cap, by default).

    `next_delay(key)` counts one failure of `key` and returns a delay drawn uniformly from
    `[0, min(cap, base * 2**n)]`, `n` being the failures counted before this one. The draws
    come from the injected `rng`, so a seeded source reproduces them (replay).
    `forget(key)` resets the count (after a success or a terminal error).
    Errors: `ValueError` when `base <= 0` or `cap < base`.
    """

    def __init__(self, *, base: float, cap: float, rng: random.Random) -> None:
        if base <= 0:
            raise ValueError(f"backoff base must be > 0 seconds, got {base!r}")
        if cap < base:
            raise ValueError(f"backoff cap ({cap!r} s) must be >= base ({base!r} s)")
        self.base = base
        self.cap = cap
        self._rng = rng
        self._failures: dict[Hashable, int] = {}

    def next_delay(self, key: Hashable) -> float:
        """Count a failure of `key`; return the jittered delay before its next attempt."""
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        ceiling = backoff_ceiling(base=self.base, cap=self.cap, failures=failures)
        return self._rng.uniform(0.0, ceiling)

    def failures(self, key: Hashable) -> int:
        """How many failures of `key` are counted since it was last forgotten."""
        return self._failures.get(key, 0)

    def forget(self, key: Hashable) -> None:
        """Reset the failure count of `key`; a key never counted is ignored."""
        self._failures.pop(key, None)

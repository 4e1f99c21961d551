"""Retry delays: exponential with full jitter, per key, capped, reproducible from the key;
and the server's Retry-After, read as RFC 9110 says and capped.

Pure: the jitter of attempt n of key k is drawn from sha256(k#n), so the live run and a
replay compute the same delays, and two keys do not retry in lockstep.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """How retries of one effect key are spaced.

    `base` and `cap` (seconds) default to client-go's per-item limiter (5 ms, 1,000 s);
    `max_attempts` is the number of calls allowed under one key before the runner gives up.
    """

    base: float = 0.005
    cap: float = 1000.0
    max_attempts: int = 20

    def __post_init__(self) -> None:
        if not 0 < self.base <= self.cap:
            raise ValueError(f"backoff needs 0 < base <= cap, got base={self.base} cap={self.cap}")
        if self.max_attempts < 1:
            raise ValueError(f"backoff needs max_attempts >= 1, got {self.max_attempts}")


DEFAULT_BACKOFF = BackoffPolicy()


def ceiling(attempt: int, policy: BackoffPolicy) -> float:
    """The largest delay after failed attempt `attempt` (1-based): base·2^(attempt-1), capped."""
    if attempt < 1:
        raise ValueError(f"attempts count from 1, got {attempt}")
    # 2**1100 overflows a float; every exponent past the cap gives the cap anyway
    exponent = min(attempt - 1, 1023)
    return min(policy.cap, policy.base * 2.0**exponent)


def jitter(key: str, attempt: int) -> float:
    """A number in [0, 1) fixed by (key, attempt): the seeded source of the full jitter."""
    digest = hashlib.sha256(f"{key}#{attempt}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def next_delay(key: str, attempt: int, policy: BackoffPolicy) -> float:
    """Seconds to wait after failed attempt `attempt` of `key`: uniform in [0, ceiling)."""
    return ceiling(attempt, policy) * jitter(key, attempt)


class Backoff:
    """An iterator of the delays of one key, like kube-rs's backoff: `next()` gives the
    delay after each further failure, `reset()` starts over (after a success). It stops
    once `policy.max_attempts` delays were handed out."""

    __slots__ = ("_attempt", "_key", "_policy")

    def __init__(self, key: str, policy: BackoffPolicy) -> None:
        self._key = key
        self._policy = policy
        self._attempt = 0

    def __iter__(self) -> Backoff:
        return self

    def __next__(self) -> float:
        if self._attempt >= self._policy.max_attempts:
            raise StopIteration
        self._attempt += 1
        return next_delay(self._key, self._attempt, self._policy)

    def reset(self) -> None:
        """Start again from the first delay."""
        self._attempt = 0


RETRY_AFTER_CAP = 60.0
"""The longest wait a server's Retry-After is honoured for, by default (seconds)."""


def retry_after_seconds(
    value: str | None, *, now: datetime, cap: float = RETRY_AFTER_CAP
) -> float | None:
    """The wait a ``Retry-After`` header asks for, capped at `cap`; None when absent or
    unreadable (RFC 9110 §10.2.3).

    The value is either delay-seconds (one or more digits: ``"120"``) or an HTTP-date
    (``"Wed, 21 Oct 2015 07:28:00 GMT"``, or the obsolete RFC 850 and asctime forms),
    read relative to `now` (timezone-aware). A date in the past gives 0; so does a
    ``"0"``. Anything else (a negative or fractional number, words) is unreadable: the
    caller's own backoff applies.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isascii() and text.isdigit():
        return min(float(text), cap)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)  # an HTTP-date is always GMT (asctime has no zone)
    return min(max((when - now).total_seconds(), 0.0), cap)

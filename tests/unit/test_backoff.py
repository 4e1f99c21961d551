"""Backoff: exponential ceilings with full jitter, capped, reset, and reproducible; the
server's Retry-After read as RFC 9110 says, capped."""

from __future__ import annotations

import itertools
import statistics
from datetime import UTC, datetime

import pytest

from engine.effects import Backoff, BackoffPolicy, ceiling, jitter, next_delay
from engine.effects.backoff import RETRY_AFTER_CAP, retry_after_seconds
from engine.watchers.backoff import retry_after_seconds as watch_retry_after

POLICY = BackoffPolicy(base=0.005, cap=1000.0, max_attempts=30)


def test_defaults_match_the_client_go_per_item_limiter() -> None:
    assert (BackoffPolicy().base, BackoffPolicy().cap) == (0.005, 1000.0)


def test_ceilings_double_until_the_cap() -> None:
    ceilings = [ceiling(n, POLICY) for n in range(1, 30)]
    assert ceilings[:3] == [0.005, 0.01, 0.02]
    assert all(b >= a for a, b in itertools.pairwise(ceilings))
    assert max(ceilings) == 1000.0
    assert ceiling(5000, POLICY) == 1000.0


def test_every_delay_is_within_zero_and_its_ceiling() -> None:
    for n in range(1, 30):
        for key in ("a", "b", "c"):
            assert 0 <= next_delay(key, n, POLICY) < ceiling(n, POLICY)


def test_delays_grow_across_attempts() -> None:
    keys = [f"uid-{i}:1:provision" for i in range(200)]
    medians = [statistics.median(next_delay(k, n, POLICY) for k in keys) for n in (1, 4, 8, 12)]
    assert medians == sorted(medians)
    assert medians[-1] > 100 * medians[0]


def test_delays_are_capped() -> None:
    assert max(next_delay(f"k{i}", 40, POLICY) for i in range(100)) <= 1000.0


def test_same_key_and_attempt_give_the_same_delay_other_keys_do_not() -> None:
    assert next_delay("u1:1:provision", 3, POLICY) == next_delay("u1:1:provision", 3, POLICY)
    assert jitter("u1:1:provision", 3) != jitter("u2:1:provision", 3)


def test_iterator_stops_after_max_attempts_and_reset_starts_over() -> None:
    backoff = Backoff("u1:1:provision", BackoffPolicy(max_attempts=4))
    first = list(backoff)
    assert len(first) == 4
    assert list(backoff) == []
    backoff.reset()
    assert list(backoff) == first


def test_iterator_delays_are_next_delay() -> None:
    policy = BackoffPolicy(max_attempts=5)
    delays = list(Backoff("k", policy))
    assert delays == [next_delay("k", n, policy) for n in range(1, 6)]


@pytest.mark.parametrize(
    ("base", "cap", "attempts"),
    [
        pytest.param(0, 1, 1, id="zero-base"),
        pytest.param(2, 1, 1, id="base-over-cap"),
        pytest.param(1, 2, 0, id="no-attempts"),
    ],
)
def test_bad_policy_is_refused(base: float, cap: float, attempts: int) -> None:
    with pytest.raises(ValueError, match="backoff needs"):
        BackoffPolicy(base=base, cap=cap, max_attempts=attempts)


NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param("1", 1.0, id="delay-seconds"),
        pytest.param(" 7 ", 7.0, id="delay-seconds-with-spaces"),
        pytest.param("0", 0.0, id="zero"),
        pytest.param("3600", 60.0, id="capped"),
        pytest.param("Thu, 01 Jan 2026 12:00:05 GMT", 5.0, id="imf-fixdate"),
        pytest.param("Thursday, 01-Jan-26 12:00:09 GMT", 9.0, id="rfc850-date"),
        pytest.param("Thu Jan  1 12:00:03 2026", 3.0, id="asctime-date"),
        pytest.param("Thu, 01 Jan 2026 13:00:00 GMT", 60.0, id="date-capped"),
        pytest.param("Thu, 01 Jan 2026 11:59:00 GMT", 0.0, id="date-in-the-past"),
        pytest.param(None, None, id="absent"),
        pytest.param("", None, id="empty"),
        pytest.param("-5", None, id="negative"),
        pytest.param("1.5", None, id="fractional"),
        pytest.param("\u0661", None, id="non-ascii-digit"),
        pytest.param("soon", None, id="words"),
    ],
)
def test_retry_after_is_read_as_rfc_9110_says_and_capped(
    header: str | None, expected: float | None
) -> None:
    assert retry_after_seconds(header, now=NOW, cap=60.0) == expected


def test_the_watchers_read_retry_after_with_the_same_parser() -> None:
    assert watch_retry_after is retry_after_seconds
    assert retry_after_seconds("100000", now=NOW) == RETRY_AFTER_CAP

"""The token bucket and the per-key exponential backoff: pure arithmetic over `now`, and
`acquire` on virtual loop time."""

from __future__ import annotations

import asyncio
import random

import pytest

from engine.runtime.queue.limits import KeyedBackoff, TokenBucket, backoff_ceiling


def test_bucket_grants_a_burst_then_spaces_by_qps() -> None:
    bucket = TokenBucket(qps=10.0, burst=3)
    waits = [bucket.reserve(0.0) for _ in range(6)]
    assert waits == pytest.approx([0.0, 0.0, 0.0, 0.1, 0.2, 0.3])


def test_bucket_delay_reserves_nothing() -> None:
    bucket = TokenBucket(qps=2.0, burst=1)
    assert bucket.delay(0.0) == 0.0
    assert bucket.delay(0.0) == 0.0
    assert bucket.reserve(0.0) == 0.0
    assert bucket.delay(0.0) == pytest.approx(0.5)
    assert bucket.delay(0.25) == pytest.approx(0.25)
    assert bucket.delay(0.5) == 0.0


def test_bucket_refill_never_exceeds_burst() -> None:
    bucket = TokenBucket(qps=100.0, burst=5)
    bucket.reserve(0.0)
    waits = [bucket.reserve(1000.0) for _ in range(7)]
    assert waits[:5] == [0.0] * 5
    assert waits[5] == pytest.approx(0.01)
    assert waits[6] == pytest.approx(0.02)


def test_bucket_holds_its_rate_over_a_window() -> None:
    bucket = TokenBucket(qps=10.0, burst=100)
    granted_free = 0
    for step in range(1000):  # a caller trying every 10 ms for 10 s
        moment = step * 0.01
        if bucket.delay(moment) == 0.0:
            bucket.reserve(moment)
            granted_free += 1
    assert granted_free <= 100 + 10 * 10 + 1


@pytest.mark.parametrize(
    ("qps", "burst", "message"),
    [
        pytest.param(0.0, 1, "qps", id="zero-qps"),
        pytest.param(-1.0, 1, "qps", id="negative-qps"),
        pytest.param(1.0, 0, "burst", id="zero-burst"),
    ],
)
def test_bucket_refuses_bad_limits(qps: float, burst: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TokenBucket(qps=qps, burst=burst)


@pytest.mark.looptime
async def test_bucket_acquire_waits_on_the_loop_clock() -> None:
    loop = asyncio.get_running_loop()
    bucket = TokenBucket(qps=10.0, burst=5)
    start = loop.time()
    for _ in range(100):
        await bucket.acquire()
    assert loop.time() - start == pytest.approx(9.5)


@pytest.mark.parametrize(
    ("failures", "ceiling"),
    [
        pytest.param(0, 0.005, id="first-failure-base"),
        pytest.param(1, 0.01, id="doubles"),
        pytest.param(10, 5.12, id="tenth"),
        pytest.param(20, 300.0, id="capped"),
        pytest.param(5000, 300.0, id="huge-count-no-overflow"),
    ],
)
def test_backoff_ceiling_doubles_up_to_the_cap(failures: int, ceiling: float) -> None:
    assert backoff_ceiling(base=0.005, cap=300.0, failures=failures) == pytest.approx(ceiling)


def test_backoff_delays_are_jittered_within_the_ceiling_and_per_key() -> None:
    backoff = KeyedBackoff(base=0.005, cap=1.0, rng=random.Random(42))
    delays = [backoff.next_delay("a") for _ in range(12)]
    for attempt, delay in enumerate(delays):
        assert 0.0 <= delay <= min(1.0, 0.005 * 2**attempt)
    assert len(set(delays)) == len(delays)  # jittered, not a fixed ladder
    assert backoff.failures("a") == 12
    assert backoff.failures("b") == 0
    assert backoff.next_delay("b") <= 0.005  # another key starts at the base
    backoff.forget("a")
    backoff.forget("never-seen")
    assert backoff.failures("a") == 0


def test_backoff_is_reproducible_from_a_seed() -> None:
    first = KeyedBackoff(base=0.005, cap=1.0, rng=random.Random(9))
    second = KeyedBackoff(base=0.005, cap=1.0, rng=random.Random(9))
    assert [first.next_delay("k") for _ in range(8)] == [second.next_delay("k") for _ in range(8)]


@pytest.mark.parametrize(
    ("base", "cap", "message"),
    [
        pytest.param(0.0, 1.0, "base", id="zero-base"),
        pytest.param(2.0, 1.0, "cap", id="cap-below-base"),
    ],
)
def test_backoff_refuses_bad_bounds(base: float, cap: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        KeyedBackoff(base=base, cap=cap, rng=random.Random())

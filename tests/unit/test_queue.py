"""The work queue's semantics, on virtual loop time (looptime): dedupe, deadlines, lanes,
the stingy one-worker-per-key rule, backoff, capacity and shutdown."""

from __future__ import annotations

import asyncio
import random

import pytest

from engine.runtime.queue.limits import KeyedBackoff, TokenBucket
from engine.runtime.queue.work_queue import QueueShutDown, WorkQueue
from engine.runtime.queue.worker import RetryableFailure, apply_outcome

pytestmark = pytest.mark.looptime


def now() -> float:
    return asyncio.get_running_loop().time()


async def take_ready(queue: WorkQueue) -> list[str]:
    """Hand out (and finish) every key that is ready right now, in order."""
    keys = []
    while queue.depth:
        key = await queue.get()
        queue.done(key)
        keys.append(key)
    return keys


async def ready_at(queue: WorkQueue, key: str) -> float:
    got = await queue.get()
    assert got == key
    return now()


@pytest.mark.parametrize(
    ("adds", "expected"),
    [
        pytest.param([("a", {}), ("a", {}), ("b", {})], ["a", "b"], id="duplicates-collapse"),
        pytest.param([("a", {}), ("b", {}), ("a", {})], ["a", "b"], id="re-add-keeps-place"),
        pytest.param(
            [("a", {}), ("b", {}), ("c", {"first": True})], ["c", "a", "b"], id="first-goes-ahead"
        ),
        pytest.param(
            [("a", {}), ("b", {}), ("b", {"first": True})], ["b", "a"], id="first-upgrades-ready"
        ),
        pytest.param(
            [("x", {"first": True}), ("y", {"first": True}), ("a", {})],
            ["x", "y", "a"],
            id="first-lane-is-fifo",
        ),
    ],
)
async def test_queue_hands_out_ready_keys_in_order(
    adds: list[tuple[str, dict[str, bool]]], expected: list[str]
) -> None:
    queue = WorkQueue()
    for key, options in adds:
        queue.add(key, **options)
    assert len(queue) == len(expected)
    assert await take_ready(queue) == expected


@pytest.mark.parametrize(
    ("afters", "due"),
    [
        pytest.param([10.0, 5.0], 5.0, id="later-add-with-earlier-deadline-wins"),
        pytest.param([1.0, 10.0], 1.0, id="later-add-with-later-deadline-ignored"),
        pytest.param([10.0, 0.0], 0.0, id="immediate-add-makes-delayed-key-ready"),
        pytest.param([-3.0], 0.0, id="negative-delay-means-now"),
    ],
)
async def test_queue_keeps_earlier_deadline_on_duplicate(afters: list[float], due: float) -> None:
    queue = WorkQueue()
    start = now()
    for after in afters:
        queue.add("a", after=after)
    assert await ready_at(queue, "a") - start == pytest.approx(due)
    assert queue.delayed == 0


async def test_queue_orders_delayed_keys_by_deadline() -> None:
    queue = WorkQueue()
    queue.add("late", after=3.0)
    queue.add("early", after=1.0)
    queue.add("now")
    assert queue.depth == 1
    assert queue.delayed == 2
    assert [await queue.get() for _ in range(3)] == ["now", "early", "late"]


async def test_delayed_first_key_keeps_its_lane_when_it_becomes_due() -> None:
    queue = WorkQueue()
    queue.add("resumed", after=1.0, first=True)
    await asyncio.sleep(2.0)
    queue.add("plain")
    queue.add("resumed")  # an ordinary add must not demote it
    assert await take_ready(queue) == ["resumed", "plain"]


async def test_key_added_while_processing_is_not_handed_out_until_done() -> None:
    queue = WorkQueue()
    queue.add("a")
    assert await queue.get() == "a"
    for _ in range(100):
        queue.add("a")
    assert queue.depth == 0
    assert queue.is_processing("a")
    second = asyncio.create_task(queue.get())
    await asyncio.sleep(5.0)
    assert not second.done()
    queue.done("a")
    assert await second == "a"
    queue.done("a")
    assert queue.depth == 0  # a hundred adds made exactly one follow-up


async def test_delayed_add_while_processing_waits_for_the_later_of_done_and_deadline() -> None:
    queue = WorkQueue()
    start = now()
    queue.add("a")
    await queue.get()
    queue.add("a", after=5.0)
    queue.add("a", after=8.0)
    await asyncio.sleep(1.0)
    queue.done("a")
    assert queue.depth == 0
    assert await ready_at(queue, "a") - start == pytest.approx(5.0)


async def test_get_waits_for_a_delayed_key() -> None:
    queue = WorkQueue()
    start = now()
    queue.add("a", after=2.5)
    assert await ready_at(queue, "a") - start == pytest.approx(2.5)


async def test_max_concurrent_holds_keys_until_a_slot_frees() -> None:
    queue = WorkQueue(max_concurrent=2)
    for key in "abc":
        queue.add(key)
    assert await queue.get() == "a"
    assert await queue.get() == "b"
    third = asyncio.create_task(queue.get())
    await asyncio.sleep(1.0)
    assert not third.done()
    assert queue.processing == 2
    queue.done("a")
    assert await third == "c"


def test_max_concurrent_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="max_concurrent"):
        WorkQueue(max_concurrent=0)


async def test_done_for_a_key_not_processing_is_an_error() -> None:
    queue = WorkQueue()
    queue.add("a")
    with pytest.raises(ValueError, match="'a'"):
        queue.done("a")


async def test_failures_back_off_exponentially_with_full_jitter() -> None:
    backoff = KeyedBackoff(base=0.005, cap=1.0, rng=random.Random(7))
    queue = WorkQueue(backoff=backoff)
    waits = []
    for attempt in range(10):
        queue.add_after_failure("a")
        start = now()
        await queue.get()
        waits.append(now() - start)
        queue.done("a")
        assert queue.failures("a") == attempt + 1
        assert 0.0 <= waits[-1] <= min(1.0, 0.005 * 2**attempt) + 1e-6
    # seeded: the same source gives the same delays (replay reproduces them)
    again = KeyedBackoff(base=0.005, cap=1.0, rng=random.Random(7))
    assert [again.next_delay("a") for _ in range(10)] == pytest.approx(waits, abs=1e-6)
    queue.forget("a")
    assert queue.failures("a") == 0


@pytest.mark.parametrize(
    ("retry_after", "lower", "upper"),
    [
        pytest.param(2.0, 2.0, 2.0, id="retry-after-is-a-lower-bound"),
        pytest.param(3600.0, 10.0, 10.0, id="retry-after-clamped-to-the-cap"),
        pytest.param(0.0, 0.0, 0.005, id="zero-retry-after-leaves-backoff"),
    ],
)
async def test_retry_after_bounds_the_backoff_delay(
    retry_after: float, lower: float, upper: float
) -> None:
    queue = WorkQueue(backoff=KeyedBackoff(base=0.005, cap=10.0, rng=random.Random(1)))
    start = now()
    queue.add_after_failure("a", retry_after=retry_after)
    await queue.get()
    assert lower - 1e-6 <= now() - start <= upper + 1e-6


async def test_retry_bucket_spaces_retries_of_all_keys() -> None:
    queue = WorkQueue(
        backoff=KeyedBackoff(base=0.001, cap=0.001, rng=random.Random(0)),
        retry_bucket=TokenBucket(qps=10.0, burst=2),
    )
    start = now()
    for key in "abcdef":
        queue.add_after_failure(key)
    times = []
    for _ in range(6):
        await queue.get()
        times.append(now() - start)
    # burst 2 at once (within the 1 ms backoff), then one every 100 ms
    assert times[1] <= 0.001 + 1e-6
    assert times[5] == pytest.approx(0.4, abs=0.002)


async def test_first_attempts_are_not_rate_limited_by_the_retry_bucket() -> None:
    queue = WorkQueue(retry_bucket=TokenBucket(qps=1.0, burst=1))
    for number in range(50):
        queue.add(f"k{number}")
    start = now()
    assert len(await take_ready(queue)) == 50
    assert now() == pytest.approx(start)


async def test_oldest_age_and_observed_waits_measure_time_in_the_ready_queue() -> None:
    waits: list[float] = []
    queue = WorkQueue(observe_wait=waits.append)
    assert queue.oldest_age() == 0.0
    queue.add("a")
    await asyncio.sleep(3.0)
    queue.add("b")
    await asyncio.sleep(1.0)
    assert queue.oldest_age() == pytest.approx(4.0)
    await take_ready(queue)
    assert waits == pytest.approx([4.0, 1.0])
    queue.add("c", after=2.0)  # waiting on a deadline is not queue wait
    await asyncio.sleep(5.0)
    assert queue.oldest_age() == pytest.approx(3.0)


async def test_shutdown_wakes_getters_and_refuses_new_work() -> None:
    queue = WorkQueue()
    getter = asyncio.create_task(queue.get())
    await asyncio.sleep(0.1)
    queue.add("delayed", after=1.0)
    await queue.shutdown(drain=False)
    with pytest.raises(QueueShutDown):
        await getter
    queue.add("late")
    assert queue.depth == 0
    assert queue.delayed == 0
    assert queue.is_shut_down
    with pytest.raises(QueueShutDown):
        await queue.get()


async def test_shutdown_with_drain_waits_for_keys_in_processing() -> None:
    queue = WorkQueue()
    queue.add("a")
    queue.add("b")
    await queue.get()
    start = now()

    async def finish_later() -> None:
        await asyncio.sleep(2.0)
        queue.add("a")  # ignored: shutting down
        queue.done("a")

    finisher = asyncio.create_task(finish_later())
    await queue.shutdown(drain=True)
    assert now() - start == pytest.approx(2.0)
    assert queue.processing == 0
    await finisher
    with pytest.raises(QueueShutDown):
        await queue.get()  # "b" was ready but is not started after shutdown


async def test_shutdown_with_drain_returns_at_once_when_idle() -> None:
    queue = WorkQueue()
    start = now()
    await queue.shutdown(drain=True)
    assert now() == start


async def test_retry_after_holds_a_key_that_events_made_dirty_meanwhile() -> None:
    # B.2 A3: a 429 with Retry-After 2 during a reconcile, while the engine's own write
    # echoes back as a watch event: the key must not be retried before 2 s.
    queue = WorkQueue(backoff=KeyedBackoff(base=0.005, cap=10.0, rng=random.Random(1)))
    queue.add("k")
    assert await queue.get() == "k"
    queue.add("k")  # an event while processing: dirty
    start = now()
    apply_outcome(queue, "k", RetryableFailure("throttled", retry_after=2.0))
    queue.add("k")  # another event after the failure
    assert await ready_at(queue, "k") - start >= 2.0


async def test_forget_lifts_the_retry_after_hold() -> None:
    queue = WorkQueue(backoff=KeyedBackoff(base=0.005, cap=10.0, rng=random.Random(1)))
    queue.add("k")
    assert await queue.get() == "k"
    queue.add_after_failure("k", retry_after=5.0)
    queue.done("k")
    assert await ready_at(queue, "k") >= 5.0
    queue.forget("k")
    queue.done("k")
    start = now()
    queue.add("k")
    assert await ready_at(queue, "k") == start


async def test_plain_backoff_still_yields_to_an_event_that_arrived_meanwhile() -> None:
    queue = WorkQueue(backoff=KeyedBackoff(base=5.0, cap=10.0, rng=random.Random(3)))
    queue.add("k")
    assert await queue.get() == "k"
    queue.add("k")  # dirty
    start = now()
    apply_outcome(queue, "k", RetryableFailure("conflict"))
    assert await ready_at(queue, "k") == start

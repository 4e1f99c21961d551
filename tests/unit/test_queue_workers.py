"""Worker loops over the queue on virtual time: the outcome → queue-action mapping, and the
matrix scenarios E4 (a burst on one busy key) and E7 (10k interleaved keys, fairness)."""

from __future__ import annotations

import asyncio
import random
from collections import Counter, defaultdict

import pytest

from engine.runtime.queue.limits import KeyedBackoff
from engine.runtime.queue.work_queue import WorkQueue
from engine.runtime.queue.worker import (
    Outcome,
    RequeueAfter,
    RetryableFailure,
    Succeeded,
    TerminalFailure,
    run_workers,
)

pytestmark = pytest.mark.looptime


def now() -> float:
    return asyncio.get_running_loop().time()


class Recorder:
    """A handler that records every reconcile interval and returns scripted outcomes."""

    def __init__(self, outcomes: list[Outcome | Exception], *, duration: float = 0.0) -> None:
        self.outcomes = outcomes
        self.duration = duration
        self.intervals: dict[str, list[tuple[float, float]]] = defaultdict(list)
        self.active: Counter[str] = Counter()
        self.overlaps = 0

    async def __call__(self, key: str) -> Outcome:
        self.active[key] += 1
        if self.active[key] > 1:
            self.overlaps += 1
        start = now()
        try:
            await asyncio.sleep(self.duration)
            scripted = self.outcomes.pop(0) if self.outcomes else Succeeded()
            if isinstance(scripted, Exception):
                raise scripted
            return scripted
        finally:
            self.active[key] -= 1
            self.intervals[key].append((start, now()))


async def run_until_idle(
    queue: WorkQueue, handler: Recorder, *, workers: int, until: float
) -> None:
    task = asyncio.create_task(run_workers(queue, handler, workers=workers))
    await asyncio.sleep(until)
    await queue.shutdown(drain=True)
    await task


@pytest.mark.parametrize(
    ("outcomes", "reconciles", "failures_after"),
    [
        pytest.param([Succeeded()], 1, 0, id="success-forgets-and-stops"),
        pytest.param([RequeueAfter(3.0), Succeeded()], 2, 0, id="requeue-after-comes-back"),
        pytest.param([RetryableFailure("boom"), Succeeded()], 2, 0, id="retryable-retried"),
        pytest.param(
            [RetryableFailure("a"), RetryableFailure("b")], 3, 0, id="retried-until-success"
        ),
        pytest.param([TerminalFailure("bad spec")], 1, 0, id="terminal-not-retried"),
        pytest.param([RuntimeError("bug"), Succeeded()], 2, 0, id="exception-is-retryable"),
    ],
)
async def test_outcomes_map_to_queue_actions(
    outcomes: list[Outcome | Exception], reconciles: int, failures_after: int
) -> None:
    queue = WorkQueue(backoff=KeyedBackoff(base=0.005, cap=1.0, rng=random.Random(3)))
    handler = Recorder(list(outcomes))
    queue.add("k")
    await run_until_idle(queue, handler, workers=2, until=20.0)
    assert len(handler.intervals["k"]) == reconciles
    assert queue.failures("k") == failures_after


async def test_requeue_after_waits_the_given_time() -> None:
    queue = WorkQueue()
    handler = Recorder([RequeueAfter(3.0)])
    queue.add("k")
    await run_until_idle(queue, handler, workers=1, until=10.0)
    (_, first_end), (second_start, _) = handler.intervals["k"]
    assert second_start - first_end == pytest.approx(3.0)


async def test_retryable_failure_honours_retry_after() -> None:
    queue = WorkQueue()
    handler = Recorder([RetryableFailure("429", retry_after=2.0)])
    queue.add("k")
    await run_until_idle(queue, handler, workers=1, until=10.0)
    (_, first_end), (second_start, _) = handler.intervals["k"]
    assert second_start - first_end >= 2.0 - 1e-6


async def test_failures_count_up_while_a_key_keeps_failing() -> None:
    queue = WorkQueue(backoff=KeyedBackoff(base=0.005, cap=0.01, rng=random.Random(3)))
    handler = Recorder([RetryableFailure("x")] * 5 + [TerminalFailure("gave up")])
    queue.add("k")
    await run_until_idle(queue, handler, workers=1, until=5.0)
    assert len(handler.intervals["k"]) == 6
    assert queue.failures("k") == 0  # the terminal error forgot it


async def test_run_workers_refuses_zero_workers() -> None:
    with pytest.raises(ValueError, match="workers"):
        await run_workers(WorkQueue(), Recorder([]), workers=0)


async def test_e4_burst_on_a_busy_key_never_overlaps_and_coalesces() -> None:
    """E4: 1000 MODIFIED on one key while its reconcile runs → never concurrent; ≤2 runs."""
    queue = WorkQueue()
    handler = Recorder([], duration=1.0)
    workers = asyncio.create_task(run_workers(queue, handler, workers=8))
    queue.add("ns/busy")
    await asyncio.sleep(0.1)
    assert queue.is_processing("ns/busy")
    for _ in range(1000):
        queue.add("ns/busy")
        await asyncio.sleep(0.0005)  # the whole burst lands within the first reconcile
    await asyncio.sleep(10.0)
    await queue.shutdown(drain=True)
    await workers
    runs = handler.intervals["ns/busy"]
    assert handler.overlaps == 0
    assert len(runs) == 2  # the one running during the burst, plus exactly one follow-up
    assert runs[1][0] >= runs[0][1]


async def test_e7_ten_thousand_interleaved_keys_are_served_fairly() -> None:
    """E7: 10k keys interleaved with a hot key: bounded p99 wait, nothing starves."""
    waits: list[float] = []
    queue = WorkQueue(observe_wait=waits.append)
    handler = Recorder([], duration=0.002)
    workers = asyncio.create_task(run_workers(queue, handler, workers=8))
    keys = [f"ns/obj-{number}" for number in range(10_000)]
    last_added: dict[str, float] = {}
    rng = random.Random(11)
    for _ in range(3):
        order = keys[:]
        rng.shuffle(order)
        for index, key in enumerate(order):
            queue.add(key)
            last_added[key] = now()
            if index % 100 == 0:
                queue.add("ns/hot")  # a key that is modified all the time
                last_added["ns/hot"] = now()
                await asyncio.sleep(0.02)  # arrivals (5000/s) outpace service (4000/s)
    await asyncio.sleep(30.0)
    await queue.shutdown(drain=True)
    await workers

    assert handler.overlaps == 0
    # no starvation: every key was reconciled after its last change
    for key, added in last_added.items():
        assert handler.intervals[key][-1][0] >= added, key
    # fairness: 8 workers at 2 ms serve 4000 keys/s, so a FIFO queue of at most ~10k keys
    # drains within ~2.5 s; p99 and the worst wait stay within that bound
    waits.sort()
    p99 = waits[int(len(waits) * 0.99)]
    assert p99 <= 2.6
    assert waits[-1] <= 3.0
    # the hot key was served often but never more than once per change
    hot_runs = len(handler.intervals["ns/hot"])
    assert 2 <= hot_runs <= 300

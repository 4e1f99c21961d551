"""The three rules the B.2 API-fault tests called for, each on its own part: an effect
failing because the server is unavailable backs off but never gives up; the retries an
effect's backoff timed go through the global retry bucket, which holds the key against
an earlier add; a watch event repeating an older resourceVersion is not news to the
primary view."""

from __future__ import annotations

import asyncio

import pytest

from engine.clock import FakeClock
from engine.effects import (
    BackoffPolicy,
    EffectRetryScheduled,
    EffectRunner,
    RunnerDeps,
    ServerUnavailable,
    next_delay,
)
from engine.fsm import events as ev
from engine.journal.memory import MemoryJournal
from engine.runtime.queue.limits import TokenBucket
from engine.runtime.queue.work_queue import WorkQueue
from engine.runtime.queue.worker import RequeueAfter, apply_outcome
from engine.runtime.reconcile.objects import PrimaryView

STREAM = "g/Kind/ns/name#u1"
KEY = "u1:1:apply.configmap.c"


async def test_an_unavailable_server_is_retried_past_its_attempts_with_growing_backoff() -> None:
    policy = BackoffPolicy(base=0.01, cap=10.0, max_attempts=2)
    journal = MemoryJournal(clock=FakeClock())
    runner = EffectRunner(RunnerDeps(journal=journal, clock=FakeClock(), backoff=policy))

    async def unavailable(key: str) -> None:
        raise ServerUnavailable("503 ServiceUnavailable")

    retries = []
    for _ in range(5):
        with pytest.raises(EffectRetryScheduled) as retry:
            await runner.run(STREAM, KEY, "apply", unavailable)
        assert retry.value.unavailable
        retries.append(retry.value)
    failed = [r for r in await journal.read_stream(STREAM) if r.type == ev.EFFECT_FAILED]
    assert [r.data["gave_up"] for r in failed] == [False] * 5
    scheduled = [r for r in await journal.read_stream(STREAM) if r.type == ev.RETRY_SCHEDULED]
    assert [r.data["backoff"] for r in scheduled] == [
        next_delay(KEY, n, policy) for n in range(1, 6)
    ]


@pytest.mark.looptime
async def test_a_retry_timed_by_an_effect_waits_for_the_bucket_even_when_added_again() -> None:
    queue = WorkQueue(retry_bucket=TokenBucket(qps=10.0, burst=1))
    loop = asyncio.get_running_loop()
    start = loop.time()
    for key in ("a", "b"):
        queue.add(key)
    for key in ("a", "b"):
        assert await queue.get() == key
    for key in ("a", "b"):  # both retry at once: a takes the one token, b the next slot
        apply_outcome(queue, key, RequeueAfter(0.0, retry=True))
    queue.add("b")  # an event for b: its retry still waits for its slot
    assert await queue.get() == "a"
    queue.done("a")
    assert loop.time() == pytest.approx(start)
    assert await queue.get() == "b"
    assert loop.time() - start == pytest.approx(0.1, abs=0.002)


def test_a_watch_event_repeating_an_older_version_is_not_news() -> None:
    view = PrimaryView()

    def widget(version: str, phase: str) -> dict[str, object]:
        metadata = {"name": "w", "namespace": "ns", "uid": "u1", "resourceVersion": version}
        return {"metadata": metadata, "status": {"phase": phase}}

    view.observed(widget("5", "Pending"))
    view.observed(widget("7", "Ready"))
    entry = view.observed(widget("5", "Pending"))  # a reconnect repeats an old event
    assert entry.obj["status"] == {"phase": "Ready"}
    assert view.observed(widget("7", "Ready")).obj["status"] == {"phase": "Ready"}
    relisted = view.observed(widget("5", "Pending"), listed=True)  # the server's word wins
    assert relisted.obj["status"] == {"phase": "Pending"}

"""The per-key work queue: dedupe, delay, backoff, and never two workers on one key.

A small asyncio take on client-go's queue → delaying queue → rate-limited queue, on the
running loop's clock (`loop.time`, `loop.call_at`) so tests can run it on virtual time.
All methods must be called from the one event loop that runs the workers.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from engine.runtime.queue.limits import KeyedBackoff, TokenBucket

_FIRST, _ORDINARY = 0, 1


class QueueShutDown(Exception):
    """`get()` after `shutdown()`: no more keys will be handed out."""


@dataclass(frozen=True)
class _Pending:
    """A key added while it was being processed: it becomes due at `deadline` after done."""

    deadline: float
    first: bool


class WorkQueue:
    """Keys waiting to be reconciled, handed out one worker per key.

    Expected flow: `add(key)` → a worker's `await get()` returns it → the worker handles it
    → `done(key)` (plus `forget`, `add(after=…)` or `add_after_failure` as the outcome says;
    `engine.runtime.queue.worker.apply_outcome` is the one place that maps outcomes).

    Guarantees:
    - A key is handed out to at most one worker at a time; a key added while it is being
      processed is marked dirty and becomes ready once, after `done(key)`, however many
      adds came in between (R6).
    - A key is queued at most once; a second add keeps the EARLIER deadline.
    - Ready keys are handed out in the order they became ready; keys added with
      `first=True` (in-flight work found in the journal at start) go before ordinary ones.
    - At most `max_concurrent` keys are in processing at once (None: no limit).
    - `add_after_failure` delays by per-key exponential backoff with full jitter; a
      `retry_after` is a lower bound, clamped to the backoff cap; the optional global
      `retry_bucket` spaces all retries (R7), those `add_retry` re-adds after an effect's
      own backoff too. First attempts are not rate-limited, so an
      initial list of many keys is not throttled to the bucket's qps.
    - A `retry_after` holds the key: no add, and no event that arrived while it was being
      processed, makes it ready before that time (a server's Retry-After is a lower bound,
      R7), until `forget(key)`. Plain backoff is not a hold: as in client-go, an event
      that arrives meanwhile reconciles the key at once (level-triggered).
    - With `accepts`, a key it refuses is not queued, and a queued key it has come to
      refuse (its shard was handed off) is dropped instead of handed out.
    - After `shutdown()`, adds are ignored, delayed keys are dropped (the next start finds
      them again from the journal and the list), and `get()` raises `QueueShutDown`.
    """

    def __init__(
        self,
        *,
        backoff: KeyedBackoff | None = None,
        retry_bucket: TokenBucket | None = None,
        max_concurrent: int | None = None,
        observe_wait: Callable[[float], None] | None = None,
        accepts: Callable[[str], bool] | None = None,
    ) -> None:
        if max_concurrent is not None and max_concurrent < 1:
            raise ValueError(f"max_concurrent must be >= 1 or None, got {max_concurrent!r}")
        self._backoff = backoff or KeyedBackoff(base=0.005, cap=300.0, rng=random.Random())
        self._bucket = retry_bucket
        self._max_concurrent = max_concurrent
        self._observe_wait = observe_wait
        self._accepts = accepts
        self._seq = itertools.count()
        # ready: two FIFO lanes of (seq, key); an entry is live iff _ready_entry[key] matches
        self._lanes: tuple[deque[tuple[int, str]], deque[tuple[int, str]]] = (deque(), deque())
        self._ready_entry: dict[str, tuple[int, int]] = {}  # key -> (lane, seq)
        self._ready_since: dict[str, float] = {}
        # waiting: a heap of (deadline, seq, key); live iff _waiting[key] == deadline
        self._heap: list[tuple[float, int, str]] = []
        self._waiting: dict[str, float] = {}
        self._waiting_first: set[str] = set()
        self._processing: set[str] = set()
        self._dirty: dict[str, _Pending] = {}
        self._not_before: dict[str, float] = {}  # Retry-After holds, by key
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = float("inf")
        self._getters: set[asyncio.Future[None]] = set()
        self._idle: set[asyncio.Future[None]] = set()
        self._shut_down = False

    # -- adding ---------------------------------------------------------------------------

    def add(self, key: str, *, after: float = 0.0, first: bool = False) -> None:
        """Make `key` ready after `after` seconds (see the class guarantees); never blocks."""
        if self._shut_down or (self._accepts is not None and not self._accepts(key)):
            return
        now = asyncio.get_running_loop().time()
        deadline = now + max(0.0, after)
        if key in self._processing:
            earlier = self._dirty.get(key)
            if earlier is not None:
                deadline = min(deadline, earlier.deadline)
                first = first or earlier.first
            self._dirty[key] = _Pending(deadline, first)
            return
        self._schedule(key, deadline=self._held(key, deadline), first=first, now=now)

    def _held(self, key: str, deadline: float) -> float:
        """`deadline`, or later if a Retry-After holds `key`."""
        return max(deadline, self._not_before.get(key, deadline))

    def add_after_failure(self, key: str, *, retry_after: float | None = None) -> None:
        """Re-add `key` after its backoff delay, at least `retry_after` (capped) seconds."""
        delay = self._backoff.next_delay(key)
        now = asyncio.get_running_loop().time()
        if retry_after is not None:
            held = min(retry_after, self._backoff.cap)
            delay = max(delay, held)
            self._not_before[key] = max(self._not_before.get(key, now), now + held)
        if self._bucket is not None:
            delay = max(delay, self._bucket.reserve(now))
        self.add(key, after=delay)

    def add_retry(self, key: str, *, after: float) -> None:
        """Re-add `key` for a retry whose delay was computed elsewhere (an effect's own
        backoff): after `after` seconds, and no sooner than the global retry bucket allows.
        A bucket slot later than `after` holds the key as a Retry-After does, so an event
        that arrives meanwhile does not bring the retry before its slot."""
        if self._bucket is not None:
            now = asyncio.get_running_loop().time()
            slot = self._bucket.reserve(now)
            if slot > after:
                self._not_before[key] = max(self._not_before.get(key, now), now + slot)
                after = slot
        self.add(key, after=after)

    def forget(self, key: str) -> None:
        """Reset the failure count and any Retry-After hold of `key` (after a success or a
        terminal error)."""
        self._backoff.forget(key)
        self._not_before.pop(key, None)

    def failures(self, key: str) -> int:
        """Failures of `key` counted since it was last forgotten."""
        return self._backoff.failures(key)

    def _schedule(self, key: str, *, deadline: float, first: bool, now: float) -> None:
        if key in self._ready_entry:
            if first and self._ready_entry[key][0] == _ORDINARY:
                self._make_ready(key, first=True, since=self._ready_since[key])
            return
        if deadline <= now:
            first = first or key in self._waiting_first
            self._waiting.pop(key, None)
            self._waiting_first.discard(key)
            self._make_ready(key, first=first, since=now)
            return
        if first:
            self._waiting_first.add(key)
        current = self._waiting.get(key)
        if current is not None and current <= deadline:
            return
        self._waiting[key] = deadline
        heapq.heappush(self._heap, (deadline, next(self._seq), key))
        if deadline < self._timer_at:
            self._arm_timer(deadline)

    def _make_ready(self, key: str, *, first: bool, since: float) -> None:
        lane = _FIRST if first else _ORDINARY
        seq = next(self._seq)
        self._ready_entry[key] = (lane, seq)
        self._ready_since[key] = since
        self._lanes[lane].append((seq, key))
        self._wake(self._getters)

    # -- the delay timer ------------------------------------------------------------------

    def _arm_timer(self, deadline: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = deadline
        self._timer = asyncio.get_running_loop().call_at(deadline, self._promote_due)

    def _promote_due(self) -> None:
        self._timer, self._timer_at = None, float("inf")
        now = asyncio.get_running_loop().time()
        while self._heap:
            deadline, _, key = self._heap[0]
            if self._waiting.get(key) != deadline:
                heapq.heappop(self._heap)  # superseded by an earlier deadline, or promoted
                continue
            if deadline > now:
                self._arm_timer(deadline)
                return
            heapq.heappop(self._heap)
            del self._waiting[key]
            first = key in self._waiting_first
            self._waiting_first.discard(key)
            self._make_ready(key, first=first, since=deadline)

    # -- handing out ----------------------------------------------------------------------

    async def get(self) -> str:
        """Wait for the next ready key and mark it processing until `done(key)`.

        Errors: `QueueShutDown` once the queue is shut down.
        """
        while True:
            if self._shut_down:
                raise QueueShutDown("the work queue is shut down")
            if self._ready_entry and not self._at_capacity():
                key = self._pop_ready()
                if self._accepts is None or self._accepts(key):
                    return key
                self.done(key)  # refused since it was queued: dropped
                continue
            waiter = asyncio.get_running_loop().create_future()
            self._getters.add(waiter)
            try:
                await waiter
            finally:
                self._getters.discard(waiter)

    def _at_capacity(self) -> bool:
        return self._max_concurrent is not None and len(self._processing) >= self._max_concurrent

    def _pop_ready(self) -> str:
        for lane in (_FIRST, _ORDINARY):
            entries = self._lanes[lane]
            while entries:
                seq, key = entries.popleft()
                if self._ready_entry.get(key) != (lane, seq):
                    continue  # stale: the key moved to the first lane
                del self._ready_entry[key]
                since = self._ready_since.pop(key)
                self._processing.add(key)
                if self._observe_wait is not None:
                    self._observe_wait(asyncio.get_running_loop().time() - since)
                return key
        raise AssertionError("ready index and lanes disagree")  # pragma: no cover

    def done(self, key: str) -> None:
        """End processing of `key`; a dirty key is scheduled again (once).

        Errors: `ValueError` if `key` is not being processed (a worker bug).
        """
        if key not in self._processing:
            raise ValueError(f"done({key!r}) for a key that is not being processed")
        self._processing.remove(key)
        pending = self._dirty.pop(key, None)
        if pending is not None and not self._shut_down:
            now = asyncio.get_running_loop().time()
            deadline = self._held(key, pending.deadline)
            self._schedule(key, deadline=deadline, first=pending.first, now=now)
        self._wake(self._getters)
        if not self._processing:
            self._wake(self._idle)

    @staticmethod
    def _wake(waiters: set[asyncio.Future[None]]) -> None:
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    # -- introspection --------------------------------------------------------------------

    def __len__(self) -> int:
        return self.depth

    @property
    def depth(self) -> int:
        """Keys ready and waiting for a worker (not delayed, not processing)."""
        return len(self._ready_entry)

    @property
    def delayed(self) -> int:
        """Keys waiting for their deadline (backoff or requeue-after)."""
        return len(self._waiting)

    @property
    def processing(self) -> int:
        """Keys handed out and not yet done."""
        return len(self._processing)

    def is_processing(self, key: str) -> bool:
        """Whether `key` is handed out and not yet done."""
        return key in self._processing

    def oldest_age(self) -> float:
        """Seconds the longest-waiting ready key has waited; 0.0 when none is ready."""
        if not self._ready_since:
            return 0.0
        oldest = min(self._ready_since.values())
        return max(0.0, asyncio.get_running_loop().time() - oldest)

    # -- shutting down --------------------------------------------------------------------

    async def shutdown(self, *, drain: bool = True) -> None:
        """Stop handing out keys; with `drain`, wait until every processing key is done.

        Bound the wait with `asyncio.timeout` if a handler may hang.
        """
        self._shut_down = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer, self._timer_at = None, float("inf")
        self._heap.clear()
        self._waiting.clear()
        self._waiting_first.clear()
        self._dirty.clear()
        self._wake(self._getters)
        while drain and self._processing:
            waiter = asyncio.get_running_loop().create_future()
            self._idle.add(waiter)
            try:
                await waiter
            finally:
                self._idle.discard(waiter)

    @property
    def is_shut_down(self) -> bool:
        """Whether `shutdown()` was called."""
        return self._shut_down

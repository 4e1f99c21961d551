"""Reconcile outcomes, the one function that maps them to queue actions, and worker loops.

As in controller-runtime, a handler reports *what happened* and `apply_outcome` alone
decides what the queue does about it; no handler touches the queue directly.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from engine.runtime.queue.work_queue import QueueShutDown, WorkQueue

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Succeeded:
    """The key reached its desired state for now; reset its backoff."""


@dataclass(frozen=True)
class RequeueAfter:
    """Look at the key again after `seconds` (a wait, not a failure: backoff is reset).

    `retry`: the look is the retry of a failed attempt whose delay was computed elsewhere
    (an effect's own backoff); it is spaced by the global retry bucket too (R7)."""

    seconds: float
    retry: bool = False


@dataclass(frozen=True)
class RetryableFailure:
    """A failure that may pass: retry with backoff, no sooner than `retry_after` seconds."""

    reason: str
    retry_after: float | None = None


@dataclass(frozen=True)
class TerminalFailure:
    """A failure that will not pass without a change: never retried (the key is forgotten)."""

    reason: str


Outcome = Succeeded | RequeueAfter | RetryableFailure | TerminalFailure
Handler = Callable[[str], Awaitable[Outcome]]


def apply_outcome(queue: WorkQueue, key: str, outcome: Outcome) -> None:
    """Turn one handler outcome into queue actions; `key` must be processing.

    success → forget + done; requeue-after → forget + done + add(after) (a retry's through
    the retry bucket: add_retry); retryable failure →
    done + add_after_failure(retry_after); terminal failure → forget + done. A key marked
    dirty while it was processed is still reconciled once more (level-triggered).
    """
    match outcome:
        case Succeeded():
            queue.forget(key)
            queue.done(key)
        case RequeueAfter(seconds=seconds, retry=True):
            queue.forget(key)
            queue.add_retry(key, after=seconds)
            queue.done(key)
        case RequeueAfter(seconds=seconds):
            queue.forget(key)
            queue.done(key)
            queue.add(key, after=seconds)
        case RetryableFailure(retry_after=retry_after):
            # add first: a Retry-After hold must be in place before `done` schedules a
            # key that events made dirty meanwhile
            queue.add_after_failure(key, retry_after=retry_after)
            queue.done(key)
        case TerminalFailure():
            queue.forget(key)
            queue.done(key)


async def run_workers(queue: WorkQueue, handler: Handler, *, workers: int) -> None:
    """Run `workers` loops of get → handler → apply_outcome until the queue shuts down.

    Guarantees: an exception from `handler` (other than cancellation) is logged and treated
    as a retryable failure of that key only; the other keys go on (R13, H5). Returns when
    every loop has seen `QueueShutDown`; `await queue.shutdown(drain=True)` lets handlers in
    progress finish first. Cancelling the caller cancels the loops.
    Errors: `ValueError` for `workers < 1`.
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers!r}")
    async with asyncio.TaskGroup() as group:
        for number in range(workers):
            group.create_task(_work(queue, handler), name=f"reconcile-worker-{number}")


async def _work(queue: WorkQueue, handler: Handler) -> None:
    while True:
        try:
            key = await queue.get()
        except QueueShutDown:
            return
        try:
            outcome = await handler(key)
        except asyncio.CancelledError:
            queue.done(key)
            raise
        except Exception as error:
            log.warning(
                "reconcile of %r raised %s; retrying with backoff", key, type(error).__name__
            )
            outcome = RetryableFailure(reason=f"unexpected {type(error).__name__}")
        apply_outcome(queue, key, outcome)

"""The effect runner: runs a named async call under its idempotency key, journaling the
intent before and the outcome after, with timeouts, error classes and backoff; in replay
mode it answers every effect from the journal and never calls anything.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, Protocol

from engine.clock import Clock
from engine.effects.backoff import DEFAULT_BACKOFF, BackoffPolicy, next_delay
from engine.effects.errors import (
    DependencyNotReady,
    EffectFailedPermanently,
    EffectGaveUp,
    EffectRetryScheduled,
    NotLeading,
    PermanentError,
    ReplayDivergence,
    RetryableError,
    ServerUnavailable,
)
from engine.effects.history import KeyHistory, key_history
from engine.effects.replay import RecordedOutcome, ReplayCursor
from engine.effects.stream_index import StreamEffectIndex
from engine.failpoint import afailpoint
from engine.fsm import events as ev
from engine.identity import StreamId
from engine.journal.record import NewEvent, Record
from engine.journal.store import Journal

EffectCall = Callable[[str], Awaitable[Any]]
"""An effect: called with its idempotency key, returns a JSON-serialisable result."""

TIMEOUT_CLASS = "Timeout"


class Mode(StrEnum):
    """`live` calls effects; `replay` answers them from the journal."""

    LIVE = "live"
    REPLAY = "replay"


@dataclass(frozen=True, slots=True)
class SpanIds:
    """The trace and span of one effect attempt, stamped on its journal records."""

    trace_id: str | None = None
    span_id: str | None = None


class StreamAppend(Protocol):
    """Appends records to one stream (the engine's stream writer, or a journal itself)."""

    async def append(self, stream: str, events: Sequence[NewEvent]) -> tuple[int, ...]: ...


class AttemptTracer(Protocol):
    """Opens a span around one effect attempt (blocking only for the span bookkeeping)."""

    def attempt(self, *, key: str, name: str, attempt: int) -> AbstractContextManager[SpanIds]:
        """A context manager around the attempt; it yields the span's ids."""
        ...


@dataclass(frozen=True, slots=True)
class RunnerDeps:
    """Everything the runner needs. `timeout`: seconds before a call is cancelled and
    journaled as a `Timeout` failure. `term`: the current leader term (fencing token),
    recorded in `EffectStarted`. `tracer`: optional span per attempt.

    Replay: with `recorded` unset the answers come from `journal` and nothing is written;
    with `recorded` set they come from it, and each replayed attempt's records are
    appended to `journal` too, so a replay into a fresh journal rebuilds the whole
    timeline for a byte-for-byte comparison with the recorded one.
    """

    journal: Journal
    clock: Clock
    backoff: BackoffPolicy = DEFAULT_BACKOFF
    timeout: float = 30.0
    mode: Mode = Mode.LIVE
    term: Callable[[], int] | None = None
    tracer: AttemptTracer | None = None
    recorded: Journal | None = None
    may_act: Callable[[], bool] | None = None
    """Asked right before each `EffectStarted`: False (this replica lost the Lease)
    raises `NotLeading`, and nothing is journaled or called."""
    streams: StreamAppend | None = None
    """Where the runner's records are appended: the engine's one stream writer (it
    checks the expected version and advances the fold); `journal` itself when unset."""


@dataclass(frozen=True, slots=True)
class _Failure:
    error_class: str
    retryable: bool
    message: str
    at_least: float = 0.0
    waiting: bool = False
    gave_up: bool = False
    unavailable: bool = False


class EffectRunner:
    """Runs effects under idempotency keys (docs/guarantees.md: R3, R4).

    Guarantees (live): `EffectStarted` is committed before `call` runs; a key with a
    recorded success is never called again (its recorded result is returned); a key
    started with no outcome (a crash in between) is called again with the same key; at
    most one `EffectSucceeded` per key (it carries the key as its idempotency key).
    Guarantees (replay): `call` is never called.
    Assumption: one caller runs a given key at a time (the work queue's promise).
    """

    def __init__(self, deps: RunnerDeps) -> None:
        self._deps = deps
        self._streams: StreamAppend = deps.streams if deps.streams is not None else deps.journal
        self._cursors: dict[str, ReplayCursor] = {}  # replay only: one per stream
        self._index = StreamEffectIndex(deps.journal)  # live: each stream's keys, in memory
        # the stream writer's count of collapsed repeats the journal does not hold
        self._unjournaled: Callable[[str, str], tuple[int, int]] | None = getattr(
            self._streams, "unjournaled", None
        )

    @property
    def mode(self) -> Mode:
        return self._deps.mode

    def forget(self, stream: str) -> None:
        """Drop what is kept in memory of a closed stream (the journal keeps it all)."""
        self._index.forget(stream)

    async def run(self, stream: str, key: str, name: str, call: EffectCall) -> Any:
        """Run effect `name` of `stream` under `key`; return its (recorded) result.

        Errors: `EffectRetryScheduled` (retryable failure journaled with its delay: requeue
        after `.delay`); `EffectGaveUp` (the last allowed attempt failed: trigger
        `gave_up`); `EffectFailedPermanently` (a `PermanentError`, now or recorded
        before: trigger `permanent_error`); `ReplayDivergence` (replay mode only).
        `asyncio.CancelledError` passes through with the attempt left in flight.
        """
        if self._deps.mode is Mode.REPLAY:
            return await self._replay(stream, key, name)
        journal = self._deps.journal
        if _belongs(key, stream):
            await self._index.refresh(stream)
            recorded = self._index.success(stream, key)
            if recorded is not None:
                return recorded.result
            history = self._index.history(stream, key)
        else:
            done = await journal.find_by_key(key)
            if done is not None and done.type == ev.EFFECT_SUCCEEDED:
                return done.data.get("result")
            history = key_history(await journal.read_stream(stream), key)
        history = self._with_unjournaled(stream, key, history)
        last = history.last_failure
        if last is not None and history.failed_for_good:
            raise _permanent(
                key, last.attempt, last.error_class, last.message, gave_up=last.gave_up
            )
        attempt = history.attempts + 1
        if self._deps.may_act is not None and not self._deps.may_act():
            raise NotLeading(f"not the leader: effect {key} not started")
        span = self._span(key, name, attempt)
        with span as ids:
            term = self._deps.term() if self._deps.term is not None else None
            started = ev.effect_started(key=key, name=name, attempt=attempt, term=term)
            await self._streams.append(stream, [_stamp(started, ids)])
            # The append may have waited (a paused process, a slow disk): leadership can
            # be gone by now, so look again right before the call (R10).
            if self._deps.may_act is not None and not self._deps.may_act():
                raise NotLeading(f"not the leader any more: effect {key} left in flight")
            await afailpoint("effect.before_send")
            began = self._deps.clock.monotonic()
            failure, result = await self._call(key, call)
            await afailpoint("effect.after_send")
            seconds = self._deps.clock.monotonic() - began
            if failure is None:
                success = ev.effect_succeeded(
                    key=key, name=name, attempt=attempt, result=result, seconds=seconds
                )
                await self._streams.append(stream, [_stamp(success, ids)])
                return result
            raise await self._record_failure(
                stream, key, name, attempt, failure, seconds, ids, counted=history.counted(attempt)
            )

    async def attempts(self, stream: str, key: str) -> int:
        """How many attempts of `key` (one of `stream`'s own keys) have started, those of
        collapsed repeats included."""
        await self._index.refresh(stream)
        return self._with_unjournaled(stream, key, self._index.history(stream, key)).attempts

    def _with_unjournaled(self, stream: str, key: str, history: KeyHistory) -> KeyHistory:
        """`history` with the attempts and waits of collapsed repeats added (they count
        toward giving up and the backoff as journaled ones do)."""
        if self._unjournaled is None:
            return history
        started, waits = self._unjournaled(stream, key)
        if started <= history.attempts and not waits:
            return history
        attempts = max(history.attempts, started)
        return replace(history, attempts=attempts, waits=history.waits + waits)

    async def _call(self, key: str, call: EffectCall) -> tuple[_Failure | None, Any]:
        timeout = self._deps.timeout
        try:
            # not `asyncio.wait_for`: on Python 3.11 it returns the call's result when a
            # cancellation arrives just as the call finishes, and the cancelled reconcile
            # goes on to journal an outcome; `asyncio.timeout` always lets it through
            async with asyncio.timeout(timeout):
                result = await call(key)
        except TimeoutError:
            return _Failure(TIMEOUT_CLASS, True, f"no answer within {timeout:g}s"), None
        except NotLeading:
            raise  # a nested step refused to start: this attempt stays in flight
        except EffectGaveUp as gave_up:
            # a step ran out of attempts: so has the effect around it (not a bad spec)
            return _Failure(type(gave_up).__name__, False, str(gave_up), gave_up=True), None
        except DependencyNotReady as waiting:
            return _Failure(type(waiting).__name__, True, str(waiting), waiting.delay, True), None
        except EffectRetryScheduled as nested:
            if nested.waiting:  # a step's wait is this effect's wait, journaled as the same
                failure = _Failure(nested.error_class, True, nested.message, nested.delay, True)
                return failure, None
            failure = _Failure(
                type(nested).__name__, True, str(nested), nested.delay,
                unavailable=nested.unavailable,
            )  # fmt: skip
            return failure, None
        except PermanentError as bad:
            return _Failure(type(bad).__name__, False, str(bad)), None
        except ServerUnavailable as down:  # an outage: retried, never given up on (R12)
            failure = _Failure(type(down).__name__, True, str(down), down.delay, unavailable=True)
            return failure, None
        except RetryableError as bad:
            return _Failure(type(bad).__name__, True, str(bad), at_least=bad.delay), None
        except Exception as bad:  # any other error is retryable (STYLE: one switch)
            return _Failure(type(bad).__name__, True, str(bad)), None
        try:
            json.dumps(result, allow_nan=False)
        except (TypeError, ValueError) as bad:
            message = f"result is not JSON: {bad}"
            return _Failure("ResultNotJson", False, message), None
        return None, result

    async def _record_failure(
        self,
        stream: str,
        key: str,
        name: str,
        attempt: int,
        failure: _Failure,
        seconds: float,
        ids: SpanIds,
        *,
        counted: int,
    ) -> EffectRetryScheduled | EffectFailedPermanently:
        """Journal the failed attempt (and its retry); return the error to raise.

        `counted`: the attempt's number with the earlier waits left out; it decides
        giving up and the backoff, so time spent waiting for another resource costs no
        attempts. A wait itself never gives up, nor does a server's unavailability."""
        policy = self._deps.backoff
        gave_up = failure.gave_up or (
            failure.retryable
            and not failure.waiting
            and not failure.unavailable
            and counted >= policy.max_attempts
        )
        failed = ev.effect_failed(
            key=key,
            name=name,
            attempt=attempt,
            error_class=failure.error_class,
            retryable=failure.retryable,
            message=failure.message,
            gave_up=gave_up,
            seconds=seconds,
            waiting=failure.waiting,
        )
        if not failure.retryable or gave_up:
            await self._streams.append(stream, [_stamp(failed, ids)])
            return _permanent(key, attempt, failure.error_class, failure.message, gave_up=gave_up)
        backoff = next_delay(key, counted, policy)
        # a wait is polled at its own pace, not at the growing backoff of failures
        delay = failure.at_least if failure.waiting else max(backoff, failure.at_least)
        retry = ev.retry_scheduled(key=key, attempt=attempt, delay=delay, backoff=backoff)
        await self._streams.append(stream, [_stamp(failed, ids), _stamp(retry, ids)])
        return EffectRetryScheduled(
            key,
            attempt=attempt,
            delay=delay,
            message=failure.message,
            error_class=failure.error_class,
            waiting=failure.waiting,
            unavailable=failure.unavailable,
        )

    async def _replay(self, stream: str, key: str, name: str) -> Any:
        cursor = self._cursors.get(stream)
        source = self._deps.recorded or self._deps.journal
        if cursor is None:
            records = await source.read_stream(stream)
            cursor = self._cursors[stream] = ReplayCursor(stream, records)
        answer = cursor.take(key, name)
        if not isinstance(answer, RecordedOutcome):
            return answer.result
        if self._deps.recorded is not None:
            await self._streams.append(stream, [_copy(r) for r in answer.records])
        outcome = answer.outcome
        if outcome.type == ev.EFFECT_SUCCEEDED:
            return outcome.result
        if outcome.gave_up or not outcome.retryable:
            raise _permanent(
                key, outcome.attempt, outcome.error_class, outcome.message, gave_up=outcome.gave_up
            )
        retry = answer.retry
        counted = max(1, outcome.attempt - answer.waits_before)
        expected = next_delay(key, counted, self._deps.backoff)
        if retry is None or retry.backoff != expected:
            raise ReplayDivergence(
                stream=stream,
                position=answer.started.position,
                expected=key,
                got=key,
                why=f"the recorded backoff is {retry and retry.backoff!r}, the code computes "
                f"{expected!r}",
            )
        raise EffectRetryScheduled(
            key,
            attempt=outcome.attempt,
            delay=retry.delay,
            message=outcome.message,
            error_class=outcome.error_class,
            waiting=outcome.waiting,
        )

    def _span(self, key: str, name: str, attempt: int) -> AbstractContextManager[SpanIds]:
        if self._deps.tracer is None:
            return nullcontext(SpanIds())
        return self._deps.tracer.attempt(key=key, name=name, attempt=attempt)


def _belongs(key: str, stream: str) -> bool:
    """Whether `key` (`<uid>:...`) is one of `stream`'s (`...#<uid>`) keys: then its whole
    history, success included, is in that stream."""
    uid = StreamId.parse(stream).uid
    return bool(uid) and key.partition(":")[0] == uid


def _copy(record: Record) -> NewEvent:
    return NewEvent(
        type=record.type,
        data=record.data,
        schema=record.schema,
        idempotency_key=record.idempotency_key,
        trace_id=record.trace_id,
        span_id=record.span_id,
    )


def _stamp(event: NewEvent, ids: SpanIds) -> NewEvent:
    if ids.trace_id is None and ids.span_id is None:
        return event
    return replace(event, trace_id=ids.trace_id, span_id=ids.span_id)


def _permanent(
    key: str, attempt: int, error_class: str, message: str, *, gave_up: bool
) -> EffectFailedPermanently:
    if gave_up:
        return EffectGaveUp(key, attempts=attempt, error_class=error_class, message=message)
    return EffectFailedPermanently(key, error_class=error_class, message=message)

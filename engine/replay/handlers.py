"""`--verify`, second stage: re-run the operator's provision and finalize handlers over
the journal, in replay mode, and find the first step that differs from the recorded one.

Each recorded handler attempt (an `EffectStarted` of `provision`/`finalize` to its
outcome) is re-run with a real `Context` over the runtime's own `StepBackend`, whose
`EffectRunner` is in `Mode.REPLAY` and answers each step from the records of that attempt
(so no effect is called and nothing is written). A step that succeeded in an earlier
attempt answers with its recorded result, as the live runner would without a record.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, cast

from engine.clock import FakeClock
from engine.effects import EffectRunner, Mode, RunnerDeps
from engine.effects.backoff import DEFAULT_BACKOFF, BackoffPolicy
from engine.effects.errors import PermanentError, ReplayDivergence
from engine.effects.kube import KubeWriter
from engine.fsm import events as ev
from engine.fsm.key import parse_key
from engine.journal.record import Record
from engine.replay.driver import LoadedJournal
from engine.replay.recorded import RecordedJournal
from engine.replay.timeline import ResourceId
from engine.replay.verify import HANDLER_EFFECTS, Divergence, StreamCheck
from engine.runtime.children import ChildLedger
from engine.runtime.context import Context, EffectFn
from engine.runtime.handler_backend import StepBackend
from engine.runtime.operator import Operator

_log = logging.getLogger("engine.replay")


def load_operator(reference: str) -> Operator:
    """The `Operator` at `module:attribute`: an Operator value, or a function of no
    arguments that returns one. Errors: `ValueError` naming what is wrong."""
    module_name, _, attribute = reference.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"--operator {reference!r} should look like package.module:attribute")
    try:
        module = importlib.import_module(module_name)
    except ImportError as bad:
        raise ValueError(f"--operator: cannot import {module_name!r}: {bad}") from None
    value = getattr(module, attribute, None)
    if value is None:
        raise ValueError(f"--operator: {module_name!r} has no attribute {attribute!r}")
    if callable(value) and not isinstance(value, Operator):
        value = value()
    if not isinstance(value, Operator):
        raise ValueError(f"--operator {reference!r} is not an Operator (nor makes one)")
    return value


@dataclass(frozen=True, slots=True)
class HandlerAttempt:
    """One recorded run of a handler: its `EffectStarted` and its outcome (None when the
    journal ends first), with the step records in between."""

    started: Record
    outcome: Record | None
    steps: tuple[Record, ...]


def handler_attempts(records: Sequence[Record]) -> list[HandlerAttempt]:
    """The handler attempts of one stream, in order (a run cut off by a crash and its
    re-run under the same key are one attempt, as the runner's replay cursor sees it)."""
    open_runs: dict[str, int] = {}
    spans: list[tuple[int, int | None]] = []
    for index, record in enumerate(records):
        key = str(record.data.get("key", ""))
        if record.type == ev.EFFECT_STARTED and _is_handler(record):
            open_runs.setdefault(key, index)
        elif record.type in (ev.EFFECT_SUCCEEDED, ev.EFFECT_FAILED) and key in open_runs:
            spans.append((open_runs.pop(key), index))
    spans += [(start, None) for start in open_runs.values()]
    attempts = []
    for start, end in sorted(spans):
        started = records[start]
        inside = records[start + 1 : end if end is not None else len(records)]
        steps = tuple(
            r
            for r in inside
            if r.type in ev.EFFECT_TYPES
            and r.data.get("key") != started.data.get("key")
            and not _is_handler(r)
        )
        outcome = records[end] if end is not None else None
        attempts.append(HandlerAttempt(started, outcome, steps))
    return attempts


def _is_handler(record: Record) -> bool:
    parts = parse_key(str(record.data.get("key", "")))
    return parts is not None and parts.name in HANDLER_EFFECTS


class _TrackingBackend:
    """The `StepBackend` with two additions: it notes each key the handler asks for, and
    answers keys that succeeded before this attempt from their recorded results."""

    def __init__(self, inner: StepBackend, done: Mapping[str, Any]) -> None:
        self._inner = inner
        self._done = done
        self.asked: list[str] = []

    async def run_step(self, key: str, name: str, call: EffectFn) -> Any:
        self.asked.append(key)
        if key in self._done:
            return self._done[key]
        return await self._inner.run_step(key, name, call)

    async def apply_child(self, key: str, manifest: Mapping[str, Any]) -> Mapping[str, Any]:
        self.asked.append(key)
        if key in self._done:
            return cast(Mapping[str, Any], self._done[key])
        return await self._inner.apply_child(key, manifest)


async def check_handlers(
    loaded: LoadedJournal, operator: Operator, *, backoff: BackoffPolicy = DEFAULT_BACKOFF
) -> tuple[StreamCheck, ...]:
    """Replay the handler attempts of every stream of `operator`'s kind."""
    resource = operator.resource
    checks = []
    for stream in sorted(loaded.streams):
        ident = ResourceId.of(stream)
        if (ident.group, ident.kind) != (resource.group, resource.kind):
            continue
        checks.append(
            await check_stream_handlers(stream, loaded.streams[stream], operator, backoff)
        )
    return tuple(checks)


async def check_stream_handlers(
    stream: str, records: Sequence[Record], operator: Operator, backoff: BackoffPolicy
) -> StreamCheck:
    """Re-run each handler attempt of one stream; stop at the first divergence."""
    attempts = handler_attempts(records)
    done: dict[str, Any] = {}
    position_of = {id(r): i for i, r in enumerate(records)}
    checked = 0
    for attempt in attempts:
        checked += 1
        problem = await _replay_attempt(stream, records, attempt, operator, backoff, done)
        if problem is not None:
            return StreamCheck(stream, checked, problem)
        end = position_of[id(attempt.outcome)] if attempt.outcome is not None else len(records)
        for record in records[: end + 1]:
            if record.type == ev.EFFECT_SUCCEEDED:
                done[str(record.data.get("key"))] = record.data.get("result")
    return StreamCheck(stream, checked, None)


async def _replay_attempt(
    stream: str,
    records: Sequence[Record],
    attempt: HandlerAttempt,
    operator: Operator,
    backoff: BackoffPolicy,
    done: Mapping[str, Any],
) -> Divergence | None:
    started = attempt.started
    name = str(started.data.get("name"))
    handler = operator.provision if name == "provision" else operator.finalize
    runner = EffectRunner(
        RunnerDeps(
            journal=RecordedJournal(attempt.steps),
            clock=FakeClock(start=started.at),
            backoff=backoff,
            mode=Mode.REPLAY,
        )
    )
    context, backend = _context(stream, records, attempt, operator, runner, done)
    ended = attempt.outcome.position if attempt.outcome is not None else None
    try:
        if handler is not None:
            await handler(context)
        got = "succeeded"
    except ReplayDivergence as diverged:
        where = diverged.position if diverged.position is not None else ended
        if diverged.position is None:
            why = f"the journal's {name} ends here, the code runs one more step {diverged.got!r}"
        else:
            why = f"the journal has step {diverged.expected!r} here, the code runs {diverged.got!r}"
        return Divergence(stream, where, "handler", why)
    except PermanentError:
        got = "failed for good"
    except Exception:  # the live runner records any other error as retryable
        got = "failed, retryable"
    for step in attempt.steps:
        if step.type == ev.EFFECT_STARTED and step.data.get("key") not in backend.asked:
            why = f"the journal ran step {step.data.get('name')!r} here, the code does not"
            return Divergence(stream, step.position, "handler", why)
    if attempt.outcome is None:
        return None
    expected = _recorded(attempt.outcome)
    if expected != got:
        why = f"the journal recorded {name} {expected}, the code's {name} {got}"
        return Divergence(stream, attempt.outcome.position, "handler", why)
    return None


def _recorded(outcome: Record) -> str:
    if outcome.type == ev.EFFECT_SUCCEEDED:
        return "succeeded"
    return "failed, retryable" if outcome.data.get("retryable") else "failed for good"


def _context(
    stream: str,
    records: Sequence[Record],
    attempt: HandlerAttempt,
    operator: Operator,
    runner: EffectRunner,
    done: Mapping[str, Any],
) -> tuple[Context, _TrackingBackend]:
    started = attempt.started
    ident = ResourceId.of(stream)
    observed = [r for r in records if r.type == ev.OBSERVED and r.position < started.position]
    spec = dict(observed[-1].data.get("spec") or {}) if observed else {}
    parts = parse_key(str(started.data.get("key")))
    generation = parts.generation if parts is not None else 0
    metadata = {
        "name": ident.name,
        "namespace": ident.namespace,
        "uid": ident.uid,
        "generation": generation,
    }
    owner = {
        "apiVersion": operator.resource.api_version,
        "kind": operator.resource.kind,
        "metadata": metadata,
        "spec": spec,
    }
    inner = StepBackend(
        operator=operator,
        runner=runner,
        # replay answers every step from the journal: the writer is never asked to write
        writer=KubeWriter(cast(Any, None)),
        ledger=ChildLedger(),
        stream=stream,
        owner=owner,
    )
    backend = _TrackingBackend(inner, done)
    term = started.data.get("term")
    context = Context(
        name=ident.name,
        namespace=ident.namespace,
        uid=ident.uid,
        generation=generation,
        round=parts.n if parts is not None else 0,
        spec=MappingProxyType(spec),
        metadata=MappingProxyType(metadata),
        term=term if isinstance(term, int) else started.term,
        logger=_log,
        backend=backend,
    )
    return context, backend

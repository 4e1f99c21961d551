"""`engine why`: a resource's situation in plain sentences (pure).

From the folded state, the stream's records, the supervisor's findings and a `now`:
the state and since when, the next step decide would take, effects in flight or failed
(attempts, last error), the next retry, and any stuck report or wait-for cycle.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from engine.fsm import events as ev
from engine.fsm.decide import decide
from engine.fsm.fold import apply, fold
from engine.fsm.state import FAILED_OUTCOME, PENDING_OUTCOME, EffectRecord, ResourceState
from engine.fsm.table import DELETED, FAILED, READY
from engine.journal.codec import encode_at
from engine.journal.record import Record
from engine.replay.timeline import ResourceId
from engine.webhooks import decisions

SUPERVISOR_TYPES = (ev.STUCK_DETECTED, ev.DEADLOCK_DETECTED)


def _fold_from(state: ResourceState, records: Sequence[Record]) -> ResourceState:
    for record in records:
        state = apply(state, record)
    return state


def _at(moment: datetime) -> str:
    return encode_at(moment)


def _seconds(value: float) -> str:
    return f"{value:,.1f} s"


def explain(
    stream: str,
    records: Sequence[Record],
    *,
    findings: Sequence[Record] = (),
    now: datetime | None = None,
    start: ResourceState | None = None,
) -> list[str]:
    """Sentences about `stream` from its `records` (in order, at least one) and the
    supervisor's `findings` (StuckDetected/DeadlockDetected records of any stream).
    `now` defaults to the time of the stream's last record, so the answer is stable.
    `start` is the state `records` fold from (a compaction cut's), the initial by default.
    Errors: `FoldError`; `ValueError` for an empty `records`."""
    if not records:
        raise ValueError(f"stream {stream} has no records")
    resource = ResourceId.of(stream)
    if resource.uid == decisions.WEBHOOK_STREAM_UID:
        return _webhook_lines(resource, records)
    state = fold(records) if start is None else _fold_from(start, records)
    moment = now if now is not None else records[-1].at
    clock = "now" if now is not None else "the journal's last record"
    lines = [_state_line(resource, state, records, moment, clock)]
    if state.state in (READY, DELETED):
        lines.append("Nothing is pending: there is nothing to explain.")
        return lines
    if state.generation > state.observed_generation:
        lines.append(
            f"Generation {state.generation} is observed; the last decision was about "
            f"generation {state.observed_generation}."
        )
    lines += _next_step(state, records, moment)
    for effect in state.effects:
        if effect.outcome != "succeeded":
            lines.append(_effect_line(effect, records))
    if state.last_error and state.state == FAILED:
        lines.append(
            f"It failed because: {state.last_error}. It stays Failed until its spec changes "
            "or healing is applied."
        )
    retry_at = state.retry_at
    if retry_at is not None:
        left = retry_at - moment.timestamp()
        when = f"in {_seconds(left)}" if left > 0 else f"{_seconds(-left)} overdue"
        lines.append(
            f"The next retry is due at {_at(datetime.fromtimestamp(retry_at, moment.tzinfo))} "
            f"({when} as of {clock})."
        )
    lines += _findings(stream, findings)
    return lines


WEBHOOK_LINES = 5
"""How many of the latest webhook decisions `why` shows."""


def _webhook_lines(resource: ResourceId, records: Sequence[Record]) -> list[str]:
    """The webhook decisions about an object: how many refused, and the latest ones."""
    admissions = [r for r in records if r.type == decisions.ADMISSION_DECIDED]
    refused = [r for r in admissions if r.data.get("result") != "allowed"]
    lines = [
        f"{resource.label} ({resource.kind}, webhooks): {len(admissions)} admission "
        f"decision(s), {len(refused)} refused or failed."
    ]
    for record in records[-WEBHOOK_LINES:]:
        text = decisions.describe(record.type, record.data)
        if text is not None:
            lines.append(f"At {_at(record.at)} (position {record.position}): {text}.")
    return lines


def _state_line(
    resource: ResourceId,
    state: ResourceState,
    records: Sequence[Record],
    moment: datetime,
    clock: str,
) -> str:
    entered = next((r for r in reversed(records) if r.type == ev.TRANSITION_TAKEN), None)
    since = entered if entered is not None else records[0]
    how = f", trigger {since.data.get('trigger')}" if entered is not None else ""
    age = (moment - since.at).total_seconds()
    return (
        f"{resource.label} ({resource.kind} {resource.uid}) is {state.state} since "
        f"{_at(since.at)} (position {since.position}{how}): {_seconds(age)} as of {clock}."
    )


def _next_step(state: ResourceState, records: Sequence[Record], moment: datetime) -> list[str]:
    latest = next((r for r in reversed(records) if r.type == ev.OBSERVED), None)
    if latest is None:
        return ["No observation is journaled yet, so nothing can be decided."]
    observation = ev.parse_observation(latest)
    decision = decide(state, observation, moment)
    parts = [f"decide would now: {decision.rule}"]
    if decision.trigger:
        parts.append(f"fire {decision.trigger}")
    if decision.effects:
        parts.append("run " + ", ".join(type(e).__name__ for e in decision.effects))
    if decision.requeue_after is not None:
        parts.append(f"look again in {_seconds(decision.requeue_after)}")
    return ["Next step: " + "; ".join(parts) + "."]


def _effect_line(effect: EffectRecord, records: Sequence[Record]) -> str:
    attempts = f"{effect.attempts} attempt{'s' if effect.attempts != 1 else ''}"
    started = next(
        (
            r
            for r in reversed(records)
            if r.type == ev.EFFECT_STARTED and r.data.get("key") == effect.key
        ),
        None,
    )
    when = f" (last started at {_at(started.at)}, position {started.position})" if started else ""
    return _effect_state(effect, attempts, when) + _repeats(effect, records)


def _repeats(effect: EffectRecord, records: Sequence[Record]) -> str:
    """What the newest collapsed run of identical failures of the effect says, if any."""
    failed = next(
        (
            r
            for r in reversed(records)
            if r.type == ev.EFFECT_FAILED and r.data.get("key") == effect.key
        ),
        None,
    )
    repeated = failed.data.get(ev.REPEATED_FIELD) if failed is not None else None
    if failed is None or not isinstance(repeated, Mapping):
        return ""
    return (
        f" It failed the same way {repeated.get('count')} times in a row since "
        f"{repeated.get('since')} (position {failed.position}; identical attempts are "
        "journaled once per doubling of their count)."
    )


def _effect_state(effect: EffectRecord, attempts: str, when: str) -> str:
    if effect.outcome == PENDING_OUTCOME:
        return (
            f"Effect {effect.name} ({effect.key}) is in flight after {attempts}{when}: running, "
            "or cut off by a stop; it resumes under the same key."
        )
    if effect.outcome == FAILED_OUTCOME:
        if effect.gave_up:
            kind = "gave up"
        elif effect.retryable:
            kind = "will be retried"
        else:
            kind = "permanent"
        return (
            f"Effect {effect.name} ({effect.key}) failed {attempts}{when}, {kind}: "
            f"{effect.last_error}."
        )
    return f"Effect {effect.name} ({effect.key}): {effect.outcome} after {attempts}{when}."


def _findings(stream: str, findings: Sequence[Record]) -> list[str]:
    lines: list[str] = []
    stuck = [r for r in findings if r.type == ev.STUCK_DETECTED and r.stream == stream]
    if stuck:
        last = stuck[-1]
        lines.append(
            f"The supervisor found it stuck in {last.data.get('state')} for "
            f"{last.data.get('seconds')} s at {_at(last.at)}: {last.data.get('reason')}."
        )
    cycles = [
        r
        for r in findings
        if r.type == ev.DEADLOCK_DETECTED
        and (r.stream == stream or stream in (r.data.get("cycle") or ()))
    ]
    if cycles:
        last = cycles[-1]
        names = [ResourceId.of(str(s)).label for s in last.data.get("cycle") or ()]
        lines.append(
            f"It is in a wait-for cycle (deadlock) found at {_at(last.at)}: "
            + " → ".join([*names, names[0]] if names else names)
            + "."
        )
    else:
        lines.append("No wait-for cycle (deadlock) involving it is recorded in the journal.")
    return lines

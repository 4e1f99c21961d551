"""`--verify`, first stage: re-drive fold and decide over a journal and find where the
decisions the code makes today differ from those the journal recorded (pure).

At each `TransitionTaken`, decide (given the state folded up to there and the newest
observation) must fire the recorded trigger; at each `EffectStarted` of a handler
(`provision`/`finalize`), decide must fire nothing and ask for that effect key.

Tolerance, because the live engine decided a moment before it journaled: `now` may be
the record's own time or the previous record's of the stream, and the observation the
newest or the one before it (a watcher may have journaled a newer one in between).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from engine.fsm import events as ev
from engine.fsm.decide import DEFAULT_POLICY, DecidePolicy, decide
from engine.fsm.decision import Decision, RunFinalize, RunProvision
from engine.fsm.fold import apply
from engine.fsm.key import FINALIZE, PROVISION
from engine.fsm.observation import Observation
from engine.fsm.state import ResourceState
from engine.journal.record import Record

HANDLER_EFFECTS = (PROVISION, FINALIZE)


@dataclass(frozen=True, slots=True)
class Divergence:
    """Where replay and journal first disagree on one stream. `stage`: `decide` or
    `handler`; `position` None means the journal ended first."""

    stream: str
    position: int | None
    stage: str
    message: str

    def describe(self) -> str:
        where = f"position {self.position}" if self.position is not None else "the end"
        return f"{where}: {self.stream}: {self.stage}: {self.message}"


@dataclass(frozen=True, slots=True)
class StreamCheck:
    """The result of re-driving one stream: how many recorded steps were checked, and
    the first divergence (None: the code agrees with the journal)."""

    stream: str
    checked: int
    divergence: Divergence | None


def check_decisions(
    stream: str, records: Sequence[Record], *, policy: DecidePolicy = DEFAULT_POLICY
) -> StreamCheck:
    """Re-fold `records` (one stream, in order) and re-decide at each recorded decision.

    Errors: `FoldError` when a record cannot be folded at all.
    """
    state = ResourceState()
    seen: list[Observation] = []
    previous_at: datetime | None = None
    checked = 0
    for record in records:
        problem: str | None = None
        if record.type == ev.TRANSITION_TAKEN:
            checked += 1
            problem = _check_transition(state, record, seen, previous_at, policy)
        elif record.type == ev.EFFECT_STARTED and record.data.get("name") in HANDLER_EFFECTS:
            checked += 1
            problem = _check_started(state, record, seen, previous_at, policy)
        if problem is not None:
            return StreamCheck(
                stream, checked, Divergence(stream, record.position, "decide", problem)
            )
        state = apply(state, record)
        if record.type == ev.OBSERVED:
            seen = [*seen[-1:], ev.parse_observation(record)]
        previous_at = record.at
    return StreamCheck(stream, checked, None)


def _decisions(
    state: ResourceState,
    record: Record,
    seen: list[Observation],
    previous_at: datetime | None,
    policy: DecidePolicy,
) -> list[Decision]:
    nows = [record.at] + ([previous_at] if previous_at is not None else [])
    return [decide(state, obs, now, policy=policy) for obs in reversed(seen) for now in nows]


def _check_transition(
    state: ResourceState,
    record: Record,
    seen: list[Observation],
    previous_at: datetime | None,
    policy: DecidePolicy,
) -> str | None:
    facts = ev.parse_transition(record)
    if not seen:
        return f"the journal took {facts.trigger!r} before any observation"
    decisions = _decisions(state, record, seen, previous_at, policy)
    if any(d.trigger == facts.trigger for d in decisions):
        return None
    first = decisions[0]
    fired = repr(first.trigger) if first.trigger else "no trigger"
    return (
        f"in {state.state}, decide fires {fired} ({first.rule}); "
        f"the journal took {facts.trigger!r} ({facts.source} → {facts.dest})"
    )


def _check_started(
    state: ResourceState,
    record: Record,
    seen: list[Observation],
    previous_at: datetime | None,
    policy: DecidePolicy,
) -> str | None:
    key = str(record.data.get("key"))
    name = str(record.data.get("name"))
    if not seen:
        return f"the journal started {name} {key} before any observation"
    decisions = _decisions(state, record, seen, previous_at, policy)
    if any(d.trigger is None and key in _handler_keys(d) for d in decisions):
        return None
    first = decisions[0]
    if first.trigger is not None:
        asked = f"fires {first.trigger!r} first"
    else:
        keys = _handler_keys(first)
        asked = f"asks for {', '.join(keys)}" if keys else "asks for no handler run"
    return f"in {state.state}, decide {asked} ({first.rule}); the journal started {name} {key}"


def _handler_keys(decision: Decision) -> list[str]:
    return [e.key for e in decision.effects if isinstance(e, (RunProvision, RunFinalize))]

"""One resource's lane of the timeline: its state spans, effect attempts, retry gaps,
markers and waits, folded record by record (pure; fed in position order).

Times are seconds since the journal's first record (the picture's origin).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from engine.fsm import events as ev
from engine.fsm.fold import apply
from engine.fsm.state import ResourceState
from engine.journal.record import Record

RUNNING = "running"
OUTCOMES = ("succeeded", "retryable", "waiting", "permanent", "gave_up", RUNNING)
"""An attempt's outcome, as the page names (and colours) it."""

_WAIT = re.compile(r"^waiting for (?P<target>[^,\s]+)(?P<missing>, which does not exist yet)?")


@dataclass(frozen=True, slots=True)
class StreamName:
    """Which resource a stream belongs to, parsed from `group/kind/namespace/name#uid`."""

    stream: str
    kind: str
    namespace: str
    name: str
    uid: str

    @classmethod
    def of(cls, stream: str) -> StreamName:
        """Parse a stream name; a stream of another shape keeps its text as the name."""
        path, _, uid = stream.rpartition("#")
        parts = path.split("/") if path else []
        if len(parts) < 4:
            return cls(stream=stream, kind="", namespace="", name=stream, uid="")
        return cls(stream, parts[-3], parts[-2], parts[-1], uid)

    @property
    def label(self) -> str:
        """`namespace/name` (just `name` when cluster-scoped): the key waits name."""
        return f"{self.namespace}/{self.name}" if self.namespace else self.name


@dataclass(slots=True)
class Span:
    """The resource sat in `state` from `start` to `end` (None: still there)."""

    state: str
    start: float
    position: int
    end: float | None = None


@dataclass(slots=True)
class Attempt:
    """One attempt of an effect, from its `EffectStarted` to its outcome."""

    key: str
    name: str
    attempt: int
    start: float
    position: int
    trace_id: str | None
    end: float | None = None
    end_position: int | None = None
    outcome: str = RUNNING
    message: str = ""
    retry_delay: float | None = None


@dataclass(frozen=True, slots=True)
class Marker:
    """A point event on the lane: a transition, a heal, a stuck report, a deadlock."""

    kind: str
    at: float
    position: int
    text: str
    trace_id: str | None


@dataclass(frozen=True, slots=True)
class Wait:
    """At `at`, an attempt of this resource ended waiting for `target` (a `ns/name`)."""

    at: float
    position: int
    target: str
    missing: bool


@dataclass(slots=True)
class Lane:
    """Everything the page draws for one stream."""

    resource: StreamName
    fold: ResourceState = field(default_factory=ResourceState)
    spans: list[Span] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    markers: list[Marker] = field(default_factory=list)
    waits: list[Wait] = field(default_factory=list)
    records: int = 0
    last_position: int = 0
    last_at: float = 0.0

    @property
    def state(self) -> str:
        return self.fold.state

    def outcomes(self) -> set[str]:
        """The outcomes its attempts had (for the outcome filter)."""
        return {a.outcome for a in self.attempts}

    def states(self) -> set[str]:
        """Every state it was in (for the state filter)."""
        return {s.state for s in self.spans}

    def add(self, record: Record, at: float) -> None:
        """Fold one more record of this stream, `at` seconds after the origin.

        Errors: `FoldError` (from `apply`) for a record that cannot be folded.
        """
        before = self.fold
        self.fold = apply(before, record)
        self.records += 1
        self.last_position, self.last_at = record.position, at
        if not self.spans:
            self.spans.append(Span(before.state, at, record.position))
        kind = record.type
        if kind == ev.TRANSITION_TAKEN:
            facts = ev.parse_transition(record)
            self._enter(facts.dest, at, record.position)
            text = f"{facts.source} → {facts.dest} ({facts.trigger})"
            self.markers.append(Marker("transition", at, record.position, text, record.trace_id))
        elif kind in ev.EFFECT_TYPES:
            self._effect(record, at)
        elif kind == ev.HEALING_APPLIED:
            text = f"healing {record.data.get('action')}: {record.data.get('reason')}"
            self.markers.append(Marker("heal", at, record.position, text, record.trace_id))
        elif kind == ev.STUCK_DETECTED:
            text = f"stuck in {record.data.get('state')} for {record.data.get('seconds')} s"
            self.markers.append(Marker("stuck", at, record.position, text, record.trace_id))
        elif kind == ev.DEADLOCK_DETECTED:
            cycle = [StreamName.of(str(s)).label for s in record.data.get("cycle") or ()]
            text = "deadlock: " + " → ".join([*cycle, cycle[0]] if cycle else cycle)
            self.markers.append(Marker("deadlock", at, record.position, text, record.trace_id))
        elif self.fold.state != self.spans[-1].state:  # e.g. a fold step without a transition
            self._enter(self.fold.state, at, record.position)

    def _enter(self, state: str, at: float, position: int) -> None:
        current = self.spans[-1]
        if current.state == state:
            return
        current.end = at
        self.spans.append(Span(state, at, position))

    def _effect(self, record: Record, at: float) -> None:
        fact = ev.parse_effect(record)
        if fact.type == ev.EFFECT_STARTED:
            self.attempts.append(
                Attempt(fact.key, fact.name, fact.attempt, at, record.position, record.trace_id)
            )
            return
        attempt = self._open(fact.key, None if fact.type == ev.RETRY_SCHEDULED else fact.attempt)
        if fact.type == ev.RETRY_SCHEDULED:
            if attempt is not None:
                attempt.retry_delay = fact.delay
            return
        if attempt is None:  # an outcome without its start (a cut journal): a point bar
            attempt = Attempt(fact.key, fact.name, fact.attempt, at, record.position, None)
            self.attempts.append(attempt)
        attempt.end, attempt.end_position = at, record.position
        attempt.trace_id = record.trace_id or attempt.trace_id
        if fact.type == ev.EFFECT_SUCCEEDED:
            attempt.outcome = "succeeded"
            return
        attempt.message = f"{fact.error_class}: {fact.message}"
        if fact.waiting:
            attempt.outcome = "waiting"
            found = _WAIT.match(fact.message)
            if found is not None:
                target = found.group("target")
                missing = found.group("missing") is not None
                self.waits.append(Wait(at, record.position, target, missing))
        elif fact.gave_up:
            attempt.outcome = "gave_up"
        else:
            attempt.outcome = "retryable" if fact.retryable else "permanent"

    def _open(self, key: str, number: int | None) -> Attempt | None:
        # an outcome belongs to the newest attempt of its key and number (a retry, to
        # the newest of its key): an outcome of another attempt is drawn on its own
        for attempt in reversed(self.attempts):
            if attempt.key == key:
                return attempt if number is None or attempt.attempt == number else None
        return None


def seconds_between(origin: datetime, moment: datetime) -> float:
    """`moment` as seconds after `origin`, to the microsecond."""
    return round((moment - origin).total_seconds(), 6)

"""The timeline of a journal: one row per record, grouped per resource stream (pure).

The state before and after each record comes from fold's own `apply`, and each row's
facts from the parsers in `engine.fsm.events`, so a replayed timeline shows what the
live engine folded. Deterministic: the same records give the same rows, byte for byte.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from engine.fsm import events as ev
from engine.fsm.fold import apply
from engine.fsm.state import ResourceState
from engine.identity import StreamId
from engine.journal.codec import encode_at
from engine.journal.record import Record
from engine.webhooks.decisions import describe as describe_webhook_record

INITIAL = ResourceState()


@dataclass(frozen=True, slots=True)
class ResourceId:
    """Which resource a stream belongs to, parsed from `group/kind/namespace/name#uid`."""

    stream: str
    group: str
    kind: str
    namespace: str
    name: str
    uid: str

    @classmethod
    def of(cls, stream: str) -> ResourceId:
        """Parse a stream name; a stream of another shape keeps its text as the name."""
        ident = StreamId.parse(stream)
        return cls(stream, ident.group, ident.kind, ident.namespace, ident.name, ident.uid)

    @property
    def label(self) -> str:
        """`namespace/name` (just `name` when cluster-scoped)."""
        return f"{self.namespace}/{self.name}" if self.namespace else self.name


@dataclass(frozen=True, slots=True)
class TimelineRow:
    """One record as a timeline line. `source`/`dest` are the states before and after
    (for `TransitionTaken`, the transition's own); `outcome` is a short plain phrase."""

    position: int
    version: int
    at: str
    event: str
    source: str
    dest: str
    trigger: str | None
    effect: str | None
    key: str | None
    attempt: int | None
    outcome: str
    trace_id: str | None


@dataclass(frozen=True, slots=True)
class StreamTimeline:
    """The rows of one stream (only those the caller asked to see) and its final state."""

    resource: ResourceId
    rows: tuple[TimelineRow, ...]
    state: ResourceState
    records: int


@dataclass(frozen=True, slots=True)
class Window:
    """Which records to show: positions or times, both ends inclusive (None: open)."""

    since_position: int | None = None
    since_time: datetime | None = None
    until_position: int | None = None
    until_time: datetime | None = None

    def before_start(self, record: Record) -> bool:
        """The record comes before `since` (folded, not shown)."""
        if self.since_position is not None and record.position < self.since_position:
            return True
        return self.since_time is not None and record.at < self.since_time

    def past_end(self, record: Record) -> bool:
        """The record comes after `until` (neither folded nor shown)."""
        if self.until_position is not None and record.position > self.until_position:
            return True
        return self.until_time is not None and record.at > self.until_time


EVERYTHING = Window()
"""The window that shows every record."""


@dataclass(slots=True)
class _Stream:
    resource: ResourceId
    state: ResourceState = INITIAL
    rows: list[TimelineRow] = field(default_factory=list)
    records: int = 0


class TimelineBuilder:
    """Folds records in position order into per-stream timelines (one pass, no I/O).

    Errors: `FoldError` (from `apply`) for a record that cannot be folded.
    """

    def __init__(self, window: Window = EVERYTHING) -> None:
        self._window = window
        self._streams: dict[str, _Stream] = {}
        self._moment: datetime | None = None
        self._moment_text = ""
        self.done = False
        """True once a record past `until` was seen: the caller may stop reading."""

    def add(self, record: Record) -> None:
        """Fold one more record (records past the window's end are ignored)."""
        if self._window.past_end(record):
            self.done = True
            return
        stream = self._streams.get(record.stream)
        if stream is None:
            stream = self._streams[record.stream] = _Stream(ResourceId.of(record.stream))
        before = stream.state
        after = apply(before, record)
        stream.state = after
        stream.records += 1
        if not self._window.before_start(record):
            if record.at is not self._moment:  # records of one commit share their time
                self._moment, self._moment_text = record.at, encode_at(record.at)
            stream.rows.append(row_of(record, before, after, at=self._moment_text))

    def result(self) -> tuple[StreamTimeline, ...]:
        """The timelines, sorted by namespace, name and stream."""
        ordered = sorted(
            self._streams.values(),
            key=lambda s: (s.resource.namespace, s.resource.name, s.resource.stream),
        )
        return tuple(StreamTimeline(s.resource, tuple(s.rows), s.state, s.records) for s in ordered)


def stream_timeline(
    records: Iterable[Record],
    *,
    resource: ResourceId,
    window: Window = EVERYTHING,
    start: ResourceState = INITIAL,
    stop: int | None = None,
) -> StreamTimeline | None:
    """The timeline of one stream's `records` (in version order), folded from `start`
    (a compaction cut's state, or the initial one); records at or past position `stop`
    are left out. None when no record comes before `stop`. Errors: `FoldError`."""
    state = start
    rows: list[TimelineRow] = []
    count = 0
    moment: datetime | None = None
    moment_text = ""
    for record in records:
        if stop is not None and record.position >= stop:
            break
        before = state
        state = apply(before, record)
        count += 1
        if not window.before_start(record):
            if record.at is not moment:  # records of one commit share their time
                moment, moment_text = record.at, encode_at(record.at)
            rows.append(row_of(record, before, state, at=moment_text))
    if not count:
        return None
    return StreamTimeline(resource, tuple(rows), state, count)


def build_timeline(
    records: Iterable[Record], window: Window = EVERYTHING
) -> tuple[StreamTimeline, ...]:
    """The timelines of `records` (any number of streams, in position order)."""
    builder = TimelineBuilder(window)
    for record in records:
        builder.add(record)
        if builder.done:
            break
    return builder.result()


def row_of(
    record: Record, before: ResourceState, after: ResourceState, *, at: str | None = None
) -> TimelineRow:
    """The timeline row of `record`, folded from `before` to `after`; `at`, when given,
    is `record.at` already encoded."""
    source, dest = before.state, after.state
    trigger = effect = key = None
    attempt: int | None = None
    kind = record.type
    data = record.data
    # `apply` has folded this record, so its payload passed the event parsers' checks:
    # the common types are read directly (the parsers' values, without a second parse)
    if kind == ev.TRANSITION_TAKEN:
        source, dest, trigger = data["from"], data["to"], data["trigger"]
        outcome = trigger
        key, attempt = data.get("effect_key"), data.get("attempt")
    elif kind == ev.EFFECT_STARTED or kind == ev.EFFECT_SUCCEEDED:
        key, attempt = data["key"], data["attempt"]
        known = after.effect(key)
        effect = data["name"] or (known.name if known is not None else None)
        outcome = "started" if kind == ev.EFFECT_STARTED else "succeeded"
    elif kind in ev.EFFECT_TYPES:
        fact = ev.parse_effect(record)
        key, attempt = fact.key, fact.attempt
        known = after.effect(fact.key)
        effect = fact.name or (known.name if known is not None else None)
        outcome = _effect_outcome(fact)
    else:
        outcome = _other_outcome(record)
    return TimelineRow(
        position=record.position,
        version=record.stream_version,
        at=encode_at(record.at) if at is None else at,
        event=kind,
        source=source,
        dest=dest,
        trigger=trigger,
        effect=effect,
        key=key,
        attempt=attempt,
        outcome=outcome,
        trace_id=record.trace_id,
    )


def _effect_outcome(fact: ev.EffectOutcome) -> str:
    if fact.type == ev.EFFECT_STARTED:
        return "started"
    if fact.type == ev.EFFECT_SUCCEEDED:
        return "succeeded"
    if fact.type == ev.RETRY_SCHEDULED:
        return f"retry in {fact.delay:.3f}s"
    kind = "gave up" if fact.gave_up else ("retryable" if fact.retryable else "permanent")
    failed = f"failed \u00d7{fact.repeated}" if fact.repeated else "failed"  # a collapsed run
    return f"{failed} ({kind}): {fact.error_class}: {fact.message}"


def _other_outcome(record: Record) -> str:
    data = record.data
    kind = record.type
    if kind == ev.OBSERVED:  # folded already: `parse_observation` accepted it
        notes = [
            f"{data.get('watch_event', '?')} gen {data['generation']} rv {data['resource_version']}"
        ]
        if not data["exists"]:
            notes.append("gone")
        elif data["deletion_requested"]:
            notes.append("deleting")
        if data["child_drift"]:
            notes.append("child drift")
        return ", ".join(notes)
    if kind == ev.STATUS_WRITTEN:
        reason = f": {data.get('reason')}" if data.get("reason") else ""
        return f"status {data.get('phase')} gen {data.get('observed_generation')}{reason}"
    if kind == ev.STUCK_DETECTED:
        return f"stuck in {data.get('state')} for {data.get('seconds')}s: {data.get('reason')}"
    if kind == ev.DEADLOCK_DETECTED:
        cycle = [str(s) for s in data.get("cycle") or ()]
        return "wait-for cycle: " + " → ".join(cycle)
    if kind == ev.HEALING_APPLIED:
        return f"healing {data.get('action')}: {data.get('reason')}"
    if kind == ev.LEADER_ELECTED:
        return f"leader {data.get('holder')} term {data.get('term')}"
    if kind == ev.ILLEGAL_TRIGGER:
        return f"illegal trigger {data.get('trigger')} in {data.get('state')}"
    webhook = describe_webhook_record(kind, data)
    if webhook is not None:
        return webhook
    return "(an event type this engine does not know)"

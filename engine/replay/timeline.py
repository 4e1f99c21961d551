"""The timeline of a journal: one row per record, grouped per resource stream (pure).

The state before and after each record comes from fold's own `apply`, and each row's
facts from the parsers in `engine.fsm.events`, so a replayed timeline shows what the
live engine folded. Deterministic: the same records give the same rows, byte for byte.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any, Final

from engine.fsm import events as ev
from engine.fsm.fold import apply
from engine.fsm.state import ResourceState
from engine.identity import StreamId
from engine.journal.codec import encode_at
from engine.journal.record import Record
from engine.webhooks.decisions import describe as describe_webhook_record

INITIAL = ResourceState()
_new = object.__new__
_set = object.__setattr__


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


@dataclass(frozen=True)
class TimelineRow:
    """One record as a timeline line. `source`/`dest` are the states before and after
    (for `TransitionTaken`, the transition's own); `outcome` is a short plain phrase.
    (Its fields are its instance dict: a replay makes one per record, with `_row`.)"""

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
    every = window.since_position is None and window.since_time is None
    for record in records:
        if stop is not None and record.position >= stop:
            break
        before = state
        state = apply(before, record)
        count += 1
        if every or not window.before_start(record):
            rows.append(row_of(record, before, state, at=_at_text(record.at)))
    if not count:
        return None
    return StreamTimeline(resource, tuple(rows), state, count)


@lru_cache(maxsize=4096)
def _at_text(at: datetime) -> str:
    """`encode_at`, remembered: the records of one commit share their time."""
    return encode_at(at)


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
    kind = record.type
    data = record.data
    text = encode_at(record.at) if at is None else at
    # `apply` has folded this record, so its payload passed the event parsers' checks:
    # the fields are read directly (the parsers' values, without a second parse)
    if kind == ev.TRANSITION_TAKEN:
        trigger = data["trigger"]
        return _row(
            record.position,
            record.stream_version,
            text,
            kind,
            data["from"],
            data["to"],
            trigger,
            None,
            data.get("effect_key"),
            data.get("attempt"),
            trigger,
            record.trace_id,
        )
    if kind in _EFFECT_OUTCOMES:
        key = data["key"]
        # a RetryScheduled names no effect: the effect's own record does
        effect = (None if kind == ev.RETRY_SCHEDULED else data["name"]) or _effect_name(after, key)
        return _row(
            record.position,
            record.stream_version,
            text,
            kind,
            before.state,
            after.state,
            None,
            effect,
            key,
            data["attempt"],
            _EFFECT_OUTCOMES[kind](data),
            record.trace_id,
        )
    return _row(
        record.position,
        record.stream_version,
        text,
        kind,
        before.state,
        after.state,
        None,
        None,
        None,
        None,
        _other_outcome(record),
        record.trace_id,
    )


def _row(
    position: int,
    version: int,
    at: str,
    event: str,
    source: str,
    dest: str,
    trigger: str | None,
    effect: str | None,
    key: str | None,
    attempt: int | None,
    outcome: str,
    trace_id: str | None,
) -> TimelineRow:
    """`TimelineRow(...)` in one step: its instance dict set at once (no frozen setattr)."""
    row: TimelineRow = _new(TimelineRow)
    _set(
        row,
        "__dict__",
        {
            "position": position,
            "version": version,
            "at": at,
            "event": event,
            "source": source,
            "dest": dest,
            "trigger": trigger,
            "effect": effect,
            "key": key,
            "attempt": attempt,
            "outcome": outcome,
            "trace_id": trace_id,
        },
    )
    return row


def _effect_name(state: ResourceState, key: str) -> str | None:
    known = state.effect(key)
    return known.name if known is not None else None


def _failed_outcome(data: Mapping[str, Any]) -> str:
    kind = "gave up" if data["gave_up"] else ("retryable" if data["retryable"] else "permanent")
    repeated = data.get(ev.REPEATED_FIELD)  # a collapsed run of identical failures
    failed = f"failed \u00d7{repeated['count']}" if repeated and repeated["count"] else "failed"
    return f"{failed} ({kind}): {data['error_class']}: {data['message']}"


_EFFECT_OUTCOMES: Final[Mapping[str, Callable[[Mapping[str, Any]], str]]] = {
    ev.EFFECT_STARTED: lambda _data: "started",
    ev.EFFECT_SUCCEEDED: lambda _data: "succeeded",
    ev.EFFECT_FAILED: _failed_outcome,
    ev.RETRY_SCHEDULED: lambda data: f"retry in {data['delay']:.3f}s",
}
"""The outcome phrase of each effect record type, from its (folded, so checked) payload."""


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

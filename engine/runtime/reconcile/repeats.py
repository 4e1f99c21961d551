"""Consecutive identical failed attempts of a handler run, journaled as a few records.

An *attempt* of a stream is everything appended to it from one handler `EffectStarted`
(provision or finalize) up to the next: the handler's and its steps' effect records, the
`effect_failed` transition, any status write or observation. An attempt *repeats* the
previous one when its events equal the previous attempt's one for one, with the fields
that change every time (`attempt`, `seconds`, `delay`, `backoff`) left out, and the
previous attempt was a retryable failure of the same handler key (so the same step, error
class, message and generation, and nothing else on the stream in between).

Once an attempt failed, the next attempt of the same key is compared event by event as it
is appended, and held in memory while it matches (`RepeatPlan.held`). What reaches the
journal of a run of identical failures (count 1 = the first one, journaled in full):

- the attempt after a journaled one (counts 2, 3, 5, 9, …: the first of each window)
  journals its leading `EffectStarted` records before its calls, as every attempt did: the
  durable intent that covers the attempts of the window (no outcome follows it until the
  window ends, so the in-flight scan finds the run);
- the attempt whose count is a power of two journals, when it ends, the events it held,
  its handler's `EffectFailed` (and its steps') carrying `repeated` = {count, since (the
  first failure's time), skipped (failures of that key not journaled since its last)};
- every other repeat is dropped, except the newest one, kept in memory: when the run ends
  (an attempt differs, succeeds, gives up, the key or generation changes, something else
  is appended), it is journaled first, in the same way, so the journal says how many.

So a run of N identical failures journals about log2(N) windows, each one attempt's
records and a window's intent. The fold, the decisions and replay see the same
state: each journaled attempt overwrites what the dropped ones changed (attempts, the
outcome, the error, the retry deadline, the acknowledged failure).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from engine.fsm import events as ev
from engine.fsm.key import FINALIZE, PROVISION
from engine.journal.codec import encode_at
from engine.journal.record import NewEvent, Record

HANDLER_NAMES = frozenset({PROVISION, FINALIZE})
VOLATILE_FIELDS = frozenset({"attempt", "seconds", "delay", "backoff", ev.REPEATED_FIELD})
"""Fields that differ between two otherwise identical attempts: left out of the comparison."""
MAX_ATTEMPT_EVENTS = 256
"""An attempt with more events than this is not remembered (a Ready resource's stream
goes on growing after its last attempt): it never becomes a run's reference."""


def signature(event: NewEvent) -> tuple[str, dict[str, Any]]:
    """What two identical attempts' events have in common: the type and the payload
    without the volatile fields."""
    return event.type, {k: v for k, v in event.data.items() if k not in VOLATILE_FIELDS}


def _handler_start(event: NewEvent) -> str | None:
    """The handler key an event starts an attempt of, or None."""
    if event.type != ev.EFFECT_STARTED or event.data.get("name") not in HANDLER_NAMES:
        return None
    key = event.data.get("key")
    return key if isinstance(key, str) else None


def _retried_failure(events: list[NewEvent], key: str) -> bool:
    """Whether the attempt of `key` made of `events` failed and will be retried."""
    for event in events:
        if event.type == ev.EFFECT_FAILED and event.data.get("key") == key:
            return bool(event.data.get("retryable")) and not event.data.get("gave_up")
    return False


@dataclass
class _Attempt:
    key: str
    events: list[NewEvent] = field(default_factory=list)
    written: int = 0
    """How many of `events` (a prefix) are journaled."""
    candidate: bool = False
    """Compared with the previous attempt as it goes (the previous one failed the same)."""
    count: int = 1
    """Its place in the run of identical failures, if it repeats."""
    overflow: bool = False
    """More events than `MAX_ATTEMPT_EVENTS`: forgotten, so no reference."""


@dataclass
class _Run:
    reference: list[tuple[str, dict[str, Any]]] | None = None
    key: str | None = None
    count: int = 0
    since: str = ""
    current: _Attempt | None = None
    newest: _Attempt | None = None
    """The newest dropped-so-far repeat, not journaled yet (journaled if the run ends)."""
    lost: dict[str, int] = field(default_factory=dict)
    """key → failures dropped since the key's last journaled failure."""
    lost_waits: dict[str, int] = field(default_factory=dict)
    started: dict[str, int] = field(default_factory=dict)
    """key → the highest attempt started (journaled or not)."""
    last_failure_at: str = ""


@dataclass(frozen=True, slots=True)
class RepeatPlan:
    """What to do with one append: journal `write` (the append's own events last, unless
    `held`: then they are kept back, and `write` holds only what must precede them)."""

    write: tuple[NewEvent, ...]
    held: bool


class RepeatCollapser:
    """stream → the run of identical failed attempts going on (see the module's rule).

    `plan(stream, events)` is asked for each append, in the order of appends, before it
    goes to the journal; `committed(record)` is told of each record the journal holds.
    Assumption: one event loop; the appends of one stream come from one reconcile at a
    time (the queue's promise), plus observations.
    """

    def __init__(self) -> None:
        self._runs: dict[str, _Run] = {}
        self._holding: dict[str, None] = {}  # the streams holding events, in order

    def plan(self, stream: str, appended: Sequence[NewEvent]) -> RepeatPlan:
        """What to journal for an append of `appended` to `stream`."""
        plan = self._plan(stream, appended)
        if self.holding(stream):
            self._holding[stream] = None
        else:
            self._holding.pop(stream, None)
        return plan

    def holding_streams(self) -> tuple[str, ...]:
        """The streams with events held back."""
        return tuple(self._holding)

    def _plan(self, stream: str, appended: Sequence[NewEvent]) -> RepeatPlan:
        run = self._runs.setdefault(stream, _Run())
        events = list(appended)
        before: list[NewEvent] = []
        for event in events:
            started, number = event.data.get("key"), event.data.get("attempt")
            is_start = event.type == ev.EFFECT_STARTED and isinstance(started, str)
            if is_start and isinstance(number, int):
                run.started[str(started)] = max(run.started.get(str(started), 0), number)
        key = _handler_start(events[0]) if events else None
        if key is not None:
            before = self._close(run)
            self._open(run, key)
        attempt = run.current
        if attempt is not None and not attempt.candidate:
            before.extend(self._pending(run))  # a run that ends: its newest repeat first
        if attempt is None or not attempt.candidate:
            if attempt is not None and not attempt.overflow:
                attempt.events.extend(events)
                attempt.written = len(attempt.events)
                if attempt.written > MAX_ATTEMPT_EVENTS:
                    attempt.events, attempt.written, attempt.overflow = [], 0, True
            return RepeatPlan((*before, *events), held=False)
        start = len(attempt.events)
        reference = run.reference or []
        if len(reference) - start >= len(events) and all(
            signature(e) == reference[start + i] for i, e in enumerate(events)
        ):
            attempt.events.extend(events)
            window = run.newest is None and attempt.written == start
            if window and all(e.type == ev.EFFECT_STARTED for e in events):
                attempt.written = len(attempt.events)  # the window's durable intent
                return RepeatPlan((*before, *events), held=False)
            return RepeatPlan(tuple(before), held=True)
        # the attempt differs: the run ends here; journal what it held, then this
        attempt.candidate = False
        if start == len(reference):  # it repeated in full: these events came after it
            run.count = attempt.count
            if run.newest is not None:
                self._drop(run, run.newest)
            run.newest = attempt
            flushed = [*before, *self._pending(run)]
        else:
            flushed = [*before, *self._pending(run), *attempt.events[attempt.written :]]
        attempt.events.extend(events)
        attempt.written = len(attempt.events)
        return RepeatPlan((*flushed, *events), held=False)

    def committed(self, record: Record) -> None:
        """Learn the time of each handler failure (a run's `since`)."""
        if record.type != ev.EFFECT_FAILED:
            return
        run = self._runs.get(record.stream)
        if run is None:
            return
        key = record.data.get("key")
        if run.current is not None and key == run.current.key:
            run.last_failure_at = encode_at(record.at)
        if run.key == key and not run.since:
            run.since = encode_at(record.at)

    def unjournaled(self, stream: str, key: str) -> tuple[int, int]:
        """(the highest attempt of `key` started, how many of its waits the journal does
        not hold): what the effect runner adds to a key's journaled history."""
        run = self._runs.get(stream)
        if run is None:
            return 0, 0
        waits = run.lost_waits.get(key, 0)
        for attempt in (run.newest, run.current):
            if attempt is None:
                continue
            for event in attempt.events[attempt.written :]:
                if event.type == ev.EFFECT_FAILED and event.data.get("key") == key:
                    waits += bool(event.data.get("waiting"))
        return run.started.get(key, 0), waits

    def held_events(self, stream: str) -> int:
        """How many events of `stream` an append that ends its run would journal first."""
        run = self._runs.get(stream)
        if run is None:
            return 0
        current = run.current
        if (
            current is not None
            and current.candidate
            and len(current.events) == len(run.reference or [])
        ):
            # the attempt going on repeated in full: the append that ends the run drops
            # the newest repeat before it and journals this one (see `_plan`)
            return len(current.events) - current.written
        return sum(
            len(attempt.events) - attempt.written
            for attempt in (run.newest, run.current)
            if attempt is not None
        )

    def holding(self, stream: str) -> bool:
        """Whether `stream` has events held back (a run of repeats going on)."""
        run = self._runs.get(stream)
        if run is None:
            return False
        current = run.current
        unwritten = current is not None and current.written < len(current.events)
        return unwritten or run.newest is not None

    def forget(self, stream: str) -> None:
        self._runs.pop(stream, None)
        self._holding.pop(stream, None)

    # -- attempts ------------------------------------------------------------------------

    def _close(self, run: _Run) -> list[NewEvent]:
        """The current attempt ended (another begins): what to journal before it."""
        attempt = run.current
        run.current = None
        if attempt is None:
            return []
        complete = attempt.candidate and len(attempt.events) == len(run.reference or [])
        if complete:
            run.count = attempt.count
            if run.newest is not None:
                self._drop(run, run.newest)
            run.newest = attempt
            if _power_of_two(attempt.count):
                return self._pending(run)
            return []
        pending = self._pending(run)
        if attempt.candidate:  # ended short of the previous attempt: not a repeat
            pending.extend(attempt.events[attempt.written :])
            attempt.written = len(attempt.events)
        if not attempt.overflow and _retried_failure(attempt.events, attempt.key):
            run.reference = [signature(e) for e in attempt.events]
            # its failure's time: known if it is journaled already, else once it is
            since = "" if attempt.candidate else run.last_failure_at
            run.key, run.count, run.since = attempt.key, 1, since
        else:
            run.reference, run.key, run.count = None, None, 0
        return pending

    def _open(self, run: _Run, key: str) -> None:
        attempt = _Attempt(key=key)
        if run.reference is not None and run.key == key:
            attempt.candidate = True
            attempt.count = run.count + 1
        run.current = attempt

    def _pending(self, run: _Run) -> list[NewEvent]:
        """The newest repeat's unjournaled events, its failures marked `repeated`."""
        newest, run.newest = run.newest, None
        if newest is None:
            return []
        out: list[NewEvent] = []
        for event in newest.events[newest.written :]:
            if event.type == ev.EFFECT_FAILED:
                key = str(event.data.get("key"))
                repeated = {
                    "count": newest.count,
                    "since": run.since,
                    "skipped": run.lost.pop(key, 0),
                }
                run.lost_waits.pop(key, None)
                event = replace(event, data={**event.data, ev.REPEATED_FIELD: repeated})
            out.append(event)
        newest.written = len(newest.events)
        return out

    def _drop(self, run: _Run, attempt: _Attempt) -> None:
        for event in attempt.events[attempt.written :]:
            if event.type == ev.EFFECT_FAILED:
                key = str(event.data.get("key"))
                run.lost[key] = run.lost.get(key, 0) + 1
                if event.data.get("waiting"):
                    run.lost_waits[key] = run.lost_waits.get(key, 0) + 1


def _power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0

"""A recorded journal as the script of a replayed run: the records of the operator's
streams in position order, a cursor per stream, and the head (the first record not yet
reproduced). `RecordingGate` holds every append of the replayed loop to that order and
compares each event with the record it stands for; the first difference stops the run.

Inputs the live engine took from outside are read from the recording too: the watch's
observations, the API server's resourceVersion after each write (the next observation of
the object carries it), child drift (journaled in each observation) and the recorded
outcome of every step.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from engine.clock import FakeClock
from engine.fsm import events as ev
from engine.fsm.key import FINALIZE, PROVISION
from engine.fsm.table import DELETED
from engine.identity import Kind, StreamId
from engine.journal.record import NewEvent, Record
from engine.journal.store import Journal
from engine.runtime.reconcile.code_version import CODE_VERSION_FIELD
from engine.runtime.reconcile.patches import PATCH_MARKER

HANDLER_EFFECTS = (PROVISION, FINALIZE)
_NOT_COMPARED = frozenset({"seconds", CODE_VERSION_FIELD})
"""How long a call took is a fact of that run, not of the code; which code version wrote
a record is what `--verify` reports, not a difference (like is compared with like)."""
_NOT_COMPARED_FAILURE = frozenset({"seconds", "message", CODE_VERSION_FIELD})
"""An error's text may carry run-specific detail (addresses, timings)."""


@dataclass(frozen=True, slots=True)
class Divergence:
    """Where the replayed loop first differs from the journal on one stream. `stage`:
    what differed (`reconcile`: a record; `stall`: the code stops short of the journal);
    `position` None means the journal ended first."""

    stream: str
    position: int | None
    stage: str
    message: str

    def describe(self) -> str:
        where = f"position {self.position}" if self.position is not None else "the end"
        return f"{where}: {self.stream}: {self.stage}: {self.message}"


class Diverged(BaseException):
    """Stops the replayed loop at a divergence. A `BaseException`, like cancellation, so
    that the engine's own `except Exception` (a handler's failure is retryable) cannot
    turn the end of a replay into a record."""

    def __init__(self, divergence: Divergence) -> None:
        super().__init__(divergence.describe())
        self.divergence = divergence


def is_external(record: Record) -> bool:
    """An observation the watch journaled (an input), not one a reconcile journaled."""
    return record.type == ev.OBSERVED and record.data.get("watch_event") != "reconcile"


class Recording:
    """The records of `kind`'s streams, with a cursor per stream and a global head.

    Guarantees: records are consumed in each stream's order, and a record is consumed
    only once every record before it (all streams) is; waiters are woken on each change.
    Assumption: one event loop.
    """

    def __init__(self, records: Sequence[Record], *, kind: Kind) -> None:
        self._streams: dict[str, list[Record]] = {}
        for record in sorted(records, key=lambda r: r.position):
            if StreamId.parse(record.stream).belongs_to(kind):
                self._streams.setdefault(record.stream, []).append(record)
        after: dict[int, int] = {}  # an echo's position → the write's it is replayed after
        for stream_records in self._streams.values():
            after.update(_echoes_after_their_writes(stream_records))
        self.order = sorted(
            (r for rs in self._streams.values() for r in rs),
            key=lambda r: (after.get(r.position, r.position), r.position in after),
        )
        self._cursor = dict.fromkeys(self._streams, 0)
        self._consumed: set[int] = set()
        self._head = 0
        self._changed = asyncio.Event()
        self.divergence: Divergence | None = None
        self.compared = 0
        self._digests = {
            (str(r.data.get("uid")), int(r.data.get("generation") or 0)): str(
                r.data.get("spec_digest") or ""
            )
            for r in self.order
            if r.type == ev.OBSERVED
        }
        self._outcomes = {
            (r.stream, str(r.data.get("key")), int(r.data.get("attempt") or 0)): r
            for r in self.order
            if r.type in (ev.EFFECT_SUCCEEDED, ev.EFFECT_FAILED)
        }
        self._attempts: dict[tuple[str, str], list[int]] = {}
        self._highest: dict[str, int] = {}
        for stream_name, key, number in sorted(self._outcomes):
            self._attempts.setdefault((stream_name, key), []).append(number)
            self._highest[stream_name] = max(self._highest.get(stream_name, 0), number)
        self._retries = {
            (r.stream, str(r.data.get("key")), int(r.data.get("attempt") or 0)): r
            for r in self.order
            if r.type == ev.RETRY_SCHEDULED
        }
        self._markers = {
            (r.stream, str(r.data.get("run")), str(r.data.get("change"))): r
            for r in self.order
            if r.type == PATCH_MARKER
        }
        self.versions: dict[str, int] = {}
        """How many records each handler code version wrote ("" for none recorded)."""
        for r in self.order:
            version = str(r.data.get(CODE_VERSION_FIELD) or "")
            self.versions[version] = self.versions.get(version, 0) + 1
        self._stream_of_uid = {StreamId.parse(s).uid: s for s in self._streams}
        self._last_observed: dict[str, Record] = {}
        self._closed: set[str] = set()
        """Streams whose last consumed record after their last observation took them
        to Deleted (the live process forgot the object once it settled)."""

    @property
    def streams(self) -> tuple[str, ...]:
        return tuple(self._streams)

    @property
    def head(self) -> Record | None:
        return self.order[self._head] if self._head < len(self.order) else None

    def consumed(self, record: Record) -> bool:
        return record.position in self._consumed

    def next_of(self, stream: str) -> Record | None:
        """The first record of `stream` not yet consumed."""
        records = self._streams.get(stream, [])
        index = self._cursor.get(stream, 0)
        return records[index] if index < len(records) else None

    def ahead(self, stream: str, *, count: int = 8) -> list[Record]:
        """Up to `count` records of `stream` from its cursor on."""
        index = self._cursor.get(stream, 0)
        return self._streams.get(stream, [])[index : index + count]

    def consume(self, record: Record) -> None:
        """Mark `record` reproduced (it must be its stream's next) and move the head."""
        stream = record.stream
        if self.next_of(stream) is not record:  # pragma: no cover - a gate bug
            raise RuntimeError(f"record {record.position} consumed out of its stream's order")
        self._cursor[stream] += 1
        self._consumed.add(record.position)
        if record.type == ev.OBSERVED:
            self._last_observed[stream] = record
            self._closed.discard(stream)
        elif record.type == ev.TRANSITION_TAKEN and record.data.get("to") == DELETED:
            self._closed.add(stream)
        while self._head < len(self.order) and self.order[self._head].position in self._consumed:
            self._head += 1
        self.notify()

    def notify(self) -> None:
        """Wake everything waiting for a change."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_until(self, ready: Callable[[], bool]) -> None:
        """Wait until `ready()`; raises `Diverged` once any divergence is found, and
        `CancelledError` in a task that was cancelled and went on (code that swallowed its
        cancellation): a cancelled reconcile never waits on the recording again, so
        stopping a replayed process always ends."""
        task = asyncio.current_task()
        while True:
            if self.divergence is not None:
                raise Diverged(self.divergence)
            if task is not None and task.cancelling():
                raise asyncio.CancelledError
            if ready():
                return
            await self._changed.wait()

    def diverge(self, divergence: Divergence) -> Diverged:
        """Record the first divergence (later ones are consequences); the error to raise."""
        if self.divergence is None:
            self.divergence = divergence
        self.notify()
        return Diverged(self.divergence)

    # -- inputs the live run took from outside ----------------------------------------------

    def next_observation(self, stream: str) -> Record | None:
        """The next observation of `stream` not yet consumed (the state the API server
        and the watch reported next)."""
        for record in self._streams.get(stream, [])[self._cursor.get(stream, 0) :]:
            if record.type == ev.OBSERVED:
                return record
        return None

    def version_after_write(self, kind: Kind, obj: Mapping[str, Any]) -> str | None:
        """The resourceVersion the API server gave `obj` after the engine's write: the
        one its next observation carries (else its current one)."""
        current = str((obj.get("metadata") or {}).get("resourceVersion") or "") or None
        following = self.next_observation(str(StreamId.of(kind, obj)))
        if following is None:
            return current
        return str(following.data.get("resource_version") or "") or current

    def drift(self, owner_uid: str, resource_version: str | None = None) -> bool:
        """Whether the owner's children had drifted at this point of the run: what the
        stream's next record says when it is an observation of the object at
        `resource_version` (the pass that journaled it saw the drift change), else what
        the last observation journaled says (drift that did not change was not journaled
        again; and a pass that looks at the object before a write of its own, whose
        answer the next observation shows, saw the drift as it was). When the next record
        is the watch's and the one after it a reconcile's observation of that version,
        the pass is the one that journaled it, after the watch's: its drift is that one's.

        Once the stream went Deleted, a watch's observation next is not answered to the
        pass before it: live, that pass settled and the engine forgot the object and its
        children's drift, and the watch's event came after and found no drift."""
        stream = self._stream_of_uid.get(owner_uid)
        if stream is None:
            return False
        records = self._streams.get(stream, [])
        index = self._cursor.get(stream, 0)
        if stream not in self._closed and index + 1 < len(records):
            fed, own = records[index], records[index + 1]
            if (
                is_external(fed)
                and own.type == ev.OBSERVED
                and not is_external(own)
                and (
                    resource_version is None
                    or str(own.data.get("resource_version") or "") == resource_version
                )
            ):
                # the watch's observation next (being fed, or the echo of the pass's own
                # write), then a reconcile's of the same version: live, the pass looked
                # after the sink journaled the watch's, and journaled what it saw
                return bool(own.data.get("child_drift"))
        following = self.next_of(stream)
        if (
            following is not None
            and following.type == ev.OBSERVED
            and not (stream in self._closed and is_external(following))
            and (
                resource_version is None
                or str(following.data.get("resource_version") or "") == resource_version
            )
        ):
            return bool(following.data.get("child_drift"))
        last = self._last_observed.get(stream)
        return bool(last is not None and last.data.get("child_drift"))

    def answer_unjournaled(self, stream: str, status: Mapping[str, Any]) -> bool:
        """Whether the live engine's write of `status` to the object of `stream` was
        applied (the watch journaled its echo: an observation showing that status, the
        stream's last or one of those next before the engine's own next record) and its
        answer never journaled (that next record is not a `StatusWritten`): the write's
        answer failed, or the process was killed and the next one's list of the object
        journaled nothing (it was unchanged)."""
        if status.get("phase") is None:
            # a write of conditions alone (the watchdog's Stuck condition) has no
            # `StatusWritten` of its own to miss, and its echo matches any phaseless status
            return False
        written = tuple(status.get(field) for field in _STATUS_BODY_FIELDS)
        index = self._cursor.get(stream, 0)
        last = self._last_observed.get(stream)
        watched = [last] if last is not None else []
        following: Record | None = None
        for record in self._streams.get(stream, [])[index:]:
            if not is_external(record):
                following = record
                break
            watched.append(record)
        echoed = any(
            is_external(r)
            and tuple(r.data.get(f"status_{field}") for field in _STATUS_FIELDS) == written
            for r in watched
        )
        return echoed and following is not None and following.type != ev.STATUS_WRITTEN

    def spec_digest(self, obj: Mapping[str, Any]) -> str | None:
        """The journaled digest of `obj`'s spec at its generation (computed live, before
        the journal redacted its secret fields)."""
        metadata = obj.get("metadata") or {}
        key = (str(metadata.get("uid") or ""), int(metadata.get("generation") or 0))
        return self._digests.get(key)

    def outcome(self, stream: str, key: str, attempt: int) -> Record | None:
        """The recorded outcome of attempt `attempt` of effect `key` (None: cut off).

        An attempt of a collapsed run of identical failures has no record of its own (a
        later attempt of the key is recorded): it answers as the newest recorded attempt
        before it, which it repeated."""
        return self._outcomes.get((stream, key, self._repeated(stream, key, attempt)))

    def retry(self, stream: str, key: str, attempt: int) -> Record | None:
        return self._retries.get((stream, key, self._repeated(stream, key, attempt)))

    def _repeated(self, stream: str, key: str, attempt: int) -> int:
        """`attempt`, or, for an attempt a collapsed run dropped (the next recorded
        failure of the key says it skipped it), the recorded attempt it repeated."""
        if (stream, key, attempt) in self._outcomes:
            return attempt
        recorded = self._attempts.get((stream, key), [])
        later = [n for n in recorded if n > attempt]
        earlier = [n for n in recorded if n < attempt]
        if not later or not earlier:
            return attempt  # cut off
        repeated = self._outcomes[(stream, key, later[0])].data.get(ev.REPEATED_FIELD)
        skipped = repeated.get("skipped") if isinstance(repeated, Mapping) else None
        if isinstance(skipped, int) and attempt >= later[0] - skipped:
            return earlier[-1]
        return attempt

    def next_repeated(self, stream: str) -> tuple[str, int] | None:
        """(key, attempt) of the stream's next failure journaled with a `repeated` count
        not yet reproduced: the attempt a collapsed run going on reaches (None: none)."""
        for record in self._streams.get(stream, [])[self._cursor.get(stream, 0) :]:
            if record.type == ev.EFFECT_FAILED and ev.REPEATED_FIELD in record.data:
                return str(record.data.get("key")), int(record.data.get("attempt") or 0)
        return None

    def highest_attempt(self, stream: str) -> int:
        """The highest attempt number recorded for an effect of `stream`."""
        return self._highest.get(stream, 0)

    def patch_marker(self, stream: str, run: str, change: str) -> Record | None:
        """The recorded answer of `ctx.patched(change)` in handler run `run` (None: the
        run never asked)."""
        return self._markers.get((stream, run, change))


def _echoes_after_their_writes(records: list[Record]) -> dict[int, int]:
    """Put each echo of a status write after the write's record, in place in `records`
    (one stream, in position order); the echoes moved, by position, with the position of
    the write each now follows.

    An echo is a change the watch journaled (`modified`) right before a `StatusWritten`
    of the very status it shows: live, the write was in flight when the watch delivered the
    echo, which won the race with the write's answer. The decision to write saw the
    object before the echo (it saw another status), so replay reproduces the write first
    and feeds the echo after it, where the live reconcile's view put it."""
    moved: dict[int, int] = {}
    for index in range(len(records) - 1):
        echo, write = records[index], records[index + 1]
        shown = tuple(echo.data.get(f"status_{field}") for field in _STATUS_FIELDS)
        written = tuple(write.data.get(field) for field in _STATUS_FIELDS)
        modified = is_external(echo) and echo.data.get("watch_event") == "modified"
        if modified and write.type == ev.STATUS_WRITTEN and shown == written:
            records[index], records[index + 1] = write, echo
            moved[echo.position] = write.position
    return moved


_STATUS_FIELDS = ("phase", "observed_generation", "reason")
_STATUS_BODY_FIELDS = ("phase", "observedGeneration", "reason")


class RecordingGate:
    """The replayed loop's `AppendGate`: each event waits for its record's turn, must
    match it, then sets the clock and term to the record's and consumes it.

    `driving` is the external observation the replay driver is journaling now (the
    only kind of record a reconcile never reproduces itself)."""

    def __init__(self, recording: Recording, *, clock: FakeClock, journal: Journal) -> None:
        self._recording = recording
        self._clock = clock
        self._journal = journal
        self._admitted: dict[str, list[Record]] = {}
        self.driving: Record | None = None

    async def admit(
        self, stream: str, events: Sequence[NewEvent], unless: Callable[[], bool] | None
    ) -> bool:
        record = await self._turn(stream, unless)
        if record is None:
            return False
        records = [record, *self._recording.ahead(stream, count=len(events))[1 : len(events)]]
        for index, event in enumerate(events):
            if index >= len(records):
                # the journal's stream ends inside this batch: the run was stopped first
                await self._recording.wait_until(lambda: False)
            matched = records[index]
            if not is_external(matched):
                problem = difference(matched, event)
                if problem is not None:
                    raise self._recording.diverge(
                        Divergence(stream, matched.position, "reconcile", problem)
                    )
                self._recording.compared += 1
        move_clock(self._clock, record)
        if record.term > self._journal.term:
            self._journal.set_term(record.term)
        self._admitted[stream] = records
        return True

    def committed(self, stream: str) -> None:
        """The admitted append of `stream` is in the replay journal: its records are
        reproduced (until now the head stayed on them, so the clock stayed theirs)."""
        for record in self._admitted.pop(stream, ()):
            self._recording.consume(record)

    async def _turn(self, stream: str, unless: Callable[[], bool] | None) -> Record | None:
        """The record the next append of `stream` stands for, once it is its turn; None
        when `unless()` turns true meanwhile (what the append would have recorded has
        been recorded by another caller, as the watch echoing a write)."""
        recording = self._recording

        def dropped() -> bool:
            return unless is not None and unless()

        while True:
            if dropped():
                return None
            if stream in self._admitted:  # an earlier append of the stream is committing
                await recording.wait_until(lambda: stream not in self._admitted)
                continue
            record = recording.next_of(stream)
            if record is None:
                # the journal ends here for this stream (the run was stopped): the
                # replayed loop goes no further; it is cancelled when the replay ends
                await recording.wait_until(lambda: False)
                continue
            if is_external(record) and record is not self.driving:
                await recording.wait_until(lambda r=record: recording.consumed(r) or dropped())  # type: ignore[misc]
                continue
            await recording.wait_until(lambda r=record: recording.head is r or dropped())  # type: ignore[misc]
            if dropped():
                return None
            return record


def move_clock(clock: FakeClock, record: Record) -> None:
    """Bring `clock` forward to the time of `record` (never back)."""
    ahead = (record.at - clock.now()).total_seconds()
    if ahead > 0:
        clock.advance(ahead)


def difference(record: Record, event: NewEvent) -> str | None:
    """Why `event` is not the record the journal holds here (None: it is)."""
    if record.type != event.type:
        return _different_type(record, event)
    if record.type == ev.TRANSITION_TAKEN and any(
        record.data.get(f) != event.data.get(f) for f in ("from", "to", "trigger")
    ):
        return (
            f"in {record.data.get('from')}, decide fires {event.data.get('trigger')!r} "
            f"({event.data.get('from')} → {event.data.get('to')}); the journal took "
            f"{record.data.get('trigger')!r} ({record.data.get('from')} → "
            f"{record.data.get('to')})"
        )
    if record.type == ev.EFFECT_STARTED and record.data.get("key") != event.data.get("key"):
        return _different_type(record, event)
    ignored = _NOT_COMPARED_FAILURE if record.type == ev.EFFECT_FAILED else _NOT_COMPARED
    recorded = _without_times({k: v for k, v in record.data.items() if k not in ignored})
    replayed = _without_times({k: v for k, v in _plain(event.data).items() if k not in ignored})
    if recorded == replayed:
        return None
    for field in sorted(set(recorded) | set(replayed)):
        if recorded.get(field) != replayed.get(field):
            return (
                f"the journal has {_describe(record)} with {field}={recorded.get(field)!r} "
                f"here, the code {field}={replayed.get(field)!r}"
            )
    return None  # pragma: no cover - the dicts differ in some field


def _without_times(data: dict[str, Any]) -> dict[str, Any]:
    """`data` without the time a collapsed run began (`repeated.since`): the attempts it
    dropped left no times, so replay runs them at the code's own delays."""
    repeated = data.get(ev.REPEATED_FIELD)
    if isinstance(repeated, Mapping):
        data[ev.REPEATED_FIELD] = {k: v for k, v in repeated.items() if k != "since"}
    return data


def _different_type(record: Record, event: NewEvent) -> str:
    code = _describe_event(event)
    name = str(record.data.get("name") or "")
    if record.type == ev.EFFECT_STARTED and event.type == ev.EFFECT_STARTED:
        return (
            f"the journal has step {record.data.get('key')!r} here, the code runs "
            f"{event.data.get('key')!r}"
        )
    if record.type == ev.EFFECT_STARTED and name not in HANDLER_EFFECTS:
        return f"the journal ran step {name!r} here, the code does not (it {code})"
    if (
        record.type == ev.EFFECT_SUCCEEDED
        and name in HANDLER_EFFECTS
        and event.type == ev.EFFECT_STARTED
    ):
        return (
            f"the journal's {name} ends here, the code runs one more step {event.data.get('key')!r}"
        )
    return f"the journal has {_describe(record)} here, the code {code}"


def _describe(record: Record) -> str:
    data = record.data
    if record.type == ev.TRANSITION_TAKEN:
        return f"{record.type} {data.get('from')} → {data.get('to')} ({data.get('trigger')})"
    if record.type in ev.EFFECT_TYPES:
        return f"{record.type} {data.get('key')}"
    return record.type


def _describe_event(event: NewEvent) -> str:
    data = event.data
    if event.type == ev.TRANSITION_TAKEN:
        return f"takes {data.get('from')} → {data.get('to')} ({data.get('trigger')!r})"
    if event.type in ev.EFFECT_TYPES:
        return f"appends {event.type} {data.get('key')}"
    return f"appends {event.type}"


def _plain(data: Mapping[str, Any]) -> dict[str, Any]:
    """`data` as the journal stores it (JSON: tuples become lists)."""
    plain: dict[str, Any] = json.loads(json.dumps(dict(data), default=str))
    return plain

"""The watcher sinks: every real change of a primary object is journaled as `Observed`
on its stream before its key is enqueued; a child's change is mapped to its owner's key
(and a child deleted or changed behind the engine's back shows as drift).

`ObservationLog` is the one place that journals observations: it appends only when an
observation differs from the last one journaled for the stream, so a resync or a
duplicate appends nothing (level-triggered: the key is enqueued all the same).
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from opentelemetry import trace

from engine.fsm import events as ev
from engine.fsm.fold import behind_journal
from engine.fsm.observation import Observation
from engine.identity import ObjectRef, StreamId
from engine.journal.record import Record
from engine.runtime.reconcile.children import ChildLedger
from engine.runtime.reconcile.objects import Entry, PrimaryView
from engine.runtime.reconcile.operator import Operator
from engine.runtime.reconcile.streams import StreamWriter
from engine.telemetry.ids_tracer import records_nothing
from engine.telemetry.operation_spans import observe_span
from engine.telemetry.redaction import NO_SECRETS, Redactor
from engine.telemetry.spans import ResourceRef
from engine.watchers import Change, ChangeOrigin, ChangeType


def spec_digest(spec: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of `spec` (sorted keys, no spaces)."""
    text = json.dumps(spec, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


_DIGESTS_KEPT = 8192
_digests: OrderedDict[tuple[str, str], tuple[Mapping[str, Any], str]] = OrderedDict()
"""An OrderedDict, not a dict: a dict's oldest key, taken again and again, is found by
walking past every key deleted before it (at 10,000 listed objects that walk cost half
as much as the digest itself); `popitem(last=False)` takes it at once."""


def spec_digest_of(obj: Mapping[str, Any]) -> str:
    """`spec_digest` of `obj`'s spec, remembered by (uid, resourceVersion) and reused when
    the spec compares equal to the one digested (a dict comparison costs far less than
    canonical JSON and sha256; each watch event and reconcile pass asks again)."""
    spec = obj.get("spec") or {}
    metadata = obj.get("metadata", {})
    uid, version = metadata.get("uid"), metadata.get("resourceVersion")
    if not uid or not version:
        return spec_digest(spec)
    key = (str(uid), str(version))
    known = _digests.get(key)
    if known is not None and known[0] == spec:
        return known[1]
    digest = spec_digest(spec)
    if known is None and len(_digests) >= _DIGESTS_KEPT:
        _digests.popitem(last=False)  # the oldest first
    _digests[key] = (spec, digest)
    return digest


def remember_spec_digest(obj: Mapping[str, Any], digest: str) -> None:
    """Make `spec_digest_of(obj)` answer `digest`: for an object rebuilt from its journaled
    observation, whose spec the journal holds redacted while its digest was taken live."""
    metadata = obj.get("metadata", {})
    uid, version = metadata.get("uid"), metadata.get("resourceVersion")
    if uid and version:
        if len(_digests) >= _DIGESTS_KEPT:
            _digests.popitem(last=False)
        _digests[(str(uid), str(version))] = (obj.get("spec") or {}, digest)


def stream_of(operator: Operator, obj: Mapping[str, Any]) -> str:
    """The journal stream of a primary object."""
    resource = operator.resource
    return str(StreamId.of(resource.kind_ref, obj))


def resource_ref_of(operator: Operator, obj: Mapping[str, Any]) -> ResourceRef:
    """Which resource `obj` is, as span attributes name it."""
    metadata = obj.get("metadata", {})
    return ResourceRef(
        namespace=str(metadata.get("namespace") or ""),
        kind=operator.resource.kind,
        name=str(metadata.get("name") or ""),
        uid=str(metadata.get("uid") or ""),
        generation=generation_of(metadata),
        group=operator.resource.group,
    )


def observation_of(
    entry: Entry, *, finalizer: str, child_drift: bool, spec_digest: str | None = None
) -> Observation:
    """The plain values decide needs, read from one object (pure). `spec_digest`: the
    digest of its spec when already known (replay: the journaled one, computed before the
    journal redacted the spec's secrets); else it is computed."""
    obj = entry.obj
    metadata = obj.get("metadata", {})
    status = obj.get("status")
    status = status if isinstance(status, Mapping) else {}  # null or odd: none written yet
    observed_generation = status.get("observedGeneration")
    return Observation(
        uid=str(metadata.get("uid") or ""),
        generation=generation_of(metadata),
        resource_version=str(metadata.get("resourceVersion") or ""),
        spec_digest=spec_digest if spec_digest is not None else spec_digest_of(obj),
        exists=entry.exists,
        deletion_requested=bool(metadata.get("deletionTimestamp")),
        has_finalizer=finalizer in (metadata.get("finalizers") or ()),
        child_drift=child_drift,
        status_phase=_text(status.get("phase")),
        status_observed_generation=observed_generation
        if isinstance(observed_generation, int) and not isinstance(observed_generation, bool)
        else None,
        status_reason=_text(status.get("reason")),
    )


def generation_of(metadata: Mapping[str, Any]) -> int:
    """`metadata.generation` as an integer: 0 when missing or not a whole number (an API
    server always serves one; an odd object must not stop its observation)."""
    value = metadata.get("generation")
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    try:
        return int(value) if isinstance(value, str) else 0
    except ValueError:
        return 0


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


class ObservationLog:
    """Journals observations, skipping one equal to the last journaled on its stream."""

    def __init__(self, streams: StreamWriter) -> None:
        self._streams = streams
        streams.seed_observations(self)
        self._last: dict[str, Observation] = {}

    def seed(self, stream: str, records: list[Record]) -> None:
        """Learn the last journaled observation of `stream` from its records (at start)."""
        if stream in self._last:
            return
        for record in reversed(records):
            if record.type == ev.OBSERVED:
                self._last[stream] = ev.parse_observation(record)
                return

    async def behind(self, stream: str, observation: Observation) -> bool:
        """Whether a listed `observation` is behind the stream's folded state (an API
        server restored from a backup: `behind_journal`). Answered without folding when
        the last journaled observation shows the same object live at this generation or
        an older one (a restart's first list of unchanged objects folds nothing)."""
        last = self._last.get(stream)
        if (
            last is not None
            and last.uid == observation.uid
            and last.exists
            and observation.generation >= last.generation
        ):
            return False
        state = await self._streams.current(stream)
        if last is None:
            # the fold seeds the stream's last observation (`seed`); forget it again, so
            # that this listing is journaled as before (replay reads an in-flight
            # stream's first listing after a restart as the restart)
            self._last.pop(stream, None)
        return behind_journal(state, observation)

    def is_last(self, stream: str, observation: Observation) -> bool:
        """`observation` equals the last one journaled on `stream` (`record` would append
        nothing); False when the stream's last observation is not known yet."""
        return self._last.get(stream) == observation

    async def record(
        self, stream: str, observation: Observation, *, spec: Mapping[str, Any], watch_event: str
    ) -> bool:
        """Append `Observed` unless it equals the last one journaled; True if appended.

        The comparison is made at the moment of appending, so when the watch echoes the
        engine's own write while the reconcile journals the same observation, only the
        first of the two is journaled."""
        if self._last.get(stream) == observation:
            return False
        event = ev.observed(observation, watch_event=watch_event, spec=spec)
        positions = await self._streams.append(
            stream, [event], unless=lambda: self._last.get(stream) == observation
        )
        if not positions:
            return False
        self._last[stream] = observation
        return True

    def forget(self, stream: str) -> None:
        self._last.pop(stream, None)


Enqueue = Callable[[str], None]


@dataclass(frozen=True)
class ObserverDeps:
    """What the sinks need: the operator, the view, the ledger, the log, the queue's add;
    `tracer` for the `observe` span each journaled watch event runs in."""

    operator: Operator
    view: PrimaryView
    ledger: ChildLedger
    log: ObservationLog
    enqueue: Enqueue
    on_observed: Callable[[str, Mapping[str, Any], str], None] | None = None
    tracer: trace.Tracer = field(default_factory=trace.NoOpTracer)


class Observer:
    """`primary(change)` and `child(change)`: the sinks of the primary and child watchers.

    Guarantees: a primary change is journaled (when it is a real change) before its key
    is enqueued; a MODIFIED event equal to the observation last journaled (the watch's
    echo of the engine's own write, whose response the reconcile already journaled and
    decided on) enqueues nothing; a child change never journals by itself: it enqueues
    the owner (not for the echo of the engine's own apply, whose response the ledger
    holds), whose next reconcile journals the observation with `child_drift` set if it
    drifted. A listed object behind the journal (an older generation, or live again
    on a Deleted stream: an API server restored from a backup) is journaled as a
    `restored` observation, which starts a new round of keys. A primary change is
    journaled inside a short `observe <Kind>` span (the root of its own trace), so its
    `Observed` record carries that span's ids when tracing is on.
    """

    def __init__(self, deps: ObserverDeps) -> None:
        self._deps = deps
        self._kind = deps.operator.resource.kind_ref  # built once, not per object

    async def primary(self, change: Change) -> None:
        deps = self._deps
        deleted = change.type is ChangeType.DELETED
        listed = change.origin is ChangeOrigin.RELIST
        # a listing is checked against the journal (a fold, which may wait on the
        # journal) before the view holds it: from the moment the view holds a change
        # until its observation is queued for the journal nothing may run, or a reconcile
        # reading the view could journal the change first (replay feeds the view only
        # from what the watch journaled)
        behind = listed and await self._behind(change.obj, exists=not deleted)
        entry = deps.view.observed(change.obj, exists=not deleted, listed=listed)
        key = ObjectRef.of(entry.obj).key
        if not entry.uid:
            return
        stream = str(StreamId.of(self._kind, entry.obj))
        observation = observation_of(
            entry,
            finalizer=deps.operator.finalizer_name,
            child_drift=deps.ledger.drift(entry.uid),
        )
        unchanged = deps.log.is_last(stream, observation)
        if behind and not unchanged:
            observation = replace(observation, restored=True)
        if unchanged:
            # unchanged since it was last journaled (a relist, a resync, the echo of the
            # engine's own write): nothing to journal, so no `observe` span either
            appended = False
        else:
            appended = await self._journal(change, entry, stream, observation)
        if (appended or listed) and deps.on_observed is not None:
            # a listed object is noted even when unchanged since its last journaled
            # observation (a restart's first list): the views know every listed resource
            deps.on_observed(key, entry.obj, f"Observed {change.type.value}")
        if appended or change.type is not ChangeType.MODIFIED:
            deps.enqueue(key)

    async def _behind(self, obj: Mapping[str, Any], *, exists: bool) -> bool:
        """Whether the listing of `obj` is behind the journal (`ObservationLog.behind`),
        asked of the entry the view would hold for it, before it holds it."""
        deps = self._deps
        entry = deps.view.listing(obj, exists=exists)
        if not entry.uid:
            return False
        stream = str(StreamId.of(self._kind, entry.obj))
        observation = observation_of(
            entry,
            finalizer=deps.operator.finalizer_name,
            child_drift=deps.ledger.drift(entry.uid),
        )
        if deps.log.is_last(stream, observation):
            return False
        return await deps.log.behind(stream, observation)

    async def _journal(
        self, change: Change, entry: Entry, stream: str, observation: Observation
    ) -> bool:
        """Journal `observation` inside the `observe` span; True if it was appended."""
        deps = self._deps
        with observe_span(
            deps.tracer,
            resource_ref_of(deps.operator, entry.obj),
            watch_event=change.type.value,
            redactor=_redactor(deps, entry),
        ):
            return await deps.log.record(
                stream,
                observation,
                spec=entry.obj.get("spec") or {},
                watch_event=change.type.value,
            )

    async def child(self, change: Change) -> None:
        deps = self._deps
        deleted = change.type is ChangeType.DELETED
        echo = not deleted and deps.ledger.holds(change.obj)
        owner = deps.ledger.observed(
            change.obj, deleted=deleted, listed=change.origin is ChangeOrigin.RELIST
        )
        if owner is None or echo:
            return
        key = deps.view.key_of_uid(owner)
        if key is not None:
            deps.enqueue(key)


def _redactor(deps: ObserverDeps, entry: Entry) -> Redactor:
    if records_nothing(deps.tracer):
        return NO_SECRETS  # nothing is recorded: skip walking the object
    return Redactor.from_object(entry.obj, deps.operator.secret_fields)

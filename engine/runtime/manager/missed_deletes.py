"""Deletions the engine missed while it was stopped, found once the primary kind's first
list is complete.

A running watch sees an object go (a watch event, or a relist's difference against its
cache); an engine started after the object went has no cache to find it absent from: a
Widget deleted with its finalizers stripped, deleted without one, or missing from an API
server restored from a backup stays live in the journal and its cleanup never runs. So
at start, every stream of the kind the journal holds as live (its last `Observed` shows
the object existing and it is not Deleted) whose object the first list did not name, or
named with another uid, is handed to the primary sink as a deletion found by a relist,
carrying the object's last journaled state: the same `Observed` record, fold and
finalize (once, under its key) as a live watch's deletion. The view holds one uid per
name, so a name listed with another uid gets its listed object handed on again only
once the old uid's deletion was reconciled (`deliver_replacements`).

Cost: one look-up in the watcher's cache per live stream; nothing per listed object.
The streams come from the start scan's last observations (a SQLite journal the engine
opened) and its in-flight streams, or, for other journals, from `Journal.streams`; only
a stream without a known last observation is folded (and, if live and absent, read).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from engine.fsm import events as ev
from engine.fsm.state import ResourceState
from engine.fsm.table import DELETED
from engine.identity import StreamId
from engine.journal.record import Record
from engine.runtime.reconcile.objects import PrimaryView
from engine.runtime.reconcile.observations import remember_spec_digest
from engine.runtime.reconcile.operator import Operator
from engine.watchers import Change, ChangeOrigin, ChangeType, Kind, ObjectCache, Sink

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Missed:
    """A live stream whose object the first list lacks: `record` is its last `Observed`
    (None until read); `replaced` when the list names another uid under its name."""

    stream: StreamId
    text: str
    record: Record | None
    replaced: bool


def absent(
    streams: Iterable[tuple[str, Record | None]],
    cache: ObjectCache,
    *,
    namespaces: Sequence[str] = (),
) -> list[Missed]:
    """The streams (text, last `Observed` or None when not known) whose object `cache`
    (a completed first list) does not hold with the stream's uid (pure). A stream whose
    known last observation shows the object gone is left out (its deletion is journaled
    already), and so is one outside `namespaces` (when given: the list covers only those)."""
    found: list[Missed] = []
    for text, record in streams:
        if record is not None and record.data.get("exists") is not True:
            continue
        # `group/kind/namespace/name#uid`, split by hand: `StreamId.parse` cost most of
        # the look-up, and only a missed stream needs one
        path, _, uid = text.rpartition("#")
        head, _, name = path.rpartition("/")
        namespace = head.rpartition("/")[2]
        if not uid or (namespaces and namespace not in namespaces):
            continue
        entry = cache.entry((namespace, name))
        if entry is not None and entry.uid == uid:
            continue
        stream = StreamId.parse(text)
        if stream.uid:
            found.append(Missed(stream, text, record, replaced=entry is not None))
    return found


def gone_object(operator: Operator, missed: Missed, record: Record) -> dict[str, Any]:
    """The object as `record` (its last `Observed`) last showed it, as a relist's deletion
    carries its cached state; its spec digest is the journaled one (`spec_digest_of`)."""
    resource, data = operator.resource, record.data
    metadata: dict[str, Any] = {
        "name": missed.stream.name,
        "uid": missed.stream.uid,
        "generation": data.get("generation"),
        "resourceVersion": data.get("resource_version"),
    }
    if missed.stream.namespace:
        metadata["namespace"] = missed.stream.namespace
    if data.get("has_finalizer"):
        metadata["finalizers"] = [operator.finalizer_name]
    status = {
        name: data[field]
        for name, field in (
            ("phase", "status_phase"),
            ("observedGeneration", "status_observed_generation"),
            ("reason", "status_reason"),
        )
        if data.get(field) is not None
    }
    spec = data.get("spec")
    obj: dict[str, Any] = {
        "apiVersion": resource.api_version,
        "kind": resource.kind,
        "metadata": metadata,
        "spec": dict(spec) if isinstance(spec, Mapping) else {},
    }
    if status:
        obj["status"] = status
    digest = data.get("spec_digest")
    if isinstance(digest, str):
        # its spec is the journal's, redacted: its observation keeps the digest taken of
        # the real one (replay finds a generation's spec by that digest: D11)
        remember_spec_digest(obj, digest)
    return obj


@dataclass(frozen=True)
class MissedDeps:
    """What `observe_missed` needs: the operator, the primary watcher's kind and cache
    (its first list complete), the sink (the observer's `primary`), the view the
    reconciles read (`view`), the namespaces in scope, and, for a stream without a known
    last observation, its folded state (`forget_state` drops a Deleted one again: a
    closed stream is not kept in memory) and its records; `forget_last` makes the
    observation log forget a stream's last observation (so the next is journaled)."""

    operator: Operator
    kind: Kind
    cache: ObjectCache
    sink: Sink
    view: PrimaryView
    namespaces: Sequence[str]
    state_of: Callable[[str], Awaitable[ResourceState]]
    forget_state: Callable[[str], None]
    records_of: Callable[[str], Awaitable[list[Record]]]
    forget_last: Callable[[str], None]


async def observe_missed(
    deps: MissedDeps, streams: Iterable[tuple[str, Record | None]]
) -> list[Missed]:
    """Hand a relist deletion of each live stream the first list lacks to the sink;
    return the replaced ones (their name now has another uid), whose listed object
    `deliver_replacements` hands on once the old uid is finalized. A stream the sink
    fails on is logged and left (as a live delivery would be tried again by its next
    list)."""
    delivered: list[Missed] = []
    for missed in absent(streams, deps.cache, namespaces=deps.namespaces):
        record = missed.record
        if record is None:
            if (await deps.state_of(missed.text)).state == DELETED:
                deps.forget_state(missed.text)
                continue
            observed = [r for r in await deps.records_of(missed.text) if r.type == ev.OBSERVED]
            if not observed:
                continue
            record = observed[-1]
        listed = deps.cache.get(missed.stream.namespace, missed.stream.name)
        gone = gone_object(deps.operator, missed, record)
        try:
            await deps.sink(
                Change(ChangeType.DELETED, ChangeOrigin.RELIST, deps.kind, gone, listed, deps.cache)
            )
        except Exception:
            log.exception("could not observe the deletion of %s missed while stopped", missed.text)
            continue
        # replaced as the cache is now: a watch event may have named a new uid since
        delivered.append(replace(missed, replaced=listed is not None))
    if delivered:
        log.info("observed %d deletions missed while the engine was stopped", len(delivered))
    return [missed for missed in delivered if missed.replaced]


async def deliver_replacements(
    deps: MissedDeps, replaced: Sequence[Missed], *, poll_seconds: float = 0.1
) -> None:
    """For each replaced stream, once the view no longer holds its old uid (its deletion
    was reconciled: finalized, the stream Deleted, the key forgotten; or a newer watch
    event of the name came first), hand the listed object to the sink as a relist's
    addition, so the new uid is reconciled after the old one's cleanup (as on a cluster,
    where the name is free only once the old object's finalizers are done). Polls the
    view every `poll_seconds`; runs until every one is delivered (or cancelled)."""
    waiting = list(replaced)
    while waiting:
        still: list[Missed] = []
        for missed in waiting:
            ref = missed.stream.ref
            entry = deps.view.get(ref.key)
            if entry is not None and entry.uid == missed.stream.uid:
                still.append(missed)
                continue
            listed = deps.cache.get(ref.namespace, ref.name)
            listed_uid = str((listed or {}).get("metadata", {}).get("uid") or "")
            if listed is None or (entry is not None and entry.uid == listed_uid):
                continue  # gone meanwhile, or held already: the watch delivered it since
            # journaled again (the list journaled it before the old uid's deletion): replay
            # then also holds the new uid again after the old one's stream closed
            deps.forget_last(str(StreamId.of(deps.operator.resource.kind_ref, listed)))
            try:
                await deps.sink(
                    Change(
                        ChangeType.ADDED, ChangeOrigin.RELIST, deps.kind, listed, None, deps.cache
                    )
                )
            except Exception:
                log.exception("could not hand on %s after the old uid's cleanup", ref.label)
        waiting = still
        if waiting:
            await asyncio.sleep(poll_seconds)

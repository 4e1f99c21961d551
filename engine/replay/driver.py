"""Replay a journal file: read it once, then build timelines or group it per stream.

The asynchronous edge of engine.replay (reading the file); the work itself is pure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine.journal.record import Record
from engine.replay.source import Progress, read_records
from engine.replay.timeline import EVERYTHING, ResourceId, StreamTimeline, TimelineBuilder, Window


class UnknownResource(LookupError):
    """`--resource` names a resource the journal has no stream for."""

    def __init__(self, wanted: str, known: list[str]) -> None:
        listed = ", ".join(known[:10]) + (", …" if len(known) > 10 else "")
        super().__init__(
            f"the journal has no resource {wanted!r}; it holds: {listed or 'no resources'}"
        )


def resource_filter(wanted: str | None) -> Callable[[str], bool]:
    """A stream predicate for `NS/NAME` (or `NAME` when cluster-scoped); None keeps all."""
    if wanted is None:
        return lambda stream: True
    return lambda stream: ResourceId.of(stream).label == wanted


async def replay_timelines(
    path: Path,
    *,
    window: Window = EVERYTHING,
    resource: str | None = None,
    progress: Progress | None = None,
) -> tuple[StreamTimeline, ...]:
    """The timelines of the journal at `path`, optionally of one resource.

    Errors: `JournalError` for the file, `FoldError` for a record that cannot be folded,
    `UnknownResource` when `resource` matches no stream.
    """
    keep = resource_filter(resource)
    builder = TimelineBuilder(window)
    labels: set[str] = set()
    async for record in read_records(path, progress=progress):
        if not keep(record.stream):
            labels.add(ResourceId.of(record.stream).label)
            continue
        builder.add(record)
        if builder.done:
            break
    timelines = builder.result()
    if resource is not None and not timelines:
        raise UnknownResource(resource, sorted(labels))
    return timelines


@dataclass(frozen=True, slots=True)
class LoadedJournal:
    """A journal's records grouped per stream (in order), for checks that need a stream
    whole."""

    records: int
    streams: dict[str, list[Record]]


async def load_streams(
    path: Path, *, resource: str | None = None, progress: Progress | None = None
) -> LoadedJournal:
    """Every record of the journal at `path`, grouped per stream. Errors: as above."""
    keep = resource_filter(resource)
    streams: dict[str, list[Record]] = {}
    labels: set[str] = set()
    count = 0
    async for record in read_records(path, progress=progress):
        count += 1
        if keep(record.stream):
            streams.setdefault(record.stream, []).append(record)
        else:
            labels.add(ResourceId.of(record.stream).label)
    if resource is not None and not streams:
        raise UnknownResource(resource, sorted(labels))
    return LoadedJournal(count, streams)

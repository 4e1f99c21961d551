"""Replay a journal file: plan which streams to show, then fold them one at a time.

The asynchronous and I/O edge of engine.replay; the work itself is pure. Streams are
read one by one through the stream index, so memory holds one stream, never the file.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from engine.fsm.state import ResourceState, from_snapshot
from engine.journal.codec import encode_at
from engine.journal.offline_reader import OfflineReader
from engine.journal.record import Record
from engine.replay.source import Progress
from engine.replay.timeline import (
    EVERYTHING,
    INITIAL,
    ResourceId,
    StreamTimeline,
    Window,
    stream_timeline,
)

if TYPE_CHECKING:
    from engine.journal.archive_index import ArchiveIndex


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


def _order(stream: str) -> tuple[str, str, str]:
    resource = ResourceId.of(stream)
    return resource.namespace, resource.name, resource.stream


def _label_order(stream: str) -> tuple[str, str]:
    """`ResourceId.of(stream)`'s namespace and name (tested equal), without making one:
    the parent of a replay orders every stream of the journal before a worker starts."""
    path, _, _uid = stream.rpartition("#")
    parts = path.split("/") if path else []
    if len(parts) < 4:
        return "", stream
    return parts[-2], parts[-1]


class StreamHistory:
    """One journal (and optionally its archive) read stream by stream, verified.

    Use as a context manager. Errors: `JournalError` (file, checksum, archive).
    """

    def __init__(self, path: Path, *, archive: Sequence[Path] = ()) -> None:
        self.reader = OfflineReader.open(path)
        self.archive: ArchiveIndex | None = None
        try:
            if archive:  # imported only then (gzip and the archive's index)
                from engine.journal.archive_index import ArchiveIndex

                self.archive = ArchiveIndex.build(archive, self.reader)
        except BaseException:
            self.reader.close()
            raise

    def __enter__(self) -> StreamHistory:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the journal and the archive's index."""
        if self.archive is not None:
            self.archive.close()
        self.reader.close()

    def streams(self, resource: str | None = None) -> Iterator[str]:
        """The streams to show, sorted by namespace, name and stream; not held in memory
        (see `OfflineReader.ordered_streams`) unless only `resource`'s are asked for.

        Errors: `UnknownResource` when `resource` matches none of them.
        """
        if resource is not None:
            return iter(self._resource_streams(resource))
        extra = self.archive.streams() if self.archive is not None else ()
        return self.reader.ordered_streams(_label_order, extra=extra)

    def _resource_streams(self, resource: str) -> list[str]:
        namespace, _, name = resource.rpartition("/")
        keep = resource_filter(resource)
        candidates = set(self.reader.streams_named(namespace, name))
        if self.archive is not None:
            candidates.update(self.archive.streams())
        chosen = sorted((s for s in candidates if keep(s)), key=_order)
        if not chosen:
            every = set(self.reader.streams())
            every.update(self.archive.streams() if self.archive is not None else ())
            raise UnknownResource(resource, sorted({ResourceId.of(s).label for s in every}))
        return chosen

    def records(self, stream: str) -> tuple[list[Record], ResourceState]:
        """The stream's records in version order and the state they fold from: the
        archived history first when an archive is open, else the compaction cut's state."""
        live = self.reader.read_stream(stream)
        if self.archive is not None:
            archived = self.archive.read_stream(stream)
            if archived:
                return archived + live, INITIAL
        cut = self.reader.cut_state(stream)
        if cut is None:
            return live, INITIAL
        return live, from_snapshot(json.loads(cut[1]))

    def stop_position(self, window: Window) -> int | None:
        """The first position past `window`'s end: a replay folds nothing from there on,
        as a single pass in position order stops at the first record past `until`."""
        stops: list[int] = []
        if window.until_position is not None:
            stops.append(window.until_position + 1)
        if window.until_time is not None:
            moment = encode_at(window.until_time)
            found = self.reader.first_position_after(moment)
            if self.archive is not None:
                found = min(
                    (p for p in (found, self.archive.first_position_after(moment)) if p),
                    default=None,
                )
            if found is not None:
                stops.append(found)
        return min(stops, default=None)


def stream_timelines(
    history: StreamHistory,
    streams: Iterable[str],
    *,
    window: Window = EVERYTHING,
    progress: Progress | None = None,
) -> Iterator[StreamTimeline]:
    """The timelines of `streams` in order, each read, folded and yielded in turn.

    Errors: `JournalError`, `FoldError` for a record that cannot be folded.
    """
    stop = history.stop_position(window)
    done = 0
    for stream in streams:
        records, start = history.records(stream)
        timeline = stream_timeline(
            records, resource=ResourceId.of(stream), window=window, start=start, stop=stop
        )
        done += len(records)
        if progress is not None:
            progress(done)
        if timeline is not None:
            yield timeline


async def replay_timelines(
    path: Path,
    *,
    window: Window = EVERYTHING,
    resource: str | None = None,
    progress: Progress | None = None,
) -> tuple[StreamTimeline, ...]:
    """The timelines of the journal at `path`, optionally of one resource, all at once
    (for callers that want them whole; the CLI streams `stream_timelines`).

    Errors: `JournalError`, `FoldError`, `UnknownResource` when `resource` matches none.
    """
    with StreamHistory(path) as history:
        streams = history.streams(resource)
        timelines = tuple(stream_timelines(history, streams, window=window, progress=progress))
    if resource is not None and not timelines:
        raise UnknownResource(resource, [])
    return timelines

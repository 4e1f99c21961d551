"""The whole-file check of `engine journal check`, streamed, across compaction cuts.

The head marker (a journal behind it lost committed records); SQLite's quick_check;
then every record of the live journal and of every archive segment it lists, merged in
position order, must form one gap-free checksum chain from position 1 to the chain head;
each cut link must equal the archived record's checksum; every snapshot and cut state
must match its checksum. Memory does not grow with size.

A never-compacted journal's chain is checked by position range, split over processes:
each row's checksum depends only on its own stored fields and the stored checksum of
the row before, so a range starting at position `first` chains to the stored checksum
at `first - 1`, which the range before verifies as its last; the ranges are merged by
checking that those meet. SQLite joins each row's covered text (no JSON is decoded).
"""

from __future__ import annotations

import heapq
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from multiprocessing import get_context
from multiprocessing.pool import Pool
from pathlib import Path

from engine.journal import errors
from engine.journal.archive import read_segment
from engine.journal.codec import GENESIS, Row, snapshot_checksum
from engine.journal.errors import CorruptJournal, JournalError, JournalUnavailable
from engine.journal.head_marker import check_marker, read_marker
from engine.journal.offline_reader import OfflineReader
from engine.journal.row_decoder import RowDecoder


@dataclass(frozen=True, slots=True)
class CheckResult:
    """What a passing check saw: live and archived record counts and the chain head."""

    records: int
    archived: int
    segments: int
    head_checksum: str


BEYOND = 2**63 - 1
"""The last range ends at SQLite's largest position, not the head: a row beyond the
chain head is read and refused."""
SPLIT_ABOVE = 100_000
"""Journals of more records than this have their chain checked in position ranges over
`workers` processes; smaller ones in this process alone (a process costs more)."""


def default_workers() -> int:
    """The processes a chain check uses: one per core this process may run on, at most 2
    (the check's own thread and SQLite's quick_check beside it share them)."""
    return max(1, min(2, len(os.sched_getaffinity(0))))


def check_journal(
    path: Path, *, workers: int | None = None, split_above: int = SPLIT_ABOVE
) -> CheckResult:
    """Verify the journal at `path` and the archive segments it lists.

    A never-compacted journal of more than `split_above` records is verified in
    `workers` position ranges at once (`default_workers()` when None), this process
    taking the first.

    Errors: `CorruptJournal` naming the first problem (and position, where one);
    `JournalUnavailable` for a listed segment that is missing or unreadable.
    """
    marked = read_marker(path)  # before the head: a running writer moves it after commits
    with OfflineReader.open(path) as reader:
        check_marker(path, reader.head, marked)
        ranges = _ranges(reader, default_workers() if workers is None else workers, split_above)
        # the range processes are forked first, before any thread of this process starts
        pool = get_context("fork").Pool(len(ranges) - 1) if len(ranges) > 1 else None
        try:
            with ThreadPoolExecutor(1) as beside:
                return _check_all(path, reader, beside, ranges, pool)
        finally:
            if pool is not None:
                pool.terminate()  # done, or a failure found: no range is still wanted
                pool.join()


def _check_all(
    path: Path,
    reader: OfflineReader,
    beside: ThreadPoolExecutor,
    ranges: list[tuple[int, int]],
    pool: Pool | None,
) -> CheckResult:
    # SQLite's own check reads every page without holding the GIL: it runs on a
    # connection of its own while this thread verifies the chain; its finding, if
    # any, is the one reported (a damaged file also fails the chain, less clearly)
    structure = beside.submit(_quick_check, path)
    try:
        segments = reader.segments()
        files = [path.with_name(name) for name, *_ in segments]
        for file in files:
            if not file.exists():
                raise JournalUnavailable(
                    f"archive segment {file} that journal {path} lists is missing: restore "
                    "it beside the journal (the history before the cut is verified through it)"
                )
        archived = _check_segments(path, segments, files)
        live = (
            _check_ranges(reader, ranges, pool) if pool is not None else _check_chain(reader, files)
        )
        _check_snapshots(reader)
    except JournalError:
        structure.result()
        raise
    structure.result()
    return CheckResult(live - archived, archived, len(segments), reader.head.checksum)


def _ranges(reader: OfflineReader, workers: int, split_above: int) -> list[tuple[int, int]]:
    """The position ranges (first, last) to check at once: one unless the journal was
    never compacted and holds more than `split_above` records."""
    last = reader.head.position
    if workers < 2 or last <= split_above or reader.links() or reader.segments():
        return [(1, BEYOND)]
    size = -(-last // workers)
    ranges = [(first, first + size - 1) for first in range(1, last + 1, size)]
    ranges[-1] = (ranges[-1][0], BEYOND)  # rows past the head are read, and refused
    return ranges


def _check_ranges(reader: OfflineReader, ranges: list[tuple[int, int]], pool: Pool) -> int:
    """Verify the live chain range by range, the first here and the others in `pool`;
    each range must begin at the checksum the range before ended with."""
    where = str(reader.path)
    later = [pool.apply_async(_check_range, (reader.path, *bounds)) for bounds in ranges[1:]]
    first, last = ranges[0]
    with closing(reader.checksum_texts(first, last)) as batches:
        previous, position = RowDecoder(where).check_text_chain(
            batches, previous=GENESIS, position=first - 1
        )
    for (first, _last), pending in zip(ranges[1:], later, strict=True):
        if position != first - 1:
            raise CorruptJournal(where, "a record is missing", position + 1)
        started, (previous_after, position) = _outcome(pending.get(), where)
        if started != previous:
            raise CorruptJournal(where, "the record's checksum does not match", first)
        previous = previous_after
    if position != reader.head.position:
        raise CorruptJournal(where, "records beyond the chain head", reader.head.position + 1)
    return position


def _check_range(
    path: Path, first: int, last: int
) -> tuple[str, tuple[str, int]] | tuple[str, str, int | None]:
    """In a range process: the stored checksum the range chains to, and its last
    checksum and position once verified; or the class, text and position of the
    `JournalError` it found (carried as data: a journal error is not picklable)."""
    try:
        with OfflineReader.open(path) as reader:
            started = reader.checksum_at(first - 1)
            if started is None:
                raise CorruptJournal(str(path), "a record is missing", first - 1)
            with closing(reader.checksum_texts(first, last)) as batches:
                end = RowDecoder(str(path)).check_text_chain(
                    batches, previous=started, position=first - 1
                )
            return started, end
    except JournalError as failure:
        return type(failure).__name__, str(failure), getattr(failure, "position", None)


def _outcome(
    result: tuple[str, tuple[str, int]] | tuple[str, str, int | None], where: str
) -> tuple[str, tuple[str, int]]:
    """A range process's result, or its journal error (of the journal `where`) raised
    again here."""
    if len(result) == 2:
        return result
    name, text, position = result
    kind = getattr(errors, name, JournalError)
    failure = kind.__new__(kind)
    failure.args = (text,)  # the same one line the range process would have shown
    if isinstance(failure, CorruptJournal):
        failure.path, failure.position = where, position
    raise failure


def _quick_check(path: Path) -> None:
    """SQLite's quick_check of the file. Errors: `CorruptJournal` with its first findings."""
    with OfflineReader.open(path) as reader:
        problems = [row[0] for row in reader.query("PRAGMA quick_check")]
    if problems != ["ok"]:
        raise CorruptJournal(str(path), "SQLite quick_check: " + "; ".join(problems[:3]))


def _merged(reader: OfflineReader, files: list[Path]) -> Iterator[tuple[bool, Row]]:
    live = ((True, Row(*row)) for _previous, row in reader.rows_with_previous())
    archives = [((False, row) for row in read_segment(file)) for file in files]
    return heapq.merge(live, *archives, key=lambda item: item[1].position)


def _check_chain(reader: OfflineReader, files: list[Path]) -> int:
    """Verify the merged chain; return how many records it holds."""
    where = str(reader.path)
    decoder = RowDecoder(where)
    links = reader.links()
    previous, position = GENESIS, 0
    if not files and not links:  # never compacted: the live rows alone, in one pass
        with closing(reader.checksum_texts(1, BEYOND)) as batches:  # closed before the reader
            previous, position = decoder.check_text_chain(
                batches, previous=previous, position=position
            )
        if position != reader.head.position:
            raise CorruptJournal(where, "records beyond the chain head", reader.head.position + 1)
        return position
    check = decoder.check
    for is_live, row in _merged(reader, files):
        if row.position != position + 1:
            raise CorruptJournal(where, "a record is missing (live or archived)", position + 1)
        check(previous, row)
        linked = links.get(row.position)
        if linked is not None and (is_live or linked != row.checksum):
            raise CorruptJournal(where, "the cut link does not match the archive", row.position)
        previous, position = row.checksum, row.position
    if position != reader.head.position:
        raise CorruptJournal(where, "records beyond the chain head", reader.head.position + 1)
    return position


def _check_segments(
    path: Path, segments: list[tuple[str, int, int, str]], files: list[Path]
) -> int:
    """Each segment holds the count and ends at the last record the journal recorded."""
    total = 0
    for (name, count, last_position, last_checksum), file in zip(segments, files, strict=True):
        seen, last = 0, None
        for row in read_segment(file):
            seen, last = seen + 1, row
        if (
            seen != count
            or last is None
            or (last.position, last.checksum)
            != (
                last_position,
                last_checksum,
            )
        ):
            raise CorruptJournal(
                str(path), f"archive segment {name} does not hold what the journal recorded"
            )
        total += count
    return total


def _check_snapshots(reader: OfflineReader) -> None:
    where = str(reader.path)
    for stream, version, state, digest in reader.query(
        "SELECT stream, version, state, checksum FROM snapshots"
    ):
        if snapshot_checksum(stream, version, state) != digest:
            raise CorruptJournal(where, f"the snapshot of {stream} fails its checksum")
    for stream, version, state, digest in reader.query_optional(
        "SELECT stream, through_version, state, checksum FROM stream_cuts"
    ):
        if snapshot_checksum(stream, version, state) != digest:
            raise CorruptJournal(where, f"the cut state of {stream} fails its checksum")

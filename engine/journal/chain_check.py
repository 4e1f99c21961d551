"""The whole-file check of `engine journal check`, streamed, across compaction cuts.

The head marker (a journal behind it lost committed records); SQLite's quick_check;
then every record of the live journal and of every archive segment it lists, merged in
position order, must form one gap-free checksum chain from position 1 to the chain head;
each cut link must equal the archived record's checksum; every snapshot and cut state
must match its checksum. Memory does not grow with size.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

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


def check_journal(path: Path) -> CheckResult:
    """Verify the journal at `path` and the archive segments it lists.

    Errors: `CorruptJournal` naming the first problem (and position, where one);
    `JournalUnavailable` for a listed segment that is missing or unreadable.
    """
    marked = read_marker(path)  # before the head: a running writer moves it after commits
    with OfflineReader.open(path) as reader, ThreadPoolExecutor(1) as beside:
        check_marker(path, reader.head, marked)
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
            live = _check_chain(reader, files)
            _check_snapshots(reader)
        except JournalError:
            structure.result()
            raise
        structure.result()
        return CheckResult(live - archived, archived, len(segments), reader.head.checksum)


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
        with closing(reader.row_batches()) as batches:  # its cursor closes before the reader
            previous, position = decoder.check_chain(batches, previous=previous, position=position)
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

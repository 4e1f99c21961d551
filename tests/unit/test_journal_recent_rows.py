"""The in-memory tail of the rows this process committed: answers only gap-free reads."""

from __future__ import annotations

from engine.journal.codec import Row
from engine.journal.recent_rows import RecentRows


def row(position: int, stream: str, version: int) -> Row:
    return Row(
        position,
        stream,
        version,
        "Observed",
        1,
        "2026-01-01T00:00:00.000000+00:00",
        f'{{"n":{version}}}',
        None,
        None,
        None,
        1,
        f"sum{position}",
    )


def test_a_tail_read_of_committed_rows_returns_their_records_in_order() -> None:
    recent = RecentRows()
    recent.committed([row(1, "s", 1), row(2, "t", 1), row(3, "s", 2), row(4, "s", 3)])
    records = recent.read("s", 2, 3)
    assert records is not None
    assert [(r.position, r.stream_version, r.data) for r in records] == [
        (3, 2, {"n": 2}),
        (4, 3, {"n": 3}),
    ]
    assert recent.read("s", 4, 3) == []


def test_a_row_is_decoded_once_and_later_reads_share_its_record() -> None:
    recent = RecentRows()
    recent.committed([row(1, "s", 1)])
    first = recent.read("s", 1, 1)
    recent.committed([row(2, "s", 2)])
    second = recent.read("s", 1, 2)
    assert first is not None
    assert second is not None
    assert second[0] is first[0]  # the same decoded record, not a second decode
    assert [r.stream_version for r in second] == [1, 2]
    assert second[1].data == {"n": 2}


def test_a_read_before_the_first_held_version_or_behind_the_head_is_not_answered() -> None:
    recent = RecentRows(per_stream=2)
    recent.committed([row(1, "s", 5), row(2, "s", 6), row(3, "s", 7)])
    assert recent.read("s", 5, 7) is None  # version 5 was dropped (two per stream)
    assert recent.read("s", 6, 7) is not None
    assert recent.read("s", 6, 8) is None  # a commit this cache never saw
    assert recent.read("unknown", 1, 0) is None


def test_a_gap_in_versions_restarts_the_held_rows() -> None:
    recent = RecentRows()
    recent.committed([row(1, "s", 1), row(2, "s", 3)])
    assert recent.read("s", 1, 3) is None
    records = recent.read("s", 3, 3)
    assert records is not None
    assert [r.stream_version for r in records] == [3]


def test_the_least_recently_written_stream_is_dropped_first_and_clear_forgets_all() -> None:
    recent = RecentRows(streams=2)
    recent.committed([row(1, "a", 1), row(2, "b", 1), row(3, "a", 2), row(4, "c", 1)])
    assert recent.read("b", 1, 1) is None
    assert recent.read("a", 1, 2) is not None
    recent.clear()
    assert recent.read("a", 1, 2) is None

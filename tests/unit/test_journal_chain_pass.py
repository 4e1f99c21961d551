"""The one-pass chain check of `engine journal check` verifies the same checksums as the
codec: a whole chain passes to its last record; a changed or a missing row is named."""

from __future__ import annotations

import pytest

from engine.bench.lifecycle_rows import lifecycle_rows
from engine.journal import CorruptJournal
from engine.journal.codec import GENESIS, Row
from engine.journal.row_decoder import RowDecoder, checksum

ROWS = list(lifecycle_rows(1_200))


def batches(rows: list[Row], size: int = 500) -> list[list[Row]]:
    return [rows[start : start + size] for start in range(0, len(rows), size)]


def test_a_whole_chain_passes_to_its_last_record_as_the_codec_chains_it() -> None:
    assert all(
        checksum(GENESIS if i == 0 else ROWS[i - 1].checksum, r) == r.checksum
        for i, r in enumerate(ROWS)
    )
    last = RowDecoder("journal.db").check_chain(batches(ROWS), previous=GENESIS, position=0)
    assert last == (ROWS[-1].checksum, len(ROWS))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param(
            lambda rows: rows.__setitem__(700, rows[700]._replace(data='{"a":2}')),
            "at position 701: the record's checksum does not match",
            id="changed-data",
        ),
        pytest.param(
            lambda rows: rows.__setitem__(9, rows[9]._replace(term=2)),
            "at position 10: the record's checksum does not match",
            id="changed-term",
        ),
        pytest.param(
            lambda rows: rows.pop(501), "at position 502: a record is missing", id="missing-row"
        ),
    ],
)
def test_a_changed_or_missing_row_is_named(change: object, message: str) -> None:
    rows = list(ROWS)
    change(rows)  # type: ignore[operator]
    with pytest.raises(CorruptJournal, match=message):
        RowDecoder("journal.db").check_chain(batches(rows), previous=GENESIS, position=0)

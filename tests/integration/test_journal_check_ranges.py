"""`engine journal check` over position ranges in two processes finds what the one-pass
check finds: a sound chain passes with every record counted; a changed row, a missing
row on either side of the ranges' meeting point, and a row beyond the chain head are
named, in the same one line as the one-pass check."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.bench.journal import write_raw
from engine.bench.lifecycle_rows import lifecycle_rows
from engine.journal import CorruptJournal
from engine.journal.chain_check import check_journal

RECORDS = 3_000
SPLIT = {"workers": 2, "split_above": 1_000}


@pytest.fixture(scope="module")
def sound(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("check-ranges") / "journal.db"
    asyncio.run(write_raw(path, lifecycle_rows(RECORDS), "NORMAL"))
    return path


def changed(sound: Path, tmp_path: Path, sql: str) -> Path:
    path = tmp_path / "journal.db"
    shutil.copy(sound, path)
    shutil.copy(sound.with_name(sound.name + ".head"), path.with_name(path.name + ".head"))
    with sqlite3.connect(path) as connection:
        connection.execute("DROP TRIGGER records_move_chain_head")  # keep the recorded head
        connection.execute(sql)
    return path


def test_a_sound_chain_passes_in_two_ranges_with_every_record(sound: Path) -> None:
    split = check_journal(sound, **SPLIT)
    assert split.records == RECORDS
    assert split == check_journal(sound, workers=1)


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        pytest.param(
            "UPDATE records SET data = '{}' WHERE position = 2900",
            "at position 2900: the record's checksum does not match",
            id="changed-in-the-second-range",
        ),
        pytest.param(
            "UPDATE records SET term = 2 WHERE position = 7",
            "at position 7: the record's checksum does not match",
            id="changed-in-the-first-range",
        ),
        pytest.param(
            "DELETE FROM records WHERE position = 1500",
            "at position 1500: a record is missing",
            id="missing-where-the-ranges-meet",
        ),
        pytest.param(
            "DELETE FROM records WHERE position = 1501",
            "at position 1501: a record is missing",
            id="missing-first-of-the-second-range",
        ),
        pytest.param(
            "INSERT INTO records SELECT position + 1, stream, stream_version + 100, type, "
            "schema, at, data, NULL, trace_id, span_id, term, checksum FROM records "
            f"WHERE position = {RECORDS}",
            f"the chain head is position {RECORDS} but the last record is {RECORDS + 1}",
            id="beyond-the-head",
        ),
    ],
)
def test_a_bad_row_is_named_as_the_one_pass_check_names_it(
    sound: Path, tmp_path: Path, sql: str, message: str
) -> None:
    path = changed(sound, tmp_path, sql)
    found: list[str] = []
    checks: list[Callable[[], object]] = [
        lambda: check_journal(path, **SPLIT),
        lambda: check_journal(path, workers=1),
    ]
    for check in checks:
        with pytest.raises(CorruptJournal, match=message) as raised:
            check()
        found.append(str(raised.value))
    assert found[0] == found[1]

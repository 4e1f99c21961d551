"""A journal at schema version 1, as engines before version 2 wrote it (J8, I4): read
as it is by the read-only commands, copied beside itself before its migration, migrated
in place to version 2, and the same records, chain and replay after; a newer one is
refused.

The version 1 journals are made with the schema-1 statements the code keeps
(`MIGRATIONS[0]`), from the golden exports (never changed: copies in tmp)."""

from __future__ import annotations

import logging
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.cli.main import cli
from engine.journal import NewEvent, schema
from engine.journal.offline_reader import OfflineReader
from engine.journal.sqlite import SqliteJournal
from tests.fixtures.journals.make_golden import EXPECTED, HERE, SCENARIOS, expected_outputs
from tests.support.schema_one import (
    exported_records,
    sqlite_rows,
    sqlite_schema_one,
    sqlite_version_and_indexes,
)

ROOT = Path(__file__).resolve().parents[2]


def schema_one_golden(name: str, tmp_path: Path) -> Path:
    path = tmp_path / f"{name}.db"
    sqlite_schema_one(path, exported_records(HERE / f"{name}.jsonl"))
    return path


async def test_a_schema_1_journal_is_copied_then_migrated_and_its_chain_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = schema_one_golden("delete", tmp_path)
    before = sqlite_rows(path)
    assert sqlite_version_and_indexes(path) == (1, set())

    with caplog.at_level(logging.WARNING, logger="engine.journal.opening"):
        journal = await SqliteJournal.open(path)
    try:
        assert journal.head.position == len(before)
        await journal.append("s", [NewEvent("Observed", {"after": "migration"})])
    finally:
        await journal.close()

    version, indexes = sqlite_version_and_indexes(path)
    assert (version, "records_at" in indexes) == (2, True)
    assert sqlite_rows(path)[: len(before)] == before  # every record as it was

    backup = tmp_path / "delete.db.schema-1.backup"
    assert sqlite_version_and_indexes(backup) == (1, set())
    assert sqlite_rows(backup) == before
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert not [name for name in _names(tmp_path) if name.endswith(".partial")]
    assert [r.getMessage() for r in caplog.records] == [
        f"journal {path}: migrating schema version 1 to 2; the file as it was is kept at {backup}"
    ]

    for checked, count in ((path, len(before) + 1), (backup, len(before))):
        result = CliRunner().invoke(cli, ["journal", "check", str(checked)])
        assert result.exit_code == 0, result.output
        assert f"ok, {count} records" in result.output

    journal = await SqliteJournal.open(path)  # at version 2: nothing copied again
    await journal.close()
    assert [name for name in _names(tmp_path) if name.endswith(".backup")] == [backup.name]


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_golden_journals_at_schema_1_replay_the_same_before_and_after_migration(
    name: str, tmp_path: Path
) -> None:
    path = schema_one_golden(name, tmp_path)
    unmigrated = expected_outputs(name, path)  # replay, why, verify: read-only, as it is
    assert sqlite_version_and_indexes(path) == (1, set())
    assert not list(tmp_path.glob("*.backup"))
    for file_name, text in unmigrated.items():
        assert text == (EXPECTED / file_name).read_text(encoding="utf-8"), file_name

    result = CliRunner().invoke(cli, ["journal", "migrate", str(path)])
    assert result.exit_code == 0, result.output
    assert f"journal {path}: at schema version 2" in result.output
    assert sqlite_version_and_indexes(path)[0] == 2
    assert (tmp_path / f"{name}.db.schema-1.backup").is_file()

    assert expected_outputs(name, path) == unmigrated
    check = CliRunner().invoke(cli, ["journal", "check", str(path)])
    assert check.exit_code == 0, check.output


def test_a_journal_from_a_newer_engine_is_refused_by_migrate_in_one_line(tmp_path: Path) -> None:
    path = schema_one_golden("create_ready", tmp_path)
    assert CliRunner().invoke(cli, ["journal", "migrate", str(path)]).exit_code == 0
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE schema_version SET version = 3")
    connection.close()
    before = path.read_bytes()
    result = subprocess.run(
        [sys.executable, "-m", "engine", "journal", "migrate", str(path)],
        capture_output=True, text=True, timeout=60, check=False, cwd=ROOT,
    )  # fmt: skip
    refusal = (
        f"journal {path} has schema version 3, newer than this engine's 2: "
        "open it with a newer engine (it is left untouched)"
    )
    assert (result.returncode, result.stderr) == (2, f"error: {refusal}\n")  # no traceback
    check = CliRunner().invoke(cli, ["journal", "check", str(path)])
    assert (check.exit_code, check.output) == (2, f"Error: {refusal}\n")
    assert path.read_bytes() == before


def _names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_the_first_record_after_a_time_is_found_through_the_at_index(tmp_path: Path) -> None:
    """What version 2 is for: `replay --until TIME` finds its stop in `records_at`, on a
    new journal (created at 2) and a migrated one, with the answer a scan gives."""
    new = tmp_path / "new.db"
    imported = CliRunner().invoke(
        cli, ["journal", "import", str(HERE / "retry_ready.jsonl"), "--to", str(new)]
    )
    assert imported.exit_code == 0, imported.output
    migrated = schema_one_golden("retry_ready", tmp_path)
    assert CliRunner().invoke(cli, ["journal", "migrate", str(migrated)]).exit_code == 0
    for path in (new, migrated):
        with OfflineReader.open(path) as reader:
            plan = reader.query("EXPLAIN QUERY PLAN " + schema.SELECT_FIRST_AFTER, ("",))
            assert "USING COVERING INDEX records_at" in str(plan)
            times = sorted({row[0] for row in reader.query("SELECT at FROM records")})
            for at in ("", *times):
                scanned = reader.query("SELECT MIN(position) FROM records WHERE at > ?", (at,))
                assert reader.first_position_after(at) == scanned[0][0], at
